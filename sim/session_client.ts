/**
 * The simulator's clients (simulation.md §6): each is the shipping client session
 * (src/client/session.ts, built by `makeSession`, called through `makeLedger(…).submit`, as
 * `layerClient` and `layerEmbedded` do) over a simulated transport on the `SimNetwork`. The
 * session runs as Effect fibers on the simulator's scheduler, with the simulator's clients'
 * `SimClock` as its Clock (so its retry and ping timers are simulated time) and Effect's Random
 * seeded from the run's seed by name (so its client id and its retry jitter are too).
 *
 * The transport plays the part of the TCP transport (src/client/transport_tcp.ts): it knows every
 * replica of the cluster (the session sends each request to the primary of the view it knows and
 * hedges it to one other replica, and pings them all), opens a connection to a replica when it
 * has none, frames what arrives with the production `MessageFramer` (a corrupted message closes
 * the connection, which the next send reopens) and closes its connections when the session ends.
 * It also watches every verified message on its way to the session, where the raw replies are,
 * and checks them (sim/checker.ts): a reply names this
 * client and a request it sent, with that request's checksum; the first reply to each request is
 * judged against the reference model; a second reply to one request is byte-identical to the
 * first; and each call's result batch is the one the reply holds for that call's batch.
 */
import { Cause, Clock, Effect, Fiber, Logger, Option, Queue, Random as EffectRandom, References } from "effect"
import { makeLedger, type LedgerApi } from "../src/client/ledger_service.ts"
import { makeSession, type Session, type TransportFactory } from "../src/client/session.ts"
import { u128FromBytes, u128ToBytes } from "../src/protocol/build.ts"
import { Command, EvictionLayout, FrameLayout, headerSize, readU32, ReplyLayout, RequestLayout, u128Equal } from "../src/protocol/header.ts"
import { MessageFramer, type FrameSink } from "../src/protocol/framing.ts"
import { decodeMultiBatch } from "../src/protocol/multi_batch.ts"
import { eventSize, resultSize, type ClientOperation } from "../src/protocol/operation.ts"
import { registerResultBatchSizeLimit } from "../src/protocol/register.ts"
import { equal, readU64, type Checker } from "./checker.ts"
import type { SimNetwork } from "./network.ts"
import { streamSeed } from "./random.ts"
import type { SimClock, SimScheduler } from "./runtime.ts"
import { Trace, type TraceHash } from "./trace.ts"
import type { GeneratedRequest } from "./workload.ts"

export interface SimClientOptions {
  /** The client's slot: its network paths (`client k`) stay the same across incarnations. */
  readonly index: number
  /** The Random stream of this incarnation, derived from the run's seed by name. */
  readonly seed: bigint
  readonly randomName: string
  readonly cluster: bigint
  /** The session's first retransmission (its `requestTimeoutMs` option). */
  readonly requestTimeoutMs: number
  /** The session's `burstBytes` option, when the run draws one. */
  readonly burstBytes?: number
  readonly network: SimNetwork
  readonly clock: SimClock
  readonly scheduler: SimScheduler
  readonly checker: Checker
  readonly trace: TraceHash
  /** Debug log (the simulator's `--log=debug`). */
  readonly log: ((line: string) => void) | undefined
}

/** One client incarnation: a session, started on demand, and the calls the simulator makes on it. */
export class SimClient {
  readonly index: number
  private readonly options: SimClientOptions
  readonly transport: SimTransport
  /** The session was started (its register goes out at once). */
  started = false
  /** A call failed with `ClientEvicted`: this session is over, and the simulator starts a new client. */
  evicted = false
  private registeredSeen = false
  /** Calls made and not yet completed. */
  private outstanding = 0
  private session: Session | undefined = undefined
  private fiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
  private work: Queue.Queue<GeneratedRequest> | undefined = undefined

  constructor(options: SimClientOptions) {
    this.index = options.index
    this.options = options
    this.transport = new SimTransport(options)
  }

