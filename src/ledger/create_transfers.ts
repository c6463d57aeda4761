/**
 * create_transfers, per event (spec/state-machine.md §9, §10, §12, §13.2): validation in the
 * spec's order of precedence, then the effects on both accounts. All checks come before any
 * change, so a failed event changes nothing; the batch loop in `create_batch.ts` handles chains.
 */
import { assert } from "../assert.ts"
import { AccountFlags, TransferFlags, transferFlagsPadding } from "../protocol/records.ts"
import { CreateTransferStatus as Status } from "../protocol/status.ts"
import { hasTimestamp, notAfterNewest, rowTimestampHi, rowTimestampLo, type LedgerContext } from "./context.ts"
import { copyWords } from "./record_table.ts"
import { AccountWord as A, historyRowWords, noHistory, PendingStatus, TransferWord as T } from "./store.ts"
import { assertAccountLimits, TotalsWord } from "./totals.ts"
import {
  add128, addSecondsAsNs, compare128, compare64, copy128, equal128, equal64, isMax128, isZero128, min128InPlace,
  saturatingSub128, sub128, timestampHiMax, u64Result
} from "./u128.ts"

const postOrVoid = TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer
const closing = TransferFlags.closing_debit | TransferFlags.closing_credit
const balancing = TransferFlags.balancing_debit | TransferFlags.balancing_credit

// Scratch registers (ctx.scratch): the amount moved, and temporaries.
const amount = 0
const temp = 4
const sum = 8

/**
 * Creates the transfer at `ev[e..e+31]` whose slot timestamp is (slotHi, slotLo); the batch loop
 * already checked the linked, imported and timestamp rules. Returns its status; for `created` and
 * the `exists` family, `ctx.result*` holds the stored transfer's timestamp.
 */
export function createTransfer(ctx: LedgerContext, ev: Uint32Array, e: number, slotHi: number, slotLo: number): number {
  const { transfers, transferIds, orphanIds } = ctx.store
  const flags = ev[e + T.code_flags]! >>> 16
  if ((flags & transferFlagsPadding) !== 0) return Status.reserved_flag
  if (isZero128(ev, e + T.id)) return Status.id_must_not_be_zero
  if (isMax128(ev, e + T.id)) return Status.id_must_not_be_int_max

  const existing = transferIds.find(ev, e + T.id)
  if (existing >= 0) {
    ctx.resultHi = rowTimestampHi(transfers, existing)
    ctx.resultLo = rowTimestampLo(transfers, existing)
    return compareExisting(ctx, transfers.array(existing), transfers.offset(existing), ev, e)
  }
  if (orphanIds.find(ev, e + T.id) >= 0) return Status.id_already_failed
  if ((flags & postOrVoid) !== 0) return createPostOrVoid(ctx, ev, e, flags, slotHi, slotLo)
  return createSinglePhaseOrPending(ctx, ev, e, flags, slotHi, slotLo)
}

