/**
 * Opening the data file for the io_uring and thread-pool layers (storage.md §5.1): read/write,
 * O_DIRECT (unless explicitly turned off), O_DSYNC, close-on-exec; created with O_EXCL when
 * formatting, its space reserved (§2.1), and removed again when that or the formatting fails;
 * checked to be a regular file or block device of at least the minimum size; locked with an
 * exclusive flock (through the addon; retried briefly, since a killed predecessor's
 * io_uring may hold the file for a moment); fsynced together with its directory before any
 * decision is made on its contents.
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { constants as osConstants } from "node:os"
import { Duration, Effect, Exit, type Scope } from "effect"
import { assert } from "../assert.ts"
import { native, type NativeAddon } from "../native.ts"
import { sectorSize, StorageOpenError } from "../storage/storage.ts"
import { errnoName } from "./disk_engine.ts"

export interface DataFileOptions {
  readonly path: string
  /**
   * Create the file with this size (a sector multiple), its space reserved; fails if it exists,
   * and leaves no file behind when the space cannot be had.
   */
  readonly createSizeBytes?: number
  /** Smallest size accepted (data_file_size_min); a smaller file is refused. */
  readonly sizeBytesMin?: number
  /**
   * Bypass the page cache (default true). Turning it off is for development on file systems
   * without O_DIRECT; the Storage then logs that it is not durable.
   */
  readonly directIo?: boolean
  /** Operations in flight at once (default 64; the design needs at most 42 reads + 67 writes). */
  readonly inFlightMax?: number
  /**
   * Formatting only, with `createSizeBytes`: when the scope holding the file closes after a
   * failure (a failed write, an interrupt, a defect), the file is removed. It holds nothing valid
   * yet, and since format never overwrites a file, a partial one would block the retry. Only the
   * file created here is removed (same device and inode), never one put at the path meanwhile.
   */
  readonly removeIfFailed?: boolean
}

export interface DataFile {
  readonly fd: number
  readonly path: string
  readonly directIo: boolean
  /** Device and inode at open: what `removeIfFailed` checks before removing the path. */
  readonly dev: number
  readonly ino: number
}

/** Attempts to take the file's lock, `lockRetryDelay` apart (storage.md §5.1: 5 × 50 ms). */
export const lockAttemptsMax = 5
const lockRetryDelay = Duration.millis(50)

/** Zeroes written at once where fallocate is unavailable: few O_DSYNC writes, bounded memory. */
export const zeroChunkBytes = 8 * 1024 * 1024

/** Opens (or creates) the data file and locks it; closes it when the scope closes. */
export function openDataFile(options: DataFileOptions, directIo: boolean): Effect.Effect<DataFile, StorageOpenError, Scope.Scope> {
  const open = Effect.try({
    try: () => openSync(options, directIo),
    catch: (error) => toOpenError(options.path, error, options.createSizeBytes !== undefined)
  })
  assert(options.removeIfFailed !== true || options.createSizeBytes !== undefined, () => "removeIfFailed is for a file being created")
  const close = (file: DataFile, failed: boolean) => Effect.sync(() => {
    fs.closeSync(file.fd)
    if (failed && options.removeIfFailed === true) removeIfSame(file)
  })
  return Effect.acquireRelease(
    Effect.flatMap(open, (file) => Effect.as(Effect.onError(lock(file), () => close(file, true)), file)),
    (file, exit) => close(file, Exit.isFailure(exit))
  )
}

// ---------------------------------------------------------------------------------------------

/** Without the addon there is no flock: development setups only (they also lack Direct I/O). */
const lock = Effect.fnUntraced(function* (file: DataFile) {
  if (native === undefined) return
  for (let attempt = 1; attempt <= lockAttemptsMax; attempt++) {
    const error = native.lockExclusive(file.fd)
    if (error === 0) return
    if (error !== osConstants.errno.EWOULDBLOCK) {
      return yield* new StorageOpenError({ path: file.path, code: errnoName(-error), reason: "flock failed" })
    }
    if (attempt < lockAttemptsMax) yield* Effect.sleep(lockRetryDelay)
  }
  return yield* new StorageOpenError({
    path: file.path,
    code: "EWOULDBLOCK",
    reason: `the data file is locked: another replica (a process, or another open in this one) has it open; tried ${lockAttemptsMax} times`
  })
})

/** A refusal found by our own checks (size, file type), carried out of `openSync`. */
class Refusal {
  readonly code: string
  readonly reason: string
  constructor(code: string, reason: string) {
    this.code = code
    this.reason = reason
  }
}

function openSync(options: DataFileOptions, directIo: boolean): DataFile {
  const { O_RDWR, O_DSYNC, O_DIRECT, O_CREAT, O_EXCL } = fs.constants
  const create = options.createSizeBytes !== undefined
  if (create && (options.createSizeBytes <= 0 || options.createSizeBytes % sectorSize !== 0)) {
    throw new Refusal("EINVAL", `size to create (${options.createSizeBytes}) is not a positive sector multiple`)
  }
  // Node opens every file close-on-exec already.
  const flags = O_RDWR | O_DSYNC | (directIo ? O_DIRECT : 0) | (create ? O_CREAT | O_EXCL : 0)
  const fd = fs.openSync(options.path, flags, 0o600)
  try {
    if (options.createSizeBytes !== undefined) reserveSpace(fd, options.path, options.createSizeBytes, directIo, native)
    const stat = fs.fstatSync(fd)
    if (!stat.isFile() && !stat.isBlockDevice()) throw new Refusal("EFTYPE", "not a regular file or block device")
    const sizeMin = options.sizeBytesMin ?? 0
    if (stat.isFile() && stat.size < sizeMin) {
      throw new Refusal("ETOOSMALL", `the file has ${stat.size} bytes, fewer than the minimum ${sizeMin}`)
    }
    // Never decide on data that a crashed predecessor may not have made durable.
    fs.fsyncSync(fd)
    fsyncDirectory(nodePath.dirname(nodePath.resolve(options.path)))
    return { fd, path: options.path, directIo, dev: stat.dev, ino: stat.ino }
  } catch (error) {
    fs.closeSync(fd)
    // O_EXCL made this file ours, and it holds nothing yet: left behind, it would block the retry.
    if (create) fs.rmSync(options.path, { force: true })
    if (error instanceof NoSpace) throw noSpaceRefusal(error.sizeBytes, options.path)
    throw error
  }
}

