/**
 * Repair decisions of a backup (vsr.md §5.1–§5.3), pure and separately tested:
 *
 * - which headers of a peer's `headers` message are well formed (the log then takes those that
 *   connect down from the header above their place: vsr.md §5.2 rule 5);
 * - which `get_prepare` requests are outstanding: at most `perPeerMax` per peer, each expiring
 *   after `expiryTicks`, so a dead or slow peer holds only its own share (§5.3's repair budget).
 */
import { assert } from "../assert.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { Command, FrameLayout, headerSize, PrepareLayout, readU64Number, u128Equal } from "../protocol/header.ts"
import { headerInvalid } from "../protocol/header_rules.ts"
import { checkHeader } from "../protocol/message.ts"
import type { Prng } from "../prng.ts"

/** Headers one `headers` message carries at most (TigerBeetle's `request_headers_max` for repair). */
export const getHeadersMax = 64

/**
 * The valid headers of `body` (a `headers` message's body: 256-byte headers), newest op first,
 * one per op: prepare headers of `cluster` (of any view) with a good checksum, valid by the header
 * rules. Whether one may join the log is the log's to decide: it must connect to the header held
 * above it (vsr.md §5.2 rule 5).
 */
export function validHeaders(body: Uint8Array, cluster: Uint8Array): Array<Uint8Array> {
  assert(body.length % headerSize === 0, () => `a headers body of ${body.length} bytes is not whole headers`)
  assert(cluster.length === checksumSize, () => "a cluster id is a u128")
  const byOp = new Map<number, Uint8Array>()
  for (let offset = 0; offset < body.length && byOp.size < getHeadersMax; offset += headerSize) {
    const header = body.subarray(offset, offset + headerSize)
    if (!validPrepareHeader(header, cluster)) continue
    const op = readU64Number(header, PrepareLayout.op.offset)
    if (!byOp.has(op)) byOp.set(op, header.slice())
  }
  const headers = [...byOp.entries()].sort((a, b) => b[0] - a[0]).map(([, header]) => header)
  assert(headers.length <= getHeadersMax, () => "at most a message's worth of headers")
  return headers
}

/** A peer's header: its checksum, a prepare of our cluster, valid by the header rules (whether it belongs in our log, the chain decides). */
function validPrepareHeader(header: Uint8Array, cluster: Uint8Array): boolean {
  assert(header.length === headerSize, () => "a header is 256 bytes")
  assert(cluster.length === checksumSize, () => "a cluster id is a u128")
  if (checkHeader(header) !== undefined) return false
  if (header[FrameLayout.command.offset] !== Command.prepare) return false
  if (!u128Equal(header, FrameLayout.cluster.offset, cluster, 0)) return false
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
