/**
 * The simulator's checkers (simulation.md §8.3), for a cluster of one replica:
 *
 * - history: the prepares the replica wrote (seen at each journal write's completion) give the
 *   op history (in a cluster: the prepares it committed, sim/commit_checker.ts). An op at or
 *   below the newest acknowledged op (a reply went out for it or for a later op) is final:
 *   rewriting it is a violation.
 * - durability: after every restart, the replica's recovered commit op must reach the newest
 *   acknowledged op (no acknowledged op is lost across crashes).
 * - model: every reply a client receives must equal what an independent model of the ledger
 *   (test/ledger/reference/model.ts) answers when it executes the committed ops in op order;
 *   the model's invariants are checked after every op, and prepare timestamps must strictly
 *   increase along the history.
 * - replies: each reply a client receives names a request it sent (`request_checksum`, number,
 *   operation, release), `op == commit`; a reply to a request the client already had answered
 *   must be byte-identical to the first, and each call's result must be its batch's in the reply
 *   (checked by the client's transport, sim/session_client.ts).
 */
import { assert } from "../src/assert.ts"
import { FrameLayout, headerSize, PrepareLayout, readU32, ReplyLayout, RequestLayout, VsrOperation } from "../src/protocol/header.ts"
import { decodeMultiBatch, encodeMultiBatch } from "../src/protocol/multi_batch.ts"
import { eventSize, Operation, resultSize, type ClientOperation } from "../src/protocol/operation.ts"
import { registerRequestBatchSizeLimit, registerResultBody } from "../src/protocol/register.ts"
import { ReferenceLedger } from "../test/ledger/reference/model.ts"

export interface Violation {
  readonly invariant: string
  readonly detail: string
  readonly tick: number
}

export class Checker {
  readonly violations: Array<Violation> = []
  tick = 0
  /** op → the prepare last written for it (final once acknowledged). */
  private readonly history = new Map<bigint, Uint8Array>()
  /** The newest op some reply named: every op up to it is committed and must survive. */
  ackedOp = 0n
  /** Ops the model has executed: 1..modelOp. */
  private modelOp = 0n
  private readonly model = new ReferenceLedger()
  /** The reply body the model expects for each op it executed (only ops with a client reply). */
  private readonly expected = new Map<bigint, Uint8Array>()
  private lastTimestamp = 0n
  opsChecked = 0
  repliesChecked = 0

  fail(invariant: string, detail: string): void {
    this.violations.push({ invariant, detail, tick: this.tick })
  }

  /**
   * The prepares of ops 1..op, in order, or undefined if one is missing from the history. The
   * caller knows `op` committed (a checkpoint of it was stored), so every write up to it was
   * durable and the history holds each op's final prepare, even beyond the newest reply (a
   * pulse, say, has none).
   */
  committedPrepares(op: bigint): Array<Uint8Array> | undefined {
    const prepares: Array<Uint8Array> = []
    for (let next = 1n; next <= op; next++) {
      const prepare = this.history.get(next)
      if (prepare === undefined) return undefined
      prepares.push(prepare)
    }
    return prepares
  }

  /** A journal write completed (the replica will treat the op as durable). */
  onPrepareWritten(prepare: Uint8Array): void {
    const op = readU64(prepare, PrepareLayout.op.offset)
    const previous = this.history.get(op)
    if (op <= this.ackedOp && previous !== undefined && !equal(previous.subarray(0, 16), prepare.subarray(0, 16))) {
      this.fail("committed_op_rewritten", `op ${op} was acknowledged, and a different prepare was written for it`)
    }
    this.history.set(op, prepare.slice())
  }

  /**
   * A cluster committed `prepare` (its first commit anywhere, sim/commit_checker.ts): the history
   * of a cluster is made of committed prepares, not of every write, since a replica may write a
   * prepare of another view that is never committed (and a slow disk may complete it late).
   */
  onPrepareCommitted(prepare: Uint8Array): void {
    const op = readU64(prepare, PrepareLayout.op.offset)
    assert(op > this.modelOp, () => `op ${op} is committed before the model executes it`)
    this.history.set(op, prepare)
  }

  /**
   * The replica sent a reply naming `op`: the op is committed, so it is durable and must survive
   * every crash, whether or not the client ever receives the reply.
   */
  onReplySent(reply: Uint8Array): void {
    const op = readU64(reply, ReplyLayout.op.offset)
    if (op > this.ackedOp) this.ackedOp = op
    // Replies the network later loses are judged too: the body must be the model's for the op.
    if (!this.advanceModel(op)) return
    const expected = this.expected.get(op)
    if (expected !== undefined && !equal(expected, reply.subarray(headerSize))) {
      this.fail("reply_matches_model", `op ${op} (operation ${reply[ReplyLayout.operation.offset]}): the replica sent a reply body that differs from the reference model's`)
    }
  }

