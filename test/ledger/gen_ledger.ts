/**
 * fast-check generators of ledger workloads for the property tests: sequences of steps (create
 * batches, reads, clock advances, pulses) biased so that most events are interesting.
 *
 * Ids come from small pools so that exists, duplicates, burnt ids and post/void references to
 * earlier pending transfers happen often; flags cover every combination including linked chains
 * that stay open; amounts cluster near 0 and near 2^128 so that balancing, limits and every
 * overflow check fire; imported batches carry timestamps relative to the cluster clock, resolved
 * only when the step runs (the generator does not know the clock). Steps are plain data, so that
 * fast-check can shrink and print a failing sequence.
 */
import fc from "fast-check"
import { AMOUNT_MAX, MAX128, MAX63, MAX64 } from "./reference/codec.ts"
import { AF, AFF, Op, TF } from "./reference/model.ts"

/** Account ids 1..accountPool are the interesting ones; transfers ids 1..transferPool. */
export const accountPool = 8
/** Account ids above the pool that random account batches may still create. */
export const accountIdMax = 16
export const transferPool = 24

/** An event timestamp: 0, a fixed value, or relative to the previous request timestamp `prev`. */
export type TimestampSpec =
  | { readonly mode: "value"; readonly value: bigint }
  /** prev + 1 + offset: the free nanosecond before the batch's slots, then the slots themselves. */
  | { readonly mode: "fresh"; readonly offset: number }
  /** prev - back: in the past, so most likely a regression. */
  | { readonly mode: "back"; readonly back: bigint }
  /** The timestamp of the `back`-th newest existing account or transfer, plus `delta`. */
  | { readonly mode: "object"; readonly of: "account" | "transfer"; readonly back: number; readonly delta: number }
  /** One nanosecond before the transfer's own debit or credit account was created. */
  | { readonly mode: "before_account"; readonly side: "debit" | "credit" }

export interface AccountSpec {
  readonly id: bigint
  readonly debits_pending: bigint
  readonly debits_posted: bigint
  readonly credits_pending: bigint
  readonly credits_posted: bigint
  readonly user_data_128: bigint
  readonly user_data_64: bigint
  readonly user_data_32: number
  readonly reserved: number
  readonly ledger: number
  readonly code: number
  readonly flags: number
  readonly timestamp: TimestampSpec
}

/**
 * The pending id of a transfer event: a literal id, the `back`-th most recent pending transfer of
 * the ledger (0 = newest; of all, or of those still unresolved), the id of the event `back` places earlier in the same batch, or the
 * event's own id.
 */
export type PendingRef =
  | { readonly mode: "id"; readonly id: bigint }
  | { readonly mode: "recent"; readonly back: number }
  | { readonly mode: "unresolved"; readonly back: number }
  | { readonly mode: "earlier"; readonly back: number }
  | { readonly mode: "self" }

export interface TransferSpec {
  readonly id: bigint
  readonly debit_account_id: bigint
  readonly credit_account_id: bigint
  readonly amount: bigint
  readonly pending_id: PendingRef
  readonly user_data_128: bigint
  readonly user_data_64: bigint
  readonly user_data_32: number
  readonly timeout: number
  readonly ledger: number
  readonly code: number
  readonly flags: number
  readonly timestamp: TimestampSpec
}

/** A filter timestamp bound: 0, a fraction of the clock's span so far, or out of range. */
export type BoundSpec = { readonly mode: "zero" } | { readonly mode: "frac"; readonly eighths: number } | { readonly mode: "value"; readonly value: bigint }

export interface AccountFilterSpec {
  readonly account_id: bigint
  readonly user_data_128: bigint
  readonly user_data_64: bigint
  readonly user_data_32: number
  readonly code: number
  readonly reservedByte: number
  readonly timestamp_min: BoundSpec
  readonly timestamp_max: BoundSpec
  readonly limit: number
  readonly flags: number
}

