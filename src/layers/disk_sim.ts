/**
 * The simulated disk (storage.md §8): an in-memory data file with seeded latencies and the fault
 * model TigerBeetle's simulator uses, behind the same Storage service and engine as the real
 * layers, so the journal and grid are tested against exactly the semantics they get in
 * production.
 *
 * A `SimulatedDisk` is the device: it outlives replica "processes". Each `layer()` is one open
 * of it; `crash()` tears the writes in flight and cuts off the Storage that was open, and a new
 * `layer()` is the restarted replica's.
 *
 * Faults, each drawn from the disk's own PRNG and only where `faultArea` allows (the cluster's
 * fault atlas, §8.3); crash tears ignore the area, since the superblock must survive them too:
 * - read corruption: a sector of the read turns faulty; a faulty sector reads back with one
 *   byte flipped at a position derived from its pristine bytes (so re-reads agree);
 * - write corruption: a sector of the write turns faulty;
 * - misdirected writes: the whole write lands on another place of the same fault area. As in
 *   §8.1 the pristine image still receives it at the intended place and an overlay makes the
 *   wrong place show the new bytes and the intended place keep showing its old ones; at most one
 *   misdirected write is active (overlaid) at a time, and rewriting a sector drops its overlay;
 * - misdirected reads: the whole read is served from another place of the same fault area;
 * - latent sector errors: a sector of the read starts failing with EIO until rewritten, which
 *   exercises the engine's §5.3 retry loop;
 * - torn writes at crash: a write in flight lands only up to a random sector, which turns faulty.
 * A sector that was never written reads as seeded random bytes (or zeroes, if asked).
 *
 * Completions come after `Effect.sleep` of a seeded exponential latency, so their order is fixed
 * by the seed and the Clock: deterministic under TestClock or the simulator's clock.
 *
 * Masking (§8.1): a masked disk keeps recording faults but reads back pristine bytes, so the
 * simulator can decide per replica and per restart whether faults are observable.
 */
import { constants as osConstants } from "node:os"
import { Duration, Effect, Layer } from "effect"
import { sectorSize, Storage } from "../storage/storage.ts"
import { assert } from "../assert.ts"
import { type DiskDriver, makeStorage } from "./disk_engine.ts"
import { Prng } from "../prng.ts"

/** Largest simulated image: the test_min data file plus a generous grid fits in far less. */
export const simulatedSizeBytesMax = 1024 * 1024 * 1024

/** Attempts to find another place inside the fault area for a misdirected I/O. */
const misdirectAttemptsMax = 8

export interface SimulatedDiskFaults {
  /** Per read: one sector of it turns faulty (read corruption, bit rot). */
  readonly readFaultProbability: number
  /** Per write: one sector of it turns faulty (a lost or bad write). */
  readonly writeFaultProbability: number
  /** Per write: it lands somewhere else in the same fault area. */
  readonly writeMisdirectProbability: number
  /** Per read: it is served from somewhere else in the same fault area. */
  readonly readMisdirectProbability: number
  /** Per read: one sector of it starts failing with EIO until it is rewritten. */
  readonly latentSectorErrorProbability: number
  /** Per write in flight at a crash: it is torn. */
  readonly crashFaultProbability: number
}

export const faultsNone: SimulatedDiskFaults = {
  readFaultProbability: 0,
  writeFaultProbability: 0,
  writeMisdirectProbability: 0,
  readMisdirectProbability: 0,
  latentSectorErrorProbability: 0,
  crashFaultProbability: 0
}

/** Minimum and mean of an exponential latency, in milliseconds of the Clock. */
export interface LatencyMs {
  readonly min: number
  readonly mean: number
}

export interface SimulatedDiskOptions {
  readonly seed: number
  /** Size of the image (a sector multiple); writes past it fail with ENOSPC. */
  readonly sizeBytes: number
  /** Name used in errors and logs. */
  readonly path?: string
  /** Default 0: completion on the next scheduler turn. */
  readonly readLatencyMs?: LatencyMs
  readonly writeLatencyMs?: LatencyMs
  readonly faults?: Partial<SimulatedDiskFaults>
  /** Where random faults may land (the fault atlas); default everywhere. */
  readonly faultArea?: (position: number, length: number) => boolean
  /** Whether never-written sectors read as random bytes (default) or as zeroes. */
  readonly unwrittenReadsRandom?: boolean
  readonly inFlightMax?: number
}

