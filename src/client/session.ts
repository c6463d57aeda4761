/**
 * A client session (wire-protocol.md §9–§11) over any transport: the part of the official client
 * that is neither the API nor the sockets. Its protocol logic is the pure `SessionCore`
 * (session_core.ts: register, request numbering and the hash chain, which calls go into a
 * request, reply acceptance, eviction, the view and the target replicas, retransmission); this
 * file is its Effect shell, which owns what takes time or chance:
 *
 * - the inbox: calls, messages from the transport, timeouts and `halt` are posted to a plain
 *   array, and a doorbell wakes the actor fiber, which steps the core with everything posted
 *   since (so calls made in one turn of the event loop go out together, merged into one
 *   multi-batch request) and the time from the Clock;
 * - the one permit: the core is stepped only while holding it, by the actor or, for a burst, by a
 *   caller (see `makeCall`): a caller that finds half a request queued and nothing in flight sends it
 *   at once, so the cluster works on it while the burst goes on;
 * - the core's outputs, done in order: transmissions to the primary and to one other replica drawn
 *   from Random (§9.5 hedging), retry timers (§9.6: first after 600 ms, then 2·rtt + 1 + a random
 *   backoff in ticks, forever: the network never fails a call), callers refused or failed. The core
 *   has moved on when they are done, so a step interrupted half-way leaves the rest to the next;
 * - answered callers, resumed with their decoded result batches at the end of a step, after the
 *   next request went out;
 * - pings to every replica every 30 s (their pongs, like replies, raise the core's view);
 * - per-call deadlines (`RequestDeadline`): when one passes, the call fails with `OutcomeUnknown`
 *   carrying its ids; the request may still commit, and the session goes on.
 *
 * An eviction (§9.9) fails the in-flight and queued calls, and every later one, with
 * `ClientEvicted`; `halt` makes them die with the stopped replica's defect.
 */
import { Clock, Context, Duration, Effect, Fiber, Option, Queue, Random, Scope, Semaphore } from "effect"
import { assert, unreachable } from "../assert.ts"
import { resultCountExpected } from "../protocol/body.ts"
import { u128FromBytes } from "../protocol/build.ts"
import { eventSize, idSize, isQuery, Operation, type ClientOperation } from "../protocol/operation.ts"
import { ClientEvicted, OutcomeUnknown, type LedgerError } from "./errors.ts"
import { operationName, type Decode, type Send } from "./ledger_service.ts"
import {
  callsIn, hedgeReplica, requestTimeoutMsDefault, retryJitterTicksMax, retryWaitMs, SessionCore, tickMs, type SessionCall, type SessionInput,
  type SessionOutput, type SessionStop
} from "./session_core.ts"

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

/** §9.7: `ping_client` to every replica every 3000 ticks; pongs tell the view. */
const pingIntervalMs = 3000 * tickMs

/** A caller's call; it is its own inbox message, so enqueueing allocates nothing more. */
interface Call extends SessionCall {
  /** Applied to the call's result batch just before its caller is resumed. */
  readonly decode: Decode<unknown>
  /** Resumes the waiting caller; once only (later calls, and calls after it stopped waiting, do nothing). */
  readonly resume: (outcome: Effect.Effect<unknown, LedgerError>) => void
}

/** Starts a session (its register goes out at once); it ends with the scope, interrupting waiting callers. */
export const makeSession = Effect.fnUntraced(function* (options: SessionOptions) {
  const scope = yield* Scope.Scope
  const inbox = new Inbox(yield* Queue.dropping<void>(1))
  const transport = yield* options.transport((message) => inbox.post({ _tag: "Message", message }))
  const core = new SessionCore<Call>({ cluster: options.cluster, clientId: yield* randomU128, replicaCount: transport.replicaCount })
  const requestTimeoutMs = options.requestTimeoutMs ?? requestTimeoutMsDefault
  assert(requestTimeoutMs > 0, () => "a positive request timeout")
  assert(options.burstBytes === undefined || options.burstBytes > 0, () => "a positive burst threshold")
  const outputs = yield* makeOutputs(core, inbox, transport, scope, requestTimeoutMs)
  const steps = yield* makeSteps(core, inbox, outputs)

  /** Pings go to every replica, so a session learns the view from any of them (§9.7). */
  const pinger = Effect.gen(function* () {
    while (true) {
      yield* Effect.sleep(pingIntervalMs)
      const ping = core.ping(yield* Clock.currentTimeNanos)
      for (let replica = 0; replica < transport.replicaCount; replica++) yield* transport.send(replica, ping)
    }
  })

  // Registered before the actor starts, so it runs after the actor is interrupted: nobody waits forever.
  yield* Effect.addFinalizer(() => Effect.sync(() => {
    for (const call of [...core.held(), ...outputs.unfinished()]) call.resume(Effect.interrupt)
    for (const input of inbox.take()) if (input._tag === "Call") input.resume(Effect.interrupt)
  }))
  yield* Effect.forkScoped(Effect.andThen(steps.register, Effect.forever(Effect.andThen(Queue.take(inbox.doorbell), steps.step))))
  yield* Effect.forkScoped(pinger)

  return {
    clientId: core.clientId,
    call: makeCall(core, inbox, steps.burstStep, outputs.outcomeOf, options.burstBytes),
    halt: (defect) => Effect.sync(() => inbox.post({ _tag: "Halt", defect })),
    stats: Effect.sync(() => ({ ...core.stats, burstSteps: steps.burstSteps(), session: core.session }))
  } satisfies Session
})