export interface QueryFilterSpec {
  readonly user_data_128: bigint
  readonly user_data_64: bigint
  readonly user_data_32: number
  readonly ledger: number
  readonly code: number
  readonly reservedByte: number
  readonly timestamp_min: BoundSpec
  readonly timestamp_max: BoundSpec
  readonly limit: number
  readonly flags: number
}

/** Which field a replay changes: to another value, or (`zero`) to 0 where post/void inherit. */
export type ReplayField =
  | "none"
  | "flags"
  | "user_data_128"
  | "user_data_64"
  | "user_data_32"
  | "ledger"
  | "code"
  | "amount"
  | "pending_id"
  | "timeout"
  | "debit_account_id"
  | "credit_account_id"

export interface Replay {
  /** Index among existing objects, newest first, modulo their count. */
  readonly back: number
  readonly field: ReplayField
  readonly zero: boolean
  readonly linked: boolean
}

export type Step =
  | { readonly kind: "create_accounts"; readonly gap: bigint; readonly events: ReadonlyArray<AccountSpec> }
  | { readonly kind: "create_transfers"; readonly gap: bigint; readonly events: ReadonlyArray<TransferSpec> }
  | { readonly kind: "lookup"; readonly operation: typeof Op.lookup_accounts | typeof Op.lookup_transfers; readonly ids: ReadonlyArray<bigint> }
  | { readonly kind: "account_filter"; readonly operation: typeof Op.get_account_transfers | typeof Op.get_account_balances; readonly filter: AccountFilterSpec }
  | { readonly kind: "query"; readonly operation: typeof Op.query_accounts | typeof Op.query_transfers; readonly filter: QueryFilterSpec }
  /** Resubmits existing objects (picked when the step runs) with at most one field changed. */
  | { readonly kind: "replay_accounts"; readonly picks: ReadonlyArray<Replay> }
  | { readonly kind: "replay_transfers"; readonly picks: ReadonlyArray<Replay> }
  /** Moves the wall clock; then, if `pulse`, pulses while something is due (as the primary does). */
  | { readonly kind: "advance"; readonly ns: bigint; readonly pulse: boolean }
  | { readonly kind: "pulse" }

const second = 1_000_000_000n

const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary })

/** A bit that is set with probability `percent`%. */
const bit = (value: number, percent: number): fc.Arbitrary<number> =>
  fc.integer({ min: 0, max: 99 }).map((r) => (r < percent ? value : 0))

const bits = (...parts: ReadonlyArray<fc.Arbitrary<number>>): fc.Arbitrary<number> =>
  fc.tuple(...parts).map((values) => values.reduce((a, b) => a | b, 0))

const smallU128 = fc.oneof(w(6, fc.constant(0n)), w(3, fc.constantFrom(1n, 2n)), w(1, fc.constant(MAX128)))
const smallU64 = fc.oneof(w(6, fc.constant(0n)), w(3, fc.constantFrom(1n, 2n)), w(1, fc.constant(MAX64)))
const smallU32 = fc.oneof(w(6, fc.constant(0)), w(3, fc.constantFrom(1, 2)), w(1, fc.constant(0xffffffff)))

const accountId: fc.Arbitrary<bigint> = fc.oneof(
  w(30, fc.integer({ min: 1, max: accountPool }).map(BigInt)),
  w(4, fc.integer({ min: accountPool + 1, max: accountIdMax }).map(BigInt)),
  w(1, fc.constant(0n)),
  w(1, fc.constant(MAX128))
)

const transferId: fc.Arbitrary<bigint> = fc.oneof(
  w(30, fc.integer({ min: 1, max: transferPool }).map(BigInt)),
  w(1, fc.constant(0n)),
  w(1, fc.constant(MAX128))
)

const ledger = fc.oneof(w(12, fc.constant(1)), w(3, fc.constant(2)), w(1, fc.constant(0)))
const code = fc.oneof(w(10, fc.constant(1)), w(3, fc.constant(2)), w(1, fc.constant(0)))

