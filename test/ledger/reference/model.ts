/**
 * The reference model: a deliberately simple, obviously-correct restatement of the ledger state
 * machine (spec/state-machine.md) for the property and table tests.
 *
 * It is written from the spec alone, independently of src/ledger and of the codec in
 * src/protocol/records.ts: plain objects, Map<bigint, …>, bigint arithmetic, linear scans, and
 * linked-chain rollback by cloning the whole state. It speaks the same byte-level interface as the
 * fast ledger (src/ledger/ledger.ts) so that both can be driven by the same batches and compared
 * byte for byte. Simple beats fast here: nothing in this file is meant for more than a few
 * thousand objects.
 */
import { Effect } from "effect"
import {
  ACCOUNT_BALANCE_SIZE,
  ACCOUNT_FILTER_SIZE,
  ACCOUNT_SIZE,
  AMOUNT_MAX,
  ID_SIZE,
  MAX128,
  MAX63,
  QUERY_FILTER_SIZE,
  TRANSFER_SIZE,
  decodeAccount,
  decodeAccountFilter,
  decodeQueryFilter,
  decodeTransfer,
  encodeAccountBalanceInto,
  encodeAccounts,
  encodeCreateResults,
  encodeTransfers,
  readU128,
  type ModelCreateResult
} from "./codec.ts"
import type { ModelAccount, ModelState, ModelTransfer, PendingStatus } from "./model_types.ts"

export type { ModelAccount, ModelState, ModelTransfer, PendingStatus } from "./model_types.ts"

/** Operation numbers, §4 (restated here rather than imported, so that they are cross-checked). */
export const Op = {
  pulse: 128,
  lookup_accounts: 140,
  lookup_transfers: 141,
  get_account_transfers: 142,
  get_account_balances: 143,
  query_accounts: 144,
  query_transfers: 145,
  create_accounts: 146,
  create_transfers: 147
} as const

/** Events per create/lookup batch, results per query, expiries per pulse (§3). */
export const BATCH_MAX = 8189

/** CreateAccountStatus wire values, §16.1. */
export const A = {
  created: 0xffffffff,
  linked_event_failed: 1,
  linked_event_chain_open: 2,
  timestamp_must_be_zero: 3,
  reserved_field: 4,
  reserved_flag: 5,
  id_must_not_be_zero: 6,
  id_must_not_be_int_max: 7,
  flags_are_mutually_exclusive: 8,
  debits_pending_must_be_zero: 9,
  debits_posted_must_be_zero: 10,
  credits_pending_must_be_zero: 11,
  credits_posted_must_be_zero: 12,
  ledger_must_not_be_zero: 13,
  code_must_not_be_zero: 14,
  exists_with_different_flags: 15,
  exists_with_different_user_data_128: 16,
  exists_with_different_user_data_64: 17,
  exists_with_different_user_data_32: 18,
  exists_with_different_ledger: 19,
  exists_with_different_code: 20,
  exists: 21,
  imported_event_expected: 22,
  imported_event_not_expected: 23,
  imported_event_timestamp_out_of_range: 24,
  imported_event_timestamp_must_not_advance: 25,
  imported_event_timestamp_must_not_regress: 26
} as const

/** CreateTransferStatus wire values, §16.2 and §16.3. */
export const T = {
  created: 0xffffffff,
  linked_event_failed: 1,
  linked_event_chain_open: 2,
  timestamp_must_be_zero: 3,
  reserved_flag: 4,
  id_must_not_be_zero: 5,
  id_must_not_be_int_max: 6,
  flags_are_mutually_exclusive: 7,
  debit_account_id_must_not_be_zero: 8,
  debit_account_id_must_not_be_int_max: 9,
  credit_account_id_must_not_be_zero: 10,
  credit_account_id_must_not_be_int_max: 11,
  accounts_must_be_different: 12,
  pending_id_must_be_zero: 13,
  pending_id_must_not_be_zero: 14,
  pending_id_must_not_be_int_max: 15,
  pending_id_must_be_different: 16,
  timeout_reserved_for_pending_transfer: 17,
  ledger_must_not_be_zero: 19,
  code_must_not_be_zero: 20,
  debit_account_not_found: 21,
  credit_account_not_found: 22,
  accounts_must_have_the_same_ledger: 23,
  transfer_must_have_the_same_ledger_as_accounts: 24,
  pending_transfer_not_found: 25,
  pending_transfer_not_pending: 26,
  pending_transfer_has_different_debit_account_id: 27,
  pending_transfer_has_different_credit_account_id: 28,
  pending_transfer_has_different_ledger: 29,
  pending_transfer_has_different_code: 30,
  exceeds_pending_transfer_amount: 31,
  pending_transfer_has_different_amount: 32,
  pending_transfer_already_posted: 33,
  pending_transfer_already_voided: 34,
  pending_transfer_expired: 35,
  exists_with_different_flags: 36,
  exists_with_different_debit_account_id: 37,
  exists_with_different_credit_account_id: 38,
  exists_with_different_amount: 39,
  exists_with_different_pending_id: 40,
  exists_with_different_user_data_128: 41,
  exists_with_different_user_data_64: 42,
  exists_with_different_user_data_32: 43,
  exists_with_different_timeout: 44,
  exists_with_different_code: 45,
  exists: 46,
  overflows_debits_pending: 47,
  overflows_credits_pending: 48,
  overflows_debits_posted: 49,
  overflows_credits_posted: 50,
  overflows_debits: 51,
  overflows_credits: 52,
  overflows_timeout: 53,
  exceeds_credits: 54,
  exceeds_debits: 55,
  imported_event_expected: 56,
  imported_event_not_expected: 57,
  imported_event_timestamp_out_of_range: 58,
  imported_event_timestamp_must_not_advance: 59,
  imported_event_timestamp_must_not_regress: 60,
  imported_event_timestamp_must_postdate_debit_account: 61,
  imported_event_timestamp_must_postdate_credit_account: 62,
  imported_event_timeout_must_be_zero: 63,
  closing_transfer_must_be_pending: 64,
  debit_account_already_closed: 65,
  credit_account_already_closed: 66,
  exists_with_different_ledger: 67,
  id_already_failed: 68
} as const

