/**
 * One TCP connection of the bus (network_tcp.ts): its socket, its framer, who is at the other end
 * (tcp_peer.ts), and its bounded send queue. A connection is *accepted* (a client, or a replica
 * with a lower index than ours) or *dialed* (by us, to a replica with a higher index: the peer is
 * known before a byte is read).
 *
 * Sending never waits: a message is copied and written at once when the socket takes more
 * (`write` has not returned false); otherwise it waits in the send queue of `sendQueueMax`
 * messages, and a message beyond that is dropped (the protocol retries). So at most
 * `sendQueueMax` + 1 messages plus Node's 16 KiB write buffer are held per connection, and a peer
 * that does not read fills only its own queue. Node coalesces the writes buffered while one is in
 * flight into one `writev`, so there is no batching of our own.
 */
import type * as net from "node:net"
import { assert, unreachable } from "../assert.ts"
import { type FrameSink, MessageFramer } from "../protocol/framing.ts"
import { FrameLayout, headerSize, messageSizeMax, readU32 } from "../protocol/header.ts"
import type { Rejection } from "../protocol/message.ts"
import { type Peer, peerUnknown } from "./tcp_peer.ts"

/** Connection ids are unique in the process, so an id held anywhere can never name a newer connection. */
let connectionIdLast = 0

export class Connection {
  readonly id: number
  readonly socket: net.Socket
  readonly remote: string
  readonly framer: MessageFramer
  /** The replica we dialed (its index), or undefined for a connection we accepted. */
  readonly dialed: number | undefined
  /** Copies of messages waiting for the socket to drain, at most the peer's send queue bound. */
  readonly sendQueue: Array<Uint8Array> = []
  /** "closing": a protocol violation was seen, the socket is being destroyed; nothing more is read or sent. */
  state: "open" | "closing" | "closed" = "open"
  peer: Peer
  /** Has delivered a valid message: no longer silent, so never evicted to make room. */
  spoken = false
  /** A valid message arrived since the last sweep (a flag, so that the hot path reads no clock). */
  spokeSinceSweep = false
  /** When the connection was accepted, or the last sweep that saw it deliver (`Clock` ms). */
  quietSinceMs: number
  /** The bound of `sendQueue`: the client figure until the peer proves to be a replica. */
  sendQueueMax: number
  readonly sink: FrameSink

  constructor(socket: net.Socket, cluster: Uint8Array, remote: string, options: {
    readonly openedMs: number
    readonly dialed: number | undefined
    readonly sendQueueMax: number
    readonly sink: (connection: Connection) => FrameSink
  }) {
    this.id = ++connectionIdLast
    this.socket = socket
    this.remote = remote
    this.framer = new MessageFramer(cluster)
    this.dialed = options.dialed
    this.peer = options.dialed === undefined ? peerUnknown : { _tag: "Replica", replica: options.dialed }
    this.quietSinceMs = options.openedMs
    this.sendQueueMax = options.sendQueueMax
    this.sink = options.sink(this)
    assert(Number.isSafeInteger(this.id), () => "connection ids run out")
    assert(this.sendQueueMax >= 1, () => "a send queue holds at least one message")
  }

  /**
   * Copies `message` to the socket, or into the send queue while the socket is full, or drops it
   * when the queue holds `sendQueueMax` already. Returns false when dropped.
   */
  enqueue(message: Uint8Array): boolean {
    assert(this.state === "open", () => `enqueue on a ${this.state} connection`)
    assert(this.sendQueue.length <= this.sendQueueMax, () => `send queue of ${this.sendQueue.length} over its bound ${this.sendQueueMax}`)
    if (this.sendQueue.length === 0 && !this.socket.writableNeedDrain) {
      this.socket.write(Buffer.from(message))
      return true
    }
    if (this.sendQueue.length >= this.sendQueueMax) return false
    this.sendQueue.push(Buffer.from(message))
    return true
  }

  /** Writes queued messages while the socket takes them (on "drain"). */
  flush(): void {
    assert(this.sendQueue.length <= this.sendQueueMax, () => `send queue of ${this.sendQueue.length} over its bound ${this.sendQueueMax}`)
    if (this.state !== "open") return
    const queue = this.sendQueue
    let written = 0
    while (written < queue.length && !this.socket.writableNeedDrain) this.socket.write(queue[written++])
    queue.splice(0, written)
    assert(queue.length === 0 || this.socket.writableNeedDrain, () => "stopped flushing while the socket takes more")
  }

  /** Bytes held for the peer and not yet handed to the kernel: the send queue and Node's write buffer. */
  get heldBytes(): number {
    assert(this.sendQueue.length <= this.sendQueueMax, () => `send queue of ${this.sendQueue.length} over its bound ${this.sendQueueMax}`)
    let bytes = this.socket.writableLength
    for (const message of this.sendQueue) bytes += message.length
    assert(bytes >= 0, () => "held bytes are not negative")
    return bytes
  }
}

/** A warning a flood of peers can cause, written at most once per `intervalMs`, counting the others. */
export class FloodLog {
  private loggedAtMs = -Infinity
  private unlogged = 0
  private readonly nowMs: () => number
  private readonly write: (text: string) => void
  private readonly intervalMs: number

  constructor(nowMs: () => number, write: (text: string) => void, intervalMs: number) {
    assert(intervalMs > 0, () => "a flood log's interval is positive")
    assert(typeof write === "function", () => "a flood log writes somewhere")
    this.nowMs = nowMs
    this.write = write
    this.intervalMs = intervalMs
  }

  note(text: () => string): void {
    assert(this.unlogged >= 0, () => "a negative count of unlogged lines")
    this.unlogged++
    const now = this.nowMs()
    if (now - this.loggedAtMs < this.intervalMs) return
    const others = this.unlogged > 1 ? ` (and ${this.unlogged - 1} more since the last such line)` : ""
    this.write(text() + others)
    this.loggedAtMs = now
    this.unlogged = 0
    assert(this.loggedAtMs === now, () => "the line's time is kept")
  }
}

/** `message` is exactly one whole message: the precondition of every send. */
export function assertWholeMessage(message: Uint8Array): void {
  assert(message.length >= headerSize, () => `send: ${message.length} bytes, shorter than a header`)
  assert(message.length <= messageSizeMax, () => `send: ${message.length} bytes, longer than a message`)
  assert(readU32(message, FrameLayout.size.offset) === message.length, () => `send: not one whole message (${message.length} bytes)`)
}

export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`
}

export function describeRejection(rejection: Rejection): string {
  switch (rejection._tag) {
    case "Truncated":
      return `truncated message (${rejection.length} bytes)`
    case "BadHeaderChecksum":
      return "bad header checksum"
    case "UnknownCommand":
      return `unknown command ${rejection.command}`
    case "SizeOutOfRange":
      return `size ${rejection.size} outside ${headerSize}..${messageSizeMax}`
    case "LengthMismatch":
      return `size ${rejection.size} but ${rejection.length} bytes`
    case "BadBodyChecksum":
      return "bad body checksum"
    case "WrongCluster":
      return "wrong cluster"
    case "InvalidHeader":
      return `invalid header (${rejection.reason})`
    default:
      return unreachable(rejection)
  }
}
