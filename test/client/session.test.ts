/**
 * The client session (src/client/session.ts) against the embedded replica, with transports
 * wrapped to record or drop messages: auto-batching, the hash chain, retransmission after a lost
 * reply, eviction and the per-call deadline. TestClock drives the retry timer.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { makeEmbeddedReplica, memoryTransport } from "../../src/client/layer_embedded.ts"
import { makeSession, RequestDeadline, type TransportFactory } from "../../src/client/session.ts"
import { makeLedger } from "../../src/index.ts"
import { Operation } from "../../src/protocol/operation.ts"
import { u128FromBytes } from "../../src/protocol/build.ts"
import { decodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { registerResultBatchSizeLimit } from "../../src/protocol/register.ts"
import { Command, FrameLayout, PingClientLayout, readU32, ReplyLayout, RequestLayout, u128Equal } from "../../src/protocol/header.ts"
import { accountInput, transferInput } from "./conformance.ts"
import { temporaryPath } from "./temporary.ts"

interface Log {
  readonly sent: Array<Uint8Array>
  readonly received: Array<Uint8Array>
  /** Incoming messages `drop` lost. */
  readonly dropped?: Array<Uint8Array>
}

/** Records what passes; `drop` decides which incoming messages are lost. */
const recording = (inner: TransportFactory, log: Log, drop: (message: Uint8Array) => boolean = () => false): TransportFactory => (deliver) =>
  Effect.map(inner((message) => {
    if (drop(message)) {
      log.dropped?.push(message)
      return
    }
    log.received.push(message)
    deliver(message)
  }), (transport) => ({
    ...transport,
    send: (replica: number, message: Uint8Array) => Effect.suspend(() => {
      log.sent.push(message)
      return transport.send(replica, message)
    })
  }))

const replica = Effect.flatMap(temporaryPath, (path) => makeEmbeddedReplica({ path, profile: "test" }))

const sessionOn = (embedded: Effect.Success<typeof replica>, log: Log = { sent: [], received: [] }, drop?: (message: Uint8Array) => boolean) =>
  Effect.map(makeSession({ cluster: embedded.cluster, transport: recording(memoryTransport(embedded.memory), log, drop) }),
    (session) => ({ session, ledger: makeLedger(session.call), log }))

/**
 * Waits in real time (the replica's disk is real) until `condition` holds, so that TestClock moves
 * only after it: a step of virtual time must not depend on how fast the machine did the I/O.
 */
const happened = (condition: () => boolean) => Effect.gen(function* () {
  while (!condition()) yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
})

/** Waits until request `request` has gone out, so TestClock moves after its timers are armed. */
const sent = (log: Log, request: number) => happened(() => log.sent.some((message) => requestNumber(message) === request))

/** Waits until a reply to `request` was dropped: the replica has committed the request. */
const replyDropped = (log: Log, request: number) => happened(() => log.dropped!.some((message) => replyRequest(message) === request))

const batchesOf = (message: Uint8Array) => {
  const batches = decodeMultiBatch(message.subarray(256), 128)
  assert.isTrue(Array.isArray(batches))
  return batches as Array<Uint8Array>
}

const requestNumber = (message: Uint8Array) => readU32(message, RequestLayout.request.offset)
const replyRequest = (message: Uint8Array) => readU32(message, ReplyLayout.request.offset)