/** Amounts near 0, near 2^127 and near 2^128, plus AMOUNT_MAX. */
const amount: fc.Arbitrary<bigint> = fc.oneof(
  w(12, fc.bigInt({ min: 0n, max: 20n })),
  w(3, fc.constant(AMOUNT_MAX)),
  w(1, fc.bigInt({ min: MAX128 - 20n, max: MAX128 })),
  w(1, fc.constantFrom(1n << 127n, (1n << 127n) + 1n, 1n << 64n)),
  w(1, fc.bigInt({ min: 0n, max: MAX128 }))
)

const balanceField = fc.oneof(w(30, fc.constant(0n)), w(1, fc.constantFrom(1n, MAX128)))

/** Timestamps of non-imported events: almost always 0. */
const plainTimestamp: fc.Arbitrary<TimestampSpec> = fc.oneof(
  w(30, fc.constant<TimestampSpec>({ mode: "value", value: 0n })),
  w(1, fc.constant<TimestampSpec>({ mode: "value", value: 1n })),
  w(1, fc.constant<TimestampSpec>({ mode: "fresh", offset: 0 }))
)

/** Timestamps of imported events at position `index`: mostly plausible, sometimes broken. */
const importedTimestamp = (index: number): fc.Arbitrary<TimestampSpec> =>
  fc.oneof(
    w(12, fc.constant<TimestampSpec>({ mode: "fresh", offset: index })),
    w(3, fc.integer({ min: 0, max: index + 4 }).map((offset): TimestampSpec => ({ mode: "fresh", offset }))),
    w(2, fc.bigInt({ min: 0n, max: 30n }).map((back): TimestampSpec => ({ mode: "back", back }))),
    w(2, fc.record({ mode: fc.constant("object" as const), of: fc.constantFrom("account" as const, "transfer" as const), back: fc.integer({ min: 0, max: 3 }), delta: fc.integer({ min: -1, max: 1 }) })),
    w(1, fc.constantFrom<TimestampSpec>({ mode: "value", value: 0n }, { mode: "value", value: MAX63 + 1n }, { mode: "value", value: MAX64 }))
  )

type ImportMode = "none" | "all" | "mixed"
const importMode: fc.Arbitrary<ImportMode> = fc.oneof(
  w(8, fc.constant<ImportMode>("none")),
  w(2, fc.constant<ImportMode>("all")),
  w(1, fc.constant<ImportMode>("mixed"))
)

/** Decides the imported flag and timestamp of event `index` in a batch of the given mode. */
const importing = (mode: ImportMode, index: number, flag: number): fc.Arbitrary<{ flag: number; timestamp: TimestampSpec }> => {
  const imported = mode === "all" ? fc.constant(true) : mode === "none" ? fc.constant(false) : fc.boolean()
  return imported.chain((yes) =>
    yes
      ? importedTimestamp(index).map((timestamp) => ({ flag, timestamp }))
      : plainTimestamp.map((timestamp) => ({ flag: 0, timestamp }))
  )
}

/** Account batches reach for new ids (above the pool) as often as for existing ones. */
const newOrPoolAccountId: fc.Arbitrary<bigint> = fc.oneof(w(4, accountId), w(3, fc.integer({ min: accountPool + 1, max: accountIdMax }).map(BigInt)))

const accountEvent = (mode: ImportMode, index: number): fc.Arbitrary<AccountSpec> =>
  fc
    .record({
      id: newOrPoolAccountId,
      debits_pending: balanceField,
      debits_posted: balanceField,
      credits_pending: balanceField,
      credits_posted: balanceField,
      user_data_128: smallU128,
      user_data_64: smallU64,
      user_data_32: smallU32,
      reserved: fc.oneof(w(40, fc.constant(0)), w(1, fc.constant(1))),
      ledger,
      code: fc.oneof(w(10, fc.constant(1)), w(2, fc.constant(2)), w(2, fc.constant(0))),
      flags: bits(
        bit(AF.linked, 25),
        bit(AF.debits_must_not_exceed_credits, 15),
        bit(AF.credits_must_not_exceed_debits, 15),
        bit(AF.history, 40),
        bit(AF.closed, 4),
        fc.oneof(w(40, fc.constant(0)), w(1, fc.constantFrom(0x40, 0x8000)))
      ),
      imported: importing(mode, index, AF.imported)
    })
    .map(({ imported, flags, ...rest }) => ({ ...rest, flags: flags | imported.flag, timestamp: imported.timestamp }))

