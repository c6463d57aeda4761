/**
 * Grid blocks, the grid cache, the grid on the simulated disk and checkpoint trailers
 * (storage.md §6.1, §6.2, §6.4, §6.6; `block.ts`, `grid_cache.ts`, `grid.ts`, `trailer.ts`):
 * - sealing fills the header and zeroes the padding deterministically; validation rejects each
 *   failure of §6.2 with its reason, in the order of §6.2;
 * - the cache answers only for the exact (address, checksum) and stays within its bound (LRU);
 * - a grid read checks the block against the reference its caller holds: a corrupt sector, a
 *   stale block at a reused address, a misdirected write or a never-written address is a
 *   GridReadError naming the address;
 * - trailers round-trip for 0, 1, one block body, one more, several blocks; a broken chain, a
 *   wrong type or a wrong reference is a GridReadError; a full grid is a GridFullError.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import fc from "fast-check"
import { SimulatedDisk } from "../../src/layers/disk_sim.ts"
import { u128ToBytes } from "../../src/protocol/build.ts"
import { checksum } from "../../src/protocol/checksum_native.ts"
import { BlockLayout, Command, FrameLayout, headerSize, readU32, releaseScarab } from "../../src/protocol/header.ts"
import { headerInvalid, rootPrepare } from "../../src/protocol/header_rules.ts"
import { blockInvalid, blockSizeOf, BlockType, blockTypeOf, sealBlock, TrailerMetadata, ValueMetadata } from "../../src/storage/block.ts"
import { trailerEmpty, type TrailerReference } from "../../src/storage/checkpoint_state.ts"
import { FreeSet } from "../../src/storage/free_set.ts"
import { Grid, GridReadError } from "../../src/storage/grid.ts"
import { GridCache } from "../../src/storage/grid_cache.ts"
import { layoutOf, type StorageConfig, testConfig } from "../../src/storage/layout.ts"
import { sectorSize, sectorsCeil, Storage } from "../../src/storage/storage.ts"
import { GridFullError, readTrailer, trailerBlockCount, writeTrailer } from "../../src/storage/trailer.ts"
import { assertAborts } from "../aborts.ts"

/**
 * The test profile shrunk so that a simulated data file is half a megabyte: 8 KiB blocks (two
 * sectors, so multi-sector reads and multi-block trailers are cheap), 32 grid blocks.
 */
const smallConfig: StorageConfig = {
  ...testConfig, journalSlotCount: 32, checkpointOps: 16, pipelineMax: 8, messageSizeMax: sectorSize, clientsMax: 1, blockSize: 2 * sectorSize,
  storageSizeMax: 240 * 1024 + 32 * 2 * sectorSize
}
const layout = layoutOf(smallConfig)
const blockSize = layout.config.blockSize
const bodyMax = blockSize - headerSize
const cluster = u128ToBytes(7n)
const otherCluster = u128ToBytes(8n)
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")

/** A sealed value block at `address` with `bodySize` bytes of `fill`, built in a buffer full of garbage. */
function block(address: number, bodySize: number, fill = 0x5a, garbage = 0xee): Uint8Array {
  const buffer = new Uint8Array(blockSize).fill(garbage)
  buffer.fill(fill, headerSize, headerSize + bodySize)
  const metadata = new DataView(buffer.buffer, 0, headerSize)
  metadata.setUint32(ValueMetadata.countMax, 100, true)
  metadata.setUint32(ValueMetadata.count, bodySize, true)
  metadata.setUint32(ValueMetadata.rowSize, 1, true)
  // The rest of the metadata must be zero: the caller owns all 96 bytes.
  buffer.fill(0, ValueMetadata.treeId, BlockLayout.metadata_bytes.offset + 96)
  return sealBlock(buffer, { cluster, address, blockType: BlockType.value, size: headerSize + bodySize })
}

const checksumOf = (sealed: Uint8Array) => sealed.slice(0, 16)
const invalid = (bytes: Uint8Array, address: number, expected: Uint8Array, c = cluster) => blockInvalid(bytes, address, expected, c, blockSize)

