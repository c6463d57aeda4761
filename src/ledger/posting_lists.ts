/**
 * Per-account lists of transfer rows, in ascending row order (which is ascending timestamp
 * order: transfers are stored in the order they are timestamped). They answer
 * get_account_transfers and get_account_balances by binary search plus a bounded scan, so paging
 * through a busy account costs O(log n + page) instead of a walk from its first transfer.
 *
 * Each list is a block of a power-of-two capacity, doubled (moved) when full; freed blocks go to
 * a free list of their size class. Blocks live in chunks of 2^20 words allocated as needed, so
 * growing the pool never copies what is stored (a doubling pool paused a batch for ~100 ms at
 * millions of transfers); a list longer than a chunk gets a chunk of its own size. A block's
 * address is (chunk << 20) | offset. The list's (address, length, capacity) live in three words
 * that the caller stores with the account.
 */
import { assert } from "../assert.ts"

const capacityMin = 4
const sizeClasses = 32
const none = 0xffff_ffff
const chunkShift = 20
const chunkWords = 1 << chunkShift
const offsetMask = chunkWords - 1
const chunksMax = 1 << (32 - chunkShift)

export const postingWords = 3 // block address, length, capacity

export class PostingLists {
  private readonly chunks: Array<Uint32Array> = []
  /** Words used in the newest shared chunk (dedicated chunks are always full). */
  private used = chunkWords
  private shared = -1
  private allocatedWords = 0
  private readonly freeHeads = new Uint32Array(sizeClasses).fill(none)
  private readonly wordsMax: number

  constructor(entriesMax: number) {
    // Power-of-two blocks waste at most half of each block, freed blocks at most as much again.
    this.wordsMax = 4 * entriesMax + 2 * chunkWords
  }

  length(meta: Uint32Array, m: number): number {
    return meta[m + 1]!
  }

  /** The i-th entry of the list described at `meta[m..m+2]`. */
  get(meta: Uint32Array, m: number, i: number): number {
    assert(i >= 0 && i < meta[m + 1]!, () => `posting ${i} out of ${meta[m + 1]}`)
    const address = meta[m]!
    return this.chunks[address >>> chunkShift]![(address & offsetMask) + i]!
  }

  append(meta: Uint32Array, m: number, row: number): void {
    const length = meta[m + 1]!
    if (length === meta[m + 2]!) this.resize(meta, m, Math.max(capacityMin, length * 2))
    const address = meta[m]!
    const chunk = this.chunks[address >>> chunkShift]!
    const offset = address & offsetMask
    assert(length === 0 || chunk[offset + length - 1]! < row, () => "postings must be appended in row order")
    chunk[offset + length] = row
    meta[m + 1] = length + 1
  }

  /** Removes the newest entry, which must be `row` (rolling back a transfer). */
  pop(meta: Uint32Array, m: number, row: number): void {
    const length = meta[m + 1]!
    assert(length > 0 && this.get(meta, m, length - 1) === row, () => "posting popped out of order")
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
    const address = meta[m]!
    const chunk = this.chunks[address >>> chunkShift]
    const base = address & offsetMask
    let low = 0
    let high = meta[m + 1]!
    while (low < high) {
      const middle = (low + high) >>> 1
      if (chunk![base + middle]! < row) low = middle + 1
      else high = middle
    }
    return low
  }

  private resize(meta: Uint32Array, m: number, capacity: number): void {
    const address = this.allocate(capacity)
    const length = meta[m + 1]!
    if (meta[m + 2] !== 0) {
      const from = meta[m]!
      const source = this.chunks[from >>> chunkShift]!
      const start = from & offsetMask
      this.chunks[address >>> chunkShift]!.set(source.subarray(start, start + length), address & offsetMask)
      this.free(from, meta[m + 2]!)
    }
    meta[m] = address
    meta[m + 2] = capacity
  }

  private allocate(capacity: number): number {
    const sizeClass = Math.log2(capacity)
    const head = this.freeHeads[sizeClass]!
    if (head !== none) {
      this.freeHeads[sizeClass] = this.chunks[head >>> chunkShift]![head & offsetMask]!
      return head
    }
    this.allocatedWords += capacity
    assert(this.allocatedWords <= this.wordsMax, () => `posting pool over its bound of ${this.wordsMax} words`)
    if (capacity > chunkWords) return this.addChunk(capacity) << chunkShift
    if (this.used + capacity > chunkWords) {
      this.shared = this.addChunk(chunkWords)
      this.used = 0
    }
    const address = (this.shared << chunkShift) | this.used
    this.used += capacity
    return address >>> 0
  }

  private addChunk(words: number): number {
    assert(this.chunks.length < chunksMax, () => "posting pool out of chunks")
    this.chunks.push(new Uint32Array(words))
    return this.chunks.length - 1
  }

  private free(address: number, capacity: number): void {
    const sizeClass = Math.log2(capacity)
    this.chunks[address >>> chunkShift]![address & offsetMask] = this.freeHeads[sizeClass]!
    this.freeHeads[sizeClass] = address
  }
}
