/**
 * The client session's protocol logic (wire-protocol.md §9–§11) as a deterministic state
 * machine, in the replica's shape (vsr.md §12.1): inputs (a call queued, a message received, a
 * retry timeout, the replica behind the transport stopped) and the time go in; messages to send,
 * timers to start or cancel and callers to answer come out. No Effect, no I/O, no clock, no
 * randomness, so unit tests drive every rule directly. The Effect shell around it (session.ts)
 * owns the permit, the inbox, the timers and the transport.
 *
 * What it decides:
 * - register first (request 0, session 0, a zero 256-byte RegisterRequest); the register reply
 *   names the session (its `commit`) and the body budget (`batch_size_limit`, at most 1 MiB − 256);
 *   calls queued meanwhile wait for it;
 * - then requests numbered 1, 2, …, each with `parent` = the previous reply's `context` (§9.4) and
 *   the previous request's latency, exactly one in flight (§9.3);
 * - which calls go into the next request: the oldest call's operation, and the queued calls of
 *   that operation in call order, merged into one multi-batch request (§10.2) within the body
 *   budget and the 1 MiB reply bound; a call too large alone is refused (`TooMuchData`), and the
 *   first call of the operation that does not fit closes the request, so calls go out in order;
 * - which replies are accepted (§11): of this release, for this client, for the in-flight request
 *   number, naming its checksum and its operation, with a valid RegisterResult (register) or one
 *   result batch per call (otherwise). Everything else is dropped; the official client aborts on
 *   some of it, but a session shared by a whole program must not die of one bad message;
 * - an eviction for this client in a view no older than ours stops the session for good (§9.9),
 *   and so does `halt` (an embedded replica that stopped): the calls held, and every later one,
 *   fail with `ClientEvicted` or die with the replica's defect;
 * - the view: the largest seen in an accepted reply or a pong (§9.5); requests go to its primary
 *   (`view mod replicaCount`) and, hedged, to one other replica the shell picks at random
 *   (`hedgeReplica`);
 * - retransmission: the in-flight request is re-sent byte for byte on each of its timeouts, and
 *   only its own (a timeout of an answered request is stale); the timer's schedule is §9.6's
 *   (`retryJitterTicksMax`, `retryWaitMs`), run by the shell.
 */
import { assert, unreachable } from "../assert.ts"
import { resultCountExpected } from "../protocol/body.ts"
import { buildMessage, buildMessageWith, u128FromBytes } from "../protocol/build.ts"
import {
  Command, EvictionLayout, type HeaderOf, EvictionReason, FrameLayout, headerSize, readU32, releaseScarab, replicasMax, ReplyLayout, u128Equal,
  VsrOperation, zeroHeader
} from "../protocol/header.ts"
import { batchCountMax, decodeMultiBatch, encodeMultiBatchInto, multiBatchSize, trailerSize } from "../protocol/multi_batch.ts"
import { bodySizeMax, eventSize, isQuery, resultSize, type ClientOperation } from "../protocol/operation.ts"
import { registerRequestBody, registerResultBatchSizeLimit } from "../protocol/register.ts"
import { ClientEvicted, TooMuchData } from "./errors.ts"
import { operationName } from "./ledger_service.ts"

/** What the core needs of a caller's call; the shell's calls add how to answer them. */
export interface SessionCall {
  readonly _tag: "Call"
  readonly operation: ClientOperation
  /** One batch, not multi-batch framed; already checked (`checkBatch`). */
  readonly body: Uint8Array
  /** The caller's deadline passed while the call was queued: it is not sent. */
  abandoned: boolean
}

export type SessionInput<C extends SessionCall> =
  | C
  /** A whole message from a replica, its checksums and cluster verified by the transport. */
  | { readonly _tag: "Message"; readonly message: Uint8Array }
  /** The retry timer of request `request` fired. */
  | { readonly _tag: "Timeout"; readonly request: number }
  /** The replica behind the transport stopped for good (embedded): calls die with its defect. */
  | { readonly _tag: "Halt"; readonly defect: unknown }