  /** The session's register was answered (its `stats` name the session; asked once a reply to it arrived). */
  get registered(): boolean {
    if (!this.registeredSeen && this.session !== undefined && this.transport.registerAnswered) {
      this.registeredSeen = Effect.runSync(this.session.stats).session !== 0n
    }
    return this.registeredSeen
  }

  /** Nothing outstanding, the register included: the simulator may start the session or make a call. */
  get idle(): boolean {
    return !this.evicted && (!this.started || (this.outstanding === 0 && this.registered))
  }

  get retriesSent(): number {
    return this.transport.retriesSent
  }

  get reregistrations(): number {
    return this.transport.reregistrations
  }

  /** Steps its callers ran themselves for a burst (the session's `burstSteps`). */
  get burstSteps(): number {
    return this.session === undefined ? 0 : Effect.runSync(this.session.stats).burstSteps
  }

  /** Starts the session: its register goes out when the scheduler next runs. */
  start(): void {
    const client = this
    const { clock, scheduler, log } = this.options
    this.started = true
    const program = Effect.gen(function* () {
      const work = yield* Queue.unbounded<GeneratedRequest>()
      client.work = work
      const session = yield* makeSession({
        cluster: client.options.cluster,
        transport: client.transport.factory,
        requestTimeoutMs: client.options.requestTimeoutMs,
        ...(client.options.burstBytes === undefined ? {} : { burstBytes: client.options.burstBytes })
      })
      client.session = session
      const ledger = makeLedger(session.call)
      while (true) {
        const request = yield* Queue.take(work)
        // One call per batch, all at once: the session merges them into multi-batch requests
        // (auto-batching), one in flight at a time; with a low `burstBytes` a later caller sends
        // the first ones itself.
        for (const batch of request.batches) yield* Effect.forkChild(client.call(ledger, request.operation, batch))
      }
    }).pipe(
      Effect.scoped,
      Effect.provideService(Clock.Clock, clock),
      EffectRandom.withSeed(String(streamSeed(this.options.seed, this.options.randomName))),
      Effect.provideService(References.CurrentLoggers, new Set(log === undefined ? [] : [Logger.make<unknown, void>(({ message }) => {
        log(`client ${client.index}: ${Array.isArray(message) ? message.join(" ") : String(message)}`)
      })])),
      Effect.provideService(References.MinimumLogLevel, log === undefined ? "None" : "Debug")
    )
    this.fiber = Effect.runFork(program, { scheduler })
  }

  /** Makes the calls of one workload request (its batches, each a call) on the registered session. */
  issue(request: GeneratedRequest): void {
    this.outstanding += request.batches.length
    Queue.offerUnsafe(this.work!, request)
  }

  /** Ends the session (its scope closes: waiting calls are interrupted, the connection closes). */
  stop(): void {
    const fiber = this.fiber
    if (fiber === undefined) return
    this.fiber = undefined
    Effect.runFork(Fiber.interrupt(fiber), { scheduler: this.options.scheduler })
  }

  private call(ledger: LedgerApi, operation: ClientOperation, batch: Uint8Array): Effect.Effect<void> {
    return Effect.matchCause(ledger.submit(operation, batch), {
      onSuccess: (result) => {
        this.outstanding--
        this.transport.checkResult(operation, batch, result)
      },
      onFailure: (cause) => {
        this.outstanding--
        const error = Cause.findErrorOption(cause)
        if (Option.isSome(error) && error.value._tag === "ClientEvicted") {
          this.options.log?.(`client ${this.index}: a call failed: ${error.value.message}`)
          this.evicted = true
        } else if (!Cause.hasInterruptsOnly(cause)) {
          this.options.checker.fail("client_call_fails", `client ${this.index}: ${Cause.pretty(cause).split("\n")[0]}`)
        }
      }
    })
  }
}

/** The first reply to a request, split into batches: each call's result must be its batch's. */
interface Answer {
  readonly operation: number
  readonly batches: ReadonlyArray<Uint8Array>
  readonly results: ReadonlyArray<Uint8Array>
}

