/**
 * The superblock (storage.md §3): the root of everything durable. Four copies of one 8 KiB
 * record name the data file's cluster and replica, its storage profile, the replica's VSR state
 * (views, commit_max) and the current checkpoint, through which every live grid block is
 * reachable.
 *
 * Versions are sequenced and hash-chained (`parent` is the previous version's checksum). An
 * update writes the copies one after another and reads them all back (§3.3); opening reads every
 * copy and selects a version by quorum (§3.4, `superblock_quorum.ts`), then rewrites damaged
 * copies in the order that can never let an older version regain a quorum (§3.5). A crash in the
 * middle of an update leaves either version selectable, and both are valid: the new checkpoint's
 * blocks were written before the update began, and the old checkpoint's blocks are not freed
 * until the new one is durable.
 */
import { Effect, Schema } from "effect"
import { assert } from "../assert.ts"
import { checksumInto } from "../protocol/checksum_native.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { u128FromBytes, u128ToBytes } from "../protocol/build.ts"
import { headerSize, isZero, PrepareLayout, readU64Number } from "../protocol/header.ts"
import {
  checkpointStateSize, type CheckpointState, decodeCheckpointState, encodeCheckpointState, equalBytes, getU64, setU64
} from "./checkpoint_state.ts"
import { type Layout, layoutOf, type StorageConfig, storageConfigs } from "./layout.ts"
import { type QuorumResult, repairOrder, selectQuorum, type SuperblockCopy } from "./superblock_quorum.ts"
import { type Storage, type StorageError, sectorSize } from "./storage.ts"

/** Bytes of one copy: the header sector and the view headers sector. */
export const superblockCopySize = 2 * sectorSize
/** The superblock format this code writes and reads. */
export const superblockVersion = 1
export const membersMax = 12
/** View headers a superblock keeps (view_change_headers_suffix_max + 2). */
export const viewHeadersMax = 11
/** Copies that must hold a version for it to be selected at open, and after a write (§3.4). */
export const quorumOpen = 2
export const quorumVerify = 3

export interface VsrState {
  readonly checkpoint: CheckpointState
  readonly replicaId: bigint
  /** Replica ids of the configuration: replicaCount active ones, then zeroes. */
  readonly members: ReadonlyArray<bigint>
  readonly commitMax: number
  readonly syncOpMin: number
  readonly syncOpMax: number
  readonly logView: number
  readonly view: number
  readonly replicaCount: number
}

export interface Superblock {
  readonly sequence: number
  readonly cluster: bigint
  /** Checksum of the previous version (zero for the first). */
  readonly parent: Uint8Array
  readonly releaseFormat: number
  readonly profile: StorageConfig["name"]
  readonly vsrState: VsrState
  /** Prepare headers, newest op first (vsr.md §4.7); at least the checkpoint's. */
  readonly viewHeaders: ReadonlyArray<Uint8Array>
  /** This version's checksum (over everything after the `copy` field). */
  readonly checksum: Uint8Array
}

/** The superblock cannot be used: named reason, for a refusal to start. */
export class SuperblockError extends Schema.TaggedError<SuperblockError>()("SuperblockError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: superblock: ${this.reason}`
  }
}

// --- layout of one copy -------------------------------------------------------------------------

const Offset = {
  checksum: 0,
  copy: 32,
  version: 34,
  releaseFormat: 36,
  sequence: 40,
  cluster: 48,
  parent: 64,
  vsrState: 96,
  flags: 96 + 2048,
  viewHeadersCount: 96 + 2048 + 8,
  /** Scarab: the storage profile (1 production, 2 test), so that a file names its own layout. */
  profile: 96 + 2048 + 12,
  headerEnd: 96 + 2048 + 13,
  viewHeaders: sectorSize
} as const

const VsrOffset = {
  checkpoint: 0,
  replicaId: checkpointStateSize,
  members: checkpointStateSize + 16,
  commitMax: checkpointStateSize + 16 + membersMax * 16,
  syncOpMin: checkpointStateSize + 16 + membersMax * 16 + 8,
  syncOpMax: checkpointStateSize + 16 + membersMax * 16 + 16,
  syncView: checkpointStateSize + 16 + membersMax * 16 + 24,
  logView: checkpointStateSize + 16 + membersMax * 16 + 28,
  view: checkpointStateSize + 16 + membersMax * 16 + 32,
  replicaCount: checkpointStateSize + 16 + membersMax * 16 + 36,
  end: checkpointStateSize + 16 + membersMax * 16 + 37
} as const

const profileCodes: Readonly<Record<StorageConfig["name"], number>> = { production: 1, test: 2 }