/** Account flags, §2.1. */
export const AF = {
  linked: 1 << 0,
  debits_must_not_exceed_credits: 1 << 1,
  credits_must_not_exceed_debits: 1 << 2,
  history: 1 << 3,
  imported: 1 << 4,
  closed: 1 << 5,
  padding: 0xffc0
} as const

/** Transfer flags, §2.2. */
export const TF = {
  linked: 1 << 0,
  pending: 1 << 1,
  post_pending_transfer: 1 << 2,
  void_pending_transfer: 1 << 3,
  balancing_debit: 1 << 4,
  balancing_credit: 1 << 5,
  closing_debit: 1 << 6,
  closing_credit: 1 << 7,
  imported: 1 << 8,
  padding: 0xfe00
} as const

/** AccountFilter flags (§2.3). */
export const AFF = { debits: 1, credits: 2, reversed: 4 } as const
/** QueryFilter flags (§2.3). */
export const QFF = { reversed: 1 } as const

/** Statuses that burn a transfer id (§9.5). */
export const TRANSIENT: ReadonlySet<number> = new Set([
  T.debit_account_not_found,
  T.credit_account_not_found,
  T.pending_transfer_not_found,
  T.exceeds_credits,
  T.exceeds_debits,
  T.debit_account_already_closed,
  T.credit_account_already_closed
])

const NS_PER_S = 1_000_000_000n

interface Balances {
  debits_pending: bigint
  debits_posted: bigint
  credits_pending: bigint
  credits_posted: bigint
}

/** A balance-history row (§14.3): both accounts' balances right after a transfer or expiry. */
interface HistoryRow {
  readonly timestamp: bigint
  readonly transfer_id: bigint
  readonly expiry: boolean
  readonly debit: Balances
  readonly credit: Balances
}

/** Everything a linked chain's scope covers (§7): all of it is cloned on scope open. */
interface State {
  accounts: Map<bigint, ModelAccount>
  transfers: Map<bigint, ModelTransfer>
  /** Status of every pending transfer, keyed by its id (§10). */
  pendingStatus: Map<bigint, PendingStatus>
  /** Balance-history rows of transfers, by transfer id. */
  history: Map<bigint, HistoryRow>
  /** Balance-history rows of expiries (only visible through change events, which Scarab lacks). */
  expiries: Array<HistoryRow>
}

type Outcome = { readonly status: number; readonly timestamp?: bigint }

const has = (flags: number, bit: number): boolean => (flags & bit) !== 0

const balancesOf = (a: ModelAccount): Balances => ({
  debits_pending: a.debits_pending,
  debits_posted: a.debits_posted,
  credits_pending: a.credits_pending,
  credits_posted: a.credits_posted
})

const emptyState = (): State => ({
  accounts: new Map(),
  transfers: new Map(),
  pendingStatus: new Map(),
  history: new Map(),
  expiries: []
})

const cloneState = (s: State): State => ({
  accounts: new Map([...s.accounts].map(([k, v]) => [k, { ...v }])),
  transfers: new Map([...s.transfers].map(([k, v]) => [k, { ...v }])),
  pendingStatus: new Map(s.pendingStatus),
  history: new Map(s.history),
  expiries: [...s.expiries]
})

const byTimestamp = (x: { timestamp: bigint }, y: { timestamp: bigint }): number =>
  x.timestamp < y.timestamp ? -1 : x.timestamp > y.timestamp ? 1 : 0

const minBig = (x: bigint, y: bigint): bigint => (x < y ? x : y)
const saturatingSub = (x: bigint, y: bigint): bigint => (x > y ? x - y : 0n)

/**
 * Policy for the two imported cases that 0.17 leaves undefined (§11 "Edge cases"): an imported
 * timestamp inside the batch's own slot window `slot(i) < t < T`, and an imported post/void of a
 * non-imported pending transfer with a timeout that has not expired yet. Both are rejected with
 * imported_event_timestamp_must_not_advance: the first in the batch-level timestamp check, the
 * second where upstream asserts (after the pending-status checks, before must_not_regress).
 */
export interface ReferenceOptions {
  /**
   * An imported post/void of a non-imported pending transfer whose timeout has not expired yet is
   * undefined in 0.17 (§11). "reject" (the default, as the spec recommends) answers
   * imported_event_timestamp_must_not_advance; "accept" executes it like any other post/void.
   */
  readonly importedResolveOfTimedPending?: "reject" | "accept"
}

export class ReferenceLedger {
  private readonly options: Required<ReferenceOptions>
  private current: State = emptyState()
  /** Burnt transfer ids (§9.5); outside every chain scope, so rollbacks never clear it. */
  private readonly orphans = new Set<bigint>()

  constructor(options: ReferenceOptions = {}) {
    this.options = { importedResolveOfTimedPending: options.importedResolveOfTimedPending ?? "reject" }
  }

