/**
 * The conformance suite of the Ledger service: written against the service interface only, so
 * that every layer (layerMemory now; layerEmbedded and layerClient when they exist) runs the same
 * tests. A layer plugs in with a fresh-ledger factory and a way to let cluster time pass.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema, Stream } from "effect"
import {
  AccountFilterFlags, AccountFlags, batchEventsMax, InvalidRequest, Ledger, Operation, QueryFilterFlags,
  TooMuchData, TransferFlags, type AccountInput, type TransferInput
} from "../../src/index.ts"
import { decodeCreateResult, encodeBatch, encodeIds, encodeTransfer, transfer as transferRecord } from "../../src/protocol/records.ts"

export interface ConformanceTarget {
  /** A layer providing a fresh, empty ledger. */
  readonly layer: () => Layer.Layer<Ledger>
  /** Lets `ms` of cluster time pass (TestClock.adjust for layerMemory). */
  readonly advanceTime: (ms: number) => Effect.Effect<void>
  /**
   * Run the tests with the live clock (`it.live`) instead of TestClock (`it.effect`): for layers
   * whose time is not Effect's Clock, such as a client of a replica in another process.
   */
  readonly liveClock?: boolean
}

const ledgerId = 700
const code = 10
const u128Max = (1n << 128n) - 1n
const nsPerSecond = 1_000_000_000n

export const accountInput = (id: bigint, fields: Partial<AccountInput> = {}): AccountInput => ({ id, ledger: ledgerId, code, ...fields })
export const transferInput = (id: bigint, debit: bigint, credit: bigint, amount: bigint, fields: Partial<TransferInput> = {}): TransferInput =>
  ({ id, debit_account_id: debit, credit_account_id: credit, amount, ledger: ledgerId, code, ...fields })

