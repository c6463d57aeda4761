/**
 * CheckpointState (storage.md §3.1, vsr.md §7.2): the 1024 bytes that name one checkpoint. It
 * holds the prepare header of the checkpoint op and the (address, checksum) roots of everything
 * the checkpoint wrote into the grid, so its checksum, the checkpoint id, identifies the whole
 * durable state. It is identical on every replica that reached the same checkpoint.
 *
 * Scarab's rung R1 keeps TigerBeetle's fields with one substitution: where TigerBeetle names the
 * manifest log of its LSM forest, Scarab names the trailer of its ledger snapshot (the directory
 * of the snapshot's blocks, checkpoint.ts). Every other field means what it means there.
 */
import { assert } from "../assert.ts"
import { checksumInto } from "../protocol/checksum_native.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { checksumBodyEmpty } from "../protocol/header_rules.ts"
import { headerSize, isZero } from "../protocol/header.ts"

export const checkpointStateSize = 1024

/**
 * A checkpoint trailer (storage.md §6.4): a byte string stored as a chain of grid blocks, named
 * by its last block, its total size and the checksum of the whole string.
 */
export interface TrailerReference {
  readonly checksum: Uint8Array
  readonly lastBlockAddress: number
  readonly lastBlockChecksum: Uint8Array
  readonly size: number
}

/** The trailer of nothing: size 0, address 0, and the checksum of the empty string. */
export const trailerEmpty: TrailerReference = {
  checksum: checksumBodyEmpty,
  lastBlockAddress: 0,
  lastBlockChecksum: new Uint8Array(checksumSize),
  size: 0
}

export interface CheckpointState {
  /** The prepare header of the checkpoint op: replay starts at its op + 1. */
  readonly header: Uint8Array
  /** The ledger snapshot's directory (TigerBeetle: the manifest log). */
  readonly snapshot: TrailerReference
  readonly freeSetAcquired: TrailerReference
  readonly freeSetReleased: TrailerReference
  readonly clientSessions: TrailerReference
  readonly parentCheckpointId: Uint8Array
  readonly grandparentCheckpointId: Uint8Array
  /** The logical size of the data file: the zones plus the grid up to its highest acquired block. */
  readonly storageSize: number
  /** The release that executes the ops of the next checkpoint interval. */
  readonly release: number
}

const trailerSize = 80
/** Byte offsets inside the 1024 bytes; everything not listed is zero. */
const Offset = {
  header: 0,
  snapshot: 256,
  freeSetAcquired: 336,
  freeSetReleased: 416,
  clientSessions: 496,
  parentCheckpointId: 576,
  grandparentCheckpointId: 608,
  storageSize: 640,
  release: 648,
  end: 652
} as const

export function encodeCheckpointState(state: CheckpointState, target: Uint8Array, offset: number): void {
  assert(state.header.length === headerSize, () => "a checkpoint header is 256 bytes")
  const bytes = target.subarray(offset, offset + checkpointStateSize)
  bytes.fill(0)
  bytes.set(state.header, Offset.header)
  encodeTrailer(state.snapshot, bytes, Offset.snapshot)
  encodeTrailer(state.freeSetAcquired, bytes, Offset.freeSetAcquired)
  encodeTrailer(state.freeSetReleased, bytes, Offset.freeSetReleased)
  encodeTrailer(state.clientSessions, bytes, Offset.clientSessions)
  bytes.set(state.parentCheckpointId, Offset.parentCheckpointId)
  bytes.set(state.grandparentCheckpointId, Offset.grandparentCheckpointId)
  const view = new DataView(bytes.buffer, bytes.byteOffset, checkpointStateSize)
  setU64(view, Offset.storageSize, state.storageSize)
  view.setUint32(Offset.release, state.release, true)
}

