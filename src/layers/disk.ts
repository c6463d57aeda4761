/**
 * The production Storage layers over a real data file: io_uring by default, the thread pool
 * when the kernel or the container refuses io_uring (or when asked for). Which one is in use is a
 * debug line for every open (a start opens the file up to three times: format, superblock peek,
 * replica; `scarab start` names the choice once in its start-up line), and a fallback the kernel
 * forced is a warning saying why, once per process.
 *
 * The choice can be forced with the `implementation` option or the SCARAB_STORAGE environment
 * variable (`io_uring`, `thread_pool`, `auto`); CI uses the latter to run the whole suite on the
 * fallback.
 *
 * A new data file is created here too (`formatDataFile`): at the layout's size, never over an
 * existing file, and removed when the format fails in a way the process survives (no space, a
 * failed write, an interrupt), so that the retry is not blocked by it.
 */
import { Effect, Layer } from "effect"
import { assert } from "../assert.ts"
import { native, type NativeAddon, nativeUnavailableReason } from "../native.ts"
import { type FormatOptions, formatStorage } from "../storage/format.ts"
import { layoutOf, storageConfigs } from "../storage/layout.ts"
import { sectorSize, Storage, StorageOpenError } from "../storage/storage.ts"
import { makeStorage } from "./disk_engine.ts"
import { type DataFileOptions, openDataFile } from "./disk_file.ts"
import { alignedMemoryAvailable } from "./disk_memory.ts"
import { makePoolDriver } from "./disk_pool.ts"
import { makeUringDriver } from "./disk_uring.ts"

export type StorageFileImplementation = "auto" | "io_uring" | "thread_pool"

export interface StorageFileOptions extends DataFileOptions {
  /** Default "auto" (or SCARAB_STORAGE): io_uring, else the thread pool. */
  readonly implementation?: StorageFileImplementation
  /** The addon that drives io_uring (default: the loaded one); tests pass stand-ins. */
  readonly nativeAddon?: NativeAddon | undefined
}

/** Whether this process has warned that the kernel refused io_uring (see the header). */
let fallbackWarned = false

/** Operations in flight by default: above the design's 42 reads + 67 writes would be wasted ring space. */
export const inFlightMaxDefault = 64

/** The Storage over the data file at `options.path`, open for the layer's lifetime. */
export function layerStorageFile(options: StorageFileOptions): Layer.Layer<Storage, StorageOpenError> {
  return Layer.effect(Storage, acquireStorageFile(options))
}

export const acquireStorageFile = Effect.fnUntraced(function* (options: StorageFileOptions) {
  const requested = options.implementation ?? implementationFromEnvironment()
  const directIo = options.directIo ?? true
  const inFlightMax = options.inFlightMax ?? inFlightMaxDefault
  if (!Number.isInteger(inFlightMax) || inFlightMax < 1 || inFlightMax > 4096) {
    return yield* new StorageOpenError({ path: options.path, code: "EINVAL", reason: "inFlightMax must be in 1..4096" })
  }
  if (directIo && !alignedMemoryAvailable) {
    return yield* new StorageOpenError({
      path: options.path,
      code: "ENOALIGN",
      reason: `Direct I/O needs sector-aligned buffers from the native addon (${nativeUnavailableReason})`
    })
  }
  const file = yield* openDataFile(options, directIo)
  let fallbackReason = "thread pool requested"
  const addon = "nativeAddon" in options ? options.nativeAddon : native
  if (requested !== "thread_pool") {
    const attempt = addon === undefined
      ? { _tag: "RingUnavailable" as const, reason: nativeUnavailableReason ?? "no native addon" }
      : yield* makeUringDriver(addon, file, ceilPowerOfTwo(inFlightMax))
    if (!("_tag" in attempt)) {
      yield* Effect.logDebug(`storage: io_uring, ${durability(directIo)}, ${options.path}`)
      return makeStorage(attempt)
    }
    if (requested === "io_uring") {
      return yield* new StorageOpenError({ path: options.path, code: "EURING", reason: attempt.reason })
    }
    fallbackReason = `io_uring unavailable: ${attempt.reason}`
  }
  const line = `storage: thread-pool fallback (${fallbackReason}), ${durability(directIo)}, ${options.path}`
  // The kernel's refusal does not change within a process: said once, then only at debug level.
  if (requested === "thread_pool" || fallbackWarned) yield* Effect.logDebug(line)
  else yield* Effect.logWarning(line)
  if (requested !== "thread_pool") fallbackWarned = true
  return makeStorage(makePoolDriver(file, inFlightMax))
})

/** Creates the file (never over an existing one, its space reserved) and formats it; removes it on failure. */
export const formatDataFile = (options: FormatOptions) => Effect.scoped(Effect.gen(function* () {
  const createSizeBytes = layoutOf(storageConfigs[options.profile]).dataFileSizeMin
  assert(createSizeBytes > 0 && createSizeBytes % sectorSize === 0, () => `data file size ${createSizeBytes}`)
  // The scope closes with this effect's exit: a failure removes the file (removeIfFailed).
  const storage = yield* acquireStorageFile({ path: options.path, createSizeBytes, removeIfFailed: true })
  yield* formatStorage(options).pipe(Effect.provideService(Storage, storage))
  // Format writes inside the fixed zones only: the grid starts empty, the file at its reserved size.
  const sizeBytes = yield* storage.sizeBytes
  assert(sizeBytes === createSizeBytes, () => `${options.path}: formatted file has ${sizeBytes} bytes, not ${createSizeBytes}`)
}))

function implementationFromEnvironment(): StorageFileImplementation {
  const value = process.env.SCARAB_STORAGE
  return value === "io_uring" || value === "thread_pool" ? value : "auto"
}

function durability(directIo: boolean): string {
  return directIo ? "Direct I/O (O_DIRECT|O_DSYNC)" : "page cache with O_DSYNC (development only: not safe against fsyncgate)"
}

function ceilPowerOfTwo(value: number): number {
  let power = 1
  while (power < value) power *= 2
  return power
}