/** Why a session stopped for good; every call held then, and every later one, gets it. */
export type SessionStop =
  | { readonly _tag: "Evicted"; readonly error: ClientEvicted }
  | { readonly _tag: "Halted"; readonly defect: unknown }

/** What a step asks of the shell, in the order it must be done. */
export type SessionOutput<C extends SessionCall> =
  /** Send `message` to replica `primary` and, if there are others, to one of them (`hedgeReplica`). */
  | { readonly _tag: "Transmit"; readonly primary: number; readonly message: Uint8Array }
  /** Arm the retry timer of request `request` (§9.6): it posts `Timeout` inputs until cancelled. */
  | { readonly _tag: "TimerStart"; readonly request: number }
  | { readonly _tag: "TimerCancel"; readonly request: number }
  /** Fail `call`, which was never sent: it is too large for the server's budget. */
  | { readonly _tag: "Refuse"; readonly call: C; readonly error: TooMuchData }
  /** Fail `calls` with `stop`. */
  | { readonly _tag: "Stopped"; readonly stop: SessionStop; readonly calls: ReadonlyArray<C> }
  /** A message was dropped for a reason worth a debug line. */
  | { readonly _tag: "Drop"; readonly why: string }

/** Calls answered by accepted replies, and their result batches (same index). */
export interface SessionAnswers<C extends SessionCall> {
  readonly calls: ReadonlyArray<C>
  readonly results: ReadonlyArray<Uint8Array>
}

export interface SessionCoreOptions {
  readonly cluster: bigint
  /** This client's id: a random non-zero u128 (§9.1), drawn by the shell. */
  readonly clientId: bigint
  /** Replicas addressed by index (their position in the cluster's address list). */
  readonly replicaCount: number
}

export interface SessionCoreStats {
  /** Requests sent (each counted once), retransmissions, calls carried by the requests. */
  readonly requests: number
  readonly retransmissions: number
  readonly calls: number
}

/** §9.6: a tick is 10 ms, `rtt` starts at 30 ticks, the backoff's random part is capped at 999 ticks. */
export const tickMs = 10
const rttTicks = 30
const backoffTicksMax = 999
/** §9.6: the first retransmission, 60 ticks after the first send. */
export const requestTimeoutMsDefault = 60 * tickMs
/** Request numbers are u32 (§5.1); a session never reaches the last one in practice. */
const requestMax = 0xffff_ffff
const u32Max = 0xffff_ffff

interface InFlight<C> {
  readonly request: number
  readonly operation: number
  readonly message: Uint8Array
  readonly calls: ReadonlyArray<C>
}

const noOutputs: ReadonlyArray<never> = Object.freeze([])

const evictionReasonNames = new Map<number, string>(Object.entries(EvictionReason).map(([name, value]) => [value, name]))

export class SessionCore<C extends SessionCall> {
  readonly cluster: bigint
  readonly clientId: bigint
  readonly replicaCount: number
  /** The session number (the register reply's `commit`); 0 until registered. */
  session = 0n
  /** The largest request body the server accepts; 0 until registered. */
  batchSizeLimit = 0
  /** The number the next request gets. */
  requestNext = 0
  /** The latest seen in an accepted reply or a pong (§9.5). */
  view = 0
  /** The latest accepted reply's `context`, the next request's `parent` (§9.4). */
  private parent = 0n
  /** §5.1: µs from the previous request's first send to its reply, sent with the next request. */
  private previousLatencyUs = 0
  private sentAtNs = 0n
  private inFlight: InFlight<C> | undefined = undefined
  /** Set once, when the session stops for good; undefined while it runs. */
  stopped: SessionStop | undefined = undefined
  /** Calls queued, oldest first, not yet in a request. */
  private pending: Array<C> = []
  private answered: Array<C> = []
  private answers: Array<Uint8Array> = []
  private outputs: Array<SessionOutput<C>> = []
  private counters = { requests: 0, retransmissions: 0, calls: 0 }