/** Encodes `superblock` as copy `copy` into `target` (8 KiB); its checksum must be `checksumOf` it. */
export function encodeSuperblockCopy(superblock: Superblock, copy: number, target: Uint8Array): void {
  assert(target.length === superblockCopySize, () => "a superblock copy is 8 KiB")
  assert(Number.isInteger(copy), () => `copy ${copy} is not a u16`)
  assert(copy >= 0, () => `copy ${copy} is not a u16`)
  assert(copy <= 0xffff, () => `copy ${copy} is not a u16`)
  encodeUnsealed(superblock, target)
  target.set(superblock.checksum, Offset.checksum)
  new DataView(target.buffer, target.byteOffset, target.length).setUint16(Offset.copy, copy, true)
  // Pair with decodeSuperblockCopy's check: the bytes written carry the checksum of their fields
  // (a superblock changed after it was sealed would be written with a checksum open refuses).
  const sum = new Uint8Array(checksumSize)
  checksumInto(target.subarray(Offset.version), sum, 0)
  assert(equalBytes(sum, superblock.checksum), () => "a superblock copy is written with the checksum of its fields")
}

/** The checksum a superblock's fields give: what `Superblock.checksum` must be. */
export function checksumOf(superblock: Omit<Superblock, "checksum">): Uint8Array {
  assert(superblock.parent.length === checksumSize, () => "a parent is a checksum")
  assert(superblock.viewHeaders.length <= viewHeadersMax, () => `${superblock.viewHeaders.length} view headers`)
  const bytes = new Uint8Array(superblockCopySize)
  encodeUnsealed(superblock, bytes)
  const sum = new Uint8Array(checksumSize)
  checksumInto(bytes.subarray(Offset.version), sum, 0)
  return sum
}

/** Seals fields into a superblock: computes the checksum and checks every invariant. */
export function sealSuperblock(fields: Omit<Superblock, "checksum">): Superblock {
  const invalid = superblockInvalid(fields)
  assert(invalid === undefined, () => `building an invalid superblock: ${invalid}`)
  const sealed = { ...fields, checksum: checksumOf(fields) }
  // A version is never its own parent: the chain across versions moves on.
  assert(!equalBytes(sealed.checksum, sealed.parent), () => "a superblock's checksum equals its parent's")
  return sealed
}

/** Decodes one copy read from disk: undefined when its checksum or its format is wrong. */
export function decodeSuperblockCopy(bytes: Uint8Array): SuperblockCopy<Superblock> | undefined {
  assert(bytes.length === superblockCopySize, () => "a superblock copy is 8 KiB")
  const expected = new Uint8Array(checksumSize)
  checksumInto(bytes.subarray(Offset.version), expected, 0)
  if (!equalBytes(expected, bytes.subarray(0, checksumSize)) || !isZero(bytes, checksumSize, Offset.copy)) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
  if (view.getUint16(Offset.version, true) !== superblockVersion) return undefined
  const decoded = decodeFields(bytes, view)
  if (decoded === undefined || superblockInvalid(decoded) !== undefined) return undefined
  // Pair with encodeUnsealed: what was written as 256-byte view headers reads back as such.
  assert(decoded.viewHeaders.every((header) => header.length === headerSize), () => "a view header is 256 bytes")
  return { copy: view.getUint16(Offset.copy, true), sequence: decoded.sequence, checksum: expected, value: { ...decoded, checksum: expected } }
}

/** Why the fields break an invariant of §3.1, or undefined. */
export function superblockInvalid(s: Omit<Superblock, "checksum">): string | undefined {
  // Shapes the codec guarantees (decodeFields slices them so, encodeUnsealed writes them so).
  assert(s.parent.length === checksumSize, () => "a parent is a checksum")
  assert(s.vsrState.checkpoint.header.length === headerSize, () => "a checkpoint header is 256 bytes")
  const v = s.vsrState
  const op = checkpointOp(v.checkpoint)
  if (!Number.isSafeInteger(s.sequence) || s.sequence < 1) return "sequence < 1"
  if (!Number.isSafeInteger(op) || !Number.isSafeInteger(v.commitMax) || op > v.commitMax) return "checkpoint op > commit_max"
  if (v.syncOpMin > v.syncOpMax) return "sync_op_min > sync_op_max"
  if (v.logView > v.view) return "log_view > view"
  if (v.replicaCount < 1 || v.replicaCount > 6) return "replica_count not in 1..6"
  if (v.replicaId === 0n || !v.members.slice(0, v.replicaCount).includes(v.replicaId)) return "replica id is zero or not a member"
  if (v.members.length !== membersMax) return "members must list 12 ids"
  if (s.viewHeaders.length < 1 || s.viewHeaders.length > viewHeadersMax) return "view headers count not in 1..11"
  if (!Number.isSafeInteger(v.checkpoint.storageSize) || v.checkpoint.storageSize < layoutFloor(s.profile)) return "storage_size below the zones' size"
  return undefined
}

