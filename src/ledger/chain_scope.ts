/**
 * The rollback scope of a linked chain (spec §7): what the chain changed, so that a broken chain
 * leaves the ledger exactly as it found it.
 *
 * New rows are only ever appended, so undoing them is truncation plus index removal; changed
 * accounts and pending statuses are restored from before-images taken at their first change.
 * Orphaned ids are deliberately outside the scope: a transient failure burns its id even when the
 * chain around it rolls back.
 */
import { assert } from "../assert.ts"
import { eventsPerBatchMax } from "../protocol/operation.ts"
import type { LedgerStore } from "./store.ts"
import { AccountWord, TransferWord } from "./store.ts"
import type { Totals } from "./totals.ts"

// A transfer changes at most two accounts and one pending transfer.
const accountImagesMax = 2 * eventsPerBatchMax
const statusImagesMax = eventsPerBatchMax
const accountImageWords = 18 // row, balances (16 words), code_flags

export class ChainScope {
  active = false
  private accountsCount = 0
  private transfersCount = 0
  private historyCount = 0
  private readonly totals: Uint32Array
  private readonly accountImages = new Uint32Array(accountImagesMax * accountImageWords)
  private accountImageCount = 0
  private readonly statusImages = new Uint32Array(statusImagesMax * 2)
  private statusImageCount = 0

  private readonly store: LedgerStore
  private readonly runningTotals: Totals

  constructor(store: LedgerStore, runningTotals: Totals) {
    this.store = store
    this.runningTotals = runningTotals
    this.totals = new Uint32Array(runningTotals.words.length)
  }

  begin(): void {
    assert(!this.active, () => "chain scopes do not nest")
    this.active = true
    this.accountsCount = this.store.accounts.count
    this.transfersCount = this.store.transfers.count
    this.historyCount = this.store.history.count
    this.totals.set(this.runningTotals.words)
    this.accountImageCount = 0
    this.statusImageCount = 0
  }

  /** Keeps the chain's changes. */
  commit(): void {
    assert(this.active, () => "commit without a scope")
    this.active = false
  }

  /** Records an account's balances and flags before the chain changes them. */
  saveAccount(row: number): void {
    if (!this.active || row >= this.accountsCount) return // rows the chain created vanish whole
    assert(this.accountImageCount < accountImagesMax, () => "chain scope: too many account images")
    const table = this.store.accounts
    const array = table.array(row)
    const offset = table.offset(row)
    const base = this.accountImageCount++ * accountImageWords
    this.accountImages[base] = row
    this.accountImages.set(array.subarray(offset + AccountWord.debits_pending, offset + AccountWord.credits_posted + 4), base + 1)
    this.accountImages[base + 17] = array[offset + AccountWord.code_flags]!
  }

  /** Records a pending transfer's status before the chain resolves it. */
  saveStatus(row: number): void {
    if (!this.active || row >= this.transfersCount) return
    assert(this.statusImageCount < statusImagesMax, () => "chain scope: too many status images")
    const table = this.store.transfers
    this.statusImages[this.statusImageCount * 2] = row
    this.statusImages[this.statusImageCount * 2 + 1] = table.array(row)[table.offset(row) + TransferWord.pending_status]!
    this.statusImageCount++
  }

  /** Undoes everything since `begin`, newest first, and closes the scope. */
  rollback(): void {
    assert(this.active, () => "rollback without a scope")
    const { accounts, transfers, history, accountIds, transferIds, postings } = this.store
    for (let i = this.statusImageCount - 1; i >= 0; i--) {
      const row = this.statusImages[i * 2]!
      transfers.array(row)[transfers.offset(row) + TransferWord.pending_status] = this.statusImages[i * 2 + 1]!
      transfers.markChanged(row)
    }
    for (let i = this.accountImageCount - 1; i >= 0; i--) {
      const base = i * accountImageWords
      const row = this.accountImages[base]!
      const array = accounts.array(row)
      const offset = accounts.offset(row)
      array.set(this.accountImages.subarray(base + 1, base + 17), offset + AccountWord.debits_pending)
      array[offset + AccountWord.code_flags] = this.accountImages[base + 17]!
    }
    for (let row = transfers.count - 1; row >= this.transfersCount; row--) {
      const array = transfers.array(row)
      const offset = transfers.offset(row)
      transferIds.remove(array, offset + TransferWord.id)
      popPosting(this.store, array, offset + TransferWord.debit_account_id, row)
      popPosting(this.store, array, offset + TransferWord.credit_account_id, row)
    }
    transfers.truncate(this.transfersCount)
    for (let row = accounts.count - 1; row >= this.accountsCount; row--) {
      const array = accounts.array(row)
      const offset = accounts.offset(row)
      accountIds.remove(array, offset + AccountWord.id)
      postings.release(array, offset + AccountWord.postings)
    }
    accounts.truncate(this.accountsCount)
    history.truncate(this.historyCount)
    this.runningTotals.words.set(this.totals)
    this.active = false
  }
}

function popPosting(store: LedgerStore, ids: Uint32Array, idOffset: number, transferRow: number): void {
  const row = store.accountIds.find(ids, idOffset)
  assert(row >= 0, () => "a stored transfer's account is missing")
  store.postings.pop(store.accounts.array(row), store.accounts.offset(row) + AccountWord.postings, transferRow)
}