  constructor(options: SessionCoreOptions) {
    assert(options.replicaCount >= 1, () => `${options.replicaCount} replicas`)
    assert(options.replicaCount <= replicasMax, () => `${options.replicaCount} replicas, beyond ${replicasMax}`)
    assert(options.clientId > 0n, () => "a client id is non-zero")
    assert(options.clientId < 1n << 128n, () => "a client id is a u128")
    this.cluster = options.cluster
    this.clientId = options.clientId
    this.replicaCount = options.replicaCount
  }

  /** The replica requests go to first: the primary of the latest view seen (§9.5). */
  get primary(): number {
    return this.view % this.replicaCount
  }

  /** The number of the request in flight, if any. */
  get inFlightRequest(): number | undefined {
    return this.inFlight?.request
  }

  /** Registered, running and nothing in flight: queued calls would go out at the next `pump`. */
  get readyToSend(): boolean {
    return this.inFlight === undefined && this.session !== 0n && this.stopped === undefined
  }

  get stats(): SessionCoreStats {
    return { ...this.counters }
  }

  /** Sends the register (request 0); once, first. */
  start(nowNs: bigint): void {
    assert(this.requestNext === 0, () => "a session registers once, first")
    assert(this.inFlight === undefined, () => "nothing in flight before the register")
    assert(this.stopped === undefined, () => "a stopped session does not register")
    this.sendRequest(VsrOperation.register, [], nowNs)
    assert(this.inFlightRequest === 0, () => "the register is in flight")
    assert(this.counters.requests === 1, () => "the register is the first request")
  }