// --- I/O ----------------------------------------------------------------------------------------

/** The superblock open selected, and what it did to reach it. */
export interface SuperblockOpened {
  readonly working: Superblock
  /** Copies rewritten because they were damaged, misdirected or from another version. */
  readonly repairedCopies: ReadonlyArray<number>
}

/**
 * Reads every copy, selects the working version by quorum and repairs damaged copies (§3.4,
 * §3.5). Both profiles keep the copies at the same place, so any layout can open any file.
 */
export const openSuperblock = Effect.fnUntraced(function* (
  storage: Storage["Service"], layout: Layout
): Effect.fn.Return<SuperblockOpened, StorageError | SuperblockError> {
  // The flexible quorums intersect (§3.4): a write verified by one is seen by a later open.
  assert(quorumOpen + quorumVerify === layout.config.superblockCopies + 1, () => "the open and verify quorums intersect")
  const copies = yield* readCopies(storage, layout)
  const selected = selectQuorum(copies, quorumOpen, monotonic)
  if (selected._tag === "Failure") return yield* new SuperblockError({ path: storage.path, reason: selected.reason })
  const working = selected.value
  const repairs = repairOrder(copies, working.checksum)
  assert(repairs.length <= layout.config.superblockCopies, () => "each copy is repaired once at most")
  for (const copy of repairs) yield* writeCopy(storage, layout, working, copy)
  return { working, repairedCopies: repairs } satisfies SuperblockOpened
})

/**
 * The working superblock as open would select it, without repairing anything: for tools that
 * only need the file's identity (its cluster) before the replica opens it. Undefined when open
 * would refuse (the replica then says why).
 */
export const peekSuperblock = Effect.fnUntraced(function* (storage: Storage["Service"]): Effect.fn.Return<Superblock | undefined, StorageError> {
  const copies = yield* readCopies(storage, layouts.production)
  assert(copies.length === layouts.production.config.superblockCopies, () => "every copy read")
  const selected = selectQuorum(copies, quorumOpen, monotonic)
  assert(selected._tag === "Failure" || selected.value.sequence >= 1, () => "a selected superblock has a sequence")
  return selected._tag === "Success" ? selected.value : undefined
})

/**
 * The version open would select from the copies read (`decodeSuperblockCopy` of each slot, §3.4),
 * or why it would refuse: for `scarab inspect`, which shows every copy and changes none.
 */
export function selectSuperblock(copies: ReadonlyArray<SuperblockCopy<Superblock> | undefined>): QuorumResult<Superblock> {
  assert(copies.length === quorumOpen + quorumVerify - 1, () => `${copies.length} superblock copies`)
  const selected = selectQuorum(copies, quorumOpen, monotonic)
  assert(selected._tag === "Failure" || selected.value.sequence >= 1, () => "a selected superblock has a sequence")
  return selected
}

/**
 * Writes `staging` (a superblock sealed with sequence working + 1 and parent working's checksum)
 * over every copy, one at a time, then reads them all back and requires the verify quorum to
 * select exactly `staging` (§3.3). A failure to do so is a defect: the disk lost a write it
 * acknowledged, and the replica must stop.
 */
export const writeSuperblock = Effect.fnUntraced(function* (
  storage: Storage["Service"], layout: Layout, working: Superblock | undefined, staging: Superblock
): Effect.fn.Return<Superblock, StorageError> {
  if (working === undefined) assert(staging.sequence === 1, () => "a first superblock has sequence 1")
  else {
    assert(staging.sequence === working.sequence + 1, () => "staging's sequence must follow working's")
    assert(equalBytes(staging.parent, working.checksum), () => "staging's parent must be working")
    assert(monotonic(working, staging) === undefined, () => `superblock update is not monotonic: ${monotonic(working, staging)}`)
  }
  for (let copy = 0; copy < layout.config.superblockCopies; copy++) yield* writeCopy(storage, layout, staging, copy)
  const copies = yield* readCopies(storage, layout)
  const selected = selectQuorum(copies, quorumVerify, monotonic)
  assert(selected._tag === "Success", () => `${storage.path}: the superblock just written is not read back (${selected._tag === "Failure" ? selected.reason : ""})`)
  assert(equalBytes(selected.value.checksum, staging.checksum), () => `${storage.path}: the superblock read back is another version than the one just written`)
  return staging
})

