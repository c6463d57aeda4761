/**
 * The ledger's state as a checkpoint stores it (storage.md §9.2 rung R1): four sections of
 * fixed-size rows, in the order the ledger created them, so that the same committed ops give the
 * same bytes on every replica and across restarts.
 *
 * | section   | row                                                          |
 * |-----------|--------------------------------------------------------------|
 * | accounts  | the 128-byte Account record (balances as of the checkpoint)   |
 * | transfers | the 128-byte Transfer record, its pending status, its history row |
 * | history   | the balance-history row (both accounts' balances after a transfer) |
 * | orphans   | the id of a transfer that failed transiently (spec §9.5)      |
 *
 * Everything else is derived and rebuilt on restore: the id indexes, the per-account posting
 * lists (every transfer under both its accounts, in row order), the expiry queue (unresolved
 * pending transfers with a timeout), and the running totals, which are then checked against
 * the double-entry invariants before the ledger serves anything.
 */
import { assert } from "../assert.ts"
import type { LedgerContext } from "./context.ts"
import { copyWords, type RecordTable } from "./record_table.ts"
import { AccountWord as A, historyRowWords, noHistory, orphanRowWords, PendingStatus, TransferWord as T, type LedgerStore } from "./store.ts"
import { assertAccountLimits, TotalsWord } from "./totals.ts"
import { addSecondsAsNs, compare64, u64Result } from "./u128.ts"

export const SnapshotSectionId = { accounts: 1, transfers: 2, history: 3, orphans: 4 } as const
export type SnapshotSectionId = (typeof SnapshotSectionId)[keyof typeof SnapshotSectionId]

/** Words of each section's rows. */
export const snapshotRowWords: Readonly<Record<SnapshotSectionId, number>> = {
  [SnapshotSectionId.accounts]: 32,
  [SnapshotSectionId.transfers]: 34,
  [SnapshotSectionId.history]: historyRowWords,
  [SnapshotSectionId.orphans]: orphanRowWords
}

/** One section of the snapshot: its rows, read in place. */
export interface SnapshotSection {
  readonly id: SnapshotSectionId
  readonly rowCount: number
  /**
   * Whether rows [first, first + count), all stored by the previous checkpoint, may have changed
   * since. Accounts always may (every transfer moves balances); the other sections are append-only
   * but for a transfer's pending status, whose changes the ledger marks (record_table.ts).
   */
  changedIn(first: number, count: number): boolean
  /** Copies rows [first, first + count) into `target` from word `at` on, back to back. */
  copyRows(first: number, count: number, target: Uint32Array, at: number): void
}

/** The sections of `store`, in restore order. */
export function snapshotSections(store: LedgerStore): ReadonlyArray<SnapshotSection> {
  return [
    section(SnapshotSectionId.accounts, store.accounts, true),
    section(SnapshotSectionId.transfers, store.transfers, false),
    section(SnapshotSectionId.history, store.history, false),
    section(SnapshotSectionId.orphans, store.orphans, false)
  ]
}

/** A checkpoint stored every section: changes are counted from here on. */
export function snapshotStored(store: LedgerStore): void {
  for (const table of [store.accounts, store.transfers, store.history, store.orphans]) table.clearChanged()
}

/**
 * Appends `rowCount` rows of section `id` (words back to back) to an empty or partly restored
 * ledger. Sections must come in the order `snapshotSections` lists them, rows in order;
 * `sectionRows` is the whole section's row count (the indexes are sized for it up front).
 */
export function restoreRows(ctx: LedgerContext, id: SnapshotSectionId, words: Uint32Array, rowCount: number, sectionRows: number): void {
  const rowWords = snapshotRowWords[id]
  assert(words.length >= rowCount * rowWords, () => `section ${id}: ${rowCount} rows need ${rowCount * rowWords} words`)
  const store = ctx.store
  if (id === SnapshotSectionId.accounts && store.accounts.count === 0) store.accountIds.reserve(sectionRows)
  if (id === SnapshotSectionId.transfers && store.transfers.count === 0) store.transferIds.reserve(sectionRows)
  for (let r = 0; r < rowCount; r++) {
    const at = r * rowWords
    switch (id) {
      case SnapshotSectionId.accounts:
        restoreAccount(ctx, words, at)
        break
      case SnapshotSectionId.transfers:
        assert(store.orphans.count === 0 && store.history.count === 0, () => "snapshot sections out of order")
        restoreTransfer(store, words, at)
        break
      case SnapshotSectionId.history:
        appendRow(store.history, words, at, rowWords)
        break
      case SnapshotSectionId.orphans: {
        assert(store.orphanIds.find(words, at) < 0 && store.transferIds.find(words, at) < 0, () => "an orphan id is indexed twice")
        const row = appendRow(store.orphans, words, at, rowWords)
        store.orphanIds.insert(words, at, row)
        break
      }
    }
  }
}