  /**
   * The asynchronous half of the fast ledger's store interface: the model keeps everything in
   * memory without limits, so there is nothing to make resident and it never runs out of room.
   */
  prefetch(_operation: number, _eventCount: number): Effect.Effect<void> {
    return Effect.void
  }

  /** The model has no limits: everything fits. */
  fits(_operation: number, eventCount: number): boolean {
    return eventCount >= 0
  }

  /** Same as `checkInvariants`, under the fast ledger's name. */
  verify(): void {
    this.checkInvariants()
  }

  /** Executes one batch of `operation` with batch end timestamp `timestamp`; returns the reply. */
  execute(operation: number, events: Uint8Array, timestamp: bigint): Uint8Array {
    switch (operation) {
      case Op.create_accounts:
        return encodeCreateResults(this.createBatch("account", events, timestamp))
      case Op.create_transfers:
        return encodeCreateResults(this.createBatch("transfer", events, timestamp))
      case Op.lookup_accounts:
        return encodeAccounts(this.lookup(events, this.current.accounts))
      case Op.lookup_transfers:
        return encodeTransfers(this.lookup(events, this.current.transfers))
      case Op.get_account_transfers:
        assertSize(events, ACCOUNT_FILTER_SIZE, true)
        return encodeTransfers(this.getAccountTransfers(events))
      case Op.get_account_balances:
        assertSize(events, ACCOUNT_FILTER_SIZE, true)
        return this.getAccountBalances(events)
      case Op.query_accounts:
        assertSize(events, QUERY_FILTER_SIZE, true)
        return encodeAccounts(this.query(events, [...this.current.accounts.values()]))
      case Op.query_transfers:
        assertSize(events, QUERY_FILTER_SIZE, true)
        return encodeTransfers(this.query(events, [...this.current.transfers.values()]))
      default:
        throw new Error(`reference model: unknown operation ${operation}`)
    }
  }

  /** Runs a pulse with request timestamp `timestamp` (§10.4); returns how many transfers expired. */
  pulse(timestamp: bigint): number {
    const due = this.unresolvedWithTimeout()
      .filter((e) => e.expiresAt <= timestamp)
      .sort((x, y) =>
        x.expiresAt !== y.expiresAt ? (x.expiresAt < y.expiresAt ? -1 : 1) : byTimestamp(x.transfer, y.transfer)
      )
      .slice(0, BATCH_MAX)
    const m = BigInt(due.length)
    due.forEach(({ transfer: p }, k) => {
      const expiryTimestamp = timestamp - m + BigInt(k) + 1n
      const dr = this.account(p.debit_account_id)
      const cr = this.account(p.credit_account_id)
      dr.debits_pending -= p.amount
      cr.credits_pending -= p.amount
      if (has(p.flags, TF.closing_debit)) dr.flags &= ~AF.closed
      if (has(p.flags, TF.closing_credit)) cr.flags &= ~AF.closed
      this.current.pendingStatus.set(p.id, "expired")
      this.current.expiries.push({
        timestamp: expiryTimestamp,
        transfer_id: p.id,
        expiry: true,
        debit: balancesOf(dr),
        credit: balancesOf(cr)
      })
    })
    return due.length
  }

  /** The earliest expires_at of an unresolved pending transfer with a timeout (§10.3). */
  nextExpiry(): bigint | undefined {
    let next: bigint | undefined
    for (const { expiresAt } of this.unresolvedWithTimeout()) {
      if (next === undefined || expiresAt < next) next = expiresAt
    }
    return next
  }

  /** A deep copy of the state, objects ordered by timestamp. */
  state(): ModelState {
    return {
      accounts: [...this.current.accounts.values()].map((a) => ({ ...a })).sort(byTimestamp),
      transfers: [...this.current.transfers.values()].map((t) => ({ ...t })).sort(byTimestamp),
      pendingStatus: new Map(this.current.pendingStatus),
      orphans: new Set(this.orphans)
    }
  }

  /** All accounts encoded (128 bytes each), ordered by timestamp. */
  accountsBytes(): Uint8Array {
    return encodeAccounts(this.state().accounts)
  }

  /** All transfers encoded (128 bytes each), ordered by timestamp. */
  transfersBytes(): Uint8Array {
    return encodeTransfers(this.state().transfers)
  }

