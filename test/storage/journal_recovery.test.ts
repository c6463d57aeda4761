/**
 * The WAL recovery decisions of storage.md §4.4–§4.5 (`src/storage/journal_recovery.ts`), tested
 * against an independent transcription of TigerBeetle's `recovery_cases` table and its
 * `torn_prepares` rule (src/vsr/journal.zig at 52ad553f):
 * - the exhaustive test the design requires: all 2^11 predicate combinations, solo and cluster;
 * - `predicatesOf`/`classifySlot` on constructed headers, one realistic example per case A–P, and
 *   a property: every physically consistent pair of headers is classified (never "impossible");
 * - `tornSlots`: the cluster rule and the solo rule, by example (ring wrap, the special tail when
 *   op_max is the checkpoint, the writesMax bound) and against an oracle that computes the
 *   range from ops rather than slots.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import {
  caseOfPredicates, classifySlot, type Decision, predicateCount, predicatesOf, type SlotHeader, tornSlots, type TornInput
} from "../../src/storage/journal_recovery.ts"
import { prepareMax, testConfig } from "../../src/storage/layout.ts"
import { assertAborts } from "../aborts.ts"

// --- TigerBeetle's table, transcribed as it is written there --------------------------------------

// Matchers, as in journal.zig: `__` any, `_0`/`_1` must be false/true, `a0`/`a1` the replica
// aborts unless false/true. TB checks a pattern left to right and stops at the first mismatch or
// failed assertion; every assertion column of its table lies right of every `_0`/`_1` column, so
// the order does not change which rows match, but the oracle keeps TB's semantics exactly.
type Matcher = "__" | "_0" | "_1" | "a0" | "a1"
type TbDecision = Decision | "unr"
const __ = "__", _0 = "_0", _1 = "_1", a0 = "a0", a1 = "a1"

//  Header ok, nil | Prepare ok, nil | op⌈ (P.op = op_max) | op>₁ (P.op > prepare_max) |
//  op>₂ (H.op > prepare_max) | ✓∑ | op= | op< | view
const tigerBeetleCases: ReadonlyArray<readonly [string, TbDecision, TbDecision, ReadonlyArray<Matcher>]> = [
  ["A", "vsr", "vsr", [_0, __, _0, __, __, a0, a0, __, __, __, __]],
  ["B", "vsr", "vsr", [_1, _1, _0, __, __, a0, __, __, __, __, __]],
  ["C", "vsr", "vsr", [_1, _0, _0, __, __, a0, __, __, __, __, __]],
  ["D", "vsr", "fix", [_0, __, _1, _1, __, __, a0, __, __, __, __]],
  ["E", "vsr", "fix", [_0, __, _1, _0, _0, _0, a0, __, __, __, __]],
  ["F", "fix", "fix", [_0, __, _1, _0, _1, _0, a0, __, __, __, __]],
  ["G", "fix", "fix", [_1, _1, _1, _0, __, _0, __, __, __, __, __]],
  ["H", "cut", "unr", [__, __, _1, _0, __, _1, __, __, __, __, __]],
  ["I", "cut", "unr", [_1, _0, _1, _0, __, _0, _1, __, __, a0, __]],
  ["J", "cut", "unr", [_1, _0, _1, _1, __, __, _1, __, __, a0, __]],
  ["K", "vsr", "vsr", [_1, _0, _1, _1, __, __, _0, __, __, __, __]],
  ["L", "nil", "nil", [_1, _1, _1, _1, __, __, __, a1, a1, a0, a1]],
  ["M", "fix", "fix", [_1, _0, _1, _0, __, _0, _0, _0, _0, _1, __]],
  ["N", "vsr", "vsr", [_1, _0, _1, _0, __, _0, _0, _0, _0, _0, __]],
  ["O", "vsr", "vsr", [_1, _0, _1, _0, __, _0, _0, _0, _1, a0, a0]],
  ["P", "eql", "eql", [_1, _0, _1, _0, __, _0, _0, _1, a1, a0, a1]]
]

/** TB's `Case.check`: true/false, or "abort" at the first failed assertion column. */
function tbCheck(pattern: ReadonlyArray<Matcher>, parameters: ReadonlyArray<boolean>): boolean | "abort" {
  for (let i = 0; i < pattern.length; i++) {
    const value = parameters[i]!
    switch (pattern[i]) {
      case "__": break
      case "_0": if (value) return false; break
      case "_1": if (!value) return false; break
      case "a0": if (value) return "abort"; break
      case "a1": if (!value) return "abort"; break
    }
  }
  return true
}

