/**
 * An open-addressing hash index from u128 ids to row numbers (linear probing, load at most one
 * half). Keys are stored beside their values so that a probe touches one cache line instead of
 * chasing the row.
 *
 * Growth is incremental so that no single batch pays for rehashing millions of ids: the full
 * table becomes a read-only `old` table, a table of twice the size takes new inserts, and every
 * insert moves a few old slots across until none is left. Lookups consult the new table, then
 * the old one.
 *
 * Removal (only of recently inserted ids, when a linked chain rolls back) finishes any migration
 * first, then shifts later entries of the probe run back, so there are no tombstones.
 */
import { assert } from "../assert.ts"

const slotWords = 5 // four id words, and the value plus one so that a zeroed slot is empty
const empty = 0
const capacityMin = 1024
/**
 * Old slots moved per insert. Growth starts at C/2 entries in a table of C slots; the new table
 * of 2C slots reaches its own limit after C/2 more inserts, and migration needs C/8 of them.
 */
const migrationSlotsPerInsert = 8

export class IdIndex {
  private slots: Uint32Array
  private mask: number
  private old: Uint32Array | undefined = undefined
  private oldMask = 0
  private migrated = 0
  private readonly capacityMax: number
  count = 0

  constructor(entriesMax: number) {
    assert(entriesMax > 0, () => "an index must hold something")
    let capacity = capacityMin
    while (capacity < 2 * entriesMax) capacity *= 2
    this.capacityMax = capacity
    this.slots = new Uint32Array(capacityMin * slotWords)
    this.mask = capacityMin - 1
  }

  /**
   * Sizes an empty index for `entries` ids at once (a restore knows how many it will insert), so
   * that filling it never grows or migrates.
   */
  reserve(entries: number): void {
    assert(this.count === 0 && this.old === undefined, () => "reserve an empty index")
    let capacity = this.slots.length / slotWords
    while (2 * entries > capacity && capacity < this.capacityMax) capacity *= 2
    if (capacity === this.slots.length / slotWords) return
    this.slots = new Uint32Array(capacity * slotWords)
    this.mask = capacity - 1
  }

  /** The value stored for the id at `ids[o..o+3]`, or -1. */
  find(ids: Uint32Array, o: number): number {
    const w0 = ids[o]!, w1 = ids[o + 1]!, w2 = ids[o + 2]!, w3 = ids[o + 3]!
    const h = hash(w0, w1, w2, w3)
    const value = probe(this.slots, this.mask, h, w0, w1, w2, w3)
    if (value >= 0 || this.old === undefined) return value
    return probe(this.old, this.oldMask, h, w0, w1, w2, w3)
  }

  /** Inserts an id the caller found missing. */
  insert(ids: Uint32Array, o: number, value: number): void {
    assert(value >= 0 && value < 0xffff_ffff, () => `bad index value ${value}`)
    if (this.old !== undefined) this.migrate(migrationSlotsPerInsert)
    else if (2 * (this.count + 1) > this.slots.length / slotWords) this.grow()
    place(this.slots, this.mask, ids, o, value + 1, true)
    this.count++
  }

  remove(ids: Uint32Array, o: number): void {
    if (this.old !== undefined) this.migrate(Infinity)
    const slots = this.slots
    const mask = this.mask
    const w0 = ids[o]!, w1 = ids[o + 1]!, w2 = ids[o + 2]!, w3 = ids[o + 3]!
    let hole = hash(w0, w1, w2, w3) & mask
    for (;; hole = (hole + 1) & mask) {
      const base = hole * slotWords
      assert(slots[base + 4] !== empty, () => "removing an id that is not indexed")
      if (slots[base] === w0 && slots[base + 1] === w1 && slots[base + 2] === w2 && slots[base + 3] === w3) break
    }
    // Backward shift: move every later entry of the run whose home is not between the hole and
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
    const capacity = this.slots.length / slotWords
    assert(capacity < this.capacityMax, () => `index full: ${this.count} entries`)
    this.old = this.slots
    this.oldMask = this.mask
    this.migrated = 0
    this.slots = new Uint32Array(capacity * 2 * slotWords)
    this.mask = capacity * 2 - 1
  }

  private migrate(budget: number): void {
    const old = this.old!
    const end = Math.min(old.length / slotWords, this.migrated + budget)
    for (let slot = this.migrated; slot < end; slot++) {
      const base = slot * slotWords
      if (old[base + 4] !== empty) place(this.slots, this.mask, old, base, old[base + 4]!, false)
    }
    this.migrated = end
    if (end === old.length / slotWords) this.old = undefined
  }
}

function probe(slots: Uint32Array, mask: number, h: number, w0: number, w1: number, w2: number, w3: number): number {
  for (let slot = h & mask; ; slot = (slot + 1) & mask) {
    const base = slot * slotWords
    const stored = slots[base + 4]!
    if (stored === empty) return -1
    if (slots[base] === w0 && slots[base + 1] === w1 && slots[base + 2] === w2 && slots[base + 3] === w3) return stored - 1
  }
}

/** Writes the id at `ids[o..o+3]` with its stored value into the first free slot of its run. */
function place(slots: Uint32Array, mask: number, ids: Uint32Array, o: number, stored: number, checkDuplicate: boolean): void {
  const w0 = ids[o]!, w1 = ids[o + 1]!, w2 = ids[o + 2]!, w3 = ids[o + 3]!
  let slot = hash(w0, w1, w2, w3) & mask
  for (; slots[slot * slotWords + 4] !== empty; slot = (slot + 1) & mask) {
    const base = slot * slotWords
    assert(!checkDuplicate || !(slots[base] === w0 && slots[base + 1] === w1 && slots[base + 2] === w2 && slots[base + 3] === w3),
      () => "id inserted twice")
  }
  const base = slot * slotWords
  slots[base] = w0
  slots[base + 1] = w1
  slots[base + 2] = w2
  slots[base + 3] = w3
  slots[base + 4] = stored
}

/** A 32-bit mix of the four words; sequential ids must spread, so every word is avalanched. */
function hash(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0 ^ 0x9e37_79b9, 0x85eb_ca6b)
  h = Math.imul(h ^ (h >>> 15) ^ w1, 0xc2b2_ae35)
  h = Math.imul(h ^ (h >>> 13) ^ w2, 0x27d4_eb2f)
  h = Math.imul(h ^ (h >>> 16) ^ w3, 0x1656_67b1)
  return (h ^ (h >>> 15)) >>> 0
}