  /** Throws if an invariant of spec §5 does not hold. */
  checkInvariants(): void {
    let debitsPending = 0n
    let debitsPosted = 0n
    let creditsPending = 0n
    let creditsPosted = 0n
    for (const a of this.current.accounts.values()) {
      const where = `account ${a.id}`
      for (const v of [a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted]) {
        check(v >= 0n && v <= MAX128, () => `${where}: balance out of range ${v}`)
      }
      check(a.debits_pending + a.debits_posted <= MAX128, () => `${where}: debits above MAX128`)
      check(a.credits_pending + a.credits_posted <= MAX128, () => `${where}: credits above MAX128`)
      if (has(a.flags, AF.debits_must_not_exceed_credits)) {
        check(a.debits_pending + a.debits_posted <= a.credits_posted, () => `${where}: debits exceed credits`)
      }
      if (has(a.flags, AF.credits_must_not_exceed_debits)) {
        check(a.credits_pending + a.credits_posted <= a.debits_posted, () => `${where}: credits exceed debits`)
      }
      debitsPending += a.debits_pending
      debitsPosted += a.debits_posted
      creditsPending += a.credits_pending
      creditsPosted += a.credits_posted
    }
    check(debitsPending === creditsPending, () => `Σ debits_pending ${debitsPending} ≠ Σ credits_pending ${creditsPending}`)
    check(debitsPosted === creditsPosted, () => `Σ debits_posted ${debitsPosted} ≠ Σ credits_posted ${creditsPosted}`)
    // Each unresolved pending transfer is reserved on both of its accounts exactly once.
    const reservedDebit = new Map<bigint, bigint>()
    const reservedCredit = new Map<bigint, bigint>()
    const timestamps = new Set<bigint>()
    for (const a of this.current.accounts.values()) {
      check(!timestamps.has(a.timestamp), () => `duplicate timestamp ${a.timestamp}`)
      timestamps.add(a.timestamp)
    }
    for (const t of this.current.transfers.values()) {
      check(!timestamps.has(t.timestamp), () => `duplicate timestamp ${t.timestamp}`)
      timestamps.add(t.timestamp)
      const dr = this.current.accounts.get(t.debit_account_id)
      const cr = this.current.accounts.get(t.credit_account_id)
      check(dr !== undefined && cr !== undefined, () => `transfer ${t.id}: account missing`)
      check(dr.ledger === t.ledger && cr.ledger === t.ledger, () => `transfer ${t.id}: ledger mismatch`)
      if (has(t.flags, TF.pending)) {
        const status = this.current.pendingStatus.get(t.id)
        check(status !== undefined, () => `pending transfer ${t.id} without status`)
        if (status === "pending") {
          reservedDebit.set(dr.id, (reservedDebit.get(dr.id) ?? 0n) + t.amount)
          reservedCredit.set(cr.id, (reservedCredit.get(cr.id) ?? 0n) + t.amount)
        }
      }
      if (has(t.flags, TF.post_pending_transfer) || has(t.flags, TF.void_pending_transfer)) {
        const p = this.current.transfers.get(t.pending_id)
        check(p !== undefined, () => `transfer ${t.id}: pending transfer missing`)
        const status = this.current.pendingStatus.get(p.id)
        const expected = has(t.flags, TF.post_pending_transfer) ? "posted" : "voided"
        check(status === expected, () => `pending ${p.id}: status ${status}, expected ${expected}`)
      }
    }
    const resolvers = new Map<bigint, bigint>()
    for (const t of this.current.transfers.values()) {
      if (t.pending_id === 0n) continue
      check(!resolvers.has(t.pending_id), () => `pending ${t.pending_id} resolved twice`)
      resolvers.set(t.pending_id, t.id)
    }
    for (const a of this.current.accounts.values()) {
      check((reservedDebit.get(a.id) ?? 0n) === a.debits_pending, () => `account ${a.id}: debits_pending drift`)
      check((reservedCredit.get(a.id) ?? 0n) === a.credits_pending, () => `account ${a.id}: credits_pending drift`)
    }
  }

  // Create batches (§7.1).

  private createBatch(kind: "account" | "transfer", events: Uint8Array, batchEnd: bigint): Array<ModelCreateResult> {
    assertSize(events, kind === "account" ? ACCOUNT_SIZE : TRANSFER_SIZE, false)
    const n = events.length / ACCOUNT_SIZE
    const S = kind === "account" ? A : T
    const linkedBit = kind === "account" ? AF.linked : TF.linked
    const importedBit = kind === "account" ? AF.imported : TF.imported
    const results: Array<ModelCreateResult> = []
    let chainStart: number | undefined
    let broken = false
    let scope: State | undefined
    const decoded = Array.from({ length: n }, (_, i) =>
      kind === "account" ? decodeAccount(events, i * ACCOUNT_SIZE) : decodeTransfer(events, i * TRANSFER_SIZE)
    )
    const batchImported = n > 0 && has(decoded[0]!.flags, importedBit)
    for (let i = 0; i < n; i++) {
      const e = decoded[i]!
      const slot = batchEnd - BigInt(n) + BigInt(i) + 1n
      const linked = has(e.flags, linkedBit)
      const imported = has(e.flags, importedBit)
      if (linked && chainStart === undefined) {
        chainStart = i
        broken = false
        scope = cloneState(this.current)
      }
      let status: number
      let ts = slot
      if (linked && i === n - 1) status = S.linked_event_chain_open
      else if (broken) status = S.linked_event_failed
      else if (imported !== batchImported) status = imported ? S.imported_event_not_expected : S.imported_event_expected
      else if (imported && (e.timestamp === 0n || e.timestamp > MAX63)) status = S.imported_event_timestamp_out_of_range
      else if (imported && (e.timestamp >= batchEnd || e.timestamp > slot)) {
        // `slot(i) < t < T` is undefined upstream (an assertion); see the class comment.
        status = S.imported_event_timestamp_must_not_advance
      } else if (!imported && e.timestamp !== 0n) status = S.timestamp_must_be_zero
      else {
        const outcome =
          kind === "account"
            ? this.createAccount(slot, e as ModelAccount)
            : this.createTransfer(slot, e as ModelTransfer)
        status = outcome.status
        if (status === S.created || status === S.exists) ts = outcome.timestamp!
      }
      if (status !== S.created) {
        if (chainStart !== undefined && !broken) {
          broken = true
          this.current = scope!
          for (let j = chainStart; j < i; j++) results[j] = { timestamp: results[j]!.timestamp, status: S.linked_event_failed }
        }
        if (kind === "transfer" && TRANSIENT.has(status)) this.orphans.add(e.id)
      }
      results.push({ timestamp: ts, status })
      if (chainStart !== undefined && (!linked || status === S.linked_event_chain_open)) {
        chainStart = undefined
        broken = false
        scope = undefined
      }
    }
    return results
  }

