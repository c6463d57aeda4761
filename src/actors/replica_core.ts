/**
 * The replica's protocol logic as a deterministic state machine (vsr.md §12.1): an input (a
 * client message, a tick, a journal completion) and the time go in; messages to send and journal
 * writes come out. No I/O, no clock, no randomness: the same inputs give the same outputs, byte
 * for byte, which is what the simulator and the WAL replay rely on.
 *
 * This is normal operation for a cluster of one (vsr.md §3 specialised, wire-protocol.md §12,
 * §13): request → prepare (hash-chained, timestamped) → journal write → commit → ledger → reply,
 * client sessions (§9 of vsr.md) and the pulse that expires pending transfers. Replication to
 * backups, view changes and repair extend this core; they do not replace it.
 */
import { assert } from "../assert.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { requestEvictionReason, type ReplicaLimits } from "../protocol/body.ts"
import { buildEviction, buildMessage, buildPongClient, buildReplyToPrepare, prepareFromRequest, u128FromBytes, u128ToBytes } from "../protocol/build.ts"
import { rootPrepare } from "../protocol/header_rules.ts"
import {
  Command, EvictionReason, FrameLayout, headerSize, isZero, PingClientLayout, PrepareLayout, readU32, ReplyLayout, RequestLayout,
  u128Equal, VsrOperation, zeroHeader
} from "../protocol/header.ts"
import { decodeMultiBatch, encodeMultiBatch } from "../protocol/multi_batch.ts"
import { Operation, type ClientOperation, eventSize, pulseExpiriesMax, resultSize } from "../protocol/operation.ts"
import { registerRequestBatchSizeLimit, registerResultBody, setRegisterRequestBatchSizeLimit } from "../protocol/register.ts"
import type { Ledger } from "../ledger/ledger.ts"

export interface ReplicaConfig {
  readonly cluster: bigint
  readonly replica: number
  readonly release: number
  readonly releaseClientMin: number
  /** The largest request body accepted (wire-protocol.md §9.2). */
  readonly batchSizeLimit: number
  /** Client sessions kept (vsr.md §9.1); the least recently committed is evicted beyond it. */
  readonly clientsMax: number
  /** Prepares written but not yet committed (vsr.md §1.5). */
  readonly pipelineMax: number
  /**
   * The newest op the journal can hold without overwriting history that a restart must replay
   * (until checkpoints exist). Requests beyond it are refused, never silently lose data.
   */
  readonly opMax: bigint
}

/** Time is an input: the shell reads the clock and stamps every step with it. */
export interface Now {
  readonly realtimeNs: bigint
}

export type Input =
  | { readonly _tag: "Message"; readonly connection: number; readonly message: Uint8Array }
  | { readonly _tag: "Closed"; readonly connection: number }
  | { readonly _tag: "Tick" }
  | { readonly _tag: "JournalWriteDone"; readonly op: bigint }

export type Output =
  | { readonly _tag: "Send"; readonly connection: number; readonly message: Uint8Array }
  | { readonly _tag: "JournalWrite"; readonly op: bigint; readonly prepare: Uint8Array }
  | { readonly _tag: "Committed"; readonly op: bigint; readonly operation: number; readonly timestamp: bigint }
  /** The journal is full up to `opMax`: nothing more can be accepted until a checkpoint exists. */
  | { readonly _tag: "JournalFull"; readonly opMax: bigint }

/** A client session (vsr.md §9.1): its number and its latest committed reply. */
interface Session {
  readonly client: bigint
  readonly session: bigint
  reply: Uint8Array
  /** Op of the latest reply: the eviction order. */
  commitOp: bigint
}

interface PipelineEntry {
  readonly op: bigint
  readonly prepare: Uint8Array
  durable: boolean
}

const ticksPerPulseCheck = 10 // 100 ms at 10 ms per tick (state-machine.md §10.5)

export class ReplicaCore {
  readonly config: ReplicaConfig
  private readonly ledger: Ledger
  private readonly view = 0
  /** The newest prepared op, the newest committed op, and the newest prepare's checksum. */
  private op = 0n
  private commit = 0n
  private parent: Uint8Array
  /** The newest prepare's timestamp: cluster time never goes back (state-machine.md §6.1). */
  private timestamp = 0n
  private readonly pipeline: Array<PipelineEntry> = []
  private readonly sessions = new Map<bigint, Session>()
  private readonly connections = new Map<bigint, number>()
  private ticks = 0
  private outputs: Array<Output> = []

