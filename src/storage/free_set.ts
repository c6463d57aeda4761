/**
 * The free set (storage.md §6.4): which grid blocks are in use. Bit a − 1 of `acquired` is set
 * while block a is referenced by the durable checkpoint, being written for the next one, or
 * released but not yet free.
 *
 * Copy-on-write needs blocks to outlive the checkpoint that stops referencing them: a crash
 * before the next checkpoint is durable reopens the previous one, whose blocks must be intact.
 * So a released block stays acquired until the checkpoint after its release is durable:
 * - released while the current checkpoint is durable → `released`, freed when the next
 *   checkpoint becomes durable;
 * - released while it is not durable yet → `releasedBeforeDurable`, moved into `released` at that
 *   moment (freed one checkpoint later).
 * Durability is an op number (layout.ts `durableOp`), the same on every replica, so every replica
 * frees the same blocks at the same op.
 *
 * Allocation is deterministic: a unit of work reserves a stretch of the address space holding
 * exactly the number of free blocks it may need (the stretches of one checkpoint are handed out
 * one after the other), acquires the lowest free block inside its stretch, and forfeits the
 * stretch when done. Same operations in the same order give the same addresses on every replica,
 * whatever the timing of the I/O.
 */
import { assert } from "../assert.ts"
import { ewahDecode, ewahEncode } from "./ewah.ts"

export interface Reservation {
  /** Block index (address − 1) of the stretch's first block and one past its last. */
  readonly start: number
  readonly end: number
  /** Blocks this reservation still may acquire. */
  remaining: number
  readonly session: number
}

export class FreeSet {
  readonly blocksMax: number
  private readonly acquired: Uint32Array
  private readonly released: Uint32Array
  private readonly releasedBeforeDurable: Uint32Array
  private durable = true
  /** Where the next reservation starts; back to 0 once every reservation is forfeited. */
  private cursor = 0
  private reservationsOpen = 0
  private session = 0
  private acquiredCount = 0

  constructor(blocksMax: number) {
    assert(Number.isSafeInteger(blocksMax) && blocksMax > 0, () => "a free set addresses at least one block")
    this.blocksMax = blocksMax
    // Whole 64-bit EWAH words.
    const words = Math.ceil(blocksMax / 64) * 2
    this.acquired = new Uint32Array(words)
    this.released = new Uint32Array(words)
    this.releasedBeforeDurable = new Uint32Array(words)
  }

  get checkpointDurable(): boolean {
    return this.durable
  }

  get count(): number {
    return this.acquiredCount
  }

  isAcquired(address: number): boolean {
    return bit(this.acquired, this.index(address))
  }

  isReleased(address: number): boolean {
    const i = this.index(address)
    return bit(this.released, i) || bit(this.releasedBeforeDurable, i)
  }

  /** The highest acquired address, or 0: it sets the logical size of the data file. */
  highestAcquired(): number {
    for (let w = this.acquired.length - 1; w >= 0; w--) {
      const word = this.acquired[w]!
      if (word !== 0) return w * 32 + (31 - Math.clz32(word)) + 1
    }
    return 0
  }

  /**
   * A stretch from the cursor holding exactly `count` free blocks, or undefined when the storage
   * limit leaves fewer than that.
   */
  reserve(count: number): Reservation | undefined {
    assert(Number.isSafeInteger(count) && count > 0, () => `reserve ${count} blocks`)
    let free = 0
    let i = this.cursor
    for (; i < this.blocksMax && free < count; i++) if (!bit(this.acquired, i)) free++
    if (free < count) return undefined
    const reservation = { start: this.cursor, end: i, remaining: count, session: this.session }
    this.cursor = i
    this.reservationsOpen++
    return reservation
  }

  /** The lowest free address inside `reservation`, now acquired. */
  acquire(reservation: Reservation): number {
    assert(reservation.session === this.session && reservation.remaining > 0, () => "acquire beyond a reservation")
    for (let i = reservation.start; i < reservation.end; i++) {
      if (!bit(this.acquired, i)) {
        setBit(this.acquired, i)
        this.acquiredCount++
        reservation.remaining--
        return i + 1
      }
    }
    return assert(false, () => "a reservation without the free blocks it counted") as never
  }

  /** Returns a reservation; when the last one is forfeited, unused reserved space is free again. */
  forfeit(reservation: Reservation): void {
    assert(reservation.session === this.session && this.reservationsOpen > 0, () => "forfeit of an unknown reservation")
    this.reservationsOpen--
    if (this.reservationsOpen === 0) {
      this.cursor = 0
      this.session++
    }
  }

