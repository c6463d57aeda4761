/**
 * The in-memory ledger store: typed-array tables grown in fixed segments, open-addressing
 * indexes, all bounded by the limits it is built with.
 */
import { Effect } from "effect"
import { assert } from "../assert.ts"
import { Operation, type ClientOperation } from "../protocol/operation.ts"
import { ExpiryQueue } from "./expiry_queue.ts"
import { IdIndex } from "./id_index.ts"
import { PostingLists } from "./posting_lists.ts"
import { RecordTable } from "./record_table.ts"
import { accountRowWords, historyRowWords, orphanRowWords, StoreFull, transferRowWords, type LedgerStore } from "./store.ts"

export interface MemoryStoreLimits {
  readonly accountsMax: number
  readonly transfersMax: number
}

/** Defaults sized for this project's 24 GiB machines: about 4 GiB at the transfer limit. */
export const defaultLimits: MemoryStoreLimits = { accountsMax: 1 << 22, transfersMax: 1 << 24 }

export function makeMemoryStore(limits: MemoryStoreLimits = defaultLimits): LedgerStore {
  const { accountsMax, transfersMax } = limits
  const accounts = new RecordTable(accountRowWords, accountsMax)
  const transfers = new RecordTable(transferRowWords, transfersMax)
  const orphans = new RecordTable(orphanRowWords, transfersMax)
  // A created transfer takes a row; a transfer that fails transiently takes an orphan row
  // (never rolled back), so each event may take one of either.
  const fits = (operation: ClientOperation, eventCount: number): boolean => {
    assert(Number.isInteger(eventCount) && eventCount >= 0, () => `event count ${eventCount}`)
    if (operation === Operation.create_accounts) return accounts.count + eventCount <= accountsMax
    if (operation === Operation.create_transfers) {
      return transfers.count + eventCount <= transfersMax && orphans.count + eventCount <= transfersMax
    }
    return true
  }
  return {
    fits,
    prefetch: (operation, eventCount) =>
      fits(operation, eventCount)
        ? Effect.void
        : Effect.fail(operation === Operation.create_accounts
          ? new StoreFull({ what: "accounts", limit: accountsMax })
          : new StoreFull({ what: "transfers", limit: transfersMax })),
    accounts,
    transfers,
    history: new RecordTable(historyRowWords, transfersMax),
    accountIds: new IdIndex(accountsMax),
    transferIds: new IdIndex(transfersMax),
    orphanIds: new IdIndex(transfersMax),
    orphans,
    postings: new PostingLists(2 * transfersMax),
    expiries: new ExpiryQueue(transfersMax)
  }
}