  // create_accounts (§8).

  private createAccount(slot: bigint, e: ModelAccount): Outcome {
    if (e.reserved !== 0) return { status: A.reserved_field }
    if (has(e.flags, AF.padding)) return { status: A.reserved_flag }
    if (e.id === 0n) return { status: A.id_must_not_be_zero }
    if (e.id === MAX128) return { status: A.id_must_not_be_int_max }
    const existing = this.current.accounts.get(e.id)
    if (existing !== undefined) return { status: accountExists(e, existing), timestamp: existing.timestamp }
    if (has(e.flags, AF.debits_must_not_exceed_credits) && has(e.flags, AF.credits_must_not_exceed_debits)) {
      return { status: A.flags_are_mutually_exclusive }
    }
    if (e.debits_pending !== 0n) return { status: A.debits_pending_must_be_zero }
    if (e.debits_posted !== 0n) return { status: A.debits_posted_must_be_zero }
    if (e.credits_pending !== 0n) return { status: A.credits_pending_must_be_zero }
    if (e.credits_posted !== 0n) return { status: A.credits_posted_must_be_zero }
    if (e.ledger === 0) return { status: A.ledger_must_not_be_zero }
    if (e.code === 0) return { status: A.code_must_not_be_zero }
    const imported = has(e.flags, AF.imported)
    if (imported) {
      if (e.timestamp <= this.maxAccountTimestamp() || this.transferTimestampExists(e.timestamp)) {
        return { status: A.imported_event_timestamp_must_not_regress }
      }
    }
    const timestamp = imported ? e.timestamp : slot
    this.current.accounts.set(e.id, {
      ...e,
      debits_pending: 0n,
      debits_posted: 0n,
      credits_pending: 0n,
      credits_posted: 0n,
      reserved: 0,
      timestamp
    })
    return { status: A.created, timestamp }
  }

  // create_transfers (§9, §10).

  private createTransfer(slot: bigint, e: ModelTransfer): Outcome {
    if (has(e.flags, TF.padding)) return { status: T.reserved_flag }
    if (e.id === 0n) return { status: T.id_must_not_be_zero }
    if (e.id === MAX128) return { status: T.id_must_not_be_int_max }
    const existing = this.current.transfers.get(e.id)
    if (existing !== undefined) return { status: this.transferExists(e, existing), timestamp: existing.timestamp }
    if (this.orphans.has(e.id)) return { status: T.id_already_failed }
    if (has(e.flags, TF.post_pending_transfer) || has(e.flags, TF.void_pending_transfer)) {
      return this.createPostVoid(slot, e)
    }
    if (e.debit_account_id === 0n) return { status: T.debit_account_id_must_not_be_zero }
    if (e.debit_account_id === MAX128) return { status: T.debit_account_id_must_not_be_int_max }
    if (e.credit_account_id === 0n) return { status: T.credit_account_id_must_not_be_zero }
    if (e.credit_account_id === MAX128) return { status: T.credit_account_id_must_not_be_int_max }
    if (e.debit_account_id === e.credit_account_id) return { status: T.accounts_must_be_different }
    if (e.pending_id !== 0n) return { status: T.pending_id_must_be_zero }
    const pending = has(e.flags, TF.pending)
    if (!pending) {
      if (e.timeout !== 0) return { status: T.timeout_reserved_for_pending_transfer }
      if (has(e.flags, TF.closing_debit) || has(e.flags, TF.closing_credit)) {
        return { status: T.closing_transfer_must_be_pending }
      }
    }
    if (e.ledger === 0) return { status: T.ledger_must_not_be_zero }
    if (e.code === 0) return { status: T.code_must_not_be_zero }
    const dr = this.current.accounts.get(e.debit_account_id)
    if (dr === undefined) return { status: T.debit_account_not_found }
    const cr = this.current.accounts.get(e.credit_account_id)
    if (cr === undefined) return { status: T.credit_account_not_found }
    if (dr.ledger !== cr.ledger) return { status: T.accounts_must_have_the_same_ledger }
    if (e.ledger !== dr.ledger) return { status: T.transfer_must_have_the_same_ledger_as_accounts }
    const imported = has(e.flags, TF.imported)
    if (imported) {
      if (e.timestamp <= this.maxTransferTimestamp() || this.accountTimestampExists(e.timestamp)) {
        return { status: T.imported_event_timestamp_must_not_regress }
      }
      if (e.timestamp <= dr.timestamp) return { status: T.imported_event_timestamp_must_postdate_debit_account }
      if (e.timestamp <= cr.timestamp) return { status: T.imported_event_timestamp_must_postdate_credit_account }
      if (e.timeout !== 0) return { status: T.imported_event_timeout_must_be_zero }
    }
    const timestamp = imported ? e.timestamp : slot
    if (has(dr.flags, AF.closed)) return { status: T.debit_account_already_closed }
    if (has(cr.flags, AF.closed)) return { status: T.credit_account_already_closed }

    // §9.3: balancing limits the amount; AMOUNT_MAX then means "as much as possible".
    let a = e.amount
    if (has(e.flags, TF.balancing_debit)) {
      a = minBig(a, saturatingSub(dr.credits_posted, dr.debits_posted + dr.debits_pending))
    }
    if (has(e.flags, TF.balancing_credit)) {
      a = minBig(a, saturatingSub(cr.debits_posted, cr.credits_posted + cr.credits_pending))
    }
    if (pending) {
      if (a + dr.debits_pending > MAX128) return { status: T.overflows_debits_pending }
      if (a + cr.credits_pending > MAX128) return { status: T.overflows_credits_pending }
    }
    if (a + dr.debits_posted > MAX128) return { status: T.overflows_debits_posted }
    if (a + cr.credits_posted > MAX128) return { status: T.overflows_credits_posted }
    if (a + dr.debits_pending + dr.debits_posted > MAX128) return { status: T.overflows_debits }
    if (a + cr.credits_pending + cr.credits_posted > MAX128) return { status: T.overflows_credits }
    if (timestamp + BigInt(e.timeout) * NS_PER_S > MAX63) return { status: T.overflows_timeout }
    if (
      has(dr.flags, AF.debits_must_not_exceed_credits) &&
      dr.debits_pending + dr.debits_posted + a > dr.credits_posted
    ) {
      return { status: T.exceeds_credits }
    }
    if (
      has(cr.flags, AF.credits_must_not_exceed_debits) &&
      cr.credits_pending + cr.credits_posted + a > cr.debits_posted
    ) {
      return { status: T.exceeds_debits }
    }

    // §9.4: effects.
    this.current.transfers.set(e.id, { ...e, amount: a, pending_id: 0n, timestamp })
    if (pending) {
      dr.debits_pending += a
      cr.credits_pending += a
      this.current.pendingStatus.set(e.id, "pending")
    } else {
      dr.debits_posted += a
      cr.credits_posted += a
    }
    if (has(e.flags, TF.closing_debit)) dr.flags |= AF.closed
    if (has(e.flags, TF.closing_credit)) cr.flags |= AF.closed
    this.current.history.set(e.id, { timestamp, transfer_id: e.id, expiry: false, debit: balancesOf(dr), credit: balancesOf(cr) })
    return { status: T.created, timestamp }
  }