/** Checks what only the whole snapshot can show: history references and the double-entry totals. */
export function restoreEnd(ctx: LedgerContext): void {
  const { transfers, history } = ctx.store
  for (let row = 0; row < transfers.count; row++) {
    const h = transfers.array(row)[transfers.offset(row) + T.history]!
    assert(h === noHistory || h < history.count, () => `transfer row ${row} names history row ${h} of ${history.count}`)
  }
  ctx.totals.assertBalanced()
}

function section(id: SnapshotSectionId, table: RecordTable, mutable: boolean): SnapshotSection {
  const rowWords = snapshotRowWords[id]
  assert(rowWords <= table.stride, () => `section ${id} rows are wider than the table`)
  return {
    id,
    rowCount: table.count,
    changedIn: (first, count) => mutable || table.changedIn(first, count),
    copyRows(first, count, target, at) {
      assert(first >= 0 && count >= 0 && first + count <= table.count, () => `rows ${first}+${count} of ${table.count}`)
      let w = at
      for (let row = first; row < first + count; row++) {
        const array = table.array(row)
        const offset = table.offset(row)
        // Rows that are stored whole are contiguous within a segment: one copy per segment run.
        if (rowWords === table.stride) {
          const run = Math.min(first + count - row, segmentRowsLeft(table, row))
          target.set(array.subarray(offset, offset + run * rowWords), w)
          w += run * rowWords
          row += run - 1
        } else {
          target.set(array.subarray(offset, offset + rowWords), w)
          w += rowWords
        }
      }
    }
  }
}

/** Rows from `row` to the end of its segment. */
function segmentRowsLeft(table: RecordTable, row: number): number {
  return table.array(row).length / table.stride - table.offset(row) / table.stride
}

/** Appends a row; `timestamped` rows (accounts, transfers) must come in timestamp order. */
function appendRow(table: RecordTable, words: Uint32Array, at: number, rowWords: number, timestamped = false): number {
  const row = table.append()
  copyWords(table.array(row), table.offset(row), words, at, rowWords)
  if (row > 0 && timestamped) {
    // Rows are in timestamp order (context.ts relies on it for every range search).
    const previous = table.array(row - 1)
    const p = table.offset(row - 1)
    assert(compare64(words[at + 31]!, words[at + 30]!, previous[p + 31]!, previous[p + 30]!) > 0, () => `row ${row} of a snapshot is out of timestamp order`)
  }
  return row
}

function restoreAccount(ctx: LedgerContext, words: Uint32Array, at: number): void {
  const store = ctx.store
  // The id index refuses an id inserted twice.
  const row = appendRow(store.accounts, words, at, snapshotRowWords[SnapshotSectionId.accounts], true)
  store.accountIds.insert(words, at + A.id, row)
  const array = store.accounts.array(row)
  const offset = store.accounts.offset(row)
  assertAccountLimits(array, offset)
  ctx.totals.add(TotalsWord.debits_pending, array, offset + A.debits_pending)
  ctx.totals.add(TotalsWord.debits_posted, array, offset + A.debits_posted)
  ctx.totals.add(TotalsWord.credits_pending, array, offset + A.credits_pending)
  ctx.totals.add(TotalsWord.credits_posted, array, offset + A.credits_posted)
}

function restoreTransfer(store: LedgerStore, words: Uint32Array, at: number): void {
  const { accounts, accountIds, transfers, postings } = store
  const dr = accountIds.find(words, at + T.debit_account_id)
  const cr = accountIds.find(words, at + T.credit_account_id)
  assert(dr >= 0 && cr >= 0 && dr !== cr, () => "a transfer names accounts the snapshot does not hold")
  const row = appendRow(transfers, words, at, snapshotRowWords[SnapshotSectionId.transfers], true)
  store.transferIds.insert(words, at + T.id, row)
  postings.append(accounts.array(dr), accounts.offset(dr) + A.postings, row)
  postings.append(accounts.array(cr), accounts.offset(cr) + A.postings, row)
  const status = words[at + T.pending_status]!
  assert(status <= PendingStatus.expired, () => `transfer row ${row} has pending status ${status}`)
  const timeout = words[at + T.timeout]!
  if (status === PendingStatus.pending && timeout !== 0) {
    addSecondsAsNs(words[at + T.timestamp_hi]!, words[at + T.timestamp_lo]!, timeout)
    store.expiries.push(u64Result[0]!, u64Result[1]!, words[at + T.timestamp_hi]!, words[at + T.timestamp_lo]!, row)
  }
}