const timeout = fc.oneof(w(6, fc.constant(0)), w(4, fc.integer({ min: 1, max: 3 })), w(1, fc.constant(0xffffffff)))

/**
 * Two distinct accounts of the pool on the same ledger (1..6 are on ledger 1, 7..8 on ledger 2),
 * or one of the accounts above the pool that later batches may have created.
 */
const accountPair: fc.Arbitrary<{ debit: bigint; credit: bigint; ledger: number }> = fc.oneof(
  w(1, fc.tuple(fc.integer({ min: accountPool + 1, max: accountIdMax }), fc.integer({ min: 1, max: 6 }), fc.boolean()).map(([late, pool, flip]) => ({ debit: BigInt(flip ? late : pool), credit: BigInt(flip ? pool : late), ledger: 1 }))),
  w(6, fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 })).map(([d, c]) => ({ debit: BigInt(d), credit: BigInt(c >= d ? c + 1 : c), ledger: 1 }))),
  w(1, fc.boolean().map((flip) => ({ debit: flip ? 7n : 8n, credit: flip ? 8n : 7n, ledger: 2 })))
)

/** A single-phase or pending transfer (possibly balancing or closing) with valid fields. */
const cleanTransfer = (mode: ImportMode, index: number): fc.Arbitrary<TransferSpec> =>
  fc
    .record({
      id: fc.integer({ min: 1, max: transferPool }).map(BigInt),
      pair: accountPair,
      beforeAccount: fc.oneof(w(8, fc.constant(undefined)), w(1, fc.constantFrom("debit" as const, "credit" as const))),
      amount,
      user_data_128: smallU128,
      user_data_64: smallU64,
      user_data_32: smallU32,
      code: fc.constantFrom(1, 2),
      pending: fc.integer({ min: 0, max: 99 }),
      flags: bits(
        bit(TF.linked, 15),
        bit(TF.balancing_debit, 10),
        bit(TF.balancing_credit, 10),
        bit(TF.closing_debit, 2),
        bit(TF.closing_credit, 2)
      ),
      // 0xFFFFFFFF s reaches past 2^63 ns only when the clock starts near the end of time.
      timeout: fc.oneof(w(4, fc.constant(0)), w(4, fc.constant(1)), w(2, fc.integer({ min: 2, max: 3 })), w(1, fc.constant(0xffffffff))),
      imported: importing(mode, index, TF.imported)
    })
    .map(({ imported, flags, pending, timeout, pair, beforeAccount, ...rest }): TransferSpec => {
      const isPending = pending < 45
      return {
        ...rest,
        debit_account_id: pair.debit,
        credit_account_id: pair.credit,
        ledger: pair.ledger,
        pending_id: { mode: "id", id: 0n },
        flags: (isPending ? flags | TF.pending : flags & ~(TF.closing_debit | TF.closing_credit)) | imported.flag,
        // Imported transfers cannot have timeouts; leave that error to the noisy generator.
        timeout: isPending && imported.flag === 0 ? timeout : 0,
        timestamp: imported.flag !== 0 && beforeAccount !== undefined ? { mode: "before_account", side: beforeAccount } : imported.timestamp
      }
    })

