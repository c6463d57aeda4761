/**
 * One conformance suite for every Storage implementation: io_uring, the thread-pool fallback
 * (always run, so CI exercises the fallback whatever the kernel allows) and the simulated disk
 * without faults. Each test proves one rule of storage.md §2/§5 holds identically everywhere.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { layerStorageFile } from "../../src/layers/disk.ts"
import { SimulatedDisk } from "../../src/layers/disk_sim.ts"
import { ioUringUnavailableReason } from "../../src/layers/disk_uring.ts"
import { native } from "../../src/native.ts"
import { sectorSize, Storage, StorageRangeError, type Zone } from "../../src/storage/storage.ts"

const fileSizeBytes = 1024 * 1024
const directory = fs.mkdtempSync(nodePath.join(os.tmpdir(), "scarab-conformance-"))
afterAll(() => fs.rmSync(directory, { recursive: true, force: true }))

let files = 0
const freshPath = () => nodePath.join(directory, `${files++}.data`)

interface Implementation {
  readonly name: string
  readonly available: boolean
  readonly layer: () => Layer.Layer<Storage, unknown>
}

// Where the kernel refuses io_uring, production runs on the fallback, which is tested regardless.
const ioUringSkipReason = ioUringUnavailableReason(native)
if (ioUringSkipReason !== undefined) console.warn(`io_uring conformance skipped: ${ioUringSkipReason}`)

const implementations: ReadonlyArray<Implementation> = [
  {
    name: "io_uring",
    available: ioUringSkipReason === undefined,
    layer: () => layerStorageFile({ path: freshPath(), createSizeBytes: fileSizeBytes, implementation: "io_uring" })
  },
  {
    name: "thread_pool",
    available: true,
    layer: () =>
      layerStorageFile({
        path: freshPath(),
        createSizeBytes: fileSizeBytes,
        implementation: "thread_pool",
        directIo: native !== undefined
      })
  },
  {
    name: "simulated",
    available: true,
    layer: () => new SimulatedDisk({ seed: 7, sizeBytes: fileSizeBytes, unwrittenReadsRandom: false }).layer()
  }
]

// Two zones as the data file lays them out: the grid's offsets are relative to its start.
const walHeaders: Zone = { name: "wal_headers", start: 0, sizeBytes: 64 * 1024 }
const grid: Zone = { name: "grid", start: 64 * 1024, sizeBytes: 2 * fileSizeBytes }

const pattern = (buffer: Uint8Array, seed: number) => {
  for (let i = 0; i < buffer.length; i++) buffer[i] = (i * 7 + seed * 13 + (i >>> 12)) & 0xff
  return buffer
}

for (const implementation of implementations) {
  describe.skipIf(!implementation.available)(`Storage conformance: ${implementation.name}`, () => {
    const run = <A, E>(effect: Effect.Effect<A, E, Storage>) =>
      effect.pipe(Effect.provide(implementation.layer()), Effect.orDie)

    it.effect("a write reads back byte for byte, at zone-relative offsets", () =>
      run(Effect.gen(function* () {
        const storage = yield* Storage
        assert.strictEqual(storage.implementation, implementation.name)
        const source = pattern(storage.allocate(3 * sectorSize), 1)
        yield* storage.write(grid, 2 * sectorSize, source)
        const target = storage.allocate(3 * sectorSize)
        const report = yield* storage.read(grid, 2 * sectorSize, target)
        assert.deepStrictEqual(report.sectorsZeroed, [])
        assert.deepStrictEqual(target, source)
        // The same zone offset in another zone is another place in the file.
        const other = storage.allocate(sectorSize)
        yield* storage.write(walHeaders, 2 * sectorSize, pattern(other, 2))
        yield* storage.read(grid, 2 * sectorSize, target)
        assert.deepStrictEqual(target, source)
      })))

    it.effect("many concurrent writes and reads land where they were addressed", () =>
      run(Effect.gen(function* () {
        const storage = yield* Storage
        const sectors = 96 // more than inFlightMax (64): the bound queues the rest
        const buffers = Array.from({ length: sectors }, (_, i) => pattern(storage.allocate(sectorSize), i))
        yield* Effect.forEach(buffers, (buffer, i) => storage.write(grid, i * sectorSize, buffer), { concurrency: "unbounded" })
        const back = storage.allocate(sectors * sectorSize)
        yield* storage.read(grid, 0, back)
        for (let i = 0; i < sectors; i++) {
          assert.deepStrictEqual(back.subarray(i * sectorSize, (i + 1) * sectorSize), buffers[i], `sector ${i}`)
        }
        const singles = Array.from({ length: sectors }, () => storage.allocate(sectorSize))
        yield* Effect.forEach(singles, (buffer, i) => storage.read(grid, i * sectorSize, buffer), { concurrency: "unbounded" })
        for (let i = 0; i < sectors; i++) assert.deepStrictEqual(singles[i], buffers[i], `sector ${i}`)
      })))

    it.effect("sync succeeds and size reports the data file's size", () =>
      run(Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.write(walHeaders, 0, pattern(storage.allocate(sectorSize), 3))
        yield* storage.sync
        assert.strictEqual(yield* storage.sizeBytes, fileSizeBytes)
      })))

    it.effect("a read past the end of the file comes back as zeroes, not as an error", () =>
      run(Effect.gen(function* () {
        const storage = yield* Storage
        const target = storage.allocate(2 * sectorSize).fill(0xee)
        const report = yield* storage.read(grid, fileSizeBytes - grid.start - sectorSize, target)
        assert.deepStrictEqual(report.sectorsZeroed, [])
        assert.isTrue(target.subarray(sectorSize).every((byte) => byte === 0))
      })))

    it.effect("an interrupted request still runs to completion before its caller lets go of the buffer", () =>
      run(Effect.gen(function* () {
        const storage = yield* Storage
        const source = pattern(storage.allocate(16 * sectorSize), 5)
        const fiber = yield* Effect.forkChild(storage.write(grid, 0, source), { startImmediately: true })
        yield* Fiber.interrupt(fiber)
        // The write was in flight: interruption waited for it, so the bytes are all there.
        const back = storage.allocate(16 * sectorSize)
        yield* storage.read(grid, 0, back)
        assert.deepStrictEqual(back, source)
      })))

    it.effect("misaligned, empty, out-of-zone and foreign-buffer requests are rejected before any I/O", () =>
      run(Effect.gen(function* () {
        const storage = yield* Storage
        const buffer = storage.allocate(2 * sectorSize)
        const cases: ReadonlyArray<readonly [string, Zone, number, Uint8Array]> = [
          ["offset is not a multiple", grid, 512, buffer],
          ["length is not a multiple", grid, 0, buffer.subarray(0, 512)],
          ["length is zero", grid, 0, buffer.subarray(0, 0)],
          ["offset is not a natural number", grid, -sectorSize, buffer],
          ["range ends past the zone", walHeaders, walHeaders.sizeBytes - sectorSize, buffer],
          ["buffer memory is not sector-aligned", grid, 0, new Uint8Array(sectorSize)],
          ["buffer memory is not sector-aligned", grid, 0, buffer.subarray(512, 512 + sectorSize)],
          ["zone start is not a sector-aligned", { name: "odd", start: 100, sizeBytes: fileSizeBytes }, 0, buffer]
        ]
        for (const [reason, zone, offset, target] of cases) {
          for (const operation of [storage.read(zone, offset, target), storage.write(zone, offset, target)]) {
            const error = yield* Effect.flip(operation)
            assert.instanceOf(error, StorageRangeError)
            assert.include(error.reason, reason)
            assert.include(error.message, storage.path)
            assert.include(error.message, `offset ${offset}`)
          }
        }
        // Nothing reached the file: the buffer's bytes are still unwritten everywhere.
        const check = storage.allocate(sectorSize)
        yield* storage.read(walHeaders, 0, check)
        assert.isTrue(check.every((byte) => byte === 0))
      })))
  })
}