/** The next version: `working` with `change` applied, sequence + 1, chained to it. */
export function nextSuperblock(
  working: Superblock, change: { readonly vsrState?: VsrState; readonly viewHeaders?: ReadonlyArray<Uint8Array> }
): Superblock {
  return sealSuperblock({
    sequence: working.sequence + 1,
    cluster: working.cluster,
    parent: working.checksum,
    releaseFormat: working.releaseFormat,
    profile: working.profile,
    vsrState: change.vsrState ?? working.vsrState,
    viewHeaders: change.viewHeaders ?? working.viewHeaders
  })
}

/** The storage configuration a superblock's profile names. */
export const configOf = (superblock: Superblock): StorageConfig => storageConfigs[superblock.profile]

/**
 * Replica ids derive from the cluster and the replica's index, so that formatting is
 * deterministic (the simulator formats the same file for the same seed). Never zero.
 */
export function replicaIdOf(cluster: bigint, replica: number): bigint {
  assert(Number.isInteger(replica), () => `replica ${replica}`)
  assert(replica >= 0, () => `replica ${replica}`)
  assert(replica < membersMax, () => `replica ${replica} beyond the ${membersMax} members`)
  const input = new Uint8Array(32)
  u128ToBytes(cluster, input, 0)
  input[16] = replica
  input.set(new TextEncoder().encode("scarab replica"), 17)
  const id = new Uint8Array(checksumSize)
  checksumInto(input, id, 0)
  const replicaId = u128FromBytes(id, 0) | 1n
  assert(replicaId !== 0n, () => "a replica id is never zero")
  return replicaId
}

/** The index of this replica among the members. */
export function replicaIndexOf(superblock: Superblock): number {
  const index = superblock.vsrState.members.indexOf(superblock.vsrState.replicaId)
  assert(index >= 0, () => "the replica is not a member")
  assert(index < superblock.vsrState.replicaCount, () => "the replica is not an active member")
  return index
}

export const checkpointOp = (state: CheckpointState): number => readU64Number(state.header, PrepareLayout.op.offset)


// --- helpers ------------------------------------------------------------------------------------

/** Monotonicity of the VSR state from an older version to a newer one (§3.2), or why it breaks. */
function monotonic(older: Superblock, newer: Superblock): string | undefined {
  // Compared only along the chain: a version with its parent (selectQuorum, writeSuperblock).
  assert(newer.sequence === older.sequence + 1, () => "monotonic compares a version with the one before it")
  assert(equalBytes(newer.parent, older.checksum), () => "monotonic compares a version with its parent")
  const a = older.vsrState
  const b = newer.vsrState
  if (older.cluster !== newer.cluster || a.replicaId !== b.replicaId) return "cluster or replica id changed"
  if (b.view < a.view || b.logView < a.logView) return "view went backwards"
  if (b.commitMax < a.commitMax) return "commit_max went backwards"
  if (checkpointOp(b.checkpoint) < checkpointOp(a.checkpoint)) return "checkpoint went backwards"
  return undefined
}

function readCopies(storage: Storage["Service"], layout: Layout) {
  assert(layout.config.superblockCopySize >= superblockCopySize, () => "a copy's space holds a copy")
  return Effect.gen(function* () {
    const buffer = storage.allocate(superblockCopySize)
    const copies: Array<SuperblockCopy<Superblock> | undefined> = []
    for (let copy = 0; copy < layout.config.superblockCopies; copy++) {
      yield* storage.read(layout.superblock, copy * layout.config.superblockCopySize, buffer)
      copies.push(decodeSuperblockCopy(buffer))
    }
    assert(copies.length === layout.config.superblockCopies, () => "every copy read")
    return copies
  })
}

function writeCopy(storage: Storage["Service"], layout: Layout, superblock: Superblock, copy: number) {
  // Each copy only into its own slot (§3.5).
  assert(Number.isInteger(copy), () => `copy ${copy}`)
  assert(copy >= 0, () => `copy ${copy}`)
  assert(copy < layout.config.superblockCopies, () => `copy ${copy} beyond the ${layout.config.superblockCopies} copies`)
  const buffer = storage.allocate(superblockCopySize)
  encodeSuperblockCopy(superblock, copy, buffer)
  return storage.write(layout.superblock, copy * layout.config.superblockCopySize, buffer)
}