type Oracle =
  | { readonly kind: "case"; readonly label: string; readonly decision: Decision }
  | { readonly kind: "impossible" }
  | { readonly kind: "unreachable"; readonly label: string }

/** What TB decides for a predicate vector: a case, an abort (impossible), or `unr` for a single replica. */
function tbOracle(parameters: ReadonlyArray<boolean>, solo: boolean): Oracle {
  let matched: (typeof tigerBeetleCases)[number] | undefined
  let aborted = false
  for (const row of tigerBeetleCases) {
    const result = tbCheck(row[3], parameters)
    if (result === "abort") aborted = true
    else if (result) {
      // TB's own exhaustive test: at most one row matches, and never beside an abort.
      assert.isUndefined(matched, `rows ${matched?.[0]} and ${row[0]} both match ${bits(parameters)}`)
      matched = row
    }
  }
  assert.isTrue(aborted === (matched === undefined), `TB table is not exhaustive at ${bits(parameters)}`)
  if (matched === undefined) return { kind: "impossible" }
  const decision = solo ? matched[2] : matched[1]
  return decision === "unr" ? { kind: "unreachable", label: matched[0] } : { kind: "case", label: matched[0], decision }
}

const bits = (parameters: ReadonlyArray<boolean>) => parameters.map(Number).join("")
const vectorOf = (i: number) => Array.from({ length: predicateCount }, (_, j) => (i & (1 << j)) !== 0)

// --- slots and headers ---------------------------------------------------------------------------

const slotCount = testConfig.journalSlotCount

/** A deterministic, distinct checksum per (op, view, variant): equal iff the headers are equal. */
function checksumOf(op: number, view: number, reserved: boolean, variant = 0): Uint8Array {
  const sum = new Uint8Array(16)
  const v = new DataView(sum.buffer)
  v.setUint32(0, op, true)
  v.setUint32(4, view, true)
  v.setUint32(8, variant, true)
  sum[12] = reserved ? 1 : 2
  return sum
}

const reserved = (slot: number): SlotHeader => ({ reserved: true, op: slot, view: 0, checksum: checksumOf(slot, 0, true) })
const prepare = (op: number, view = 1, variant = 0): SlotHeader => ({ reserved: false, op, view, checksum: checksumOf(op, view, false, variant) })

