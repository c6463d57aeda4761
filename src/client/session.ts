/**
 * A client session (wire-protocol.md §9–§11) over any transport: the part of the official client
 * that is neither the API nor the sockets. An actor fiber steps the session state (and, for a
 * burst, a caller does, under the same one permit):
 *
 * - register first (request 0, session 0, a zero 256-byte RegisterRequest); calls made meanwhile
 *   wait and go out after the register reply, which names the session and the body budget;
 * - then requests numbered 1, 2, …, each with `parent` = the previous reply's `context` (§9.4),
 *   exactly one in flight (§9.3); a reply is accepted only if it names this client, the in-flight
 *   request number, its checksum and its operation (§11);
 * - calls of one operation are merged into one multi-batch request (§10.2), within the body
 *   budget and the 1 MiB reply bound; each caller gets its own result batch. Calls wait while a
 *   request is in flight, and calls made together (in one turn of the event loop) go out together;
 *   but a burst that has queued half a request while nothing is in flight is sent at once by the
 *   caller that finds it, so the cluster works on it while the burst goes on (see `call`);
 * - the identical bytes are re-sent on a timer (§9.6: first after 600 ms, then 2·rtt + 1 + a
 *   random backoff in ticks), forever: the network never fails a call;
 * - an eviction (§9.9) fails the in-flight and queued calls, and every later one, with
 *   `ClientEvicted`;
 * - a caller may set a deadline (`RequestDeadline`): when it passes, the call fails with
 *   `OutcomeUnknown` carrying its ids; the request may still commit, and the session goes on.
 *
 * Pings go to every replica every 30 s; their pongs, like replies, raise the view.
 * Requests go to the primary of the latest view seen (`view mod replicaCount`) and to one other
 * replica chosen at random (§9.5 hedging). Time comes from the Clock, randomness from Random.
 */
import { Clock, Context, Duration, Effect, Fiber, Option, Queue, Random, Scope, Semaphore } from "effect"
import { assert } from "../assert.ts"
import { resultCountExpected } from "../protocol/body.ts"
import { buildMessage, buildMessageWith, u128FromBytes } from "../protocol/build.ts"
import {
  Command, EvictionLayout, EvictionReason, FrameLayout, headerSize, readU32, releaseScarab, ReplyLayout, u128Equal,
  VsrOperation, zeroHeader
} from "../protocol/header.ts"
import { batchCountMax, decodeMultiBatch, encodeMultiBatchInto, multiBatchSize, trailerSize } from "../protocol/multi_batch.ts"
import { bodySizeMax, eventSize, idSize, isQuery, Operation, resultSize, type ClientOperation } from "../protocol/operation.ts"
import { registerRequestBody, registerResultBatchSizeLimit } from "../protocol/register.ts"
import { ClientEvicted, OutcomeUnknown, TooMuchData, type LedgerError } from "./errors.ts"
import { operationName, type Decode, type Send } from "./ledger_service.ts"

/** How a session reaches the replicas. Messages out are whole; messages in are whole and verified (checksums, cluster). */
export interface Transport {
  /** Replicas addressed by index (their position in the cluster's address list). */
  readonly replicaCount: number
  /** Sends one whole message to replica `replica`; never fails, may drop (the retry timer recovers). The bytes are not changed afterwards. */
  readonly send: (replica: number, message: Uint8Array) => Effect.Effect<void>
}

/**
 * Opens a transport for the session's lifetime; `deliver` receives every message from any
 * replica whose checksums and cluster were verified, in arrival order, and must not be called
 * after the scope closes.
 */
export type TransportFactory = (deliver: (message: Uint8Array) => void) => Effect.Effect<Transport, never, Scope.Scope>

/**
 * A per-call deadline: calls made with it set (`Effect.provideService(RequestDeadline, "2 seconds")`)
 * fail with `OutcomeUnknown` when no reply arrived in time. Unset by default: retry forever.
 */
export const RequestDeadline = Context.Reference<Duration.Input | undefined>("scarab/RequestDeadline", { defaultValue: () => undefined })

