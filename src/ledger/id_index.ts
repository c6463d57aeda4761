/**
 * An open-addressing hash index from u128 ids to row numbers (linear probing, load at most
 * one half, doubled when full up to a fixed maximum). Keys are stored beside their values so a
 * probe touches one cache line instead of chasing the row.
 *
 * Removal (only of recently inserted ids, when a linked chain rolls back) shifts later entries
 * of the probe run back, so there are no tombstones and lookups stay short.
 */
import { assert } from "../assert.ts"

const slotWords = 5 // four id words and the value plus one, so that a zeroed slot is empty
const empty = 0

export class IdIndex {
  private slots: Uint32Array
  private mask: number
  private readonly capacityMax: number
  count = 0

  constructor(entriesMax: number) {
    assert(entriesMax > 0, () => "an index must hold something")
    let capacity = 1024
    while (capacity < 2 * entriesMax) capacity *= 2
    this.capacityMax = capacity
    this.slots = IdIndex.allocate(Math.min(1024, capacity))
    this.mask = this.slots.length / slotWords - 1
  }

  /** The value stored for the id at `ids[o..o+3]`, or -1. */
  find(ids: Uint32Array, o: number): number {
    const slots = this.slots
    const w0 = ids[o]!, w1 = ids[o + 1]!, w2 = ids[o + 2]!, w3 = ids[o + 3]!
    for (let slot = hash(w0, w1, w2, w3) & this.mask; ; slot = (slot + 1) & this.mask) {
      const base = slot * slotWords
      const value = slots[base + 4]!
      if (value === empty) return -1
      if (slots[base] === w0 && slots[base + 1] === w1 && slots[base + 2] === w2 && slots[base + 3] === w3) return value - 1
    }
  }

  insert(ids: Uint32Array, o: number, value: number): void {
    assert(value >= 0 && value < 0xffff_ffff, () => `bad index value ${value}`)
    if (2 * (this.count + 1) > this.slots.length / slotWords) this.grow()
    const slots = this.slots
    const w0 = ids[o]!, w1 = ids[o + 1]!, w2 = ids[o + 2]!, w3 = ids[o + 3]!
    let slot = hash(w0, w1, w2, w3) & this.mask
    for (; slots[slot * slotWords + 4] !== empty; slot = (slot + 1) & this.mask) {
      const base = slot * slotWords
      assert(!(slots[base] === w0 && slots[base + 1] === w1 && slots[base + 2] === w2 && slots[base + 3] === w3),
        () => "id inserted twice")
    }
    const base = slot * slotWords
    slots[base] = w0
    slots[base + 1] = w1
    slots[base + 2] = w2
    slots[base + 3] = w3
    slots[base + 4] = value + 1
    this.count++
  }

  remove(ids: Uint32Array, o: number): void {
    const slots = this.slots
    const mask = this.mask
    const w0 = ids[o]!, w1 = ids[o + 1]!, w2 = ids[o + 2]!, w3 = ids[o + 3]!
    let hole = hash(w0, w1, w2, w3) & mask
    for (;; hole = (hole + 1) & mask) {
      const base = hole * slotWords
      assert(slots[base + 4] !== empty, () => "removing an id that is not indexed")
      if (slots[base] === w0 && slots[base + 1] === w1 && slots[base + 2] === w2 && slots[base + 3] === w3) break
    }
    // Backward-shift: move every later entry of the run whose home is not between the hole and
    // itself into the hole, so no lookup ever stops early at the gap.
    for (let next = (hole + 1) & mask; slots[next * slotWords + 4] !== empty; next = (next + 1) & mask) {
      const base = next * slotWords
      const home = hash(slots[base]!, slots[base + 1]!, slots[base + 2]!, slots[base + 3]!) & mask
      const homeBetween = hole <= next ? hole < home && home <= next : hole < home || home <= next
      if (homeBetween) continue
      slots.copyWithin(hole * slotWords, base, base + slotWords)
      hole = next
    }
    slots[hole * slotWords + 4] = empty
    this.count--
  }

  private grow(): void {
    const old = this.slots
    assert(old.length / slotWords < this.capacityMax, () => `index full: ${this.count} entries`)
    this.slots = IdIndex.allocate((old.length / slotWords) * 2)
    this.mask = this.slots.length / slotWords - 1
    this.count = 0
    for (let base = 0; base < old.length; base += slotWords) {
      if (old[base + 4] !== empty) this.insert(old, base, old[base + 4]! - 1)
    }
  }

  private static allocate(capacity: number): Uint32Array {
    return new Uint32Array(capacity * slotWords)
  }
}

/** A 32-bit mix of the four words; sequential ids must spread, so every word is avalanched. */
function hash(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0 ^ 0x9e37_79b9, 0x85eb_ca6b)
  h = Math.imul(h ^ (h >>> 15) ^ w1, 0xc2b2_ae35)
  h = Math.imul(h ^ (h >>> 13) ^ w2, 0x27d4_eb2f)
  h = Math.imul(h ^ (h >>> 16) ^ w3, 0x1656_67b1)
  return (h ^ (h >>> 15)) >>> 0
}