describe("journal recovery: the decision table (§4.4)", () => {
  // Proves the exhaustive property of the design: each of the 2^11 predicate vectors, for a
  // cluster and for a single replica, is either exactly one TB case with TB's decision, or an
  // impossible state (undefined), or, for a single replica, a case TB marks unreachable (the
  // module stops the replica). A row with a wrong column, a wrong decision or a missing `a`
  // would change at least one vector's outcome.
  it("matches TigerBeetle's table on all 2^11 predicate combinations, cluster and solo", () => {
    const counts = new Map<string, number>()
    for (const solo of [false, true]) {
      for (let i = 0; i < 1 << predicateCount; i++) {
        const parameters = vectorOf(i)
        const expected = tbOracle(parameters, solo)
        const where = `${solo ? "solo" : "cluster"} ${bits(parameters)}`
        switch (expected.kind) {
          case "case": {
            const got = caseOfPredicates(parameters, solo)
            assert.deepStrictEqual(got, { label: expected.label, decision: expected.decision }, where)
            const key = `${solo ? "solo" : "cluster"}:${expected.label}`
            counts.set(key, (counts.get(key) ?? 0) + 1)
            break
          }
          case "impossible":
            assert.isUndefined(caseOfPredicates(parameters, solo), where)
            break
          case "unreachable":
            assertAborts(() => caseOfPredicates(parameters, solo), where)
            break
        }
      }
    }
    // No row is dead: every label decides some vector for a cluster, and all but H/I/J for a
    // single replica (a single replica never holds an op beyond prepare_max).
    for (const [label] of tigerBeetleCases) {
      assert.isAbove(counts.get(`cluster:${label}`) ?? 0, 0, `cluster case ${label} matches nothing`)
      if ("HIJ".includes(label)) assert.isUndefined(counts.get(`solo:${label}`))
      else assert.isAbove(counts.get(`solo:${label}`) ?? 0, 0, `solo case ${label} matches nothing`)
    }
  })

  // Proves the decisions also equal the design's own table (storage.md §4.4), written out here
  // column by column, so that a change to either table is noticed.
  it("decisions equal storage.md §4.4 (cluster and single-replica columns)", () => {
    const design: Record<string, readonly [Decision, Decision | "impossible"]> = {
      A: ["vsr", "vsr"], B: ["vsr", "vsr"], C: ["vsr", "vsr"], D: ["vsr", "fix"], E: ["vsr", "fix"], F: ["fix", "fix"],
      G: ["fix", "fix"], H: ["cut", "impossible"], I: ["cut", "impossible"], J: ["cut", "impossible"], K: ["vsr", "vsr"],
      L: ["nil", "nil"], M: ["fix", "fix"], N: ["vsr", "vsr"], O: ["vsr", "vsr"], P: ["eql", "eql"]
    }
    const seen = new Set<string>()
    for (let i = 0; i < 1 << predicateCount; i++) {
      const cluster = caseOfPredicates(vectorOf(i), false)
      if (cluster === undefined) continue
      seen.add(cluster.label)
      assert.strictEqual(cluster.decision, design[cluster.label]![0], `cluster ${cluster.label}`)
      if (design[cluster.label]![1] === "impossible") assertAborts(() => caseOfPredicates(vectorOf(i), true), `solo ${cluster.label}`)
      else assert.strictEqual(caseOfPredicates(vectorOf(i), true)!.decision, design[cluster.label]![1], `solo ${cluster.label}`)
    }
    assert.deepStrictEqual([...seen].sort(), Object.keys(design).sort())
  })

  it("rejects a predicate vector of the wrong length", () => {
    assertAborts(() => caseOfPredicates([true, false], false), "two predicates")
  })
})

