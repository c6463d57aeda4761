/**
 * The superblock (storage.md §3): the codec of one copy, the quorum rules of §3.4
 * (`selectQuorum`), the repair order of §3.5 (`repairOrder`), a crash/fault model of the write
 * protocol of §3.3 checked exhaustively for one update and by fuzzing for many, and the I/O
 * functions on the simulated disk (write, crash after any copy write, open, repair).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import fc from "fast-check"
import { SimulatedDisk } from "../../src/layers/disk_sim.ts"
import { u128ToBytes } from "../../src/protocol/build.ts"
import { checksumInto } from "../../src/protocol/checksum_native.ts"
import { headerSize, releaseScarab } from "../../src/protocol/header.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"
import { type CheckpointState, setU64, trailerEmpty } from "../../src/storage/checkpoint_state.ts"
import { layoutOf, testConfig } from "../../src/storage/layout.ts"
import { sectorSize, Storage, StorageFatalError } from "../../src/storage/storage.ts"
import {
  checkpointOp, checksumOf, decodeSuperblockCopy, encodeSuperblockCopy, membersMax, nextSuperblock, openSuperblock, peekSuperblock,
  quorumOpen, quorumVerify, replicaIdOf, sealSuperblock, type Superblock, superblockCopySize, SuperblockError,
  superblockInvalid, writeSuperblock
} from "../../src/storage/superblock.ts"
import { repairOrder, selectQuorum } from "../../src/storage/superblock_quorum.ts"

const layout = layoutOf(testConfig)
const copies = layout.config.superblockCopies
const cluster = 7n
const clusterBytes = u128ToBytes(cluster)
const members = Array.from({ length: membersMax }, (_, i) => (i < 3 ? replicaIdOf(cluster, i) : 0n))

/** A checkpoint header naming `op` (only its op field matters to the superblock). */
function checkpointHeader(op: number): Uint8Array {
  const header = rootPrepare(clusterBytes)
  setU64(new DataView(header.buffer), 224, op)
  return header
}

function checkpointState(op: number): CheckpointState {
  return {
    header: checkpointHeader(op), snapshot: trailerEmpty, freeSetAcquired: trailerEmpty, freeSetReleased: trailerEmpty, clientSessions: trailerEmpty,
    parentCheckpointId: new Uint8Array(16), grandparentCheckpointId: new Uint8Array(16), storageSize: layout.dataFileSizeMin, release: releaseScarab
  }
}

const genesis: Superblock = sealSuperblock({
  sequence: 1, cluster, parent: new Uint8Array(16), releaseFormat: releaseScarab, profile: "test",
  vsrState: {
    checkpoint: checkpointState(0), replicaId: members[1]!, members, commitMax: 0, syncOpMin: 0, syncOpMax: 0, logView: 0, view: 0, replicaCount: 3
  },
  viewHeaders: [checkpointHeader(0)]
})

/** The next version: a view change (view and commit_max advance), different bytes every time. */
const bump = (sb: Superblock, views = 1): Superblock =>
  nextSuperblock(sb, { vsrState: { ...sb.vsrState, view: sb.vsrState.view + views, commitMax: sb.vsrState.commitMax + 3 } })

function chain(length: number): Array<Superblock> {
  const versions = [genesis]
  while (versions.length < length) versions.push(bump(versions[versions.length - 1]!))
  return versions
}

function bytesOf(sb: Superblock, copy: number): Uint8Array {
  const bytes = new Uint8Array(superblockCopySize)
  encodeSuperblockCopy(sb, copy, bytes)
  return bytes
}

/** Recomputes a copy's checksum after the test edited its fields (an adversarial but valid copy). */
function reseal(bytes: Uint8Array): Uint8Array {
  checksumInto(bytes.subarray(34), bytes, 0)
  return bytes
}

type Disk = Array<Uint8Array | undefined>
const decode = (disk: ReadonlyArray<Uint8Array | undefined>) => disk.map((b) => (b === undefined ? undefined : decodeSuperblockCopy(b)))
const healthy = (sb: Superblock): Disk => Array.from({ length: copies }, (_, k) => bytesOf(sb, k))

/** The module's monotonicity rule, restated, for the pure selectQuorum tests (open uses its own). */
function monotonic(older: Superblock, newer: Superblock): string | undefined {
  const a = older.vsrState
  const b = newer.vsrState
  if (b.view < a.view || b.logView < a.logView) return "view went backwards"
  if (b.commitMax < a.commitMax) return "commit_max went backwards"
  if (checkpointOp(b.checkpoint) < checkpointOp(a.checkpoint)) return "checkpoint went backwards"
  return undefined
}

const open = (disk: ReadonlyArray<Uint8Array | undefined>, threshold = quorumOpen) => selectQuorum(decode(disk), threshold, monotonic)
const same = (a: Superblock, b: Superblock) => Buffer.from(a.checksum).equals(Buffer.from(b.checksum))
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")

/** Selected version's sequence, or the failure reason. */
function outcome(disk: ReadonlyArray<Uint8Array | undefined>): number | string {
  const result = open(disk)
  return result._tag === "Success" ? result.value.sequence : result.reason
}

// --- the codec ---------------------------------------------------------------------------------