  /** A replica process finished recovery with `commitOp` ops. */
  onRecovered(commitOp: bigint): void {
    if (commitOp < this.ackedOp) {
      this.fail("acknowledged_op_lost", `the replica recovered ${commitOp} ops, but op ${this.ackedOp} was acknowledged before the crash`)
    }
    // Ops past the recovered head were never committed: the replica may prepare them anew.
    for (const op of [...this.history.keys()]) if (op > commitOp) this.history.delete(op)
  }

  /**
   * A client received `reply` to `request` (both verified messages). Returns false (after
   * recording the violation) when the reply is wrong.
   */
  onReply(request: Uint8Array, reply: Uint8Array): boolean {
    this.repliesChecked++
    const op = readU64(reply, ReplyLayout.op.offset)
    if (readU64(reply, ReplyLayout.commit.offset) !== op) return this.wrong("reply_op_commit", `reply op ${op} != commit`)
    if (!equal(reply.subarray(ReplyLayout.request_checksum.offset, ReplyLayout.request_checksum.offset + 16), request.subarray(0, 16))) {
      return this.wrong("reply_request_checksum", `reply at op ${op} does not name the request in flight`)
    }
    if (reply[ReplyLayout.operation.offset] !== request[RequestLayout.operation.offset]) return this.wrong("reply_operation", `op ${op}`)
    if (readU32(reply, FrameLayout.release.offset) !== readU32(request, FrameLayout.release.offset)) return this.wrong("reply_release", `op ${op}`)
    if (op > this.ackedOp) this.ackedOp = op
    if (!this.advanceModel(op)) return false
    const prepare = this.history.get(op)!
    if (!equal(prepare.subarray(PrepareLayout.request_checksum.offset, PrepareLayout.request_checksum.offset + 16), request.subarray(0, 16))) {
      return this.wrong("reply_not_of_committed_op", `op ${op} committed another request than the one this reply answers`)
    }
    if (readU64(reply, ReplyLayout.timestamp.offset) !== readU64(prepare, PrepareLayout.timestamp.offset)) {
      return this.wrong("reply_timestamp", `op ${op}: reply timestamp differs from the prepare's`)
    }
    const expected = this.expected.get(op)
    assert(expected !== undefined, () => `no expected reply for op ${op}`)
    if (!equal(expected, reply.subarray(headerSize))) {
      return this.wrong("reply_matches_model", `op ${op} (operation ${reply[ReplyLayout.operation.offset]}): the reply body differs from the reference model's`)
    }
    return true
  }

  private wrong(invariant: string, detail: string): false {
    this.fail(invariant, detail)
    return false
  }

  /** Executes ops modelOp+1 .. op on the model, in op order. */
  private advanceModel(op: bigint): boolean {
    while (this.modelOp < op) {
      const next = this.modelOp + 1n
      const prepare = this.history.get(next)
      if (prepare === undefined) return this.wrong("reply_without_durable_history", `a reply names op ${op}, but op ${next} was never written`)
      const timestamp = readU64(prepare, PrepareLayout.timestamp.offset)
      if (timestamp <= this.lastTimestamp) return this.wrong("timestamps_increase", `op ${next} has timestamp ${timestamp} <= ${this.lastTimestamp}`)
      this.lastTimestamp = timestamp
      this.execute(next, prepare, timestamp)
      try {
        this.model.checkInvariants()
      } catch (error) {
        return this.wrong("ledger_invariants", `after op ${next}: ${String(error)}`)
      }
      this.modelOp = next
      this.opsChecked++
    }
    return true
  }

  private execute(op: bigint, prepare: Uint8Array, timestamp: bigint): void {
    const operation = prepare[PrepareLayout.operation.offset]!
    const body = prepare.subarray(headerSize, readU32(prepare, FrameLayout.size.offset))
    if (operation === VsrOperation.pulse) {
      this.model.pulse(timestamp)
      return
    }
    if (operation === VsrOperation.register) {
      this.expected.set(op, registerResultBody(registerRequestBatchSizeLimit(body)))
      return
    }
    const clientOperation = operation as ClientOperation
    const batches = decodeMultiBatch(body, eventSize(clientOperation))
    assert(Array.isArray(batches), () => `op ${op}: a committed body that does not decode`)
    const creates = clientOperation === Operation.create_accounts || clientOperation === Operation.create_transfers
    const eventsOf = (batch: Uint8Array): number => (creates ? batch.length / eventSize(clientOperation) : 0)
    // state-machine.md §4.1: batches end at consecutive timestamps; the last at the prepare's.
    let end = timestamp - BigInt(batches.reduce((sum, batch) => sum + eventsOf(batch), 0))
    const results: Array<Uint8Array> = []
    for (const batch of batches) {
      end += BigInt(eventsOf(batch))
      results.push(this.model.execute(clientOperation, batch, end))
    }
    this.expected.set(op, encodeMultiBatch(results, resultSize(clientOperation)))
  }
}

export const readU64 = (bytes: Uint8Array, offset: number): bigint =>
  new DataView(bytes.buffer, bytes.byteOffset + offset, 8).getBigUint64(0, true)

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
