/**
 * Formatting a data file against a real full disk (storage.md §2.1, §5.4): format reserves the
 * file's space up front, so a device too small refuses at format with "no space left on the
 * device (needs N bytes, has M)" and leaves no file behind, and the retry with room succeeds; a
 * format that fails for any other reason removes its file too, but never a file it did not
 * create; a write that finds the disk full while running says so instead of blaming the device.
 *
 * The small devices are tmpfs mounts made by the test itself (CI runs as root; a machine where
 * mounting is impossible fails here with a message saying so, rather than skipping).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { acquireStorageFile, formatDataFile } from "../../src/layers/disk.ts"
import { freeBytes, NoSpace, reserveSpace } from "../../src/layers/disk_file.ts"
import { native, type NativeAddon } from "../../src/native.ts"
import type { FormatOptions } from "../../src/storage/format.ts"
import { layoutOf, storageConfigs } from "../../src/storage/layout.ts"
import { sectorSize, StorageOpenError, type Zone } from "../../src/storage/storage.ts"

const mebibyte = 1024 * 1024
const productionSize = layoutOf(storageConfigs.production).dataFileSizeMin
const testSize = layoutOf(storageConfigs.test).dataFileSizeMin
const formatOptions = (path: string, profile: FormatOptions["profile"]): FormatOptions =>
  ({ path, cluster: 7n, replica: 0, replicaCount: 1, profile })

/** Every directory made here, with whether a tmpfs is mounted on it; undone after each test. */
const directories: Array<{ readonly path: string; mounted: boolean }> = []
afterEach(() => {
  for (const directory of directories.splice(0)) {
    if (directory.mounted) execFileSync("umount", [directory.path])
    fs.rmSync(directory.path, { recursive: true, force: true })
  }
})