describe("superblock copy codec (§3.1)", () => {
  // A superblock exercising every field: a non-root checkpoint with trailers, sync ops, views,
  // several view headers.
  const rich: Superblock = (() => {
    const headers = [checkpointHeader(95), checkpointHeader(94), checkpointHeader(93)]
    const trailer = { checksum: new Uint8Array(16).fill(3), lastBlockAddress: 17, lastBlockChecksum: new Uint8Array(16).fill(4), size: 12345 }
    return sealSuperblock({
      sequence: 42, cluster, parent: new Uint8Array(16).fill(9), releaseFormat: releaseScarab, profile: "test",
      vsrState: {
        checkpoint: { ...checkpointState(95), snapshot: trailer, freeSetAcquired: { ...trailer, lastBlockAddress: 18 }, storageSize: layout.dataFileSizeMin + 65536 * 20,
          parentCheckpointId: new Uint8Array(16).fill(5), grandparentCheckpointId: new Uint8Array(16).fill(6) },
        replicaId: members[2]!, members, commitMax: 120, syncOpMin: 10, syncOpMax: 20, logView: 4, view: 6, replicaCount: 3
      },
      viewHeaders: headers
    })
  })()

  // Proves encode/decode is lossless for every field and that the copy index is the only
  // difference between the copies of one version.
  it("round-trips a sealed superblock through every copy index", () => {
    for (let copy = 0; copy < copies; copy++) {
      const bytes = bytesOf(rich, copy)
      const decoded = decodeSuperblockCopy(bytes)
      assert.isDefined(decoded)
      assert.strictEqual(decoded!.copy, copy)
      assert.strictEqual(decoded!.sequence, 42)
      assert.strictEqual(hex(decoded!.checksum), hex(rich.checksum))
      assert.deepStrictEqual(decoded!.value, rich)
      // Re-encoding the decoded value gives the same bytes.
      assert.strictEqual(hex(bytesOf(decoded!.value, copy)), hex(bytes))
      // All copies share one checksum: they differ only in the copy field (bytes 32..33).
      const first = bytesOf(rich, 0)
      const differing = [...bytes.keys()].filter((i) => bytes[i] !== first[i])
      assert.isTrue(differing.every((i) => i === 32 || i === 33))
    }
    assert.strictEqual(hex(checksumOf(rich)), hex(rich.checksum))
  })

  // Proves the checksum covers every byte of the 8 KiB copy except the copy field: any single
  // flipped byte elsewhere (checksum, its padding, the header sector, the view headers sector,
  // the zero padding) makes the copy undecodable, while a flipped copy field still decodes (it is
  // outside the checksum so that all copies of a version share one) and reports the new index.
  it("a flipped byte anywhere but the copy field makes the copy undecodable", () => {
    const bytes = bytesOf(rich, 1)
    for (let i = 0; i < superblockCopySize; i++) {
      const original = bytes[i]!
      bytes[i] = original ^ 0x10
      const decoded = decodeSuperblockCopy(bytes)
      if (i === 32 || i === 33) {
        assert.isDefined(decoded, `byte ${i}`)
        assert.strictEqual(decoded!.copy, i === 32 ? 1 ^ 0x10 : 1 + 0x1000)
        assert.strictEqual(hex(decoded!.checksum), hex(rich.checksum))
      } else {
        assert.isUndefined(decoded, `flipped byte ${i} still decodes`)
      }
      bytes[i] = original
    }
    assert.isDefined(decodeSuperblockCopy(bytes))
  })

  // Proves decode checks the format, not only the checksum: a copy whose checksum is valid but
  // whose fields break the rules of §3.1 (a corrupt-but-resealed or foreign-format copy) is
  // rejected. Each edit is applied to a fresh copy and resealed.
  it("rejects a correctly checksummed copy with invalid fields", () => {
    const edits: Record<string, (b: Uint8Array, v: DataView) => void> = {
      "format version 2": (_, v) => v.setUint16(34, 2, true),
      "sequence 0": (_, v) => v.setBigUint64(40, 0n, true),
      "parent padding": (b) => { b[64 + 20] = 1 },
      "flags": (_, v) => v.setBigUint64(96 + 2048, 1n, true),
      "view headers count 12": (_, v) => v.setUint32(96 + 2048 + 8, 12, true),
      "view headers count 0": (_, v) => v.setUint32(96 + 2048 + 8, 0, true),
      "a byte after the last view header": (b) => { b[sectorSize + 3 * headerSize] = 1 },
      "profile 9": (b) => { b[96 + 2048 + 12] = 9 },
      "reserved header bytes": (b) => { b[96 + 2048 + 13] = 1 },
      "log_view > view": (_, v) => v.setUint32(96 + 1024 + 16 + 12 * 16 + 28, 7, true),
      "checkpoint op > commit_max": (_, v) => v.setBigUint64(96 + 1024 + 16 + 12 * 16, 90n, true),
      "sync_op_min > sync_op_max": (_, v) => v.setBigUint64(96 + 1024 + 16 + 12 * 16 + 8, 21n, true),
      "sync_view non-zero": (_, v) => v.setUint32(96 + 1024 + 16 + 12 * 16 + 24, 1, true),
      "replica_count 0": (b) => { b[96 + 1024 + 16 + 12 * 16 + 36] = 0 },
      "replica id not a member": (b) => { b[96 + 1024] ^= 0xff },
      "reserved vsr_state bytes": (b) => { b[96 + 2047] = 1 },
      "checkpoint state reserved bytes": (b) => { b[96 + 1023] = 1 },
      "storage_size below the zones": (_, v) => v.setBigUint64(96 + 640, 4096n, true),
      "non-empty trailer without a block": (_, v) => v.setBigUint64(96 + 256 + 64, 0n, true)
    }
    // The unedited, resealed copy decodes: the edits, not the resealing, cause the rejections.
    assert.isDefined(decodeSuperblockCopy(reseal(bytesOf(rich, 0))))
    for (const [name, edit] of Object.entries(edits)) {
      const bytes = bytesOf(rich, 0)
      edit(bytes, new DataView(bytes.buffer))
      assert.isUndefined(decodeSuperblockCopy(reseal(bytes)), name)
    }
  })

  it("sealSuperblock refuses invalid fields; superblockInvalid names them", () => {
    const { checksum: _, ...fields } = genesis
    assert.isUndefined(superblockInvalid(fields))
    assert.strictEqual(superblockInvalid({ ...fields, vsrState: { ...fields.vsrState, logView: 1 } }), "log_view > view")
    assert.strictEqual(superblockInvalid({ ...fields, sequence: 0 }), "sequence < 1")
    assert.strictEqual(superblockInvalid({ ...fields, viewHeaders: [] }), "view headers count not in 1..11")
    assert.throws(() => sealSuperblock({ ...fields, vsrState: { ...fields.vsrState, checkpoint: checkpointState(5) } }), /checkpoint op > commit_max/)
  })

  it("nextSuperblock chains to its predecessor", () => {
    const next = bump(genesis)
    assert.strictEqual(next.sequence, 2)
    assert.strictEqual(hex(next.parent), hex(genesis.checksum))
    assert.notStrictEqual(hex(next.checksum), hex(genesis.checksum))
    assert.strictEqual(hex(checksumOf(next)), hex(next.checksum))
    // Without a change the content is the same but the sequence and parent still differ.
    assert.notStrictEqual(hex(nextSuperblock(genesis, {}).checksum), hex(genesis.checksum))
  })
})