/**
 * Reserves bytes [0, sizeBytes) of a file being created (storage.md §2.1), so that a disk too
 * small is found at format rather than by a write while running. fallocate(2) through the addon;
 * where the file system cannot (EOPNOTSUPP) or the addon is off, zeroes are written in chunks of
 * `zeroChunkBytes`, after checking the free space so that a disk too small is not filled first.
 * Throws NoSpace when the device lacks the space, a Refusal for any other failure.
 */
export function reserveSpace(fd: number, path: string, sizeBytes: number, directIo: boolean, addon: NativeAddon | undefined): void {
  assert(Number.isSafeInteger(sizeBytes) && sizeBytes > 0 && sizeBytes % sectorSize === 0, () => `size to reserve ${sizeBytes}`)
  assert(!directIo || addon !== undefined, () => "Direct I/O needs the addon's aligned memory")
  const result = addon === undefined ? errnoEopnotsupp : addon.allocateFile(fd, sizeBytes)
  if (result === errnoEnospc) throw new NoSpace(sizeBytes)
  if (result !== 0 && result !== errnoEopnotsupp) throw new Refusal(errnoName(-result), "fallocate failed")
  if (result === errnoEopnotsupp) {
    if (freeBytes(path) < sizeBytes) throw new NoSpace(sizeBytes)
    writeZeroes(fd, sizeBytes, addon)
  }
  assert(fs.fstatSync(fd).size >= sizeBytes, () => "the reserved file is shorter than its size")
}

/** The free bytes of the file system holding `path`, as `df` counts them (what non-root may use). */
export function freeBytes(path: string): number {
  const stats = fs.statfsSync(path)
  return stats.bavail * stats.bsize
}

const errnoEnospc = osConstants.errno.ENOSPC
const errnoEopnotsupp = osConstants.errno.EOPNOTSUPP

/** The device lacks the space to create the file; reported once the partial file is removed. */
export class NoSpace {
  readonly sizeBytes: number
  constructor(sizeBytes: number) {
    this.sizeBytes = sizeBytes
  }
}

/** Measured after the partial file is gone, so the figure is what a retry would find. */
function noSpaceRefusal(sizeBytes: number, path: string): Refusal {
  const free = freeBytes(nodePath.dirname(nodePath.resolve(path)))
  return new Refusal("ENOSPC", `no space left on the device (needs ${sizeBytes} bytes, has ${free})`)
}

function writeZeroes(fd: number, sizeBytes: number, addon: NativeAddon | undefined): void {
  const chunkBytes = Math.min(zeroChunkBytes, sizeBytes)
  // Aligned memory whenever the addon is there: the file may be open with O_DIRECT.
  const zeroes = addon === undefined ? new Uint8Array(chunkBytes) : new Uint8Array(addon.allocateAligned(chunkBytes, sectorSize))
  let done = 0
  // Every pass writes at least one byte or throws, so there are at most sizeBytes passes.
  for (let writes = 0; done < sizeBytes; writes++) {
    assert(writes < sizeBytes, () => "zero-fill exceeded its bound")
    let written: number
    try {
      written = fs.writeSync(fd, zeroes, 0, Math.min(chunkBytes, sizeBytes - done), done)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOSPC") throw new NoSpace(sizeBytes)
      throw error
    }
    if (written <= 0) throw new Refusal("EIO", `writing zeroes at ${done} made no progress`)
    done += written
  }
  assert(done === sizeBytes, () => "zero-fill overran the file's size")
}

function removeIfSame(file: DataFile): void {
  const now = fs.statSync(file.path, { throwIfNoEntry: false })
  if (now !== undefined && now.dev === file.dev && now.ino === file.ino) fs.rmSync(file.path)
}

function fsyncDirectory(directory: string): void {
  const fd = fs.openSync(directory, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * The operator's reading of an open's failure. ENOENT means two things: creating (format), the
 * directory is missing; opening, the file is (it is created by `scarab format`).
 */
function toOpenError(path: string, error: unknown, creating: boolean): StorageOpenError {
  if (error instanceof Refusal) return new StorageOpenError({ path, code: error.code, reason: error.reason })
  const code = (error as NodeJS.ErrnoException).code ?? "UNKNOWN"
  const reasons: Record<string, string> = {
    ENOENT: creating ? `the directory ${nodePath.dirname(path)} does not exist (create it first)` : "no such file (create it with 'scarab format')",
    EEXIST: "the file already exists (refusing to format over it)",
    EACCES: "permission denied",
    EINVAL: "the file system refuses O_DIRECT (tmpfs or an overlay?); Direct I/O is required",
    ENOSPC: "no space left on the device",
    EISDIR: "the path is a directory"
  }
  return new StorageOpenError({ path, code, reason: reasons[code] ?? (error as Error).message })
}
