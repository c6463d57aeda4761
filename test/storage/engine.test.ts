/**
 * The engine's error semantics (storage.md §5.3, §5.4), driven through a scripted in-memory
 * driver that can fail any request with any errno: the latent-sector-error read loop returns
 * exactly the good bytes and zeroes for the bad sectors (the I/O fuzzer of §8.4), writes that
 * fail are fatal and poison the Storage, short transfers continue, interrupted ones are retried,
 * and no more than `inFlightMax` requests ever reach the driver at once.
 */
import { constants as osConstants } from "node:os"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type DiskDriver, makeStorage } from "../../src/layers/disk_engine.ts"
import { Prng } from "../../src/prng.ts"
import { sectorSize, StorageFatalError, type Zone } from "../../src/storage/storage.ts"

const { EIO, EINTR, EBADF, ENOSPC } = osConstants.errno
const sizeBytes = 256 * sectorSize
const zone: Zone = { name: "grid", start: 0, sizeBytes }
/** File contents without zero bytes, so a zero-filled sector can never pass for data. */
const filePattern = Uint8Array.from({ length: sizeBytes }, (_, i) => ((i * 31) % 255) + 1)

interface Script {
  /** Result override for a request, or undefined to perform it. */
  read?: (position: number, length: number) => number | undefined
  write?: (position: number, length: number) => number | undefined
  sync?: () => number
  /** Largest transfer performed at once (short reads and writes beyond it). */
  transferMax?: number
}

function scriptedDriver(script: Script, inFlightMax = 8) {
  const file = new Uint8Array(sizeBytes)
  const counters = { reads: 0, writes: 0, inFlight: 0, inFlightPeak: 0 }
  const request = (perform: () => number) =>
    Effect.gen(function* () {
      counters.inFlight++
      counters.inFlightPeak = Math.max(counters.inFlightPeak, counters.inFlight)
      yield* Effect.yieldNow
      counters.inFlight--
      return perform()
    })
  const driver: DiskDriver = {
    implementation: "simulated",
    path: "/scripted/data",
    directIo: true,
    inFlightMax,
    allocateMemory: (size) => new Uint8Array(size),
    read: (buffer, position) =>
      request(() => {
        counters.reads++
        const override = script.read?.(position, buffer.length)
        if (override !== undefined) return override
        const length = Math.min(buffer.length, script.transferMax ?? buffer.length)
        buffer.set(file.subarray(position, position + length))
        return length
      }),
    write: (buffer, position) =>
      request(() => {
        counters.writes++
        const override = script.write?.(position, buffer.length)
        if (override !== undefined) return override
        const length = Math.min(buffer.length, script.transferMax ?? buffer.length)
        file.set(buffer.subarray(0, length), position)
        return length
      }),
    sync: Effect.sync(() => script.sync?.() ?? 0),
    sizeBytes: Effect.succeed(sizeBytes)
  }
  return { storage: makeStorage(driver), file, counters }
}