// --- quorum selection --------------------------------------------------------------------------

describe("selectQuorum (§3.4)", () => {
  const [o, n] = [genesis, bump(genesis)]
  const N = (k: number) => bytesOf(n, k)
  const O = (k: number) => bytesOf(o, k)
  const x = undefined

  // The table of §3.4, plus its variants with the damaged copy elsewhere.
  it("the crash states of the design's table", () => {
    assert.strictEqual(outcome([N(0), O(1), O(2), O(3)]), 1) // N has 1 copy < 2
    assert.strictEqual(outcome([N(0), N(1), O(2), O(3)]), 2) // both valid, N newer and connected
    assert.strictEqual(outcome([N(0), x, O(2), O(3)]), 1)
    assert.strictEqual(outcome([N(0), N(1), x, O(3)]), 2)
    assert.match(String(outcome([x, x, x, O(3)])), /^quorum lost/)
    assert.match(String(outcome([x, x, x, x])), /^not found/)
    assert.strictEqual(outcome([N(0), N(1), N(2), O(3)]), 2)
    assert.strictEqual(outcome([N(0), N(1), N(2), N(3)]), 2)
  })

  it("thresholds: open needs 2 copies, verify 3; they sum to copies + 1", () => {
    assert.strictEqual(quorumOpen + quorumVerify, copies + 1)
    assert.strictEqual(open([N(0), N(1), O(2), O(3)], quorumVerify)._tag, "Failure")
    const verified = open([N(0), N(1), N(2), O(3)], quorumVerify)
    assert.isTrue(verified._tag === "Success" && same(verified.value, n))
  })

  // A misdirected read or write can show one copy twice; it must count once, or a lone copy
  // of a new version could fake a quorum.
  it("counts a copy index once however many slots show it", () => {
    assert.strictEqual(outcome([N(0), N(0), O(2), O(3)]), 1)
    assert.strictEqual(outcome([N(1), N(1), N(1), O(3)]), "quorum lost: no version is held by 2 of 4 copies")
    assert.strictEqual(outcome([N(0), N(2), O(2), O(3)]), 2)
  })

  // The copy field is outside the checksum: a corrupt one is assumed to be at home.
  it("assumes an out-of-range copy index sits in its home slot", () => {
    const bad = N(1)
    new DataView(bad.buffer).setUint16(32, 9, true)
    assert.strictEqual(outcome([N(0), bad, O(2), O(3)]), 2)
    const alsoBad = N(0)
    new DataView(alsoBad.buffer).setUint16(32, 200, true)
    assert.strictEqual(outcome([alsoBad, O(1), O(2), O(3)]), 1)
  })

  it("fork: two versions of one sequence", () => {
    const fork = nextSuperblock(o, { vsrState: { ...o.vsrState, view: 5 } })
    assert.strictEqual(fork.sequence, n.sequence)
    assert.match(String(outcome([N(0), N(1), bytesOf(fork, 2), bytesOf(fork, 3)])), /^fork/)
    // A lone copy of the other fork is still a fork beside the selected version.
    assert.match(String(outcome([N(0), N(1), N(2), bytesOf(fork, 3)])), /^fork/)
  })

  it("parent skipped: a version two ahead of the selected one", () => {
    const [, , v3, v4] = chain(4)
    const v2 = n
    // Three copies of 2 and one of 4: version 3 vanished, so 2 may be stale while 4 lacks a quorum.
    assert.match(String(outcome([bytesOf(v4!, 0), bytesOf(v2, 1), bytesOf(v2, 2), bytesOf(v2, 3)])), /^parent skipped/)
    // One of 3 beside 2 is a normal crash state.
    assert.strictEqual(outcome([bytesOf(v3!, 0), bytesOf(v2, 1), bytesOf(v2, 2), bytesOf(v2, 3)]), 2)
    // An older version beside the selected one is not checked (grandparents may linger).
    assert.strictEqual(outcome([bytesOf(v3!, 0), bytesOf(v3!, 1), bytesOf(v3!, 2), O(3)]), 3)
  })

  it("parent not connected: the newer version does not name the older as parent", () => {
    const { checksum: _, ...fields } = bump(o)
    const stranger = sealSuperblock({ ...fields, parent: new Uint8Array(16).fill(1) })
    assert.match(String(outcome([bytesOf(stranger, 0), bytesOf(stranger, 1), O(2), O(3)])), /^parent not connected/)
    // Without a surviving copy of the parent there is nothing to check against.
    assert.strictEqual(outcome([bytesOf(stranger, 0), bytesOf(stranger, 1), x, x]), 2)
  })

  it("regression: a newer version whose VSR state goes backwards", () => {
    const ahead = bump(o, 5)
    const behind = nextSuperblock(ahead, { vsrState: { ...ahead.vsrState, view: 2 } })
    assert.match(String(outcome([bytesOf(behind, 0), bytesOf(behind, 1), bytesOf(ahead, 2), bytesOf(ahead, 3)])), /regresses.*view went backwards/)
  })

  it("ignores versions of another replica or cluster when checking the chain", () => {
    const { checksum: _, ...fields } = n
    const other = sealSuperblock({ ...fields, vsrState: { ...n.vsrState, replicaId: members[0]! } })
    assert.strictEqual(other.sequence, n.sequence)
    // Same sequence, different checksum, but another replica's: not a fork.
    assert.strictEqual(outcome([N(0), N(1), N(2), bytesOf(other, 3)]), 2)
  })

  it("prefers a valid group over a newer invalid one, then the higher sequence", () => {
    const result = open([N(0), O(1), O(2), O(3)])
    assert.isTrue(result._tag === "Success" && same(result.value, o))
    const both = open([N(0), N(1), O(2), O(3)])
    assert.isTrue(both._tag === "Success" && same(both.value, n))
  })
})

