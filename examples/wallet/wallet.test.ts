/**
 * Property tests of the wallet service (wallet.ts), run twice with swapped layers: on the
 * in-memory ledger (`layerMemory()`, many runs, fast) and on a replica embedded in the test
 * process (`layerEmbedded` on a fresh temporary data file per run, fewer runs: each opens a
 * file). The tests are written against the `Wallet` and `Ledger` services only, so the same
 * file would run against a real cluster with `layerClient`.
 *
 * Inputs come from Effect's own Schema-derived arbitraries (`it.effect.prop` with Schemas);
 * a failing run prints the shrunk input and a replay token.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { TestClock } from "effect/testing"
import { layerEmbedded, layerMemory, Ledger } from "../../src/index.ts"
import { bankId, Wallet, type Balance } from "./wallet.ts"

// --- the layers under test ------------------------------------------------------------------------

/** An embedded replica on a data file in a fresh directory, deleted when the layer is released. */
const embeddedOnTemporaryFile = (): Layer.Layer<Ledger> => Layer.unwrap(Effect.map(
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "scarab-wallet-"))),
    (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))),
  (directory) => layerEmbedded({ path: join(directory, "wallet.scarab"), profile: "test" }))).pipe(Layer.orDie)

/** The wallet and, for the tests' own checks, the ledger beneath it. */
const walletOn = (ledger: Layer.Layer<Ledger>) => Wallet.layer().pipe(Layer.provideMerge(ledger), Layer.orDie)

const targets = [
  { name: "layerMemory()", layer: () => walletOn(layerMemory({ verify: true })), runs: 60 },
  { name: "layerEmbedded on a temporary file", layer: () => walletOn(embeddedOnTemporaryFile()), runs: 10 }
] as const

// --- generated inputs -----------------------------------------------------------------------------

const wallets = [10n, 11n, 12n] as const
/** Wallet 13 is never opened, so operations naming it must fail with WalletNotFound. */
const walletIds = [...wallets, 13n] as const
const opsMax = 20

const int = (minimum: number, maximum: number) => Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum, maximum })))
const big = (minimum: bigint, maximum: bigint) => Schema.BigInt.pipe(Schema.check(Schema.isBetweenBigInt({ minimum, maximum })))
const WalletIndex = int(0, walletIds.length - 1)
const OpIndex = int(0, opsMax - 1)
/** 0 is included: a non-positive amount is refused before anything is sent. */
const Amount = big(0n, 60n)

/**
 * One operation of a random session; operation `i` has id 100 + i. A capture or release names
 * the `hold`-th hold made so far (counting from the latest, wrapping around; the session starts
 * with one), or with `hold` = 4 a payment; a replay repeats an earlier operation, id included.
 */
const Op = Schema.Union([
  Schema.TaggedStruct("Deposit", { wallet: WalletIndex, amount: Amount }),
  Schema.TaggedStruct("Withdraw", { wallet: WalletIndex, amount: Amount }),
  Schema.TaggedStruct("Transfer", { from: WalletIndex, to: WalletIndex, amount: Amount }),
  Schema.TaggedStruct("Hold", { from: WalletIndex, to: WalletIndex, amount: Amount }),
  /** amount 0: capture the whole hold. */
  Schema.TaggedStruct("Capture", { hold: int(0, 4), amount: Amount }),
  Schema.TaggedStruct("Release", { hold: int(0, 4) }),
  Schema.TaggedStruct("Replay", { op: OpIndex })
])
type Op = typeof Op.Type
const Ops = Schema.Array(Op).pipe(Schema.check(Schema.isMaxLength(opsMax)))

const idOf = (index: number): bigint => BigInt(100 + index)

/** Every session starts with 40 in each wallet and a hold of 10 from the first wallet to the second. */
const setupHold: Step = { _tag: "Hold", id: 4n, from: 10n, to: 11n, amount: 10n }
const setup: ReadonlyArray<Step> = [
  ...wallets.map((wallet, i): Step => ({ _tag: "Deposit", id: BigInt(i + 1), wallet, amount: 40n })), setupHold
]