/** Fault counters, for tests and the simulator's report. */
export interface SimulatedDiskStats {
  reads: number
  writes: number
  readFaults: number
  writeFaults: number
  misdirectedReads: number
  misdirectedWrites: number
  latentSectorErrors: number
  tornWrites: number
}

interface WriteInFlight {
  readonly buffer: Uint8Array
  readonly position: number
}

export class SimulatedDisk {
  readonly path: string
  readonly sizeBytes: number
  readonly stats: SimulatedDiskStats = {
    reads: 0, writes: 0, readFaults: 0, writeFaults: 0,
    misdirectedReads: 0, misdirectedWrites: 0, latentSectorErrors: 0, tornWrites: 0
  }
  private readonly seed: number
  private readonly prng: Prng
  private readonly faults: SimulatedDiskFaults
  private readonly faultArea: (position: number, length: number) => boolean
  private readonly readLatencyMs: LatencyMs
  private readonly writeLatencyMs: LatencyMs
  private readonly unwrittenReadsRandom: boolean
  private readonly inFlightMax: number
  /** The bytes as written (faults are kept beside them, never applied to them). */
  private readonly pristine: Uint8Array
  private readonly sectorWritten: Uint8Array
  private readonly sectorFaulty: Uint8Array
  private readonly sectorLatent: Uint8Array
  private readonly writesInFlight = new Set<WriteInFlight>()
  /** Sector contents shown instead of the pristine ones: the active misdirected write. */
  private readonly overlay = new Map<number, Uint8Array>()
  private faultsEnabled = true
  private faultsMasked = false
  /** Incremented by every crash: I/O of an older generation belongs to a dead process. */
  private generation = 0

  constructor(options: SimulatedDiskOptions) {
    const { sizeBytes } = options
    assert(Number.isSafeInteger(sizeBytes) && sizeBytes > 0 && sizeBytes % sectorSize === 0, () => "size must be a sector multiple")
    assert(sizeBytes <= simulatedSizeBytesMax, () => "simulated disk larger than simulatedSizeBytesMax")
    this.path = options.path ?? "simulated"
    this.sizeBytes = sizeBytes
    this.seed = options.seed
    this.prng = new Prng(options.seed)
    this.faults = { ...faultsNone, ...options.faults }
    for (const [name, probability] of Object.entries(this.faults)) {
      assert(probability >= 0 && probability <= 1, () => `${name} must be a probability`)
    }
    this.faultArea = options.faultArea ?? (() => true)
    this.readLatencyMs = checkLatency(options.readLatencyMs ?? { min: 0, mean: 0 })
    this.writeLatencyMs = checkLatency(options.writeLatencyMs ?? { min: 0, mean: 0 })
    this.unwrittenReadsRandom = options.unwrittenReadsRandom ?? true
    this.inFlightMax = options.inFlightMax ?? 64
    this.pristine = new Uint8Array(sizeBytes)
    const sectors = sizeBytes / sectorSize
    this.sectorWritten = new Uint8Array(sectors)
    this.sectorFaulty = new Uint8Array(sectors)
    this.sectorLatent = new Uint8Array(sectors)
  }

  /** A Storage over this disk, for one replica process (until the next `crash`). */
  layer(): Layer.Layer<Storage> {
    return Layer.sync(Storage, () => makeStorage(this.driver()))
  }

  /**
   * The replica process dies: every write in flight may tear (crashFaultProbability), reads in
   * flight are dropped, and the Storage that was open fails everything it still completes.
   */
  crash(): void {
    for (const write of this.writesInFlight) {
      if (!this.prng.chance(this.faults.crashFaultProbability)) continue
      // Torn: the sectors before a random one landed, that one is garbage, the rest did not.
      const sectors = write.buffer.length / sectorSize
      const torn = this.prng.below(sectors)
      this.apply(write.buffer.subarray(0, torn * sectorSize), write.position)
      this.sectorFaulty[write.position / sectorSize + torn] = 1
      this.stats.tornWrites++
    }
    this.writesInFlight.clear()
    this.generation++
  }

