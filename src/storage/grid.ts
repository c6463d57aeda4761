/**
 * The grid (storage.md §6): the data file's elastic zone of fixed-size blocks, addressed from
 * 1. It reads and writes whole blocks, checks every read against the (address, checksum) its
 * caller holds (block.ts), and keeps recently written and read blocks in a small cache.
 *
 * The grid does not decide what is live: the free set does, and checkpoints never overwrite a
 * block the durable superblock can reach (copy-on-write). A block that fails its checks cannot
 * be repaired by a replica of one; the read fails with `GridReadError` naming the block.
 */
import { Effect, Schema } from "effect"
import { assert } from "../assert.ts"
import { blockInvalid, blockSizeOf } from "./block.ts"
import { GridCache } from "./grid_cache.ts"
import type { Layout } from "./layout.ts"
import { type Storage, type StorageError, sectorSize, sectorsCeil } from "./storage.ts"

export class GridReadError extends Schema.TaggedError<GridReadError>()("GridReadError", {
  path: Schema.String,
  address: Schema.Number,
  what: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: grid block ${this.address} (${this.what}) cannot be read: ${this.reason}`
  }
}

/** Blocks the cache keeps by default: a few checkpoints' trailers and directories. */
export const gridCacheBlocksDefault = 64

export class Grid {
  readonly layout: Layout
  readonly cluster: Uint8Array
  readonly blockSize: number
  private readonly storage: Storage["Service"]
  private readonly cache: GridCache
  private readonly readBuffer: Uint8Array
  /** Reads share one buffer: one at a time (checkpoint loading reads blocks in order). */
  private reading = false

  constructor(storage: Storage["Service"], layout: Layout, cluster: Uint8Array, cacheBlocksMax = gridCacheBlocksDefault) {
    this.storage = storage
    this.layout = layout
    this.cluster = cluster
    this.blockSize = layout.config.blockSize
    this.cache = new GridCache(cacheBlocksMax)
    this.readBuffer = storage.allocate(this.blockSize)
  }

  /** A block-sized, sector-aligned buffer to build a block in. */
  allocate(): Uint8Array {
    return this.storage.allocate(this.blockSize)
  }

  /**
   * Writes a sealed block (`sealBlock`'s result, in memory from `allocate`) at `address`.
   * Durable when it succeeds; the block is cached as written.
   */
  write(address: number, sealed: Uint8Array): Effect.Effect<void, StorageError> {
    const size = blockSizeOf(sealed)
    assert(sealed.length === sectorsCeil(size) && sealed.length <= this.blockSize, () => "write the sealed block's sectors")
    return Effect.map(this.storage.write(this.layout.grid, this.offsetOf(address), sealed), () => {
      this.cache.insert(address, sealed.slice(0, size))
    })
  }

  /**
   * The block at `address` whose checksum is `checksum`, from the cache or the disk; `what`
   * names it in errors. The returned bytes are the block's (size bytes); do not modify them.
   */
  read(address: number, checksum: Uint8Array, what: string): Effect.Effect<Uint8Array, StorageError | GridReadError> {
    const cached = this.cache.lookup(address, checksum)
    if (cached !== undefined) return Effect.succeed(cached)
    const { storage, layout, blockSize, cluster, cache } = this
    const buffer = this.readBuffer
    const offset = this.offsetOf(address)
    const grid = this
    return Effect.gen(function* () {
      assert(!grid.reading, () => "grid reads overlap: they share one buffer")
      grid.reading = true
      yield* storage.read(layout.grid, offset, buffer.subarray(0, sectorSize))
      const size = blockSizeOf(buffer)
      if (size > sectorSize && size <= blockSize) yield* storage.read(layout.grid, offset + sectorSize, buffer.subarray(sectorSize, sectorsCeil(size)))
      const invalid = blockInvalid(buffer.subarray(0, Math.min(sectorsCeil(Math.max(size, 1)), blockSize)), address, checksum, cluster, blockSize)
      if (invalid !== undefined) return yield* new GridReadError({ path: storage.path, address, what, reason: invalid })
      const block = buffer.slice(0, size)
      cache.insert(address, block)
      return block
    }).pipe(Effect.ensuring(Effect.sync(() => { grid.reading = false })))
  }

  /** Forgets a block that was freed: its address may hold another block from now on. */
  evict(address: number): void {
    this.cache.remove(address)
  }

  private offsetOf(address: number): number {
    assert(Number.isSafeInteger(address) && address >= 1 && address <= this.layout.gridBlocksMax, () => `grid address ${address} out of 1..${this.layout.gridBlocksMax}`)
    return (address - 1) * this.blockSize
  }
}
