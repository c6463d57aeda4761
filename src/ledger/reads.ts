/**
 * The read operations (spec/state-machine.md §14): lookups by id, an account's transfers and
 * balance history, and queries over all accounts or transfers. Invalid filters answer with an
 * empty list, never an error.
 */
import { assert } from "../assert.ts"
import { queryResultsMax } from "../protocol/operation.ts"
import { AccountFilterFlags, AccountFlags, QueryFilterFlags } from "../protocol/records.ts"
import { lowerBoundByTimestamp, type LedgerContext } from "./context.ts"
import type { IdIndex } from "./id_index.ts"
import { copyWords, type RecordTable } from "./record_table.ts"
import { AccountWord as A, noHistory, TransferWord as T } from "./store.ts"
import { add64Small, compare64, equal128, equal64, isMax128, isZero128, timestampHiMax, u64Result } from "./u128.ts"

const recordWords = 32
const empty = new Uint8Array(0)

/** lookup_accounts / lookup_transfers: the stored record of each id found, in request order. */
export function lookup(table: RecordTable, index: IdIndex, ids: Uint32Array, n: number): Uint8Array {
  const reply = new Uint32Array(n * recordWords)
  let found = 0
  for (let i = 0; i < n; i++) {
    const row = index.find(ids, i * 4)
    if (row < 0) continue
    const offset = table.offset(row)
    copyWords(reply, found * recordWords, table.array(row), offset, recordWords)
    found++
  }
  return new Uint8Array(reply.buffer, 0, found * recordWords * 4).slice()
}

// AccountFilter words (128 bytes).
const AF = { account_id: 0, user_data_128: 4, user_data_64: 8, user_data_32: 10, code: 11, min: 26, max: 28, limit: 30, flags: 31 } as const
// QueryFilter words (64 bytes).
const QF = { user_data_128: 0, user_data_64: 4, user_data_32: 6, ledger: 7, code: 8, min: 10, max: 12, limit: 14, flags: 15 } as const

/** A valid timestamp bound: 0 (none) or 1..2^63-1. */
const boundValid = (hi: number): boolean => hi <= timestampHiMax

/** Whether the range [min, max] of a filter is valid (§14.2). */
function rangeValid(f: Uint32Array, min: number, max: number): boolean {
  if (!boundValid(f[min + 1]!) || !boundValid(f[max + 1]!)) return false
  const maxSet = f[max] !== 0 || f[max + 1] !== 0
  return !maxSet || compare64(f[min + 1]!, f[min]!, f[max + 1]!, f[max]!) <= 0
}

function accountFilterValid(f: Uint32Array): boolean {
  if (isZero128(f, AF.account_id) || isMax128(f, AF.account_id)) return false
  if ((f[AF.code]! >>> 16) !== 0) return false // the first two reserved bytes
  for (let w = 12; w < AF.min; w++) if (f[w] !== 0) return false
  if (!rangeValid(f, AF.min, AF.max) || f[AF.limit] === 0) return false
  const flags = f[AF.flags]!
  const sides = AccountFilterFlags.debits | AccountFilterFlags.credits
  return (flags & sides) !== 0 && (flags & ~(sides | AccountFilterFlags.reversed)) === 0
}

/**
 * get_account_transfers (§14.2). With `balances`, get_account_balances (§14.3): the same
 * selection mapped to the account's balances after each transfer, for accounts with `history`.
 */