/** A transfer with any field possibly invalid. */
const noisyTransfer = (mode: ImportMode, index: number): fc.Arbitrary<TransferSpec> =>
  fc
    .record({
      id: transferId,
      debit_account_id: accountId,
      credit_account_id: accountId,
      amount,
      pending_id: fc.oneof(w(20, fc.constant<PendingRef>({ mode: "id", id: 0n })), w(1, transferId.map((id): PendingRef => ({ mode: "id", id })))),
      user_data_128: smallU128,
      user_data_64: smallU64,
      user_data_32: smallU32,
      ledger,
      code,
      pending: fc.integer({ min: 0, max: 99 }),
      flags: bits(
        bit(TF.linked, 20),
        bit(TF.balancing_debit, 12),
        bit(TF.balancing_credit, 12),
        bit(TF.closing_debit, 8),
        bit(TF.closing_credit, 8),
        fc.oneof(w(30, fc.constant(0)), w(1, fc.constantFrom(0x200, 0x8000)))
      ),
      timeout,
      imported: importing(mode, index, TF.imported)
    })
    .map(({ imported, flags, pending, timeout, ...rest }): TransferSpec => {
      const isPending = pending < 40
      return {
        ...rest,
        flags: flags | imported.flag | (isPending ? TF.pending : 0),
        timeout: isPending || pending > 90 ? timeout : 0,
        timestamp: imported.timestamp
      }
    })

/** Which transfer a post/void refers to, resolved when the step runs. */
const pendingRef = (index: number): fc.Arbitrary<PendingRef> =>
  fc.oneof(
    w(10, fc.integer({ min: 0, max: 4 }).map((back): PendingRef => ({ mode: "unresolved", back }))),
    w(3, fc.integer({ min: 0, max: 4 }).map((back): PendingRef => ({ mode: "recent", back }))),
    ...(index > 0 ? [w(4, fc.integer({ min: 1, max: index }).map((back): PendingRef => ({ mode: "earlier", back })))] : []),
    w(3, fc.integer({ min: 1, max: transferPool }).map((id): PendingRef => ({ mode: "id", id: BigInt(id) }))),
    w(1, fc.constantFrom<PendingRef>({ mode: "id", id: 0n }, { mode: "id", id: MAX128 }, { mode: "self" }))
  )

/** A post or void, mostly of a pending transfer that exists. */
const postVoidTransfer = (noisy: boolean) => (mode: ImportMode, index: number): fc.Arbitrary<TransferSpec> =>
  fc
    .record({
      id: noisy ? transferId : fc.integer({ min: 1, max: transferPool }).map(BigInt),
      post: fc.boolean(),
      debit_account_id: noisy ? fc.oneof(w(8, fc.constant(0n)), w(2, accountId)) : fc.constant(0n),
      credit_account_id: noisy ? fc.oneof(w(8, fc.constant(0n)), w(2, accountId)) : fc.constant(0n),
      postAmount: fc.oneof(w(4, fc.constant(AMOUNT_MAX)), w(4, fc.bigInt({ min: 0n, max: 20n })), w(1, amount)),
      voidAmount: fc.oneof(w(6, fc.constant(0n)), w(3, fc.bigInt({ min: 0n, max: 20n })), w(1, amount)),
      pending_id: pendingRef(index),
      user_data_128: smallU128,
      user_data_64: smallU64,
      user_data_32: smallU32,
      ledger: noisy ? fc.oneof(w(8, fc.constant(0)), w(2, ledger)) : fc.constant(0),
      code: noisy ? fc.oneof(w(8, fc.constant(0)), w(2, code)) : fc.constant(0),
      extra: noisy
        ? fc.oneof(
            w(6, fc.constant(0)),
            w(1, fc.constantFrom(TF.post_pending_transfer | TF.void_pending_transfer, TF.pending, TF.balancing_debit, TF.balancing_credit, TF.closing_debit, TF.closing_credit, 0x400))
          )
        : fc.constant(0),
      linked: bit(TF.linked, 15),
      timeout: noisy ? fc.oneof(w(5, fc.constant(0)), w(1, fc.constant(1))) : fc.constant(0),
      imported: importing(mode, index, TF.imported)
    })
    .map(({ post, postAmount, voidAmount, extra, linked, imported, ...rest }): TransferSpec => ({
      ...rest,
      amount: post ? postAmount : voidAmount,
      flags: (post ? TF.post_pending_transfer : TF.void_pending_transfer) | extra | linked | imported.flag,
      timestamp: imported.timestamp
    }))

