/**
 * Opening the data file for the io_uring and thread-pool layers (storage.md §5.1): read/write,
 * O_DIRECT (unless explicitly turned off), O_DSYNC, close-on-exec; created with O_EXCL when
 * formatting; checked to be a regular file or block device of at least the minimum size; locked
 * with an exclusive flock (through the addon; retried briefly, since a killed predecessor's
 * io_uring may hold the file for a moment); fsynced together with its directory before any
 * decision is made on its contents.
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { constants as osConstants } from "node:os"
import { Duration, Effect, type Scope } from "effect"
import { sectorSize, StorageOpenError } from "../storage/storage.ts"
import { errnoName } from "./disk_engine.ts"
import { native } from "./native.ts"

export interface DataFileOptions {
  readonly path: string
  /** Create the file with this size (a sector multiple); fails if it exists. */
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
}

export interface DataFile {
  readonly fd: number
  readonly path: string
  readonly directIo: boolean
}

/** Attempts to take the file's lock, `lockRetryDelay` apart (storage.md §5.1: 5 × 50 ms). */
export const lockAttemptsMax = 5
const lockRetryDelay = Duration.millis(50)

/** Opens (or creates) the data file and locks it; closes it when the scope closes. */
export function openDataFile(options: DataFileOptions, directIo: boolean): Effect.Effect<DataFile, StorageOpenError, Scope.Scope> {
  const open = Effect.try({
    try: () => openSync(options, directIo),
    catch: (error) => toOpenError(options.path, error)
  })
  const close = (file: DataFile) => Effect.sync(() => fs.closeSync(file.fd))
  return Effect.acquireRelease(
    Effect.flatMap(open, (file) => Effect.as(Effect.onError(lock(file), () => close(file)), file)),
    close
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
    reason: `another process (or Storage) holds the data file's lock; tried ${lockAttemptsMax} times`
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
    if (options.createSizeBytes !== undefined) fs.ftruncateSync(fd, options.createSizeBytes)
    const stat = fs.fstatSync(fd)
    if (!stat.isFile() && !stat.isBlockDevice()) throw new Refusal("EFTYPE", "not a regular file or block device")
    const sizeMin = options.sizeBytesMin ?? 0
    if (stat.isFile() && stat.size < sizeMin) {
      throw new Refusal("ETOOSMALL", `the file has ${stat.size} bytes, fewer than the minimum ${sizeMin}`)
    }
    // Never decide on data that a crashed predecessor may not have made durable.
    fs.fsyncSync(fd)
    fsyncDirectory(nodePath.dirname(nodePath.resolve(options.path)))
    return { fd, path: options.path, directIo }
  } catch (error) {
    fs.closeSync(fd)
    throw error
  }
}

function fsyncDirectory(directory: string): void {
  const fd = fs.openSync(directory, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

function toOpenError(path: string, error: unknown): StorageOpenError {
  if (error instanceof Refusal) return new StorageOpenError({ path, code: error.code, reason: error.reason })
  const code = (error as NodeJS.ErrnoException).code ?? "UNKNOWN"
  const reasons: Record<string, string> = {
    ENOENT: "no such file (format it first)",
    EEXIST: "the file already exists (refusing to format over it)",
    EACCES: "permission denied",
    EINVAL: "the file system refuses O_DIRECT (tmpfs or an overlay?); Direct I/O is required",
    ENOSPC: "no space left on the device for the file's size",
    EISDIR: "the path is a directory"
  }
  return new StorageOpenError({ path, code, reason: reasons[code] ?? (error as Error).message })
}
