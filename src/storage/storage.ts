/**
 * The Storage service: the one door between a replica and its data file (storage.md §5).
 *
 * Every I/O is sector-aligned (buffer memory, length and offset), addressed as an offset inside
 * a zone, and checked before it reaches the kernel. Reads never fail because of the medium: an
 * unreadable sector is retried sector by sector (§5.3), comes back zero-filled and is reported,
 * so the caller sees a checksum failure and repairs from a peer. A write either becomes durable
 * (the file is opened O_DIRECT|O_DSYNC) or fails with `StorageFatalError`: a replica must stop
 * then, since it cannot trust what the device holds (§5.4). After one fatal error every further
 * operation of that Storage fails with it too.
 *
 * Three layers implement it (src/layers/): io_uring (production), a thread-pool fallback, and a
 * simulated disk with the fault model of §8.
 */
import { Context, Effect, Schema } from "effect"

/** Unit of every disk I/O (storage.md §1.1): buffer address, length and offset are multiples. */
export const sectorSize = 4096

/** `size` bytes rounded up to whole sectors: what a write of them occupies on disk. */
export const sectorsCeil = (size: number): number => Math.ceil(size / sectorSize) * sectorSize

/** Largest single I/O: a batch of grid blocks at most; bigger requests are a sizing mistake. */
export const ioSizeMax = 64 * 1024 * 1024

/**
 * A zone of the data file (storage.md §2): reads and writes name the zone and an offset inside
 * it, and may not cross its end. The grid zone is elastic: its `sizeBytes` is the configured
 * storage limit minus its start.
 */
export interface Zone {
  readonly name: string
  readonly start: number
  readonly sizeBytes: number
}

/** Which implementation serves a Storage (logged at start-up). */
export type StorageImplementation = "io_uring" | "thread_pool" | "simulated"

/**
 * What a read observed: the absolute file offsets of the sectors that could not be read and
 * were zero-filled (empty when the read was clean).
 */
export interface ReadReport {
  readonly sectorsZeroed: ReadonlyArray<number>
}

/** An I/O request that breaks the alignment or range rules; rejected before the kernel sees it. */
export class StorageRangeError extends Schema.TaggedError<StorageRangeError>()("StorageRangeError", {
  path: Schema.String,
  zone: Schema.String,
  offset: Schema.Number,
  length: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: invalid I/O in zone ${this.zone} at offset ${this.offset} (+${this.length}): ${this.reason}`
  }
}

/** The data file cannot be opened as a Storage: missing, too small, not a file, refused. */
export class StorageOpenError extends Schema.TaggedError<StorageOpenError>()("StorageOpenError", {
  path: Schema.String,
  code: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: cannot open the data file (${this.code}): ${this.reason}`
  }
}

/**
 * A write or sync that did not reach the device (EIO, ENOSPC, a zero-byte write), or a read
 * that failed for a reason other than the medium. Fatal: the replica must stop.
 */
export class StorageFatalError extends Schema.TaggedError<StorageFatalError>()("StorageFatalError", {
  path: Schema.String,
  operation: Schema.Literals(["read", "write", "sync"]),
  offset: Schema.Number,
  code: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: ${this.operation} at offset ${this.offset} failed (${this.code}): ${this.reason}`
  }
}

export type StorageError = StorageRangeError | StorageFatalError

export class Storage extends Context.Service<Storage, {
  readonly implementation: StorageImplementation
  readonly path: string
  /** Whether writes bypass the page cache (O_DIRECT); false only in explicit development setups. */
  readonly directIo: boolean
  /** Operations this Storage lets into flight at once; more wait their turn. */
  readonly inFlightMax: number
  /**
   * Sector-aligned, zeroed memory of `sizeBytes` (a sector multiple). Every buffer handed to
   * `read` or `write` must be (a sector-aligned view into) such a buffer.
   */
  allocate(sizeBytes: number): Uint8Array
  /** Fills `buffer` from `zone` at `offset`; never fails because of the medium (see ReadReport). */
  read(zone: Zone, offset: number, buffer: Uint8Array): Effect.Effect<ReadReport, StorageError>
  /** Writes `buffer` to `zone` at `offset`; durable when it succeeds. */
  write(zone: Zone, offset: number, buffer: Uint8Array): Effect.Effect<void, StorageError>
  /** fsync: durable metadata too (used at open and by benchmarks; writes are already O_DSYNC). */
  readonly sync: Effect.Effect<void, StorageFatalError>
  /** Current size of the data file in bytes. */
  readonly sizeBytes: Effect.Effect<number, StorageFatalError>
}>()("scarab/Storage") {}

/**
 * Checks one request against the rules of storage.md §2 ("Every I/O is checked before
 * submission"); returns the reason it breaks them, or undefined. `aligned` says whether the
 * buffer's memory comes from `allocate` at a sector boundary.
 */
export function ioRuleBroken(zone: Zone, offset: number, length: number, aligned: boolean): string | undefined {
  if (!Number.isSafeInteger(zone.start) || zone.start < 0 || zone.start % sectorSize !== 0) {
    return "zone start is not a sector-aligned natural number"
  }
  if (!Number.isSafeInteger(offset) || offset < 0) return "offset is not a natural number"
  if (offset % sectorSize !== 0) return `offset is not a multiple of ${sectorSize}`
  if (length === 0) return "length is zero"
  if (length % sectorSize !== 0) return `length is not a multiple of ${sectorSize}`
  if (length > ioSizeMax) return `length exceeds ${ioSizeMax}`
  if (offset + length > zone.sizeBytes) return `range ends past the zone's ${zone.sizeBytes} bytes`
  if (!aligned) return "buffer memory is not sector-aligned (allocate it with Storage.allocate)"
  return undefined
}
