/**
 * What recovery decides for each WAL slot (storage.md §4.4, §4.5), as pure functions over what
 * was read from the two rings. The decision table is TigerBeetle's (its case labels A–P are kept
 * for cross-reference); the exhaustive test enumerates every combination of its eleven
 * predicates and checks that each matches exactly one case or is an impossible state.
 *
 * The two copies of every header are what let recovery tell a crash from corruption: the
 * redundant header (H, in the headers ring) is written only after its prepare (P, in the
 * prepares ring) is durable, and a prepare is acknowledged only after both. So a slot whose P is
 * unreadable while its H still names an older lap was being appended when the machine stopped
 * (a torn write, never acknowledged: truncate it), while an unreadable P whose H names it may have
 * been acknowledged (corruption: it must be repaired, and a single replica must refuse to start).
 */
import { assert } from "../assert.ts"
import { equalBytes } from "./checkpoint_state.ts"

/** A header from one ring, reduced to what the decision needs. Present only when it is ok. */
export interface SlotHeader {
  readonly reserved: boolean
  readonly op: number
  readonly view: number
  readonly checksum: Uint8Array
}

export type Decision =
  /** Both copies agree on a prepare: nothing to do. */
  | "eql"
  /** Both copies are the slot's reserved header: an unused slot. */
  | "nil"
  /** The prepare is intact; rewrite its redundant header from it. */
  | "fix"
  /** The slot lost a prepare it had (or cannot rule that out): repair from a peer, never nack it. */
  | "vsr"
  /** The op lies beyond what this checkpoint may hold: drop it, it is replayed or re-received later. */
  | "cut"
  /** A torn append at the head (§4.5): never acknowledged, so dropping it loses nothing. */
  | "cut_torn"

export interface SlotCase {
  readonly label: string
  readonly decision: Decision
}

/**
 * The eleven predicates, in table order:
 *   0 H ok           1 H reserved       2 P ok           3 P reserved
 *   4 P.op = op_max  5 P.op > prepare_max               6 H.op > prepare_max
 *   7 H.checksum = P.checksum          8 H.op = P.op     9 H.op < P.op     10 H.view = P.view
 * Pattern characters: `0`/`1` must be false/true, `.` anything, `a`/`A` must be false/true or the
 * state is impossible (the replica stops). Decisions: [cluster, single replica]; "unreachable"
 * marks states a single replica can never produce.
 */
const table: ReadonlyArray<{ readonly label: string; readonly cluster: Decision; readonly single: Decision | "unreachable"; readonly pattern: string }> = [
  { label: "A", cluster: "vsr", single: "vsr", pattern: "0.0..aa...." },
  { label: "B", cluster: "vsr", single: "vsr", pattern: "110..a....." },
  { label: "C", cluster: "vsr", single: "vsr", pattern: "100..a....." },
  { label: "D", cluster: "vsr", single: "fix", pattern: "0.11..a...." },
  { label: "E", cluster: "vsr", single: "fix", pattern: "0.1000a...." },
  { label: "F", cluster: "fix", single: "fix", pattern: "0.1010a...." },
  { label: "G", cluster: "fix", single: "fix", pattern: "1110.0....." },
  { label: "H", cluster: "cut", single: "unreachable", pattern: "..10.1....." },
  { label: "I", cluster: "cut", single: "unreachable", pattern: "1010.01..a." },
  { label: "J", cluster: "cut", single: "unreachable", pattern: "1011..1..a." },
  { label: "K", cluster: "vsr", single: "vsr", pattern: "1011..0...." },
  { label: "L", cluster: "nil", single: "nil", pattern: "1111...AAaA" },
  { label: "M", cluster: "fix", single: "fix", pattern: "1010.00001." },
  { label: "N", cluster: "vsr", single: "vsr", pattern: "1010.00000." },
  { label: "O", cluster: "vsr", single: "vsr", pattern: "1010.0001aa" },
  { label: "P", cluster: "eql", single: "eql", pattern: "1010.001AaA" }
]

export const predicateCount = 11

/** The case the predicates match, or undefined when the state is impossible. Exactly one matches. */
export function caseOfPredicates(predicates: ReadonlyArray<boolean>, solo: boolean): SlotCase | undefined {
  assert(predicates.length === predicateCount, () => "eleven predicates")
  let found: SlotCase | undefined
  let impossible = false
  for (const row of table) {
    const match = matches(row.pattern, predicates)
    if (match === "impossible") impossible = true
    else if (match) {
      assert(found === undefined, () => `slot matches cases ${found?.label} and ${row.label}`)
      const decision = solo ? row.single : row.cluster
      assert(decision !== "unreachable", () => `case ${row.label} cannot happen to a single replica`)
      found = { label: row.label, decision }
    }
  }
  assert(impossible === (found === undefined), () => "a slot is either classified or impossible")
  return found
}

/** The predicates of a slot, from its two headers (undefined: not ok) and the recovery's bounds. */
export function predicatesOf(h: SlotHeader | undefined, p: SlotHeader | undefined, opMax: number, opPrepareMax: number): Array<boolean> {
  assert(Number.isSafeInteger(opMax), () => `op_max ${opMax}`)
  assert(Number.isSafeInteger(opPrepareMax), () => `op_prepare_max ${opPrepareMax}`)
  const both = h !== undefined && p !== undefined
  return [
    h !== undefined,
    h?.reserved ?? false,
    p !== undefined,
    p?.reserved ?? false,
    p !== undefined && p.op === opMax,
    p !== undefined && p.op > opPrepareMax,
    h !== undefined && h.op > opPrepareMax,
    both && equalBytes(h.checksum, p.checksum),
    both && h.op === p.op,
    both && h.op < p.op,
    both && h.view === p.view
  ]
}