// --- blocks --------------------------------------------------------------------------------------

describe("grid blocks: seal and validate (§6.1, §6.2)", () => {
  it("seals a valid block header and zero padding, whatever the buffer held", () => {
    for (const bodySize of [1, sectorSize - headerSize, sectorSize - headerSize + 1, bodyMax]) {
      const sealed = block(9, bodySize)
      assert.strictEqual(sealed.length, sectorsCeil(headerSize + bodySize))
      assert.isUndefined(headerInvalid(sealed))
      assert.isUndefined(invalid(sealed, 9, checksumOf(sealed)), `body ${bodySize}`)
      assert.strictEqual(blockSizeOf(sealed), headerSize + bodySize)
      assert.strictEqual(blockTypeOf(sealed), BlockType.value)
      assert.strictEqual(sealed[FrameLayout.command.offset], Command.block)
      assert.strictEqual(new DataView(sealed.buffer).getBigUint64(BlockLayout.address.offset, true), 9n)
      // A block's bytes depend only on its content (§7.3): view, replica, epoch are zero, the
      // release is Scarab's, the padding to the sector end is zero.
      assert.strictEqual(readU32(sealed, FrameLayout.view.offset), 0)
      assert.strictEqual(sealed[FrameLayout.replica.offset], 0)
      assert.strictEqual(readU32(sealed, FrameLayout.release.offset), releaseScarab)
      assert.isTrue(sealed.subarray(headerSize + bodySize).every((b) => b === 0), "padding")
      // The metadata is the caller's and survives sealing.
      assert.strictEqual(new DataView(sealed.buffer).getUint32(ValueMetadata.count, true), bodySize)
    }
  })

  it("is deterministic: garbage left in the buffer's header and padding does not reach the bytes", () => {
    assert.strictEqual(hex(block(3, 5000, 1, 0x00)), hex(block(3, 5000, 1, 0xff)))
    assert.notStrictEqual(hex(block(3, 5000, 1)), hex(block(4, 5000, 1)), "the address is part of the block")
    assert.notStrictEqual(hex(checksumOf(block(3, 5000, 1))), hex(checksumOf(block(3, 5000, 2))), "the body is covered")
  })

  it("refuses blocks it cannot seal", () => {
    const buffer = new Uint8Array(blockSize)
    assertAborts(() => sealBlock(buffer, { cluster, address: 1, blockType: BlockType.value, size: headerSize }), "an empty body")
    assertAborts(() => sealBlock(buffer, { cluster, address: 0, blockType: BlockType.value, size: headerSize + 1 }), "address 0")
    assertAborts(() => sealBlock(buffer, { cluster, address: 1, blockType: BlockType.value, size: blockSize + 1 }), "larger than its buffer")
    assertAborts(() => sealBlock(new Uint8Array(sectorSize + 100), { cluster, address: 1, blockType: BlockType.value, size: sectorSize + 1 }),
      "sectors past the buffer")
    assertAborts(() => sealBlock(buffer, { cluster, address: 1, blockType: 0 as BlockType, size: headerSize + 1 }), "block type 0")
  })

  // Each §6.2 failure, produced the way the fault would produce it, gives its own reason.
  it("names each failure of §6.2", () => {
    const good = block(5, 5000)
    const expected = checksumOf(good)
    const copy = () => good.slice()

    const headerFlip = copy()
    headerFlip[FrameLayout.size.offset + 2] ^= 1
    assert.strictEqual(invalid(headerFlip, 5, expected), "invalid header checksum")
    const checksumFlip = copy()
    checksumFlip[0] ^= 1
    assert.strictEqual(invalid(checksumFlip, 5, expected), "invalid header checksum")
    const zeros = new Uint8Array(2 * sectorSize)
    assert.strictEqual(invalid(zeros, 5, expected), "invalid header checksum")

    // A WAL prepare (another zone) read at the block's place: a valid header, not a block.
    const prepare = new Uint8Array(2 * sectorSize)
    prepare.set(rootPrepare(cluster))
    assert.match(String(invalid(prepare, 5, expected)), /^not a block/)

    assert.strictEqual(invalid(good, 5, expected, otherCluster), "a block of another cluster")

    const bodyFlip = copy()
    bodyFlip[headerSize + 4999] ^= 1
    assert.strictEqual(invalid(bodyFlip, 5, expected), "invalid body checksum")

    // A stale block: the same address held another block in an earlier checkpoint.
    const stale = block(5, 5000, 0x11)
    assert.match(String(invalid(stale, 5, expected)), /^unexpected checksum/)
    // A misdirected write: a valid block of address 6 found where block 5 should be.
    const misdirected = block(6, 5000)
    assert.match(String(invalid(misdirected, 5, expected)), /^unexpected checksum/)

    // Padding is outside both checksums: checked on its own.
    const padding = copy()
    padding[headerSize + 5000] = 1
    assert.strictEqual(invalid(padding, 5, expected), "padding is not zero")
    const lastPadding = copy()
    lastPadding[lastPadding.length - 1] = 0x80
    assert.strictEqual(invalid(lastPadding, 5, expected), "padding is not zero")

    // A size claiming more than was read, or more than a block.
    assert.match(String(invalid(good.subarray(0, sectorSize), 5, expected)), /^block size 5256 out of range/)
    assert.match(String(blockInvalid(good, 5, expected, cluster, sectorSize)), /^block size 5256 out of range/)
  })

  it("checks in the order of §6.2", () => {
    const good = block(5, 5000)
    const expected = checksumOf(good)
    // Bad body and unexpected checksum: the body is reported (step 3 before step 4).
    const both = block(5, 5000, 0x22)
    both[headerSize + 1] ^= 1
    assert.strictEqual(invalid(both, 5, expected), "invalid body checksum")
    // Unexpected checksum and bad padding: step 4 before step 5.
    const stalePadded = block(5, 5000, 0x22)
    stalePadded[headerSize + 5000] = 1
    assert.match(String(invalid(stalePadded, 5, expected)), /^unexpected checksum/)
    // Another cluster's block is rejected before its body is even looked at.
    const foreign = block(5, 5000)
    foreign[headerSize] ^= 1
    assert.strictEqual(invalid(foreign, 5, expected, otherCluster), "a block of another cluster")
  })

  it("a reference whose checksum names a block at another address is a defect", () => {
    const good = block(5, 100)
    assertAborts(() => invalid(good, 6, checksumOf(good)), "block 5's checksum asked for at address 6")
  })

  // Any single flipped byte of the sectors written is caught (header, body or padding).
  it("a flipped byte anywhere in a sealed block is detected (property)", () => {
    const good = block(5, 3000)
    const expected = checksumOf(good)
    fc.assert(fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const bad = good.slice()
      bad[i] ^= x
      assert.isDefined(invalid(bad, 5, expected), `byte ${i}`)
    }), { numRuns: 2000 })
  })
})

