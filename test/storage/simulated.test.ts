/**
 * The simulated disk's fault model (storage.md §8) and its determinism: every kind of fault does
 * what §8.1/§8.2 say and nothing outside the fault area, a crash tears the writes in flight, and
 * a seed fixes the whole run (completion order, bytes read, faults injected).
 */
import { createHash } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { SimulatedDisk, type SimulatedDiskOptions } from "../../src/layers/disk_sim.ts"
import { Prng } from "../../src/prng.ts"
import { sectorSize, Storage, StorageFatalError, type Zone } from "../../src/storage/storage.ts"

const sizeBytes = 256 * sectorSize
const whole: Zone = { name: "grid", start: 0, sizeBytes }

/** Runs `effect` while advancing the TestClock 1 ms at a time (bounded), as a simulator would. */
const runVirtual = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    for (let ms = 0; ms < 100_000; ms++) {
      if (fiber.pollUnsafe() !== undefined) return yield* Fiber.join(fiber)
      yield* TestClock.adjust("1 millis")
    }
    return assert.fail("the simulated workload did not finish in 100 s of virtual time")
  })

const withStorage = <A, E>(disk: SimulatedDisk, body: (storage: Storage["Service"]) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    return yield* body(yield* Storage)
  }).pipe(Effect.provide(disk.layer()))

/** A mixed concurrent workload; returns a fingerprint of everything observable about it. */
const workload = (options: SimulatedDiskOptions) =>
  Effect.gen(function* () {
    const disk = new SimulatedDisk(options)
    const order: Array<string> = []
    const hash = createHash("sha256")
    yield* withStorage(disk, (storage) =>
      Effect.gen(function* () {
        const prng = new Prng(options.seed + 1)
        const writes = Array.from({ length: 48 }, (_, i) => ({
          i, offset: prng.below(200) * sectorSize, buffer: storage.allocate((1 + prng.below(4)) * sectorSize).fill(i + 1)
        }))
        yield* Effect.forEach(writes, ({ i, offset, buffer }) =>
          Effect.tap(storage.write(whole, offset, buffer), () => Effect.sync(() => order.push(`w${i}`))),
        { concurrency: "unbounded" })
        const reads = Array.from({ length: 48 }, (_, i) => ({ i, offset: prng.below(200) * sectorSize, buffer: storage.allocate(4 * sectorSize) }))
        yield* Effect.forEach(reads, ({ i, offset, buffer }) =>
          Effect.tap(storage.read(whole, offset, buffer), (report) => Effect.sync(() => {
            order.push(`r${i}:${report.sectorsZeroed.join(",")}`)
            hash.update(buffer)
          })),
        { concurrency: "unbounded" })
      }))
    return `${order.join(" ")} ${hash.digest("hex")} ${JSON.stringify(disk.stats)}`
  })

const faulty: SimulatedDiskOptions = {
  seed: 42,
  sizeBytes,
  readLatencyMs: { min: 1, mean: 6 },
  writeLatencyMs: { min: 2, mean: 12 },
  faults: {
    readFaultProbability: 0.1, writeFaultProbability: 0.1, writeMisdirectProbability: 0.05,
    readMisdirectProbability: 0.05, latentSectorErrorProbability: 0.05
  }
}