describe("journal recovery: predicatesOf and classifySlot on headers", () => {
  // A realistic state per case, with the test profile's bounds: checkpoint 63, so prepare_max is
  // 127 and slot s holds ops s, s + 64, s + 128, … Proves that predicatesOf computes each
  // predicate from the right header and bound, and that classifySlot returns the case.
  const checkpoint = 63
  const pm = prepareMax(testConfig, checkpoint)
  const examples: ReadonlyArray<{
    readonly label: string; readonly h: SlotHeader | undefined; readonly p: SlotHeader | undefined; readonly opMax: number
    readonly cluster: Decision; readonly solo: Decision | "stops"
  }> = [
    { label: "A", h: undefined, p: undefined, opMax: 100, cluster: "vsr", solo: "vsr" },
    { label: "B", h: reserved(10), p: undefined, opMax: 100, cluster: "vsr", solo: "vsr" },
    { label: "C", h: prepare(10), p: undefined, opMax: 100, cluster: "vsr", solo: "vsr" },
    { label: "D", h: undefined, p: reserved(10), opMax: 100, cluster: "vsr", solo: "fix" },
    { label: "E", h: undefined, p: prepare(74), opMax: 100, cluster: "vsr", solo: "fix" },
    { label: "F", h: undefined, p: prepare(100), opMax: 100, cluster: "fix", solo: "fix" },
    { label: "G", h: reserved(10), p: prepare(74), opMax: 100, cluster: "fix", solo: "fix" },
    { label: "H", h: prepare(74), p: prepare(138), opMax: 138, cluster: "cut", solo: "stops" },
    { label: "H", h: undefined, p: prepare(138), opMax: 138, cluster: "cut", solo: "stops" },
    { label: "I", h: prepare(138), p: prepare(74), opMax: 138, cluster: "cut", solo: "stops" },
    { label: "J", h: prepare(138), p: reserved(10), opMax: 138, cluster: "cut", solo: "stops" },
    { label: "K", h: prepare(74), p: reserved(10), opMax: 100, cluster: "vsr", solo: "vsr" },
    { label: "L", h: reserved(10), p: reserved(10), opMax: 100, cluster: "nil", solo: "nil" },
    { label: "M", h: prepare(10), p: prepare(74), opMax: 100, cluster: "fix", solo: "fix" },
    { label: "N", h: prepare(74), p: prepare(10), opMax: 100, cluster: "vsr", solo: "vsr" },
    { label: "O", h: prepare(74, 1), p: prepare(74, 2), opMax: 100, cluster: "vsr", solo: "vsr" },
    { label: "P", h: prepare(74), p: prepare(74), opMax: 100, cluster: "eql", solo: "eql" },
    // op_max is the prepare's op: still P, the op⌈ column is a don't-care there.
    { label: "P", h: prepare(100), p: prepare(100), opMax: 100, cluster: "eql", solo: "eql" }
  ]
  for (const e of examples) {
    it(`case ${e.label}: H ${describeHeader(e.h)}, P ${describeHeader(e.p)}, op_max ${e.opMax}`, () => {
      assert.deepStrictEqual(classifySlot(e.h, e.p, e.opMax, pm, false), { label: e.label, decision: e.cluster })
      if (e.solo === "stops") assertAborts(() => classifySlot(e.h, e.p, e.opMax, pm, true), "solo")
      else assert.deepStrictEqual(classifySlot(e.h, e.p, e.opMax, pm, true), { label: e.label, decision: e.solo })
    })
  }

  it("predicatesOf sets each predicate from the right header (bit by bit)", () => {
    // H = op 74 view 1, P = op 100 view 1, op_max 100, prepare_max 127.
    assert.deepStrictEqual(predicatesOf(prepare(74), prepare(100), 100, pm),
      [true, false, true, false, true, false, false, false, false, true, true])
    // Swapped: H.op > P.op, P.op not op_max.
    assert.deepStrictEqual(predicatesOf(prepare(100), prepare(74), 100, pm),
      [true, false, true, false, false, false, false, false, false, false, true])
    // Both beyond prepare_max, different views, same op.
    assert.deepStrictEqual(predicatesOf(prepare(138, 3), prepare(138, 4), 138, pm),
      [true, false, true, false, true, true, true, false, true, false, false])
    // Only H present: the comparison predicates are all false.
    assert.deepStrictEqual(predicatesOf(prepare(138), undefined, 138, pm),
      [true, false, false, false, false, false, true, false, false, false, false])
    // op⌈ is equality with op_max, not "at least" (P.op 100 above an op_max of 90 is not the head).
    assert.isFalse(predicatesOf(undefined, prepare(100), 90, pm)[4])
    assert.isTrue(predicatesOf(undefined, prepare(90), 90, pm)[4])
    // Only P present, reserved.
    assert.deepStrictEqual(predicatesOf(undefined, reserved(3), 138, pm),
      [false, false, true, true, false, false, false, false, false, false, false])
  })

  it("impossible header pairs stop the replica", () => {
    // Same op, same view, different checksums: two prepares of one op in one view.
    assertAborts(() => classifySlot(prepare(74, 1, 0), prepare(74, 1, 1), 100, pm, false), "O with equal views")
    // Both reserved but different (a reserved header of another cluster would not be ok).
    assertAborts(() => classifySlot(reserved(10), { ...reserved(10), checksum: checksumOf(10, 0, true, 9) }, 100, pm, false), "L unequal")
    // Equal checksums naming different ops (a checksum collision).
    assertAborts(() => classifySlot(prepare(74), { ...prepare(10), checksum: prepare(74).checksum }, 100, pm, false), "P unequal ops")
  })

  // Property: a state that real headers can produce is always classified, never impossible. The
  // generator obeys the physics the table's assertions encode: a slot's reserved header is unique,
  // equal (op, view) means the same prepare, ops are congruent to the slot and at most op_max; a
  // single replica never holds an op beyond prepare_max. The decision is the oracle's.
  it("every physically consistent slot state is classified (property)", () => {
    const arbitrary = fc.record({
      checkpointIndex: fc.integer({ min: 0, max: 6 }),
      slot: fc.integer({ min: 0, max: slotCount - 1 }),
      h: fc.option(fc.record({ reserved: fc.boolean(), lap: fc.integer({ min: 0, max: 6 }), view: fc.integer({ min: 0, max: 2 }) }), { nil: undefined }),
      p: fc.option(fc.record({ reserved: fc.boolean(), lap: fc.integer({ min: 0, max: 6 }), view: fc.integer({ min: 0, max: 2 }) }), { nil: undefined }),
      opMaxExtra: fc.integer({ min: 0, max: 200 }),
      solo: fc.boolean()
    })
    fc.assert(fc.property(arbitrary, (input) => {
      const checkpoint = input.checkpointIndex === 0 ? 0 : input.checkpointIndex * testConfig.checkpointOps - 1
      const pm = prepareMax(testConfig, checkpoint)
      const make = (g: { reserved: boolean; lap: number; view: number } | undefined): SlotHeader | undefined => {
        if (g === undefined) return undefined
        if (g.reserved) return reserved(input.slot)
        let op = input.slot + g.lap * slotCount
        if (input.solo) while (op > pm) op -= slotCount
        return op < 0 ? reserved(input.slot) : prepare(op, g.view)
      }
      const h = make(input.h)
      const p = make(input.p)
      const ops = [h, p].filter((x) => x !== undefined && !x.reserved).map((x) => x!.op)
      let opMax = Math.max(0, ...ops) + input.opMaxExtra
      if (input.solo) opMax = Math.min(opMax, pm)
      opMax = Math.max(opMax, ...ops)
      const found = classifySlot(h, p, opMax, pm, input.solo)
      const expected = tbOracle(predicatesOf(h, p, opMax, pm), input.solo)
      assert.deepStrictEqual(expected, { kind: "case", label: found.label, decision: found.decision })
    }), { numRuns: 3000 })
  })
})