const transferEvent = (mode: ImportMode, index: number): fc.Arbitrary<TransferSpec> =>
  fc.oneof(
    w(10, cleanTransfer(mode, index)),
    w(6, postVoidTransfer(false)(mode, index)),
    w(3, noisyTransfer(mode, index)),
    w(2, postVoidTransfer(true)(mode, index))
  )

/** Events of one batch: usually a handful, sometimes none. */
const batchOf = <E>(event: (mode: ImportMode, index: number) => fc.Arbitrary<E>, maxLength: number): fc.Arbitrary<ReadonlyArray<E>> =>
  fc.tuple(importMode, fc.integer({ min: 0, max: maxLength })).chain(([mode, n]): fc.Arbitrary<ReadonlyArray<E>> =>
    n === 0 ? fc.constant<ReadonlyArray<E>>([]) : fc.tuple(...Array.from({ length: n }, (_, i) => event(mode, i)))
  )

const gap = fc.oneof(w(10, fc.constant(0n)), w(3, fc.bigInt({ min: 1n, max: 40n })), w(1, fc.constantFrom(second, 2n * second)))

const bound: fc.Arbitrary<BoundSpec> = fc.oneof(
  w(6, fc.constant<BoundSpec>({ mode: "zero" })),
  w(4, fc.integer({ min: 0, max: 8 }).map((eighths): BoundSpec => ({ mode: "frac", eighths }))),
  w(1, fc.constantFrom<BoundSpec>({ mode: "value", value: MAX63 }, { mode: "value", value: MAX63 + 1n }, { mode: "value", value: 1n }))
)

const limit = fc.oneof(
  w(6, fc.constant(8189)),
  w(4, fc.integer({ min: 1, max: 4 })),
  w(1, fc.constantFrom(0, 8190, 0xffffffff))
)

const reservedByte = fc.oneof(w(30, fc.constant(0)), w(1, fc.constant(1)))

const accountFilter: fc.Arbitrary<AccountFilterSpec> = fc.record({
  account_id: accountId,
  user_data_128: fc.oneof(w(6, fc.constant(0n)), w(1, smallU128)),
  user_data_64: fc.oneof(w(6, fc.constant(0n)), w(1, smallU64)),
  user_data_32: fc.oneof(w(6, fc.constant(0)), w(1, smallU32)),
  code: fc.oneof(w(6, fc.constant(0)), w(1, code)),
  reservedByte,
  timestamp_min: bound,
  timestamp_max: bound,
  limit,
  flags: fc.oneof(
    w(20, bits(bit(AFF.debits, 70), bit(AFF.credits, 70), bit(AFF.reversed, 40))),
    w(1, fc.constantFrom(8, 3 | 0x80000000))
  )
})

const queryFilter: fc.Arbitrary<QueryFilterSpec> = fc.record({
  user_data_128: fc.oneof(w(4, fc.constant(0n)), w(1, smallU128)),
  user_data_64: fc.oneof(w(4, fc.constant(0n)), w(1, smallU64)),
  user_data_32: fc.oneof(w(4, fc.constant(0)), w(1, smallU32)),
  ledger: fc.oneof(w(4, fc.constant(0)), w(1, ledger)),
  code: fc.oneof(w(4, fc.constant(0)), w(1, code)),
  reservedByte,
  timestamp_min: bound,
  timestamp_max: bound,
  limit,
  flags: fc.oneof(w(20, bit(1, 40)), w(1, fc.constant(2)))
})

const lookupIds = (id: fc.Arbitrary<bigint>) => fc.array(id, { maxLength: 8 })

