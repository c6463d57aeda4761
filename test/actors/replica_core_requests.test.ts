/**
 * What the replica core prepares, and what it refuses before the journal (issue 12): operations a
 * client may not send are evicted and never written; the deprecated 0.16 encodings (129–136,
 * 138, 139) execute with their 0.16 reply formats on the same ledger; a create that could
 * exceed the ledger's capacity, counting the creates already prepared, is dropped before it is
 * prepared while reads go on; and replay refuses, in words, an op it could not execute.
 */
import { describe, expect, it } from "vitest"
import { type Output, ReplicaCore } from "../../src/actors/replica_core.ts"
import { startedCore, step } from "./core_harness.ts"
import { createLedger } from "../../src/ledger/ledger.ts"
import { buildMessage, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"
import { DeprecatedOperation } from "../../src/protocol/deprecated.ts"
import {
  Command, EvictionLayout, EvictionReason, FrameLayout, headerSize, PrepareLayout, readU32, releaseClientMin, releaseScarab, ReplyLayout,
  VsrOperation, zeroHeader
} from "../../src/protocol/header.ts"
import { decodeMultiBatch, encodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { bodySizeMax, Operation } from "../../src/protocol/operation.ts"
import { account, encodeAccount, encodeBatch, encodeTransfer, transfer } from "../../src/protocol/records.ts"
import { registerRequestBody } from "../../src/protocol/register.ts"

const cluster = 7n
const config = {
  cluster, replica: 0, replicaCount: 1, release: releaseScarab, releaseClientMin, batchSizeLimit: bodySizeMax, clientsMax: 8,
  storage: { journalSlotCount: 1024, checkpointOps: 960, pipelineMax: 8 }
}
const now = { realtimeNs: 1_000_000_000_000n }

/** A client of one core: registers, then sends requests numbered and chained to the replies. */
class Client {
  private request = 0
  private parent = 0n
  session = 0n
  readonly core: ReplicaCore
  readonly id: bigint
  constructor(core: ReplicaCore, id: bigint) {
    this.core = core
    this.id = id
  }

  register(): void {
    const reply = this.send(VsrOperation.register, registerRequestBody())
    expect(reply?.[FrameLayout.command.offset]).toBe(Command.reply)
  }

  /** The message for the next request, not sent. */
  message(operation: number, body: Uint8Array): Uint8Array {
    const register = operation === VsrOperation.register
    return buildMessage({
      ...zeroHeader(Command.request), cluster, release: releaseScarab, client: this.id, operation,
      session: register ? 0n : this.session, request: register ? 0 : this.request + 1, parent: register ? 0n : this.parent
    }, body)
  }

  /** Sends one request, completes its journal writes, returns the one message sent back (or none). */
  send(operation: number, body: Uint8Array): Uint8Array | undefined {
    const sent = complete(this.core, step(this.core, now, { _tag: "Message", message: this.message(operation, body) }))
    expect(sent.length).toBeLessThanOrEqual(1)
    if (sent[0] !== undefined) this.accept(operation, sent[0])
    return sent[0]
  }

  /** Takes a reply to this client's latest request: the next one is numbered and chained after it. */
  accept(operation: number, reply: Uint8Array): void {
    if (reply[FrameLayout.command.offset] !== Command.reply) return
    expect(u128FromBytes(reply, ReplyLayout.client.offset)).toBe(this.id)
    this.request = readU32(reply, ReplyLayout.request.offset)
    this.parent = u128FromBytes(reply, ReplyLayout.context.offset)
    if (operation === VsrOperation.register) this.session = new DataView(reply.buffer, reply.byteOffset).getBigUint64(ReplyLayout.commit.offset, true)
  }
}

/** Completes every journal write the outputs ask for (and those they lead to); returns what was sent. */
function complete(core: ReplicaCore, outputs: Array<Output>): Array<Uint8Array> {
  const sent: Array<Uint8Array> = []
  let pending = outputs
  for (let rounds = 0; pending.length > 0 && rounds < 64; rounds++) {
    const next: Array<Output> = []
    for (const output of pending) {
      if (output._tag === "SendToClient") sent.push(output.message)
      if (output._tag === "JournalWrite") next.push(...step(core, now, { _tag: "JournalWriteDone", op: output.op }))
    }
    pending = next
  }
  return sent
}

const accounts = (...ids: Array<bigint>) => encodeBatch(ids.map((id) => account({ id, ledger: 1, code: 1 })), 128, encodeAccount)
const transfers = (...ids: Array<bigint>) =>
  encodeBatch(ids.map((id) => transfer({ id, debit_account_id: 1n, credit_account_id: 2n, amount: 1n, ledger: 1, code: 1 })), 128, encodeTransfer)
const ids = (...values: Array<bigint>) => {
  const body = new Uint8Array(values.length * 16)
  values.forEach((value, i) => new DataView(body.buffer).setBigUint64(i * 16, value, true))
  return body
}
const body = (reply: Uint8Array | undefined) => {
  expect(reply?.[FrameLayout.command.offset], "a reply").toBe(Command.reply)
  return reply!.subarray(headerSize)
}
const sparse = (bytes: Uint8Array) =>
  Array.from({ length: bytes.length / 8 }, (_, i) => [readU32(bytes, i * 8), readU32(bytes, i * 8 + 4)])

describe("ReplicaCore: what a client may send", () => {
  it("evicts every operation it does not execute, with invalid_request_operation, and writes nothing to the journal", () => {
    const refused: Array<[number, Uint8Array]> = [
      [VsrOperation.noop, new Uint8Array(0)], [Operation.pulse, new Uint8Array(0)], [DeprecatedOperation.get_change_events, new Uint8Array(64)],
      [VsrOperation.reconfigure, new Uint8Array(256)], [148, new Uint8Array(0)], [255, new Uint8Array(128)]
    ]
    for (const [operation, requestBody] of refused) {
      const core = startedCore(config, createLedger())
      const client = new Client(core, 11n)
      client.register()
      const outputs = step(core, now, { _tag: "Message", message: client.message(operation, requestBody) })
      expect(outputs.filter((output) => output._tag === "JournalWrite"), String(operation)).toHaveLength(0)
      const [eviction] = outputs.flatMap((output) => (output._tag === "SendToClient" ? [output.message] : []))
      expect(eviction?.[FrameLayout.command.offset], String(operation)).toBe(Command.eviction)
      expect(eviction?.[EvictionLayout.reason.offset], String(operation)).toBe(EvictionReason.invalid_request_operation)
    }
  })

  it("executes the 0.16 encodings on the same ledger, with their reply formats", () => {
    const core = startedCore(config, createLedger())
    const client = new Client(core, 12n)
    client.register()
    // Unbatched creates: plain bodies, sparse results (index, result) for the failed events only.
    expect(sparse(body(client.send(DeprecatedOperation.create_accounts_unbatched, accounts(1n, 2n, 1n))))).toEqual([[2, 21]]) // exists
    expect(sparse(body(client.send(DeprecatedOperation.create_transfers_unbatched, transfers(10n, 11n))))).toEqual([])
    // Sparse multi-batch creates: one sparse result batch per batch.
    const replies = decodeMultiBatch(body(client.send(DeprecatedOperation.create_transfers_sparse, encodeMultiBatch([transfers(12n), transfers(10n, 13n)], 128))), 8)
    expect(Array.isArray(replies) && replies.map(sparse)).toEqual([[], [[0, 46]]]) // 46: exists
    // Unbatched reads: plain bodies in, plain records out.
    const found = body(client.send(DeprecatedOperation.lookup_transfers_unbatched, ids(10n, 99n, 13n)))
    expect([found.length, u128FromBytes(found, 0), u128FromBytes(found, 128)]).toEqual([256, 10n, 13n])
    const [debit] = [body(client.send(DeprecatedOperation.lookup_accounts_unbatched, ids(1n)))]
    expect(new DataView(debit.buffer, debit.byteOffset).getBigUint64(32, true)).toBe(4n) // debits_posted: transfers 10 to 13
    // The same ledger answers the 0.17 operations.
    const current = decodeMultiBatch(body(client.send(Operation.lookup_transfers, encodeMultiBatch([ids(11n, 12n)], 16))), 128)
    expect(Array.isArray(current) && current[0]!.length).toBe(256)
  })

  it("refuses before the journal a create that could exceed the ledger's capacity, and goes on serving reads", () => {
    const core = startedCore(config, createLedger({ accountsMax: 4, transfersMax: 3 }))
    const client = new Client(core, 13n)
    client.register()
    expect(sparse(body(client.send(DeprecatedOperation.create_accounts_unbatched, accounts(1n, 2n))))).toEqual([])
    const tooMany = step(core, now, { _tag: "Message", message: client.message(Operation.create_transfers, encodeMultiBatch([transfers(1n, 2n, 3n, 4n)], 128)) })
    expect(tooMany.map((output) => output._tag)).toEqual(["StoreFull"])
    // Two creates in flight at once: the second counts the first's events.
    const other = new Client(core, 14n)
    other.register()
    const first = step(core, now, { _tag: "Message", message: client.message(Operation.create_transfers, encodeMultiBatch([transfers(1n, 2n)], 128)) })
    const second = step(core, now, { _tag: "Message", message: other.message(Operation.create_transfers, encodeMultiBatch([transfers(3n, 4n)], 128)) })
    expect(first.map((output) => output._tag)).toEqual(["JournalWrite"])
    expect(second.map((output) => output._tag)).toEqual(["StoreFull"])
    complete(core, first)
    // Reads and creates that fit are still served.
    expect(body(other.send(Operation.lookup_accounts, encodeMultiBatch([ids(1n, 2n)], 16))).length).toBe(256 + 128)
    expect(body(other.send(Operation.create_transfers, encodeMultiBatch([transfers(3n)], 128))).length).toBe(16 + 16)
  })

  it("while a checkpoint is stored, commits reads and holds writes (and what follows them) until it is done", () => {
    const core = startedCore({ ...config, storage: { journalSlotCount: 64, checkpointOps: 4, pipelineMax: 4 } }, createLedger())
    const [reader, writer] = [new Client(core, 21n), new Client(core, 22n)]
    reader.register() // op 1
    writer.register() // op 2
    /** Sends a request, completes its journal writes; returns the outputs (replies and the checkpoint request). */
    const post = (client: Client, operation: number, requestBody: Uint8Array): Array<Output> => {
      const outputs: Array<Output> = []
      for (const output of step(core, now, { _tag: "Message", message: client.message(operation, requestBody) })) {
        outputs.push(output)
        if (output._tag === "JournalWrite") outputs.push(...step(core, now, { _tag: "JournalWriteDone", op: output.op }))
      }
      return outputs
    }
    const replies = (outputs: Array<Output>) =>
      outputs.flatMap((output) => (output._tag === "SendToClient" && output.message[FrameLayout.command.offset] === Command.reply ? [output.message] : []))
    // Op 3, the checkpoint op: its commit asks for a checkpoint.
    const atCheckpoint = post(reader, Operation.create_accounts, encodeMultiBatch([accounts(1n, 2n)], 128))
    const checkpoint = atCheckpoint.find((output) => output._tag === "CheckpointData")
    expect(checkpoint?._tag === "CheckpointData" && checkpoint.op).toBe(3)
    reader.accept(Operation.create_accounts, replies(atCheckpoint)[0]!)
    // A read commits during the checkpoint (op 4)...
    const read = replies(post(writer, Operation.lookup_accounts, encodeMultiBatch([ids(1n)], 16)))
    expect(read).toHaveLength(1)
    writer.accept(Operation.lookup_accounts, read[0]!)
    // ...a write is prepared and written but not committed (op 5), and a read behind it (op 6) waits too.
    expect(replies(post(writer, Operation.create_transfers, encodeMultiBatch([transfers(1n)], 128)))).toHaveLength(0)
    expect(replies(post(reader, Operation.lookup_transfers, encodeMultiBatch([ids(1n)], 16)))).toHaveLength(0)
    expect(core.commitOp).toBe(4)
    // Its data written, the superblock is asked for; reads still commit, writes still wait.
    expect(step(core, now, { _tag: "CheckpointDataDone", op: 3 }).map((output) => output._tag)).toEqual(["CheckpointSuperblock"])
    expect(core.commitOp).toBe(4)
    // Once stored, both commit, in op order.
    const done = step(core, now, { _tag: "CheckpointDone", checkpoint: { op: 3, id: new Uint8Array(16).fill(1), parentId: new Uint8Array(16) } })
    expect(replies(done).map((reply) => u128FromBytes(reply, ReplyLayout.client.offset))).toEqual([22n, 21n])
    expect(core.commitOp).toBe(6)
  })

  it("prepares a due pulse before a request, so a lookup after a timeout sees the hold released whenever the ticks ran", () => {
    const core = startedCore(config, createLedger())
    const client = new Client(core, 41n)
    client.register()
    client.send(Operation.create_accounts, encodeMultiBatch([accounts(1n, 2n)], 128))
    const hold = encodeBatch([transfer({ id: 9n, debit_account_id: 1n, credit_account_id: 2n, amount: 50n, ledger: 1, code: 1, flags: 2, timeout: 1 })], 128, encodeTransfer)
    client.send(Operation.create_transfers, encodeMultiBatch([hold], 128))
    // Two seconds later, with no tick in between: the pulse is prepared first, then the lookup.
    const later = { realtimeNs: now.realtimeNs + 2_000_000_000n }
    const outputs = step(core, later, { _tag: "Message", message: client.message(Operation.lookup_accounts, encodeMultiBatch([ids(1n)], 16)) })
    const writes = outputs.flatMap((output) => (output._tag === "JournalWrite" ? [output.prepare[PrepareLayout.operation.offset]] : []))
    expect(writes).toEqual([VsrOperation.pulse, Operation.lookup_accounts])
    const replies = complete(core, outputs)
    const account = body(replies.find((reply) => reply[FrameLayout.command.offset] === Command.reply))
    expect(new DataView(account.buffer, account.byteOffset).getBigUint64(16, true)).toBe(0n) // debits_pending released
  })

  it("queues a request that finds the pipeline full and prepares it as soon as a prepare commits", () => {
    const core = startedCore({ ...config, storage: { journalSlotCount: 64, checkpointOps: 32, pipelineMax: 1 } }, createLedger())
    const [first, second] = [new Client(core, 31n), new Client(core, 32n)]
    first.register()
    second.register()
    const held = step(core, now, { _tag: "Message", message: first.message(Operation.create_accounts, encodeMultiBatch([accounts(1n)], 128)) })
    const write = held.find((output) => output._tag === "JournalWrite")
    expect(write?._tag).toBe("JournalWrite")
    // The pipeline (one prepare) is full: the second request waits in the queue, not dropped.
    const queued = step(core, now, { _tag: "Message", message: second.message(Operation.create_accounts, encodeMultiBatch([accounts(2n)], 128)) })
    expect(queued).toEqual([])
    // The first commits; the queued one is prepared in the same step.
    const after = step(core, now, { _tag: "JournalWriteDone", op: write?._tag === "JournalWrite" ? write.op : -1 })
    expect(after.map((output) => output._tag)).toEqual(["Prefetch", "Committed", "SendToClient", "JournalWrite"])
    const sent = complete(core, after.filter((output) => output._tag === "JournalWrite"))
    expect(sent.map((reply) => u128FromBytes(reply, ReplyLayout.client.offset))).toEqual([32n])
  })

  it("names an op it cannot replay instead of failing an assertion, and replays one it can", () => {
    /** A recovering core restored at the root checkpoint, replaying `operation` as op 1. */
    const replay = (operation: number, requestBody: Uint8Array): Array<Output> => {
      const core = new ReplicaCore(config, createLedger({ transfersMax: 1 }))
      const zero = new Uint8Array(16)
      const root = rootPrepare(u128ToBytes(cluster))
      expect(step(core, now, { _tag: "Open" }).map((output) => output._tag)).toEqual(["LoadCheckpoint"])
      const restored = { header: root, checkpoint: { op: 0, id: zero, parentId: zero }, sessions: [], commitMax: 0, repliesLost: [] }
      expect(step(core, now, { _tag: "Restore", restored }).map((output) => output._tag)).toEqual(["RecoverJournal"])
      const prepare = buildMessage({
        ...zeroHeader(Command.prepare), cluster, release: releaseScarab, client: operation === VsrOperation.pulse ? 0n : 5n, op: 1n, operation,
        request: operation === VsrOperation.pulse ? 0 : 1, timestamp: 1n, parent: u128FromBytes(root, 0)
      }, requestBody)
      const read = step(core, now, { _tag: "JournalRecovered", ops: [{ op: 1, checksum: prepare.subarray(0, 16), header: prepare.subarray(0, 256) }] })
      expect(read).toMatchObject([{ _tag: "ReadPrepare", op: 1 }])
      return step(core, now, { _tag: "PrepareRead", prepare })
    }
    const refusal = (outputs: Array<Output>) => outputs.find((output) => output._tag === "ReplayRefused")
    expect(refusal(replay(VsrOperation.noop, new Uint8Array(0)))).toMatchObject({ op: 1, reason: expect.stringMatching(/operation 6, which this replica does not execute/) })
    expect(refusal(replay(Operation.pulse, new Uint8Array(0)))).toMatchObject({ reason: expect.stringMatching(/operation 128/) })
    expect(refusal(replay(Operation.create_transfers, new Uint8Array(128)))).toMatchObject({ reason: expect.stringMatching(/invalid body/) })
    expect(refusal(replay(DeprecatedOperation.create_transfers_unbatched, transfers(1n, 2n)))).toMatchObject({ reason: expect.stringMatching(/beyond the ledger's capacity/) })
    expect(replay(DeprecatedOperation.create_transfers_unbatched, transfers(1n)).map((output) => output._tag)).toEqual(["Prefetch", "Committed", "StatusChanged"])
    expect(replay(VsrOperation.pulse, new Uint8Array(0)).map((output) => output._tag)).toEqual(["Committed", "StatusChanged"])
  })
})