// --- torn writes (§4.5) --------------------------------------------------------------------------

interface SlotState {
  readonly decision: Decision
  readonly redundant: SlotHeader | undefined
  readonly prepareOp: number | undefined
}

/** A ring where every slot is clean ("eql", its current op in both rings) except the given ones. */
function ring(opMax: number, overrides: Record<number, SlotState>): Pick<TornInput, "decisions" | "redundant" | "prepareOp"> {
  const decisions: Array<Decision> = []
  const redundant: Array<SlotHeader | undefined> = []
  const prepareOp: Array<number | undefined> = []
  for (let slot = 0; slot < slotCount; slot++) {
    // The newest op at most op_max in this slot, or reserved in the first lap.
    let op = slot
    while (op + slotCount <= opMax) op += slotCount
    const state = overrides[slot] ?? (op <= opMax ? { decision: "eql", redundant: prepare(op), prepareOp: op } : { decision: "nil", redundant: reserved(slot), prepareOp: slot })
    decisions.push(state.decision)
    redundant.push(state.redundant)
    prepareOp.push(state.prepareOp)
  }
  return { decisions, redundant, prepareOp }
}

const torn = (h: SlotHeader | undefined, prepareOp?: number): SlotState => ({ decision: "vsr", redundant: h, prepareOp })

