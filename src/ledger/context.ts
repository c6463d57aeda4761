/**
 * What the ledger's operations share: the store, the chain scope, the running totals, scratch
 * registers for u128 arithmetic, and the timestamp of the object an event created or matched.
 */
import { ChainScope } from "./chain_scope.ts"
import type { RecordTable } from "./record_table.ts"
import type { LedgerStore } from "./store.ts"
import { compare64 } from "./u128.ts"
import { Totals } from "./totals.ts"

// Records of both kinds keep their timestamp at words 30 (lo) and 31 (hi).
const timestampLo = 30
const timestampHi = 31

export class LedgerContext {
  readonly store: LedgerStore
  readonly totals = new Totals()
  readonly scope: ChainScope
  /** Registers: [0..3] the amount an event moves, [4..15] temporaries. */
  readonly scratch = new Uint32Array(16)
  /** Timestamp of the object the current event created or matched (`created` and `exists*`). */
  resultHi = 0
  resultLo = 0

  constructor(store: LedgerStore) {
    this.store = store
    this.scope = new ChainScope(store, this.totals)
  }
}

export const rowTimestampHi = (table: RecordTable, row: number): number => table.array(row)[table.offset(row) + timestampHi]!
export const rowTimestampLo = (table: RecordTable, row: number): number => table.array(row)[table.offset(row) + timestampLo]!

/**
 * The first row whose timestamp is at least (hi, lo), or `table.count`. Rows are in strictly
 * increasing timestamp order: objects are stored in the order the cluster timestamps them, and
 * imported timestamps must exceed every stored one of their kind.
 */
export function lowerBoundByTimestamp(table: RecordTable, hi: number, lo: number): number {
  let low = 0
  let high = table.count
  while (low < high) {
    const middle = (low + high) >>> 1
    if (compare64(rowTimestampHi(table, middle), rowTimestampLo(table, middle), hi, lo) < 0) low = middle + 1
    else high = middle
  }
  return low
}

/** Whether a row of `table` has exactly the timestamp (hi, lo). */
export function hasTimestamp(table: RecordTable, hi: number, lo: number): boolean {
  const row = lowerBoundByTimestamp(table, hi, lo)
  return row < table.count && rowTimestampHi(table, row) === hi && rowTimestampLo(table, row) === lo
}

/** Whether (hi, lo) is at or below the newest row's timestamp. */
export function notAfterNewest(table: RecordTable, hi: number, lo: number): boolean {
  if (table.count === 0) return false
  const newest = table.count - 1
  return compare64(hi, lo, rowTimestampHi(table, newest), rowTimestampLo(table, newest)) <= 0
}