/** The session's transport over the simulated network, and the checks on what it receives. */
class SimTransport {
  private readonly options: SimClientOptions
  private readonly clusterBytes: Uint8Array
  /** The session's client id, read from its first request (its register). */
  private clientId: bigint | undefined = undefined
  private deliver: ((message: Uint8Array) => void) | undefined = undefined
  private closed = false
  /** The connection sends to each replica go on (0: none), and a framer for each open connection. */
  private readonly connections: Array<number>
  private readonly framers = new Map<number, MessageFramer>()
  /** The newest request's number and the time it was last sent: its copies sent at once (the hedge) are no retries. */
  private sentAt = { number: -1, at: -1 }
  /** Requests sent and not yet answered, by number; the newest number sent. */
  private readonly unanswered = new Map<number, Uint8Array>()
  private requestNewest = -1
  /** The first reply received to each request number: later copies must be identical. */
  private readonly replies = new Map<number, Uint8Array>()
  private answer: Answer | undefined = undefined
  retriesSent = 0
  /** Replies to a register re-executed after an eviction (a late duplicate of the register). */
  reregistrations = 0
  private readonly sink: FrameSink

  constructor(options: SimClientOptions) {
    this.options = options
    this.clusterBytes = u128ToBytes(options.cluster)
    this.connections = Array.from({ length: options.network.replicaCount }, () => 0)
    this.sink = {
      message: (message) => this.receive(message),
      dropped: () => {
        options.network.stats.rejected++
      }
    }
  }

  /** A reply to the register arrived (the session may have accepted it). */
  get registerAnswered(): boolean {
    return this.replies.has(0)
  }

  readonly factory: TransportFactory = (deliver) => {
    const transport = this
    return Effect.gen(function* () {
      transport.deliver = deliver
      yield* Effect.addFinalizer(() => Effect.sync(() => transport.close()))
      return { replicaCount: transport.connections.length, send: (replica: number, message: Uint8Array) => Effect.sync(() => transport.send(replica, message)) }
    })
  }

  /** The network delivers bytes on one of this client's connections. */
  onMessage(connection: number, bytes: Uint8Array): void {
    const framer = this.framers.get(connection)
    if (framer === undefined || this.closed) return
    if (framer.feed(bytes, this.sink) !== undefined) {
      // The production rule (transport_tcp.ts): a peer that breaks the framing is disconnected.
      this.options.network.stats.rejected++
      this.disconnect(connection)
    }
  }

  onClosed(connection: number): void {
    this.framers.delete(connection)
    this.forget(connection)
  }

  private send(replica: number, message: Uint8Array): void {
    if (this.closed) return
    const { network, clock, trace, log } = this.options
    if (message[FrameLayout.command.offset] === Command.request) {
      this.clientId ??= u128FromBytes(message, RequestLayout.client.offset)
      const number = readU32(message, RequestLayout.request.offset)
      const again = number === this.sentAt.number && clock.now === this.sentAt.at
      this.sentAt = { number, at: clock.now }
      if (again) {
        // The same request hedged to another replica in the same instant: one send, not a retry.
      } else if (number <= this.requestNewest) {
        this.retriesSent++
        log?.(`client ${this.options.index}: retry of request ${number}`)
      } else {
        this.requestNewest = number
        this.unanswered.set(number, message)
        trace.addBytes(Trace.request, message, 0, 16)
        log?.(`client ${this.options.index}: request ${number} (operation ${message[RequestLayout.operation.offset]}, ${message.length - headerSize} body bytes)`)
      }
    }
    let connection = this.connections[replica]!
    if (connection === 0 || !network.isOpen(connection)) {
      if (connection !== 0) this.framers.delete(connection)
      connection = network.connect(this.options.index, replica)
      this.connections[replica] = connection
      this.framers.set(connection, new MessageFramer(this.clusterBytes))
    }
    network.sendToReplica(connection, message, clock.now)
  }

