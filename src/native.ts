/**
 * Loads Scarab's native addon (native/, built by `npm install`) and describes its functions.
 * Everything that can use it also works without it: `native` is undefined when the addon was not
 * built (SCARAB_NATIVE=skip), failed to load, or is turned off with SCARAB_NATIVE=off (tests of
 * the fallbacks); `nativeUnavailableReason` then says why.
 *
 * A shared utility at the bottom of src/, beside assert.ts and slab.ts: the protocol's checksum
 * and the storage layers both call the addon, and this module imports nothing of ours.
 */
import { createRequire } from "node:module"

/** Operation codes of `ringPrepare` (native/ring.c). */
export const RingOp = { read: 0, write: 1, fsync: 2 } as const
export type RingOp = (typeof RingOp)[keyof typeof RingOp]

export interface NativeAddon {
  /** Whether the CPU has AES-NI; `checksum` throws otherwise. */
  readonly aesNi: boolean
  checksum(data: Uint8Array, target: Uint8Array, targetOffset: number): void
  /** Zeroed memory starting on an `alignment` boundary, freed when the ArrayBuffer is collected. */
  allocateAligned(sizeBytes: number, alignment: number): ArrayBuffer
  /** Non-blocking exclusive flock on `fd`: 0, or the (positive) errno, EWOULDBLOCK when held. */
  lockExclusive(fd: number): number
  /**
   * fallocate(2), mode 0, of bytes [0, sizeBytes) of `fd`: the space is reserved and the file is
   * at least that long. 0, or the (positive) errno: ENOSPC, EOPNOTSUPP where the file system
   * cannot.
   */
  allocateFile(fd: number, sizeBytes: number): number
  /**
   * A ring of `entries` (a power of two) in-flight operations. Completions arrive as
   * `onCompletions(count)` with (id, result) pairs in `results[0 .. 2 * count)`; results are
   * byte counts or negative errno values. Throws an Error with `code` (e.g. "EPERM") when the
   * kernel refuses io_uring.
   */
  ringCreate(entries: number, results: Int32Array, onCompletions: (count: number) => void): RingHandle
  ringPrepare(ring: RingHandle, op: RingOp, fd: number, buffer: Uint8Array | null, length: number, position: number, id: number): void
  ringSubmit(ring: RingHandle): number
  ringClose(ring: RingHandle): void
}

/** Opaque handle of a native ring. */
export interface RingHandle {
  readonly __ring: unique symbol
}

const loaded = load()

export const native: NativeAddon | undefined = loaded.addon
export const nativeUnavailableReason: string | undefined = loaded.reason

function load(): { addon: NativeAddon | undefined; reason: string | undefined } {
  if (process.env.SCARAB_NATIVE === "off") return { addon: undefined, reason: "SCARAB_NATIVE=off" }
  const require = createRequire(import.meta.url)
  try {
    return { addon: require("../build/Release/scarab.node") as NativeAddon, reason: undefined }
  } catch (error) {
    return { addon: undefined, reason: `native addon not loaded: ${(error as Error).message.split("\n")[0]}` }
  }
}