export function accountTransfers(ctx: LedgerContext, f: Uint32Array, balances: boolean): Uint8Array {
  if (!accountFilterValid(f)) return empty
  const { accounts, accountIds, transfers, postings, history } = ctx.store
  const accountRow = accountIds.find(f, AF.account_id)
  if (accountRow < 0) return empty
  const account = accounts.array(accountRow), a = accounts.offset(accountRow)
  if (balances && ((account[a + A.code_flags]! >>> 16) & AccountFlags.history) === 0) return empty
  const meta = a + A.postings
  const flags = f[AF.flags]!
  const debits = (flags & AccountFilterFlags.debits) !== 0
  const credits = (flags & AccountFilterFlags.credits) !== 0
  const limit = Math.min(f[AF.limit]!, queryResultsMax)
  const reply = new Uint32Array(limit * recordWords)
  const first = postings.lowerBound(account, meta, lowerBoundByTimestamp(transfers, f[AF.min + 1]!, f[AF.min]!))
  const maxHi = f[AF.max + 1]!, maxLo = f[AF.max]!
  const maxSet = maxHi !== 0 || maxLo !== 0
  let end = postings.length(account, meta)
  if (maxSet) {
    add64Small(maxHi, maxLo, 1)
    end = postings.lowerBound(account, meta, lowerBoundByTimestamp(transfers, u64Result[0]!, u64Result[1]!))
  }
  const reversed = (flags & AccountFilterFlags.reversed) !== 0
  let count = 0
  for (let k = 0; k < end - first && count < limit; k++) {
    const row = postings.get(account, meta, reversed ? end - 1 - k : first + k)
    const t = transfers.array(row), o = transfers.offset(row)
    const isDebit = equal128(t, o + T.debit_account_id, account, a + A.id)
    if (!((debits && isDebit) || (credits && !isDebit))) continue
    if (!isZero128(f, AF.user_data_128) && !equal128(f, AF.user_data_128, t, o + T.user_data_128)) continue
    if ((f[AF.user_data_64] !== 0 || f[AF.user_data_64 + 1] !== 0) && !equal64(f, AF.user_data_64, t, o + T.user_data_64)) continue
    if (f[AF.user_data_32] !== 0 && f[AF.user_data_32] !== t[o + T.user_data_32]) continue
    const code = f[AF.code]! & 0xffff
    if (code !== 0 && code !== (t[o + T.code_flags]! & 0xffff)) continue
    const r = count * recordWords
    if (balances) {
      const h = t[o + T.history]!
      assert(h !== noHistory, () => "a transfer of a history account has no balance history")
      const side = isDebit ? 0 : 16
      copyWords(reply, r, history.array(h), history.offset(h) + side, 16)
      reply[r + 16] = t[o + T.timestamp_lo]!
      reply[r + 17] = t[o + T.timestamp_hi]!
    } else {
      copyWords(reply, r, t, o, recordWords)
    }
    count++
  }
  return new Uint8Array(reply.buffer, 0, count * recordWords * 4).slice()
}

function queryFilterValid(f: Uint32Array): boolean {
  if ((f[QF.code]! >>> 16) !== 0 || f[9] !== 0) return false // the six reserved bytes
  if (!rangeValid(f, QF.min, QF.max) || f[QF.limit] === 0) return false
  return (f[QF.flags]! & ~QueryFilterFlags.reversed) === 0
}

/**
 * query_accounts / query_transfers (§14.4): rows whose nonzero filter fields all match, within
 * the timestamp range. Both kinds keep user_data_128/64/32, ledger and code at the same words.
 */
export function query(table: RecordTable, f: Uint32Array): Uint8Array {
  if (!queryFilterValid(f)) return empty
  const limit = Math.min(f[QF.limit]!, queryResultsMax)
  const reply = new Uint32Array(limit * recordWords)
  const first = lowerBoundByTimestamp(table, f[QF.min + 1]!, f[QF.min]!)
  const maxHi = f[QF.max + 1]!, maxLo = f[QF.max]!
  let end = table.count
  if (maxHi !== 0 || maxLo !== 0) {
    add64Small(maxHi, maxLo, 1)
    end = lowerBoundByTimestamp(table, u64Result[0]!, u64Result[1]!)
  }
  const reversed = (f[QF.flags]! & QueryFilterFlags.reversed) !== 0
  const code = f[QF.code]! & 0xffff
  let count = 0
  for (let k = 0; k < end - first && count < limit; k++) {
    const row = reversed ? end - 1 - k : first + k
    const r = table.array(row), o = table.offset(row)
    if (!isZero128(f, QF.user_data_128) && !equal128(f, QF.user_data_128, r, o + A.user_data_128)) continue
    if ((f[QF.user_data_64] !== 0 || f[QF.user_data_64 + 1] !== 0) && !equal64(f, QF.user_data_64, r, o + A.user_data_64)) continue
    if (f[QF.user_data_32] !== 0 && f[QF.user_data_32] !== r[o + A.user_data_32]) continue
    if (f[QF.ledger] !== 0 && f[QF.ledger] !== r[o + A.ledger]) continue
    if (code !== 0 && code !== (r[o + A.code_flags]! & 0xffff)) continue
    copyWords(reply, count * recordWords, r, o, recordWords)
    count++
  }
  return new Uint8Array(reply.buffer, 0, count * recordWords * 4).slice()
}