/** An operation with its ids resolved: what the wallet is asked, and what a replay repeats. */
interface WalletStep<Tag> { readonly _tag: Tag; readonly id: bigint; readonly wallet: bigint; readonly amount: bigint }
interface PaymentStep<Tag> { readonly _tag: Tag; readonly id: bigint; readonly from: bigint; readonly to: bigint; readonly amount: bigint }
type Step =
  | WalletStep<"Deposit"> | WalletStep<"Withdraw"> | PaymentStep<"Transfer"> | PaymentStep<"Hold">
  | { readonly _tag: "Capture"; readonly id: bigint; readonly hold: bigint; readonly amount: bigint }
  | { readonly _tag: "Release"; readonly id: bigint; readonly hold: bigint }

/** The steps of a session: ids assigned, holds resolved, replays copied. */
function stepsOf(ops: ReadonlyArray<Op>): Array<Step> {
  const steps: Array<Step> = []
  const holds: Array<bigint> = [setupHold.id]
  const byIndex: Array<Step | undefined> = []
  for (const [index, op] of ops.entries()) {
    const id = idOf(index)
    const holdOf = (k: number) => k === 4 ? setup[0]!.id : holds[holds.length - 1 - (k % holds.length)]!
    const step: Step | undefined =
      op._tag === "Deposit" || op._tag === "Withdraw" ? { _tag: op._tag, id, wallet: walletIds[op.wallet]!, amount: op.amount } as Step
      : op._tag === "Transfer" || op._tag === "Hold" ? { _tag: op._tag, id, from: walletIds[op.from]!, to: walletIds[op.to]!, amount: op.amount } as Step
      : op._tag === "Capture" ? { _tag: "Capture", id, hold: holdOf(op.hold), amount: op.amount }
      : op._tag === "Release" ? { _tag: "Release", id, hold: holdOf(op.hold) }
      : op.op < index ? byIndex[op.op] : undefined
    byIndex.push(op._tag === "Replay" ? undefined : step)
    if (op._tag === "Hold") holds.push(id)
    if (step !== undefined) steps.push(step)
  }
  return steps
}

// --- a model of the books -------------------------------------------------------------------------

/** A wallet's balance in the model: received minus paid, and the holds on either side. */
interface Books {
  readonly posted: Map<bigint, bigint>
  readonly held: Map<bigint, bigint>
  readonly incoming: Map<bigint, bigint>
  /** Transfers the ledger created, by id: what a replay or a capture finds. */
  readonly transfers: Map<bigint, { readonly hold?: { from: bigint; to: bigint; amount: bigint; state: "open" | "captured" | "released" } }>
  /** Ids whose transfer failed on the balances or a missing account: they stay failed (TigerBeetle's rule). */
  readonly burned: Set<bigint>
}

/** The expected outcome: "ok" or the tag of the error. */
type Outcome = "ok" | "InvalidAmount" | "WalletNotFound" | "InsufficientFunds" | "SameWallet" | "HoldNotFound" | "HoldClosed" | "CaptureExceedsHold" | "IdConflict"

const get = (map: Map<bigint, bigint>, wallet: bigint) => map.get(wallet) ?? 0n
const add = (map: Map<bigint, bigint>, wallet: bigint, amount: bigint) => map.set(wallet, get(map, wallet) + amount)
const isOpen = (wallet: bigint) => wallet === bankId || wallets.includes(wallet as (typeof wallets)[number])