/** A fresh directory on a tmpfs of `sizeBytes`: a device that really fills up. */
function smallDevice(sizeBytes: number): string {
  const path = fs.mkdtempSync(nodePath.join(os.tmpdir(), "scarab-format-"))
  const directory = { path, mounted: false }
  directories.push(directory)
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes}`, "tmpfs", path], { stdio: "pipe" })
  } catch (error) {
    throw new Error(`this test mounts a small tmpfs and needs root (CI runs as root): ${String((error as { stderr?: unknown }).stderr ?? error)}`)
  }
  directory.mounted = true
  return path
}

function growDevice(path: string, sizeBytes: number): void {
  execFileSync("mount", ["-o", `remount,size=${sizeBytes}`, path], { stdio: "pipe" })
}

function plainDirectory(): string {
  const path = fs.mkdtempSync(nodePath.join(os.tmpdir(), "scarab-format-"))
  directories.push({ path, mounted: false })
  return path
}

/** Bytes the file system really holds for the file: a sparse file holds far fewer than its size. */
const allocatedBytes = (path: string): number => fs.statSync(path).blocks * 512

describe("format on a full disk", () => {
  it.effect("a device too small for the file: 'no space left on the device (needs N bytes, has M)', no file left, and the retry with room succeeds", () =>
    Effect.gen(function* () {
      const device = smallDevice(8 * mebibyte)
      const path = nodePath.join(device, "0_0.scarab")
      const error = yield* Effect.flip(formatDataFile(formatOptions(path, "production")))
      assert.instanceOf(error, StorageOpenError)
      assert.strictEqual(error.code, "ENOSPC")
      const free = freeBytes(device)
      assert.isBelow(free, productionSize)
      assert.include(error.message, `${path}: `)
      assert.include(error.message, `no space left on the device (needs ${productionSize} bytes, has ${free})`)
      assert.isFalse(fs.existsSync(path), "a partial file would block the retry")

      growDevice(device, testSize + 16 * mebibyte)
      yield* formatDataFile(formatOptions(path, "test"))
      assert.strictEqual(fs.statSync(path).size, testSize)
      assert.isAtLeast(allocatedBytes(path), testSize, "the space is reserved, not sparse")
    }))

  it.effect("a write that finds the disk full while running says so, not that the device cannot be trusted", () =>
    Effect.gen(function* () {
      const device = smallDevice(8 * mebibyte)
      const path = nodePath.join(device, "data")
      const storage = yield* acquireStorageFile({ path, createSizeBytes: mebibyte, directIo: native !== undefined })
      // The rest of the device goes to another file; the grid then grows past the end of ours.
      fs.writeFileSync(nodePath.join(device, "filler"), new Uint8Array(freeBytes(device)))
      assert.strictEqual(freeBytes(device), 0)
      const grid: Zone = { name: "grid", start: mebibyte, sizeBytes: 4 * mebibyte }
      const error = yield* Effect.flip(storage.write(grid, 0, storage.allocate(sectorSize)))
      assert.strictEqual(error._tag, "StorageFatalError")
      assert.include(error.message, `${path}: write at offset ${mebibyte} failed (ENOSPC): no space left on the device`)
      assert.notInclude(error.message, "cannot be trusted")
    }))

  it("without fallocate (no addon, or a file system that cannot), a device too small refuses before any zero is written", () => {
    const device = smallDevice(8 * mebibyte)
    for (const [addon, directIo] of [[undefined, false], [unsupportingAddon(), true]] as const) {
      const path = nodePath.join(device, `data-${addon === undefined ? "plain" : "direct"}`)
      const fd = openForCreate(path, directIo)
      try {
        assert.instanceOf(thrown(() => reserveSpace(fd, path, 16 * mebibyte, directIo, addon)), NoSpace)
        assert.strictEqual(fs.fstatSync(fd).size, 0, "nothing was written")
      } finally {
        fs.closeSync(fd)
      }
    }
  })

  it("without fallocate, zeroes really reserve the space when it fits", () => {
    const device = smallDevice(8 * mebibyte)
    for (const [addon, directIo] of [[undefined, false], [unsupportingAddon(), true]] as const) {
      const path = nodePath.join(device, `data-${addon === undefined ? "plain" : "direct"}`)
      const fd = openForCreate(path, directIo)
      try {
        reserveSpace(fd, path, 3 * mebibyte, directIo, addon)
      } finally {
        fs.closeSync(fd)
      }
      assert.strictEqual(fs.statSync(path).size, 3 * mebibyte)
      assert.isAtLeast(allocatedBytes(path), 3 * mebibyte)
    }
  })
})

describe("a failed format", () => {
  it.effect("removes the file it created when it is interrupted half-way", () =>
    Effect.gen(function* () {
      const path = nodePath.join(plainDirectory(), "0_0.scarab")
      // Runs synchronously until it first waits for the disk: by then the file exists.
      const fiber = yield* Effect.forkChild(formatDataFile(formatOptions(path, "test")), { startImmediately: true })
      assert.isTrue(fs.existsSync(path), "the format is under way")
      yield* Fiber.interrupt(fiber)
      assert.isFalse(fs.existsSync(path))
      yield* formatDataFile(formatOptions(path, "test"))
      assert.strictEqual(fs.statSync(path).size, testSize)
    }))

  it.effect("never removes a file it did not create", () =>
    Effect.gen(function* () {
      const path = nodePath.join(plainDirectory(), "0_0.scarab")
      fs.writeFileSync(path, "not ours")
      const error = yield* Effect.flip(formatDataFile(formatOptions(path, "test")))
      assert.strictEqual(error._tag === "StorageOpenError" ? error.code : error._tag, "EEXIST")
      assert.strictEqual(fs.readFileSync(path, "utf8"), "not ours")
    }))
})

/** The loaded addon, except that its file system "does not support" fallocate. */
function unsupportingAddon(): NativeAddon {
  if (native === undefined) throw new Error("the native addon is needed for the Direct I/O case")
  return { ...native, allocateFile: () => os.constants.errno.EOPNOTSUPP }
}

function thrown(run: () => void): unknown {
  try {
    run()
  } catch (error) {
    return error
  }
  return undefined
}

function openForCreate(path: string, directIo: boolean): number {
  const { O_RDWR, O_DSYNC, O_DIRECT, O_CREAT, O_EXCL } = fs.constants
  return fs.openSync(path, O_RDWR | O_DSYNC | O_CREAT | O_EXCL | (directIo ? O_DIRECT : 0), 0o600)
}