function createSinglePhaseOrPending(
  ctx: LedgerContext, ev: Uint32Array, e: number, flags: number, slotHi: number, slotLo: number
): number {
  const { accounts, transfers, accountIds } = ctx.store
  if (isZero128(ev, e + T.debit_account_id)) return Status.debit_account_id_must_not_be_zero
  if (isMax128(ev, e + T.debit_account_id)) return Status.debit_account_id_must_not_be_int_max
  if (isZero128(ev, e + T.credit_account_id)) return Status.credit_account_id_must_not_be_zero
  if (isMax128(ev, e + T.credit_account_id)) return Status.credit_account_id_must_not_be_int_max
  if (equal128(ev, e + T.debit_account_id, ev, e + T.credit_account_id)) return Status.accounts_must_be_different
  if (!isZero128(ev, e + T.pending_id)) return Status.pending_id_must_be_zero
  const pending = (flags & TransferFlags.pending) !== 0
  const timeout = ev[e + T.timeout]!
  if (!pending) {
    if (timeout !== 0) return Status.timeout_reserved_for_pending_transfer
    if ((flags & closing) !== 0) return Status.closing_transfer_must_be_pending
  }
  const ledger = ev[e + T.ledger]!
  if (ledger === 0) return Status.ledger_must_not_be_zero
  if ((ev[e + T.code_flags]! & 0xffff) === 0) return Status.code_must_not_be_zero

  const drRow = accountIds.find(ev, e + T.debit_account_id)
  if (drRow < 0) return Status.debit_account_not_found
  const crRow = accountIds.find(ev, e + T.credit_account_id)
  if (crRow < 0) return Status.credit_account_not_found
  const dr = accounts.array(drRow), d = accounts.offset(drRow)
  const cr = accounts.array(crRow), c = accounts.offset(crRow)
  if (dr[d + A.ledger] !== cr[c + A.ledger]) return Status.accounts_must_have_the_same_ledger
  if (ledger !== dr[d + A.ledger]) return Status.transfer_must_have_the_same_ledger_as_accounts

  let timestampHi = slotHi
  let timestampLo = slotLo
  if ((flags & TransferFlags.imported) !== 0) {
    timestampHi = ev[e + T.timestamp_hi]!
    timestampLo = ev[e + T.timestamp_lo]!
    if (notAfterNewest(transfers, timestampHi, timestampLo) || hasTimestamp(accounts, timestampHi, timestampLo)) {
      return Status.imported_event_timestamp_must_not_regress
    }
    if (compare64(timestampHi, timestampLo, dr[d + A.timestamp_hi]!, dr[d + A.timestamp_lo]!) <= 0) {
      return Status.imported_event_timestamp_must_postdate_debit_account
    }
    if (compare64(timestampHi, timestampLo, cr[c + A.timestamp_hi]!, cr[c + A.timestamp_lo]!) <= 0) {
      return Status.imported_event_timestamp_must_postdate_credit_account
    }
    if (timeout !== 0) return Status.imported_event_timeout_must_be_zero
  }
  if (((dr[d + A.code_flags]! >>> 16) & AccountFlags.closed) !== 0) return Status.debit_account_already_closed
  if (((cr[c + A.code_flags]! >>> 16) & AccountFlags.closed) !== 0) return Status.credit_account_already_closed

  const s = ctx.scratch
  copy128(s, amount, ev, e + T.amount)
  if ((flags & TransferFlags.balancing_debit) !== 0) {
    add128(s, temp, dr, d + A.debits_posted, dr, d + A.debits_pending)
    saturatingSub128(s, sum, dr, d + A.credits_posted, s, temp)
    min128InPlace(s, amount, s, sum)
  }
  if ((flags & TransferFlags.balancing_credit) !== 0) {
    add128(s, temp, cr, c + A.credits_posted, cr, c + A.credits_pending)
    saturatingSub128(s, sum, cr, c + A.debits_posted, s, temp)
    min128InPlace(s, amount, s, sum)
  }
  if (pending) {
    if (add128(s, temp, s, amount, dr, d + A.debits_pending)) return Status.overflows_debits_pending
    if (add128(s, temp, s, amount, cr, c + A.credits_pending)) return Status.overflows_credits_pending
  }
  if (add128(s, temp, s, amount, dr, d + A.debits_posted)) return Status.overflows_debits_posted
  if (add128(s, temp, s, amount, cr, c + A.credits_posted)) return Status.overflows_credits_posted
  // An account's pending plus posted never exceeds 2^128 - 1 (asserted after every change), so
  // only the addition of the amount can overflow here.
  add128(s, temp, dr, d + A.debits_pending, dr, d + A.debits_posted)
  if (add128(s, temp, s, temp, s, amount)) return Status.overflows_debits
  add128(s, sum, cr, c + A.credits_pending, cr, c + A.credits_posted)
  if (add128(s, sum, s, sum, s, amount)) return Status.overflows_credits
  addSecondsAsNs(timestampHi, timestampLo, timeout)
  const expiresHi = u64Result[0]!
  const expiresLo = u64Result[1]!
  if (expiresHi > timestampHiMax) return Status.overflows_timeout
  // temp now holds the debit account's debits after the transfer, sum the credit's credits.
  const drFlags = dr[d + A.code_flags]! >>> 16
  const crFlags = cr[c + A.code_flags]! >>> 16
  if ((drFlags & AccountFlags.debits_must_not_exceed_credits) !== 0 && compare128(s, temp, dr, d + A.credits_posted) > 0) {
    return Status.exceeds_credits
  }
  if ((crFlags & AccountFlags.credits_must_not_exceed_debits) !== 0 && compare128(s, sum, cr, c + A.debits_posted) > 0) {
    return Status.exceeds_debits
  }
  insertSinglePhaseOrPending(ctx, ev, e, flags, drRow, crRow, timestampHi, timestampLo, expiresHi, expiresLo)
  return Status.created
}

