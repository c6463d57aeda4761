/**
 * A cluster of replica cores a scenario test drives by hand (in the spirit of TigerBeetle's
 * replica tests): every replica's journal and durable view state in memory, links between
 * replicas that a test cuts and heals, journal writes a test holds back, crashes (what was not
 * yet written is lost) and restarts (recovery from the durable journal and view state, as the
 * shell does it), and clients that send each request to the primary they believe in and, after a
 * timeout, to every replica, as the official client does. Time moves 10 ms per round.
 *
 * Scenarios stay below the first checkpoint (op 32): a restart then replays from op 0.
 */
import { expect } from "vitest"
import { type Input, type Output, ReplicaCore, type ReplicaConfig } from "../../src/actors/replica_core.ts"
import { createLedger } from "../../src/ledger/ledger.ts"
import { buildMessage, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import { checksumSize } from "../../src/protocol/checksum.ts"
import {
  Command, FrameLayout, headerSize, PrepareLayout, readU32, readU64, readU64Number, releaseClientMin, releaseScarab, ReplyLayout, RequestLayout, VsrOperation, zeroHeader
} from "../../src/protocol/header.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"
import { encodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { bodySizeMax, Operation } from "../../src/protocol/operation.ts"
import { registerRequestBody } from "../../src/protocol/register.ts"

export const scenarioCluster = 21n
const tickNs = 10_000_000n
/** A client resends to every replica after 500 ms without a reply. */
const clientTimeoutTicks = 50

interface DurableView {
  readonly view: number
  readonly logView: number
  readonly commitMax: number
  readonly headers: ReadonlyArray<Uint8Array>
}

interface Client {
  readonly id: bigint
  session: bigint
  request: number
  context: bigint
  view: number
  pending: Uint8Array | undefined
  sentTick: number
}

export class ScenarioCluster {
  readonly replicaCount: number
  readonly cores: Array<ReplicaCore | undefined>
  /** Durable journal writes, by op. */
  readonly journals: Array<Map<number, Uint8Array>>
  readonly views: Array<DurableView | undefined>
  /** Each replica's latest status line. */
  readonly statuses: Array<{ status: string; view: number; primary: number } | undefined>
  /** What each replica committed: op → the prepare's checksum. */
  readonly committed: Array<Map<number, bigint>>
  /** Links `a>b` that drop what they carry; replicas whose journal writes wait. */
  readonly cut = new Set<string>()
  readonly writesHeld = new Set<number>()
  /** Every reply a client accepted, by client and request number. */
  readonly replies = new Map<string, Uint8Array>()
  ticks = 0
  private readonly writes: Array<Array<Uint8Array>>
  private readonly inputs: Array<Array<Input>>
  private readonly links = new Map<string, Array<Uint8Array>>()
  private readonly clients: Array<Client> = []
  private readonly incarnations: Array<number>
  private readonly skewNs: Array<bigint>

  constructor(replicaCount: number) {
    this.replicaCount = replicaCount
    this.cores = Array.from({ length: replicaCount }, () => undefined)
    this.journals = Array.from({ length: replicaCount }, () => new Map())
    this.views = Array.from({ length: replicaCount }, () => undefined)
    this.statuses = Array.from({ length: replicaCount }, () => undefined)
    this.committed = Array.from({ length: replicaCount }, () => new Map())
    this.writes = Array.from({ length: replicaCount }, () => [])
    this.inputs = Array.from({ length: replicaCount }, () => [])
    this.incarnations = Array.from({ length: replicaCount }, () => 0)
    this.skewNs = Array.from({ length: replicaCount }, () => 0n)
    for (let replica = 0; replica < replicaCount; replica++) this.start(replica)
  }

  config(replica: number): ReplicaConfig {
    return {
      cluster: scenarioCluster, replica, replicaCount: this.replicaCount, release: releaseScarab, releaseClientMin, batchSizeLimit: bodySizeMax,
      clientsMax: 8, storage: { journalSlotCount: 64, checkpointOps: 32, pipelineMax: 4 }
    }
  }

  /** Replica `replica`'s wall clock runs `ms` ahead of the others (behind if negative). */
  skew(replica: number, ms: number): void {
    this.skewNs[replica] = BigInt(ms) * 1_000_000n
  }

  /** Starts a replica on its durable state: a fresh one, or a restart after `crash`. */
  start(replica: number): void {
    expect(this.cores[replica]).toBeUndefined()
    this.committed[replica]!.clear()
    this.incarnations[replica]! += 1
    const core = new ReplicaCore(this.config(replica), createLedger(), replica * 1000 + this.incarnations[replica]!)
    this.cores[replica] = core
    const root = rootPrepare(u128ToBytes(scenarioCluster))
    const durable = this.views[replica]
    const zero = new Uint8Array(checksumSize)
    const ops = [...this.journals[replica]!.entries()].sort((a, b) => a[0] - b[0])
      .map(([op, prepare]) => ({ op, checksum: prepare.subarray(0, checksumSize), header: prepare.subarray(0, headerSize) }))
    this.drive(replica, [{ _tag: "Open" }, {
      _tag: "Restore", restored: {
        header: root, checkpoint: { op: 0, id: zero, parentId: zero }, sessions: [], repliesLost: [], commitMax: durable?.commitMax ?? 0,
        fresh: durable === undefined, ...(durable === undefined ? {} : { view: durable })
      }
    }, { _tag: "JournalRecovered", ops }])
    expect(core.status).not.toBe("recovering")
  }

  /** The replica stops: its journal writes in flight are lost, and what it was sent. */
  crash(replica: number): void {
    expect(this.cores[replica]).toBeDefined()
    this.cores[replica] = undefined
    this.writes[replica] = []
    this.inputs[replica] = []
    for (const name of [...this.links.keys()]) if (name.endsWith(`>${replica}`)) this.links.delete(name)
  }

  /** Cuts every link between `group` and the others, both ways (or one way: from `group` only). */
  isolate(group: ReadonlyArray<number>, oneWay = false): void {
    for (const a of group) {
      for (let b = 0; b < this.replicaCount; b++) {
        if (group.includes(b)) continue
        this.cut.add(`${a}>${b}`)
        if (!oneWay) this.cut.add(`${b}>${a}`)
      }
    }
  }

  heal(): void {
    this.cut.clear()
  }

  /** Runs `rounds` rounds: deliver, complete writes, feed I/O completions, tick, send clients' requests. */
  run(rounds: number): void {
    for (let round = 0; round < rounds; round++) {
      this.ticks += 1
      // What is sent while this round's messages are delivered goes out next round.
      const sent = [...this.links]
      this.links.clear()
      for (const [name, queue] of sent) {
        const [from, to] = name.split(">").map(Number) as [number, number]
        if (this.cut.has(name)) continue
        for (const message of queue) this.drive(to, [{ _tag: "Message", message }], from)
      }
      for (let replica = 0; replica < this.replicaCount; replica++) {
        if (this.cores[replica] === undefined) continue
        const inputs = this.inputs[replica]!.splice(0)
        if (!this.writesHeld.has(replica)) {
          for (const prepare of this.writes[replica]!.splice(0)) {
            const op = readU64Number(prepare, PrepareLayout.op.offset)
            this.journals[replica]!.set(op, prepare)
            inputs.push({ _tag: "JournalWriteDone", op })
          }
        }
        this.drive(replica, [...inputs, { _tag: "Tick" }])
      }
      for (const client of this.clients) this.clientTick(client)
    }
  }

  /** Runs until `done` holds, at most `rounds` rounds; fails otherwise. */
  runUntil(done: () => boolean, rounds: number, what: string): void {
    for (let round = 0; round < rounds && !done(); round++) this.run(1)
    expect(done(), `${what} within ${rounds} rounds`).toBe(true)
  }

  /** A new client (registering at once); returns its index. */
  addClient(id: bigint): number {
    const client: Client = { id, session: 0n, request: 0, context: 0n, view: 0, pending: undefined, sentTick: 0 }
    this.clients.push(client)
    this.send(client, buildMessage({ ...zeroHeader(Command.request), cluster: scenarioCluster, release: releaseScarab, client: id, operation: VsrOperation.register }, registerRequestBody()))
    return this.clients.length - 1
  }

  /** Whether client `index` waits for no reply. */
  idle(index: number): boolean {
    return this.clients[index]!.pending === undefined
  }

  /** Client `index` sends its next request (a lookup); it must be idle. */
  request(index: number): number {
    const client = this.clients[index]!
    expect(client.pending).toBeUndefined()
    client.request += 1
    this.send(client, buildMessage({
      ...zeroHeader(Command.request), cluster: scenarioCluster, release: releaseScarab, client: client.id, operation: Operation.lookup_accounts,
      session: client.session, request: client.request, parent: client.context
    }, encodeMultiBatch([new Uint8Array(16).fill(client.request & 0xff)], 16)))
    return client.request
  }

  /** The replica that is normal as primary of the newest view, if one is. */
  primary(): number | undefined {
    let found: number | undefined
    for (let replica = 0; replica < this.replicaCount; replica++) {
      const status = this.statuses[replica]
      if (this.cores[replica] === undefined || status === undefined || status.status !== "normal" || status.primary !== replica) continue
      if (found === undefined || status.view > this.statuses[found]!.view) found = replica
    }
    return found
  }

  /** Every live replica committed the same prepares up to the furthest commit, and each (client, request) once. */
  expectConsistent(): void {
    const byOp = new Map<number, bigint>()
    for (const committed of this.committed) {
      for (const [op, checksum] of committed) {
        const first = byOp.get(op)
        if (first !== undefined) expect(checksum, `op ${op}`).toBe(first)
        byOp.set(op, checksum)
      }
    }
    const requests = new Set<string>()
    for (const [op] of [...byOp].sort((a, b) => a[0] - b[0])) {
      const prepare = this.findPrepare(op, byOp.get(op)!)
      if (prepare === undefined || prepare[PrepareLayout.operation.offset] === VsrOperation.pulse) continue
      const key = `${u128FromBytes(prepare, PrepareLayout.client.offset)}/${readU32(prepare, PrepareLayout.request.offset)}`
      expect(requests.has(key), `request ${key} committed twice`).toBe(false)
      requests.add(key)
    }
    for (const key of this.replies.keys()) expect(requests.has(key), `the reply to ${key} is of a committed request`).toBe(true)
  }

  /** The newest commit among live replicas, and whether every live replica reached it. */
  converged(): boolean {
    const commits = this.cores.filter((core) => core !== undefined).map((core) => core.commitOp)
    return commits.every((commit) => commit === commits[0])
  }

  private findPrepare(op: number, checksum: bigint): Uint8Array | undefined {
    for (const journal of this.journals) {
      const prepare = journal.get(op)
      if (prepare !== undefined && u128FromBytes(prepare, 0) === checksum) return prepare
    }
    return undefined
  }

  private send(client: Client, message: Uint8Array): void {
    client.pending = message
    client.sentTick = this.ticks
    this.deliverToReplica(client.view % this.replicaCount, message)
  }

  private clientTick(client: Client): void {
    if (client.pending === undefined || this.ticks - client.sentTick < clientTimeoutTicks) return
    client.sentTick = this.ticks
    for (let replica = 0; replica < this.replicaCount; replica++) this.deliverToReplica(replica, client.pending)
  }

  private deliverToReplica(replica: number, message: Uint8Array): void {
    if (this.cores[replica] !== undefined) this.drive(replica, [{ _tag: "Message", message: message.slice() }])
  }

  private onReply(message: Uint8Array): void {
    if (message[FrameLayout.command.offset] !== Command.reply) return
    const client = this.clients.find((c) => c.id === u128FromBytes(message, ReplyLayout.client.offset))
    if (client?.pending === undefined || readU32(message, ReplyLayout.request.offset) !== readU32(client.pending, RequestLayout.request.offset)) {
      if (client !== undefined) client.view = Math.max(client.view, readU32(message, FrameLayout.view.offset))
      return
    }
    if (client.request === 0) client.session = readU64(message, ReplyLayout.op.offset)
    client.context = u128FromBytes(message, ReplyLayout.context.offset)
    client.view = Math.max(client.view, readU32(message, FrameLayout.view.offset))
    client.pending = undefined
    this.replies.set(`${client.id}/${client.request}`, message)
  }

  /** The true wall-clock time now, which unskewed clocks read. */
  trueTimeNs(): bigint {
    return 1_700_000_000_000_000_000n + BigInt(this.ticks) * tickNs
  }

  private now(replica: number): { realtimeNs: bigint; monotonicNs: bigint } {
    return { realtimeNs: this.trueTimeNs() + this.skewNs[replica]!, monotonicNs: 1_000_000_000_000n + BigInt(this.ticks) * tickNs }
  }

  /** Feeds inputs to a replica and acts on its outputs (messages from `from`, if a peer sent them, already passed the cut). */
  private drive(replica: number, inputs: ReadonlyArray<Input>, from?: number): void {
    expect(from === undefined || !this.cut.has(`${from}>${replica}`)).toBe(true)
    const queue = [...inputs]
    for (let i = 0; i < queue.length && i < 100_000; i++) {
      const core = this.cores[replica]
      if (core === undefined) return
      for (const output of core.step(this.now(replica), queue[i]!)) {
        const next = this.output(replica, output)
        if (next !== undefined) queue.push(next)
      }
    }
  }

  private output(replica: number, output: Output): Input | undefined {
    switch (output._tag) {
      case "SendToReplica": {
        const name = `${replica}>${output.replica}`
        this.links.set(name, [...(this.links.get(name) ?? []), output.message])
        return undefined
      }
      case "SendToClient":
        this.onReply(output.message)
        return undefined
      case "JournalWrite":
        this.writes[replica]!.push(output.prepare.slice())
        return undefined
      case "ReadPrepare": {
        const prepare = this.journals[replica]!.get(output.op)
        return prepare !== undefined && u128FromBytes(prepare, 0) === u128FromBytes(output.checksum, 0)
          ? { _tag: "PrepareRead", prepare } : { _tag: "PrepareUnread", op: output.op }
      }
      case "ServePrepare": {
        const prepare = this.journals[replica]!.get(output.op)
        if (prepare !== undefined && u128FromBytes(prepare, 0) === u128FromBytes(output.checksum, 0)) {
          this.links.set(`${replica}>${output.replica}`, [...(this.links.get(`${replica}>${output.replica}`) ?? []), prepare])
        }
        return undefined
      }
      case "Prefetch":
        return { _tag: "PrefetchDone", op: output.op }
      case "PersistView":
        this.views[replica] = { view: output.view, logView: output.logView, commitMax: Math.max(output.commitMax, this.views[replica]?.commitMax ?? 0), headers: output.headers }
        return { _tag: "ViewPersisted", view: output.view, logView: output.logView }
      case "Committed":
        this.committed[replica]!.set(output.op, u128FromBytes(output.checksum, 0))
        return undefined
      case "StatusChanged":
        this.statuses[replica] = { status: output.status, view: output.view, primary: output.primary }
        return undefined
      case "CheckpointData":
        throw new Error("scenarios stay below the first checkpoint")
      default:
        return undefined
    }
  }
}
