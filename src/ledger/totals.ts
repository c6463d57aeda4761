/**
 * Running totals of the four balance columns over all accounts, and the ledger's invariants.
 *
 * Every balance change goes through `Totals`, so after each batch the double-entry invariants
 * (Σ debits_pending = Σ credits_pending, Σ debits_posted = Σ credits_posted) are an O(1) check.
 * `verifyLedger` recomputes everything from the accounts themselves, for tests and audits.
 */
import { assert } from "../assert.ts"
import { AccountFlags } from "../protocol/records.ts"
import type { LedgerStore } from "./store.ts"
import { AccountWord } from "./store.ts"
import { add128, compare128, wideAdd128, wideSub128, wideWords } from "./u128.ts"

/** Offsets of the four wide accumulators in `Totals.words`. */
export const TotalsWord = {
  debits_pending: 0,
  debits_posted: wideWords,
  credits_pending: 2 * wideWords,
  credits_posted: 3 * wideWords
} as const

export class Totals {
  readonly words = new Uint32Array(4 * wideWords)

  add(column: number, amount: Uint32Array, offset: number): void {
    wideAdd128(this.words, column, amount, offset)
  }

  sub(column: number, amount: Uint32Array, offset: number): void {
    wideSub128(this.words, column, amount, offset)
  }

  /** The double-entry invariants: every debit has its credit. */
  assertBalanced(): void {
    const w = this.words
    for (let i = 0; i < wideWords; i++) {
      assert(w[TotalsWord.debits_pending + i] === w[TotalsWord.credits_pending + i], () => "Σ debits_pending ≠ Σ credits_pending")
      assert(w[TotalsWord.debits_posted + i] === w[TotalsWord.credits_posted + i], () => "Σ debits_posted ≠ Σ credits_posted")
    }
  }
}

const scratch = new Uint32Array(8)

/**
 * Asserts an account's limit flags and that its debit and credit sums fit in 128 bits. Called
 * after every change of the account's balances.
 */
export function assertAccountLimits(array: Uint32Array, offset: number): void {
  const flags = array[offset + AccountWord.code_flags]! >>> 16
  const debitsOverflow = add128(scratch, 0, array, offset + AccountWord.debits_pending, array, offset + AccountWord.debits_posted)
  const creditsOverflow = add128(scratch, 4, array, offset + AccountWord.credits_pending, array, offset + AccountWord.credits_posted)
  assert(!debitsOverflow && !creditsOverflow, () => "an account's debits or credits exceed 2^128 - 1")
  if ((flags & AccountFlags.debits_must_not_exceed_credits) !== 0) {
    assert(compare128(scratch, 0, array, offset + AccountWord.credits_posted) <= 0, () => "debits_must_not_exceed_credits violated")
  }
  if ((flags & AccountFlags.credits_must_not_exceed_debits) !== 0) {
    assert(compare128(scratch, 4, array, offset + AccountWord.debits_posted) <= 0, () => "credits_must_not_exceed_debits violated")
  }
}

/** Recomputes the totals from every account and checks them against the running totals. */
export function verifyLedger(store: LedgerStore, totals: Totals): void {
  const recomputed = new Totals()
  const { accounts } = store
  for (let row = 0; row < accounts.count; row++) {
    const array = accounts.array(row)
    const offset = accounts.offset(row)
    assertAccountLimits(array, offset)
    recomputed.add(TotalsWord.debits_pending, array, offset + AccountWord.debits_pending)
    recomputed.add(TotalsWord.debits_posted, array, offset + AccountWord.debits_posted)
    recomputed.add(TotalsWord.credits_pending, array, offset + AccountWord.credits_pending)
    recomputed.add(TotalsWord.credits_posted, array, offset + AccountWord.credits_posted)
  }
  recomputed.assertBalanced()
  for (let i = 0; i < totals.words.length; i++) {
    assert(recomputed.words[i] === totals.words[i], () => "running totals drifted from the accounts")
  }
}