/**
 * The effects of a single-phase or pending transfer that passed every check: the transfer row
 * (its amount from `ctx.scratch`, balancing applied), both accounts' balances, the totals, the
 * expiry of a pending transfer with a timeout, closing flags.
 */
function insertSinglePhaseOrPending(
  ctx: LedgerContext, ev: Uint32Array, e: number, flags: number, drRow: number, crRow: number,
  timestampHi: number, timestampLo: number, expiresHi: number, expiresLo: number
): void {
  const { accounts, transfers } = ctx.store
  const dr = accounts.array(drRow), d = accounts.offset(drRow)
  const cr = accounts.array(crRow), c = accounts.offset(crRow)
  const s = ctx.scratch
  const row = transfers.append()
  const t = transfers.array(row), o = transfers.offset(row)
  copyWords(t, o, ev, e, 32)
  copy128(t, o + T.amount, s, amount)
  t[o + T.timestamp_hi] = timestampHi
  t[o + T.timestamp_lo] = timestampLo
  ctx.store.transferIds.insert(t, o + T.id, row)

  ctx.scope.saveAccount(drRow)
  ctx.scope.saveAccount(crRow)
  const totals = ctx.totals
  if ((flags & TransferFlags.pending) !== 0) {
    add128(dr, d + A.debits_pending, dr, d + A.debits_pending, s, amount)
    add128(cr, c + A.credits_pending, cr, c + A.credits_pending, s, amount)
    totals.add(TotalsWord.debits_pending, s, amount)
    totals.add(TotalsWord.credits_pending, s, amount)
    t[o + T.pending_status] = PendingStatus.pending
    if (ev[e + T.timeout] !== 0) ctx.store.expiries.push(expiresHi, expiresLo, timestampHi, timestampLo, row)
  } else {
    add128(dr, d + A.debits_posted, dr, d + A.debits_posted, s, amount)
    add128(cr, c + A.credits_posted, cr, c + A.credits_posted, s, amount)
    totals.add(TotalsWord.debits_posted, s, amount)
    totals.add(TotalsWord.credits_posted, s, amount)
  }
  if ((flags & TransferFlags.closing_debit) !== 0) dr[d + A.code_flags] = dr[d + A.code_flags]! | (AccountFlags.closed << 16)
  if ((flags & TransferFlags.closing_credit) !== 0) cr[c + A.code_flags] = cr[c + A.code_flags]! | (AccountFlags.closed << 16)
  recordTransfer(ctx, row, drRow, crRow)
  ctx.resultHi = timestampHi
  ctx.resultLo = timestampLo
}

