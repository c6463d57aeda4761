/**
 * Pending transfers with a timeout, ordered by (expires_at, transfer timestamp): a binary
 * min-heap of typed-array entries.
 *
 * Entries are removed lazily. A post, a void or a rolled-back chain leaves its entry in place;
 * the owner says whether an entry is still live (the row still holds that pending transfer and it
 * is unresolved) and dead entries are dropped when they reach the top.
 */
import { assert } from "../assert.ts"
import { compare64 } from "./u128.ts"

const entryWords = 5 // expires_at hi, lo, timestamp hi, lo, transfer row

export class ExpiryQueue {
  private heap = new Uint32Array(64 * entryWords)
  private readonly entriesMax: number
  count = 0

  constructor(entriesMax: number) {
    this.entriesMax = entriesMax
  }

  push(expiresHi: number, expiresLo: number, timestampHi: number, timestampLo: number, row: number): void {
    assert(this.count < this.entriesMax, () => `expiry queue full: ${this.entriesMax}`)
    if ((this.count + 1) * entryWords > this.heap.length) {
      const heap = new Uint32Array(this.heap.length * 2)
      heap.set(this.heap)
      this.heap = heap
    }
    let index = this.count++
    const heap = this.heap
    const base = index * entryWords
    heap[base] = expiresHi
    heap[base + 1] = expiresLo
    heap[base + 2] = timestampHi
    heap[base + 3] = timestampLo
    heap[base + 4] = row
    while (index > 0) {
      const parent = (index - 1) >>> 1
      if (this.less(parent, index)) break
      this.swap(parent, index)
      index = parent
    }
  }

  /** Fields of the top entry; only valid while count > 0. */
  topExpiresHi(): number { return this.heap[0]! }
  topExpiresLo(): number { return this.heap[1]! }
  topTimestampHi(): number { return this.heap[2]! }
  topTimestampLo(): number { return this.heap[3]! }
  topRow(): number { return this.heap[4]! }

  pop(): void {
    assert(this.count > 0, () => "pop of an empty expiry queue")
    this.count--
    if (this.count === 0) return
    this.heap.copyWithin(0, this.count * entryWords, (this.count + 1) * entryWords)
    let index = 0
    for (;;) {
      const left = 2 * index + 1
      if (left >= this.count) break
      const right = left + 1
      const child = right < this.count && this.less(right, left) ? right : left
      if (this.less(index, child)) break
      this.swap(index, child)
      index = child
    }
  }

  private less(a: number, b: number): boolean {
    const heap = this.heap
    const x = a * entryWords
    const y = b * entryWords
    const byExpiry = compare64(heap[x]!, heap[x + 1]!, heap[y]!, heap[y + 1]!)
    if (byExpiry !== 0) return byExpiry < 0
    return compare64(heap[x + 2]!, heap[x + 3]!, heap[y + 2]!, heap[y + 3]!) < 0
  }

  private swap(a: number, b: number): void {
    const heap = this.heap
    const x = a * entryWords
    const y = b * entryWords
    for (let w = 0; w < entryWords; w++) {
      const t = heap[x + w]!
      heap[x + w] = heap[y + w]!
      heap[y + w] = t
    }
  }
}
