/**
 * The grid cache (storage.md §6.6): recently written and read blocks by address, bounded in
 * blocks, least recently used evicted first. A lookup names the checksum it expects as well as
 * the address, so a cached block is returned only if it is exactly the block asked for: an
 * address reused by a later checkpoint can never serve the earlier block's bytes.
 *
 * Rung R1 reads the grid only at startup and writes it at checkpoints, so a small LRU is enough;
 * the set-associative CLOCK cache of lsm.md §10 arrives with the LSM forest.
 */
import { assert } from "../assert.ts"
import { u128Equal } from "../protocol/header.ts"

export class GridCache {
  readonly blocksMax: number
  /** Map iteration order is insertion order: the first entry is the least recently used. */
  private readonly blocks = new Map<number, Uint8Array>()
  hits = 0
  misses = 0

  constructor(blocksMax: number) {
    assert(Number.isInteger(blocksMax) && blocksMax >= 0, () => `cache of ${blocksMax} blocks`)
    this.blocksMax = blocksMax
  }

  get size(): number {
    return this.blocks.size
  }

  /** The cached block at `address` if its checksum (its first 16 bytes) is `checksum`. */
  lookup(address: number, checksum: Uint8Array): Uint8Array | undefined {
    const block = this.blocks.get(address)
    if (block === undefined || !u128Equal(block, 0, checksum, 0)) {
      this.misses++
      return undefined
    }
    this.hits++
    this.blocks.delete(address)
    this.blocks.set(address, block)
    return block
  }

  insert(address: number, block: Uint8Array): void {
    if (this.blocksMax === 0) return
    this.blocks.delete(address)
    this.blocks.set(address, block)
    if (this.blocks.size > this.blocksMax) this.blocks.delete(this.blocks.keys().next().value!)
    assert(this.blocks.size <= this.blocksMax, () => "grid cache over its bound")
  }

  remove(address: number): void {
    this.blocks.delete(address)
  }
}