// --- repair order ------------------------------------------------------------------------------

describe("repairOrder (§3.5)", () => {
  const [o, w] = [genesis, bump(genesis)]
  const W = (k: number) => bytesOf(w, k)
  const O = (k: number) => bytesOf(o, k)
  const order = (disk: Disk) => repairOrder(decode(disk), w.checksum)

  it("rewrites nothing when every slot holds its own copy", () => {
    assert.deepStrictEqual(order([W(0), W(1), W(2), W(3)]), [])
  })

  it("lost copies first, then misdirected slots, then misplaced duplicates; ascending within each", () => {
    // Slot 2 lost (copy 2 held nowhere), slot 0 misdirected (its copy 0 is in slot 1), slot 1 a duplicate.
    assert.deepStrictEqual(order([O(0), W(0), undefined, W(3)]), [2, 0, 1])
    assert.deepStrictEqual(order([undefined, W(1), undefined, O(3)]), [0, 2, 3])
    // Slot 3 holds copy 1 (a duplicate of slot 1's), slot 1 is fine.
    assert.deepStrictEqual(order([undefined, W(1), W(2), W(1)]), [0, 3])
    // Two misdirected slots.
    assert.deepStrictEqual(order([O(0), O(1), W(0), W(1)]), [0, 1, 2, 3])
  })

  it("a copy of another version in a slot counts as nothing valid", () => {
    assert.deepStrictEqual(order([O(0), W(1), W(2), W(3)]), [0])
  })

  it("rewrites swapped copies and a corrupt copy index", () => {
    assert.deepStrictEqual(order([W(1), W(0), W(2), W(3)]), [0, 1])
    const bad = W(2)
    new DataView(bad.buffer).setUint16(32, 9, true)
    assert.deepStrictEqual(order([W(0), W(1), bad, W(3)]), [2])
  })

  // Found by the property below: slot 0 holds the only copy 1, slot 1 (copy 1's home) holds a
  // duplicate of copy 3. Rewriting slot 0 before slot 1 and tearing it would leave copy 3 alone:
  // quorum lost. Slot 0 must wait until copy 1 is also at home.
  it("never rewrites the only holder of a copy index before that copy is at home", () => {
    const disk: Disk = [W(1), W(3), W(3), O(0)]
    const repairs = order(disk)
    assert.deepStrictEqual(repairs, [3, 1, 0, 2])
    const current = [...disk]
    for (const slot of repairs) {
      const torn = [...current]
      torn[slot] = undefined
      assert.strictEqual(outcome(torn), 2, `torn at slot ${slot}`)
      current[slot] = W(slot)
    }
  })

  // Property (the reason for the order): from any state where open selects W, rewriting the
  // slots in repairOrder's order and tearing any one of those writes (a crash) still selects W:
  // the older version never regains a quorum. After all the writes, every slot holds its copy.
  it("a torn repair write never lets an older version win (property)", () => {
    const versions = chain(3)
    const [older, parent, working] = versions as [Superblock, Superblock, Superblock]
    const slotArbitrary = fc.oneof(
      fc.constant(undefined),
      fc.record({ version: fc.constantFrom(0, 1, 2, 2, 2), copy: fc.integer({ min: 0, max: copies - 1 }) })
    )
    let checked = 0
    fc.assert(fc.property(fc.array(slotArbitrary, { minLength: copies, maxLength: copies }), (slots) => {
      const disk: Disk = slots.map((s) => (s === undefined ? undefined : bytesOf([older, parent, working][s.version]!, s.copy)))
      const selected = open(disk)
      if (selected._tag !== "Success" || !same(selected.value, working)) return
      checked++
      const repairs = repairOrder(decode(disk), working.checksum)
      // Exactly the slots that do not hold their own copy of W are rewritten.
      const misplaced = [...disk.keys()].filter((k) => { const c = decode(disk)[k]; return c === undefined || !same(c.value, working) || c.copy !== k })
      assert.deepStrictEqual([...repairs].sort(), misplaced)
      const current = [...disk]
      for (const slot of repairs) {
        const torn = [...current]
        torn[slot] = undefined
        const afterTear = open(torn)
        assert.isTrue(afterTear._tag === "Success" && same(afterTear.value, working),
          `tearing slot ${slot} of ${JSON.stringify(slots)} (order ${repairs}) selects ${afterTear._tag === "Success" ? afterTear.value.sequence : afterTear.reason}`)
        current[slot] = bytesOf(working, slot)
      }
      assert.deepStrictEqual(repairOrder(decode(current), working.checksum), [])
    }), { numRuns: 3000 })
    assert.isAbove(checked, 300)
  })
})