/**
 * The inputs not yet applied, in arrival order. A plain array rather than a Queue because
 * callers' steps take it too (see `makeCall`); the doorbell wakes the actor when it fills.
 */
class Inbox {
  readonly doorbell: Queue.Queue<void>
  private inputs: Array<SessionInput<Call>> = []
  /** Body bytes of the calls posted since a step last took the inputs (see `makeCall`). */
  queuedBytes = 0

  constructor(doorbell: Queue.Queue<void>) {
    this.doorbell = doorbell
  }

  post(input: SessionInput<Call>): void {
    this.inputs.push(input)
    // A token is left if a caller's step took the inbox since the last ring: the actor's step then finds it empty.
    if (this.inputs.length === 1) Queue.offerUnsafe(this.doorbell, undefined)
  }

  postCall(call: Call): void {
    assert(!call.abandoned, () => "a call is posted before its deadline can withdraw it")
    this.queuedBytes += call.body.length
    this.post(call)
    assert(this.queuedBytes >= call.body.length, () => "the call's bytes count toward a burst")
  }

  /** Wakes the actor even with nothing posted: a caller's step left outputs for it to finish. */
  ring(): void {
    Queue.offerUnsafe(this.doorbell, undefined)
  }

  take(): Array<SessionInput<Call>> {
    // Bytes are counted only with the calls posted since the last take.
    assert(this.queuedBytes === 0 || this.inputs.length > 0, () => "bytes queued without calls")
    const inputs = this.inputs
    this.inputs = []
    this.queuedBytes = 0
    return inputs
  }
}

/**
 * Doing the core's outputs: transmissions (hedged with a replica drawn from Random), retry
 * timers on the Clock, callers refused or stopped, debug lines; under the permit, in order.
 *
 * The core has already moved on when its outputs are done, so none may be lost: a step whose
 * fiber is interrupted half-way (a caller stepping a burst, while a send waits) leaves the rest
 * in `todo`, and the next step does them first. A transmission is counted done only once sent,
 * so an interrupted one is sent again (a duplicate, which replicas expect); the others finish
 * without suspending or are counted done before they wait.
 */