  /** Liveness mode (§8.1): no new faults, and existing ones read back pristine. */
  disableFaults(): void {
    this.faultsEnabled = false
  }

  /** Masked: faults are still injected and kept, but reads see the pristine bytes (§8.1). */
  setFaultsMasked(masked: boolean): void {
    this.faultsMasked = masked
  }

  /** Explicit fault injection for tests: the sector at `position` reads back corrupted. */
  corruptSector(position: number): void {
    this.sectorFaulty[this.sectorIndex(position)] = 1
  }

  /** Explicit fault injection for tests: the sector at `position` fails reads with EIO. */
  makeSectorLatent(position: number): void {
    this.sectorLatent[this.sectorIndex(position)] = 1
  }

  isSectorFaulty(position: number): boolean {
    return this.sectorFaulty[this.sectorIndex(position)] === 1
  }

  private driver(): DiskDriver {
    const generation = this.generation
    return {
      implementation: "simulated",
      path: this.path,
      directIo: true,
      inFlightMax: this.inFlightMax,
      allocateMemory: (sizeBytes) => new Uint8Array(sizeBytes),
      read: (buffer, position) =>
        Effect.suspend(() => {
          const latency = this.prng.exponential(this.readLatencyMs.min, this.readLatencyMs.mean)
          return Effect.map(delay(latency), () => this.completeRead(buffer, position, generation))
        }),
      write: (buffer, position) =>
        Effect.suspend(() => {
          const latency = this.prng.exponential(this.writeLatencyMs.min, this.writeLatencyMs.mean)
          const write: WriteInFlight = { buffer, position }
          this.writesInFlight.add(write)
          return Effect.map(delay(latency), () => this.completeWrite(write, generation))
        }),
      sync: Effect.sync(() => (generation === this.generation ? 0 : -errnoEio)),
      sizeBytes: Effect.succeed(this.sizeBytes)
    }
  }

  private completeRead(buffer: Uint8Array, position: number, generation: number): number {
    if (generation !== this.generation) return 0
    if (position >= this.sizeBytes) return 0
    const length = Math.min(buffer.length, this.sizeBytes - position)
    assert(position % sectorSize === 0 && length % sectorSize === 0, () => "simulated reads are sector-aligned")
    this.stats.reads++
    const faulty = this.faultsEnabled && this.faultArea(position, length)
    if (faulty && this.prng.chance(this.faults.readFaultProbability)) {
      this.sectorFaulty[this.randomSector(position, length)] = 1
      this.stats.readFaults++
    }
    if (faulty && this.prng.chance(this.faults.latentSectorErrorProbability)) {
      this.sectorLatent[this.randomSector(position, length)] = 1
      this.stats.latentSectorErrors++
    }
    const first = position / sectorSize
    for (let sector = first; sector < first + length / sectorSize; sector++) {
      if (this.sectorLatent[sector] === 1 && this.faultsVisible()) return -errnoEio
    }
    let source = position
    if (faulty && this.prng.chance(this.faults.readMisdirectProbability)) {
      source = this.misdirect(position, length)
      if (source !== position) this.stats.misdirectedReads++
    }
    for (let offset = 0; offset < length; offset += sectorSize) this.readSector(buffer, offset, source + offset)
    return length
  }

  private completeWrite(write: WriteInFlight, generation: number): number {
    if (generation !== this.generation) return -errnoEio
    this.writesInFlight.delete(write)
    const { buffer, position } = write
    if (position + buffer.length > this.sizeBytes) return -errnoEnospc
    this.stats.writes++
    const faulty = this.faultsEnabled && this.faultArea(position, buffer.length)
    // Only one misdirected write at a time: a second would make the overlay ambiguous.
    const wrong = faulty && this.overlay.size === 0 && this.prng.chance(this.faults.writeMisdirectProbability)
      ? this.misdirect(position, buffer.length)
      : position
    if (wrong === position) {
      this.apply(buffer, position)
    } else {
      this.misdirectWrite(buffer, position, wrong)
      this.stats.misdirectedWrites++
    }
    if (faulty && this.prng.chance(this.faults.writeFaultProbability)) {
      this.sectorFaulty[this.randomSector(wrong, buffer.length)] = 1
      this.stats.writeFaults++
    }
    return buffer.length
  }