// --- the write protocol under crashes and faults (a pure model over encoded copies) ---------------

type Fault =
  | { readonly kind: "none" }
  | { readonly kind: "corrupt"; readonly slot: number }
  | { readonly kind: "misdirectedRead"; readonly slot: number; readonly from: number }
  | { readonly kind: "misdirectedWrite"; readonly copy: number; readonly to: number }

/** Writes `staging` copy after copy (§3.3) until `crashAfter` copies landed; a torn write leaves garbage. */
function update(disk: Disk, staging: Superblock, crashAfter: number, torn: boolean, fault: Fault): void {
  for (let copy = 0; copy < copies; copy++) {
    if (copy === crashAfter) {
      if (torn) disk[copy] = undefined
      return
    }
    const to = fault.kind === "misdirectedWrite" && fault.copy === copy ? fault.to : copy
    disk[to] = bytesOf(staging, copy)
  }
}

/** What open reads under a read fault. */
function readAt(disk: Disk, fault: Fault): Disk {
  const view = [...disk]
  if (fault.kind === "corrupt") view[fault.slot] = undefined
  if (fault.kind === "misdirectedRead") view[fault.slot] = disk[fault.from]
  return view
}

function allFaults(crashAfter: number): Array<Fault> {
  const faults: Array<Fault> = [{ kind: "none" }]
  for (let slot = 0; slot < copies; slot++) {
    faults.push({ kind: "corrupt", slot })
    for (let other = 0; other < copies; other++) {
      if (other === slot) continue
      faults.push({ kind: "misdirectedRead", slot, from: other })
      if (slot < Math.min(crashAfter, copies)) faults.push({ kind: "misdirectedWrite", copy: slot, to: other })
    }
  }
  return faults
}

/** Distinct copy indexes of `sb` that the disk holds: 4 minus the damage a later fault adds to. */
const distinctCopies = (disk: Disk, sb: Superblock) =>
  new Set(decode(disk).filter((c) => c !== undefined && same(c.value, sb)).map((c) => c!.copy)).size