  constructor(config: ReplicaConfig, ledger: Ledger) {
    assert(config.replica === 0, () => "this core runs a cluster of one replica")
    assert(config.clientsMax > 0 && config.pipelineMax > 0, () => "clientsMax and pipelineMax must be positive")
    this.config = config
    this.ledger = ledger
    this.parent = rootPrepare(u128ToBytes(config.cluster)).slice(0, checksumSize)
  }

  /** Runs one input to completion and returns what to do (vsr.md §12.1 principle 4). */
  step(now: Now, input: Input): Array<Output> {
    this.outputs = []
    switch (input._tag) {
      case "Message":
        this.onMessage(now, input.connection, input.message)
        break
      case "Closed":
        for (const [client, connection] of this.connections) if (connection === input.connection) this.connections.delete(client)
        break
      case "Tick":
        if (++this.ticks % ticksPerPulseCheck === 0) this.pulseIfDue(now)
        break
      case "JournalWriteDone":
        this.onJournalWriteDone(now, input.op)
        break
    }
    return this.outputs
  }

  /**
   * Re-executes a prepare recovered from the journal at startup, rebuilding the ledger and the
   * client table exactly as the original commit did; nothing is sent.
   */
  replay(prepare: Uint8Array): void {
    const view = new DataView(prepare.buffer, prepare.byteOffset, headerSize)
    const op = view.getBigUint64(PrepareLayout.op.offset, true)
    assert(op === this.op + 1n && this.pipeline.length === 0, () => `replay of op ${op} after op ${this.op}`)
    assert(u128Equal(prepare, PrepareLayout.parent.offset, this.parent, 0), () => `op ${op} does not chain to op ${this.op}`)
    this.op = op
    this.timestamp = view.getBigUint64(PrepareLayout.timestamp.offset, true)
    this.parent = prepare.slice(0, checksumSize)
    this.outputs = []
    this.execute(prepare)
    this.commit = op
  }

  get commitOp(): bigint {
    return this.commit
  }

  // --- requests (wire-protocol.md §12.2) ------------------------------------------------------

  private onMessage(now: Now, connection: number, message: Uint8Array): void {
    const command = message[FrameLayout.command.offset]
    if (command === Command.request) this.onRequest(now, connection, message)
    else if (command === Command.ping_client) this.onPingClient(connection, message)
    // Replica-to-replica messages have no meaning in a cluster of one; they are ignored.
  }

  private onRequest(now: Now, connection: number, request: Uint8Array): void {
    if (readU32(request, FrameLayout.view.offset) > this.view) return
    // Only the primary stamps ops; a client's request naming a timestamp is dropped (§12.1).
    if (!isZero(request, RequestLayout.timestamp.offset, RequestLayout.timestamp.offset + 8)) return
    const client = u128FromBytes(request, RequestLayout.client.offset)
    this.connections.set(client, connection)
    const eviction = requestEvictionReason(request, this.limits())
    if (eviction !== undefined) return this.evict(connection, request, eviction)
    const operation = request[RequestLayout.operation.offset]!
    const session = this.sessions.get(client)
    if (session === undefined) {
      if (operation !== VsrOperation.register) return this.evict(connection, request, EvictionReason.no_session)
      if (this.pipeline.some((entry) => u128FromBytes(entry.prepare, PrepareLayout.client.offset) === client)) return // still committing
      return this.prepare(now, request)
    }
    if (operation === VsrOperation.register) return this.resendIfDuplicate(connection, request, session, 0)
    const requestSession = readU64(request, RequestLayout.session.offset)
    if (session.session > requestSession) return this.evict(connection, request, EvictionReason.session_too_low)
    if (session.session < requestSession) return
    if (readU32(session.reply, FrameLayout.release.offset) !== readU32(request, FrameLayout.release.offset)) {
      return this.evict(connection, request, EvictionReason.session_release_mismatch)
    }
    const number = readU32(request, RequestLayout.request.offset)
    const latest = readU32(session.reply, ReplyLayout.request.offset)
    if (number <= latest) return this.resendIfDuplicate(connection, request, session, number)
    if (number !== latest + 1) return
    if (!u128Equal(request, RequestLayout.parent.offset, session.reply, ReplyLayout.context.offset)) return
    if (this.pipeline.some((entry) => u128FromBytes(entry.prepare, PrepareLayout.client.offset) === client)) return
    this.prepare(now, request)
  }

  /** A retry of the latest request gets the stored reply; anything older or different is dropped. */
  private resendIfDuplicate(connection: number, request: Uint8Array, session: Session, number: number): void {
    if (readU32(session.reply, ReplyLayout.request.offset) !== number) return
    if (!u128Equal(request, FrameLayout.checksum.offset, session.reply, ReplyLayout.request_checksum.offset)) return
    this.send(connection, session.reply)
  }

