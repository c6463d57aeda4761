/**
 * The narrow interface between the ledger's semantics and where its data lives.
 *
 * Execution is split in two: `prefetch` is asynchronous and makes resident everything a batch
 * will touch (a no-op for the in-memory store beyond a capacity check; disk reads for a grid-backed
 * LSM store); `execute` then runs synchronously over rows. Rows are the stored records themselves
 * (the 128-byte wire layout as 32 u32 words) followed by a few words of bookkeeping, so a lookup
 * reply is a copy and no record is ever converted.
 */
import type { Effect } from "effect"
import { Schema } from "effect"
import type { ClientOperation } from "../protocol/operation.ts"
import type { ExpiryQueue } from "./expiry_queue.ts"
import type { IdIndex } from "./id_index.ts"
import { type PostingLists, postingWords } from "./posting_lists.ts"
import { copyWords, type RecordTable } from "./record_table.ts"

/** Word offsets of an Account row: the record (words 0..31), then its posting list. */
export const AccountWord = {
  id: 0,
  debits_pending: 4,
  debits_posted: 8,
  credits_pending: 12,
  credits_posted: 16,
  user_data_128: 20,
  user_data_64: 24,
  user_data_32: 26,
  reserved: 27,
  ledger: 28,
  /** code in the low half, flags in the high half. */
  code_flags: 29,
  timestamp_lo: 30,
  timestamp_hi: 31,
  postings: 32
} as const
export const accountRowWords = 32 + postingWords

/** Word offsets of a Transfer row: the record, its pending status and its history row. */
export const TransferWord = {
  id: 0,
  debit_account_id: 4,
  credit_account_id: 8,
  amount: 12,
  pending_id: 16,
  user_data_128: 20,
  user_data_64: 24,
  user_data_32: 26,
  timeout: 27,
  ledger: 28,
  code_flags: 29,
  timestamp_lo: 30,
  timestamp_hi: 31,
  pending_status: 32,
  history: 33
} as const
export const transferRowWords = 34

/** Words of a balance-history row: the debit account's four balances, then the credit's. */
export const historyRowWords = 32
export const noHistory = 0xffff_ffff

/** Life cycle of a pending transfer, kept beside it (the stored record never changes). */
export const PendingStatus = { none: 0, pending: 1, posted: 2, voided: 3, expired: 4 } as const

/** Remembers that the transfer id at `ids[o..o+3]` failed transiently (spec §9.5). */
export function recordOrphan(store: LedgerStore, ids: Uint32Array, o: number): void {
  store.orphanIds.insert(ids, o, store.orphans.count)
  const row = store.orphans.append()
  copyWords(store.orphans.array(row), store.orphans.offset(row), ids, o, orphanRowWords)
}
export const orphanRowWords = 4

export class StoreFull extends Schema.TaggedError<StoreFull>()("StoreFull", {
  what: Schema.String,
  limit: Schema.Number
}) {
  override get message(): string {
    return `the ledger store is full: at most ${this.limit} ${this.what}`
  }
}

export interface LedgerStore {
  /** Makes the batch's data resident, or fails before anything changes. */
  readonly prefetch: (operation: ClientOperation, eventCount: number) => Effect.Effect<void, StoreFull>
  /**
   * Whether `eventCount` more events of `operation` fit, in one batch or several (the synchronous
   * twin of prefetch). The primary asks it of a whole request plus the creates already prepared.
   */
  readonly fits: (operation: ClientOperation, eventCount: number) => boolean
  readonly accounts: RecordTable
  readonly transfers: RecordTable
  readonly history: RecordTable
  readonly accountIds: IdIndex
  readonly transferIds: IdIndex
  /** Ids of transfers that failed transiently (spec §9.5); never rolled back. */
  readonly orphanIds: IdIndex
  /** The same ids in the order they failed (4 words each): what a checkpoint stores. */
  readonly orphans: RecordTable
  readonly postings: PostingLists
  readonly expiries: ExpiryQueue
}