function createPostOrVoid(
  ctx: LedgerContext, ev: Uint32Array, e: number, flags: number, slotHi: number, slotLo: number
): number {
  const { accounts, transfers, accountIds, transferIds } = ctx.store
  const isVoid = (flags & TransferFlags.void_pending_transfer) !== 0
  if ((flags & postOrVoid) === postOrVoid || (flags & (TransferFlags.pending | balancing | closing)) !== 0) {
    return Status.flags_are_mutually_exclusive
  }
  if (isZero128(ev, e + T.pending_id)) return Status.pending_id_must_not_be_zero
  if (isMax128(ev, e + T.pending_id)) return Status.pending_id_must_not_be_int_max
  if (equal128(ev, e + T.pending_id, ev, e + T.id)) return Status.pending_id_must_be_different
  if (ev[e + T.timeout] !== 0) return Status.timeout_reserved_for_pending_transfer

  const pRow = transferIds.find(ev, e + T.pending_id)
  if (pRow < 0) return Status.pending_transfer_not_found
  const p = transfers.array(pRow), q = transfers.offset(pRow)
  if (((p[q + T.code_flags]! >>> 16) & TransferFlags.pending) === 0) return Status.pending_transfer_not_pending
  if (!isZero128(ev, e + T.debit_account_id) && !equal128(ev, e + T.debit_account_id, p, q + T.debit_account_id)) {
    return Status.pending_transfer_has_different_debit_account_id
  }
  if (!isZero128(ev, e + T.credit_account_id) && !equal128(ev, e + T.credit_account_id, p, q + T.credit_account_id)) {
    return Status.pending_transfer_has_different_credit_account_id
  }
  if (ev[e + T.ledger] !== 0 && ev[e + T.ledger] !== p[q + T.ledger]) return Status.pending_transfer_has_different_ledger
  const code = ev[e + T.code_flags]! & 0xffff
  if (code !== 0 && code !== (p[q + T.code_flags]! & 0xffff)) return Status.pending_transfer_has_different_code

  const s = ctx.scratch
  const inherit = isVoid ? isZero128(ev, e + T.amount) : isMax128(ev, e + T.amount)
  copy128(s, amount, inherit ? p : ev, inherit ? q + T.amount : e + T.amount)
  const versusPending = compare128(s, amount, p, q + T.amount)
  if (versusPending > 0) return Status.exceeds_pending_transfer_amount
  if (isVoid && versusPending < 0) return Status.pending_transfer_has_different_amount

  const pendingStatus = p[q + T.pending_status]!
  if (pendingStatus === PendingStatus.posted) return Status.pending_transfer_already_posted
  if (pendingStatus === PendingStatus.voided) return Status.pending_transfer_already_voided
  if (pendingStatus === PendingStatus.expired) return Status.pending_transfer_expired
  assert(pendingStatus === PendingStatus.pending, () => `bad pending status ${pendingStatus}`)
  if (p[q + T.timeout] !== 0) {
    addSecondsAsNs(p[q + T.timestamp_hi]!, p[q + T.timestamp_lo]!, p[q + T.timeout]!)
    if (compare64(u64Result[0]!, u64Result[1]!, slotHi, slotLo) <= 0) return Status.pending_transfer_expired
  }

  let timestampHi = slotHi
  let timestampLo = slotLo
  if ((flags & TransferFlags.imported) !== 0) {
    // Importing the resolution of a live pending transfer with a timeout is undefined in 0.17
    // (an assertion upstream, spec §11): its expiry runs on cluster time, which an imported
    // timestamp does not follow. Refused the way the spec suggests.
    if (p[q + T.timeout] !== 0) return Status.imported_event_timestamp_must_not_advance
    timestampHi = ev[e + T.timestamp_hi]!
    timestampLo = ev[e + T.timestamp_lo]!
    if (notAfterNewest(transfers, timestampHi, timestampLo) || hasTimestamp(accounts, timestampHi, timestampLo)) {
      return Status.imported_event_timestamp_must_not_regress
    }
  }
  const drRow = accountIds.find(p, q + T.debit_account_id)
  const crRow = accountIds.find(p, q + T.credit_account_id)
  assert(drRow >= 0 && crRow >= 0, () => "a pending transfer's account is missing")
  const dr = accounts.array(drRow), d = accounts.offset(drRow)
  const cr = accounts.array(crRow), c = accounts.offset(crRow)
  if (!isVoid) {
    if (((dr[d + A.code_flags]! >>> 16) & AccountFlags.closed) !== 0) return Status.debit_account_already_closed
    if (((cr[c + A.code_flags]! >>> 16) & AccountFlags.closed) !== 0) return Status.credit_account_already_closed
  }
  insertPostOrVoid(ctx, ev, e, flags, pRow, drRow, crRow, timestampHi, timestampLo)
  return Status.created
}

/**
 * The effects of a post or void that passed every check: the transfer row (the pending
 * transfer's fields where the event leaves them zero, its amount from `ctx.scratch`), the
 * pending amounts released from both accounts and the totals, then either the posted amounts
 * added or the closing flags cleared, and the pending transfer's new status.
 */