  /** §10.1, §10.2: posting or voiding a pending transfer. */
  private createPostVoid(slot: bigint, e: ModelTransfer): Outcome {
    const post = has(e.flags, TF.post_pending_transfer)
    const isVoid = has(e.flags, TF.void_pending_transfer)
    if (post && isVoid) return { status: T.flags_are_mutually_exclusive }
    for (const bit of [TF.pending, TF.balancing_debit, TF.balancing_credit, TF.closing_debit, TF.closing_credit]) {
      if (has(e.flags, bit)) return { status: T.flags_are_mutually_exclusive }
    }
    if (e.pending_id === 0n) return { status: T.pending_id_must_not_be_zero }
    if (e.pending_id === MAX128) return { status: T.pending_id_must_not_be_int_max }
    if (e.pending_id === e.id) return { status: T.pending_id_must_be_different }
    if (e.timeout !== 0) return { status: T.timeout_reserved_for_pending_transfer }
    const p = this.current.transfers.get(e.pending_id)
    if (p === undefined) return { status: T.pending_transfer_not_found }
    if (!has(p.flags, TF.pending)) return { status: T.pending_transfer_not_pending }
    if (e.debit_account_id !== 0n && e.debit_account_id !== p.debit_account_id) {
      return { status: T.pending_transfer_has_different_debit_account_id }
    }
    if (e.credit_account_id !== 0n && e.credit_account_id !== p.credit_account_id) {
      return { status: T.pending_transfer_has_different_credit_account_id }
    }
    if (e.ledger !== 0 && e.ledger !== p.ledger) return { status: T.pending_transfer_has_different_ledger }
    if (e.code !== 0 && e.code !== p.code) return { status: T.pending_transfer_has_different_code }
    const a = isVoid ? (e.amount === 0n ? p.amount : e.amount) : e.amount === AMOUNT_MAX ? p.amount : e.amount
    if (a > p.amount) return { status: T.exceeds_pending_transfer_amount }
    if (isVoid && a < p.amount) return { status: T.pending_transfer_has_different_amount }
    const pStatus = this.current.pendingStatus.get(p.id)
    if (pStatus === "posted") return { status: T.pending_transfer_already_posted }
    if (pStatus === "voided") return { status: T.pending_transfer_already_voided }
    if (pStatus === "expired") return { status: T.pending_transfer_expired }
    check(pStatus === "pending", () => `pending transfer ${p.id} has no status`)
    const expiresAt = p.timeout > 0 ? p.timestamp + BigInt(p.timeout) * NS_PER_S : undefined
    if (expiresAt !== undefined && expiresAt <= slot) return { status: T.pending_transfer_expired }
    const imported = has(e.flags, TF.imported)
    if (imported) {
      // Undefined upstream (an assertion): see the class comment.
      if (expiresAt !== undefined && this.options.importedResolveOfTimedPending === "reject") {
        return { status: T.imported_event_timestamp_must_not_advance }
      }
      if (e.timestamp <= this.maxTransferTimestamp() || this.accountTimestampExists(e.timestamp)) {
        return { status: T.imported_event_timestamp_must_not_regress }
      }
    }
    const timestamp = imported ? e.timestamp : slot
    const dr = this.account(p.debit_account_id)
    const cr = this.account(p.credit_account_id)
    if (!isVoid && has(dr.flags, AF.closed)) return { status: T.debit_account_already_closed }
    if (!isVoid && has(cr.flags, AF.closed)) return { status: T.credit_account_already_closed }

    this.current.transfers.set(e.id, {
      id: e.id,
      debit_account_id: p.debit_account_id,
      credit_account_id: p.credit_account_id,
      amount: a,
      pending_id: e.pending_id,
      user_data_128: e.user_data_128 !== 0n ? e.user_data_128 : p.user_data_128,
      user_data_64: e.user_data_64 !== 0n ? e.user_data_64 : p.user_data_64,
      user_data_32: e.user_data_32 !== 0 ? e.user_data_32 : p.user_data_32,
      timeout: 0,
      ledger: p.ledger,
      code: p.code,
      flags: e.flags,
      timestamp
    })
    dr.debits_pending -= p.amount
    cr.credits_pending -= p.amount
    if (post) {
      dr.debits_posted += a
      cr.credits_posted += a
    } else {
      if (has(p.flags, TF.closing_debit)) dr.flags &= ~AF.closed
      if (has(p.flags, TF.closing_credit)) cr.flags &= ~AF.closed
    }
    this.current.pendingStatus.set(p.id, post ? "posted" : "voided")
    this.current.history.set(e.id, { timestamp, transfer_id: e.id, expiry: false, debit: balancesOf(dr), credit: balancesOf(cr) })
    return { status: T.created, timestamp }
  }

