/**
 * Checkpoint trailers (storage.md §6.4): a byte string too large for the superblock (the free
 * set's bitsets, the client sessions, the snapshot's directory) stored as a chain of grid blocks.
 * Chunks are written first to last, each block naming its predecessor in its metadata; the
 * superblock names the last block, the total size and the checksum of the whole string, so
 * reading walks the chain backwards and verifies every link and the whole.
 */
import { Effect, Schema } from "effect"
import { assert } from "../assert.ts"
import { checksumInto } from "../protocol/checksum_native.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { headerSize, u128Equal } from "../protocol/header.ts"
import { type BlockType, blockTypeOf, sealBlock, TrailerMetadata } from "./block.ts"
import { type TrailerReference, trailerEmpty } from "./checkpoint_state.ts"
import type { FreeSet } from "./free_set.ts"
import { type Grid, GridReadError } from "./grid.ts"
import type { StorageError } from "./storage.ts"

/** The grid has no room left inside the storage limit: the replica must stop (storage.md §2.2). */
export class GridFullError extends Schema.TaggedError<GridFullError>()("GridFullError", {
  path: Schema.String,
  blocksNeeded: Schema.Number,
  blocksMax: Schema.Number
}) {
  override get message(): string {
    return `${this.path}: the grid needs ${this.blocksNeeded} more blocks but its storage limit (${this.blocksMax} blocks) is reached; ` +
      "restart with a larger storage limit"
  }
}

export interface TrailerWritten {
  readonly reference: TrailerReference
  /** The chain's blocks, first to last. */
  readonly blocks: ReadonlyArray<number>
}

export const trailerBlockCount = (size: number, blockSize: number): number => Math.ceil(size / (blockSize - headerSize))

/** Writes `bytes` as a chain of `blockType` blocks acquired from `freeSet`. */
export const writeTrailer = Effect.fnUntraced(function* (
  grid: Grid, freeSet: FreeSet, blockType: BlockType, bytes: Uint8Array, path: string
): Effect.fn.Return<TrailerWritten, StorageError | GridFullError> {
  if (bytes.length === 0) return { reference: trailerEmpty, blocks: [] } satisfies TrailerWritten
  const bodyMax = grid.blockSize - headerSize
  const count = trailerBlockCount(bytes.length, grid.blockSize)
  const reservation = freeSet.reserve(count)
  if (reservation === undefined) return yield* new GridFullError({ path, blocksNeeded: count, blocksMax: freeSet.blocksMax })
  const block = grid.allocate()
  const blocks: Array<number> = []
  let previousAddress = 0
  const previousChecksum = new Uint8Array(checksumSize)
  for (let chunk = 0; chunk < count; chunk++) {
    const body = bytes.subarray(chunk * bodyMax, Math.min(bytes.length, (chunk + 1) * bodyMax))
    const address = freeSet.acquire(reservation)
    block.fill(0, 0, headerSize)
    block.set(previousChecksum, TrailerMetadata.previousChecksum)
    new DataView(block.buffer, block.byteOffset, headerSize).setBigUint64(TrailerMetadata.previousAddress, BigInt(previousAddress), true)
    block.set(body, headerSize)
    const sealed = sealBlock(block, { cluster: grid.cluster, address, blockType, size: headerSize + body.length })
    yield* grid.write(address, sealed)
    previousChecksum.set(sealed.subarray(0, checksumSize))
    previousAddress = address
    blocks.push(address)
  }
  freeSet.forfeit(reservation)
  const checksum = new Uint8Array(checksumSize)
  checksumInto(bytes, checksum, 0)
  return {
    reference: { checksum, lastBlockAddress: previousAddress, lastBlockChecksum: previousChecksum.slice(), size: bytes.length },
    blocks
  } satisfies TrailerWritten
})

/** Reads the trailer `reference` names: its bytes and its blocks (first to last). */
export const readTrailer = Effect.fnUntraced(function* (
  grid: Grid, reference: TrailerReference, blockType: BlockType, what: string, path: string
): Effect.fn.Return<{ bytes: Uint8Array; blocks: Array<number> }, StorageError | GridReadError> {
  if (reference.size === 0) return { bytes: new Uint8Array(0), blocks: [] }
  const bodyMax = grid.blockSize - headerSize
  const count = trailerBlockCount(reference.size, grid.blockSize)
  const bytes = new Uint8Array(reference.size)
  const blocks: Array<number> = []
  let address = reference.lastBlockAddress
  let checksum = reference.lastBlockChecksum
  const broken = (at: number, reason: string) => new GridReadError({ path, address: at, what, reason })
  for (let chunk = count - 1; chunk >= 0; chunk--) {
    if (address === 0) return yield* broken(address, `the chain ends after ${count - 1 - chunk} of ${count} blocks`)
    const block = yield* grid.read(address, checksum, what)
    if (blockTypeOf(block) !== blockType) return yield* broken(address, `block type ${blockTypeOf(block)}, expected ${blockType}`)
    const start = chunk * bodyMax
    const expected = Math.min(reference.size, start + bodyMax) - start
    if (block.length - headerSize !== expected) return yield* broken(address, `chunk of ${block.length - headerSize} bytes, expected ${expected}`)
    bytes.set(block.subarray(headerSize), start)
    blocks.push(address)
    checksum = block.slice(TrailerMetadata.previousChecksum, TrailerMetadata.previousChecksum + checksumSize)
    address = Number(new DataView(block.buffer, block.byteOffset, headerSize).getBigUint64(TrailerMetadata.previousAddress, true))
  }
  if (address !== 0) return yield* broken(address, "the chain is longer than the trailer's size")
  const whole = new Uint8Array(checksumSize)
  checksumInto(bytes, whole, 0)
  if (!u128Equal(whole, 0, reference.checksum, 0)) return yield* broken(reference.lastBlockAddress, "the trailer's bytes do not match its checksum")
  blocks.reverse()
  assert(blocks.length === count, () => "trailer block count")
  return { bytes, blocks }
})