  private onPingClient(connection: number, ping: Uint8Array): void {
    const client = u128FromBytes(ping, PingClientLayout.client.offset)
    this.connections.set(client, connection)
    const session = readU64(ping, PingClientLayout.session.offset)
    if (!this.sessions.has(client) && session !== 0n && this.commit >= session) {
      return this.evict(connection, ping, EvictionReason.no_session)
    }
    const release = readU32(ping, FrameLayout.release.offset)
    if (release < this.config.releaseClientMin) return this.evict(connection, ping, EvictionReason.client_release_too_low)
    if (release > this.config.release) return this.evict(connection, ping, EvictionReason.client_release_too_high)
    this.send(connection, buildPongClient(ping, this.replicaFields()))
  }

  // --- prepare, journal, commit ---------------------------------------------------------------

  /** Turns an accepted request into the next op (vsr.md §3.3) and writes it to the journal. */
  private prepare(now: Now, request: Uint8Array): void {
    if (this.pipeline.length >= this.config.pipelineMax) return // the client retries
    if (this.journalFull()) return
    const operation = request[RequestLayout.operation.offset]!
    const body = request.subarray(headerSize)
    let bodyChanged = false
    if (operation === VsrOperation.register) {
      // The primary's limit goes into the prepare so that replay answers with the same one.
      if (registerRequestBatchSizeLimit(body) !== this.config.batchSizeLimit) {
        setRegisterRequestBatchSizeLimit(body, this.config.batchSizeLimit)
        bodyChanged = true
      }
    }
    const timestamp = this.nextTimestamp(now, requestDelta(operation, body))
    this.op += 1n
    prepareFromRequest(request, {
      view: this.view, replica: this.config.replica, parent: this.parent, parentOffset: 0,
      checkpointId: zeroChecksum, op: this.op, commit: this.commit, timestamp
    }, bodyChanged)
    this.appendToPipeline(request)
  }

  /** Injects a pulse when a pending transfer is due (state-machine.md §10.5). */
  private pulseIfDue(now: Now): void {
    if (this.pipeline.length >= this.config.pipelineMax) return
    if (this.pipeline.some((entry) => entry.prepare[PrepareLayout.operation.offset] === Operation.pulse)) return
    if (this.ledger.nextExpiry() === undefined || this.journalFull()) return
    const expiry = this.ledger.nextExpiry()
    if (expiry === undefined) return
    const horizon = this.timestamp > now.realtimeNs ? this.timestamp : now.realtimeNs
    if (expiry > horizon) return
    const header = zeroHeader(Command.prepare)
    header.cluster = this.config.cluster
    header.size = headerSize
    header.release = this.config.release
    header.parent = u128FromBytes(this.parent, 0)
    header.op = this.op + 1n
    header.commit = this.commit
    header.timestamp = this.nextTimestamp(now, pulseExpiriesMax)
    header.operation = Operation.pulse
    this.op += 1n
    this.appendToPipeline(buildMessage(header, new Uint8Array(0)))
  }

  private journalFull(): boolean {
    if (this.op < this.config.opMax) return false
    this.outputs.push({ _tag: "JournalFull", opMax: this.config.opMax })
    return true
  }

  private appendToPipeline(prepare: Uint8Array): void {
    this.parent = prepare.slice(0, checksumSize)
    this.pipeline.push({ op: this.op, prepare, durable: false })
    this.outputs.push({ _tag: "JournalWrite", op: this.op, prepare })
  }

  /** state-machine.md §6.1: strictly increasing, never behind the wall clock. */
  private nextTimestamp(now: Now, delta: number): bigint {
    const base = this.timestamp + 1n > now.realtimeNs ? this.timestamp + 1n : now.realtimeNs
    this.timestamp = base + BigInt(delta)
    return this.timestamp
  }

  /** Commits, in op order, every prepare whose journal write is done: a reply only after that. */
  private onJournalWriteDone(now: Now, op: bigint): void {
    const entry = this.pipeline.find((candidate) => candidate.op === op)
    assert(entry !== undefined && !entry.durable, () => `journal completion for op ${op} not in the pipeline`)
    entry.durable = true
    while (this.pipeline.length > 0 && this.pipeline[0]!.durable) {
      const { prepare } = this.pipeline.shift()!
      this.commit += 1n
      assert(readU64(prepare, PrepareLayout.op.offset) === this.commit, () => "commits must follow op order")
      this.execute(prepare)
    }
    this.pulseIfDue(now)
  }