/** The state encoded at `bytes[offset..]`, or why it is malformed (non-zero padding, bad trailer). */
export function decodeCheckpointState(bytes: Uint8Array, offset: number): CheckpointState | string {
  const b = bytes.subarray(offset, offset + checkpointStateSize)
  assert(b.length === checkpointStateSize, () => "a checkpoint state is 1024 bytes")
  if (!isZero(b, Offset.end, checkpointStateSize)) return "checkpoint state: reserved bytes are not zero"
  for (const o of [Offset.parentCheckpointId, Offset.grandparentCheckpointId]) {
    if (!isZero(b, o + checksumSize, o + 2 * checksumSize)) return "checkpoint state: checksum padding is not zero"
  }
  const view = new DataView(b.buffer, b.byteOffset, checkpointStateSize)
  const trailers: Array<TrailerReference> = []
  for (const o of [Offset.snapshot, Offset.freeSetAcquired, Offset.freeSetReleased, Offset.clientSessions]) {
    const trailer = decodeTrailer(b, o)
    if (typeof trailer === "string") return trailer
    trailers.push(trailer)
  }
  return {
    header: b.slice(Offset.header, Offset.header + headerSize),
    snapshot: trailers[0]!,
    freeSetAcquired: trailers[1]!,
    freeSetReleased: trailers[2]!,
    clientSessions: trailers[3]!,
    parentCheckpointId: b.slice(Offset.parentCheckpointId, Offset.parentCheckpointId + checksumSize),
    grandparentCheckpointId: b.slice(Offset.grandparentCheckpointId, Offset.grandparentCheckpointId + checksumSize),
    storageSize: getU64(view, Offset.storageSize),
    release: view.getUint32(Offset.release, true)
  }
}

/** The checkpoint id (vsr.md §7.2): the checksum of the encoded state. */
export function checkpointId(state: CheckpointState): Uint8Array {
  const bytes = new Uint8Array(checkpointStateSize)
  encodeCheckpointState(state, bytes, 0)
  const id = new Uint8Array(checksumSize)
  checksumInto(bytes, id, 0)
  return id
}

/** An empty trailer must be exactly `trailerEmpty`; a non-empty one has a last block. */
export function trailerInvalid(trailer: TrailerReference): string | undefined {
  if (trailer.size === 0) {
    if (trailer.lastBlockAddress !== 0 || !isZero(trailer.lastBlockChecksum, 0, checksumSize)) return "an empty trailer names a block"
    if (!equalBytes(trailer.checksum, checksumBodyEmpty)) return "an empty trailer's checksum is not that of nothing"
    return undefined
  }
  return trailer.lastBlockAddress === 0 ? "a non-empty trailer names no block" : undefined
}

export const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

// Trailer reference layout: checksum u128 + pad, last block checksum u128 + pad, address, size.
function encodeTrailer(trailer: TrailerReference, bytes: Uint8Array, offset: number): void {
  assert(trailerInvalid(trailer) === undefined, () => `encoding a malformed trailer: ${trailerInvalid(trailer)}`)
  bytes.set(trailer.checksum, offset)
  bytes.set(trailer.lastBlockChecksum, offset + 32)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
  setU64(view, offset + 64, trailer.lastBlockAddress)
  setU64(view, offset + 72, trailer.size)
}

function decodeTrailer(bytes: Uint8Array, offset: number): TrailerReference | string {
  if (!isZero(bytes, offset + 16, offset + 32) || !isZero(bytes, offset + 48, offset + 64)) return "trailer reference: padding is not zero"
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
  const trailer: TrailerReference = {
    checksum: bytes.slice(offset, offset + checksumSize),
    lastBlockChecksum: bytes.slice(offset + 32, offset + 32 + checksumSize),
    lastBlockAddress: getU64(view, offset + 64),
    size: getU64(view, offset + 72)
  }
  const invalid = trailerInvalid(trailer)
  return invalid === undefined ? trailer : `trailer reference: ${invalid}`
}

/** u64 fields that count bytes, ops or blocks stay far below 2^53; anything above is corruption. */
export function getU64(view: DataView, offset: number): number {
  const value = view.getBigUint64(offset, true)
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : Number.NaN
}

export function setU64(view: DataView, offset: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, () => `${value} is not a u64 below 2^53`)
  view.setBigUint64(offset, BigInt(value), true)
}

assert(Offset.end <= checkpointStateSize && Offset.clientSessions + trailerSize === Offset.parentCheckpointId, () => "checkpoint state layout")