function insertPostOrVoid(
  ctx: LedgerContext, ev: Uint32Array, e: number, flags: number, pRow: number, drRow: number, crRow: number,
  timestampHi: number, timestampLo: number
): void {
  const { accounts, transfers, transferIds } = ctx.store
  const p = transfers.array(pRow), q = transfers.offset(pRow)
  const dr = accounts.array(drRow), d = accounts.offset(drRow)
  const cr = accounts.array(crRow), c = accounts.offset(crRow)
  const s = ctx.scratch
  const row = transfers.append()
  const t = transfers.array(row), o = transfers.offset(row)
  copy128(t, o + T.id, ev, e + T.id)
  copy128(t, o + T.debit_account_id, p, q + T.debit_account_id)
  copy128(t, o + T.credit_account_id, p, q + T.credit_account_id)
  copy128(t, o + T.amount, s, amount)
  copy128(t, o + T.pending_id, ev, e + T.pending_id)
  const userData128 = isZero128(ev, e + T.user_data_128) ? p : ev
  copy128(t, o + T.user_data_128, userData128, (userData128 === p ? q : e) + T.user_data_128)
  const userData64 = ev[e + T.user_data_64] === 0 && ev[e + T.user_data_64 + 1] === 0
  t[o + T.user_data_64] = userData64 ? p[q + T.user_data_64]! : ev[e + T.user_data_64]!
  t[o + T.user_data_64 + 1] = userData64 ? p[q + T.user_data_64 + 1]! : ev[e + T.user_data_64 + 1]!
  t[o + T.user_data_32] = ev[e + T.user_data_32] === 0 ? p[q + T.user_data_32]! : ev[e + T.user_data_32]!
  t[o + T.ledger] = p[q + T.ledger]!
  t[o + T.code_flags] = ((flags << 16) | (p[q + T.code_flags]! & 0xffff)) >>> 0
  t[o + T.timestamp_hi] = timestampHi
  t[o + T.timestamp_lo] = timestampLo
  transferIds.insert(t, o + T.id, row)

  ctx.scope.saveStatus(pRow)
  ctx.store.transfers.markChanged(pRow)
  ctx.scope.saveAccount(drRow)
  ctx.scope.saveAccount(crRow)
  const totals = ctx.totals
  sub128(dr, d + A.debits_pending, dr, d + A.debits_pending, p, q + T.amount)
  sub128(cr, c + A.credits_pending, cr, c + A.credits_pending, p, q + T.amount)
  totals.sub(TotalsWord.debits_pending, p, q + T.amount)
  totals.sub(TotalsWord.credits_pending, p, q + T.amount)
  if ((flags & TransferFlags.void_pending_transfer) !== 0) {
    reopen(dr, d, cr, c, p[q + T.code_flags]! >>> 16)
    p[q + T.pending_status] = PendingStatus.voided
  } else {
    add128(dr, d + A.debits_posted, dr, d + A.debits_posted, s, amount)
    add128(cr, c + A.credits_posted, cr, c + A.credits_posted, s, amount)
    totals.add(TotalsWord.debits_posted, s, amount)
    totals.add(TotalsWord.credits_posted, s, amount)
    p[q + T.pending_status] = PendingStatus.posted
  }
  recordTransfer(ctx, row, drRow, crRow)
  ctx.resultHi = timestampHi
  ctx.resultLo = timestampLo
}

/** Clears the `closed` flags that a closing pending transfer set (its void or its expiry). */
export function reopen(dr: Uint32Array, d: number, cr: Uint32Array, c: number, pendingFlags: number): void {
  if ((pendingFlags & TransferFlags.closing_debit) !== 0) dr[d + A.code_flags] = dr[d + A.code_flags]! & ~(AccountFlags.closed << 16)
  if ((pendingFlags & TransferFlags.closing_credit) !== 0) cr[c + A.code_flags] = cr[c + A.code_flags]! & ~(AccountFlags.closed << 16)
}

/**
 * Indexes a new transfer under both accounts, records the balance history when either account
 * keeps it, and asserts both accounts' limits.
 */
function recordTransfer(ctx: LedgerContext, row: number, drRow: number, crRow: number): void {
  const { accounts, transfers, history, postings } = ctx.store
  const dr = accounts.array(drRow), d = accounts.offset(drRow)
  const cr = accounts.array(crRow), c = accounts.offset(crRow)
  postings.append(dr, d + A.postings, row)
  postings.append(cr, c + A.postings, row)
  const t = transfers.array(row), o = transfers.offset(row)
  t[o + T.history] = noHistory
  if ((((dr[d + A.code_flags]! | cr[c + A.code_flags]!) >>> 16) & AccountFlags.history) !== 0) {
    const h = history.append()
    const array = history.array(h)
    const offset = history.offset(h)
    copyWords(array, offset, dr, d + A.debits_pending, historyRowWords / 2)
    copyWords(array, offset + historyRowWords / 2, cr, c + A.debits_pending, historyRowWords / 2)
    t[o + T.history] = h
  }
  assertAccountLimits(dr, d)
  assertAccountLimits(cr, c)
}