  /** Lands `data` at `position`: rewriting a sector heals its faults. */
  private apply(data: Uint8Array, position: number): void {
    this.pristine.set(data, position)
    const first = position / sectorSize
    for (let sector = first; sector < first + data.length / sectorSize; sector++) {
      this.sectorWritten[sector] = 1
      this.sectorFaulty[sector] = 0
      this.sectorLatent[sector] = 0
      this.overlay.delete(sector)
    }
  }

  /**
   * The write meant for `intended` lands on `wrong`: overlays make `wrong` show the new bytes and
   * `intended` keep its old ones, while the pristine image gets the write where it belongs.
   */
  private misdirectWrite(data: Uint8Array, intended: number, wrong: number): void {
    const sectors = data.length / sectorSize
    const shown = new Uint8Array(sectorSize)
    for (let i = 0; i < sectors; i++) {
      this.readSector(shown, 0, intended + i * sectorSize)
      this.overlay.set(intended / sectorSize + i, shown.slice())
    }
    for (let i = 0; i < sectors; i++) {
      const sector = wrong / sectorSize + i
      // The wrong place really was overwritten on the medium, so its own faults are gone too.
      this.sectorFaulty[sector] = 0
      this.sectorLatent[sector] = 0
      this.overlay.set(sector, data.slice(i * sectorSize, (i + 1) * sectorSize))
    }
    this.pristine.set(data, intended)
    for (let sector = intended / sectorSize; sector < intended / sectorSize + sectors; sector++) this.sectorWritten[sector] = 1
  }

  private faultsVisible(): boolean {
    return this.faultsEnabled && !this.faultsMasked
  }

  private readSector(target: Uint8Array, targetOffset: number, position: number): void {
    const sector = position / sectorSize
    const bytes = target.subarray(targetOffset, targetOffset + sectorSize)
    const shown = this.faultsVisible() ? this.overlay.get(sector) : undefined
    if (shown !== undefined) {
      bytes.set(shown)
      return
    }
    if (this.sectorWritten[sector] === 0) {
      if (this.unwrittenReadsRandom) {
        // Keyed by seed and sector, so every read of the same unwritten sector agrees.
        const prng = new Prng(this.seed * 65536 + sector)
        const view = new DataView(bytes.buffer, bytes.byteOffset, sectorSize)
        for (let i = 0; i < sectorSize; i += 4) view.setUint32(i, prng.nextU32(), true)
      } else {
        bytes.fill(0)
      }
      return
    }
    bytes.set(this.pristine.subarray(position, position + sectorSize))
    if (this.sectorFaulty[sector] === 1 && this.faultsVisible()) {
      // The flipped byte's position depends only on the pristine bytes: re-reads agree.
      let hash = 0x811c9dc5
      for (let i = 0; i < sectorSize; i += 64) hash = Math.imul(hash ^ bytes[i], 0x01000193)
      bytes[(hash >>> 0) % sectorSize] ^= 0xff
    }
  }

  /** Another sector-aligned place for `length` bytes inside the fault area, or `position`. */
  private misdirect(position: number, length: number): number {
    const places = (this.sizeBytes - length) / sectorSize + 1
    for (let attempt = 0; attempt < misdirectAttemptsMax; attempt++) {
      const candidate = this.prng.below(places) * sectorSize
      if (candidate !== position && this.faultArea(candidate, length)) return candidate
    }
    return position
  }

  private randomSector(position: number, length: number): number {
    return position / sectorSize + this.prng.below(length / sectorSize)
  }

  private sectorIndex(position: number): number {
    assert(Number.isSafeInteger(position) && position >= 0 && position < this.sizeBytes, () => "position outside the disk")
    return Math.floor(position / sectorSize)
  }
}

const errnoEio = osConstants.errno.EIO
const errnoEnospc = osConstants.errno.ENOSPC

function checkLatency(latency: LatencyMs): LatencyMs {
  assert(latency.min >= 0 && latency.mean >= latency.min, () => "latency needs 0 <= min <= mean")
  return latency
}

/** Whole milliseconds of the Clock; zero still yields, so completions never run synchronously. */
function delay(latencyMs: number): Effect.Effect<void> {
  const rounded = Math.round(latencyMs)
  return rounded === 0 ? Effect.yieldNow : Effect.sleep(Duration.millis(rounded))
}
