/**
 * Expiry of pending transfers by the pulse operation (spec/state-machine.md §10.3–§10.6).
 */
import { assert } from "../assert.ts"
import { pulseExpiriesMax } from "../protocol/operation.ts"
import type { LedgerContext } from "./context.ts"
import { reopen } from "./create_transfers.ts"
import { AccountWord as A, PendingStatus, TransferWord as T } from "./store.ts"
import { TotalsWord } from "./totals.ts"
import { addSecondsAsNs, compare64, sub128, toBigInt64, u64Result } from "./u128.ts"

const dueRows = new Uint32Array(pulseExpiriesMax)

/**
 * Expires up to 8189 pending transfers whose `expires_at` is at or before the pulse timestamp
 * (hi, lo), earliest first; returns how many.
 */
export function pulse(ctx: LedgerContext, hi: number, lo: number): number {
  assert(!ctx.scope.active, () => "a pulse inside a linked chain")
  const { accounts, transfers, accountIds } = ctx.store
  let due = 0
  while (due < pulseExpiriesMax && dropDeadEntries(ctx)) {
    const queue = ctx.store.expiries
    if (compare64(queue.topExpiresHi(), queue.topExpiresLo(), hi, lo) > 0) break
    dueRows[due++] = queue.topRow()
    queue.pop()
  }
  for (let k = 0; k < due; k++) {
    const row = dueRows[k]!
    const p = transfers.array(row), q = transfers.offset(row)
    assert(p[q + T.pending_status] === PendingStatus.pending, () => "expiring a resolved transfer")
    const drRow = accountIds.find(p, q + T.debit_account_id)
    const crRow = accountIds.find(p, q + T.credit_account_id)
    assert(drRow >= 0 && crRow >= 0, () => "a pending transfer's account is missing")
    const dr = accounts.array(drRow), d = accounts.offset(drRow)
    const cr = accounts.array(crRow), c = accounts.offset(crRow)
    sub128(dr, d + A.debits_pending, dr, d + A.debits_pending, p, q + T.amount)
    sub128(cr, c + A.credits_pending, cr, c + A.credits_pending, p, q + T.amount)
    ctx.totals.sub(TotalsWord.debits_pending, p, q + T.amount)
    ctx.totals.sub(TotalsWord.credits_pending, p, q + T.amount)
    reopen(dr, d, cr, c, p[q + T.code_flags]! >>> 16)
    p[q + T.pending_status] = PendingStatus.expired
    transfers.markChanged(row)
  }
  ctx.totals.assertBalanced()
  return due
}

/** The earliest `expires_at` among unresolved pending transfers. */
export function nextExpiry(ctx: LedgerContext): bigint | undefined {
  if (!dropDeadEntries(ctx)) return undefined
  const queue = ctx.store.expiries
  return toBigInt64(queue.topExpiresHi(), queue.topExpiresLo())
}

/**
 * Pops entries that no longer name an unresolved pending transfer (resolved, or rolled back with
 * a chain so that the row is gone or holds another transfer); returns whether a live one is left.
 */
function dropDeadEntries(ctx: LedgerContext): boolean {
  const { transfers, expiries } = ctx.store
  while (expiries.count > 0) {
    const row = expiries.topRow()
    if (row < transfers.count) {
      const p = transfers.array(row), q = transfers.offset(row)
      if (p[q + T.pending_status] === PendingStatus.pending && p[q + T.timeout] !== 0 &&
        p[q + T.timestamp_hi] === expiries.topTimestampHi() && p[q + T.timestamp_lo] === expiries.topTimestampLo()) {
        addSecondsAsNs(p[q + T.timestamp_hi]!, p[q + T.timestamp_lo]!, p[q + T.timeout]!)
        assert(u64Result[0] === expiries.topExpiresHi() && u64Result[1] === expiries.topExpiresLo(), () => "expiry entry disagrees with its transfer")
        return true
      }
    }
    expiries.pop()
  }
  return false
}