function encodeUnsealed(s: Omit<Superblock, "checksum">, target: Uint8Array): void {
  // Fixed-size fields: more would overwrite the next ones.
  assert(s.vsrState.members.length === membersMax, () => `${s.vsrState.members.length} members`)
  assert(s.viewHeaders.length <= viewHeadersMax, () => `${s.viewHeaders.length} view headers`)
  target.fill(0)
  const view = new DataView(target.buffer, target.byteOffset, target.length)
  view.setUint16(Offset.version, superblockVersion, true)
  view.setUint32(Offset.releaseFormat, s.releaseFormat, true)
  setU64(view, Offset.sequence, s.sequence)
  u128ToBytes(s.cluster, target, Offset.cluster)
  target.set(s.parent, Offset.parent)
  const v = s.vsrState
  const base = Offset.vsrState
  encodeCheckpointState(v.checkpoint, target, base + VsrOffset.checkpoint)
  u128ToBytes(v.replicaId, target, base + VsrOffset.replicaId)
  v.members.forEach((member, i) => u128ToBytes(member, target, base + VsrOffset.members + 16 * i))
  setU64(view, base + VsrOffset.commitMax, v.commitMax)
  setU64(view, base + VsrOffset.syncOpMin, v.syncOpMin)
  setU64(view, base + VsrOffset.syncOpMax, v.syncOpMax)
  view.setUint32(base + VsrOffset.logView, v.logView, true)
  view.setUint32(base + VsrOffset.view, v.view, true)
  view.setUint8(base + VsrOffset.replicaCount, v.replicaCount)
  view.setUint32(Offset.viewHeadersCount, s.viewHeaders.length, true)
  view.setUint8(Offset.profile, profileCodes[s.profile])
  s.viewHeaders.forEach((header, i) => {
    assert(header.length === headerSize, () => "a view header is 256 bytes")
    target.set(header, Offset.viewHeaders + i * headerSize)
  })
}

function decodeFields(bytes: Uint8Array, view: DataView): Omit<Superblock, "checksum"> | undefined {
  assert(bytes.length === superblockCopySize, () => "a superblock copy is 8 KiB")
  assert(view.byteLength === bytes.length, () => "the view is over the copy")
  const base = Offset.vsrState
  if (!isZero(bytes, Offset.parent + checksumSize, Offset.vsrState) || !isZero(bytes, Offset.headerEnd, Offset.viewHeaders)) return undefined
  if (!isZero(bytes, base + VsrOffset.end, base + 2048) || view.getUint32(base + VsrOffset.syncView, true) !== 0) return undefined
  if (view.getBigUint64(Offset.flags, true) !== 0n) return undefined
  const checkpoint = decodeCheckpointState(bytes, base + VsrOffset.checkpoint)
  if (typeof checkpoint === "string") return undefined
  const count = view.getUint32(Offset.viewHeadersCount, true)
  if (count > viewHeadersMax || !isZero(bytes, Offset.viewHeaders + count * headerSize, superblockCopySize)) return undefined
  const profile = (Object.keys(profileCodes) as Array<StorageConfig["name"]>).find((name) => profileCodes[name] === view.getUint8(Offset.profile))
  if (profile === undefined) return undefined
  const members: Array<bigint> = []
  for (let i = 0; i < membersMax; i++) members.push(u128FromBytes(bytes, base + VsrOffset.members + 16 * i))
  const viewHeaders: Array<Uint8Array> = []
  for (let i = 0; i < count; i++) viewHeaders.push(bytes.slice(Offset.viewHeaders + i * headerSize, Offset.viewHeaders + (i + 1) * headerSize))
  return {
    sequence: getU64(view, Offset.sequence),
    cluster: u128FromBytes(bytes, Offset.cluster),
    parent: bytes.slice(Offset.parent, Offset.parent + checksumSize),
    releaseFormat: view.getUint32(Offset.releaseFormat, true),
    profile,
    vsrState: {
      checkpoint,
      replicaId: u128FromBytes(bytes, base + VsrOffset.replicaId),
      members,
      commitMax: getU64(view, base + VsrOffset.commitMax),
      syncOpMin: getU64(view, base + VsrOffset.syncOpMin),
      syncOpMax: getU64(view, base + VsrOffset.syncOpMax),
      logView: view.getUint32(base + VsrOffset.logView, true),
      view: view.getUint32(base + VsrOffset.view, true),
      replicaCount: view.getUint8(base + VsrOffset.replicaCount)
    },
    viewHeaders
  }
}

/** The smallest storage size a profile's data file can have (its zones without a grid). */
const layoutFloor = (profile: StorageConfig["name"]): number => layouts[profile].dataFileSizeMin
const layouts = { production: layoutOf(storageConfigs.production), test: layoutOf(storageConfigs.test) } as const

assert(Offset.headerEnd <= sectorSize, () => "the superblock header overflows its sector")
assert(VsrOffset.end <= 2048, () => "the VSR state overflows its 2048 bytes")