  /** Applies the inputs in order, then sends the next request if it can: calls that arrived together go out together. */
  apply(inputs: ReadonlyArray<SessionInput<C>>, nowNs: bigint): void {
    assert(this.outputs.length === 0, () => "the previous step's outputs were taken")
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i]!
      switch (input._tag) {
        case "Call":
          this.call(input as C)
          break
        case "Message":
          this.receive(input.message, nowNs)
          break
        case "Timeout":
          this.timeout(input.request)
          break
        case "Halt":
          this.halt(input.defect)
          break
        default:
          unreachable(input as never)
      }
    }
    this.pump(nowNs)
    assert(this.stopped === undefined || this.pending.length === 0, () => "a stopped session queues nothing")
  }

  /** A call is queued; a stopped session fails it at once. Runs once per event under fan-in: a push, no more. */
  call(call: C): void {
    // Cheap checks only: this runs once per event. (Its deadline may already have passed: it is then skipped by `choose`.)
    assert(call._tag === "Call", () => "a call")
    assert(call.body.length <= bodySizeMax, () => "a call holds one checked batch")
    assert(this.stopped === undefined || this.pending.length === 0, () => "a stopped session queues nothing")
    if (this.stopped !== undefined) {
      this.outputs.push({ _tag: "Stopped", stop: this.stopped, calls: [call] })
      return
    }
    this.pending.push(call)
  }

  /** The retry timer of `request` fired: the identical bytes go out again if it is still in flight (§9.6). */
  timeout(request: number): void {
    assert(request >= 0, () => `a timeout for request ${request}`)
    assert(request < this.requestNext, () => `a timeout for request ${request}, never sent`)
    const current = this.inFlight
    if (current === undefined || current.request !== request) return // answered meanwhile: a stale timeout
    this.counters.retransmissions++
    this.transmit(current.message)
    assert(this.inFlight === current, () => "a retransmission changes nothing in flight")
  }

  /** The replica behind the transport stopped for good: everything held dies with `defect`. */
  halt(defect: unknown): void {
    assert(this.stopped === undefined || this.inFlight === undefined, () => "a stopped session holds nothing in flight")
    if (this.stopped === undefined) this.stop({ _tag: "Halted", defect })
    assert(this.stopped !== undefined, () => "a halted session is stopped")
    assert(this.inFlight === undefined, () => "a halted session holds nothing in flight")
  }

  /** A verified message from a replica (§11); anything but a reply, an eviction or a pong is ignored. */
  receive(message: Uint8Array, nowNs: bigint): void {
    assert(message.length >= headerSize, () => "a message has a whole header")
    const viewBefore = this.view
    switch (message[FrameLayout.command.offset]) {
      case Command.reply:
        this.receiveReply(message, nowNs)
        break
      case Command.eviction:
        this.receiveEviction(message)
        break
      case Command.pong_client:
        this.view = Math.max(this.view, readU32(message, FrameLayout.view.offset))
        break
      default:
        break
    }
    assert(this.view >= viewBefore, () => "the view only grows")
    assert(this.view <= u32Max, () => "the view is a u32")
  }

  /** Sends the next request if none is in flight: the oldest call and the queued calls of its operation that fit. */
  pump(nowNs: bigint): void {
    if (!this.readyToSend) return
    // Each pass sends a request, or refuses at least the oldest call as too large for the budget.
    for (let passes = this.pending.length + 1; passes > 0; passes--) {
      const oldest = this.pending.find((call) => !call.abandoned)
      if (oldest === undefined) {
        this.pending = []
        return
      }
      const chosen = this.choose(oldest.operation)
      if (chosen.length > 0) {
        this.sendRequest(oldest.operation, chosen, nowNs)
        assert(this.inFlight !== undefined, () => "pump: a request went out")
        return
      }
    }
    assert(false, () => "pump: every pass sends a request or refuses a call")
  }

  /** What a step asked for, in order; the shell does it all before the next step. The core never changes it afterwards. */
  takeOutputs(): ReadonlyArray<SessionOutput<C>> {
    if (this.outputs.length === 0) return noOutputs
    const outputs = this.outputs
    this.outputs = []
    assert(outputs !== this.outputs, () => "outputs are taken once")
    assert(outputs.length > 0, () => "a take of outputs holds some")
    return outputs
  }

  /** The calls answered since the last take (undefined: none), to be resumed after the step's sends. */
  takeAnswered(): SessionAnswers<C> | undefined {
    if (this.answered.length === 0) return undefined
    const answers = { calls: this.answered, results: this.answers }
    this.answered = []
    this.answers = []
    assert(answers.calls.length === answers.results.length, () => "one result batch per answered call")
    assert(answers.calls.length > 0, () => "a take of answers holds some")
    return answers
  }

  /** A `ping_client` for every replica (§9.7), stamped `timestampNs`, carrying the session. */
  ping(timestampNs: bigint): Uint8Array {
    assert(timestampNs >= 0n, () => "a ping's timestamp is a u64")
    const header = zeroHeader(Command.ping_client)
    header.cluster = this.cluster
    header.release = releaseScarab
    header.client = this.clientId
    header.session = this.session
    header.ping_timestamp_monotonic = timestampNs
    const ping = buildMessage(header, new Uint8Array(0))
    assert(ping.length === headerSize, () => "a ping is a bare header")
    return ping
  }

  /** Every call the core holds, anywhere (in flight, queued, answered, in outputs): the shell's finalizer interrupts them. */
  held(): Array<C> {
    const calls: Array<C> = [...(this.inFlight?.calls ?? []), ...this.pending, ...this.answered, ...callsIn(this.outputs)]
    assert(this.stopped === undefined || this.inFlight === undefined, () => "a stopped session holds nothing in flight")
    assert(this.stopped === undefined || this.pending.length === 0, () => "a stopped session queues nothing")
    return calls
  }

  /** §11: what is accepted from a reply; everything else is dropped (the official client aborts on some of it). */
  private receiveReply(message: Uint8Array, nowNs: bigint): void {
    assert(message[FrameLayout.command.offset] === Command.reply, () => "a reply")
    const current = this.inFlight
    if (current === undefined) return
    if (readU32(message, FrameLayout.release.offset) !== releaseScarab) return this.drop("a reply of another release")
    if (u128FromBytes(message, ReplyLayout.client.offset) !== this.clientId) return
    if (readU32(message, ReplyLayout.request.offset) !== current.request) return // a stale duplicate
    if (!u128Equal(message, ReplyLayout.request_checksum.offset, current.message, FrameLayout.checksum.offset)) {
      return this.drop(`a reply to request ${current.request} names another request's checksum`)
    }
    if (message[ReplyLayout.operation.offset] !== current.operation) return this.drop("a reply with another operation")
    const body = message.subarray(headerSize)
    if (current.operation === VsrOperation.register) {
      const limit = registerResultBatchSizeLimit(body)
      const commit = u64FromBytes(message, ReplyLayout.commit.offset)
      if (limit === undefined || commit === 0n) return this.drop("an invalid register reply")
      this.session = commit
      this.batchSizeLimit = Math.min(limit, bodySizeMax)
    } else {
      const batches = decodeMultiBatch(body, resultSize(current.operation as ClientOperation))
      if (!Array.isArray(batches) || batches.length !== current.calls.length) {
        return this.drop(`a reply whose body does not hold ${current.calls.length} result batches`)
      }
      for (let i = 0; i < batches.length; i++) {
        this.answered.push(current.calls[i]!)
        this.answers.push(batches[i]!)
      }
    }
    this.view = Math.max(this.view, readU32(message, FrameLayout.view.offset))
    this.parent = u128FromBytes(message, ReplyLayout.context.offset)
    this.inFlight = undefined
    // The Clock's time is wall time, which may step back: a negative latency is sent as 0 (it is only a hint).
    const latencyUs = (nowNs - this.sentAtNs) / 1000n
    this.previousLatencyUs = latencyUs > BigInt(u32Max) ? u32Max : latencyUs < 0n ? 0 : Number(latencyUs)
    this.outputs.push({ _tag: "TimerCancel", request: current.request })
    assert(this.session !== 0n, () => "an accepted reply is of a registered session")
    assert(this.requestNext === current.request + 1, () => "an accepted reply answers the latest request")
  }

  /** §9.9: an eviction for this client, in our view or a newer one, stops the session for good. */
  private receiveEviction(message: Uint8Array): void {
    assert(message[FrameLayout.command.offset] === Command.eviction, () => "an eviction")
    if (this.stopped !== undefined || u128FromBytes(message, EvictionLayout.client.offset) !== this.clientId) return
    if (readU32(message, FrameLayout.view.offset) < this.view) return
    const reason = message[EvictionLayout.reason.offset]!
    this.stop({ _tag: "Evicted", error: new ClientEvicted({ reason: evictionReasonNames.get(reason) ?? `reason ${reason}` }) })
    assert(this.inFlight === undefined, () => "an evicted session holds no call in flight")
    assert(this.pending.length === 0, () => "an evicted session queues no call")
  }

  /** Ends the session: the calls in flight and queued, and every later one, get `stop`. */
  private stop(stop: SessionStop): void {
    assert(this.stopped === undefined, () => "a session stops once")
    this.stopped = stop
    const calls: Array<C> = []
    if (this.inFlight !== undefined) {
      this.outputs.push({ _tag: "TimerCancel", request: this.inFlight.request })
      calls.push(...this.inFlight.calls)
      this.inFlight = undefined
    }
    calls.push(...this.pending)
    this.pending = []
    if (calls.length > 0) this.outputs.push({ _tag: "Stopped", stop, calls })
    assert(this.inFlight === undefined, () => "a stopped session holds no call in flight")
    assert(this.pending.length === 0, () => "a stopped session queues no call")
  }

  /** Builds the next request from `calls` (register: none, its fixed body) and sends it. */
  private sendRequest(operation: number, calls: ReadonlyArray<C>, nowNs: bigint): void {
    assert(this.inFlight === undefined, () => "one request in flight at a time")
    assert(this.stopped === undefined, () => "a stopped session sends nothing")
    assert(this.requestNext <= requestMax, () => "request numbers are u32")
    assert((operation === VsrOperation.register) === (this.requestNext === 0), () => "the register first, and only first")
    assert((calls.length === 0) === (this.requestNext === 0), () => "calls after the register, in every request after it")
    const header = zeroHeader(Command.request)
    header.cluster = this.cluster
    header.release = releaseScarab
    header.view = this.view
    header.parent = this.parent
    header.client = this.clientId
    header.session = this.session
    header.request = this.requestNext
    header.operation = operation
    header.previous_request_latency = this.previousLatencyUs
    const message = operation === VsrOperation.register
      ? buildMessage(header, registerRequestBody())
      : encodeRequest(header, operation as ClientOperation, calls)
    assert(operation === VsrOperation.register || message.length - headerSize <= this.batchSizeLimit, () => "a request body fits the budget")
    this.sentAtNs = nowNs
    // The timer first, so the timeout counts from this send (and a test clock sees it armed).
    this.outputs.push({ _tag: "TimerStart", request: this.requestNext })
    this.inFlight = { request: this.requestNext, operation, message, calls }
    this.requestNext++
    this.counters.requests++
    this.counters.calls += calls.length
    this.transmit(message)
  }

  private transmit(message: Uint8Array): void {
    assert(this.inFlight !== undefined, () => "a request is transmitted while in flight")
    assert(this.inFlight.message === message, () => "only the request in flight is transmitted")
    assert(this.primary < this.replicaCount, () => "the primary is one of the replicas")
    this.outputs.push({ _tag: "Transmit", primary: this.primary, message })
  }

  private drop(why: string): void {
    this.outputs.push({ _tag: "Drop", why })
  }

  /**
   * Takes out of `pending`, in order, the calls of `operation` that fit in one request (and drops
   * abandoned ones); the rest keep their order. A first call too large even alone is refused. A
   * plain loop with the request's sizes computed once: under fan-in it runs once per event.
   */
  private choose(operation: ClientOperation): Array<C> {
    assert(this.batchSizeLimit > 0, () => "calls are chosen once registered")
    const pending = this.pending
    const before = pending.length
    let removed = 0
    const event = eventSize(operation)
    const result = resultSize(operation)
    const query = isQuery(operation)
    const chosen: Array<C> = []
    let kept = 0
    let events = 0
    let results = 0
    let closed = false
    for (let i = 0; i < pending.length; i++) {
      const call = pending[i]!
      if (call.abandoned) {
        removed++
        continue
      }
      if (call.operation !== operation || closed) {
        pending[kept++] = call
        continue
      }
      const eventsNext = events + call.body.length / event
      const resultsNext = results + (query ? resultCountExpected(operation, call.body) : call.body.length / event)
      const batches = chosen.length + 1
      if (eventsNext * event + trailerSize(event, batches) <= this.batchSizeLimit && resultsNext * result + trailerSize(result, batches) <= bodySizeMax) {
        chosen.push(call)
        events = eventsNext
        results = resultsNext
        closed = chosen.length === batchCountMax
      } else if (chosen.length === 0) {
        removed++
        // Only a server with a smaller budget than TigerBeetle's default refuses a single checked batch.
        this.outputs.push({
          _tag: "Refuse", call, error: new TooMuchData({
            operation: operationName(operation), count: call.body.length / event,
            max: Math.floor((this.batchSizeLimit - trailerSize(event, 1)) / event)
          })
        })
      } else {
        // Later calls of this operation wait too, so calls go out in the order they were made.
        closed = true
        pending[kept++] = call
      }
    }
    pending.length = kept
    assert(kept + chosen.length + removed === before, () => "choose: every call is chosen, kept or removed")
    assert(chosen.length <= batchCountMax, () => "choose: at most batchCountMax batches")
    return chosen
  }
}

