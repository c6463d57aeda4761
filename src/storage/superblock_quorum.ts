/**
 * Choosing the superblock version from the copies read at open (storage.md §3.4) and the order
 * in which damaged copies are rewritten (§3.5). Pure functions over decoded copies, so that the
 * quorum rules can be tested exhaustively without a disk.
 *
 * Why a quorum rather than "highest sequence wins": a superblock carries its own checksum, so a
 * misdirected read or write can present a valid but misplaced copy, and a lone copy of a new
 * version may hide that its siblings were never written. With 4 copies, a version is selected at
 * open with 2 copies and verified after a write with 3: the two thresholds sum to 5, so a write
 * that was verified always intersects a later open.
 */
import { assert } from "../assert.ts"
import { equalBytes } from "./checkpoint_state.ts"

export interface Versioned {
  readonly sequence: number
  readonly checksum: Uint8Array
  readonly parent: Uint8Array
  readonly cluster: bigint
  readonly vsrState: { readonly replicaId: bigint }
}

/** One copy as read from its slot: the `copy` index it claims (not covered by its checksum). */
export interface SuperblockCopy<T extends Versioned> {
  readonly copy: number
  readonly sequence: number
  readonly checksum: Uint8Array
  readonly value: T
}

export type QuorumResult<T> =
  | { readonly _tag: "Success"; readonly value: T }
  | { readonly _tag: "Failure"; readonly reason: string }

interface Group<T extends Versioned> {
  readonly value: T
  /** Copy indexes seen holding this version, each counted once. */
  readonly copies: Set<number>
}

/**
 * The version a quorum of `threshold` copies holds, checked against every other version found:
 * a version must follow its predecessor by exactly one sequence number, chained by checksum and
 * with a monotonic VSR state (`monotonic` says why not). `slots[k]` is the copy read from slot
 * k, or undefined when its checksum failed.
 */
export function selectQuorum<T extends Versioned>(
  slots: ReadonlyArray<SuperblockCopy<T> | undefined>, threshold: number, monotonic: (older: T, newer: T) => string | undefined
): QuorumResult<T> {
  assert(Number.isInteger(threshold), () => `threshold ${threshold}`)
  assert(threshold >= 1, () => `threshold ${threshold}`)
  assert(threshold <= slots.length, () => `threshold ${threshold} of ${slots.length} copies`)
  const groups: Array<Group<T>> = []
  slots.forEach((slot, home) => {
    if (slot === undefined) return
    let group = groups.find((g) => equalBytes(g.value.checksum, slot.checksum))
    if (group === undefined) {
      group = { value: slot.value, copies: new Set() }
      groups.push(group)
    }
    // The copy index is outside the checksum: an out-of-range one is assumed to be at home.
    group.copies.add(slot.copy < slots.length ? slot.copy : home)
  })
  if (groups.length === 0) return failure("not found: no copy has a valid checksum (not a Scarab data file, or every copy is damaged)")
  const valid = (g: Group<T>) => g.copies.size >= threshold
  groups.sort((a, b) =>
    Number(valid(b)) - Number(valid(a)) ||
    b.value.sequence - a.value.sequence ||
    b.copies.size - a.copies.size ||
    compareBytes(b.value.checksum, a.value.checksum))
  assert(groups.length <= slots.length, () => "a version per copy at most")
  const best = groups[0]!
  if (!valid(best)) return failure(`quorum lost: no version is held by ${threshold} of ${slots.length} copies`)
  const b = best.value
  for (const group of groups.slice(1)) {
    const a = group.value
    if (a.cluster !== b.cluster || a.vsrState.replicaId !== b.vsrState.replicaId) continue
    if (a.sequence === b.sequence) return failure(`fork: two versions with sequence ${b.sequence}`)
    if (a.sequence > b.sequence + 1) return failure(`parent skipped: sequence ${a.sequence} exists beside the selected ${b.sequence}`)
    if (a.sequence + 1 === b.sequence) {
      if (!equalBytes(b.parent, a.checksum)) return failure(`parent not connected: sequence ${b.sequence} does not follow ${a.sequence}`)
      const broken = monotonic(a, b)
      if (broken !== undefined) return failure(`sequence ${b.sequence} regresses from ${a.sequence}: ${broken}`)
    }
  }
  assert(best.copies.size >= threshold, () => "the version selected is held by a quorum")
  return { _tag: "Success", value: b }
}

/**
 * The slots to rewrite with `working` (whose checksum is given), one at a time in this order
 * (TigerBeetle's `RepairIterator`): slots holding no copy of it whose copy index is held nowhere,
 * then slots holding no copy of it whose index is held elsewhere (misdirected), then slots
 * holding a misplaced copy whose index another slot holds too (a duplicate). The categories are
 * recomputed after every rewrite, since each one turns a slot into its own copy. Writing them in
 * another order, a crash tearing one repair could let the older version regain a quorum, or drop
 * the working version below one: rewriting the only slot that holds some copy index loses that
 * index if the write tears, so such a slot waits until its copy is held at home as well.
 *
 * Scarab goes one step further than TigerBeetle: once every slot holds the working version,
 * misplaced copies (a permutation) and copies at home whose copy field is corrupt are rewritten
 * too. All four copy indexes are held then, so a torn rewrite still leaves three.
 */
export function repairOrder<T extends Versioned>(slots: ReadonlyArray<SuperblockCopy<T> | undefined>, working: Uint8Array): Array<number> {
  const count = slots.length
  // The copy index of `working` each slot holds (an out-of-range one counts as home, as in
  // selectQuorum), or undefined when the slot holds something else.
  const held = slots.map((slot, k) =>
    slot !== undefined && equalBytes(slot.checksum, working) ? (slot.copy < count ? slot.copy : k) : undefined)
  const mislabelled = new Set(slots.flatMap((slot, k) => (held[k] === k && slot!.copy !== k ? [k] : [])))
  const order: Array<number> = []
  for (let step = 0; step <= 2 * count; step++) {
    const holders = new Array<number>(count).fill(0)
    for (const copy of held) if (copy !== undefined) holders[copy]!++
    const keys = [...held.keys()]
    const next =
      keys.find((k) => held[k] === undefined && holders[k] === 0) ??
      keys.find((k) => held[k] === undefined) ??
      keys.find((k) => held[k] !== undefined && held[k] !== k && holders[held[k]!]! > 1) ??
      keys.find((k) => held[k] !== undefined && held[k] !== k) ??
      keys.find((k) => mislabelled.has(k))
    if (next === undefined) {
      // Each slot is rewritten once at most: a rewritten slot holds its own copy, and never qualifies again.
      assert(order.length <= count, () => "more repairs than slots")
      assert(new Set(order).size === order.length, () => "a slot repaired twice")
      return order
    }
    order.push(next)
    held[next] = next
    mislabelled.delete(next)
  }
  return assert(false, () => "superblock repair order did not converge") as never
}

const failure = (reason: string) => ({ _tag: "Failure", reason }) as const

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  assert(a.length === b.length, () => "checksums of one length")
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}
