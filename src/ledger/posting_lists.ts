/**
 * Per-account lists of transfer rows, in ascending row order (which is ascending timestamp
 * order: transfers are stored in the order they are timestamped). They answer
 * get_account_transfers and get_account_balances by binary search plus a bounded scan, so paging
 * through a busy account costs O(log n + page) instead of a walk from its first transfer.
 *
 * Each list is a block in one pool, doubling in size when full; freed blocks go to a free list
 * of their size class. The list's (block offset, length, capacity) live in three words that the
 * caller stores with the account.
 */
import { assert } from "../assert.ts"

const capacityMin = 4
const sizeClasses = 32
const none = 0xffff_ffff

export const postingWords = 3 // block offset, length, capacity

export class PostingLists {
  private pool = new Uint32Array(1024)
  private used = 0
  private readonly freeHeads = new Uint32Array(sizeClasses).fill(none)
  private readonly wordsMax: number

  constructor(entriesMax: number) {
    // Power-of-two blocks waste at most half of each block, freed blocks at most as much again.
    this.wordsMax = 4 * entriesMax + 1024
  }

  length(meta: Uint32Array, m: number): number {
    return meta[m + 1]!
  }

  /** The i-th entry of the list described at `meta[m..m+2]`. */
  get(meta: Uint32Array, m: number, i: number): number {
    assert(i >= 0 && i < meta[m + 1]!, () => `posting ${i} out of ${meta[m + 1]}`)
    return this.pool[meta[m]! + i]!
  }

  append(meta: Uint32Array, m: number, row: number): void {
    const length = meta[m + 1]!
    assert(length === 0 || this.pool[meta[m]! + length - 1]! < row, () => "postings must be appended in row order")
    if (length === meta[m + 2]!) this.resize(meta, m, Math.max(capacityMin, length * 2))
    this.pool[meta[m]! + length] = row
    meta[m + 1] = length + 1
  }

  /** Removes the newest entry, which must be `row` (rolling back a transfer). */
  pop(meta: Uint32Array, m: number, row: number): void {
    const length = meta[m + 1]!
    assert(length > 0 && this.pool[meta[m]! + length - 1] === row, () => "posting popped out of order")
    meta[m + 1] = length - 1
  }

  /** Returns the list's block to the pool (its account was rolled back). */
  release(meta: Uint32Array, m: number): void {
    assert(meta[m + 1] === 0, () => "releasing a non-empty posting list")
    if (meta[m + 2] !== 0) this.free(meta[m]!, meta[m + 2]!)
    meta[m] = 0
    meta[m + 2] = 0
  }

  /** The first index whose entry is at least `row` (the length when there is none). */
  lowerBound(meta: Uint32Array, m: number, row: number): number {
    const base = meta[m]!
    let low = 0
    let high = meta[m + 1]!
    while (low < high) {
      const middle = (low + high) >>> 1
      if (this.pool[base + middle]! < row) low = middle + 1
      else high = middle
    }
    return low
  }

  private resize(meta: Uint32Array, m: number, capacity: number): void {
    const offset = this.allocate(capacity)
    const length = meta[m + 1]!
    if (meta[m + 2] !== 0) {
      this.pool.copyWithin(offset, meta[m]!, meta[m]! + length)
      this.free(meta[m]!, meta[m + 2]!)
    }
    meta[m] = offset
    meta[m + 2] = capacity
  }

  private allocate(capacity: number): number {
    const sizeClass = Math.log2(capacity)
    const head = this.freeHeads[sizeClass]!
    if (head !== none) {
      this.freeHeads[sizeClass] = this.pool[head]!
      return head
    }
    if (this.used + capacity > this.pool.length) {
      let size = this.pool.length
      while (this.used + capacity > size) size *= 2
      assert(size <= this.wordsMax * 2, () => `posting pool over its bound of ${this.wordsMax} words`)
      const pool = new Uint32Array(size)
      pool.set(this.pool.subarray(0, this.used))
      this.pool = pool
    }
    const offset = this.used
    this.used += capacity
    return offset
  }

  private free(offset: number, capacity: number): void {
    const sizeClass = Math.log2(capacity)
    this.pool[offset] = this.freeHeads[sizeClass]!
    this.freeHeads[sizeClass] = offset
  }
}