  /** §13.2: the idempotency comparison against an existing transfer `x`. */
  private transferExists(e: ModelTransfer, x: ModelTransfer): number {
    if (e.flags !== x.flags) return T.exists_with_different_flags
    if (e.pending_id !== x.pending_id) return T.exists_with_different_pending_id
    if (e.timeout !== x.timeout) return T.exists_with_different_timeout
    if (has(e.flags, TF.post_pending_transfer) || has(e.flags, TF.void_pending_transfer)) {
      const p = this.current.transfers.get(x.pending_id)
      check(p !== undefined, () => `post/void ${x.id} without its pending transfer`)
      if (e.debit_account_id !== 0n && e.debit_account_id !== x.debit_account_id) {
        return T.exists_with_different_debit_account_id
      }
      if (e.credit_account_id !== 0n && e.credit_account_id !== x.credit_account_id) {
        return T.exists_with_different_credit_account_id
      }
      const fullAmount = has(e.flags, TF.void_pending_transfer) ? 0n : AMOUNT_MAX
      const amountMatches = e.amount === fullAmount ? x.amount === p.amount : e.amount === x.amount
      if (!amountMatches) return T.exists_with_different_amount
      const inherited = <V>(request: V, zero: V, stored: V, pending: V): boolean =>
        request === zero ? stored === pending : request === stored
      if (!inherited(e.user_data_128, 0n, x.user_data_128, p.user_data_128)) return T.exists_with_different_user_data_128
      if (!inherited(e.user_data_64, 0n, x.user_data_64, p.user_data_64)) return T.exists_with_different_user_data_64
      if (!inherited(e.user_data_32, 0, x.user_data_32, p.user_data_32)) return T.exists_with_different_user_data_32
      if (e.ledger !== 0 && e.ledger !== x.ledger) return T.exists_with_different_ledger
      if (e.code !== 0 && e.code !== x.code) return T.exists_with_different_code
      return T.exists
    }
    if (e.debit_account_id !== x.debit_account_id) return T.exists_with_different_debit_account_id
    if (e.credit_account_id !== x.credit_account_id) return T.exists_with_different_credit_account_id
    const balancing = has(e.flags, TF.balancing_debit) || has(e.flags, TF.balancing_credit)
    if (balancing ? e.amount < x.amount : e.amount !== x.amount) return T.exists_with_different_amount
    if (e.user_data_128 !== x.user_data_128) return T.exists_with_different_user_data_128
    if (e.user_data_64 !== x.user_data_64) return T.exists_with_different_user_data_64
    if (e.user_data_32 !== x.user_data_32) return T.exists_with_different_user_data_32
    if (e.ledger !== x.ledger) return T.exists_with_different_ledger
    if (e.code !== x.code) return T.exists_with_different_code
    return T.exists
  }

  // Reads (§14).

  private lookup<V>(events: Uint8Array, table: ReadonlyMap<bigint, V>): Array<V> {
    assertSize(events, ID_SIZE, false)
    const out: Array<V> = []
    for (let o = 0; o < events.length; o += ID_SIZE) {
      const found = table.get(readU128(events, o))
      if (found !== undefined) out.push(found)
    }
    return out
  }

  /** §14.2: the transfers an AccountFilter selects, or undefined when the filter is invalid. */
  private selectAccountTransfers(bytes: Uint8Array): Array<ModelTransfer> | undefined {
    const f = decodeAccountFilter(bytes)
    const valid =
      f.account_id !== 0n &&
      f.account_id !== MAX128 &&
      f.timestamp_min <= MAX63 &&
      f.timestamp_max <= MAX63 &&
      (f.timestamp_max === 0n || f.timestamp_min <= f.timestamp_max) &&
      f.limit !== 0 &&
      (has(f.flags, AFF.debits) || has(f.flags, AFF.credits)) &&
      (f.flags & ~0b111) === 0 &&
      f.reservedZero
    if (!valid) return undefined
    const min = f.timestamp_min === 0n ? 1n : f.timestamp_min
    const max = f.timestamp_max === 0n ? MAX63 : f.timestamp_max
    const matches = [...this.current.transfers.values()].filter(
      (t) =>
        ((has(f.flags, AFF.debits) && t.debit_account_id === f.account_id) ||
          (has(f.flags, AFF.credits) && t.credit_account_id === f.account_id)) &&
        (f.user_data_128 === 0n || t.user_data_128 === f.user_data_128) &&
        (f.user_data_64 === 0n || t.user_data_64 === f.user_data_64) &&
        (f.user_data_32 === 0 || t.user_data_32 === f.user_data_32) &&
        (f.code === 0 || t.code === f.code) &&
        min <= t.timestamp &&
        t.timestamp <= max
    )
    matches.sort(byTimestamp)
    if (has(f.flags, AFF.reversed)) matches.reverse()
    return matches.slice(0, Math.min(f.limit, BATCH_MAX))
  }