  /** Applies a committed prepare: the ledger, the client table, and the reply. */
  private execute(prepare: Uint8Array): void {
    const op = readU64(prepare, PrepareLayout.op.offset)
    const timestamp = readU64(prepare, PrepareLayout.timestamp.offset)
    const operation = prepare[PrepareLayout.operation.offset]!
    this.outputs.push({ _tag: "Committed", op, operation, timestamp })
    if (operation === Operation.pulse) {
      this.ledger.pulse(timestamp)
      return
    }
    const body = operation === VsrOperation.register
      ? registerResultBody(registerRequestBatchSizeLimit(prepare.subarray(headerSize)))
      : this.executeBatches(operation as ClientOperation, prepare.subarray(headerSize), timestamp)
    const reply = buildReplyToPrepare(prepare, body, { view: this.view, replica: this.config.replica })
    const client = u128FromBytes(prepare, PrepareLayout.client.offset)
    if (operation === VsrOperation.register) this.openSession(client, op, reply)
    else {
      // A register that committed after this request was prepared may have evicted its session.
      // The op is committed and executed all the same; the client gets this reply if it is
      // still listening, and `no_session` on its next request.
      const session = this.sessions.get(client)
      if (session !== undefined) {
        session.reply = reply
        session.commitOp = op
      }
    }
    const connection = this.connections.get(client)
    if (connection !== undefined) this.send(connection, reply)
  }

  /** Executes each batch of a multi-batch body in order, each ending at its own timestamp (§4.1). */
  private executeBatches(operation: ClientOperation, body: Uint8Array, timestamp: bigint): Uint8Array {
    const batches = decodeMultiBatch(body, eventSize(operation))
    assert(Array.isArray(batches), () => "a prepared body that does not decode")
    const results: Array<Uint8Array> = []
    // Batches end at consecutive timestamps: the last at the prepare's, earlier ones before it.
    let end = timestamp - BigInt(batches.reduce((sum, batch) => sum + batchDelta(operation, batch), 0))
    for (const batch of batches) {
      end += BigInt(batchDelta(operation, batch))
      results.push(this.ledger.execute(operation, batch, end))
    }
    return encodeMultiBatch(results, resultSize(operation))
  }

  /** Registers a session at `op`, evicting the least recently committed one when full (vsr.md §9.3). */
  private openSession(client: bigint, op: bigint, reply: Uint8Array): void {
    if (this.sessions.size >= this.config.clientsMax) {
      let oldest: Session | undefined
      for (const session of this.sessions.values()) if (oldest === undefined || session.commitOp < oldest.commitOp) oldest = session
      this.sessions.delete(oldest!.client)
    }
    this.sessions.set(client, { client, session: op, reply, commitOp: op })
    assert(this.sessions.size <= this.config.clientsMax, () => "client table over its bound")
  }

  private evict(connection: number, message: Uint8Array, reason: EvictionReason): void {
    this.send(connection, buildEviction(message, reason, this.replicaFields()))
  }

  private send(connection: number, message: Uint8Array): void {
    this.outputs.push({ _tag: "Send", connection, message })
  }

  private limits(): ReplicaLimits {
    return { release: this.config.release, releaseClientMin: this.config.releaseClientMin, batchSizeLimit: this.config.batchSizeLimit }
  }

  private replicaFields() {
    return { view: this.view, replica: this.config.replica, release: this.config.release }
  }
}

const zeroChecksum = new Uint8Array(checksumSize)

/**
 * Cluster time one batch consumes (state-machine.md §6.1): one nanosecond per created event;
 * reads consume none beyond the request's own nanosecond.
 */
function batchDelta(operation: number, batch: Uint8Array): number {
  if (operation !== Operation.create_accounts && operation !== Operation.create_transfers) return 0
  return batch.length / eventSize(operation)
}

/** Cluster time a request consumes: the sum over the batches of its multi-batch body. */
function requestDelta(operation: number, body: Uint8Array): number {
  if (operation !== Operation.create_accounts && operation !== Operation.create_transfers) return 0
  const batches = decodeMultiBatch(body, eventSize(operation))
  assert(Array.isArray(batches), () => "a create body that does not decode")
  return batches.reduce((sum, batch) => sum + batchDelta(operation, batch), 0)
}

const readU64 = (bytes: Uint8Array, offset: number): bigint =>
  new DataView(bytes.buffer, bytes.byteOffset + offset, 8).getBigUint64(0, true)