const makeOutputs = Effect.fnUntraced(function* (
  core: SessionCore<Call>, inbox: Inbox, transport: Transport, scope: Scope.Scope, requestTimeoutMs: number
) {
  // The core addresses the transport's replicas by index.
  assert(transport.replicaCount === core.replicaCount, () => "the core and the transport agree on the replicas")
  assert(requestTimeoutMs > 0, () => "a positive request timeout")
  /** The retry timer of the request in flight (the core's `TimerStart` to its `TimerCancel`). */
  let timer: Fiber.Fiber<void> | undefined = undefined
  let timerRequest = -1
  /** Outputs not yet done, from `head` on, in order. */
  let todo: ReadonlyArray<SessionOutput<Call>> = []
  let head = 0
  /** What every call gets once the session has stopped, built once from the core's `stopped`. */
  let stoppedWith: Effect.Effect<never, ClientEvicted> | undefined = undefined
  const outcomeOf = (stop: SessionStop) => stoppedWith ??= stop._tag === "Evicted" ? Effect.fail(stop.error) : Effect.die(stop.defect)

  const transmit = Effect.fnUntraced(function* (primary: number, message: Uint8Array) {
    assert(primary >= 0, () => `primary ${primary}`)
    assert(primary < transport.replicaCount, () => `primary ${primary} of ${transport.replicaCount}`)
    yield* transport.send(primary, message)
    if (transport.replicaCount > 1) {
      const offset = yield* Random.nextIntBetween(1, transport.replicaCount - 1)
      yield* transport.send(hedgeReplica(primary, transport.replicaCount, offset), message)
    }
  })

  /** Re-arms forever (§9.6); interrupted at the core's `TimerCancel`. */
  const retryTimer = (request: number) => Effect.gen(function* () {
    assert(request >= 0, () => `request ${request}`)
    let waitMs = requestTimeoutMs
    for (let attempt = 1; ; attempt = (attempt + 1) & 0xff) {
      assert(waitMs > 0, () => "a retry waits")
      yield* Effect.sleep(waitMs)
      inbox.post({ _tag: "Timeout", request })
      waitMs = retryWaitMs(yield* Random.nextIntBetween(0, retryJitterTicksMax(attempt)))
    }
  })

  /** Does the outputs left over from an interrupted step, then the core's latest, in order. */
  const perform = Effect.fnUntraced(function* () {
    const outputs = core.takeOutputs()
    todo = head === todo.length ? outputs : [...todo.slice(head), ...outputs]
    head = 0
    while (head < todo.length) {
      const output = todo[head]!
      switch (output._tag) {
        case "Transmit":
          yield* transmit(output.primary, output.message)
          break
        case "TimerStart":
          assert(timer === undefined, () => `request ${output.request}: one retry timer at a time`)
          assert(output.request === core.inFlightRequest, () => `request ${output.request}: a retry timer for the request in flight`)
          // Started at once, so the timeout counts from this instant (and TestClock sees it armed).
          timer = yield* Effect.forkIn(retryTimer(output.request), scope, { startImmediately: true })
          timerRequest = output.request
          break
        case "TimerCancel": {
          assert(timer !== undefined, () => `request ${output.request}: a timer is armed`)
          assert(timerRequest === output.request, () => `request ${output.request}: its own timer is armed`)
          const fiber = timer
          timer = undefined
          head++
          yield* Fiber.interrupt(fiber)
          continue
        }
        case "Refuse":
          output.call.resume(Effect.fail(output.error))
          break
        case "Stopped": {
          assert(output.stop === core.stopped, () => "calls are stopped with the session's one stop")
          const outcome = outcomeOf(output.stop)
          for (const call of output.calls) call.resume(outcome)
          break
        }
        case "Drop":
          yield* Effect.logDebug(`client session: dropped ${output.why}`)
          break
        default:
          unreachable(output)
      }
      head++
    }
    assert(head === todo.length, () => "every output was done")
  })
  return { perform, outcomeOf, unfinished: () => callsIn(todo.slice(head)) }
})

/**
 * The steps: the core applies whatever the inbox holds, under the one permit, and its outputs
 * are done; then the callers it answered are resumed. The actor steps on the doorbell; a caller
 * steps for a burst (see `makeCall`); the register is the first step.
 */
const makeSteps = Effect.fnUntraced(function* (core: SessionCore<Call>, inbox: Inbox, outputs: Effect.Success<ReturnType<typeof makeOutputs>>) {
  // Made before the first step: the register (request 0) is the first thing the core does.
  assert(core.requestNext === 0, () => "steps are made before the register")
  assert(core.inFlightRequest === undefined, () => "steps are made with nothing in flight")
  /**
   * The core changes only under this permit: steps run in the actor fiber and, for bursts, in a
   * caller's fiber; neither may run while the other is suspended half-way through its outputs
   * (a transport's send may wait).
   */
  const permit = yield* Semaphore.make(1)
  let burstSteps = 0

  /**
   * The callers whose results arrived, resumed at the end of a step, after the next request went
   * out: each result is decoded and its caller continues synchronously in this fiber (on into
   * user code), and that work overlaps the cluster's on the next request instead of delaying it.
   */
  const resumeAnswered = () => {
    const answered = core.takeAnswered()
    if (answered === undefined) return
    const { calls, results } = answered
    assert(calls.length > 0, () => "answers hold calls")
    assert(calls.length === results.length, () => "a result batch per answered call")
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i]!
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
  /** The core applies the inbox at the Clock's time, and its outputs are done; holds the permit. */
  const takeInbox = Effect.flatMap(Clock.currentTimeNanos, (nowNs) => {
    core.apply(inbox.take(), nowNs)
    return outputs.perform()
  })
  return {
    register: Semaphore.withPermit(permit, Effect.flatMap(Clock.currentTimeNanos, (nowNs) => {
      core.start(nowNs)
      return outputs.perform()
    })),
    /** One step: whatever the inbox holds, applied under the permit, then the answered callers resumed. */
    step: Effect.andThen(Semaphore.withPermit(permit, takeInbox), Effect.sync(resumeAnswered)),
    /**
     * A caller's step: skipped if a step is under way, which will see the same inbox and resume
     * its callers. If the caller is interrupted half-way, the actor is woken to finish the outputs.
     */
    burstStep: Effect.flatMap(
      Semaphore.withPermitsIfAvailable(permit, 1)(Effect.suspend(() => {
        burstSteps++
        return Effect.onInterrupt(takeInbox, () => Effect.sync(() => inbox.ring()))
      })),
      (ran) => Option.isSome(ran) ? Effect.sync(resumeAnswered) : Effect.void),
    burstSteps: () => burstSteps
  }
})