  private getAccountTransfers(bytes: Uint8Array): Array<ModelTransfer> {
    return this.selectAccountTransfers(bytes) ?? []
  }

  /** §14.3: the filter account's balances after each selected transfer. */
  private getAccountBalances(bytes: Uint8Array): Uint8Array {
    const transfers = this.selectAccountTransfers(bytes)
    const accountId = readU128(bytes, 0)
    const account = this.current.accounts.get(accountId)
    if (transfers === undefined || account === undefined || !has(account.flags, AF.history)) {
      return new Uint8Array(0)
    }
    const out = new Uint8Array(transfers.length * ACCOUNT_BALANCE_SIZE)
    transfers.forEach((t, i) => {
      const row = this.current.history.get(t.id)
      check(row !== undefined, () => `transfer ${t.id} without a history row`)
      const balances = t.debit_account_id === accountId ? row.debit : row.credit
      encodeAccountBalanceInto(out, i * ACCOUNT_BALANCE_SIZE, { ...balances, timestamp: t.timestamp })
    })
    return out
  }

  /** §14.4: query_accounts / query_transfers over `objects`. */
  private query<O extends ModelAccount | ModelTransfer>(bytes: Uint8Array, objects: Array<O>): Array<O> {
    const f = decodeQueryFilter(bytes)
    const valid =
      f.timestamp_min <= MAX63 &&
      f.timestamp_max <= MAX63 &&
      (f.timestamp_max === 0n || f.timestamp_min <= f.timestamp_max) &&
      f.limit !== 0 &&
      (f.flags & ~QFF.reversed) === 0 &&
      f.reservedZero
    if (!valid) return []
    const min = f.timestamp_min === 0n ? 1n : f.timestamp_min
    const max = f.timestamp_max === 0n ? MAX63 : f.timestamp_max
    const matches = objects.filter(
      (o) =>
        (f.user_data_128 === 0n || o.user_data_128 === f.user_data_128) &&
        (f.user_data_64 === 0n || o.user_data_64 === f.user_data_64) &&
        (f.user_data_32 === 0 || o.user_data_32 === f.user_data_32) &&
        (f.ledger === 0 || o.ledger === f.ledger) &&
        (f.code === 0 || o.code === f.code) &&
        min <= o.timestamp &&
        o.timestamp <= max
    )
    matches.sort(byTimestamp)
    if (has(f.flags, QFF.reversed)) matches.reverse()
    return matches.slice(0, Math.min(f.limit, BATCH_MAX))
  }

  // Helpers.

  private account(id: bigint): ModelAccount {
    const a = this.current.accounts.get(id)
    check(a !== undefined, () => `account ${id} missing`)
    return a
  }

  private unresolvedWithTimeout(): Array<{ transfer: ModelTransfer; expiresAt: bigint }> {
    const out: Array<{ transfer: ModelTransfer; expiresAt: bigint }> = []
    for (const [id, status] of this.current.pendingStatus) {
      if (status !== "pending") continue
      const t = this.current.transfers.get(id)!
      if (t.timeout > 0) out.push({ transfer: t, expiresAt: t.timestamp + BigInt(t.timeout) * NS_PER_S })
    }
    return out
  }

  private maxAccountTimestamp(): bigint {
    let max = 0n
    for (const a of this.current.accounts.values()) if (a.timestamp > max) max = a.timestamp
    return max
  }

  private maxTransferTimestamp(): bigint {
    let max = 0n
    for (const t of this.current.transfers.values()) if (t.timestamp > max) max = t.timestamp
    return max
  }

  private accountTimestampExists(timestamp: bigint): boolean {
    for (const a of this.current.accounts.values()) if (a.timestamp === timestamp) return true
    return false
  }

  private transferTimestampExists(timestamp: bigint): boolean {
    for (const t of this.current.transfers.values()) if (t.timestamp === timestamp) return true
    return false
  }
}

/** §13.1: the idempotency comparison against an existing account `x`. */
const accountExists = (e: ModelAccount, x: ModelAccount): number => {
  if (e.flags !== x.flags) return A.exists_with_different_flags
  if (e.user_data_128 !== x.user_data_128) return A.exists_with_different_user_data_128
  if (e.user_data_64 !== x.user_data_64) return A.exists_with_different_user_data_64
  if (e.user_data_32 !== x.user_data_32) return A.exists_with_different_user_data_32
  if (e.ledger !== x.ledger) return A.exists_with_different_ledger
  if (e.code !== x.code) return A.exists_with_different_code
  return A.exists
}

function check(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new Error(`reference model invariant: ${message()}`)
}

const assertSize = (events: Uint8Array, size: number, exactlyOne: boolean): void => {
  check(events.length % size === 0, () => `body of ${events.length} bytes is not a multiple of ${size}`)
  const count = events.length / size
  if (exactlyOne) check(count === 1, () => `a query takes exactly one filter, got ${count}`)
  else check(count <= BATCH_MAX, () => `${count} events exceed ${BATCH_MAX}`)
}