// --- the cache -----------------------------------------------------------------------------------

describe("grid cache (§6.6)", () => {
  it("hits only for the exact address and checksum", () => {
    const cache = new GridCache(4)
    const a = block(1, 100)
    cache.insert(1, a)
    assert.strictEqual(cache.lookup(1, checksumOf(a)), a)
    assert.isUndefined(cache.lookup(1, checksumOf(block(1, 100, 0x33))), "another block at the same address")
    assert.isUndefined(cache.lookup(2, checksumOf(a)), "the same block at another address")
    assert.deepStrictEqual([cache.hits, cache.misses], [1, 2])
    // A new block at a reused address replaces the old one: the old checksum misses.
    const b = block(1, 200)
    cache.insert(1, b)
    assert.strictEqual(cache.size, 1)
    assert.isUndefined(cache.lookup(1, checksumOf(a)))
    assert.strictEqual(cache.lookup(1, checksumOf(b)), b)
    cache.remove(1)
    assert.isUndefined(cache.lookup(1, checksumOf(b)))
    assert.strictEqual(cache.size, 0)
  })

  it("evicts the least recently used block beyond its bound", () => {
    const cache = new GridCache(3)
    const blocks = [1, 2, 3, 4, 5].map((a) => block(a, 64))
    for (const a of [1, 2, 3]) cache.insert(a, blocks[a - 1]!)
    // Touch 1: 2 is now the least recently used.
    assert.isDefined(cache.lookup(1, checksumOf(blocks[0]!)))
    cache.insert(4, blocks[3]!)
    assert.strictEqual(cache.size, 3)
    assert.isUndefined(cache.lookup(2, checksumOf(blocks[1]!)))
    for (const a of [1, 3, 4]) assert.isDefined(cache.lookup(a, checksumOf(blocks[a - 1]!)), `block ${a}`)
    // Re-inserting an address refreshes it: 1 survives the next eviction, 3 does not.
    cache.insert(1, blocks[0]!)
    cache.insert(5, blocks[4]!)
    assert.isUndefined(cache.lookup(3, checksumOf(blocks[2]!)))
    assert.isDefined(cache.lookup(1, checksumOf(blocks[0]!)))
  })

  it("with a bound of zero, caches nothing", () => {
    const cache = new GridCache(0)
    const a = block(1, 64)
    cache.insert(1, a)
    assert.strictEqual(cache.size, 0)
    assert.isUndefined(cache.lookup(1, checksumOf(a)))
  })

  it("never exceeds its bound (property)", () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 5 }), fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 60 }), (bound, addresses) => {
      const cache = new GridCache(bound)
      const recent: Array<number> = []
      const sealed = new Map<number, Uint8Array>()
      for (const a of addresses) {
        const b = sealed.get(a) ?? block(a, 16)
        sealed.set(a, b)
        cache.insert(a, b)
        recent.splice(recent.indexOf(a) >>> 0, recent.includes(a) ? 1 : 0)
        recent.push(a)
        assert.isAtMost(cache.size, bound)
      }
      // Exactly the `bound` most recently inserted addresses are cached.
      const kept = new Set(recent.slice(Math.max(0, recent.length - bound)))
      for (const [a, b] of sealed) assert.strictEqual(cache.lookup(a, checksumOf(b)) !== undefined, bound > 0 && kept.has(a), `address ${a}`)
    }), { numRuns: 300 })
  })
})

