/**
 * Splitting a TCP byte stream into messages (wire-protocol.md §2): a 256-byte header, then
 * `size − 256` body bytes, then the next message, with no other framing. Pure and incremental:
 * feed chunks of any size as they arrive, get whole, verified messages.
 *
 * - `size` is read only after the header checksum passed (`checkHeader`), so a corrupt length
 *   can never make the framer wait for or buffer bytes that are not coming.
 * - At most one message is buffered, and a message is at most 1 MiB: memory per connection is
 *   bounded by `messageSizeMax + 256` whatever the peer sends.
 * - A message that arrives whole inside one chunk is handed on as a view of that chunk, without
 *   a copy. Only messages split across chunks are copied, once, into a buffer of exactly their
 *   size, which the receiver then owns. (Node hands each socket read its own fresh buffer, so a
 *   view stays valid; a caller that reuses its chunk memory must copy what it keeps.)
 * - A rejection that closes the connection (§2: checksum, command, size, cluster) is sticky: the
 *   framer returns it for every later chunk and never looks at another byte. A message with an
 *   invalid header is reported to `dropped` and the stream continues.
 */
import { assert } from "../assert.ts"
import { checksumSize } from "./checksum.ts"
import { FrameLayout, headerSize, messageSizeMax, readU32 } from "./header.ts"
import { checkBody, checkHeader, type Rejection, rejectionAction } from "./message.ts"

export interface FrameSink {
  /** A message whose checksums, cluster and header rules all passed. */
  readonly message: (message: Uint8Array) => void
  /** A message with an invalid header (§2 step 6): drop it, keep the connection. */
  readonly dropped: (message: Uint8Array, rejection: Rejection) => void
}

export class MessageFramer {
  private readonly cluster: Uint8Array
  /** The first bytes of a header that straddles chunks. */
  private readonly headerStage = new Uint8Array(headerSize)
  private headerStaged = 0
  /** The message being assembled (header verified, `size` bytes long), and how much of it is in. */
  private pending: Uint8Array | undefined = undefined
  private pendingFilled = 0
  private failed: Rejection | undefined = undefined

  constructor(cluster: Uint8Array) {
    assert(cluster.length === checksumSize, () => "a cluster id is 16 bytes")
    this.cluster = cluster.slice()
  }

  /** The rejection that ended the stream, if any. */
  get failure(): Rejection | undefined {
    return this.failed
  }

  /** Bytes held for an incomplete message (at most `messageSizeMax`). */
  get bufferedBytes(): number {
    return this.pending !== undefined ? this.pendingFilled : this.headerStaged
  }

  /**
   * Consumes `chunk`, reporting each complete message to `sink` in stream order. Returns the
   * rejection that ends the stream (the connection must be closed), or `undefined`.
   */
  feed(chunk: Uint8Array, sink: FrameSink): Rejection | undefined {
    let position = 0
    while (this.failed === undefined && position < chunk.length) {
      if (this.pending !== undefined) {
        position = this.fillPending(chunk, position, sink)
      } else if (this.headerStaged === 0 && chunk.length - position >= headerSize) {
        position = this.frameInPlace(chunk, position, sink)
      } else {
        position = this.stageHeader(chunk, position, sink)
      }
    }
    assert(this.bufferedBytes <= messageSizeMax, () => "framer buffered more than one message")
    return this.failed
  }

  /** The header is whole in `chunk`: check it there, and the message too if it is all here. */
  private frameInPlace(chunk: Uint8Array, position: number, sink: FrameSink): number {
    const rejection = checkHeader(chunk, position)
    if (rejection !== undefined) return this.fail(rejection, chunk.length)
    const size = readU32(chunk, position + FrameLayout.size.offset)
    if (chunk.length - position >= size) {
      this.complete(chunk.subarray(position, position + size), sink)
      return position + size
    }
    this.pending = new Uint8Array(size)
    this.pending.set(chunk.subarray(position))
    this.pendingFilled = chunk.length - position
    return chunk.length
  }

  /** Collects a header that arrives in pieces; checks it once all 256 bytes are in. */
  private stageHeader(chunk: Uint8Array, position: number, sink: FrameSink): number {
    const count = Math.min(headerSize - this.headerStaged, chunk.length - position)
    this.headerStage.set(chunk.subarray(position, position + count), this.headerStaged)
    this.headerStaged += count
    if (this.headerStaged < headerSize) return position + count
    this.headerStaged = 0
    const rejection = checkHeader(this.headerStage, 0)
    if (rejection !== undefined) return this.fail(rejection, chunk.length)
    const size = readU32(this.headerStage, FrameLayout.size.offset)
    const message = new Uint8Array(size)
    message.set(this.headerStage)
    if (size === headerSize) {
      this.complete(message, sink)
    } else {
      this.pending = message
      this.pendingFilled = headerSize
    }
    return position + count
  }

  private fillPending(chunk: Uint8Array, position: number, sink: FrameSink): number {
    const pending = this.pending
    assert(pending !== undefined && this.pendingFilled < pending.length, () => "no message pending")
    const count = Math.min(pending.length - this.pendingFilled, chunk.length - position)
    pending.set(chunk.subarray(position, position + count), this.pendingFilled)
    this.pendingFilled += count
    if (this.pendingFilled === pending.length) {
      this.pending = undefined
      this.pendingFilled = 0
      this.complete(pending, sink)
    }
    return position + count
  }

  private complete(message: Uint8Array, sink: FrameSink): void {
    const rejection = checkBody(message, this.cluster)
    if (rejection === undefined) sink.message(message)
    else if (rejectionAction(rejection) === "drop") sink.dropped(message, rejection)
    else this.fail(rejection, 0)
  }

  /** Ends the stream: drops what is buffered and consumes the rest of the chunk unread. */
  private fail(rejection: Rejection, end: number): number {
    this.failed = rejection
    this.pending = undefined
    this.pendingFilled = 0
    this.headerStaged = 0
    return end
  }
}