/** What the wallet must answer to `step`, applying its effect to `books` when it succeeds. */
function predict(books: Books, step: Step): Outcome {
  const id = step.id
  if (step._tag !== "Capture" && step._tag !== "Release" && step.amount <= 0n) return "InvalidAmount"
  if ((step._tag === "Capture" || step._tag === "Release") && id === step.hold) return "IdConflict" // refused before sending
  if (books.transfers.has(id)) return "ok" // the same operation again: the ledger says `exists`
  if (books.burned.has(id)) return "IdConflict"
  const burn = (outcome: Outcome): Outcome => {
    books.burned.add(id)
    return outcome
  }
  if (step._tag === "Capture" || step._tag === "Release") {
    const found = books.transfers.get(step.hold)
    if (found === undefined) return burn("HoldNotFound")
    const hold = found.hold
    if (hold === undefined) return "HoldNotFound" // a payment, not a hold
    const amount = step._tag === "Capture" && step.amount > 0n ? step.amount : hold.amount
    if (amount > hold.amount) return "CaptureExceedsHold"
    if (hold.state !== "open") return "HoldClosed"
    add(books.held, hold.from, -hold.amount)
    add(books.incoming, hold.to, -hold.amount)
    if (step._tag === "Capture") {
      add(books.posted, hold.from, -amount)
      add(books.posted, hold.to, amount)
    }
    hold.state = step._tag === "Capture" ? "captured" : "released"
    books.transfers.set(id, {})
    return "ok"
  }
  const [from, to] = step._tag === "Deposit" ? [bankId, step.wallet] : step._tag === "Withdraw" ? [step.wallet, bankId] : [step.from, step.to]
  if (from === to) return "SameWallet"
  if (!isOpen(from) || !isOpen(to)) return burn("WalletNotFound")
  if (from !== bankId && get(books.posted, from) - get(books.held, from) < step.amount) return burn("InsufficientFunds")
  if (step._tag === "Hold") {
    add(books.held, from, step.amount)
    add(books.incoming, to, step.amount)
    books.transfers.set(id, { hold: { from, to, amount: step.amount, state: "open" } })
  } else {
    add(books.posted, from, -step.amount)
    add(books.posted, to, step.amount)
    books.transfers.set(id, {})
  }
  return "ok"
}

/** Runs `step` through the wallet and answers "ok" or its error's tag. */
const run = (step: Step) => Effect.gen(function* () {
  const wallet = yield* Wallet
  const action = step._tag === "Deposit" ? wallet.deposit(step)
    : step._tag === "Withdraw" ? wallet.withdraw(step)
    : step._tag === "Transfer" ? wallet.transfer(step)
    : step._tag === "Hold" ? wallet.hold(step)
    : step._tag === "Capture" ? wallet.capture({ id: step.id, hold: step.hold, ...(step.amount > 0n ? { amount: step.amount } : {}) })
    : wallet.release(step)
  return yield* action.pipe(Effect.as("ok" as Outcome), Effect.catch((error) => Effect.succeed(error._tag as Outcome)))
})

// --- checks on the real books ---------------------------------------------------------------------

const balances = Effect.gen(function* () {
  const wallet = yield* Wallet
  return yield* Effect.forEach(wallets, (id) => wallet.balance(id))
})

/** Double entry: over every account, bank included, debits equal credits, posted and pending. */
const assertMoneyConserved = Effect.gen(function* () {
  const ledger = yield* Ledger
  const accounts = yield* ledger.lookupAccounts([bankId, ...wallets])
  assert.strictEqual(accounts.length, wallets.length + 1)
  const sum = (field: "debits_posted" | "credits_posted" | "debits_pending" | "credits_pending") =>
    accounts.reduce((total, account) => total + account[field], 0n)
  assert.strictEqual(sum("debits_posted"), sum("credits_posted"), "posted debits = posted credits")
  assert.strictEqual(sum("debits_pending"), sum("credits_pending"), "pending debits = pending credits")
})

const modelBalances = (books: Books): Array<Balance> => wallets.map((id) => ({
  available: get(books.posted, id) - get(books.held, id), held: get(books.held, id), incoming: get(books.incoming, id)
}))

const openWallets = Effect.gen(function* () {
  const wallet = yield* Wallet
  yield* Effect.forEach(wallets, (id) => wallet.open(id))
  return wallet
})

// --- the properties, once per layer ---------------------------------------------------------------