describe("superblock write protocol under crashes (§3.3, §3.4, §3.5)", () => {
  // Exhaustive over one update O → N: a crash after 0..4 copy writes, the interrupted write torn
  // or not, and at most one more fault (a corrupt or misdirected read at open, or a misdirected
  // copy write). Proves: open selects O or N, never anything else; N whenever the verify quorum
  // had accepted N; with at most one fault in total it never fails (and a failure is only ever
  // "quorum lost"); the repairs then leave four good copies, and a crash tearing any one repair
  // write still selects the same version.
  it("one update, every crash point and single extra fault (exhaustive)", () => {
    const [o, n] = [genesis, bump(genesis)]
    let scenarios = 0
    let selectedNew = 0
    let lost = 0
    for (let crashAfter = 0; crashAfter <= copies; crashAfter++) {
      for (const torn of crashAfter < copies ? [false, true] : [false]) {
        for (const fault of allFaults(crashAfter)) {
          scenarios++
          const where = `crash after ${crashAfter} torn ${torn} fault ${JSON.stringify(fault)}`
          const disk = healthy(o)
          update(disk, n, crashAfter, torn, fault)
          const verify = open(disk, quorumVerify)
          const verified = verify._tag === "Success" && same(verify.value, n)
          const view = readAt(disk, fault)
          const result = open(view)
          const faults = (torn ? 1 : 0) + (fault.kind === "none" ? 0 : 1)
          if (result._tag === "Failure") {
            assert.isAtLeast(faults, 2, `${where}: ${result.reason}`)
            assert.match(result.reason, /^quorum lost/, where)
            assert.isFalse(verified, `${where}: a verified version was lost`)
            lost++
            continue
          }
          const working = result.value
          assert.isTrue(same(working, o) || same(working, n), where)
          if (verified) assert.isTrue(same(working, n), `${where}: the verified version was not selected`)
          if (same(working, n)) selectedNew++

          // Repair as open would (from what it read), tearing each repair write in turn.
          const repairs = repairOrder(decode(view), working.checksum)
          for (let tearAt = 0; tearAt <= repairs.length; tearAt++) {
            const repaired = [...disk]
            repairs.slice(0, tearAt).forEach((slot) => { repaired[slot] = bytesOf(working, slot) })
            if (tearAt < repairs.length) repaired[repairs[tearAt]!] = undefined
            const again = open(repaired)
            assert.isTrue(again._tag === "Success" && same(again.value, working), `${where}: repair torn at ${tearAt} of ${repairs}`)
            if (tearAt === repairs.length && faults <= 1) {
              // With at most one fault, the repaired disk is whole again (four good copies).
              assert.strictEqual(distinctCopies(repaired, working), copies, where)
              assert.deepStrictEqual(repairOrder(decode(repaired), working.checksum), [], where)
            }
          }
        }
      }
    }
    // The enumeration covered both outcomes and the double-fault losses.
    assert.isAbove(scenarios, 200)
    assert.isAbove(selectedNew, 50)
    assert.isAbove(lost, 5)
  })

  // Fuzz over many updates: each cycle writes the next version and may crash after any copy
  // write (torn or not), with at most one more fault in the cycle (a misdirected copy write, a
  // corrupt or misdirected read at open, or a torn repair write). After a crash the replica
  // opens (threshold 2), repairs, and continues from the selected version. Proves: open selects
  // the last verified version or the one being written, never an older one; and it never fails
  // when the cycle began with four good copies and suffered at most one fault.
  it("many updates with crashes and single faults (fuzz)", () => {
    const faultArbitrary: fc.Arbitrary<Fault> = fc.oneof(
      { weight: 3, arbitrary: fc.constant({ kind: "none" } as const) },
      fc.record({ kind: fc.constant("corrupt" as const), slot: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant("misdirectedRead" as const), slot: fc.integer({ min: 0, max: 3 }), from: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant("misdirectedWrite" as const), copy: fc.integer({ min: 0, max: 3 }), to: fc.integer({ min: 0, max: 3 }) })
    )
    const cycleArbitrary = fc.record({
      crashAfter: fc.oneof(fc.constant(copies), fc.integer({ min: 0, max: copies })),
      torn: fc.boolean(),
      fault: faultArbitrary,
      repairTear: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined })
    })
    let crashes = 0
    let newSelected = 0
    fc.assert(fc.property(fc.array(cycleArbitrary, { minLength: 1, maxLength: 12 }), (cycles) => {
      let working = genesis
      let disk = healthy(genesis)
      for (const [i, c] of cycles.entries()) {
        const staging = bump(working, 1 + (i % 3))
        const damageBefore = copies - distinctCopies(disk, working)
        const torn = c.torn && c.crashAfter < copies
        const writeFault = c.fault.kind === "misdirectedWrite" && c.fault.to !== c.fault.copy && c.fault.copy < c.crashAfter ? c.fault : { kind: "none" as const }
        update(disk, staging, c.crashAfter, torn, writeFault)
        const verify = open(disk, quorumVerify)
        if (c.crashAfter === copies && verify._tag === "Success" && same(verify.value, staging)) {
          // The update completed and was verified: staging is the working version, no restart.
          working = staging
          continue
        }
        // A crash (or the verify panic): restart, open under at most one read fault, repair.
        crashes++
        const readFault = c.fault.kind === "corrupt" || (c.fault.kind === "misdirectedRead" && c.fault.from !== c.fault.slot) ? c.fault : { kind: "none" as const }
        const view = readAt(disk, readFault)
        const result = open(view)
        const faults = (torn ? 1 : 0) + (writeFault.kind === "none" ? 0 : 1) + (readFault.kind === "none" ? 0 : 1)
        if (result._tag === "Failure") {
          assert.match(result.reason, /^quorum lost/)
          assert.isAbove(damageBefore + faults, 1, `cycle ${i}: ${result.reason} with ${damageBefore} damage and ${faults} faults`)
          return
        }
        assert.isTrue(same(result.value, working) || same(result.value, staging),
          `cycle ${i}: selected sequence ${result.value.sequence}, verified ${working.sequence}, writing ${staging.sequence}`)
        if (same(result.value, staging)) newSelected++
        working = result.value
        const repairs = repairOrder(decode(view), working.checksum)
        for (const [j, slot] of repairs.entries()) {
          if (c.repairTear === j && faults === 0) {
            // A crash tears this repair write; the next open repairs again (no more faults).
            disk[slot] = undefined
            const reopened = open(disk)
            assert.isTrue(reopened._tag === "Success" && same(reopened.value, working), `cycle ${i}: torn repair of slot ${slot}`)
            for (const k of repairOrder(decode(disk), working.checksum)) disk[k] = bytesOf(working, k)
            break
          }
          disk[slot] = bytesOf(working, slot)
        }
        disk = [...disk]
      }
    }), { numRuns: 400 })
    assert.isAbove(crashes, 200)
    assert.isAbove(newSelected, 50)
  })
})

// --- I/O on the simulated disk -------------------------------------------------------------------