/** The calls that outputs answer (refused or stopped): outputs taken but not yet done still hold them. */
export function callsIn<C extends SessionCall>(outputs: ReadonlyArray<SessionOutput<C>>): Array<C> {
  const calls: Array<C> = []
  for (const output of outputs) {
    if (output._tag === "Refuse") calls.push(output.call)
    else if (output._tag === "Stopped") {
      // stop() and call() output a stop only with calls to fail.
      assert(output.calls.length > 0, () => "a stop output fails calls")
      calls.push(...output.calls)
    }
  }
  // Each call is answered once: refused, or failed by one stop.
  assert(new Set(calls).size === calls.length, () => "a call answered twice")
  return calls
}

/**
 * §9.5 hedging: the other replica a request also goes to, `offset` (drawn uniformly from
 * 1 … replicaCount − 1 by the shell) places after the primary.
 */
export function hedgeReplica(primary: number, replicaCount: number, offset: number): number {
  assert(replicaCount > 1, () => "a hedge needs another replica")
  assert(replicaCount <= replicasMax, () => `${replicaCount} replicas`)
  assert(primary >= 0, () => `primary ${primary}`)
  assert(primary < replicaCount, () => `primary ${primary} of ${replicaCount}`)
  assert(Number.isInteger(offset), () => `hedge offset ${offset}`)
  assert(offset >= 1, () => `hedge offset ${offset} of ${replicaCount}`)
  assert(offset < replicaCount, () => `hedge offset ${offset} of ${replicaCount}`)
  const other = (primary + offset) % replicaCount
  assert(other !== primary, () => "a hedged copy goes to another replica")
  return other
}

