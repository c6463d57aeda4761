/**
 * `layerMemory()`: the Ledger service over an in-memory state machine, with a cluster's
 * semantics minus the network and the disk. For tests of code that moves money, and for
 * trying Scarab out.
 *
 * One actor fiber owns the state machine; every request goes through its bounded inbox and is
 * answered through a Deferred, so concurrent fibers are serialised the way a cluster orders
 * requests. Cluster time comes from Effect's Clock (TestClock drives it in tests), with the
 * rules of spec/state-machine.md §6.1: a request's timestamp is max(previous + 1, now in ns)
 * plus one nanosecond per created event (a pulse reserves 8189). Pending transfers expire as
 * on a primary (§10.5): before every request and, while idle, on a timer set for the next
 * expiry, a pulse runs whenever the earliest expiry is due.
 */
import { Cause, Clock, Deferred, Effect, Exit, Layer, Option, Queue } from "effect"
import { assert } from "../assert.ts"
import { createLedger, type Ledger as StateMachine } from "../ledger/ledger.ts"
import type { StoreFull } from "../ledger/store.ts"
import { eventSize, pulseExpiriesMax, timestampDelta, type ClientOperation } from "../protocol/operation.ts"
import { resultCountExpected } from "../protocol/body.ts"
import { Ledger, makeLedger, type Send } from "./ledger_service.ts"

export interface MemoryOptions {
  /** Capacity of the store; a create batch that could exceed it fails with StoreFull. */
  readonly accountsMax?: number
  readonly transfersMax?: number
  /** Requests waiting for the actor; callers beyond it wait to enqueue (backpressure). */
  readonly inboxCapacity?: number
  /** Recompute every invariant after each create batch and pulse (O(accounts)): for tests. */
  readonly verify?: boolean
}

/** Small defaults: a test ledger, not a production store (the store grows in segments anyway). */
export const memoryDefaults = { accountsMax: 1 << 20, transfersMax: 1 << 22, inboxCapacity: 1024 } as const

/** Pulses one check may run: each expires up to 8189 transfers; the rest wait for the next check. */
const pulsesPerCheckMax = 64

type Message =
  | { readonly _tag: "Request"; readonly operation: ClientOperation; readonly body: Uint8Array; readonly reply: Deferred.Deferred<Uint8Array, StoreFull> }
  | { readonly _tag: "Tick" }

/** Longest single wait of the expiry timer (an hour); it re-arms until the expiry is due. */
const timerWaitMsMax = 3_600_000

const tick: Message = { _tag: "Tick" }

export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<Ledger> =>
  Layer.effect(Ledger, Effect.gen(function* () {
    const inbox = yield* Queue.bounded<Message>(options.inboxCapacity ?? memoryDefaults.inboxCapacity)
    // The actor tells the timer the next expiry after any change; the latest value is all that matters.
    const expiries = yield* Queue.sliding<bigint | undefined>(1)
    const actor = makeActor(createLedger({
      accountsMax: options.accountsMax ?? memoryDefaults.accountsMax,
      transfersMax: options.transfersMax ?? memoryDefaults.transfersMax
    }), options.verify ?? false, expiries)

    // Registered before the fibers start, so it runs after they are interrupted: nobody waits forever.
    yield* Effect.addFinalizer(() => Effect.gen(function* () {
      const pending = yield* Queue.clear(inbox)
      for (const message of pending) if (message._tag === "Request") yield* Deferred.interrupt(message.reply)
      yield* Queue.shutdown(inbox)
    }))
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.takeAll(inbox), (batch) => Effect.uninterruptible(actor(batch)))))
    yield* Effect.forkScoped(expiryTimer(inbox, expiries))

    const send: Send = (operation, body, decode) => Effect.gen(function* () {
      const reply = yield* Deferred.make<Uint8Array, StoreFull>()
      const accepted = yield* Queue.offer(inbox, { _tag: "Request", operation, body, reply })
      if (!accepted) return yield* Effect.interrupt
      return decode(yield* Deferred.await(reply), resultCountExpected(operation, body))
    })
    return Ledger.of(makeLedger(send))
  }))