/** A Storage that lets `writes` writes through, then crashes on the next one (tearing it, if asked). */
function crashingAfter(storage: Storage["Service"], disk: SimulatedDisk, writes: number, tear: "none" | "nothing" | "first sector"): Storage["Service"] {
  let count = 0
  return {
    ...storage,
    write: (zone, offset, buffer) => Effect.suspend(() => {
      if (count++ < writes) return storage.write(zone, offset, buffer)
      const crash = Effect.fail(new StorageFatalError({ path: storage.path, operation: "write", offset, code: "CRASH", reason: "simulated crash" }))
      const position = zone.start + offset
      if (tear === "nothing") return Effect.andThen(Effect.sync(() => disk.corruptSector(position)), crash)
      if (tear === "first sector") {
        // The first sector landed, the second is garbage: the storage.md §8.1 tear.
        return storage.write(zone, offset, buffer.subarray(0, sectorSize)).pipe(Effect.andThen(Effect.sync(() => disk.corruptSector(position + sectorSize))), Effect.andThen(crash))
      }
      return crash
    })
  }
}

const withStorage = <A, E>(disk: SimulatedDisk, body: (storage: Storage["Service"]) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    return yield* body(yield* Storage)
  }).pipe(Effect.provide(disk.layer()))

const newDisk = (seed: number) => new SimulatedDisk({ seed, sizeBytes: layout.superblock.sizeBytes })
const copyOffset = (k: number) => layout.superblock.start + k * layout.config.superblockCopySize

