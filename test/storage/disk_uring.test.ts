/**
 * The io_uring driver's plumbing between ring slots and requests, with a stand-in ring that
 * performs the I/O itself but completes each batch in reverse order and can fail any request
 * with an errno, as a device would through the kernel: completions reach their own requests,
 * EIO on a read goes through the §5.3 loop, EIO on a write is fatal and names file and offset.
 */
import * as fs from "node:fs"
import { constants as osConstants } from "node:os"
import * as os from "node:os"
import * as nodePath from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { acquireStorageFile } from "../../src/layers/disk.ts"
import { native, type NativeAddon, type RingHandle, RingOp } from "../../src/native.ts"
import { sectorSize, StorageFatalError, type Zone } from "../../src/storage/storage.ts"

const directory = fs.mkdtempSync(nodePath.join(os.tmpdir(), "scarab-uring-"))
afterAll(() => fs.rmSync(directory, { recursive: true, force: true }))
let files = 0

const zone: Zone = { name: "grid", start: 0, sizeBytes: 64 * sectorSize }
const { EIO } = osConstants.errno

interface Prepared {
  readonly op: RingOp
  readonly fd: number
  readonly buffer: Uint8Array | null
  readonly length: number
  readonly position: number
  readonly id: number
}

/** A ring that does the I/O synchronously at "completion" time, a batch in reverse order. */
function standInRing(fail: (op: RingOp, position: number, length: number) => number | undefined) {
  const stats = { batches: 0, largestBatch: 0 }
  let results: Int32Array = new Int32Array(0)
  let onCompletions: (count: number) => void = () => {}
  let prepared: Array<Prepared> = []
  const perform = ({ op, fd, buffer, length, position }: Prepared): number => {
    if (op === RingOp.fsync) return 0
    if (buffer === null) return -EIO
    return op === RingOp.read ? fs.readSync(fd, buffer, 0, length, position) : fs.writeSync(fd, buffer, 0, length, position)
  }
  const addon = {
    ...native,
    ringCreate(_entries: number, shared: Int32Array, callback: (count: number) => void) {
      results = shared
      onCompletions = callback
      return {} as RingHandle
    },
    ringPrepare(_ring: RingHandle, op: RingOp, fd: number, buffer: Uint8Array | null, length: number, position: number, id: number) {
      prepared.push({ op, fd, buffer, length, position, id })
    },
    ringSubmit() {
      const batch = prepared.reverse()
      prepared = []
      stats.batches++
      stats.largestBatch = Math.max(stats.largestBatch, batch.length)
      queueMicrotask(() => {
        batch.forEach((request, i) => {
          results[2 * i] = request.id
          results[2 * i + 1] = fail(request.op, request.position, request.length) ?? perform(request)
        })
        onCompletions(batch.length)
      })
      return batch.length
    },
    ringClose() {}
  } as NativeAddon
  return { addon, stats }
}

const openWith = (addon: NativeAddon) =>
  acquireStorageFile({
    path: nodePath.join(directory, `${files++}.data`),
    createSizeBytes: zone.sizeBytes,
    implementation: "io_uring",
    nativeAddon: addon
  })

describe.skipIf(native === undefined)("io_uring driver", () => {
  it.effect("completions delivered out of order reach their own requests, and a batch is one submission", () =>
    Effect.scoped(Effect.gen(function* () {
      const ring = standInRing(() => undefined)
      const storage = yield* openWith(ring.addon)
      assert.strictEqual(storage.implementation, "io_uring")
      const buffers = Array.from({ length: 16 }, (_, i) => storage.allocate(sectorSize).fill(i + 1))
      yield* Effect.forEach(buffers, (buffer, i) => storage.write(zone, i * sectorSize, buffer), { concurrency: "unbounded" })
      assert.isAbove(ring.stats.largestBatch, 1)
      const back = Array.from({ length: 16 }, () => storage.allocate(sectorSize))
      yield* Effect.forEach(back, (buffer, i) => storage.read(zone, i * sectorSize, buffer), { concurrency: "unbounded" })
      back.forEach((buffer, i) => assert.isTrue(buffer.every((byte) => byte === i + 1), `sector ${i}`))
    })))

  it.effect("EIO on a read is retried down to the bad sector, which comes back zeroed and reported", () =>
    Effect.scoped(Effect.gen(function* () {
      const bad = 5 * sectorSize
      const ring = standInRing((op, position, length) =>
        op === RingOp.read && position <= bad && bad < position + length ? -EIO : undefined)
      const storage = yield* openWith(ring.addon)
      const source = storage.allocate(8 * sectorSize).fill(7)
      yield* storage.write(zone, 0, source)
      const target = storage.allocate(8 * sectorSize)
      const report = yield* storage.read(zone, 0, target)
      assert.deepStrictEqual(report.sectorsZeroed, [bad])
      for (let sector = 0; sector < 8; sector++) {
        const expected = sector === 5 ? 0 : 7
        assert.isTrue(target.subarray(sector * sectorSize, (sector + 1) * sectorSize).every((byte) => byte === expected))
      }
    })))

  it.effect("EIO on a write is fatal and names the file and the offset", () =>
    Effect.scoped(Effect.gen(function* () {
      const ring = standInRing((op, position) => (op === RingOp.write && position === 3 * sectorSize ? -EIO : undefined))
      const storage = yield* openWith(ring.addon)
      const error = yield* Effect.flip(storage.write(zone, 3 * sectorSize, storage.allocate(sectorSize)))
      assert.instanceOf(error, StorageFatalError)
      assert.include(error.message, storage.path)
      assert.include(error.message, `offset ${3 * sectorSize}`)
      assert.include(error.message, "EIO")
    })))
})
