/**
 * The core's commit stage machine (issue 13): an op commits through prefetch → execute, and a
 * checkpoint op then through checkpoint data → checkpoint superblock, each I/O an output and its
 * completion an input; startup is driven by the core's outputs and replays only ops known
 * committed; quorums are counted by a pure module; monotonic time never goes back.
 */
import { describe, expect, it } from "vitest"
import { QuorumCounter, quorums } from "../../src/actors/quorum.ts"
import { type Output, ReplicaCore } from "../../src/actors/replica_core.ts"
import { createLedger } from "../../src/ledger/ledger.ts"
import { buildMessage, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import { Command, releaseClientMin, releaseScarab, ReplyLayout, VsrOperation, zeroHeader } from "../../src/protocol/header.ts"
import { encodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"
import { bodySizeMax, Operation } from "../../src/protocol/operation.ts"
import { registerRequestBody } from "../../src/protocol/register.ts"
import { startedCore } from "./core_harness.ts"

const cluster = 9n
const config = {
  cluster, replica: 0, replicaCount: 1, release: releaseScarab, releaseClientMin, batchSizeLimit: bodySizeMax, clientsMax: 8,
  storage: { journalSlotCount: 64, checkpointOps: 32, pipelineMax: 4 }
}
const tags = (outputs: ReadonlyArray<Output>) => outputs.map((output) => output._tag)
let monotonic = 1_000_000n
const now = () => ({ realtimeNs: 1_000_000_000_000n, monotonicNs: monotonic++ })
const register = (client: bigint) => buildMessage({ ...zeroHeader(Command.request), cluster, release: releaseScarab, client, operation: VsrOperation.register }, registerRequestBody())
const pulse = (op: number, parent: Uint8Array) => buildMessage({
  ...zeroHeader(Command.prepare), cluster, release: releaseScarab, op: BigInt(op), operation: VsrOperation.pulse, timestamp: BigInt(op),
  parent: u128FromBytes(parent, 0)
}, new Uint8Array(0))

describe("the commit stage machine", () => {
  it("commits an op only once its prefetch is done, and holds the ops behind it meanwhile", () => {
    const core = startedCore(config, createLedger())
    // A register needs no prefetch: it commits as soon as its journal write (the primary's ok) is done.
    expect(tags(core.step(now(), { _tag: "Message", message: register(5n) }))).toEqual(["JournalWrite"])
    const registered = core.step(now(), { _tag: "JournalWriteDone", op: 1 })
    expect(tags(registered)).toEqual(["Committed", "SendToClient"])
    const reply = (registered[1] as Extract<Output, { _tag: "SendToClient" }>).message
    // A lookup (op 2) and a second client's register (op 3), both written.
    const lookup = buildMessage({
      ...zeroHeader(Command.request), cluster, release: releaseScarab, client: 5n, operation: Operation.lookup_accounts, session: 1n, request: 1,
      parent: u128FromBytes(reply, ReplyLayout.context.offset)
    }, encodeMultiBatch([new Uint8Array(16).fill(1)], 16))
    expect(tags(core.step(now(), { _tag: "Message", message: lookup }))).toEqual(["JournalWrite"])
    expect(tags(core.step(now(), { _tag: "Message", message: register(6n) }))).toEqual(["JournalWrite"])
    expect(tags(core.step(now(), { _tag: "JournalWriteDone", op: 3 }))).toEqual([])
    // Op 2's quorum starts its prefetch; op 3 waits behind it, though it needs none.
    expect(core.step(now(), { _tag: "JournalWriteDone", op: 2 })).toMatchObject([{ _tag: "Prefetch", op: 2, operation: Operation.lookup_accounts }])
    expect(core.commitOp).toBe(1)
    expect(tags(core.step(now(), { _tag: "Tick" }))).toEqual([])
    expect(core.commitOp).toBe(1)
    expect(tags(core.step(now(), { _tag: "PrefetchDone", op: 2 }))).toEqual(["Committed", "SendToClient", "Committed", "SendToClient"])
    expect(core.commitOp).toBe(3)
  })

  it("runs a checkpoint op through checkpoint data, then checkpoint superblock, each asked for once the previous is done", () => {
    const core = startedCore({ ...config, storage: { journalSlotCount: 64, checkpointOps: 2, pipelineMax: 4 } }, createLedger())
    for (const client of [5n, 6n]) core.step(now(), { _tag: "Message", message: register(client) })
    expect(tags(core.step(now(), { _tag: "JournalWriteDone", op: 1 }))).toEqual(["Committed", "SendToClient", "CheckpointData"])
    // Op 2 is durable, but a write (a register changes the client table) waits for the checkpoint.
    expect(tags(core.step(now(), { _tag: "JournalWriteDone", op: 2 }))).toEqual([])
    expect(() => core.step(now(), { _tag: "CheckpointDone", checkpoint: { op: 1, id: new Uint8Array(16), parentId: new Uint8Array(16) } }))
      .toThrow(/superblock was not asked for/)
  })

  it("rejects a prefetch completion nobody asked for", () => {
    const core = startedCore(config, createLedger())
    expect(() => core.step(now(), { _tag: "PrefetchDone", op: 1 })).toThrow(/none was asked for/)
  })
})

describe("startup, driven by the core", () => {
  it("asks for the checkpoint, then the journal, then each op in turn, and serves once the last is replayed", () => {
    const core = new ReplicaCore(config, createLedger())
    const root = rootPrepare(u128ToBytes(cluster))
    const zero = new Uint8Array(16)
    expect(tags(core.step(now(), { _tag: "Open" }))).toEqual(["LoadCheckpoint"])
    const restored = { header: root, checkpoint: { op: 0, id: zero, parentId: zero }, sessions: [], commitMax: 0, repliesLost: [] }
    expect(core.step(now(), { _tag: "Restore", restored })).toEqual([{ _tag: "RecoverJournal", checkpointOp: 0 }])
    const first = pulse(1, root)
    const second = pulse(2, first)
    const ops = [first, second].map((prepare, i) => ({ op: i + 1, checksum: prepare.subarray(0, 16), header: prepare.subarray(0, 256) }))
    expect(core.step(now(), { _tag: "JournalRecovered", ops })).toMatchObject([{ _tag: "ReadPrepare", op: 1 }])
    // A message while recovering is not answered.
    expect(core.step(now(), { _tag: "Message", message: register(5n) })).toEqual([])
    expect(core.step(now(), { _tag: "PrepareRead", prepare: first })).toMatchObject([{ _tag: "Committed", op: 1 }, { _tag: "ReadPrepare", op: 2 }])
    expect(() => core.step(now(), { _tag: "PrepareRead", prepare: first })).toThrow(/returned op 1 for op 2/)
  })

  it("ends recovery at once when the journal holds nothing after the checkpoint", () => {
    const core = new ReplicaCore(config, createLedger())
    core.step(now(), { _tag: "Open" })
    const zero = new Uint8Array(16)
    core.step(now(), { _tag: "Restore", restored: { header: rootPrepare(u128ToBytes(cluster)), checkpoint: { op: 0, id: zero, parentId: zero }, sessions: [], commitMax: 0, repliesLost: [] } })
    expect(core.status).toBe("recovering")
    core.step(now(), { _tag: "JournalRecovered", ops: [] })
    expect(core.status).toBe("normal")
  })
})

describe("quorums", () => {
  it("match vsr.md §1.2 for every cluster size, and intersect where safety needs it", () => {
    const table = [1, 2, 3, 4, 5, 6].map((n) => [n, quorums(n)] as const)
    expect(table.map(([, q]) => q.replication)).toEqual([1, 2, 2, 2, 3, 3])
    expect(table.map(([, q]) => q.viewChange)).toEqual([1, 2, 2, 3, 3, 4])
    expect(table.map(([, q]) => q.nackPrepare)).toEqual([1, 1, 2, 3, 3, 4])
    expect(table.map(([, q]) => q.majority)).toEqual([1, 2, 2, 3, 3, 4])
    expect(() => quorums(0)).toThrow()
    expect(() => quorums(7)).toThrow()
  })

  it("counts each replica's vote once", () => {
    const votes = new QuorumCounter()
    expect(votes.add(2)).toBe(true)
    expect(votes.add(2)).toBe(false)
    expect(votes.add(0)).toBe(true)
    expect(votes.count).toBe(2)
    expect(votes.has(1)).toBe(false)
    expect(() => votes.add(6)).toThrow()
  })
})

describe("time", () => {
  it("stops on monotonic time that goes back", () => {
    const core = startedCore(config, createLedger())
    core.step({ realtimeNs: 5n, monotonicNs: 10_000_000_000n }, { _tag: "Tick" })
    expect(() => core.step({ realtimeNs: 6n, monotonicNs: 9_999_999_999n }, { _tag: "Tick" })).toThrow(/monotonic time never goes back/)
  })
})