export interface SessionOptions {
  readonly cluster: bigint
  readonly transport: TransportFactory
  /** First retransmission of a request, in ms (§9.6: 60 ticks). */
  readonly requestTimeoutMs?: number
  /**
   * Bytes of queued calls at which a caller sends them itself while nothing is in flight (see
   * `call`); default half the server's body budget. The simulator sets it low, so that this path
   * runs under faults too.
   */
  readonly burstBytes?: number
}

export interface Session {
  readonly clientId: bigint
  /** Executes one batch (not multi-batch framed) and answers its result batch, decoded by `decode` (a `Send`). */
  readonly call: Send
  /**
   * The replica behind the transport has stopped for good (an embedded replica whose loop died):
   * the calls waiting, and every later one, fail with `defect` instead of waiting forever.
   */
  readonly halt: (defect: unknown) => Effect.Effect<void>
  /** Counters for tests and benchmarks: requests sent (each once), retransmissions, calls carried. */
  readonly stats: Effect.Effect<SessionStats>
}

export interface SessionStats {
  readonly requests: number
  readonly retransmissions: number
  readonly calls: number
  /** Steps a caller ran itself for a burst (see `call`). */
  readonly burstSteps: number
  readonly session: bigint
}

/** §9.6: a tick is 10 ms, `rtt` starts at 30 ticks, the backoff's random part is capped at 999 ticks. */
const tickMs = 10
const rttTicks = 30
const backoffTicksMax = 999
const requestTimeoutMsDefault = 60 * tickMs
/** §9.7: `ping_client` to every replica every 3000 ticks; pongs tell the view. */
const pingIntervalMs = 3000 * tickMs

/** A caller's call; it is its own inbox message, so enqueueing allocates nothing more. */
interface Call {
  readonly _tag: "Call"
  readonly operation: ClientOperation
  readonly body: Uint8Array
  /** Applied to the call's result batch just before its caller is resumed. */
  readonly decode: Decode<unknown>
  /** Resumes the waiting caller; once only (later calls, and calls after it stopped waiting, do nothing). */
  readonly resume: (outcome: Effect.Effect<unknown, LedgerError>) => void
  /** The caller's deadline passed: not sent if still queued. */
  abandoned: boolean
}

interface InFlight {
  readonly request: number
  readonly operation: number
  readonly message: Uint8Array
  readonly calls: ReadonlyArray<Call>
  readonly timer: Fiber.Fiber<void>
}

type Input =
  | Call
  | { readonly _tag: "Message"; readonly message: Uint8Array }
  | { readonly _tag: "Timeout"; readonly request: number }
  /** The replica behind the transport stopped for good (embedded): calls fail with its defect. */
  | { readonly _tag: "Halt"; readonly defect: unknown }

const evictionReasonNames = new Map<number, string>(Object.entries(EvictionReason).map(([name, value]) => [value, name]))

