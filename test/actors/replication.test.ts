/**
 * Replication in normal operation, view 0 (issue 14; vsr.md §3.4-§3.8), on the pure core: the
 * primary sends each prepare to every backup and commits on a replication quorum of
 * `prepare_ok`s; a backup writes each prepare, acknowledges it only once durable, and commits up
 * to the commit_max the primary's prepares and heartbeats tell it, never above, replying to
 * nobody; the primary resends a prepare to the replicas whose ok is missing. A small in-memory
 * cluster of cores (journal writes and reads served from maps, messages delivered in a seeded
 * random order per link) shows every replica committing the same prepare at every op.
 */
import { describe, expect, it } from "vitest"
import { type Input, type Output, type ReplicaConfig, type ReplicaCore } from "../../src/actors/replica_core.ts"
import { createLedger } from "../../src/ledger/ledger.ts"
import { buildMessage, buildPrepareOk, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import { Command, CommitLayout, FrameLayout, PingLayout, PongLayout, PrepareOkLayout, readU64, readU64Number, releaseClientMin, releaseScarab, ReplyLayout, VsrOperation, zeroHeader } from "../../src/protocol/header.ts"
import { encodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { bodySizeMax, Operation } from "../../src/protocol/operation.ts"
import { registerRequestBody } from "../../src/protocol/register.ts"
import { headerInvalid } from "../../src/protocol/header_rules.ts"
import { Prng } from "../../src/prng.ts"
import { quickQuorum, startedCore, step, storeCheckpoint } from "./core_harness.ts"

const cluster = 11n
const configOf = (replica: number, replicaCount: number, checkpointOps = 32): ReplicaConfig => ({
  cluster, replica, replicaCount, release: releaseScarab, releaseClientMin, batchSizeLimit: bodySizeMax, clientsMax: 8,
  storage: { journalSlotCount: 64, checkpointOps, pipelineMax: 4 }
})
const now = { realtimeNs: 1_000_000_000_000n }
const tags = (outputs: ReadonlyArray<Output>) => outputs.map((output) => output._tag)
const register = (client: bigint) =>
  buildMessage({ ...zeroHeader(Command.request), cluster, release: releaseScarab, client, operation: VsrOperation.register }, registerRequestBody())
const lookup = (client: bigint, request: number, parent: bigint, session = 1n) => buildMessage({
  ...zeroHeader(Command.request), cluster, release: releaseScarab, client, operation: Operation.lookup_accounts, session, request, parent
}, encodeMultiBatch([new Uint8Array(16).fill(request)], 16))
type Sent = Extract<Output, { _tag: "SendToReplica" }>
const sends = (outputs: ReadonlyArray<Output>): Array<Sent> => outputs.filter((output): output is Sent => output._tag === "SendToReplica")

describe("replication, by hand", () => {
  it("the primary sends each prepare to every backup, and commits once a backup's ok joins its own write (quorum 2 of 3)", () => {
    const primary = startedCore(configOf(0, 3), createLedger())
    const backup = startedCore(configOf(1, 3), createLedger())
    const prepared = step(primary, now, { _tag: "Message", message: register(5n) })
    expect(tags(prepared)).toEqual(["SendToReplica", "SendToReplica", "JournalWrite"])
    expect(sends(prepared).map((send) => send.replica)).toEqual([1, 2])
    const prepare = sends(prepared)[0]!.message
    // Its own write alone is one ok of the two it needs.
    expect(tags(step(primary, now, { _tag: "JournalWriteDone", op: 1 }))).toEqual([])
    // The backup writes the prepare, and acknowledges it only once the write is durable.
    expect(tags(step(backup, now, { _tag: "Message", message: prepare }))).toEqual(["JournalWrite"])
    const acked = sends(step(backup, now, { _tag: "JournalWriteDone", op: 1 }))
    expect(acked.map((send) => send.replica)).toEqual([0])
    const ok = acked[0]!.message
    expect(ok[FrameLayout.command.offset]).toBe(Command.prepare_ok)
    expect(ok[FrameLayout.replica.offset]).toBe(1)
    expect(u128FromBytes(ok, PrepareOkLayout.prepare_checksum.offset)).toBe(u128FromBytes(prepare, 0))
    expect(tags(step(primary, now, { _tag: "Message", message: ok }))).toEqual(["Committed", "SendToClient"])
    // The backup has not committed: commit_max is still 0 as far as it knows.
    expect(backup.commitOp).toBe(0)
  })

  it("a backup commits only up to commit_max, learnt from later prepares and heartbeats, and replies to nobody", () => {
    const primary = startedCore(configOf(0, 3), createLedger())
    const backup = startedCore(configOf(1, 3), createLedger())
    const toBackup: Array<Uint8Array> = []
    const drive = (outputs: ReadonlyArray<Output>) => {
      for (const output of outputs) {
        if (output._tag === "SendToReplica" && output.replica === 1) toBackup.push(output.message)
        if (output._tag === "JournalWrite") drive(step(primary, now, { _tag: "JournalWriteDone", op: output.op }))
      }
    }
    drive(step(primary, now, { _tag: "Message", message: register(5n) }))
    drive(step(primary, now, { _tag: "Message", message: register(6n) }))
    // Backup 2 acknowledges both, so the primary commits ops 1 and 2.
    for (const prepare of toBackup) drive(step(primary, now, { _tag: "Message", message: buildPrepareOk(prepare, { view: 0, replica: 2, commitMin: 0n }) }))
    expect(primary.commitOp).toBe(2)
    // Both prepares were made before anything committed: they carry commit 0.
    const backupOutputs = toBackup.splice(0).flatMap((message) => step(backup, now, { _tag: "Message", message }))
    for (const op of [1, 2]) backupOutputs.push(...step(backup, now, { _tag: "JournalWriteDone", op }))
    expect(backup.commitOp).toBe(0)
    expect(tags(backupOutputs)).not.toContain("Committed")
    // The heartbeat (every 500 ms) tells it: it commits both, sending nothing to any client.
    for (let tick = 0; tick < 50; tick++) drive(step(primary, now, { _tag: "Tick" }))
    const heartbeat = toBackup.find((message) => message[FrameLayout.command.offset] === Command.commit)
    expect(heartbeat).toBeDefined()
    expect(readU64Number(heartbeat!, CommitLayout.commit.offset)).toBe(2)
    const committed = step(backup, now, { _tag: "Message", message: heartbeat! })
    expect(tags(committed)).toEqual(["Committed", "Committed"])
    expect(backup.commitOp).toBe(2)
    // A replayed heartbeat (not newer) changes nothing.
    expect(step(backup, now, { _tag: "Message", message: heartbeat! })).toEqual([])
  })

  it("counts a backup's ok once, and ignores an ok for another prepare or another view", () => {
    const primary = startedCore(configOf(0, 5), createLedger()) // quorum 3 of 5
    const prepare = sends(step(primary, now, { _tag: "Message", message: register(5n) }))[0]!.message
    step(primary, now, { _tag: "JournalWriteDone", op: 1 })
    const ok = buildPrepareOk(prepare, { view: 0, replica: 1, commitMin: 0n })
    expect(step(primary, now, { _tag: "Message", message: ok })).toEqual([])
    expect(step(primary, now, { _tag: "Message", message: ok })).toEqual([])
    const other = prepare.slice()
    other[0]! ^= 1 // another prepare of op 1 (by checksum)
    expect(step(primary, now, { _tag: "Message", message: buildPrepareOk(other, { view: 0, replica: 2, commitMin: 0n }) })).toEqual([])
    expect(step(primary, now, { _tag: "Message", message: buildPrepareOk(prepare, { view: 1, replica: 2, commitMin: 0n }) })).toEqual([])
    expect(primary.commitOp).toBe(0)
    expect(tags(step(primary, now, { _tag: "Message", message: buildPrepareOk(prepare, { view: 0, replica: 3, commitMin: 0n }) })))
      .toEqual(["Committed", "SendToClient"])
  })

  it("resends a prepare after the prepare timeout to the replicas whose ok is missing, and only to them", () => {
    const primary = startedCore(configOf(0, 3), createLedger())
    const prepare = sends(step(primary, now, { _tag: "Message", message: register(5n) }))[0]!.message
    // Our own write is not done yet: we never send to ourselves.
    let resent: Array<Sent> = []
    for (let tick = 0; tick < 25; tick++) resent.push(...sends(step(primary, now, { _tag: "Tick" })))
    expect(resent.map((send) => send.replica)).toEqual([1, 2])
    expect(resent.every((send) => send.message === prepare)).toBe(true)
    step(primary, now, { _tag: "JournalWriteDone", op: 1 })
    // Backup 1 acks: the prepare commits (quorum 2), and nothing is left to resend.
    step(primary, now, { _tag: "Message", message: buildPrepareOk(prepare, { view: 0, replica: 1, commitMin: 0n }) })
    resent = []
    for (let tick = 0; tick < 100; tick++) resent.push(...sends(step(primary, now, { _tag: "Tick" })).filter((send) => send.message[FrameLayout.command.offset] === Command.prepare))
    expect(resent).toEqual([])
  })

  it("a backup takes a prepare after a gap as its head, fills the gap with a prepare that connects to it, and stops on one that breaks the chain", () => {
    const primary = startedCore(configOf(0, 3), createLedger())
    const backup = startedCore(configOf(1, 3), createLedger())
    const prepares: Array<Uint8Array> = []
    for (const client of [5n, 6n, 7n, 8n]) prepares.push(sends(step(primary, now, { _tag: "Message", message: register(client) }))[0]!.message)
    // Op 2 before op 1: op 2 is the head, op 1 a gap (vsr.md §3.5 step 8).
    expect(step(backup, now, { _tag: "Message", message: prepares[1]! })).toMatchObject([{ _tag: "JournalWrite", op: 2 }])
    // Op 1 connects to op 2 (its checksum is op 2's parent): it fills the gap.
    expect(step(backup, now, { _tag: "Message", message: prepares[0]! })).toMatchObject([{ _tag: "JournalWrite", op: 1 }])
    // A forged op 3 whose parent is not op 2's checksum, right above the head: the primary never breaks its chain.
    const forged = buildMessage({ ...zeroHeader(Command.prepare), cluster, release: releaseScarab, op: 3n, commit: 0n, timestamp: now.realtimeNs + 10n,
      operation: VsrOperation.register, client: 9n }, registerRequestBody())
    expect(() => step(backup, now, { _tag: "Message", message: forged })).toThrow(/does not chain/)
  })

  it("a prepare into a gap that does not connect to the header above it is not taken", () => {
    const primary = startedCore(configOf(0, 3), createLedger())
    const backup = startedCore(configOf(1, 3), createLedger())
    const prepares: Array<Uint8Array> = []
    for (const client of [5n, 6n, 7n]) prepares.push(sends(step(primary, now, { _tag: "Message", message: register(client) }))[0]!.message)
    step(backup, now, { _tag: "Message", message: prepares[2]! })
    // Op 1 does not connect to op 3 (op 2 lies between, unknown): the gap waits for op 2's header.
    expect(step(backup, now, { _tag: "Message", message: prepares[0]! })).toEqual([])
    expect(step(backup, now, { _tag: "Message", message: prepares[1]! })).toMatchObject([{ _tag: "JournalWrite", op: 2 }])
    expect(step(backup, now, { _tag: "Message", message: prepares[0]! })).toMatchObject([{ _tag: "JournalWrite", op: 1 }])
  })

  it("a backup writes an op above the next checkpoint plus a pipeline, but acknowledges it only once it stored that checkpoint", () => {
    // Checkpoints every 32 ops: the first is op 31; with a pipeline of 4 the backup acks up to op 35 until it stores it.
    const primary = startedCore(configOf(0, 3), createLedger())
    const backup = startedCore(configOf(1, 3), createLedger())
    const relay = quickQuorum(primary, now, (message) => message[FrameLayout.command.offset] === Command.prepare)
    const { toBackup, drive } = relay
    drive(step(primary, now, { _tag: "Message", message: register(5n) }))
    for (let request = 1; request <= 36; request++) drive(step(primary, now, { _tag: "Message", message: lookup(5n, request, relay.context) }))
    expect(primary.commitOp).toBe(37)
    const oks: Array<number> = []
    const collect = (outputs: ReadonlyArray<Output>) => {
      for (const send of sends(outputs)) if (send.message[FrameLayout.command.offset] === Command.prepare_ok) oks.push(readU64Number(send.message, PrepareOkLayout.op.offset))
    }
    let checkpointAsked = false
    for (const message of toBackup) {
      const outputs = step(backup, now, { _tag: "Message", message })
      const write = outputs.find((output) => output._tag === "JournalWrite")
      const done = write === undefined ? [] : step(backup, now, { _tag: "JournalWriteDone", op: write.op })
      checkpointAsked ||= [...outputs, ...done].some((output) => output._tag === "CheckpointData")
      collect(done)
    }
    expect(checkpointAsked).toBe(true)
    expect(oks).toEqual(Array.from({ length: 35 }, (_, i) => i + 1))
    // The backup stores checkpoint 31: the oks of ops 36 and 37 go out.
    const stored = storeCheckpoint(backup, now, { op: 31, id: new Uint8Array(16).fill(7), parentId: new Uint8Array(16) })
    collect(stored)
    expect(oks.slice(35)).toEqual([36, 37])
  })

  it("every replica of a cluster pings the others each second, and answers a ping with a pong echoing its timestamp; a replica of one pings nobody", () => {
    const backup = startedCore(configOf(2, 3), createLedger())
    const solo = startedCore(configOf(0, 1), createLedger())
    const pings: Array<Sent> = []
    for (let tick = 0; tick < 100; tick++) {
      pings.push(...sends(step(backup, now, { _tag: "Tick" })))
      expect(step(solo, now, { _tag: "Tick" })).toEqual([])
    }
    expect(pings.map((send) => send.replica)).toEqual([0, 1])
    const ping = pings[0]!.message
    expect(ping[FrameLayout.command.offset]).toBe(Command.ping)
    expect(headerInvalid(ping)).toBeUndefined()
    const primary = startedCore(configOf(0, 3), createLedger())
    const pong = sends(step(primary, now, { _tag: "Message", message: ping }))
    expect(pong.map((send) => send.replica)).toEqual([2])
    expect(pong[0]!.message[FrameLayout.command.offset]).toBe(Command.pong)
    expect(headerInvalid(pong[0]!.message)).toBeUndefined()
    expect(readU64Number(pong[0]!.message, PongLayout.ping_timestamp_monotonic.offset)).toBe(readU64Number(ping, PingLayout.ping_timestamp_monotonic.offset))
    expect(BigInt(readU64Number(pong[0]!.message, PongLayout.pong_timestamp_wall.offset))).toBe(now.realtimeNs)
  })

  it("a backup forwards to the primary a register it has no session for, and the next request of a session it knows; drops retries and strangers", () => {
    const primary = startedCore(configOf(0, 3), createLedger())
    const backup = startedCore(configOf(1, 3), createLedger())
    const forwarded = (message: Uint8Array) => sends(step(backup, now, { _tag: "Message", message })).map((send) => [send.replica, send.message === message])
    const registration = register(5n)
    expect(forwarded(registration)).toEqual([[0, true]])
    // The register commits on the primary and, through its prepare and a heartbeat's commit_max, on the backup.
    let context = 0n
    const toBackup: Array<Uint8Array> = []
    for (const output of step(primary, now, { _tag: "Message", message: registration })) {
      if (output._tag === "SendToReplica" && output.replica === 1) toBackup.push(output.message)
    }
    step(primary, now, { _tag: "JournalWriteDone", op: 1 })
    for (const output of step(primary, now, { _tag: "Message", message: buildPrepareOk(toBackup[0]!, { view: 0, replica: 2, commitMin: 0n }) })) {
      if (output._tag === "SendToClient") context = u128FromBytes(output.message, ReplyLayout.context.offset)
    }
    step(backup, now, { _tag: "Message", message: toBackup[0]! })
    step(backup, now, { _tag: "JournalWriteDone", op: 1 })
    for (let tick = 0; tick < 50; tick++) {
      for (const send of sends(step(primary, now, { _tag: "Tick" }))) if (send.replica === 1) step(backup, now, { _tag: "Message", message: send.message })
    }
    expect(backup.commitOp).toBe(1)
    expect(forwarded(lookup(5n, 1, context))).toEqual([[0, true]])
    expect(forwarded(register(5n))).toEqual([]) // a retried register: the session exists
    expect(forwarded(lookup(6n, 1, 0n))).toEqual([]) // a session the backup never heard of
  })

  it("a backup reads back from its journal a prepare its cache no longer holds", () => {
    const primary = startedCore(configOf(0, 3), createLedger())
    const backup = startedCore(configOf(1, 3), createLedger())
    const relay = quickQuorum(primary, now, () => true)
    const { toBackup, drive } = relay
    // A register, then ten lookups of its session: more ops than a backup caches (2 pipelines = 8).
    drive(step(primary, now, { _tag: "Message", message: register(5n) }))
    for (let request = 1; request <= 10; request++) drive(step(primary, now, { _tag: "Message", message: lookup(5n, request, relay.context) }))
    expect(primary.commitOp).toBe(11)
    // Backup 1 takes all eleven before any of its writes is done: it caches eight.
    const written = new Map<number, Uint8Array>()
    for (const message of toBackup) {
      for (const output of step(backup, now, { _tag: "Message", message })) if (output._tag === "JournalWrite") written.set(output.op, output.prepare.slice())
    }
    expect([...written.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    const outputs: Array<Output> = []
    for (let op = 1; op <= 11; op++) outputs.push(...step(backup, now, { _tag: "JournalWriteDone", op }))
    expect(tags(outputs)).not.toContain("SendToClient")
    expect(backup.commitOp).toBe(8)
    let read = outputs.find((output) => output._tag === "ReadPrepare")
    // Ops 9 and 10 are read back and commit; op 11 is above commit_max (its prepare carried commit 10).
    for (const op of [9, 10]) {
      expect(read).toMatchObject({ _tag: "ReadPrepare", op })
      read = step(backup, now, { _tag: "PrepareRead", prepare: written.get(op)! }).find((output) => output._tag === "ReadPrepare")
    }
    expect(read).toBeUndefined()
    expect(backup.commitOp).toBe(10)
    // Another prepare than the one logged, read back, is a defect.
    expect(() => step(backup, now, { _tag: "PrepareRead", prepare: written.get(11)! })).toThrow(/none was asked for/)
  })
})

/**
 * A cluster of cores in memory: every replica's journal is a map, each link a FIFO queue that
 * loses a share of its messages (`loss`; backups repair what they miss from their peers), and a
 * seeded PRNG picks what happens next: a message delivered (or lost) on some link, a journal
 * write or read or checkpoint stage completing on some replica, a tick, a client's next request
 * to the primary.
 */
class MemoryCluster {
  readonly cores: Array<ReplicaCore>
  /** Per replica: op → checksum of the prepare it committed there. */
  readonly committed: Array<Map<number, bigint>>
  private readonly journals: Array<Map<number, Uint8Array>>
  private readonly links = new Map<string, Array<Uint8Array>>()
  /** Per replica: I/O completions waiting (journal writes in op order; one read or checkpoint stage at a time). */
  private readonly writes: Array<Array<number>>
  private readonly stages: Array<Array<Input>>
  private readonly checkpointIds: Array<Uint8Array>
  /** Each client's session (the op its register committed at), latest reply's context, request number. */
  readonly clients = new Map<bigint, { session: bigint; context: bigint; request: number; waiting: boolean }>()
  repliesFromBackups = 0
  /** Repair requests sent (get_headers, get_prepare). */
  repairRequests = 0

  readonly replicaCount: number
  private readonly prng: Prng

  private readonly loss: number

  constructor(replicaCount: number, prng: Prng, loss = 0) {
    this.replicaCount = replicaCount
    this.prng = prng
    this.loss = loss
    this.cores = Array.from({ length: replicaCount }, (_, replica) => startedCore(configOf(replica, replicaCount), createLedger()))
    this.committed = this.cores.map(() => new Map())
    this.journals = this.cores.map(() => new Map())
    this.writes = this.cores.map(() => [])
    this.stages = this.cores.map(() => [])
    this.checkpointIds = this.cores.map(() => new Uint8Array(16))
  }

  /** One random event (it may find nothing to do). */
  step(): void {
    const choice = this.prng.below(10)
    const replica = this.prng.below(this.replicaCount)
    if (choice < 4) {
      const busy = [...this.links.entries()].filter(([, queue]) => queue.length > 0)
      if (busy.length === 0) return
      const [name, queue] = busy[this.prng.below(busy.length)]!
      const message = queue.shift()!
      if (this.prng.nextFloat() >= this.loss) this.input(Number(name.split(">")[1]), { _tag: "Message", message })
    } else if (choice < 6) {
      const op = this.writes[replica]!.shift()
      if (op !== undefined) this.input(replica, { _tag: "JournalWriteDone", op })
    } else if (choice < 8) {
      const input = this.stages[replica]!.shift()
      if (input !== undefined) this.input(replica, input)
    } else if (choice < 9) {
      this.input(replica, { _tag: "Tick" })
    } else {
      this.request()
    }
  }

  /** Delivers everything pending, then ticks until a heartbeat reached every backup and nothing is left. */
  settle(): void {
    for (let round = 0; round < 200; round++) {
      for (let replica = 0; replica < this.replicaCount; replica++) {
        for (let input = this.stages[replica]!.shift(); input !== undefined; input = this.stages[replica]!.shift()) this.input(replica, input)
        for (let op = this.writes[replica]!.shift(); op !== undefined; op = this.writes[replica]!.shift()) this.input(replica, { _tag: "JournalWriteDone", op })
      }
      for (const [name, queue] of this.links) for (let message = queue.shift(); message !== undefined; message = queue.shift()) this.input(Number(name.split(">")[1]), { _tag: "Message", message })
      for (let replica = 0; replica < this.replicaCount; replica++) this.input(replica, { _tag: "Tick" })
    }
  }

  private request(): void {
    const client = BigInt(1 + this.prng.below(4))
    const session = this.clients.get(client)
    if (session?.waiting) return
    if (session === undefined) {
      this.clients.set(client, { session: 0n, context: 0n, request: 0, waiting: true })
      return this.input(0, { _tag: "Message", message: register(client) })
    }
    session.waiting = true
    session.request += 1
    this.input(0, { _tag: "Message", message: lookup(client, session.request, session.context, session.session) })
  }

  private input(replica: number, input: Input): void {
    for (const output of step(this.cores[replica]!, now, input)) this.output(replica, output)
  }

  private output(replica: number, output: Output): void {
    switch (output._tag) {
      case "SendToReplica": {
        expect(output.replica).not.toBe(replica)
        const command = output.message[FrameLayout.command.offset]
        if (command === Command.get_headers || command === Command.get_prepare) this.repairRequests += 1
        const name = `${replica}>${output.replica}`
        const queue = this.links.get(name) ?? []
        queue.push(output.message)
        this.links.set(name, queue)
        break
      }
      case "SendToClient": {
        if (replica !== 0) this.repliesFromBackups += 1
        const session = this.clients.get(output.client)
        if (session !== undefined && output.message[FrameLayout.command.offset] === Command.reply) {
          if (session.request === 0) session.session = readU64(output.message, ReplyLayout.op.offset)
          session.context = u128FromBytes(output.message, ReplyLayout.context.offset)
          session.waiting = false
        }
        break
      }
      case "JournalWrite":
        this.journals[replica]!.set(output.op, output.prepare.slice())
        this.writes[replica]!.push(output.op)
        break
      case "ReadPrepare":
        this.stages[replica]!.push({ _tag: "PrepareRead", prepare: this.journals[replica]!.get(output.op)! })
        break
      case "ServePrepare": {
        // A repair read for a peer: sent if the journal holds that prepare (a write may still be on its way).
        const prepare = this.journals[replica]!.get(output.op)
        if (prepare !== undefined && u128FromBytes(prepare, 0) === u128FromBytes(output.checksum, 0)) this.output(replica, { _tag: "SendToReplica", replica: output.replica, message: prepare })
        break
      }
      case "Committed":
        this.committed[replica]!.set(output.op, u128FromBytes(this.journals[replica]!.get(output.op)!, 0))
        break
      case "CheckpointData":
        this.stages[replica]!.push({ _tag: "CheckpointDataDone", op: output.op })
        break
      case "CheckpointSuperblock": {
        // Every replica names the checkpoint of an op alike: ids agree exactly when the ops do.
        const parentId = this.checkpointIds[replica]!
        const id = u128ToBytes(BigInt(output.op) * 7n + 1n)
        this.checkpointIds[replica] = id
        this.stages[replica]!.push({ _tag: "CheckpointDone", checkpoint: { op: output.op, id, parentId } })
        break
      }
      default:
        break
    }
  }
}

describe("replication, a cluster of cores in a random order, losing messages", () => {
  for (const replicaCount of [2, 3, 4, 5, 6]) {
    it(`${replicaCount} replicas: each commits the same prepare at every op, backups reach the primary's commit, only the primary replies`, () => {
      for (let seed = 1; seed <= 4; seed++) {
        // Seeds 1 and 2 lose no message; 3 and 4 lose one in ten, which backups repair.
        const cluster = new MemoryCluster(replicaCount, new Prng(seed * 1000 + replicaCount), seed <= 2 ? 0 : 0.1)
        // Lost oks wait for the prepare timeout: lossy seeds take more steps to pass a checkpoint.
        for (let i = 0; i < (seed <= 2 ? 1500 : 8000) * replicaCount; i++) cluster.step()
        cluster.settle()
        const primary = cluster.cores[0]!
        // Enough ops to pass a checkpoint (every 32) on every replica.
        expect(primary.commitOp).toBeGreaterThan(40)
        for (const [replica, core] of cluster.cores.entries()) {
          // A backup that lost the race by more than a journal (its missing prepares overwritten on
          // every peer) waits for state sync (issue 16); it must have committed what it did alike.
          const beyondReach = seed > 2 && core.commitOp + 64 < primary.commitOp
          if (!beyondReach) expect(core.commitOp, `replica ${replica}, seed ${seed}`).toBe(primary.commitOp)
          for (const [op, checksum] of cluster.committed[replica]!) expect(checksum, `replica ${replica}, op ${op}`).toBe(cluster.committed[0]!.get(op))
          if (!beyondReach) expect(cluster.committed[replica]!.size).toBe(cluster.committed[0]!.size)
        }
        expect(cluster.committed[0]!.size).toBe(primary.commitOp)
        expect(cluster.repliesFromBackups).toBe(0)
        // What the lossy seeds lost, the backups repaired.
        if (seed > 2) expect(cluster.repairRequests).toBeGreaterThan(0)
      }
    })
  }
})

describe("a cluster's primary and a replica of one", () => {
  it("send the same replies, byte for byte, for the same requests at the same times (only who acknowledges differs)", () => {
    // Both clocks named exactly: the cluster's time then reads the wall clock, as the solo replica's does.
    const start = { realtimeNs: now.realtimeNs, monotonicNs: 1_000_000_000_000_000n }
    const solo = startedCore(configOf(0, 1), createLedger(), start)
    const primary = startedCore(configOf(0, 3), createLedger(), start)
    let at = start
    /** Runs a request to its reply: journal writes done at once, and on the primary one backup's ok per prepare. */
    const serve = (core: ReplicaCore, message: Uint8Array): Array<Uint8Array> => {
      const replies: Array<Uint8Array> = []
      const drive = (outputs: ReadonlyArray<Output>): void => {
        for (const output of outputs) {
          if (output._tag === "SendToClient") replies.push(output.message)
          if (output._tag === "JournalWrite") drive(step(core, at, { _tag: "JournalWriteDone", op: output.op }))
          if (output._tag === "SendToReplica" && output.replica === 1) {
            drive(step(core, at, { _tag: "Message", message: buildPrepareOk(output.message, { view: 0, replica: 1, commitMin: 0n }) }))
          }
        }
      }
      drive(step(core, at, { _tag: "Message", message: message.slice() }))
      return replies
    }
    let context = 0n
    for (let request = 0; request <= 12; request++) {
      // Each request 3 s after the window opened plus a millisecond per request, on both clocks alike.
      const elapsed = 3_000_000_000n + BigInt(request) * 1_000_000n
      at = { realtimeNs: start.realtimeNs + elapsed, monotonicNs: start.monotonicNs + elapsed }
      const message = request === 0 ? register(5n) : lookup(5n, request, context)
      const [soloReply, ...soloRest] = serve(solo, message)
      const [primaryReply, ...primaryRest] = serve(primary, message)
      expect(soloRest).toEqual([])
      expect(primaryRest).toEqual([])
      expect(primaryReply).toEqual(soloReply)
      context = u128FromBytes(soloReply!, ReplyLayout.context.offset)
    }
    expect(primary.commitOp).toBe(solo.commitOp)
  })
})
