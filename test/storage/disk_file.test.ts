/**
 * Opening the data file (storage.md §5.1) and choosing the implementation: bad files give typed
 * errors naming the path, and when the kernel refuses io_uring the layer falls back to the
 * thread pool on its own and says so in one log line.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Logger, References } from "effect"
import { acquireStorageFile, type StorageFileOptions } from "../../src/layers/disk.ts"
import { ioUringUnavailableReason } from "../../src/layers/disk_uring.ts"
import { native, type NativeAddon } from "../../src/native.ts"
import { StorageOpenError } from "../../src/storage/storage.ts"

const directory = fs.mkdtempSync(nodePath.join(os.tmpdir(), "scarab-disk-file-"))
afterAll(() => fs.rmSync(directory, { recursive: true, force: true }))
let files = 0
const freshPath = () => nodePath.join(directory, `${files++}.data`)
const directIo = native !== undefined

/** An addon whose ring setup fails the way a seccomp-filtered container makes it fail. */
const refusingAddon = {
  ...native,
  ringCreate: () => {
    throw Object.assign(new Error("io_uring_setup: Operation not permitted"), { code: "EPERM" })
  }
} as NativeAddon

/** Opens the Storage, returns its implementation and the log lines written meanwhile. */
const openAndLog = (options: StorageFileOptions) =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    const logger = Logger.make<unknown, void>(({ message }) => {
      lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    })
    const storage = yield* Effect.scoped(acquireStorageFile(options)).pipe(
      Effect.provide(Logger.layer([logger])), Effect.provideService(References.MinimumLogLevel, "Debug")
    )
    return { implementation: storage.implementation, lines }
  })

const openError = (options: StorageFileOptions) =>
  Effect.flip(Effect.scoped(acquireStorageFile({ directIo, ...options })))

describe("data file", () => {
  it.effect("a missing file is a typed error naming the path", () =>
    Effect.gen(function* () {
      const path = freshPath()
      const error = yield* openError({ path })
      assert.instanceOf(error, StorageOpenError)
      assert.strictEqual(error.code, "ENOENT")
      assert.include(error.message, path)
    }))

  it.effect("a file smaller than the minimum is refused with both sizes", () =>
    Effect.gen(function* () {
      const path = freshPath()
      fs.writeFileSync(path, new Uint8Array(8192))
      const error = yield* openError({ path, sizeBytesMin: 65536 })
      assert.strictEqual(error.code, "ETOOSMALL")
      assert.include(error.message, "8192")
      assert.include(error.message, "65536")
    }))

  it.effect("formatting never overwrites an existing file, and needs a sector-multiple size", () =>
    Effect.gen(function* () {
      const path = freshPath()
      fs.writeFileSync(path, new Uint8Array(8192))
      assert.strictEqual((yield* openError({ path, createSizeBytes: 8192 })).code, "EEXIST")
      assert.strictEqual((yield* openError({ path: freshPath(), createSizeBytes: 1000 })).code, "EINVAL")
      assert.strictEqual((yield* openError({ path: directory })).code, "EISDIR")
    }))

  // Live clock: the lock is retried 50 ms apart.
  it.live.skipIf(native === undefined)("a data file open in one Storage cannot be opened by another until it is closed", () =>
    Effect.gen(function* () {
      const path = freshPath()
      yield* Effect.scoped(Effect.gen(function* () {
        yield* acquireStorageFile({ path, createSizeBytes: 8192 })
        const error = yield* openError({ path })
        assert.strictEqual(error.code, "EWOULDBLOCK")
        assert.include(error.message, path)
      }))
      const storage = yield* Effect.scoped(acquireStorageFile({ path }))
      assert.strictEqual(storage.path, path)
    }))

  it.effect("falls back to the thread pool when the kernel refuses io_uring, with a log line saying why", () =>
    Effect.gen(function* () {
      const { implementation, lines } = yield* openAndLog({
        path: freshPath(), createSizeBytes: 8192, directIo, implementation: "auto", nativeAddon: refusingAddon
      })
      assert.strictEqual(implementation, "thread_pool")
      assert.strictEqual(lines.length, 1)
      assert.include(lines[0], "thread-pool fallback")
      assert.include(lines[0], "io_uring unavailable: EPERM")
    }))

  it.effect("refuses to start when io_uring is demanded but unavailable", () =>
    Effect.gen(function* () {
      const error = yield* openError({
        path: freshPath(), createSizeBytes: 8192, implementation: "io_uring", nativeAddon: refusingAddon
      })
      assert.strictEqual(error.code, "EURING")
      assert.include(error.reason, "EPERM")
    }))

  it.effect.skipIf(ioUringUnavailableReason(native) !== undefined)("uses io_uring by default and logs it", () =>
    Effect.gen(function* () {
      const previous = process.env.SCARAB_STORAGE
      delete process.env.SCARAB_STORAGE
      const { implementation, lines } = yield* openAndLog({ path: freshPath(), createSizeBytes: 8192 }).pipe(
        Effect.ensuring(Effect.sync(() => restoreEnvironment(previous)))
      )
      assert.strictEqual(implementation, "io_uring")
      assert.include(lines[0], "storage: io_uring, Direct I/O")
    }))

  it.effect("SCARAB_STORAGE=thread_pool selects the fallback (how CI can run everything on it)", () =>
    Effect.gen(function* () {
      const previous = process.env.SCARAB_STORAGE
      process.env.SCARAB_STORAGE = "thread_pool"
      const { implementation } = yield* openAndLog({ path: freshPath(), createSizeBytes: 8192, directIo }).pipe(
        Effect.ensuring(Effect.sync(() => restoreEnvironment(previous)))
      )
      assert.strictEqual(implementation, "thread_pool")
    }))
})

function restoreEnvironment(previous: string | undefined): void {
  if (previous === undefined) delete process.env.SCARAB_STORAGE
  else process.env.SCARAB_STORAGE = previous
}

