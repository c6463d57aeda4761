/**
 * Repair decisions of a backup in view 0 (vsr.md §5.1–§5.3), pure and separately tested:
 *
 * - which headers of a peer's `headers` message may join the log: only a run that follows on from
 *   the backup's head by the hash chain (each header's `parent` is the checksum of the one
 *   before). A peer is not trusted; the chain is. In view 0 the only chain is the primary's, so a
 *   header that follows on from the head is the primary's header for that op. (With view changes
 *   — the next issue — a repaired header must instead connect backwards to the head of the
 *   current view, vsr.md §5.2 rule 5; the forward rule is only sound while one primary ever
 *   prepared.)
 * - which `get_prepare` requests are outstanding: at most `perPeerMax` per peer, each expiring
 *   after `expiryTicks`, so a dead or slow peer holds only its own share (§5.3's repair budget).
 */
import { assert } from "../assert.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { Command, FrameLayout, headerSize, PrepareLayout, readU32, readU64Number, u128Equal } from "../protocol/header.ts"
import { headerInvalid } from "../protocol/header_rules.ts"
import { checkHeader } from "../protocol/message.ts"
import type { Prng } from "../prng.ts"

/** Headers one `headers` message carries at most (TigerBeetle's `request_headers_max` for repair). */
export const getHeadersMax = 64

/** The log's head a repaired run must follow on from. */
export interface Head {
  readonly op: number
  /** The checksum of the head's prepare (16 bytes). */
  readonly checksum: Uint8Array
  readonly timestamp: bigint
}

/**
 * The headers of `body` (a `headers` message's body: 256-byte headers) that extend the log past
 * `head`, in op order: valid prepare headers of `cluster` in view 0, consecutive from `head.op + 1`,
 * each chained to the one before, no further than `opMax`. Anything else is ignored: a header with
 * a bad checksum, of another cluster or view, not chained, or beyond the journal's reach.
 */
export function chainedHeaders(body: Uint8Array, cluster: Uint8Array, head: Head, opMax: number): Array<Uint8Array> {
  assert(body.length % headerSize === 0, () => `a headers body of ${body.length} bytes is not whole headers`)
  assert(head.checksum.length === checksumSize, () => "the head's checksum is a u128")
  const byOp = new Map<number, Uint8Array>()
  for (let offset = 0; offset < body.length && byOp.size < getHeadersMax; offset += headerSize) {
    const header = body.subarray(offset, offset + headerSize)
    if (!validPrepareHeader(header, cluster)) continue
    const op = readU64Number(header, PrepareLayout.op.offset)
    if (op > head.op && op <= opMax) byOp.set(op, header)
  }
  const run: Array<Uint8Array> = []
  let previous = head.checksum
  let timestamp = head.timestamp
  for (let op = head.op + 1; byOp.has(op); op++) {
    const header = byOp.get(op)!
    if (!u128Equal(header, PrepareLayout.parent.offset, previous, 0)) break
    const next = new DataView(header.buffer, header.byteOffset).getBigUint64(PrepareLayout.timestamp.offset, true)
    // A chain whose timestamps go back was not made by a primary (state-machine.md §6.1).
    if (next <= timestamp) break
    run.push(header.slice())
    previous = header.subarray(0, checksumSize)
    timestamp = next
  }
  assert(run.length <= byOp.size, () => "the run is made of headers received")
  assert(run.every((header, i) => readU64Number(header, PrepareLayout.op.offset) === head.op + 1 + i), () => "the run is consecutive from the head")
  return run
}

/** A peer's header: its checksum, a prepare of our cluster in view 0, valid by the header rules. */
function validPrepareHeader(header: Uint8Array, cluster: Uint8Array): boolean {
  assert(header.length === headerSize, () => "a header is 256 bytes")
  assert(cluster.length === checksumSize, () => "a cluster id is a u128")
  if (checkHeader(header) !== undefined) return false
  if (header[FrameLayout.command.offset] !== Command.prepare) return false
  if (!u128Equal(header, FrameLayout.cluster.offset, cluster, 0)) return false
  if (readU32(header, FrameLayout.view.offset) !== 0) return false
  return readU64Number(header, PrepareLayout.op.offset) > 0 && headerInvalid(header) === undefined
}

interface Outstanding {
  readonly peer: number
  readonly sentTick: number
}

/** The `get_prepare` requests in flight, by op: bounded per peer, each expiring. */
export class RepairRequests {
  readonly perPeerMax: number
  readonly expiryTicks: number
  private readonly byOp = new Map<number, Outstanding>()
  private readonly perPeer: Array<number>

  constructor(replicaCount: number, perPeerMax: number, expiryTicks: number) {
    assert(replicaCount > 1, () => "repair needs a peer")
    assert(perPeerMax > 0, () => "each peer may be asked something")
    assert(expiryTicks > 0, () => "a request waits at least a tick")
    this.perPeerMax = perPeerMax
    this.expiryTicks = expiryTicks
    this.perPeer = Array.from({ length: replicaCount }, () => 0)
  }

  get size(): number {
    return this.byOp.size
  }

  has(op: number): boolean {
    return this.byOp.has(op)
  }

  /** Forgets requests older than `expiryTicks`: their peer may be down, or the message lost. */
  expire(tick: number): void {
    for (const [op, request] of this.byOp) {
      if (tick - request.sentTick >= this.expiryTicks) this.done(op)
    }
    assert(this.perPeer.every((count) => count >= 0), () => "counts never go negative")
    assert([...this.byOp.values()].every((request) => tick - request.sentTick < this.expiryTicks), () => "what stays has not expired")
  }

  /**
   * A peer to ask for `op` now (not `self`, with budget left, chosen at random among those), and
   * counts the request; `undefined` when every peer's budget is spent.
   */
  ask(op: number, self: number, tick: number, prng: Prng): number | undefined {
    assert(!this.byOp.has(op), () => `op ${op} is asked for once at a time`)
    assert(self < this.perPeer.length, () => `replica ${self} is one of the cluster`)
    const eligible: Array<number> = []
    for (let peer = 0; peer < this.perPeer.length; peer++) {
      if (peer !== self && this.perPeer[peer]! < this.perPeerMax) eligible.push(peer)
    }
    if (eligible.length === 0) return undefined
    const peer = eligible[prng.below(eligible.length)]!
    this.perPeer[peer]! += 1
    this.byOp.set(op, { peer, sentTick: tick })
    assert(this.perPeer[peer]! <= this.perPeerMax, () => `peer ${peer} within its budget`)
    return peer
  }

  /** The prepare of `op` arrived (or its request expired): its peer's budget returns. */
  done(op: number): void {
    const request = this.byOp.get(op)
    if (request === undefined) return
    this.byOp.delete(op)
    assert(this.perPeer[request.peer]! > 0, () => `peer ${request.peer} had the request counted`)
    this.perPeer[request.peer]! -= 1
    assert(this.perPeer[request.peer]! >= 0, () => `peer ${request.peer}'s count never goes negative`)
  }
}