function input(checkpoint: number, opMax: number, overrides: Record<number, SlotState>, solo: boolean, writesMax = 32): TornInput {
  return { slotCount, opMax, opCheckpoint: checkpoint, opPrepareMax: prepareMax(testConfig, checkpoint), writesMax, solo, ...ring(opMax, overrides) }
}

describe("journal recovery: torn appends, cluster rule (TigerBeetle's)", () => {
  // Checkpoint 63: prepare_max 127. op_max 70 lives in slot 6; slots 7..63 still hold ops 7..63
  // of the previous lap, so the range (70, 127] is slots 7..63.
  const cp = 63

  it("truncates a torn append after the head: H from an older lap, P unreadable", () => {
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7)) }, false)), [7])
    // Several in-flight appends, the last one of the range included (slot 63 = op 127).
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7)), 9: torn(prepare(9)), 63: torn(prepare(63)) }, false)), [7, 9, 63])
  })

  it("ignores faults before the head: they stay vsr (ordinary corruption)", () => {
    // Slot 3 holds op 67 < op_max: outside the range, so it does not spoil the torn slot 7.
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 3: torn(prepare(67)), 7: torn(prepare(7)) }, false)), [7])
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 3: torn(prepare(67)) }, false)), [])
  })

  it("truncates nothing when any faulty slot of the range does not look torn", () => {
    // H corrupt (case A), H reserved (case B), or a readable P header (misdirected I/O).
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7)), 20: torn(undefined) }, false)), [])
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7)), 20: torn(reserved(20)) }, false)), [])
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7)), 20: torn(prepare(20), 20) }, false)), [])
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7), 71) }, false)), [])
  })

  it("considers only vsr slots: a fix or cut slot in the range is not a tear", () => {
    const overrides = { 7: torn(prepare(7)), 8: { decision: "fix", redundant: undefined, prepareOp: 8 } satisfies SlotState }
    assert.deepStrictEqual(tornSlots(input(cp, 70, overrides, false)), [7])
  })

  it("truncates at most writesMax slots: more candidates means corruption, none is truncated", () => {
    const many: Record<number, SlotState> = {}
    for (let slot = 7; slot < 7 + 5; slot++) many[slot] = torn(prepare(slot))
    assert.deepStrictEqual(tornSlots(input(cp, 70, many, false, 5)), [7, 8, 9, 10, 11])
    assert.deepStrictEqual(tornSlots(input(cp, 70, many, false, 4)), [])
  })

  it("truncates nothing when op_max is below the checkpoint or at/after prepare_max", () => {
    // op_max 62 < checkpoint 63: the head is not certain. (With op_max 63, slot 0 is truncated: below.)
    assert.deepStrictEqual(tornSlots(input(cp, 62, { 0: torn(prepare(0)) }, false)), [])
    // op_max = prepare_max: nothing can lie after it (beyond is the cut decision's business).
    assert.deepStrictEqual(tornSlots(input(cp, 127, { 0: torn(prepare(64)) }, false)), [])
    assert.deepStrictEqual(tornSlots(input(cp, 130, { 3: torn(prepare(67)) }, false)), [])
    // op_max = prepare_max − 1: the range is the single slot of prepare_max.
    assert.deepStrictEqual(tornSlots(input(cp, 126, { 63: torn(prepare(63)) }, false)), [63])
    assert.deepStrictEqual(tornSlots(input(cp, 126, { 62: torn(prepare(62)) }, false)), [])
  })

  it("stops the range before the checkpoint's own slot when op_max is the checkpoint", () => {
    // op_max = checkpoint = 63; prepare_max 127 shares slot 63 with the checkpoint op. The range
    // is (63, 126]: slot 0 (op 64, H = op 0) can be torn, slot 63 (the checkpoint's) is outside.
    assert.deepStrictEqual(tornSlots(input(cp, 63, { 0: torn(prepare(0)) }, false)), [0])
    assert.deepStrictEqual(tornSlots(input(cp, 63, { 0: torn(prepare(0)), 63: torn(prepare(63)) }, false)), [0])
    assert.deepStrictEqual(tornSlots(input(cp, 63, { 62: torn(prepare(62)) }, false)), [62])
  })

  it("handles a range that wraps around the ring", () => {
    // Checkpoint 95: prepare_max 159 (slot 31). op_max 100 (slot 36): the range is slots 37..63 and 0..31.
    const cp95 = 95
    // Slot 37 (op 101, H = op 37) and slot 10 (op 138, H = op 74) are both in the range.
    assert.deepStrictEqual(tornSlots(input(cp95, 100, { 37: torn(prepare(37)) }, false)), [37])
    assert.deepStrictEqual(tornSlots(input(cp95, 100, { 10: torn(prepare(74)) }, false)), [10])
    assert.deepStrictEqual(tornSlots(input(cp95, 100, { 10: torn(prepare(74)), 50: torn(prepare(50)) }, false)), [10, 50])
    // Slot 31 is prepare_max's (op 159): the last slot of the range.
    assert.deepStrictEqual(tornSlots(input(cp95, 100, { 31: torn(prepare(95)) }, false)), [31])
    // Slots 32..36 hold ops 96..100, up to the head: a fault there is outside the range.
    assert.deepStrictEqual(tornSlots(input(cp95, 100, { 34: torn(prepare(98)), 10: torn(prepare(74)) }, false)), [10])
  })

  it("never truncates a tear during the first lap of a fresh file (H still reserved)", () => {
    // Checkpoint 0, prepare_max 63: every slot after op_max still has its format-time reserved H.
    assert.deepStrictEqual(tornSlots(input(0, 5, { 6: torn(reserved(6)) }, false)), [])
  })
})