const replay = (fields: ReadonlyArray<ReplayField>): fc.Arbitrary<Replay> =>
  fc.record({
    back: fc.integer({ min: 0, max: 6 }),
    field: fc.oneof(w(3, fc.constant<ReplayField>("none")), w(6, fc.constantFrom(...fields))),
    zero: bit(1, 30).map((b) => b === 1),
    linked: bit(1, 10).map((b) => b === 1)
  })

const accountReplayFields: ReadonlyArray<ReplayField> = ["flags", "user_data_128", "user_data_64", "user_data_32", "ledger", "code"]
const transferReplayFields: ReadonlyArray<ReplayField> = [...accountReplayFields, "amount", "pending_id", "timeout", "debit_account_id", "credit_account_id"]

export const step: fc.Arbitrary<Step> = fc.oneof(
  w(1, fc.record({ kind: fc.constant("replay_accounts" as const), picks: fc.array(replay(accountReplayFields), { minLength: 1, maxLength: 4 }) })),
  w(3, fc.record({ kind: fc.constant("replay_transfers" as const), picks: fc.array(replay(transferReplayFields), { minLength: 1, maxLength: 4 }) })),
  w(6, fc.record({ kind: fc.constant("create_accounts" as const), gap, events: batchOf(accountEvent, 6) })),
  w(16, fc.record({ kind: fc.constant("create_transfers" as const), gap, events: batchOf(transferEvent, 8) })),
  w(1, fc.record({ kind: fc.constant("lookup" as const), operation: fc.constant(Op.lookup_accounts), ids: lookupIds(accountId) })),
  w(1, fc.record({ kind: fc.constant("lookup" as const), operation: fc.constant(Op.lookup_transfers), ids: lookupIds(transferId) })),
  w(2, fc.record({ kind: fc.constant("account_filter" as const), operation: fc.constantFrom(Op.get_account_transfers, Op.get_account_balances), filter: accountFilter })),
  w(2, fc.record({ kind: fc.constant("query" as const), operation: fc.constantFrom(Op.query_accounts, Op.query_transfers), filter: queryFilter })),
  w(3, fc.record({ kind: fc.constant("advance" as const), ns: fc.constantFrom(second / 2n, second, 2n * second, 3n * second), pulse: bit(1, 70).map((b) => b === 1) })),
  w(1, fc.constant({ kind: "pulse" as const }))
)

/** A valid account of the pool, so that transfers have something to move. */
const poolAccount = (id: number): fc.Arbitrary<AccountSpec> =>
  fc.record({
    id: fc.constant(BigInt(id)),
    debits_pending: fc.constant(0n),
    debits_posted: fc.constant(0n),
    credits_pending: fc.constant(0n),
    credits_posted: fc.constant(0n),
    user_data_128: smallU128,
    user_data_64: smallU64,
    user_data_32: smallU32,
    reserved: fc.constant(0),
    ledger: fc.constant(id <= 6 ? 1 : 2),
    code: fc.constantFrom(1, 2),
    flags: fc.oneof(
      w(6, bit(AF.history, 50)),
      w(1, fc.constantFrom(AF.debits_must_not_exceed_credits, AF.credits_must_not_exceed_debits, AF.closed))
    ),
    timestamp: fc.constant<TimestampSpec>({ mode: "value", value: 0n })
  })

/**
 * A workload: the pool's accounts first (a clean batch, valid but for rare flags), then a random
 * mix of steps.
 */
export const workload = (maxSteps: number): fc.Arbitrary<ReadonlyArray<Step>> =>
  fc
    .tuple(
      fc.tuple(...Array.from({ length: accountPool }, (_, i) => poolAccount(i + 1))),
      fc.array(step, { minLength: 1, maxLength: maxSteps, size: "max" })
    )
    .map(([accounts, rest]): ReadonlyArray<Step> => [{ kind: "create_accounts", gap: 0n, events: accounts }, ...rest])