for (const target of targets) {
  const provided = <A, E>(effect: Effect.Effect<A, E, Wallet | Ledger>) => Effect.provide(effect, target.layer())
  const options = { arbitrary: { runs: target.runs } }

  describe(`wallet on ${target.name}`, () => {
    it.effect.prop("every operation answers what a model of the books says; money is conserved and no wallet goes below zero after each",
      { ops: Ops }, ({ ops }) => provided(Effect.gen(function* () {
        yield* openWallets
        const books: Books = { posted: new Map(), held: new Map(), incoming: new Map(), transfers: new Map(), burned: new Set() }
        for (const step of setup) {
          assert.strictEqual(predict(books, step), "ok")
          assert.strictEqual(yield* run(step), "ok")
        }
        for (const step of stepsOf(ops)) {
          const expected = predict(books, step)
          assert.strictEqual(yield* run(step), expected, JSON.stringify(step, (_, v) => typeof v === "bigint" ? `${v}` : v))
          const actual = yield* balances
          expect(actual, "balances").toEqual(modelBalances(books))
          for (const balance of actual) assert.isAtLeast(Number(balance.available), 0)
          yield* assertMoneyConserved
        }
        const missing = yield* Effect.flip((yield* Wallet).balance(13n))
        assert.strictEqual(missing._tag, "WalletNotFound")
      })), options)

    it.effect.prop("a hold reduces the available funds; a capture or a release resolves it exactly once", {
      deposit: big(1n, 100n),
      heldPart: big(1n, 100n),
      resolution: Schema.Literals(["capture all", "capture part", "release"]),
      second: Schema.Literals(["capture", "release"])
    }, ({ deposit, heldPart, resolution, second }) => provided(Effect.gen(function* () {
      const wallet = yield* openWallets
      const [payer, payee] = wallets
      const held = 1n + (heldPart - 1n) % deposit // 1..deposit
      yield* wallet.deposit({ id: 1n, wallet: payer, amount: deposit })
      yield* wallet.hold({ id: 2n, from: payer, to: payee, amount: held })
      expect(yield* balances).toEqual([
        { available: deposit - held, held, incoming: 0n }, { available: 0n, held: 0n, incoming: held }, { available: 0n, held: 0n, incoming: 0n }
      ])
      const paid = resolution === "capture all" ? held : resolution === "capture part" ? (held + 1n) / 2n : 0n
      yield* resolution === "release" ? wallet.release({ id: 3n, hold: 2n })
        : wallet.capture({ id: 3n, hold: 2n, ...(resolution === "capture part" ? { amount: paid } : {}) })
      const resolved = yield* balances
      expect(resolved).toEqual([
        { available: deposit - paid, held: 0n, incoming: 0n }, { available: paid, held: 0n, incoming: 0n }, { available: 0n, held: 0n, incoming: 0n }
      ])
      // Any second resolution is refused, names the first, and moves nothing.
      const again = yield* Effect.flip(second === "capture" ? wallet.capture({ id: 4n, hold: 2n }) : wallet.release({ id: 4n, hold: 2n }))
      assert.strictEqual(again._tag, "HoldClosed")
      assert.strictEqual(again._tag === "HoldClosed" && again.outcome, resolution === "release" ? "released" : "captured")
      expect(yield* balances).toEqual(resolved)
      yield* assertMoneyConserved
    })), options)

    it.effect.prop("a withdrawal beyond the available funds fails with InsufficientFunds and changes nothing", {
      deposit: big(1n, 100n),
      held: big(0n, 100n),
      beyond: big(1n, 50n)
    }, ({ deposit, held, beyond }) => provided(Effect.gen(function* () {
      const wallet = yield* openWallets
      const [payer, payee] = wallets
      yield* wallet.deposit({ id: 1n, wallet: payer, amount: deposit })
      const holding = held % (deposit + 1n) // 0..deposit
      if (holding > 0n) yield* wallet.hold({ id: 2n, from: payer, to: payee, amount: holding })
      const before = yield* balances
      const amount = deposit - holding + beyond
      const error = yield* Effect.flip(wallet.withdraw({ id: 3n, wallet: payer, amount }))
      assert.strictEqual(error._tag, "InsufficientFunds")
      assert.deepStrictEqual(error._tag === "InsufficientFunds" && [error.wallet, error.amount], [payer, amount])
      expect(yield* balances).toEqual(before)
      // Exactly the available funds can be withdrawn.
      if (deposit > holding) yield* wallet.withdraw({ id: 4n, wallet: payer, amount: deposit - holding })
      assert.strictEqual((yield* wallet.balance(payer)).available, 0n)
    })), options)

    it.effect.prop("an operation retried with its id moves money once; its id reused for another operation is an IdConflict", {
      kind: Schema.Literals(["deposit", "withdraw", "transfer", "hold", "capture", "release"]),
      amount: big(1n, 40n)
    }, ({ kind, amount }) => provided(Effect.gen(function* () {
      const wallet = yield* openWallets
      const [payer, payee] = wallets
      yield* wallet.deposit({ id: 1n, wallet: payer, amount: 40n })
      yield* wallet.hold({ id: 2n, from: payer, to: payee, amount: 10n })
      const operation = (how: bigint) =>
        kind === "deposit" ? wallet.deposit({ id: 3n, wallet: payer, amount: how })
        : kind === "withdraw" ? wallet.withdraw({ id: 3n, wallet: payer, amount: how % 30n || 30n })
        : kind === "transfer" ? wallet.transfer({ id: 3n, from: payer, to: payee, amount: how % 30n || 30n })
        : kind === "hold" ? wallet.hold({ id: 3n, from: payer, to: payee, amount: how % 30n || 30n })
        : kind === "capture" ? wallet.capture({ id: 3n, hold: 2n, amount: how % 10n || 10n })
        : wallet.release({ id: 3n, hold: 2n })
      yield* operation(amount)
      const once = yield* balances
      yield* operation(amount)
      expect(yield* balances).toEqual(once)
      if (kind !== "release") {
        const other = amount === 1n ? 2n : amount - 1n
        const conflict = yield* Effect.flip(operation(other))
        assert.strictEqual(conflict._tag, "IdConflict")
        expect(yield* balances).toEqual(once)
      }
      yield* assertMoneyConserved
    })), options)

    it.effect.prop("an expired hold gives the funds back and can no longer be captured", {
      amount: big(1n, 100n),
      timeoutSeconds: int(1, 5)
    }, ({ amount, timeoutSeconds }) => provided(Effect.gen(function* () {
      const wallet = yield* openWallets
      const [payer, payee] = wallets
      yield* wallet.deposit({ id: 1n, wallet: payer, amount })
      yield* wallet.hold({ id: 2n, from: payer, to: payee, amount, timeoutSeconds })
      // Just before the timeout the funds are still held; a second past it they are back.
      yield* TestClock.adjust(timeoutSeconds * 1000 - 500)
      assert.strictEqual((yield* wallet.balance(payer)).held, amount)
      yield* TestClock.adjust(1500)
      expect(yield* wallet.balance(payer)).toEqual({ available: amount, held: 0n, incoming: 0n })
      const late = yield* Effect.flip(wallet.capture({ id: 3n, hold: 2n }))
      assert.strictEqual(late._tag === "HoldClosed" && late.outcome, "expired")
    })), { ...options, arbitrary: { runs: Math.min(target.runs, 10) } })
  })
}