describe("journal recovery: torn appends, solo rule", () => {
  const cp = 63

  it("truncates the slot of op_max + 1 only", () => {
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7)) }, true)), [7])
    // A faulty slot elsewhere in the range means corruption: nothing.
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7)), 9: torn(prepare(9)) }, true)), [])
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 9: torn(prepare(9)) }, true)), [])
    // Faults before the head are not its business (the replica then refuses to start).
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 3: torn(prepare(67)), 7: torn(prepare(7)) }, true)), [7])
  })

  it("allows a reserved H (first lap of a fresh file)", () => {
    assert.deepStrictEqual(tornSlots(input(0, 5, { 6: torn(reserved(6)) }, true)), [6])
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(reserved(7)) }, true)), [7])
  })

  it("allows a readable prepare header naming op_max + 1 or H's own op, nothing else", () => {
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7), 71) }, true)), [7])
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7), 7) }, true)), [7])
    assert.deepStrictEqual(tornSlots(input(0, 5, { 6: torn(reserved(6), 6) }, true)), [6])
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7), 135) }, true)), [])
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(prepare(7), 72) }, true)), [])
  })

  it("refuses a corrupt H at the head", () => {
    assert.deepStrictEqual(tornSlots(input(cp, 70, { 7: torn(undefined) }, true)), [])
  })

  it("keeps the bounds of the cluster rule", () => {
    // op_max 62 below checkpoint 63: nothing; the same head with checkpoint 0 is truncated.
    assert.deepStrictEqual(tornSlots(input(cp, 62, { 63: torn(reserved(63)) }, true)), [])
    assert.deepStrictEqual(tornSlots(input(0, 62, { 63: torn(reserved(63)) }, true)), [63])
    // op_max at prepare_max: nothing.
    assert.deepStrictEqual(tornSlots(input(cp, 127, { 0: torn(prepare(64)) }, true)), [])
    // op_max = checkpoint: the head slot is op 64's.
    assert.deepStrictEqual(tornSlots(input(cp, 63, { 0: torn(prepare(0)) }, true)), [0])
  })
})

