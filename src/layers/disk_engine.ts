/**
 * The part of every Storage layer that does not depend on how bytes move: request checks, the
 * latent-sector-error read loop of storage.md §5.3, short-write continuation (§5.4), the bound
 * on operations in flight, and the rule that one fatal error poisons the Storage for good.
 *
 * A layer supplies a `DiskDriver`: positional read, write and fsync that answer with a byte
 * count or a negative errno, never an exception. The io_uring ring, the libuv thread pool and
 * the simulated disk are such drivers, so the semantics the conformance suite checks live here,
 * once.
 */
import { constants as osConstants } from "node:os"
import { Effect, Semaphore } from "effect"
import { assert } from "../assert.ts"
import {
  ioRuleBroken,
  ioSizeMax,
  type ReadReport,
  sectorSize,
  Storage,
  type StorageImplementation,
  StorageFatalError,
  type StorageError,
  StorageRangeError,
  type Zone
} from "../storage/storage.ts"

export interface DiskDriver {
  readonly implementation: StorageImplementation
  readonly path: string
  readonly directIo: boolean
  /** The driver's own bound; the engine never lets more operations into it at once. */
  readonly inFlightMax: number
  /** Sector-aligned zeroed memory (the engine records it as a valid I/O buffer). */
  allocateMemory(sizeBytes: number): Uint8Array
  /** Bytes read (0 at end of file) or a negative errno. */
  read(buffer: Uint8Array, position: number): Effect.Effect<number>
  /** Bytes written or a negative errno. */
  write(buffer: Uint8Array, position: number): Effect.Effect<number>
  /** 0 or a negative errno. */
  readonly sync: Effect.Effect<number>
  /** File size in bytes or a negative errno. */
  readonly sizeBytes: Effect.Effect<number>
}

/** Largest buffer `allocate` hands out (a buffer pool is carved from one allocation). */
export const allocationSizeMax = 1024 * 1024 * 1024

/** EINTR/EAGAIN resubmissions of one request before it counts as failed. */
const interruptedRetriesMax = 16

const errnoEio = osConstants.errno.EIO
const errnoEintr = osConstants.errno.EINTR
const errnoEagain = osConstants.errno.EAGAIN
const errnoEnospc = osConstants.errno.ENOSPC

/** Every buffer `allocate` produced; I/O on any other memory is refused (it may be unaligned). */
const alignedMemory = new WeakSet<ArrayBufferLike>()

/** Builds the Storage service over a driver. */
export function makeStorage(driver: DiskDriver): Storage["Service"] {
  assert(driver.inFlightMax >= 1 && driver.inFlightMax <= 4096, () => "inFlightMax must be in 1..4096")
  const engine: Engine = { driver, permits: Semaphore.makeUnsafe(driver.inFlightMax), poisoned: undefined }
  return Storage.of({
    implementation: driver.implementation,
    path: driver.path,
    directIo: driver.directIo,
    inFlightMax: driver.inFlightMax,
    allocate(sizeBytes) {
      assert(Number.isSafeInteger(sizeBytes) && sizeBytes > 0, () => "allocation size must be positive")
      assert(sizeBytes % sectorSize === 0, () => "allocation size must be a sector multiple")
      assert(sizeBytes <= allocationSizeMax, () => "allocation larger than allocationSizeMax")
      const memory = driver.allocateMemory(sizeBytes)
      assert(memory.length === sizeBytes && memory.byteOffset === 0, () => "driver allocated the wrong size")
      alignedMemory.add(memory.buffer)
      return memory
    },
    read: (zone, offset, buffer) => readZone(engine, zone, offset, buffer),
    write: (zone, offset, buffer) => writeZone(engine, zone, offset, buffer),
    sync: Effect.gen(function* () {
      if (engine.poisoned !== undefined) return yield* Effect.fail(engine.poisoned)
      const result = yield* bounded(engine, driver.sync)
      if (result < 0) return yield* poison(engine, "sync", 0, result, failureReason(result, "fsync failed"))
    }),
    sizeBytes: Effect.gen(function* () {
      const result = yield* driver.sizeBytes
      if (result < 0) return yield* poison(engine, "read", 0, result, "fstat failed")
      return result
    })
  })
}

/** Name of a negative errno result ("EIO"), or a description for non-errno results. */
export function errnoName(result: number): string {
  if (result >= 0) return result === 0 ? "ZERO_BYTES" : "OK"
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === -result) return name
  return `ERRNO_${-result}`
}

const readClean: ReadReport = { sectorsZeroed: [] }

/**
 * A full disk is the operator's to fix (free space or move the file), not a sign of a failing
 * device: it is still fatal (storage.md §5.4), but says so plainly.
 */
function failureReason(result: number, otherwise: string): string {
  assert(result < 0, () => "a failure reason for a successful result")
  return result === -errnoEnospc ? "no space left on the device" : otherwise
}

function isAllocated(buffer: Uint8Array): boolean {
  return alignedMemory.has(buffer.buffer) && buffer.byteOffset % sectorSize === 0 && buffer.length <= ioSizeMax
}