describe("wallet input checks (no ledger request is made for them)", () => {
  it.effect.prop("ids outside 1 .. 2^128 - 3 and non-positive amounts are refused with typed errors", {
    id: Schema.Literals([0n, bankId, (1n << 128n) - 1n]),
    amount: big(-5n, 0n)
  }, ({ id, amount }) => Effect.gen(function* () {
    const wallet = yield* openWallets
    assert.strictEqual((yield* Effect.flip(wallet.open(id)))._tag, "InvalidId")
    assert.strictEqual((yield* Effect.flip(wallet.deposit({ id, wallet: wallets[0], amount: 1n })))._tag, "InvalidId")
    assert.strictEqual((yield* Effect.flip(wallet.transfer({ id: 1n, from: id, to: wallets[0], amount: 1n })))._tag, "InvalidId")
    assert.strictEqual((yield* Effect.flip(wallet.deposit({ id: 1n, wallet: wallets[0], amount })))._tag, "InvalidAmount")
    assert.strictEqual((yield* Effect.flip(wallet.capture({ id: 1n, hold: 2n, amount })))._tag, "InvalidAmount")
    // Nothing reached the ledger: the wallet is still empty, and id 1 is still free.
    yield* wallet.deposit({ id: 1n, wallet: wallets[0], amount: 7n })
    assert.strictEqual((yield* wallet.balance(wallets[0])).available, 7n)
  }).pipe(Effect.provide(walletOn(layerMemory()))), { arbitrary: { runs: 20 } })
})