/**
 * The caller's side: hand the call to the actor and wait to be resumed with its decoded result.
 * A callback rather than a Deferred and a generator: under fan-in this runs once per event, and
 * the actor's synchronous `resume` continues the caller without a scheduler hop. An interrupted
 * caller's call may still be sent, and commit, as with any cluster; only a call whose deadline
 * passed while it was still queued is withdrawn. (Registering that cleanup costs each call
 * about 400 bytes, a third of what it allocates, so calls without a deadline do without.)
 *
 * The actor runs only between turns of the event loop, so calls made in one synchronous burst
 * (10,000 fibers forked at once) would all wait for the burst to end, with the cluster idle
 * meanwhile. So a caller that finds half a request queued (`burstBytes`, by default half the
 * server's budget) and nothing in flight runs the step itself first: that half goes out now, and
 * the rest of the burst is merged while the cluster executes it. (The official clients get the
 * same overlap from their own I/O thread.)
 */
function makeCall(
  core: SessionCore<Call>, inbox: Inbox, burstStep: Effect.Effect<void>, outcomeOf: (stop: SessionStop) => Effect.Effect<never, ClientEvicted>,
  burstBytes: number | undefined
): Send {
  assert(burstBytes === undefined || burstBytes > 0, () => "a positive burst threshold")
  assert(core.clientId !== 0n, () => "calls are made by a client with an id")
  const enqueue = (operation: ClientOperation, body: Uint8Array, decode: Decode<unknown>, resume: Call["resume"]): Call | undefined => {
    if (core.stopped !== undefined) {
      resume(outcomeOf(core.stopped))
      return undefined
    }
    const entry: Call = { _tag: "Call", operation, body, decode, resume, abandoned: false }
    inbox.postCall(entry)
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
      assert(!entry.abandoned, () => "a call is withdrawn once")
      entry.abandoned = true
    })
  })
  const burstSending = () => core.readyToSend && inbox.queuedBytes >= (burstBytes ?? core.batchSizeLimit / 2)

  return <A>(operation: ClientOperation, body: Uint8Array, decode: Decode<A>): Effect.Effect<A, LedgerError> =>
    Effect.withFiber((fiber) => {
      const deadline = fiber.getRef(RequestDeadline)
      const waiting = deadline === undefined
        ? awaitCall(operation, body, decode)
        : Effect.flatMap(Effect.timeoutOption(awaitCallWithdrawable(operation, body, decode), deadline), (answer) => Option.isSome(answer)
          ? Effect.succeed(answer.value)
          : Effect.fail(new OutcomeUnknown({ operation: operationName(operation), ids: idsOf(operation, body) })))
      return burstSending() ? Effect.andThen(burstStep, waiting) : waiting
    })
}

/** The ids a batch names: its events' ids (creates), or the ids looked up; none for queries. */
export function idsOf(operation: ClientOperation, body: Uint8Array): Array<bigint> {
  if (isQuery(operation)) return []
  const size = operation === Operation.create_accounts || operation === Operation.create_transfers ? eventSize(operation) : idSize
  // Each event starts with its id (a u128), or is one.
  assert(size >= idSize, () => `events of ${size} bytes hold no id`)
  const ids: Array<bigint> = []
  for (let offset = 0; offset + size <= body.length; offset += size) ids.push(u128FromBytes(body, offset))
  assert(ids.length === Math.floor(body.length / size), () => "an id per event")
  return ids
}

/** A random non-zero u128 client id (§9.1), from Effect's Random. */
const randomU128 = Effect.gen(function* () {
  while (true) {
    let value = 0n
    for (let i = 0; i < 4; i++) value = (value << 32n) | BigInt(yield* Random.nextIntBetween(0, 0xffff_ffff))
    assert(value >= 0n, () => "a client id is unsigned")
    assert(value < 1n << 128n, () => "a client id is a u128")
    if (value !== 0n) return value
  }
})