/** Classifies one slot; an impossible combination is a defect that stops the replica. */
export function classifySlot(h: SlotHeader | undefined, p: SlotHeader | undefined, opMax: number, opPrepareMax: number, solo: boolean): SlotCase {
  // op_max is the highest op of an ok header in either ring.
  assert(h === undefined || h.reserved || h.op <= opMax, () => `a redundant header of op ${h?.op} above op_max ${opMax}`)
  const predicates = predicatesOf(h, p, opMax, opPrepareMax)
  const found = caseOfPredicates(predicates, solo)
  assert(found !== undefined, () => `impossible WAL slot state ${predicates.map(Number).join("")}`)
  return found
}

export interface TornInput {
  readonly slotCount: number
  readonly opMax: number
  readonly opCheckpoint: number
  readonly opPrepareMax: number
  /** Writes that can be in flight at once: more torn slots than this means corruption, not a crash. */
  readonly writesMax: number
  readonly decisions: ReadonlyArray<Decision>
  /** The ok redundant header of each slot, or undefined. */
  readonly redundant: ReadonlyArray<SlotHeader | undefined>
  /** The op in the prepare ring's header of each slot when that header's checksum is valid (the slot may still be broken). */
  readonly prepareOp: ReadonlyArray<number | undefined>
  /** A single replica that appends one prepare at a time (see below). */
  readonly solo: boolean
}

/**
 * The slots after the head that are torn appends (§4.5), or none at all when the head op is not
 * certain. Only the slot range (op_max, op_prepare_max] can hold an append that was interrupted,
 * and every faulty slot in it must look like one: a valid redundant header from an older lap
 * beside a prepare whose header is unreadable. Anything else there (a corrupt or reserved
 * redundant header, or a readable prepare header, which may mean a misdirected I/O) could hide a
 * higher op, so nothing is truncated.
 *
 * A single replica that appends one prepare at a time gets a narrower rule and a wider one.
 * Narrower: the only slot that can be torn is the one of op_max + 1, so any other faulty slot in
 * the range means corruption and nothing is truncated. Wider: TigerBeetle's rule would leave a
 * replica of one unable to restart after an ordinary crash in two situations, and both are
 * provably torn appends when only op_max + 1 was being written:
 * - a redundant header that is still the slot's reserved one (the first lap of a fresh file:
 *   reserved redundant headers come only from format or from truncated, never acknowledged ops,
 *   since a faulty slot's redundant header is written invalid, not reserved);
 * - a prepare slot whose header is readable but whose rest is not: either the new header landed
 *   and the body did not (it names op_max + 1), or the new bytes did not land over the old
 *   prepare, which shows with a damaged sector (it names the redundant header's own older op).
 *   A misdirected prepare would name another op.
 * Its redundant header was never written, so the op was never acknowledged.
 */
export function tornSlots(input: TornInput): Array<number> {
  const { slotCount, opMax, opCheckpoint, opPrepareMax } = input
  assert(input.decisions.length === slotCount, () => "one decision per slot")
  assert(input.redundant.length === slotCount, () => "one redundant header per slot")
  assert(input.writesMax >= 1, () => `writesMax ${input.writesMax}`)
  if (opMax < opCheckpoint || opMax >= opPrepareMax) return []
  const slotOf = (op: number) => op % slotCount
  const head = slotOf(opMax + 1)
  // When the head is the checkpoint op, op_prepare_max's slot is the checkpoint's own: stop before it.
  const tail = opCheckpoint > 0 && opMax === opCheckpoint ? slotOf(opPrepareMax - 1) : slotOf(opPrepareMax)
  const inRange = (slot: number) =>
    head === tail ? slot === slotOf(opPrepareMax) : head <= tail ? slot >= head && slot <= tail : slot >= head || slot <= tail
  const torn: Array<number> = []
  for (let slot = 0; slot < slotCount; slot++) {
    if (input.decisions[slot] !== "vsr" || !inRange(slot)) continue
    const h = input.redundant[slot]
    const prepareOp = input.prepareOp[slot]
    if (h === undefined) return []
    if (input.solo) {
      if (slot !== head || (prepareOp !== undefined && prepareOp !== opMax + 1 && prepareOp !== h.op)) return []
    } else if (h.reserved || prepareOp !== undefined) return []
    assert(h.reserved || (h.op < opMax && h.op <= opCheckpoint), () => `slot ${slot}: a redundant header of a past lap is newer than the head`)
    if (torn.length === input.writesMax) return []
    torn.push(slot)
  }
  return torn
}

function matches(pattern: string, predicates: ReadonlyArray<boolean>): boolean | "impossible" {
  assert(pattern.length === predicateCount, () => `pattern ${pattern} has not eleven predicates`)
  assert(predicates.length === predicateCount, () => "eleven predicates")
  let violated = false
  for (let i = 0; i < predicateCount; i++) {
    const value = predicates[i]!
    switch (pattern[i]) {
      case "0": if (value) return false; break
      case "1": if (!value) return false; break
      case "a": if (value) violated = true; break
      case "A": if (!value) violated = true; break
      case ".": break
      default: assert(false, () => `bad pattern ${pattern}`)
    }
  }
  return violated ? "impossible" : true
}
