/**
 * Grid blocks (storage.md §6.1, §6.2): a 256-byte header of command `block`, then a body. The
 * header says what the block is (its type and type-specific metadata) and where it belongs (its
 * address), and checksums the body. A block's bytes depend only on its content: view, replica
 * and epoch are zero, padding to the sector end is zero, so every replica writes the same bytes
 * for the same state (§7.3).
 *
 * A block is always named by (address, checksum) from outside: from its parent block or from the
 * superblock. Reading checks the block against both, so a stale block left at an address by an
 * earlier checkpoint, or a misdirected write, is caught even though its own checksums are valid.
 */
import { assert } from "../assert.ts"
import { checksumInto } from "../protocol/checksum_native.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { headerInvalid } from "../protocol/header_rules.ts"
import { BlockLayout, Command, FrameLayout, headerSize, readU32, releaseScarab, u128Equal, writeU32 } from "../protocol/header.ts"
import { sectorsCeil } from "./storage.ts"

/** Block types (storage.md §6.1); Scarab's snapshot uses `manifest` for its directory and `value` for its rows. */
export const BlockType = { free_set: 1, client_sessions: 2, manifest: 3, index: 4, value: 5 } as const
export type BlockType = (typeof BlockType)[keyof typeof BlockType]

const metadataOffset = BlockLayout.metadata_bytes.offset

/** Metadata of a block in a trailer chain (free set, client sessions, snapshot directory): its predecessor. */
export const TrailerMetadata = { previousChecksum: metadataOffset, previousAddress: metadataOffset + 32 } as const
/** Metadata of a value block: rows it can hold, rows it holds, bytes per row, and its section (tree id). */
export const ValueMetadata = { countMax: metadataOffset, count: metadataOffset + 4, rowSize: metadataOffset + 8, treeId: metadataOffset + 12 } as const

export interface BlockFields {
  readonly cluster: Uint8Array
  readonly address: number
  readonly blockType: BlockType
  /** Header plus body bytes. */
  readonly size: number
}

/**
 * Completes the block in `block[0 .. size)`, whose body and metadata the caller wrote: fills the
 * header, zeroes the padding to the sector end and computes both checksums. Returns the bytes to
 * write (rounded up to whole sectors).
 */
export function sealBlock(block: Uint8Array, fields: BlockFields): Uint8Array {
  const { size } = fields
  assert(size > headerSize && size <= block.length, () => `a block of ${size} bytes does not fit its ${block.length}-byte buffer`)
  assert(Number.isSafeInteger(fields.address) && fields.address >= 1, () => `block address ${fields.address}`)
  const end = sectorsCeil(size)
  assert(end <= block.length, () => "block buffer shorter than its sectors")
  block.fill(0, size, end)
  block.fill(0, 0, metadataOffset)
  block.fill(0, BlockLayout.address.offset, headerSize)
  block.set(fields.cluster, FrameLayout.cluster.offset)
  writeU32(block, FrameLayout.size.offset, size)
  writeU32(block, FrameLayout.release.offset, releaseScarab)
  block[FrameLayout.command.offset] = Command.block
  const view = new DataView(block.buffer, block.byteOffset, headerSize)
  view.setBigUint64(BlockLayout.address.offset, BigInt(fields.address), true)
  block[BlockLayout.block_type.offset] = fields.blockType
  checksumInto(block.subarray(headerSize, size), block, FrameLayout.checksum_body.offset)
  checksumInto(block.subarray(checksumSize, headerSize), block, FrameLayout.checksum.offset)
  assert(headerInvalid(block) === undefined, () => `sealed an invalid block header: ${headerInvalid(block)}`)
  return block.subarray(0, end)
}

/**
 * Why the bytes read at `address` are not the block named by (`address`, `checksum`), or
 * undefined. The checks of §6.2, in order. `block` holds the bytes that were read; a size
 * claiming more than that is itself a reason.
 */
export function blockInvalid(block: Uint8Array, address: number, checksum: Uint8Array, cluster: Uint8Array, blockSize: number): string | undefined {
  const expected = new Uint8Array(checksumSize)
  checksumInto(block.subarray(checksumSize, headerSize), expected, 0)
  if (!u128Equal(expected, 0, block, FrameLayout.checksum.offset)) return "invalid header checksum"
  if (block[FrameLayout.command.offset] !== Command.block) return "not a block (misdirected I/O from another zone)"
  if (!u128Equal(block, FrameLayout.cluster.offset, cluster, 0)) return "a block of another cluster"
  const size = readU32(block, FrameLayout.size.offset)
  if (size <= headerSize || size > blockSize || sectorsCeil(size) > block.length) return `block size ${size} out of range`
  checksumInto(block.subarray(headerSize, size), expected, 0)
  if (!u128Equal(expected, 0, block, FrameLayout.checksum_body.offset)) return "invalid body checksum"
  if (!u128Equal(block, FrameLayout.checksum.offset, checksum, 0)) return "unexpected checksum (a stale block from an earlier use of the address, or a misdirected write)"
  for (let i = size; i < sectorsCeil(size); i++) if (block[i] !== 0) return "padding is not zero"
  const header = headerInvalid(block)
  assert(header === undefined, () => `a block with the expected checksum has an invalid header: ${header}`)
  const at = new DataView(block.buffer, block.byteOffset, headerSize).getBigUint64(BlockLayout.address.offset, true)
  assert(at === BigInt(address), () => `block ${address} with the expected checksum names address ${at}`)
  return undefined
}

export const blockSizeOf = (block: Uint8Array): number => readU32(block, FrameLayout.size.offset)
export const blockTypeOf = (block: Uint8Array): number => block[BlockLayout.block_type.offset]!