describe("journal recovery: tornSlots against an op-range oracle (property)", () => {
  /**
   * storage.md §4.5 restated over ops: the candidates are the slots of the ops in
   * (op_max, tail] (tail = prepare_max, or prepare_max − 1 when op_max is a non-root checkpoint);
   * every vsr slot among them must look torn, and there are at most writesMax of them.
   */
  function oracle(t: TornInput): Array<number> {
    if (t.opMax < t.opCheckpoint || t.opMax >= t.opPrepareMax) return []
    const tail = t.opCheckpoint > 0 && t.opMax === t.opCheckpoint ? t.opPrepareMax - 1 : t.opPrepareMax
    const candidates = new Set<number>()
    for (let op = t.opMax + 1; op <= tail; op++) candidates.add(op % t.slotCount)
    const vsr = [...candidates].filter((slot) => t.decisions[slot] === "vsr").sort((a, b) => a - b)
    const looksTorn = (slot: number) => {
      const h = t.redundant[slot]
      const p = t.prepareOp[slot]
      if (h === undefined) return false
      if (!t.solo) return !h.reserved && p === undefined
      return slot === (t.opMax + 1) % t.slotCount && (p === undefined || p === t.opMax + 1 || p === h.op)
    }
    if (!vsr.every(looksTorn) || vsr.length > t.writesMax) return []
    return vsr
  }

  it("agrees with the oracle on random rings", () => {
    const decisions: ReadonlyArray<Decision> = ["eql", "nil", "fix", "vsr", "cut"]
    const arbitrary = fc.record({
      checkpointIndex: fc.integer({ min: 0, max: 5 }),
      opMaxOffset: fc.integer({ min: -3, max: slotCount + 3 }),
      solo: fc.boolean(),
      writesMax: fc.integer({ min: 1, max: 4 }),
      // A few faulty slots (often near the head) on a ring whose other slots are healthy.
      faults: fc.array(fc.record({
        at: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: -8, max: slotCount })),
        decision: fc.constantFrom(...decisions, "vsr", "vsr", "vsr"),
        h: fc.constantFrom("lap", "lap", "reserved", "corrupt"),
        p: fc.constantFrom("none", "none", "next", "own", "other")
      }), { maxLength: 5 })
    })
    let nonEmpty = 0
    fc.assert(fc.property(arbitrary, (a) => {
      const checkpoint = a.checkpointIndex === 0 ? 0 : a.checkpointIndex * testConfig.checkpointOps - 1
      const opMax = Math.max(0, checkpoint + a.opMaxOffset)
      const slots = Array.from({ length: slotCount }, () => ({ decision: "eql" as Decision, h: "lap", p: "none" }))
      for (const f of a.faults) slots[(((opMax + f.at) % slotCount) + slotCount) % slotCount] = f
      const t: TornInput = {
        slotCount, opMax, opCheckpoint: checkpoint, opPrepareMax: prepareMax(testConfig, checkpoint), writesMax: a.writesMax, solo: a.solo,
        decisions: slots.map((s) => s.decision),
        redundant: slots.map((s, slot) => {
          if (s.h === "corrupt") return undefined
          // The newest op of this slot at most min(op_max - 1, checkpoint): a header of a past lap.
          let op = slot
          if (op > Math.min(opMax - 1, checkpoint)) return reserved(slot)
          while (op + slotCount <= Math.min(opMax - 1, checkpoint)) op += slotCount
          return s.h === "reserved" ? reserved(slot) : prepare(op)
        }),
        prepareOp: slots.map((s, slot) => s.p === "none" ? undefined : s.p === "next" ? opMax + 1 : s.p === "own" ? slot : slot + 7 * slotCount)
      }
      const expected = oracle(t)
      if (expected.length > 0) nonEmpty++
      assert.deepStrictEqual(tornSlots(t), expected)
    }), { numRuns: 3000 })
    // The generator reaches truncations, not only refusals (about 4% of the rings).
    assert.isAbove(nonEmpty, 40)
  })
})

function describeHeader(h: SlotHeader | undefined): string {
  return h === undefined ? "bad" : h.reserved ? "reserved" : `op ${h.op} view ${h.view}`
}