describe("superblock I/O on the simulated disk", () => {
  it.effect("write then open: the same version, nothing to repair; next versions chain", () => Effect.gen(function* () {
    const disk = newDisk(1)
    const [v1, v2, v3] = chain(3) as [Superblock, Superblock, Superblock]
    yield* withStorage(disk, (storage) => Effect.gen(function* () {
      yield* writeSuperblock(storage, layout, undefined, v1)
      yield* writeSuperblock(storage, layout, v1, v2)
      yield* writeSuperblock(storage, layout, v2, v3)
    }))
    disk.crash()
    const opened = yield* withStorage(disk, (storage) => openSuperblock(storage, layout))
    assert.strictEqual(hex(opened.working.checksum), hex(v3.checksum))
    assert.deepStrictEqual(opened.working, v3)
    assert.deepStrictEqual(opened.repairedCopies, [])
    const peeked = yield* withStorage(disk, (storage) => peekSuperblock(storage))
    assert.strictEqual(peeked?.sequence, 3)
  }))

  it.effect("a fresh disk has no superblock: open refuses with 'not found'", () => Effect.gen(function* () {
    const disk = newDisk(2)
    const error = yield* Effect.flip(withStorage(disk, (storage) => openSuperblock(storage, layout)))
    assert.instanceOf(error, SuperblockError)
    assert.match((error as SuperblockError).reason, /^not found/)
    assert.isUndefined(yield* withStorage(disk, (storage) => peekSuperblock(storage)))
  }))

  // Proves the write protocol's crash safety end to end: a crash after each number of copy
  // writes (with the interrupted write lost, torn to nothing, or half landed), then open: the
  // old version while the new one has fewer than 2 good copies, else the new one; open repairs
  // the damaged copies (exactly those) and a second open finds nothing to repair.
  it.effect("a crash after any copy write: open selects old or new and repairs the rest", () => Effect.gen(function* () {
    const [v1, v2] = chain(2) as [Superblock, Superblock]
    let seed = 10
    for (let written = 0; written <= copies; written++) {
      for (const tear of written < copies ? (["none", "nothing", "first sector"] as const) : (["none"] as const)) {
        const disk = newDisk(seed++)
        yield* withStorage(disk, (storage) => writeSuperblock(storage, layout, undefined, v1))
        const exit = yield* Effect.exit(withStorage(disk, (storage) => writeSuperblock(crashingAfter(storage, disk, written, tear), layout, v1, v2)))
        assert.strictEqual(Exit.isSuccess(exit), written === copies, `${written} ${tear}`)
        disk.crash()
        const opened = yield* withStorage(disk, (storage) => openSuperblock(storage, layout))
        const expected = written >= quorumOpen ? v2 : v1
        assert.strictEqual(opened.working.sequence, expected.sequence, `${written} ${tear}`)
        // Damaged = every slot not holding the selected version: the new copies when the old
        // one wins, the old and torn copies when the new one does.
        const damaged = written >= quorumOpen
          ? Array.from({ length: copies - written }, (_, i) => written + i)
          : Array.from({ length: written + (tear === "none" ? 0 : 1) }, (_, i) => i)
        assert.deepStrictEqual([...opened.repairedCopies].sort(), damaged, `${written} ${tear}`)
        const again = yield* withStorage(disk, (storage) => openSuperblock(storage, layout))
        assert.deepStrictEqual(again.repairedCopies, [], `${written} ${tear}: repaired again`)
        assert.strictEqual(again.working.sequence, expected.sequence)
      }
    }
  }))

  it.effect("a corrupt sector in any single copy is repaired at open", () => Effect.gen(function* () {
    const [v1, v2] = chain(2) as [Superblock, Superblock]
    for (let copy = 0; copy < copies; copy++) {
      for (const sector of [0, 1]) {
        const disk = newDisk(100 + copy * 2 + sector)
        yield* withStorage(disk, (storage) => Effect.andThen(writeSuperblock(storage, layout, undefined, v1), writeSuperblock(storage, layout, v1, v2)))
        disk.corruptSector(copyOffset(copy) + sector * sectorSize)
        disk.crash()
        const opened = yield* withStorage(disk, (storage) => openSuperblock(storage, layout))
        assert.strictEqual(opened.working.sequence, 2)
        assert.deepStrictEqual(opened.repairedCopies, [copy])
        assert.isFalse(disk.isSectorFaulty(copyOffset(copy) + sector * sectorSize), "rewriting heals the sector")
        const again = yield* withStorage(disk, (storage) => openSuperblock(storage, layout))
        assert.deepStrictEqual(again.repairedCopies, [])
      }
    }
  }))

  it.effect("three corrupt copies: quorum lost, and open writes nothing", () => Effect.gen(function* () {
    const disk = newDisk(200)
    yield* withStorage(disk, (storage) => writeSuperblock(storage, layout, undefined, genesis))
    for (const copy of [0, 1, 3]) disk.corruptSector(copyOffset(copy))
    disk.crash()
    const writesBefore = disk.stats.writes
    const error = yield* Effect.flip(withStorage(disk, (storage) => openSuperblock(storage, layout)))
    assert.match((error as SuperblockError).reason, /^quorum lost/)
    assert.strictEqual(disk.stats.writes, writesBefore)
  }))

  // The real monotonicity check (not exported) runs at open: two valid versions on disk where the
  // newer one's VSR state went backwards (view, log_view, commit_max, checkpoint) make open refuse.
  it.effect("open refuses a newer version whose VSR state regresses", () => Effect.gen(function* () {
    const ahead = nextSuperblock(genesis, {
      vsrState: { ...genesis.vsrState, view: 5, logView: 4, commitMax: 100, checkpoint: checkpointState(95) }
    })
    const regressions: Record<string, Partial<typeof ahead.vsrState>> = {
      "view went backwards": { view: 4 },
      "view went backwards (log_view)": { logView: 3 },
      "commit_max went backwards": { commitMax: 99 },
      "checkpoint went backwards": { checkpoint: checkpointState(63) }
    }
    let seed = 300
    for (const [reason, change] of Object.entries(regressions)) {
      const disk = newDisk(seed++)
      const behind = nextSuperblock(ahead, { vsrState: { ...ahead.vsrState, ...change } })
      yield* withStorage(disk, (storage) => Effect.gen(function* () {
        yield* writeSuperblock(storage, layout, undefined, genesis)
        yield* writeSuperblock(storage, layout, genesis, ahead)
        // Write `behind` past writeSuperblock's own assertion: copies 0 and 1 only.
        for (const k of [0, 1]) {
          const buffer = storage.allocate(superblockCopySize)
          encodeSuperblockCopy(behind, k, buffer)
          yield* storage.write(layout.superblock, k * layout.config.superblockCopySize, buffer)
        }
      }))
      const error = yield* Effect.flip(withStorage(disk, (storage) => openSuperblock(storage, layout)))
      assert.strictEqual((error as SuperblockError).reason, `sequence 3 regresses from 2: ${reason.replace(" (log_view)", "")}`)
    }
  }))

  it.effect("writeSuperblock refuses a staging version that does not follow working", () => Effect.gen(function* () {
    const disk = newDisk(400)
    const [v1, v2, v3] = chain(3) as [Superblock, Superblock, Superblock]
    yield* withStorage(disk, (storage) => writeSuperblock(storage, layout, undefined, v1))
    const skipped = yield* Effect.exit(withStorage(disk, (storage) => writeSuperblock(storage, layout, v1, v3)))
    assert.isTrue(Exit.isFailure(skipped) && Exit.hasDies(skipped))
    // A view that goes backwards (v2 has view 1).
    const backwards = nextSuperblock(v2, { vsrState: { ...v2.vsrState, view: 0 } })
    const exit = yield* Effect.exit(withStorage(disk, (storage) => writeSuperblock(storage, layout, v2, backwards)))
    assert.isTrue(Exit.isFailure(exit) && Exit.hasDies(exit))
    // Nothing was written by either refusal: open still finds v1 intact.
    const opened = yield* withStorage(disk, (storage) => openSuperblock(storage, layout))
    assert.strictEqual(opened.working.sequence, 1)
    assert.deepStrictEqual(opened.repairedCopies, [])
  }))

  // The verify step (§3.3): if the read-back does not select the staging version with 3 copies,
  // the write is a defect (the disk lost an acknowledged write) and the replica stops.
  it.effect("writeSuperblock dies when the copies read back do not verify", () => Effect.gen(function* () {
    const disk = newDisk(500)
    yield* withStorage(disk, (storage) => writeSuperblock(storage, layout, undefined, genesis))
    const next = bump(genesis)
    // Copies 1 and 2 of the new version silently vanish after they are written.
    const exit = yield* Effect.exit(withStorage(disk, (storage) => writeSuperblock({
      ...storage,
      write: (zone, offset, buffer) => Effect.tap(storage.write(zone, offset, buffer), () => Effect.sync(() => {
        if (offset === copyOffset(1) || offset === copyOffset(2)) disk.corruptSector(zone.start + offset)
      }))
    }, layout, genesis, next)))
    assert.isTrue(Exit.isFailure(exit) && Exit.hasDies(exit))
  }))
})