/** §9.6: the random part of the wait after firing `attempt` (u8, from 1) is drawn from 0 … this. */
export function retryJitterTicksMax(attempt: number): number {
  assert(Number.isInteger(attempt), () => `attempt ${attempt} is a u8`)
  assert(attempt >= 0, () => `attempt ${attempt} is a u8`)
  assert(attempt <= 0xff, () => `attempt ${attempt} is a u8`)
  const max = Math.min(backoffTicksMax, 2 ** attempt)
  assert(max >= 1, () => "the jitter may be positive")
  assert(max <= backoffTicksMax, () => "the jitter is bounded")
  return max
}

/** §9.6: the wait, in ms, before the next retransmission: 2·rtt + 1 + the jitter, in ticks. */
export function retryWaitMs(jitterTicks: number): number {
  assert(Number.isInteger(jitterTicks), () => `jitter ${jitterTicks} ticks`)
  assert(jitterTicks >= 0, () => `jitter ${jitterTicks} ticks`)
  assert(jitterTicks <= backoffTicksMax, () => `jitter ${jitterTicks} ticks, beyond ${backoffTicksMax}`)
  const waitMs = (2 * rttTicks + 1 + jitterTicks) * tickMs
  assert(waitMs > 0, () => "a retry waits")
  return waitMs
}

/** The calls' batches as one multi-batch request body (§10.2). */
function encodeRequest(header: HeaderOf<typeof Command.request>, operation: ClientOperation, calls: ReadonlyArray<SessionCall>): Uint8Array {
  assert(calls.length > 0, () => "a request carries calls")
  assert(calls.length <= batchCountMax, () => "a request carries batchCountMax calls at most")
  assert(calls.every((call) => call.operation === operation), () => "a request carries calls of its operation")
  const bodies = calls.map((call) => call.body)
  const size = eventSize(operation)
  const message = buildMessageWith(header, multiBatchSize(bodies, size), (body) => encodeMultiBatchInto(body, bodies, size))
  assert((message.length - headerSize) % size === 0, () => "a request body is whole events")
  return message
}

function u64FromBytes(bytes: Uint8Array, offset: number): bigint {
  assert(offset >= 0, () => `offset ${offset}`)
  assert(offset + 8 <= bytes.length, () => `a u64 at ${offset} beyond ${bytes.length} bytes`)
  let value = 0n
  for (let i = 7; i >= 0; i--) value = (value << 8n) | BigInt(bytes[offset + i]!)
  return value
}