/** §13.2: the first field in which the event differs from the stored transfer, or `exists`. */
function compareExisting(ctx: LedgerContext, x: Uint32Array, o: number, ev: Uint32Array, e: number): number {
  const flags = ev[e + T.code_flags]! >>> 16
  if ((x[o + T.code_flags]! >>> 16) !== flags) return Status.exists_with_different_flags
  if (!equal128(x, o + T.pending_id, ev, e + T.pending_id)) return Status.exists_with_different_pending_id
  if (x[o + T.timeout] !== ev[e + T.timeout]) return Status.exists_with_different_timeout
  if ((flags & postOrVoid) === 0) {
    if (!equal128(x, o + T.debit_account_id, ev, e + T.debit_account_id)) return Status.exists_with_different_debit_account_id
    if (!equal128(x, o + T.credit_account_id, ev, e + T.credit_account_id)) return Status.exists_with_different_credit_account_id
    const amountDiffers = (flags & balancing) !== 0
      ? compare128(ev, e + T.amount, x, o + T.amount) < 0
      : !equal128(ev, e + T.amount, x, o + T.amount)
    if (amountDiffers) return Status.exists_with_different_amount
    if (!equal128(x, o + T.user_data_128, ev, e + T.user_data_128)) return Status.exists_with_different_user_data_128
    if (!equal64(x, o + T.user_data_64, ev, e + T.user_data_64)) return Status.exists_with_different_user_data_64
    if (x[o + T.user_data_32] !== ev[e + T.user_data_32]) return Status.exists_with_different_user_data_32
    if (x[o + T.ledger] !== ev[e + T.ledger]) return Status.exists_with_different_ledger
    if ((x[o + T.code_flags]! & 0xffff) !== (ev[e + T.code_flags]! & 0xffff)) return Status.exists_with_different_code
    return Status.exists
  }

  const { transfers, transferIds } = ctx.store
  const pRow = transferIds.find(x, o + T.pending_id)
  assert(pRow >= 0, () => "a stored post or void names a missing pending transfer")
  const p = transfers.array(pRow), q = transfers.offset(pRow)
  if (!isZero128(ev, e + T.debit_account_id) && !equal128(ev, e + T.debit_account_id, x, o + T.debit_account_id)) {
    return Status.exists_with_different_debit_account_id
  }
  if (!isZero128(ev, e + T.credit_account_id) && !equal128(ev, e + T.credit_account_id, x, o + T.credit_account_id)) {
    return Status.exists_with_different_credit_account_id
  }
  const inheritsAmount = (flags & TransferFlags.void_pending_transfer) !== 0 ? isZero128(ev, e + T.amount) : isMax128(ev, e + T.amount)
  const amountMatches = inheritsAmount ? equal128(x, o + T.amount, p, q + T.amount) : equal128(ev, e + T.amount, x, o + T.amount)
  if (!amountMatches) return Status.exists_with_different_amount
  const userData128Matches = isZero128(ev, e + T.user_data_128)
    ? equal128(x, o + T.user_data_128, p, q + T.user_data_128)
    : equal128(ev, e + T.user_data_128, x, o + T.user_data_128)
  if (!userData128Matches) return Status.exists_with_different_user_data_128
  const userData64Matches = ev[e + T.user_data_64] === 0 && ev[e + T.user_data_64 + 1] === 0
    ? equal64(x, o + T.user_data_64, p, q + T.user_data_64)
    : equal64(ev, e + T.user_data_64, x, o + T.user_data_64)
  if (!userData64Matches) return Status.exists_with_different_user_data_64
  const userData32Matches = ev[e + T.user_data_32] === 0
    ? x[o + T.user_data_32] === p[q + T.user_data_32]
    : ev[e + T.user_data_32] === x[o + T.user_data_32]
  if (!userData32Matches) return Status.exists_with_different_user_data_32
  if (ev[e + T.ledger] !== 0 && ev[e + T.ledger] !== x[o + T.ledger]) return Status.exists_with_different_ledger
  const code = ev[e + T.code_flags]! & 0xffff
  if (code !== 0 && code !== (x[o + T.code_flags]! & 0xffff)) return Status.exists_with_different_code
  return Status.exists
}