describe("client session", () => {
  it.effect("auto-batching: 1000 concurrent calls go out in a few multi-batch requests, each caller gets its own results", () => Effect.gen(function* () {
    const { session, ledger } = yield* sessionOn(yield* replica)
    yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
    const before = (yield* session.stats).requests
    // Every third transfer names a missing account: its caller, and only it, sees the failure.
    const statuses = yield* Effect.forEach(Array.from({ length: 1000 }, (_, i) => i), (i) =>
      Effect.map(ledger.createTransfers([transferInput(BigInt(1000 + i), 1n, i % 3 === 0 ? 99n : 2n, 1n)]), ([r]) => r!.status),
      { concurrency: "unbounded" })
    statuses.forEach((status, i) => assert.strictEqual(status, i % 3 === 0 ? "credit_account_not_found" : "created", `call ${i}`))
    const requests = (yield* session.stats).requests - before
    assert.isAtMost(requests, 5, `1000 calls in ${requests} requests`)
    const [a] = yield* ledger.lookupAccounts([1n])
    assert.strictEqual(a!.debits_posted, BigInt(statuses.filter((s) => s === "created").length))
  }))

  it.effect("a synchronous burst: half a request goes out while the burst goes on, the rest follows merged, in call order", () => Effect.gen(function* () {
    const made: Array<number> = []
    let calls = 0
    const log: Log = { sent: [], received: [] }
    const embedded = yield* replica
    // Records, for each request sent, how many calls the burst had made by then.
    const counting: TransportFactory = (deliver) => Effect.map(recording(memoryTransport(embedded.memory), log)(deliver), (transport) => ({
      ...transport,
      send: (replica: number, message: Uint8Array) => Effect.suspend(() => {
        made.push(calls)
        return transport.send(replica, message)
      })
    }))
    const session = yield* makeSession({ cluster: embedded.cluster, transport: counting })
    const ledger = makeLedger(session.call)
    yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
    const first = log.sent.length
    const total = 10_000
    const results = yield* Effect.forEach(Array.from({ length: total }, (_, i) => i), (i) => Effect.suspend(() => {
      calls++
      return ledger.createTransfers([transferInput(BigInt(1 + i), 1n, 2n, 1n)])
    }), { concurrency: "unbounded" })
    results.forEach(([r], i) => assert.strictEqual(r!.status, "created", `call ${i}`))
    const batchSizeLimit = registerResultBatchSizeLimit(log.received[0]!.subarray(256))!
    const half = Math.ceil(batchSizeLimit / 2 / 128)
    const bursts = log.sent.slice(first).map((message) => batchesOf(message).length)
    assert.strictEqual(bursts[0], half, "the first request holds half a request's worth of calls")
    assert.isBelow(made[first]!, total, "and went out before the burst ended")
    assert.strictEqual(bursts.reduce((a, b) => a + b, 0), total)
    // Every call's transfer is in its request's batches in call order.
    const ids = log.sent.slice(first).flatMap((message) => batchesOf(message).map((batch) => u128FromBytes(batch, 0)))
    expect(ids).toEqual(Array.from({ length: total }, (_, i) => BigInt(1 + i)))
  }))

  it.effect("a transport whose send waits, callers stepping bursts of one: one request at a time, numbered and chained, every call answered", () => Effect.gen(function* () {
    const log: Log = { sent: [], received: [] }
    const embedded = yield* replica
    // Every send yields to the scheduler first, so a step is suspended half-way while callers run.
    const slow: TransportFactory = (deliver) => Effect.map(recording(memoryTransport(embedded.memory), log)(deliver), (transport) => ({
      ...transport,
      send: (replica: number, message: Uint8Array) => Effect.andThen(Effect.yieldNow, transport.send(replica, message))
    }))
    // A burst threshold of one transfer: nearly every caller tries to step the session itself.
    const session = yield* makeSession({ cluster: embedded.cluster, transport: slow, burstBytes: 128 })
    const ledger = makeLedger(session.call)
    yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
    const results = yield* Effect.forEach(Array.from({ length: 300 }, (_, i) => i), (i) =>
      ledger.createTransfers([transferInput(BigInt(1 + i), 1n, 2n, 1n)]), { concurrency: "unbounded" })
    results.forEach(([r], i) => assert.strictEqual(r!.status, "created", `call ${i}`))
    assert.isAbove((yield* session.stats).burstSteps, 0)
    // One request at a time, numbered in order, each chained to the previous reply.
    const requests = log.sent.filter((message) => message[FrameLayout.command.offset] === Command.request)
    expect(requests.map(requestNumber)).toEqual(requests.map((_, i) => i))
    for (let i = 1; i < requests.length; i++) {
      const reply = log.received.find((message) => replyRequest(message) === i - 1)!
      assert.isTrue(u128Equal(requests[i]!, RequestLayout.parent.offset, reply, ReplyLayout.context.offset), `parent of ${i}`)
    }
    const [account] = yield* ledger.lookupAccounts([2n])
    assert.strictEqual(account!.credits_posted, 300n)
  }))

  it.effect("a caller interrupted while its burst step's send waits: the actor finishes that step's outputs, no retry timer needed", () => Effect.gen(function* () {
    const embedded = yield* replica
    const gate = yield* Deferred.make<void>()
    let waiting = 0
    // Request 2 waits at the gate: the caller stepping the session is suspended in its send.
    const gated: TransportFactory = (deliver) => Effect.map(memoryTransport(embedded.memory)(deliver), (transport) => ({
      ...transport,
      send: (replica: number, message: Uint8Array) => message[FrameLayout.command.offset] === Command.request && requestNumber(message) === 2
        ? Effect.andThen(Effect.andThen(Effect.sync(() => waiting++), Deferred.await(gate)), transport.send(replica, message))
        : transport.send(replica, message)
    }))
    const session = yield* makeSession({ cluster: embedded.cluster, transport: gated, burstBytes: 128 })
    const ledger = makeLedger(session.call)
    yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
    // A's call is queued; B finds it queued with nothing in flight and steps the session itself.
    const a = yield* Effect.forkChild(ledger.createTransfers([transferInput(1n, 1n, 2n, 1n)]), { startImmediately: true })
    const b = yield* Effect.forkChild(ledger.createTransfers([transferInput(2n, 1n, 2n, 1n)]), { startImmediately: true })
    assert.strictEqual(waiting, 1, "B's step is sending request 2")
    yield* Fiber.interrupt(b)
    for (let turn = 0; turn < 100 && waiting < 2; turn++) yield* Effect.yieldNow
    assert.strictEqual(waiting, 2, "the actor sends request 2 again")
    yield* Deferred.succeed(gate, undefined)
    const [result] = yield* Fiber.join(a)
    assert.strictEqual(result!.status, "created")
    assert.strictEqual((yield* session.stats).retransmissions, 0, "TestClock did not move: no retry timer fired")
  }))

  it.effect("a decoder that throws is its caller's defect; the session and the other callers go on", () => Effect.gen(function* () {
    const { session, ledger } = yield* sessionOn(yield* replica)
    yield* ledger.createAccounts([accountInput(1n)])
    const ids = new Uint8Array(16)
    ids[0] = 1
    const [broken, fine] = yield* Effect.all([
      Effect.exit(session.call(Operation.lookup_accounts, ids, () => {
        throw new Error("refused")
      })),
      session.call(Operation.lookup_accounts, ids, (reply, countMax) => [reply.length, countMax])
    ], { concurrency: "unbounded" })
    assert.isTrue(Exit.isFailure(broken) && Cause.hasDies(broken.cause), "the throwing caller dies")
    expect(fine).toEqual([128, 1])
    const [account] = yield* ledger.lookupAccounts([1n])
    assert.strictEqual(account!.id, 1n)
  }))

  it.effect("the hash chain: requests numbered from 0, parent = the previous reply's context, replies echo the request checksum", () => Effect.gen(function* () {
    const { ledger, log } = yield* sessionOn(yield* replica)
    yield* ledger.createAccounts([accountInput(1n)])
    yield* ledger.lookupAccounts([1n])
    yield* ledger.createAccounts([accountInput(2n)])
    expect(log.sent.map(requestNumber)).toEqual([0, 1, 2, 3])
    expect(log.received.map(replyRequest)).toEqual([0, 1, 2, 3])
    assert.isTrue(log.sent[0]!.subarray(RequestLayout.parent.offset, RequestLayout.parent.offset + 16).every((b) => b === 0))
    const session0 = log.sent[0]!.subarray(RequestLayout.session.offset, RequestLayout.session.offset + 8)
    assert.isTrue(session0.every((b) => b === 0), "register carries session 0")
    for (let i = 0; i < 4; i++) {
      assert.isTrue(u128Equal(log.received[i]!, ReplyLayout.request_checksum.offset, log.sent[i]!, FrameLayout.checksum.offset))
      if (i > 0) assert.isTrue(u128Equal(log.sent[i]!, RequestLayout.parent.offset, log.received[i - 1]!, ReplyLayout.context.offset))
      if (i > 1) expect(log.sent[i]!.subarray(176, 184)).toEqual(log.sent[1]!.subarray(176, 184))
    }
  }))

  it.effect("a lost reply: the identical request is re-sent after 600 ms and executed once", () => Effect.gen(function* () {
    let dropped = 0
    const { session, ledger, log } = yield* sessionOn(yield* replica, { sent: [], received: [], dropped: [] }, (message) => {
      if (replyRequest(message) !== 1 || dropped > 0) return false
      dropped++
      return true
    })
    const call = yield* Effect.forkChild(ledger.createAccounts([accountInput(1n)]))
    // The replica's disk is real: time moves only once the request is committed (its reply was
    // lost), so the retransmission finds the stored reply, not the request still in progress.
    yield* replyDropped(log, 1)
    yield* TestClock.adjust(500)
    assert.strictEqual((yield* session.stats).retransmissions, 0)
    yield* TestClock.adjust(100)
    assert.strictEqual((yield* session.stats).retransmissions, 1)
    const [result] = yield* Fiber.join(call)
    assert.strictEqual(result!.status, "created", "the retry is answered from the stored reply, not executed again")
    const copies = log.sent.filter((message) => requestNumber(message) === 1)
    assert.isAtLeast(copies.length, 2)
    for (const copy of copies) expect(copy).toEqual(copies[0])
    assert.strictEqual((yield* ledger.lookupAccounts([1n])).length, 1)
  }))

  it.effect("eviction: the 65th session evicts the oldest; its in-flight and later calls fail with ClientEvicted", () => Effect.gen(function* () {
    const embedded = yield* replica
    const oldest = yield* sessionOn(embedded)
    yield* oldest.ledger.createAccounts([accountInput(1n)])
    for (let i = 0; i < 64; i++) {
      const other = yield* sessionOn(embedded)
      yield* other.ledger.lookupAccounts([1n])
    }
    const error = yield* Effect.flip(oldest.ledger.lookupAccounts([1n]))
    expect(error._tag).toBe("ClientEvicted")
    const later = yield* Effect.flip(oldest.ledger.createAccounts([accountInput(2n)]))
    expect(later._tag).toBe("ClientEvicted")
  }))

  it.effect("pings: every 30 s to every replica, with the session; the replica answers with a pong", () => Effect.gen(function* () {
    const { session, ledger, log } = yield* sessionOn(yield* replica)
    yield* ledger.lookupAccounts([1n])
    yield* TestClock.adjust(30_000)
    while (!log.received.some((message) => message[FrameLayout.command.offset] === Command.pong_client)) {
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    }
    const ping = log.sent.find((message) => message[FrameLayout.command.offset] === Command.ping_client)!
    assert.strictEqual(u128FromBytes(ping, PingClientLayout.client.offset), session.clientId)
    assert.strictEqual(ping[PingClientLayout.session.offset], Number((yield* session.stats).session))
  }))

  it.effect("a deadline without a reply fails with OutcomeUnknown and the ids; the session then carries on", () => Effect.gen(function* () {
    let blackHole = true
    const { ledger, log } = yield* sessionOn(yield* replica, { sent: [], received: [], dropped: [] }, (message) => blackHole && replyRequest(message) === 1)
    const call = yield* Effect.forkChild(ledger.createAccounts([accountInput(5n), accountInput(6n)]).pipe(Effect.provideService(RequestDeadline, 2_000)))
    yield* sent(log, 1)
    yield* TestClock.adjust(2_000)
    const error = yield* Effect.flip(Fiber.join(call))
    expect(error._tag === "OutcomeUnknown" ? [error.operation, error.ids] : error._tag).toEqual(["create_accounts", [5n, 6n]])
    // The replica's disk is real: the network heals only once the request is committed, so the
    // retransmission within the next 2 s (retries are at most ~1 s apart by then) gets its reply.
    yield* replyDropped(log, 1)
    blackHole = false
    const next = yield* Effect.forkChild(ledger.lookupAccounts([5n, 6n]))
    yield* TestClock.adjust(2_000)
    // The request did commit: a retry got its reply once the network healed, then the lookup ran.
    expect((yield* Fiber.join(next)).map((a) => a.id)).toEqual([5n, 6n])
  }))
})