  /** The connection is gone: the next send to its replica opens another. */
  private forget(connection: number): void {
    const replica = this.connections.indexOf(connection)
    if (replica !== -1) this.connections[replica] = 0
  }

  private close(): void {
    this.closed = true
    for (const connection of [...this.framers.keys()]) this.disconnect(connection)
  }

  private disconnect(connection: number): void {
    this.framers.delete(connection)
    this.forget(connection)
    this.options.network.closeFromClient(connection)
  }

  /** A verified message: checked, then handed to the session (duplicates and all, as over TCP). */
  private receive(message: Uint8Array): void {
    this.observe(message)
    this.deliver?.(message)
  }

  private observe(message: Uint8Array): void {
    const { checker, trace, log, index } = this.options
    const command = message[FrameLayout.command.offset]
    if (command === Command.eviction) {
      if (u128FromBytes(message, EvictionLayout.client.offset) !== this.clientId) return
      trace.add(Trace.eviction, index, message[EvictionLayout.reason.offset]!)
      log?.(`client ${index}: eviction received (reason ${message[EvictionLayout.reason.offset]})`)
      return
    }
    if (command !== Command.reply) return
    if (u128FromBytes(message, ReplyLayout.client.offset) !== this.clientId) {
      checker.fail("reply_to_wrong_client", `client ${index} received a reply for another client`)
      return
    }
    const number = readU32(message, ReplyLayout.request.offset)
    const first = this.replies.get(number)
    if (first !== undefined) {
      // A duplicated register delivered after this client's session was evicted registers it
      // again as a new op (the protocol cannot tell; simulation.md §6): a different op, not a
      // different answer to the same commit.
      if (number === 0 && readU64(message, ReplyLayout.op.offset) !== readU64(first, ReplyLayout.op.offset)) {
        this.reregistrations++
        return
      }
      if (!equal(first, message)) checker.fail("retry_reply_identical", `client ${index} request ${number}: a second reply differs from the first`)
      return
    }
    const request = this.unanswered.get(number)
    if (request === undefined) {
      if (number > this.requestNewest) checker.fail("reply_to_unsent_request", `client ${index} never sent request ${number}`)
      return
    }
    if (!u128Equal(message, ReplyLayout.request_checksum.offset, request, FrameLayout.checksum.offset)) {
      checker.fail("reply_request_checksum", `client ${index} request ${number}: the reply names another request`)
      return
    }
    const reply = message.slice()
    this.replies.set(number, reply)
    this.unanswered.delete(number)
    checker.onReply(request, reply)
    const operation = reply[ReplyLayout.operation.offset]!
    if (number === 0) {
      if (registerResultBatchSizeLimit(reply.subarray(headerSize)) === undefined) checker.fail("register_reply", "invalid RegisterResult")
    } else {
      const batches = decodeMultiBatch(request.subarray(headerSize), eventSize(operation as ClientOperation))
      const results = decodeMultiBatch(reply.subarray(headerSize), resultSize(operation as ClientOperation))
      if (Array.isArray(batches) && Array.isArray(results)) this.answer = { operation, batches, results }
    }
    trace.addBytes(Trace.reply, reply, 0, 16)
    log?.(`client ${index}: reply to request ${number} (operation ${operation}) at op ${readU64(reply, ReplyLayout.op.offset)}, ${reply.length - headerSize} body bytes`)
  }

  /**
   * A call completed with `result`: the session must hand each caller the result batch of its
   * own batch in the reply just received (calls resume in the step that accepted the reply).
   */
  checkResult(operation: ClientOperation, batch: Uint8Array, result: Uint8Array): void {
    const answer = this.answer
    if (answer !== undefined && answer.operation === operation) {
      for (let i = 0; i < answer.batches.length; i++) if (equal(answer.batches[i]!, batch) && equal(answer.results[i]!, result)) return
    }
    this.options.checker.fail("call_result_of_its_batch", `client ${this.options.index}: a call's result is not the reply's result for its batch`)
  }
}