/** The actor's step: handles a drained batch of messages in order. Owns the state machine. */
function makeActor(ledger: StateMachine, verify: boolean, expiries: Queue.Queue<bigint | undefined>) {
  /** Cluster time consumed so far (ns): every later timestamp lies strictly after it. */
  let clusterTime = 0n
  let announced: bigint | undefined = undefined
  /** A defect in the state machine stops it for good: money must not move on a broken ledger. */
  let broken: Cause.Cause<never> | undefined = undefined

  const nextTimestamp = (now: bigint, delta: number): bigint => {
    const base = clusterTime + 1n > now ? clusterTime + 1n : now
    clusterTime = base + BigInt(delta)
    return clusterTime
  }

  /** Runs pulses while the earliest expiry is due at max(cluster time, now) (spec §10.5). */
  const expire = (now: bigint): void => {
    for (let pulses = 0; pulses < pulsesPerCheckMax; pulses++) {
      const expiry = ledger.nextExpiry()
      const horizon = clusterTime > now ? clusterTime : now
      if (expiry === undefined || expiry > horizon) return
      const expired = ledger.pulse(nextTimestamp(now, pulseExpiriesMax))
      assert(expired > 0, () => "a due pulse expired nothing")
      if (verify) ledger.verify()
    }
  }

  const execute = (operation: ClientOperation, body: Uint8Array, now: bigint): Effect.Effect<Uint8Array, StoreFull> => {
    const count = body.length / eventSize(operation)
    return Effect.andThen(ledger.prefetch(operation, count), Effect.sync(() => {
      const timestamp = nextTimestamp(now, timestampDelta(operation, count))
      const reply = ledger.execute(operation, body, timestamp)
      if (verify && timestampDelta(operation, count) > 0) ledger.verify()
      return reply
    }))
  }

  return Effect.fnUntraced(function* (batch: ReadonlyArray<Message>) {
    for (const message of batch) {
      if (broken !== undefined) {
        if (message._tag === "Request") Deferred.doneUnsafe(message.reply, Effect.failCause(broken))
        continue
      }
      const now = yield* Clock.currentTimeNanos
      const exit = yield* Effect.exit(Effect.andThen(Effect.sync(() => expire(now)),
        message._tag === "Request" ? execute(message.operation, message.body, now) : Effect.succeed(undefined)))
      if (Exit.isFailure(exit) && Cause.hasDies(exit.cause)) broken = Cause.die(Cause.squash(exit.cause))
      if (message._tag === "Request") Deferred.doneUnsafe(message.reply, exit as Exit.Exit<Uint8Array, StoreFull>)
    }
    const expiry = broken === undefined ? ledger.nextExpiry() : undefined
    // A tick is always answered, so the timer never re-arms on a stale expiry.
    if (expiry !== announced || batch.some((message) => message._tag === "Tick")) {
      announced = expiry
      yield* Queue.offer(expiries, expiry)
    }
  })
}

/**
 * While pending transfers with timeouts exist, sleeps until the earliest is due and asks the
 * actor to expire it. Time is the Clock's, so TestClock.adjust past a timeout releases it.
 */
function expiryTimer(inbox: Queue.Queue<Message>, expiries: Queue.Queue<bigint | undefined>): Effect.Effect<never> {
  return Effect.gen(function* () {
    let expiry: bigint | undefined = undefined
    while (true) {
      if (expiry === undefined) {
        expiry = yield* Queue.take(expiries)
        continue
      }
      const now = yield* Clock.currentTimeNanos
      if (expiry <= now) {
        yield* Queue.offer(inbox, tick)
        expiry = yield* Queue.take(expiries)
        continue
      }
      // Capped: a real timer cannot wait longer than 2^31 - 1 ms, and re-arming is cheap.
      const waitMs = Math.min(Number((expiry - now + 999_999n) / 1_000_000n), timerWaitMsMax)
      const changed = yield* Effect.timeoutOption(Queue.take(expiries), waitMs)
      if (Option.isSome(changed)) expiry = changed.value
    }
  })
}