  /** The block is no longer needed by the next state; it is freed once that state is durable. */
  release(address: number): void {
    const i = this.index(address)
    assert(bit(this.acquired, i) && !this.isReleased(address), () => `release of block ${address}, not acquired or released twice`)
    setBit(this.durable ? this.released : this.releasedBeforeDurable, i)
  }

  /** A new checkpoint was written: releases from now on wait for it to become durable. */
  markCheckpointNotDurable(): void {
    assert(this.durable, () => "a checkpoint written before the previous one was durable")
    this.durable = false
  }

  /** The current checkpoint is durable: free what was released before it, and promote the rest. */
  markCheckpointDurable(): void {
    assert(!this.durable, () => "a checkpoint marked durable twice")
    assert(this.reservationsOpen === 0, () => "blocks freed while a reservation is open")
    for (let w = 0; w < this.acquired.length; w++) {
      const freed = this.released[w]!
      if (freed !== 0) {
        // `&` gives a signed 32-bit result: compare it as unsigned, like the Uint32Array word.
        assert(((this.acquired[w]! & freed) >>> 0) === freed, () => "a released block that is not acquired")
        this.acquired[w] = (this.acquired[w]! & ~freed) >>> 0
        this.acquiredCount -= popcount(freed)
      }
      this.released[w] = this.releasedBeforeDurable[w]!
      this.releasedBeforeDurable[w] = 0
    }
    this.durable = true
  }

  /** The two bitsets a checkpoint stores (releasedBeforeDurable is empty whenever one is written). */
  encode(): { readonly acquired: Uint8Array; readonly released: Uint8Array } {
    assert(this.durable && this.reservationsOpen === 0, () => "the free set is encoded only between units of work")
    return { acquired: ewahEncode(this.acquired), released: ewahEncode(this.released) }
  }

  /**
   * The free set a checkpoint stored, with its own trailer's blocks patched back in: they were
   * acquired after the encoding was made and released right after the superblock was written,
   * while that checkpoint was not yet durable (they are needed until the next one is).
   */
  static decode(blocksMax: number, acquired: Uint8Array, released: Uint8Array, trailerBlocks: ReadonlyArray<number>, durable: boolean): FreeSet | string {
    const set = new FreeSet(blocksMax)
    const invalid = ewahDecode(acquired, set.acquired) ?? ewahDecode(released, set.released)
    if (invalid !== undefined) return invalid
    for (let w = 0; w < set.acquired.length; w++) {
      if (((set.released[w]! & ~set.acquired[w]!) >>> 0) !== 0) return "free set: a released block is not acquired"
      set.acquiredCount += popcount(set.acquired[w]!)
    }
    if (set.highestAcquired() > blocksMax) return "free set: a block beyond the storage limit is acquired"
    set.durable = durable
    for (const address of trailerBlocks) {
      if (address < 1 || address > blocksMax || set.isAcquired(address)) return `free set: its own trailer block ${address} is already acquired`
      setBit(set.acquired, address - 1)
      set.acquiredCount++
      setBit(durable ? set.released : set.releasedBeforeDurable, address - 1)
    }
    return set
  }

  /** The blocks the next `markCheckpointDurable` frees, in address order. */
  freedAtDurable(): Array<number> {
    const addresses: Array<number> = []
    for (let w = 0; w < this.released.length; w++) {
      let word = this.released[w]!
      while (word !== 0) {
        const bitIndex = 31 - Math.clz32(word & -word)
        addresses.push(w * 32 + bitIndex + 1)
        word = (word & (word - 1)) >>> 0
      }
    }
    return addresses
  }

  /** Acquired blocks in address order, for tests and the determinism checker. */
  acquiredAddresses(): Array<number> {
    const addresses: Array<number> = []
    for (let i = 0; i < this.blocksMax; i++) if (bit(this.acquired, i)) addresses.push(i + 1)
    return addresses
  }

  private index(address: number): number {
    assert(Number.isSafeInteger(address) && address >= 1 && address <= this.blocksMax, () => `block address ${address} out of 1..${this.blocksMax}`)
    return address - 1
  }
}

const bit = (bits: Uint32Array, i: number): boolean => (bits[i >>> 5]! & (1 << (i & 31))) !== 0
const setBit = (bits: Uint32Array, i: number): void => { bits[i >>> 5] = (bits[i >>> 5]! | (1 << (i & 31))) >>> 0 }

function popcount(word: number): number {
  let v = word - ((word >>> 1) & 0x5555_5555)
  v = (v & 0x3333_3333) + ((v >>> 2) & 0x3333_3333)
  return (((v + (v >>> 4)) & 0x0f0f_0f0f) * 0x0101_0101) >>> 24
}