describe("Storage engine", () => {
  it.effect("reads around clusters of failing sectors: good bytes intact, bad sectors zeroed and reported", () =>
    Effect.gen(function* () {
      const prng = new Prng(2026)
      for (let iteration = 0; iteration < 150; iteration++) {
        const bad = new Set<number>()
        // Clusters of unreadable sectors, as real media produce them.
        for (let cluster = prng.below(4); cluster > 0; cluster--) {
          const first = prng.below(64)
          for (let sector = first; sector < first + 1 + prng.below(6); sector++) bad.add(sector * sectorSize)
        }
        const flaky = prng.nextFloat() * 0.5
        const { storage, file } = scriptedDriver({
          read: (position, length) => {
            for (let p = position; p < position + length; p += sectorSize) if (bad.has(p)) return -EIO
            // Multi-sector reads may also fail transiently; one-sector reads of good sectors never do.
            return length > sectorSize && prng.chance(flaky) ? -EIO : undefined
          }
        })
        file.set(filePattern)
        const sectors = 1 + prng.below(64)
        const offset = prng.below(64) * sectorSize
        const target = storage.allocate(sectors * sectorSize)
        const report = yield* storage.read(zone, offset, target)
        const expectedZeroed: Array<number> = []
        for (let sector = 0; sector < sectors; sector++) {
          const position = offset + sector * sectorSize
          const got = target.subarray(sector * sectorSize, (sector + 1) * sectorSize)
          if (bad.has(position)) {
            expectedZeroed.push(position)
            assert.isTrue(got.every((byte) => byte === 0), `sector at ${position} must be zeroed`)
          } else {
            assert.deepStrictEqual(got, file.subarray(position, position + sectorSize), `sector at ${position}`)
          }
        }
        assert.deepStrictEqual(report.sectorsZeroed, expectedZeroed)
      }
    }))

  it.effect("a failed write is fatal, names the file and offset, and poisons every later operation", () =>
    Effect.gen(function* () {
      const { storage } = scriptedDriver({ write: (position) => (position === 3 * sectorSize ? -EIO : undefined) })
      const buffer = storage.allocate(sectorSize)
      yield* storage.write(zone, 0, buffer)
      const error = yield* Effect.flip(storage.write(zone, 3 * sectorSize, buffer))
      assert.instanceOf(error, StorageFatalError)
      assert.strictEqual(error._tag, "StorageFatalError")
      if (error._tag !== "StorageFatalError") return
      assert.strictEqual(error.code, "EIO")
      assert.strictEqual(error.operation, "write")
      assert.strictEqual(error.offset, 3 * sectorSize)
      assert.include(error.message, "/scripted/data")
      assert.strictEqual(yield* Effect.flip(storage.write(zone, 0, buffer)), error)
      assert.strictEqual(yield* Effect.flip(storage.read(zone, 0, buffer)), error)
      assert.strictEqual(yield* Effect.flip(storage.sync), error)
    }))

  it.effect("disk full and failing fsync are fatal with their errno; a full disk says so, not that the device is failing", () =>
    Effect.gen(function* () {
      const full = scriptedDriver({ write: () => -ENOSPC })
      const error = yield* Effect.flip(full.storage.write(zone, sectorSize, full.storage.allocate(sectorSize)))
      assert.strictEqual(error._tag === "StorageFatalError" ? error.code : error._tag, "ENOSPC")
      assert.include(error.message, "no space left on the device")
      assert.notInclude(error.message, "cannot be trusted")
      const syncing = scriptedDriver({ sync: () => -EIO })
      const syncError = yield* Effect.flip(syncing.storage.sync)
      assert.strictEqual(syncError.operation, "sync")
      assert.strictEqual(syncError.code, "EIO")
      const syncingFull = scriptedDriver({ sync: () => -ENOSPC })
      assert.include((yield* Effect.flip(syncingFull.storage.sync)).message, "(ENOSPC): no space left on the device")
    }))

  it.effect("a read error other than EIO is fatal (a bug, not the medium)", () =>
    Effect.gen(function* () {
      const { storage } = scriptedDriver({ read: () => -EBADF })
      const error = yield* Effect.flip(storage.read(zone, 0, storage.allocate(sectorSize)))
      assert.strictEqual(error._tag === "StorageFatalError" ? error.code : error._tag, "EBADF")
    }))

  it.effect("short transfers continue and interrupted ones are retried", () =>
    Effect.gen(function* () {
      let interruptions = 3
      const interrupt = () => (interruptions-- > 0 ? -EINTR : undefined)
      const { storage, file, counters } = scriptedDriver({ read: interrupt, write: interrupt, transferMax: sectorSize })
      const source = storage.allocate(4 * sectorSize).fill(9)
      yield* storage.write(zone, 0, source)
      assert.isTrue(file.subarray(0, 4 * sectorSize).every((byte) => byte === 9))
      assert.strictEqual(counters.writes, 3 + 4)
      const target = storage.allocate(4 * sectorSize)
      yield* storage.read(zone, 0, target)
      assert.deepStrictEqual(target, source)
    }))

  it.effect("an endlessly interrupted request gives up as fatal instead of spinning", () =>
    Effect.gen(function* () {
      const { storage } = scriptedDriver({ write: () => -EINTR })
      const error = yield* Effect.flip(storage.write(zone, 0, storage.allocate(sectorSize)))
      assert.strictEqual(error._tag === "StorageFatalError" ? error.code : error._tag, "EINTR")
    }))

  it.effect("never lets more than inFlightMax requests into the driver", () =>
    Effect.gen(function* () {
      const { storage, counters } = scriptedDriver({}, 4)
      const buffers = Array.from({ length: 40 }, () => storage.allocate(sectorSize))
      yield* Effect.forEach(buffers, (buffer, i) => storage.write(zone, i * sectorSize, buffer), { concurrency: "unbounded" })
      assert.strictEqual(counters.inFlightPeak, 4)
      assert.strictEqual(counters.inFlight, 0)
    }))
})