/** The pool's accounts as one clean batch: the first step of every workload. */
export const poolAccountsStep: fc.Arbitrary<Step & { kind: "create_accounts" }> = fc
  .tuple(...Array.from({ length: accountPool }, (_, i) => poolAccount(i + 1)))
  .map((events): Step & { kind: "create_accounts" } => ({ kind: "create_accounts", gap: 0n, events }))

/**
 * A bulk batch of `count` events for the scale test, drawn reproducibly from `seed`: ids are
 * `firstId + i` (so that they do not collide), linked chains are rare (the reference model
 * clones its whole state per chain) and nothing closes accounts.
 */
export const bulkTransfers = (count: number, firstId: bigint, seed: number): ReadonlyArray<TransferSpec> =>
  fc.sample(fc.tuple(transferEvent("none", 0), fc.integer({ min: 0, max: 99 })), { numRuns: count, seed }).map(([e, linked], i) => ({
    ...e,
    id: firstId + BigInt(i),
    // No closing flags: with only eight accounts, closing would soon reject everything.
    flags: (e.flags & ~(TF.linked | TF.closing_debit | TF.closing_credit)) | (linked < 2 ? TF.linked : 0),
    timestamp: { mode: "value", value: 0n }
  }))

/** `count` valid pending transfers with a 1 s timeout among accounts 1..6 (to overflow a pulse). */
export const timedPendingTransfers = (count: number, firstId: bigint): ReadonlyArray<TransferSpec> =>
  Array.from({ length: count }, (_, i) => ({
    id: firstId + BigInt(i),
    debit_account_id: BigInt((i % 6) + 1),
    credit_account_id: BigInt(((i + 1 + (i % 5)) % 6) + 1 === (i % 6) + 1 ? ((i + 2) % 6) + 1 : ((i + 1 + (i % 5)) % 6) + 1),
    amount: BigInt(i % 7),
    pending_id: { mode: "id", id: 0n },
    user_data_128: BigInt(i % 3),
    user_data_64: 0n,
    user_data_32: i % 2,
    timeout: 1,
    ledger: 1,
    code: 1,
    flags: TF.pending,
    timestamp: { mode: "value", value: 0n }
  }))

/** `count` valid accounts with ids `firstId + i` on ledger 1, every other one with history. */
export const bulkAccounts = (count: number, firstId: bigint): ReadonlyArray<AccountSpec> =>
  Array.from({ length: count }, (_, i) => ({
    id: firstId + BigInt(i),
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    user_data_128: BigInt(i % 5),
    user_data_64: BigInt(i % 3),
    user_data_32: i % 2,
    reserved: 0,
    ledger: 1,
    code: 1 + (i % 3),
    flags: i % 2 === 0 ? AF.history : 0,
    timestamp: { mode: "value", value: 0n }
  }))

/**
 * `count` transfers with ids `firstId + i` between accounts scattered over
 * `accountFirst .. accountFirst + accountCount - 1` (a few of them missing), a third pending.
 */
export const scatteredTransfers = (count: number, firstId: bigint, accountFirst: bigint, accountCount: number): ReadonlyArray<TransferSpec> =>
  Array.from({ length: count }, (_, i) => {
    const debit = (i * 7919) % (accountCount + 3)
    const credit = (i * 104729 + 1) % (accountCount + 3)
    return {
      id: firstId + BigInt(i),
      debit_account_id: accountFirst + BigInt(debit),
      credit_account_id: accountFirst + BigInt(credit === debit ? (credit + 1) % accountCount : credit),
      amount: BigInt(i % 11),
      pending_id: { mode: "id", id: 0n },
      user_data_128: 0n,
      user_data_64: BigInt(i % 4),
      user_data_32: 0,
      timeout: i % 3 === 0 ? 1 : 0,
      ledger: 1,
      code: 1,
      flags: i % 3 === 0 ? TF.pending : 0,
      timestamp: { mode: "value", value: 0n }
    }
  })