/** Starts a session (its register goes out at once); it ends with the scope, interrupting waiting callers. */
export const makeSession = Effect.fnUntraced(function* (options: SessionOptions) {
  const scope = yield* Scope.Scope
  /**
   * The inputs not yet applied, in arrival order. A plain array rather than a Queue because
   * callers' steps take it too (see `call`); the doorbell wakes the actor when it fills.
   */
  let inbox: Array<Input> = []
  const doorbell = yield* Queue.dropping<void>(1)
  const post = (input: Input) => {
    inbox.push(input)
    // A token is left if a caller's step took the inbox since the last ring: the actor's step then finds it empty.
    if (inbox.length === 1) Queue.offerUnsafe(doorbell, undefined)
  }
  const transport = yield* options.transport((message) => post({ _tag: "Message", message }))
  assert(transport.replicaCount >= 1 && transport.replicaCount <= 6, () => `${transport.replicaCount} replicas`)
  const clientId = yield* randomU128
  const cluster = options.cluster
  const requestTimeoutMs = options.requestTimeoutMs ?? requestTimeoutMsDefault

  // Session state, changed only by a step holding `permit`.
  let session = 0n
  let batchSizeLimit = 0
  let requestNext = 0
  let parent = 0n
  let view = 0
  /** §5.1: µs from the previous request's first send to its reply, sent with the next request. */
  let previousLatencyUs = 0
  let sentAtNs = 0n
  let inFlight: InFlight | undefined = undefined
  /**
   * What every call gets once the session has stopped: `ClientEvicted` after an eviction, or the
   * defect of an embedded replica that stopped (`halt`). Undefined while it runs.
   */
  let stopped: Effect.Effect<never, ClientEvicted> | undefined = undefined
  let pending: Array<Call> = []
  /** Calls whose results arrived during this step, and their result batches; their callers are resumed at its end. */
  let answered: Array<Call> = []
  let answers: Array<Uint8Array> = []
  /** Body bytes of the calls put in the inbox since a step last took it. */
  let queuedBytes = 0
  const stats = { requests: 0, retransmissions: 0, calls: 0, burstSteps: 0 }
  /**
   * The session state above changes only under this one permit: steps run in the actor fiber and,
   * for bursts (see `call`), in a caller's fiber; neither may run while the other is suspended
   * half-way (a transport's send may wait).
   */
  const permit = yield* Semaphore.make(1)

  const transmit = Effect.fnUntraced(function* (message: Uint8Array) {
    const primary = view % transport.replicaCount
    yield* transport.send(primary, message)
    if (transport.replicaCount > 1) {
      const other = (primary + (yield* Random.nextIntBetween(1, transport.replicaCount - 1))) % transport.replicaCount
      yield* transport.send(other, message)
    }
  })

  /** Re-arms forever (§9.6); interrupted when the reply arrives. */
  const retryTimer = (request: number) => Effect.gen(function* () {
    let waitMs = requestTimeoutMs
    for (let attempt = 1; ; attempt = (attempt + 1) & 0xff) {
      yield* Effect.sleep(waitMs)
      post({ _tag: "Timeout", request })
      const jitter = yield* Random.nextIntBetween(0, Math.min(backoffTicksMax, 2 ** attempt))
      waitMs = (2 * rttTicks + 1 + jitter) * tickMs
    }
  })

  /** Sends the calls' batches as one request (register: `calls` empty, its fixed body). */
  const sendRequest = Effect.fnUntraced(function* (operation: number, calls: ReadonlyArray<Call>) {
    const header = zeroHeader(Command.request)
    header.cluster = cluster
    header.release = releaseScarab
    header.view = view
    header.parent = parent
    header.client = clientId
    header.session = session
    header.request = requestNext
    header.operation = operation
    header.previous_request_latency = previousLatencyUs
    const bodies = calls.map((call) => call.body)
    const message = operation === VsrOperation.register
      ? buildMessage(header, registerRequestBody())
      : buildMessageWith(header, multiBatchSize(bodies, eventSize(operation as ClientOperation)),
        (body) => encodeMultiBatchInto(body, bodies, eventSize(operation as ClientOperation)))
    sentAtNs = yield* Clock.currentTimeNanos
    // Started at once, so the timeout counts from this instant (and TestClock sees it armed).
    const timer = yield* Effect.forkIn(retryTimer(requestNext), scope, { startImmediately: true })
    inFlight = { request: requestNext, operation, message, calls, timer }
    requestNext++
    stats.requests++
    stats.calls += calls.length
    yield* transmit(message)
  })

  /** Sends the next request if none is in flight: the oldest call and the queued calls of its operation that fit. */
  const pump = Effect.fnUntraced(function* () {
    if (inFlight !== undefined || stopped !== undefined || session === 0n) return
    // Each pass sends a request, or fails the oldest call as too large for the server's budget.
    while (true) {
      const oldest = pending.find((call) => !call.abandoned)
      if (oldest === undefined) {
        pending = []
        return
      }
      const chosen = choose(oldest.operation)
      if (chosen.length > 0) return yield* sendRequest(oldest.operation, chosen)
    }
  })

  /**
   * Takes out of `pending`, in order, the calls of `operation` that fit in one request (and drops
   * abandoned ones); the rest keep their order. A first call too large even alone is failed. A
   * plain loop with the request's sizes computed once: under fan-in it runs once per event.
   */
  const choose = (operation: ClientOperation): Array<Call> => {
    const event = eventSize(operation)
    const result = resultSize(operation)
    const query = isQuery(operation)
    const chosen: Array<Call> = []
    let kept = 0
    let events = 0
    let results = 0
    let closed = false
    for (let i = 0; i < pending.length; i++) {
      const call = pending[i]!
      if (call.abandoned) continue
      if (call.operation !== operation || closed) {
        pending[kept++] = call
        continue
      }
      const eventsNext = events + call.body.length / event
      const resultsNext = results + (query ? resultCountExpected(operation, call.body) : call.body.length / event)
      const batches = chosen.length + 1
      if (eventsNext * event + trailerSize(event, batches) <= batchSizeLimit && resultsNext * result + trailerSize(result, batches) <= bodySizeMax) {
        chosen.push(call)
        events = eventsNext
        results = resultsNext
        closed = chosen.length === batchCountMax
      } else if (chosen.length === 0) {
        // Only a server with a smaller budget than TigerBeetle's default refuses a single checked batch.
        call.resume(Effect.fail(new TooMuchData({
          operation: operationName(operation), count: call.body.length / event, max: Math.floor((batchSizeLimit - trailerSize(event, 1)) / event)
        })))
      } else {
        // Later calls of this operation wait too, so calls go out in the order they were made.
        closed = true
        pending[kept++] = call
      }
    }
    pending.length = kept
    return chosen
  }

  /** Ends the session: the calls in flight and queued, and every later one, get `outcome`. */
  const stop = Effect.fnUntraced(function* (outcome: Effect.Effect<never, ClientEvicted>) {
    assert(stopped === undefined, () => "a session stops once")
    stopped = outcome
    if (inFlight !== undefined) {
      yield* Fiber.interrupt(inFlight.timer)
      for (const call of inFlight.calls) call.resume(outcome)
      inFlight = undefined
    }
    for (const call of pending) call.resume(outcome)
    pending = []
    assert(inFlight === undefined && pending.length === 0, () => "a stopped session holds no calls")
  })

  /** §11: what is accepted from a reply; everything else is dropped (the official client aborts on some of it). */
  const receiveReply = Effect.fnUntraced(function* (message: Uint8Array) {
    const current = inFlight
    if (current === undefined) return
    if (readU32(message, FrameLayout.release.offset) !== releaseScarab) return yield* dropped("a reply of another release")
    if (u128FromBytes(message, ReplyLayout.client.offset) !== clientId) return
    if (readU32(message, ReplyLayout.request.offset) !== current.request) return // a stale duplicate
    if (!u128Equal(message, ReplyLayout.request_checksum.offset, current.message, FrameLayout.checksum.offset)) {
      return yield* dropped(`a reply to request ${current.request} names another request's checksum`)
    }
    if (message[ReplyLayout.operation.offset] !== current.operation) return yield* dropped("a reply with another operation")
    const body = message.subarray(headerSize)
    if (current.operation === VsrOperation.register) {
      const limit = registerResultBatchSizeLimit(body)
      const commit = u64FromBytes(message, ReplyLayout.commit.offset)
      if (limit === undefined || commit === 0n) return yield* dropped("an invalid register reply")
      session = commit
      batchSizeLimit = Math.min(limit, bodySizeMax)
    } else {
      const batches = decodeMultiBatch(body, resultSize(current.operation as ClientOperation))
      if (!Array.isArray(batches) || batches.length !== current.calls.length) {
        return yield* dropped(`a reply whose body does not hold ${current.calls.length} result batches`)
      }
      for (let i = 0; i < batches.length; i++) {
        answered.push(current.calls[i]!)
        answers.push(batches[i]!)
      }
    }
    view = Math.max(view, readU32(message, FrameLayout.view.offset))
    parent = u128FromBytes(message, ReplyLayout.context.offset)
    inFlight = undefined
    const latencyUs = ((yield* Clock.currentTimeNanos) - sentAtNs) / 1000n
    previousLatencyUs = latencyUs > 0xffff_ffffn ? 0xffff_ffff : Number(latencyUs)
    yield* Fiber.interrupt(current.timer)
  })

  const receive = Effect.fnUntraced(function* (message: Uint8Array) {
    switch (message[FrameLayout.command.offset]) {
      case Command.reply:
        return yield* receiveReply(message)
      case Command.eviction:
        if (stopped !== undefined || u128FromBytes(message, EvictionLayout.client.offset) !== clientId) return
        if (readU32(message, FrameLayout.view.offset) < view) return
        return yield* stop(Effect.fail(new ClientEvicted({ reason: evictionReasonNames.get(message[EvictionLayout.reason.offset]!) ?? `reason ${message[EvictionLayout.reason.offset]}` })))
      case Command.pong_client:
        view = Math.max(view, readU32(message, FrameLayout.view.offset))
        return
      default:
        return
    }
  })

  /** Applies the inputs to the state and sends the next request if it can; holds the permit. */
  const apply = Effect.fnUntraced(function* (inputs: ReadonlyArray<Input>) {
    for (const input of inputs) {
      switch (input._tag) {
        case "Call":
          if (stopped !== undefined) input.resume(stopped)
          else pending.push(input)
          break
        case "Halt":
          if (stopped === undefined) yield* stop(Effect.die(input.defect))
          break
        case "Message":
          yield* receive(input.message)
          break
        case "Timeout":
          if (inFlight !== undefined && inFlight.request === input.request) {
            stats.retransmissions++
            yield* transmit(inFlight.message)
          }
          break
      }
    }
    // After every input: the calls that arrived together go out together.
    yield* pump()
  })

  /**
   * The callers whose results arrived, resumed at the end of a step, after the next request went
   * out: each result is decoded and its caller continues synchronously in this fiber (on into
   * user code), and that work overlaps the cluster's on the next request instead of delaying it.
   */
  const resumeAnswered = () => {
    const [resumed, results] = [answered, answers]
    answered = []
    answers = []
    for (let i = 0; i < resumed.length; i++) {
      const call = resumed[i]!
      let value: unknown
      try {
        value = call.decode(results[i]!, resultCountExpected(call.operation, call.body))
      } catch (defect) {
        // A reply the decoder refuses (an assertion) is that caller's defect, not the session's.
        call.resume(Effect.die(defect))
        continue
      }
      call.resume(Effect.succeed(value))
    }
  }
  const takeInbox = Effect.suspend(() => {
    const inputs = inbox
    inbox = []
    queuedBytes = 0
    return apply(inputs)
  })
  /** One step: whatever the inbox holds, applied under the permit, then the answered callers resumed. */
  const step = Effect.andThen(Semaphore.withPermit(permit, takeInbox), Effect.sync(resumeAnswered))
  /** A caller's step (see `call`): skipped if a step is under way, which will see the same inbox and resume its callers. */
  const burstStep = Effect.flatMap(
    Semaphore.withPermitsIfAvailable(permit, 1)(Effect.suspend(() => {
      stats.burstSteps++
      return takeInbox
    })),
    (ran) => Option.isSome(ran) ? Effect.sync(resumeAnswered) : Effect.void)

  /** Pings go to every replica, so a session learns the view from any of them (§9.7). */
  const pinger = Effect.gen(function* () {
    while (true) {
      yield* Effect.sleep(pingIntervalMs)
      const header = zeroHeader(Command.ping_client)
      header.cluster = cluster
      header.release = releaseScarab
      header.client = clientId
      header.session = session
      header.ping_timestamp_monotonic = yield* Clock.currentTimeNanos
      const ping = buildMessage(header, new Uint8Array(0))
      for (let replica = 0; replica < transport.replicaCount; replica++) yield* transport.send(replica, ping)
    }
  })

  // Registered before the actor starts, so it runs after the actor is interrupted: nobody waits forever.
  yield* Effect.addFinalizer(() => Effect.gen(function* () {
    const waiting = [...(inFlight?.calls ?? []), ...pending]
    for (const call of waiting) call.resume(Effect.interrupt)
    for (const input of inbox) if (input._tag === "Call") input.resume(Effect.interrupt)
    inbox = []
  }))
  yield* Effect.forkScoped(Effect.andThen(
    sendRequest(VsrOperation.register, []),
    Effect.forever(Effect.andThen(Queue.take(doorbell), step))
  ))
  yield* Effect.forkScoped(pinger)

  /**
   * The caller's side: hand the call to the actor and wait to be resumed with its decoded result.
   * A callback rather than a Deferred and a generator: under fan-in this runs once per event, and
   * the actor's synchronous `resume` continues the caller without a scheduler hop. An interrupted
   * caller's call may still be sent, and commit, as with any cluster; only a call whose deadline
   * passed while it was still queued is withdrawn. (Registering that cleanup costs each call
   * about 400 bytes, a third of what it allocates, so calls without a deadline do without.)
   */
  const enqueue = (operation: ClientOperation, body: Uint8Array, decode: Decode<unknown>, resume: Call["resume"]): Call | undefined => {
    if (stopped !== undefined) {
      resume(stopped)
      return undefined
    }
    const entry: Call = { _tag: "Call", operation, body, decode, resume, abandoned: false }
    queuedBytes += body.length
    post(entry)
    return entry
  }
  const awaitCall = <A>(operation: ClientOperation, body: Uint8Array, decode: Decode<A>) => Effect.callback<A, LedgerError>((resume) => {
    enqueue(operation, body, decode, resume as Call["resume"])
  })
  const awaitCallWithdrawable = <A>(operation: ClientOperation, body: Uint8Array, decode: Decode<A>) => Effect.callback<A, LedgerError>((resume) => {
    const entry = enqueue(operation, body, decode, resume as Call["resume"])
    if (entry === undefined) return
    // Runs when the deadline passes (or the caller is interrupted): a call still queued is then not sent.
    return Effect.sync(() => {
      entry.abandoned = true
    })
  })

  /**
   * The actor runs only between turns of the event loop, so calls made in one synchronous burst
   * (10,000 fibers forked at once) would all wait for the burst to end, with the cluster idle
   * meanwhile. So a caller that finds half a request queued and nothing in flight runs the step
   * itself first: that half goes out now, and the rest of the burst is merged while the cluster
   * executes it. (The official clients get the same overlap from their own I/O thread.)
   */
  const burstSending = () => inFlight === undefined && session !== 0n && stopped === undefined &&
    queuedBytes >= (options.burstBytes ?? batchSizeLimit / 2)

  const call: Send = <A>(operation: ClientOperation, body: Uint8Array, decode: Decode<A>): Effect.Effect<A, LedgerError> =>
    Effect.withFiber((fiber) => {
      const deadline = fiber.getRef(RequestDeadline)
      const waiting = deadline === undefined
        ? awaitCall(operation, body, decode)
        : Effect.flatMap(Effect.timeoutOption(awaitCallWithdrawable(operation, body, decode), deadline), (answer) => Option.isSome(answer)
          ? Effect.succeed(answer.value)
          : Effect.fail(new OutcomeUnknown({ operation: operationName(operation), ids: idsOf(operation, body) })))
      return burstSending() ? Effect.andThen(burstStep, waiting) : waiting
    })

  return {
    clientId,
    call,
    halt: (defect) => Effect.sync(() => post({ _tag: "Halt", defect })),
    stats: Effect.sync(() => ({ ...stats, session }))
  } satisfies Session
})

/** The ids a batch names: its events' ids (creates), or the ids looked up; none for queries. */
export function idsOf(operation: ClientOperation, body: Uint8Array): Array<bigint> {
  if (isQuery(operation)) return []
  const size = operation === Operation.create_accounts || operation === Operation.create_transfers ? eventSize(operation) : idSize
  const ids: Array<bigint> = []
  for (let offset = 0; offset + size <= body.length; offset += size) ids.push(u128FromBytes(body, offset))
  return ids
}

const dropped = (why: string) => Effect.logDebug(`client session: dropped ${why}`)

/** A random non-zero u128 client id (§9.1), from Effect's Random. */
const randomU128 = Effect.gen(function* () {
  while (true) {
    let value = 0n
    for (let i = 0; i < 4; i++) value = (value << 32n) | BigInt(yield* Random.nextIntBetween(0, 0xffff_ffff))
    if (value !== 0n) return value
  }
})

function u64FromBytes(bytes: Uint8Array, offset: number): bigint {
  let value = 0n
  for (let i = 7; i >= 0; i--) value = (value << 8n) | BigInt(bytes[offset + i]!)
  return value
}