/** What the operations of one Storage share: its driver, the bound on operations in flight, and the poison once set. */
interface Engine {
  readonly driver: DiskDriver
  readonly permits: Semaphore.Semaphore
  poisoned: StorageFatalError | undefined
}

/**
 * Runs a driver operation under the in-flight bound. Uninterruptible: the kernel (or a pool
 * thread) owns the buffer until the completion, so the permit, the buffer and the caller all
 * wait for it even when the caller is interrupted.
 */
function bounded<A>(engine: Engine, effect: Effect.Effect<A>): Effect.Effect<A> {
  return engine.permits.withPermits(1)(Effect.uninterruptible(effect))
}

/** Fails with the first fatal error, which every later request gets too. */
function poison(engine: Engine, operation: "read" | "write" | "sync", offset: number, result: number, reason: string) {
  engine.poisoned ??= new StorageFatalError({ path: engine.driver.path, operation, offset, code: errnoName(result), reason })
  return Effect.fail(engine.poisoned)
}

/** Why a request may not run, or undefined: checked synchronously, no Effect on the hot path. */
function rejection(engine: Engine, zone: Zone, offset: number, buffer: Uint8Array): StorageError | undefined {
  const reason = ioRuleBroken(zone, offset, buffer.length, isAllocated(buffer))
  if (reason !== undefined) return new StorageRangeError({ path: engine.driver.path, zone: zone.name, offset, length: buffer.length, reason })
  return engine.poisoned
}

/** `Storage.read`: a read that survives latent sector errors by zeroing exactly the sectors that fail (§5.3). */
const readZone = Effect.fnUntraced(function* (engine: Engine, zone: Zone, offset: number, buffer: Uint8Array) {
  const rejected = rejection(engine, zone, offset, buffer)
  if (rejected !== undefined) return yield* Effect.fail(rejected)
  const start = zone.start + offset
  const length = buffer.length
  let sectorsZeroed: Array<number> | undefined
  // §5.3: halve the request on EIO down to one sector, zero-fill that sector, then walk on
  // one or two sectors per read. Each step advances or halves, so this bounds the loop.
  const stepsMax = (length / sectorSize) * 34 + interruptedRetriesMax
  let done = 0
  let targetMax = length
  let retries = 0
  for (let step = 0; done < length; step++) {
    assert(step < stepsMax, () => "read loop exceeded its bound")
    const target = Math.min(length - done, targetMax)
    const result = yield* bounded(engine, engine.driver.read(buffer.subarray(done, done + target), start + done))
    if (result === -errnoEio) {
      if (target > sectorSize) {
        targetMax = Math.ceil(target / 2 / sectorSize) * sectorSize
      } else {
        buffer.fill(0, done, done + sectorSize)
        sectorsZeroed ??= []
        sectorsZeroed.push(start + done)
        done += sectorSize
      }
    } else if (result === -errnoEintr || result === -errnoEagain) {
      retries++
      if (retries > interruptedRetriesMax) return yield* poison(engine, "read", start + done, result, "retried too often")
    } else if (result < 0) {
      return yield* poison(engine, "read", start + done, result, "read failed")
    } else if (result === 0) {
      // Past the end of the file: nothing was ever written there.
      buffer.fill(0, done)
      done = length
    } else {
      assert(result <= target, () => "read returned more bytes than requested")
      done += result
      // A read that ends inside a sector can only be the end of the file: the rest of that
      // sector is zeroes, and the next read must start on a sector again.
      const sectorEnd = Math.ceil(done / sectorSize) * sectorSize
      buffer.fill(0, done, sectorEnd)
      done = sectorEnd
      if (targetMax === sectorSize) targetMax = 2 * sectorSize
    }
  }
  assert(done === length, () => "read loop overran its buffer")
  return sectorsZeroed === undefined ? readClean : ({ sectorsZeroed } satisfies ReadReport)
})

/** `Storage.write`: a write continued past short writes (§5.4); any failure poisons the Storage. */
const writeZone = Effect.fnUntraced(function* (engine: Engine, zone: Zone, offset: number, buffer: Uint8Array) {
  const rejected = rejection(engine, zone, offset, buffer)
  if (rejected !== undefined) return yield* Effect.fail(rejected)
  const start = zone.start + offset
  let done = 0
  let retries = 0
  // Each pass writes at least one byte or counts a retry, so this terminates.
  while (done < buffer.length) {
    const result = yield* bounded(engine, engine.driver.write(buffer.subarray(done), start + done))
    if (result === -errnoEintr || result === -errnoEagain) {
      retries++
      if (retries > interruptedRetriesMax) return yield* poison(engine, "write", start + done, result, "retried too often")
    } else if (result < 0) {
      return yield* poison(engine, "write", start + done, result, failureReason(result, "write failed; the device cannot be trusted"))
    } else if (result === 0) {
      return yield* poison(engine, "write", start + done, result, "write made no progress")
    } else {
      assert(result <= buffer.length - done, () => "write returned more bytes than requested")
      done += result
    }
  }
})