// --- the grid on the simulated disk ----------------------------------------------------------------

const newDisk = (seed: number) => new SimulatedDisk({ seed, sizeBytes: layout.config.storageSizeMax })
const gridOffset = (address: number) => layout.grid.start + (address - 1) * blockSize

const withGrid = <A, E>(disk: SimulatedDisk, body: (grid: Grid, storage: Storage["Service"]) => Effect.Effect<A, E>, cacheBlocks?: number) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    return yield* body(new Grid(storage, layout, cluster, cacheBlocks), storage)
  }).pipe(Effect.provide(disk.layer()))

/** The block in grid memory (Grid.allocate), as the write path hands it over. */
function sealedIn(grid: Grid, address: number, bodySize: number, fill = 0x5a): Uint8Array {
  const buffer = grid.allocate()
  buffer.set(block(address, bodySize, fill))
  return buffer.subarray(0, sectorsCeil(headerSize + bodySize))
}

describe("grid reads and writes on the simulated disk", () => {
  it.effect("reads back what it wrote, from the cache and then from the disk", () => Effect.gen(function* () {
    const disk = newDisk(1)
    const sizes = [1, sectorSize - headerSize, sectorSize - headerSize + 1, bodyMax]
    const written = yield* withGrid(disk, (grid) => Effect.gen(function* () {
      const blocks = sizes.map((size, i) => sealedIn(grid, i + 1, size, 0x40 + i))
      for (const [i, b] of blocks.entries()) yield* grid.write(i + 1, b)
      const reads = disk.stats.reads
      for (const [i, b] of blocks.entries()) assert.strictEqual(hex(yield* grid.read(i + 1, checksumOf(b), "test")), hex(b.subarray(0, blockSizeOf(b))))
      assert.strictEqual(disk.stats.reads, reads, "written blocks are cached")
      return blocks
    }))
    // A new process: an empty cache, so the blocks come from the disk.
    disk.crash()
    yield* withGrid(disk, (grid) => Effect.gen(function* () {
      const reads = disk.stats.reads
      for (const [i, b] of written.entries()) {
        const got = yield* grid.read(i + 1, checksumOf(b), "test")
        assert.strictEqual(got.length, headerSize + sizes[i]!)
        assert.strictEqual(hex(got), hex(b.subarray(0, blockSizeOf(b))))
      }
      // One read for a one-sector block, two for larger ones (the header sector, then the rest).
      assert.strictEqual(disk.stats.reads - reads, 1 + 1 + 2 + 2)
      // Now cached: no more disk reads.
      yield* grid.read(4, checksumOf(written[3]!), "test")
      assert.strictEqual(disk.stats.reads - reads, 6)
      // Evicted: read from the disk again.
      grid.evict(4)
      yield* grid.read(4, checksumOf(written[3]!), "test")
      assert.strictEqual(disk.stats.reads - reads, 8)
    }))
  }))

  // A corrupt sector is a GridReadError naming the address and what the block was, with the
  // reason of §6.2.
  it.effect("a corrupted sector makes the read fail with GridReadError naming the address", () => Effect.gen(function* () {
    // Sector 0 holds the header and the body's start: the flipped byte lands in one or the other.
    for (const [sector, reason] of [[0, /^invalid (header|body) checksum$/], [1, /^invalid body checksum$/]] as const) {
      const disk = newDisk(2 + sector)
      const sealed = yield* withGrid(disk, (grid) => Effect.gen(function* () {
        const b = sealedIn(grid, 7, bodyMax)
        yield* grid.write(7, b)
        return b.slice()
      }))
      disk.corruptSector(gridOffset(7) + sector * sectorSize)
      disk.crash()
      const error = yield* Effect.flip(withGrid(disk, (grid) => grid.read(7, checksumOf(sealed), "free set: acquired")))
      assert.instanceOf(error, GridReadError)
      const e = error as GridReadError
      assert.deepStrictEqual([e.address, e.what], [7, "free set: acquired"])
      assert.match(e.reason, reason)
      assert.match(e.message, /grid block 7 \(free set: acquired\) cannot be read: /)
      // The cache holds no trace of the failed read: rewriting the block heals it.
      yield* withGrid(disk, (grid) => Effect.gen(function* () {
        const again = grid.allocate()
        again.set(sealed)
        yield* grid.write(7, again.subarray(0, sealed.length))
        grid.evict(7)
        assert.strictEqual(hex(yield* grid.read(7, checksumOf(sealed), "x")), hex(sealed.subarray(0, blockSizeOf(sealed))))
      }))
    }
  }))

  it.effect("a stale block at a reused address, a misdirected write, a never-written address, a latent sector", () => Effect.gen(function* () {
    const disk = newDisk(5)
    yield* withGrid(disk, (grid, storage) => Effect.gen(function* () {
      const old = sealedIn(grid, 3, 500, 0x01)
      const oldChecksum = checksumOf(old)
      yield* grid.write(3, old)
      const fresh = sealedIn(grid, 3, 500, 0x02)
      yield* grid.write(3, fresh)
      // The old reference finds the new block (in the cache and on disk): unexpected checksum.
      const fromCache = yield* Effect.flip(grid.read(3, oldChecksum, "old"))
      assert.match((fromCache as GridReadError).reason, /^unexpected checksum/)
      // Block 4 written where block 5 belongs (a misdirected write), then both are read.
      const four = sealedIn(grid, 4, 700)
      yield* storage.write(layout.grid, gridOffset(5) - layout.grid.start, four)
      const five = block(5, 700)
      const misdirected = yield* Effect.flip(grid.read(5, checksumOf(five), "five"))
      assert.match((misdirected as GridReadError).reason, /^unexpected checksum/)
      const missing = yield* Effect.flip(grid.read(4, checksumOf(four), "four"))
      assert.strictEqual((missing as GridReadError).address, 4)
      // Never written: the disk returns random bytes.
      const never = yield* Effect.flip(grid.read(20, checksumOf(five), "never"))
      assert.strictEqual((never as GridReadError).reason, "invalid header checksum")
      // The last address of the grid is addressable; one past it is a defect.
      const last = yield* Effect.flip(grid.read(layout.gridBlocksMax, checksumOf(five), "last"))
      assert.instanceOf(last, GridReadError)
      const beyond = yield* Effect.exit(Effect.suspend(() => grid.read(layout.gridBlocksMax + 1, checksumOf(five), "beyond")))
      assert.isTrue(Exit.isFailure(beyond) && Exit.hasDies(beyond))
    }))
    // A latent sector error is zero-filled by the storage layer: the block fails validation.
    const sealed = yield* withGrid(disk, (grid) => Effect.gen(function* () {
      const b = sealedIn(grid, 9, bodyMax)
      yield* grid.write(9, b)
      return b.slice()
    }))
    disk.makeSectorLatent(gridOffset(9) + sectorSize)
    disk.crash()
    const latent = yield* Effect.flip(withGrid(disk, (grid) => grid.read(9, checksumOf(sealed), "latent")))
    assert.strictEqual((latent as GridReadError).reason, "invalid body checksum")
  }))

  it.effect("a cache of zero blocks always reads the disk", () => Effect.gen(function* () {
    const disk = newDisk(6)
    yield* withGrid(disk, (grid) => Effect.gen(function* () {
      const b = sealedIn(grid, 2, 100)
      yield* grid.write(2, b)
      const reads = disk.stats.reads
      yield* grid.read(2, checksumOf(b), "x")
      yield* grid.read(2, checksumOf(b), "x")
      assert.strictEqual(disk.stats.reads - reads, 2)
    }), 0)
  }))
})

