/**
 * layerMemory: the conformance suite with TestClock as cluster time, plus what only the
 * in-memory layer has (its store limits, its invariant checks).
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { layerMemory, Ledger, TransferFlags } from "../../src/index.ts"
import { accountInput, conformance, transferInput } from "./conformance.ts"

conformance("layerMemory", {
  layer: () => layerMemory({ verify: true }),
  advanceTime: (ms) => TestClock.adjust(ms)
})

describe("layerMemory only", () => {
  it.effect("a create batch beyond the store's capacity fails with StoreFull and changes nothing", () => Effect.gen(function* () {
    const ledger = yield* Ledger
    yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
    const error = yield* Effect.flip(ledger.createAccounts([accountInput(3n), accountInput(4n)]))
    expect([error._tag, error.message]).toEqual(["StoreFull", "the ledger store is full: at most 3 accounts"])
    expect((yield* ledger.lookupAccounts([3n, 4n])).length).toBe(0)
    assert.strictEqual((yield* ledger.createAccounts([accountInput(3n)]))[0]!.status, "created")
  }).pipe(Effect.provide(layerMemory({ accountsMax: 3 }))))

  it.effect("interrupting waiting callers leaves the actor serving the others", () => Effect.gen(function* () {
    const ledger = yield* Ledger
    yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
    const fibers = yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), (i) =>
      Effect.forkChild(ledger.createTransfers([transferInput(BigInt(i + 1), 1n, 2n, 1n)])))
    yield* Effect.forEach(fibers.filter((_, i) => i % 2 === 0), Fiber.interrupt)
    const done = yield* Effect.forEach(fibers.filter((_, i) => i % 2 === 1), Fiber.join)
    assert.isTrue(done.every(([r]) => r!.status === "created"))
    // An interrupted caller's request may still have executed, as with a cluster: ask the ledger.
    const stored = yield* ledger.lookupTransfers(Array.from({ length: 50 }, (_, i) => BigInt(i + 1)))
    const [a] = yield* ledger.lookupAccounts([1n])
    assert.strictEqual(a!.debits_posted, BigInt(stored.length))
    assert.isAtLeast(stored.length, 25)
  }).pipe(Effect.provide(layerMemory({ inboxCapacity: 4, verify: true }))))

  it.effect("the expiry timer pulses while the ledger is idle, not only before the next request", () => Effect.gen(function* () {
    const ledger = yield* Ledger
    yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
    const [pending] = yield* ledger.createTransfers([transferInput(10n, 1n, 2n, 5n, { flags: TransferFlags.pending, timeout: 1 })])
    const expiresAtMs = Number((pending!.timestamp + 1_000_000_000n + 999_999n) / 1_000_000n)
    yield* TestClock.adjust(expiresAtMs) // the timer wakes now; the pulse reserves [now, now + 8189 ns]
    yield* TestClock.adjust(1)
    // The pulse ran at the earlier instant, so this request starts at the clock: its slot is now + 1.
    // Had the pulse waited for this request, it would have reserved 8189 ns first.
    const [created] = yield* ledger.createAccounts([accountInput(3n)])
    assert.strictEqual(created!.timestamp, BigInt(expiresAtMs + 1) * 1_000_000n + 1n)
    const [a] = yield* ledger.lookupAccounts([1n])
    assert.strictEqual(a!.debits_pending, 0n)
  }).pipe(Effect.provide(layerMemory())))

  it.live("with the live clock, a pending transfer is released after its timeout", () => Effect.gen(function* () {
    const ledger = yield* Ledger
    yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
    yield* ledger.createTransfers([transferInput(10n, 1n, 2n, 5n, { flags: TransferFlags.pending, timeout: 1 })])
    yield* Effect.sleep(1_300)
    const [a] = yield* ledger.lookupAccounts([1n])
    assert.strictEqual(a!.debits_pending, 0n)
  }).pipe(Effect.provide(layerMemory())))

  it.effect("cluster time follows the Clock: timestamps are now in ns, and never go back", () => Effect.gen(function* () {
    const ledger = yield* Ledger
    yield* TestClock.adjust(5_000)
    const [first] = yield* ledger.createAccounts([accountInput(1n)])
    assert.strictEqual(first!.timestamp, 5_000_000_001n, "base = now (5 s in ns), the one event's slot is base + 1")
    const [second] = yield* ledger.createAccounts([accountInput(2n)])
    assert.strictEqual(second!.timestamp, 5_000_000_003n, "same instant: base = previous + 1")
  }).pipe(Effect.provide(layerMemory())))
})