export function conformance(name: string, target: ConformanceTarget): void {
  const run = <A, E>(effect: Effect.Effect<A, E, Ledger>) => Effect.provide(effect, target.layer())
  const test = target.liveClock === true ? it.live : it.effect

  describe(`Ledger conformance: ${name}`, () => {
    describe("creates and lookups", () => {
      test("create_accounts answers one result per event, by name and wire code, with consecutive timestamps", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        const results = yield* ledger.createAccounts([accountInput(1n), accountInput(2n), { id: 3n, code }, accountInput(1n)])
        expect(results.map((r) => r.status)).toEqual(["created", "created", "ledger_must_not_be_zero", "exists"])
        expect(results.map((r) => r.statusCode)).toEqual([0xffff_ffff, 0xffff_ffff, 13, 21])
        assert.strictEqual(results[1]!.timestamp, results[0]!.timestamp + 1n)
        assert.strictEqual(results[3]!.timestamp, results[0]!.timestamp, "exists answers the existing account's timestamp")
        const [one] = yield* ledger.lookupAccounts([1n])
        assert.strictEqual(one!.timestamp, results[0]!.timestamp)
        expect(yield* ledger.createAccounts([])).toEqual([])
      })))

      test("lookups return stored records in request order, skip missing ids and repeat duplicates", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        yield* ledger.createAccounts([accountInput(1n, { user_data_128: u128Max, user_data_64: 7n, user_data_32: 9, flags: AccountFlags.history }), accountInput(2n)])
        const accounts = yield* ledger.lookupAccounts([2n, 99n, 1n, 0n, u128Max, 2n])
        expect(accounts.map((a) => a.id)).toEqual([2n, 1n, 2n])
        const one = accounts[1]!
        expect([one.user_data_128, one.user_data_64, one.user_data_32, one.flags, one.ledger, one.code])
          .toEqual([u128Max, 7n, 9, AccountFlags.history, ledgerId, code])
        expect(yield* ledger.lookupTransfers([1n, 2n])).toEqual([])
      })))

      test("a failed transfer is a result with its status; balances move only for created transfers", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        yield* ledger.createAccounts([accountInput(1n), accountInput(2n, { flags: AccountFlags.debits_must_not_exceed_credits })])
        const results = yield* ledger.createTransfers([
          transferInput(10n, 1n, 2n, 100n),
          transferInput(11n, 2n, 1n, 150n),
          transferInput(12n, 1n, 3n, 5n),
          transferInput(13n, 2n, 1n, 60n, { user_data_64: 5n })
        ])
        expect(results.map((r) => r.status)).toEqual(["created", "exceeds_credits", "credit_account_not_found", "created"])
        const [a, b] = yield* ledger.lookupAccounts([1n, 2n])
        expect([a!.debits_posted, a!.credits_posted, b!.debits_posted, b!.credits_posted]).toEqual([100n, 60n, 60n, 100n])
        const transfers = yield* ledger.lookupTransfers([13n, 11n, 10n])
        expect(transfers.map((t) => [t.id, t.amount, t.user_data_64, t.timestamp])).toEqual([
          [13n, 60n, 5n, results[3]!.timestamp], [10n, 100n, 0n, results[0]!.timestamp]
        ])
      })))

      test("two-phase: a pending transfer holds, its post moves the amount and releases the hold", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
        yield* ledger.createTransfers([transferInput(10n, 1n, 2n, 100n, { flags: TransferFlags.pending })])
        let [a] = yield* ledger.lookupAccounts([1n])
        expect([a!.debits_pending, a!.debits_posted]).toEqual([100n, 0n])
        const post = yield* ledger.createTransfers([{ id: 11n, pending_id: 10n, amount: 40n, flags: TransferFlags.post_pending_transfer }])
        assert.strictEqual(post[0]!.status, "created")
        ;[a] = yield* ledger.lookupAccounts([1n])
        expect([a!.debits_pending, a!.debits_posted]).toEqual([0n, 40n])
        const again = yield* ledger.createTransfers([{ id: 12n, pending_id: 10n, flags: TransferFlags.void_pending_transfer }])
        assert.strictEqual(again[0]!.status, "pending_transfer_already_posted")
      })))
    })

    describe("reads", () => {
      const setup = Effect.gen(function* () {
        const ledger = yield* Ledger
        yield* ledger.createAccounts([
          accountInput(1n, { flags: AccountFlags.history, user_data_32: 1 }),
          accountInput(2n, { user_data_32: 1 }),
          accountInput(3n, { code: 20 })
        ])
        const transfers = Array.from({ length: 6 }, (_, i) =>
          transferInput(BigInt(100 + i), i % 2 === 0 ? 1n : 2n, i % 2 === 0 ? 2n : 1n, BigInt(i + 1), { code: i < 3 ? 1 : 2 }))
        yield* ledger.createTransfers(transfers)
        return ledger
      })

      test("get_account_transfers filters by side, code and direction", () => run(Effect.gen(function* () {
        const ledger = yield* setup
        const all = yield* ledger.getAccountTransfers({ account_id: 1n })
        expect(all.map((t) => t.id)).toEqual([100n, 101n, 102n, 103n, 104n, 105n])
        const debits = yield* ledger.getAccountTransfers({ account_id: 1n, flags: AccountFilterFlags.debits | AccountFilterFlags.reversed })
        expect(debits.map((t) => t.id)).toEqual([104n, 102n, 100n])
        const code2 = yield* ledger.getAccountTransfers({ account_id: 1n, code: 2, limit: 2 })
        expect(code2.map((t) => t.id)).toEqual([103n, 104n])
        expect(yield* ledger.getAccountTransfers({ account_id: 1n, flags: 0 })).toEqual([]) // invalid filter: empty
      })))

      test("get_account_balances answers the history of accounts with flags.history only", () => run(Effect.gen(function* () {
        const ledger = yield* setup
        const balances = yield* ledger.getAccountBalances({ account_id: 1n })
        expect(balances.map((b) => [b.debits_posted, b.credits_posted])).toEqual([[1n, 0n], [1n, 2n], [4n, 2n], [4n, 6n], [9n, 6n], [9n, 12n]])
        expect(yield* ledger.getAccountBalances({ account_id: 2n })).toEqual([])
      })))

      test("query_accounts and query_transfers match every nonzero field", () => run(Effect.gen(function* () {
        const ledger = yield* setup
        expect((yield* ledger.queryAccounts({ user_data_32: 1 })).map((a) => a.id)).toEqual([1n, 2n])
        expect((yield* ledger.queryAccounts({ code: 20 })).map((a) => a.id)).toEqual([3n])
        expect((yield* ledger.queryAccounts({ flags: QueryFilterFlags.reversed, limit: 2 })).map((a) => a.id)).toEqual([3n, 2n])
        expect((yield* ledger.queryTransfers({ code: 1 })).map((t) => t.id)).toEqual([100n, 101n, 102n])
        expect((yield* ledger.queryTransfers({ ledger: 1 }))).toEqual([])
      })))
    })

    describe("request errors are typed, never thrown", () => {
      test("an out-of-range u128 names the event and the field", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        const negative = yield* Effect.flip(ledger.createAccounts([accountInput(1n), accountInput(-1n)]))
        assert.instanceOf(negative, InvalidRequest)
        expect([negative.operation, negative.index, negative.field]).toEqual(["create_accounts", 1, "id"])
        expect(negative.message).toMatch(/create_accounts event 1 field id: .*between 0n and 340282366920938463463374607431768211455n/)
        const tooBig = yield* Effect.flip(ledger.createTransfers([transferInput(1n, 1n, 2n, 1n << 128n)]))
        expect([tooBig._tag, (tooBig as InvalidRequest).index, (tooBig as InvalidRequest).field]).toEqual(["InvalidRequest", 0, "amount"])
        // Nothing of a refused request was executed.
        expect(yield* ledger.lookupAccounts([1n])).toEqual([])
      })))

      test("u64, u32 and u16 fields are range-checked, and so are wrong types", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        const cases: Array<[TransferInput, string]> = [
          [transferInput(1n, 1n, 2n, 1n, { user_data_64: 1n << 64n }), "user_data_64"],
          [transferInput(1n, 1n, 2n, 1n, { timeout: 2 ** 32 }), "timeout"],
          [transferInput(1n, 1n, 2n, 1n, { code: 65536 }), "code"],
          [transferInput(1n, 1n, 2n, 1n, { ledger: 1.5 }), "ledger"],
          [transferInput(1n, 1n, 2n, 1n, { flags: -1 }), "flags"],
          [{ ...transferInput(1n, 1n, 2n, 1n), pending_id: 5 as unknown as bigint }, "pending_id"]
        ]
        for (const [input, field] of cases) {
          const error = yield* Effect.flip(ledger.createTransfers([input]))
          expect([error._tag, (error as InvalidRequest).field]).toEqual(["InvalidRequest", field])
        }
        const id = yield* Effect.flip(ledger.lookupTransfers([1n, -5n]))
        expect([id._tag, (id as InvalidRequest).index]).toEqual(["InvalidRequest", 1])
        const filter = yield* Effect.flip(ledger.getAccountTransfers({ account_id: 1n, timestamp_min: 1n << 63n }))
        expect([filter._tag, (filter as InvalidRequest).field]).toEqual(["InvalidRequest", "timestamp_min"])
      })))

      test("JavaScript callers: undefined fields are defaults, other shapes are InvalidRequest", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        const [created] = yield* ledger.createAccounts([{ id: 1n, ledger: ledgerId, code, flags: undefined } as unknown as AccountInput])
        assert.strictEqual(created!.status, "created")
        const notArray = yield* Effect.flip(ledger.createTransfers(null as never))
        expect([notArray._tag, notArray.message]).toEqual(["InvalidRequest", "create_transfers: expected an array of events"])
        const noId = yield* Effect.flip(ledger.createAccounts([{ ledger: ledgerId, code } as unknown as AccountInput]))
        expect([noId._tag, (noId as InvalidRequest).field]).toEqual(["InvalidRequest", "id"])
        const notBytes = yield* Effect.flip(ledger.submit(Operation.lookup_accounts, [1, 2] as never))
        assert.strictEqual(notBytes._tag, "InvalidRequest")
        const notFilter = yield* Effect.flip(ledger.queryAccounts(undefined as never))
        assert.strictEqual(notFilter._tag, "InvalidRequest")
      })))

      test("more than 8189 events, or a limit above 8189, is TooMuchData", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        const accounts = Array.from({ length: batchEventsMax + 1 }, (_, i) => accountInput(BigInt(i + 1)))
        const tooMany = yield* Effect.flip(ledger.createAccounts(accounts))
        assert.instanceOf(tooMany, TooMuchData)
        expect([tooMany.count, tooMany.max]).toEqual([8190, 8189])
        const ids = yield* Effect.flip(ledger.lookupAccounts(accounts.map((a) => a.id)))
        assert.strictEqual(ids._tag, "TooMuchData")
        const limit = yield* Effect.flip(ledger.queryTransfers({ limit: 8190 }))
        assert.strictEqual(limit._tag, "TooMuchData")
        const stream = yield* Effect.flip(Stream.runCollect(ledger.accountTransfersStream({ account_id: 1n, limit: 10_000 })))
        assert.strictEqual(stream._tag, "TooMuchData")
        // Exactly 8189 is fine.
        const results = yield* ledger.createAccounts(accounts.slice(0, batchEventsMax))
        assert.strictEqual(results.length, batchEventsMax)
        assert.isTrue(results.every((r) => r.status === "created"))
      })))
    })

    describe("zero-copy batches", () => {
      test("submit executes a binary batch and answers the binary reply", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
        const body = encodeBatch([1, 2, 3].map((i) => transferRecord({
          id: BigInt(i), debit_account_id: 1n, credit_account_id: 2n, amount: 10n, ledger: ledgerId, code
        })), 128, encodeTransfer)
        const reply = yield* ledger.submit(Operation.create_transfers, body)
        assert.strictEqual(reply.length, 3 * 16)
        expect([0, 16, 32].map((offset) => decodeCreateResult(reply, offset).status)).toEqual([0xffff_ffff, 0xffff_ffff, 0xffff_ffff])
        const lookup = yield* ledger.submit(Operation.lookup_transfers, encodeIds([3n, 9n]))
        assert.strictEqual(lookup.length, 128)
        const [b] = yield* ledger.lookupAccounts([2n])
        assert.strictEqual(b!.credits_posted, 30n)
      })))

      test("submit refuses malformed bodies with typed errors", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        const ragged = yield* Effect.flip(ledger.submit(Operation.create_transfers, new Uint8Array(130)))
        expect([ragged._tag, ragged.message]).toEqual(["InvalidRequest", "create_transfers: a body of 130 bytes is not a whole number of 128-byte events"])
        const twoFilters = yield* Effect.flip(ledger.submit(Operation.query_accounts, new Uint8Array(128)))
        assert.strictEqual(twoFilters._tag, "InvalidRequest")
        const pulse = yield* Effect.flip(ledger.submit(Operation.pulse as never, new Uint8Array(0)))
        assert.strictEqual(pulse._tag, "InvalidRequest")
        const tooMany = yield* Effect.flip(ledger.submit(Operation.lookup_accounts, new Uint8Array(16 * (batchEventsMax + 1))))
        assert.strictEqual(tooMany._tag, "TooMuchData")
      })))
    })

    describe("streams page by timestamp", () => {
      const transfersBetween = (count: number) => Effect.gen(function* () {
        const ledger = yield* Ledger
        yield* ledger.createAccounts([accountInput(1n, { flags: AccountFlags.history }), accountInput(2n)])
        const results = yield* ledger.createTransfers(Array.from({ length: count }, (_, i) => transferInput(BigInt(i + 1), 1n, 2n, 1n, { user_data_32: i % 3 })))
        assert.isTrue(results.every((r) => r.status === "created"))
        return ledger
      })
      const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i))

      test("an account's transfers over many pages, forwards and reversed, within bounds", () => run(Effect.gen(function* () {
        const ledger = yield* transfersBetween(25)
        const forwards = yield* Stream.runCollect(ledger.accountTransfersStream({ account_id: 1n, limit: 4 }))
        expect(forwards.map((t) => t.id)).toEqual(ids(1, 25))
        const backwards = yield* Stream.runCollect(ledger.accountTransfersStream({ account_id: 2n, limit: 3, flags: AccountFilterFlags.credits | AccountFilterFlags.reversed }))
        expect(backwards.map((t) => t.id)).toEqual(ids(1, 25).reverse())
        const [third, tenth] = yield* ledger.lookupTransfers([3n, 10n])
        const window = yield* Stream.runCollect(ledger.accountTransfersStream({ account_id: 1n, limit: 2, timestamp_min: third!.timestamp, timestamp_max: tenth!.timestamp }))
        expect(window.map((t) => t.id)).toEqual(ids(3, 10))
        const windowBack = yield* Stream.runCollect(ledger.accountTransfersStream({
          account_id: 1n, limit: 2, timestamp_min: third!.timestamp, timestamp_max: tenth!.timestamp,
          flags: AccountFilterFlags.debits | AccountFilterFlags.reversed
        }))
        expect(windowBack.map((t) => t.id)).toEqual(ids(3, 10).reverse())
        // A page count that divides exactly ends on the empty page after the last full one.
        const exact = yield* Stream.runCollect(ledger.accountTransfersStream({ account_id: 1n, limit: 5 }))
        assert.strictEqual(exact.length, 25)
        // Only as many pages as consumed are fetched.
        const firstSix = yield* Stream.runCollect(Stream.take(ledger.accountTransfersStream({ account_id: 1n, limit: 4 }), 6))
        expect(firstSix.map((t) => t.id)).toEqual(ids(1, 6))
      })))

      test("balances and query streams page the same way", () => run(Effect.gen(function* () {
        const ledger = yield* transfersBetween(17)
        const balances = (yield* Stream.runCollect(ledger.accountBalancesStream({ account_id: 1n, limit: 4 })))
        expect(balances.map((b) => b.debits_posted)).toEqual(ids(1, 17))
        const filtered = (yield* Stream.runCollect(ledger.queryTransfersStream({ user_data_32: 1, limit: 2 })))
        expect(filtered.map((t) => t.id)).toEqual([2n, 5n, 8n, 11n, 14n, 17n])
        const reversed = (yield* Stream.runCollect(ledger.queryTransfersStream({ limit: 5, flags: QueryFilterFlags.reversed })))
        expect(reversed.map((t) => t.id)).toEqual(ids(1, 17).reverse())
        const accounts = (yield* Stream.runCollect(ledger.queryAccountsStream({ limit: 1 })))
        expect(accounts.map((a) => a.id)).toEqual([1n, 2n])
      })))

      test("an invalid filter fails the stream with a typed error", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        const error = yield* Effect.flip(Stream.runCollect(ledger.queryAccountsStream({ limit: -1 })))
        expect([error._tag, (error as InvalidRequest).field]).toEqual(["InvalidRequest", "limit"])
      })))
    })

    describe("expiry of pending transfers", () => {
      test("a pending amount is held until its timeout, then released; posting it fails", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
        const [ten, eleven] = yield* ledger.createTransfers([
          transferInput(10n, 1n, 2n, 100n, { flags: TransferFlags.pending, timeout: 2 }),
          transferInput(11n, 1n, 2n, 7n, { flags: TransferFlags.pending, timeout: 4 })
        ])
        const expiresTen = ten!.timestamp + 2n * nsPerSecond
        const expiresEleven = eleven!.timestamp + 4n * nsPerSecond
        // Each lookup is followed by a probe: the creation of an account of its own, whose
        // timestamp is past the instant of cluster time the lookup saw. An amount is held until a
        // pulse at or after its expiry releases it (the earlier expiry first), so the probe says
        // which amounts the lookup may show; under TestClock exactly one.
        let probeId = 900n
        const look = Effect.gen(function* () {
          const [a, b] = yield* ledger.lookupAccounts([1n, 2n])
          const [probe] = yield* ledger.createAccounts([accountInput(probeId++)])
          assert.strictEqual(a!.debits_pending, b!.credits_pending)
          const held = probe!.timestamp < expiresTen ? [107n] : probe!.timestamp < expiresEleven ? [107n, 7n] : [107n, 7n, 0n]
          expect(held).toContain(a!.debits_pending)
          return a!
        })
        // Under TestClock a pulse runs the moment its expiry comes, so one step of time shows the
        // release. A live cluster pulses on its own clock, which a loaded machine runs late: there
        // the test looks again, 100 ms of real time apart, until the release shows (a bound for a
        // cluster that never releases it).
        const pollsMax = target.liveClock === true ? 600 : 0
        const until = Effect.fnUntraced(function* (released: (a: Effect.Success<typeof look>) => boolean) {
          let a = yield* look
          for (let poll = 0; poll < pollsMax && !released(a); poll++) {
            yield* target.advanceTime(100)
            a = yield* look
          }
          assert.isTrue(released(a), `still held: ${a.debits_pending}`)
          return a
        })
        yield* target.advanceTime(1_000)
        yield* look
        // 0.5 s past the first timeout, the margin spec §10.5 allows.
        yield* target.advanceTime(1_500)
        const afterTen = yield* until((a) => a.debits_pending !== 107n)
        if (target.liveClock !== true) assert.strictEqual(afterTen.debits_pending, 7n)
        const post = yield* ledger.createTransfers([{ id: 12n, pending_id: 10n, flags: TransferFlags.post_pending_transfer }])
        assert.strictEqual(post[0]!.status, "pending_transfer_expired")
        yield* target.advanceTime(2_000)
        const afterEleven = yield* until((a) => a.debits_pending === 0n)
        expect([afterEleven.debits_pending, afterEleven.debits_posted]).toEqual([0n, 0n])
      })))
    })

    describe("concurrency", () => {
      test("concurrent fibers are serialised: every transfer applied once, balances zero-sum", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        const accounts = 6
        yield* ledger.createAccounts(Array.from({ length: accounts }, (_, i) => accountInput(BigInt(i + 1))))
        const fibers = 64, perFiber = 16
        const results = yield* Effect.forEach(Array.from({ length: fibers }, (_, f) => f), (f) => Effect.gen(function* () {
          const out: Array<[bigint, string]> = []
          for (let k = 0; k < perFiber; k++) {
            const id = BigInt(1000 + f * perFiber + k)
            const debit = BigInt((f + k) % accounts + 1)
            const credit = BigInt((f + 2 * k + 1) % accounts + 1)
            const [result] = yield* ledger.createTransfers(debit === credit ? [] : [transferInput(id, debit, credit, BigInt(k + 1))])
            if (result !== undefined) out.push([id, result.status])
          }
          return out
        }), { concurrency: "unbounded" })
        const created = results.flat()
        assert.isTrue(created.every(([, status]) => status === "created"))
        const stored = yield* ledger.lookupTransfers(created.map(([id]) => id))
        assert.strictEqual(stored.length, created.length)
        const timestamps = new Set(stored.map((t) => t.timestamp))
        assert.strictEqual(timestamps.size, stored.length, "every transfer has its own timestamp")
        const balances = yield* ledger.lookupAccounts(Array.from({ length: accounts }, (_, i) => BigInt(i + 1)))
        const sum = (f: (a: (typeof balances)[number]) => bigint) => balances.reduce((s, a) => s + f(a), 0n)
        const moved = stored.reduce((s, t) => s + t.amount, 0n)
        expect([sum((a) => a.debits_posted), sum((a) => a.credits_posted)]).toEqual([moved, moved])
      })))
    })

    describe("concurrent spending", () => {
      test("fibers racing to spend one balance: exactly as many succeed as it covers", () => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        yield* ledger.createAccounts([accountInput(1n), accountInput(2n, { flags: AccountFlags.debits_must_not_exceed_credits })])
        yield* ledger.createTransfers([transferInput(1n, 1n, 2n, 100n)])
        const statuses = yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) =>
          Effect.map(ledger.createTransfers([transferInput(BigInt(100 + i), 2n, 1n, 10n)]), ([r]) => r!.status),
          { concurrency: "unbounded" })
        assert.strictEqual(statuses.filter((s) => s === "created").length, 10)
        assert.strictEqual(statuses.filter((s) => s === "exceeds_credits").length, 30)
        const [, wallet] = yield* ledger.lookupAccounts([1n, 2n])
        expect([wallet!.debits_posted, wallet!.credits_posted]).toEqual([100n, 100n])
      })))
    })

    describe("properties", () => {
      const Move = Schema.Struct({
        from: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 4 }))),
        to: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 4 }))),
        amount: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 50 }))),
        pending: Schema.Boolean
      })
      const Moves = Schema.Array(Move).pipe(Schema.check(Schema.isMaxLength(40)))

      test.prop("random transfers among bounded accounts keep the books balanced and each bound", { moves: Moves }, ({ moves }) =>
        run(Effect.gen(function* () {
          const ledger = yield* Ledger
          // Account 1 may go negative; the others must not spend more than they received.
          yield* ledger.createAccounts([1n, 2n, 3n, 4n].map((id) =>
            accountInput(id, { flags: id === 1n ? 0 : AccountFlags.debits_must_not_exceed_credits })))
          const results = yield* ledger.createTransfers(moves.map((m, i) =>
            transferInput(BigInt(i + 1), BigInt(m.from), BigInt(m.to), BigInt(m.amount), { flags: m.pending ? TransferFlags.pending : 0 })))
          const accounts = yield* ledger.lookupAccounts([1n, 2n, 3n, 4n])
          const sum = (f: (a: (typeof accounts)[number]) => bigint) => accounts.reduce((s, a) => s + f(a), 0n)
          assert.strictEqual(sum((a) => a.debits_posted), sum((a) => a.credits_posted))
          assert.strictEqual(sum((a) => a.debits_pending), sum((a) => a.credits_pending))
          for (const a of accounts.slice(1)) assert.isTrue(a.debits_pending + a.debits_posted <= a.credits_posted)
          // Every created transfer is stored as submitted; every failed one is absent.
          const created = moves.flatMap((m, i) => results[i]!.status === "created" ? [{ ...m, id: BigInt(i + 1) }] : [])
          const stored = yield* ledger.lookupTransfers(moves.map((_, i) => BigInt(i + 1)))
          expect(stored.map((t) => [t.id, Number(t.debit_account_id), Number(t.credit_account_id), Number(t.amount)]))
            .toEqual(created.map((m) => [m.id, m.from, m.to, m.amount]))
          for (const [i, m] of moves.entries()) {
            if (m.from === m.to) assert.strictEqual(results[i]!.status, "accounts_must_be_different")
          }
        })), { arbitrary: { runs: 40 } })

      test.prop("lookups return exactly the accounts that were created, field by field", {
        userData: Schema.Array(Schema.BigInt.pipe(Schema.check(Schema.isBetweenBigInt({ minimum: 0n, maximum: u128Max })))).pipe(Schema.check(Schema.isMaxLength(20)))
      }, ({ userData }) => run(Effect.gen(function* () {
        const ledger = yield* Ledger
        const inputs = userData.map((u, i) => accountInput(BigInt(i + 1), { user_data_128: u, user_data_64: u & ((1n << 64n) - 1n), code: (i % 65535) + 1 }))
        const results = yield* ledger.createAccounts(inputs)
        const found = yield* ledger.lookupAccounts(inputs.map((a) => a.id))
        expect(found.map((a) => [a.id, a.user_data_128, a.user_data_64, a.code, a.timestamp]))
          .toEqual(inputs.map((a, i) => [a.id, a.user_data_128, a.user_data_64, a.code, results[i]!.timestamp]))
      })), { arbitrary: { runs: 40 } })
    })
  })
}