// --- trailers ------------------------------------------------------------------------------------

/** Deterministic pseudo-random bytes. */
function bytesFor(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size)
  let x = seed * 2654435761 + 1
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    bytes[i] = x >>> 24
  }
  return bytes
}

describe("checkpoint trailers (§6.4)", () => {
  const sizes = [0, 1, bodyMax - 1, bodyMax, bodyMax + 1, 3 * bodyMax + 17, 4 * bodyMax]

  // Proves the round trip for each size through a fresh process (empty cache, so every block is
  // read and validated from the disk), and the shape of what was written: the block count,
  // addresses acquired in order from the free set, each block's type and its link to the one
  // before, and the reference (last block, size, checksum of the whole string).
  it.effect("round-trips trailers of 0, 1, one body, one more, several blocks", () => Effect.gen(function* () {
    for (const [i, size] of sizes.entries()) {
      const disk = newDisk(10 + i)
      const freeSet = new FreeSet(layout.gridBlocksMax)
      // Something already acquired: the trailer takes the lowest free blocks around it.
      const r = freeSet.reserve(2)!
      freeSet.acquire(r)
      freeSet.acquire(r)
      freeSet.forfeit(r)
      const bytes = bytesFor(size, i)
      const written = yield* withGrid(disk, (grid) => writeTrailer(grid, freeSet, BlockType.free_set, bytes, "test"))
      const count = trailerBlockCount(size, blockSize)
      assert.strictEqual(count, Math.ceil(size / bodyMax))
      assert.deepStrictEqual(written.blocks, Array.from({ length: count }, (_, k) => k + 3), `size ${size}`)
      assert.strictEqual(written.reference.size, size)
      if (size === 0) assert.deepStrictEqual(written.reference, trailerEmpty)
      else {
        assert.strictEqual(written.reference.lastBlockAddress, written.blocks[count - 1])
        assert.strictEqual(hex(written.reference.checksum), hex(checksum(bytes)))
      }
      assert.strictEqual(freeSet.count, 2 + count)

      disk.crash()
      const read = yield* withGrid(disk, (grid) => Effect.gen(function* () {
        const result = yield* readTrailer(grid, written.reference, BlockType.free_set, "test", "test")
        // The chain as stored, walked from the reference: types, sizes and links, and the first
        // block naming no predecessor (address 0, zero checksum).
        let address = written.reference.lastBlockAddress
        let expected = written.reference.lastBlockChecksum
        for (let k = count - 1; k >= 0; k--) {
          assert.strictEqual(address, written.blocks[k])
          const b = yield* grid.read(address, expected, "chain")
          assert.strictEqual(blockTypeOf(b), BlockType.free_set)
          assert.strictEqual(blockSizeOf(b), headerSize + Math.min(bodyMax, size - k * bodyMax))
          address = Number(new DataView(b.buffer, b.byteOffset, headerSize).getBigUint64(TrailerMetadata.previousAddress, true))
          expected = b.slice(TrailerMetadata.previousChecksum, TrailerMetadata.previousChecksum + 16)
        }
        assert.strictEqual(address, 0)
        assert.isTrue(expected.every((x) => x === 0))
        return result
      }))
      assert.strictEqual(hex(read.bytes), hex(bytes), `size ${size}`)
      assert.deepStrictEqual(read.blocks, written.blocks)
    }
  }))

  it.effect("writing the same bytes twice gives the same blocks (storage determinism)", () => Effect.gen(function* () {
    const bytes = bytesFor(3 * bodyMax + 5, 99)
    const run = (seed: number) => Effect.gen(function* () {
      const disk = newDisk(seed)
      const freeSet = new FreeSet(layout.gridBlocksMax)
      const written = yield* withGrid(disk, (grid) => writeTrailer(grid, freeSet, BlockType.client_sessions, bytes, "test"))
      const raw = yield* Effect.gen(function* () {
        const storage = yield* Storage
        const buffer = storage.allocate(written.blocks.length * blockSize)
        yield* storage.read(layout.grid, gridOffset(written.blocks[0]!) - layout.grid.start, buffer)
        return hex(buffer)
      }).pipe(Effect.provide(disk.layer()))
      return { reference: hex(written.reference.lastBlockChecksum), blocks: written.blocks, raw }
    })
    const first = yield* run(20)
    const second = yield* run(21)
    assert.deepStrictEqual(first.blocks, second.blocks)
    assert.strictEqual(first.reference, second.reference)
    // The bytes of the blocks up to each one's sector end are equal (the rest of each 8 KiB slot
    // is never written and never trusted).
    const used = (raw: string) => first.blocks.map((_, k) => raw.slice(2 * k * blockSize, 2 * (k * blockSize + sectorsCeil(headerSize + Math.min(bodyMax, bytes.length - k * bodyMax)))))
    assert.deepStrictEqual(used(first.raw), used(second.raw))
  }))

  // A corrupt block anywhere in the chain (the last, a middle one, the first) breaks the read
  // with a GridReadError naming that block.
  it.effect("a corrupt block in the chain is a GridReadError naming it", () => Effect.gen(function* () {
    const bytes = bytesFor(3 * bodyMax + 17, 7)
    for (const victim of [0, 1, 2, 3]) {
      const disk = newDisk(30 + victim)
      const freeSet = new FreeSet(layout.gridBlocksMax)
      const written = yield* withGrid(disk, (grid) => writeTrailer(grid, freeSet, BlockType.free_set, bytes, "test"))
      assert.strictEqual(written.blocks.length, 4)
      // The full blocks' body sector, the short last block's only sector.
      disk.corruptSector(gridOffset(written.blocks[victim]!) + (victim === 1 || victim === 2 ? sectorSize : 0))
      disk.crash()
      const error = yield* Effect.flip(withGrid(disk, (grid) => readTrailer(grid, written.reference, BlockType.free_set, "free set: released", "test")))
      assert.instanceOf(error, GridReadError)
      assert.strictEqual((error as GridReadError).address, written.blocks[victim])
      assert.strictEqual((error as GridReadError).what, "free set: released")
    }
  }))

  it.effect("a wrong block type, a wrong size or a wrong checksum in the reference is refused", () => Effect.gen(function* () {
    const disk = newDisk(40)
    const freeSet = new FreeSet(layout.gridBlocksMax)
    const bytes = bytesFor(2 * bodyMax + 100, 3)
    yield* withGrid(disk, (grid) => Effect.gen(function* () {
      const written = yield* writeTrailer(grid, freeSet, BlockType.manifest, bytes, "test")
      const read = (reference: TrailerReference, type: BlockType = BlockType.manifest) =>
        Effect.flip(readTrailer(grid, reference, type, "directory", "test")) as Effect.Effect<GridReadError>
      const ref = written.reference
      assert.match((yield* read(ref, BlockType.free_set)).reason, /^block type 3, expected 1/)
      // One chunk fewer than the chain has: the last chunk's length disagrees.
      assert.match((yield* read({ ...ref, size: ref.size - 100 })).reason, /^chunk of 100 bytes, expected/)
      // Exactly one block body fewer: the chain is longer than the size says.
      assert.match((yield* read({ ...ref, size: ref.size - bodyMax })).reason, /chunk of|longer than/)
      // More blocks than the chain has: it ends early.
      const longer = yield* read({ ...ref, size: ref.size + 2 * bodyMax })
      assert.match(longer.reason, /chunk of|the chain ends/)
      // The whole string's checksum disagrees: every block is fine, the trailer is not.
      const wrong = yield* read({ ...ref, checksum: new Uint8Array(16).fill(1) })
      assert.strictEqual(wrong.reason, "the trailer's bytes do not match its checksum")
      assert.strictEqual(wrong.address, ref.lastBlockAddress)
      // A last block checksum that names nothing on disk.
      const stale = yield* read({ ...ref, lastBlockChecksum: new Uint8Array(16).fill(2) })
      assert.match(stale.reason, /^unexpected checksum/)
      // And the reference itself still reads.
      assert.strictEqual(hex((yield* readTrailer(grid, ref, BlockType.manifest, "directory", "test")).bytes), hex(bytes))
    }))
  }))

  it.effect("a chain whose first block names a predecessor is refused (the chain is longer than the size)", () => Effect.gen(function* () {
    const disk = newDisk(41)
    const freeSet = new FreeSet(layout.gridBlocksMax)
    yield* withGrid(disk, (grid) => Effect.gen(function* () {
      // Two one-block trailers; then a reference that claims only the second but whose block
      // was written as the successor of the first (a two-block chain read as one block).
      const two = yield* writeTrailer(grid, freeSet, BlockType.free_set, bytesFor(bodyMax + 10, 5), "test")
      const error = yield* Effect.flip(readTrailer(grid, { ...two.reference, size: 10 }, BlockType.free_set, "x", "test"))
      assert.strictEqual((error as GridReadError).reason, "the chain is longer than the trailer's size")
      assert.strictEqual((error as GridReadError).address, two.blocks[0])
    }))
  }))

  it.effect("a trailer that does not fit the storage limit is a GridFullError, and acquires nothing", () => Effect.gen(function* () {
    const disk = newDisk(50)
    const freeSet = new FreeSet(2)
    const error = yield* Effect.flip(withGrid(disk, (grid) => writeTrailer(grid, freeSet, BlockType.free_set, bytesFor(2 * bodyMax + 1, 1), "test")))
    assert.instanceOf(error, GridFullError)
    assert.deepStrictEqual([(error as GridFullError).blocksNeeded, (error as GridFullError).blocksMax], [3, 2])
    assert.strictEqual(freeSet.count, 0)
    // The free set is usable afterwards (no reservation was left open).
    const fits = yield* withGrid(disk, (grid) => writeTrailer(grid, freeSet, BlockType.free_set, bytesFor(2 * bodyMax, 1), "test"))
    assert.deepStrictEqual(fits.blocks, [1, 2])
  }))

  it.effect("an empty trailer reads as nothing without touching the disk", () => Effect.gen(function* () {
    const disk = newDisk(60)
    const reads = disk.stats.reads
    const read = yield* withGrid(disk, (grid) => readTrailer(grid, trailerEmpty, BlockType.free_set, "x", "test"))
    assert.strictEqual(read.bytes.length, 0)
    assert.deepStrictEqual(read.blocks, [])
    assert.strictEqual(disk.stats.reads, reads)
  }))
})