describe("simulated disk", () => {
  it.effect("is deterministic for a seed: same seed, same run; other seed, other run", () =>
    Effect.gen(function* () {
      const first = yield* runVirtual(workload(faulty))
      const again = yield* runVirtual(workload(faulty))
      const other = yield* runVirtual(workload({ ...faulty, seed: 43 }))
      assert.strictEqual(again, first)
      assert.notStrictEqual(other, first)
      // The faults really happened in this run (the fingerprint includes the counters).
      assert.match(first, /"readFaults":[1-9]/)
      assert.match(first, /"misdirectedWrites":[1-9]/)
    }))

  it.effect("completes I/O only after its latency has passed on the Clock", () =>
    Effect.gen(function* () {
      const disk = new SimulatedDisk({ seed: 1, sizeBytes, writeLatencyMs: { min: 5, mean: 5 } })
      const fiber = yield* Effect.forkChild(withStorage(disk, (storage) => storage.write(whole, 0, storage.allocate(sectorSize))))
      yield* TestClock.adjust("4 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(fiber)
    }))

  it.effect("a corrupt sector reads back with one byte changed, the same way every time; latent errors are zeroed; rewriting heals both", () =>
    Effect.gen(function* () {
      const disk = new SimulatedDisk({ seed: 3, sizeBytes })
      yield* withStorage(disk, (storage) =>
        Effect.gen(function* () {
          const source = storage.allocate(4 * sectorSize).fill(0x5a)
          yield* storage.write(whole, 0, source)
          disk.corruptSector(sectorSize)
          const first = storage.allocate(4 * sectorSize)
          const second = storage.allocate(4 * sectorSize)
          yield* storage.read(whole, 0, first)
          yield* storage.read(whole, 0, second)
          assert.deepStrictEqual(first, second)
          assert.strictEqual(first.filter((byte, i) => byte !== source[i]).length, 1)
          assert.isTrue(first.subarray(0, sectorSize).every((byte) => byte === 0x5a))

          // A latent sector error: the §5.3 loop zero-fills that sector and reports it.
          disk.makeSectorLatent(2 * sectorSize)
          const report = yield* storage.read(whole, 0, first)
          assert.deepStrictEqual(report.sectorsZeroed, [2 * sectorSize])
          assert.isTrue(first.subarray(2 * sectorSize, 3 * sectorSize).every((byte) => byte === 0))
          assert.isTrue(first.subarray(3 * sectorSize).every((byte) => byte === 0x5a))

          // Rewriting heals both.
          yield* storage.write(whole, 0, source)
          const healed = yield* storage.read(whole, 0, first)
          assert.deepStrictEqual(healed.sectorsZeroed, [])
          assert.deepStrictEqual(first, source)
        }))
    }))

  it.effect("faults land only inside the fault area; a misdirected write stays inside it, one at a time, and masking hides it", () =>
    Effect.gen(function* () {
      const areaEnd = 64 * sectorSize
      const disk = new SimulatedDisk({
        seed: 5, sizeBytes, unwrittenReadsRandom: false,
        faults: { writeFaultProbability: 1, writeMisdirectProbability: 1 },
        faultArea: (position, length) => position + length <= areaEnd
      })
      yield* withStorage(disk, (storage) =>
        Effect.gen(function* () {
          const outside = storage.allocate(sectorSize).fill(1)
          yield* storage.write(whole, 100 * sectorSize, outside)
          const back = storage.allocate(sectorSize)
          yield* storage.read(whole, 100 * sectorSize, back)
          assert.deepStrictEqual(back, outside)
          assert.strictEqual(disk.stats.writeFaults + disk.stats.misdirectedWrites, 0)

          const inside = storage.allocate(sectorSize).fill(2)
          yield* storage.write(whole, 10 * sectorSize, inside)
          assert.strictEqual(disk.stats.misdirectedWrites, 1)
          yield* storage.read(whole, 10 * sectorSize, back)
          assert.isTrue(back.every((byte) => byte === 0), "the intended place keeps its old contents")
          const area = storage.allocate(areaEnd)
          yield* storage.read(whole, 0, area)
          assert.isTrue(area.some((byte) => byte === 2 || byte === (2 ^ 0xff)), "the data landed elsewhere in the area")

          // One misdirected write at a time: the next write lands where it was addressed.
          const next = storage.allocate(sectorSize).fill(3)
          yield* storage.write(whole, 20 * sectorSize, next)
          assert.strictEqual(disk.stats.misdirectedWrites, 1)

          // Masked, the disk shows what should be there: the misdirected write at its place.
          disk.setFaultsMasked(true)
          yield* storage.read(whole, 10 * sectorSize, back)
          assert.deepStrictEqual(back, inside)
          disk.setFaultsMasked(false)
          yield* storage.read(whole, 10 * sectorSize, back)
          assert.isTrue(back.every((byte) => byte === 0))

          // Rewriting the intended place drops its overlay.
          yield* storage.write(whole, 10 * sectorSize, inside)
          yield* storage.read(whole, 10 * sectorSize, back)
          assert.isTrue(back.every((byte) => byte === 2 || byte === (2 ^ 0xff)) && back.filter((byte) => byte !== 2).length <= 1)
        }))
    }))

  it.effect("a crash tears the writes in flight, and the dead process's Storage fails what it still completes", () =>
    Effect.gen(function* () {
      const disk = new SimulatedDisk({
        seed: 9, sizeBytes, writeLatencyMs: { min: 10, mean: 10 }, faults: { crashFaultProbability: 1 }
      })
      const fiber = yield* Effect.forkChild(withStorage(disk, (storage) =>
        storage.write(whole, 8 * sectorSize, storage.allocate(8 * sectorSize).fill(7))))
      yield* TestClock.adjust("1 millis")
      disk.crash()
      assert.strictEqual(disk.stats.tornWrites, 1)
      const faultySectors = Array.from({ length: 8 }, (_, i) => disk.isSectorFaulty((8 + i) * sectorSize))
      assert.deepStrictEqual(faultySectors.filter(Boolean).length, 1)
      yield* TestClock.adjust("10 millis")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.instanceOf(error, StorageFatalError)
      // The restarted process reads through a new Storage: the torn sector is corrupt.
      yield* withStorage(disk, (storage) =>
        Effect.gen(function* () {
          const back = storage.allocate(8 * sectorSize)
          yield* runVirtual(storage.read(whole, 8 * sectorSize, back))
          const torn = faultySectors.indexOf(true)
          assert.isTrue(back.subarray(0, torn * sectorSize).every((byte) => byte === 7), "sectors before the tear landed")
        }))
    }))

  it.effect("a write past the end of the device is a fatal disk-full error naming the offset", () =>
    withStorage(new SimulatedDisk({ seed: 1, sizeBytes, path: "sim-replica-0" }), (storage) =>
      Effect.gen(function* () {
        const beyond: Zone = { name: "grid", start: 0, sizeBytes: 2 * sizeBytes }
        const error = yield* Effect.flip(storage.write(beyond, sizeBytes, storage.allocate(sectorSize)))
        assert.instanceOf(error, StorageFatalError)
        if (!(error instanceof StorageFatalError)) return
        assert.strictEqual(error.code, "ENOSPC")
        assert.strictEqual(error.offset, sizeBytes)
        assert.include(error.message, "sim-replica-0")
      })))

  it.effect("never-written sectors read as stable seeded noise; liveness mode hides every fault", () =>
    Effect.gen(function* () {
      const disk = new SimulatedDisk({ seed: 11, sizeBytes })
      yield* withStorage(disk, (storage) =>
        Effect.gen(function* () {
          const first = storage.allocate(sectorSize)
          const second = storage.allocate(sectorSize)
          yield* storage.read(whole, 50 * sectorSize, first)
          yield* storage.read(whole, 50 * sectorSize, second)
          assert.deepStrictEqual(first, second)
          assert.isTrue(first.some((byte) => byte !== 0))

          const source = storage.allocate(sectorSize).fill(4)
          yield* storage.write(whole, 0, source)
          disk.corruptSector(0)
          disk.disableFaults()
          yield* storage.read(whole, 0, first)
          assert.deepStrictEqual(first, source)
        }))
    }))
})
