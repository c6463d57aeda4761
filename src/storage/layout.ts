/**
 * The data file's zones (storage.md §2) and the checkpoint schedule (§7.1), computed from one
 * configuration record. Two profiles: production (1 MiB messages, 1024 WAL slots, 512 KiB grid
 * blocks) and a small test profile that keeps test and simulator data files small and makes
 * checkpoints frequent (every 32 ops), so that tests cross many of them.
 */
import { assert } from "../assert.ts"
import type { Zone } from "./storage.ts"
import { sectorSize } from "./storage.ts"

export interface StorageConfig {
  readonly name: "production" | "test"
  readonly superblockCopies: number
  /** Bytes reserved per superblock copy (the copy itself is 8 KiB; the rest is room to grow). */
  readonly superblockCopySize: number
  /** WAL length in ops; slot = op mod journalSlotCount. */
  readonly journalSlotCount: number
  /** Ops between checkpoints (vsr_checkpoint_ops): checkpoints at K−1, 2K−1, 3K−1, … */
  readonly checkpointOps: number
  /** Prepares written but not yet committed (pipeline_prepare_queue_max). */
  readonly pipelineMax: number
  /** Largest message: the size of a WAL slot and of a client-reply slot. */
  readonly messageSizeMax: number
  readonly clientsMax: number
  readonly blockSize: number
  /** The largest data file the free set can address (--limit-storage). */
  readonly storageSizeMax: number
}

export const productionConfig: StorageConfig = {
  name: "production", superblockCopies: 4, superblockCopySize: 24 * 1024, journalSlotCount: 1024, checkpointOps: 960,
  pipelineMax: 8, messageSizeMax: 1024 * 1024, clientsMax: 64, blockSize: 512 * 1024, storageSizeMax: 16 * 2 ** 40
}

/**
 * 64 WAL slots and a checkpoint every 32 ops for tests and the simulator, with full-size
 * messages so that a client can send a full 8189-event batch (a data file of ~128 MiB, sparse on
 * disk), and 4 KiB grid blocks (TigerBeetle's test_min size) so that even a small ledger spans
 * many blocks and checkpoints exercise carried-over blocks and multi-block trailers. The
 * superblock copies sit where production has them, so a file names its own profile.
 */
export const testConfig: StorageConfig = {
  name: "test", superblockCopies: 4, superblockCopySize: 24 * 1024, journalSlotCount: 64, checkpointOps: 32,
  pipelineMax: 8, messageSizeMax: 1024 * 1024, clientsMax: 64, blockSize: 4096, storageSizeMax: 16 * 2 ** 30
}

export const storageConfigs = { production: productionConfig, test: testConfig } as const

export interface Layout {
  readonly config: StorageConfig
  readonly superblock: Zone
  readonly walHeaders: Zone
  readonly walPrepares: Zone
  readonly clientReplies: Zone
  readonly grid: Zone
  /** The file size with an empty grid. */
  readonly dataFileSizeMin: number
  /** Grid blocks the storage limit leaves room for: addresses 1..gridBlocksMax. */
  readonly gridBlocksMax: number
}

/** Headers of the WAL headers ring in one sector: a sector is the unit of its writes. */
export const headersPerSector = sectorSize / 256

export function layoutOf(config: StorageConfig): Layout {
  assert(config.messageSizeMax % sectorSize === 0 && config.superblockCopySize % sectorSize === 0, () => "zone sizes must be sector multiples")
  assert(config.journalSlotCount >= 2 * headersPerSector && (config.journalSlotCount & (config.journalSlotCount - 1)) === 0,
    () => "journalSlotCount must be a power of two of at least two header sectors")
  // The WAL must hold every op from a checkpoint to the newest op that may be prepared on top of
  // it (prepareMax below), plus a full pipeline written while the next checkpoint is taken.
  assert(config.checkpointOps > 0 && config.journalSlotCount - config.checkpointOps >= 2 * config.pipelineMax,
    () => "the WAL must leave room for two pipelines beyond a checkpoint interval")
  assert(config.blockSize % sectorSize === 0 && config.blockSize >= sectorSize, () => "blockSize must be a sector multiple")
  const superblock = zone("superblock", 0, config.superblockCopies * config.superblockCopySize)
  const walHeaders = zone("wal_headers", end(superblock), roundUp(config.journalSlotCount * 256, sectorSize))
  const walPrepares = zone("wal_prepares", end(walHeaders), config.journalSlotCount * config.messageSizeMax)
  const clientReplies = zone("client_replies", end(walPrepares), config.clientsMax * config.messageSizeMax)
  const gridStart = roundUp(end(clientReplies), config.blockSize)
  assert(config.storageSizeMax > gridStart, () => "storageSizeMax leaves no grid")
  const gridBlocksMax = Math.floor((config.storageSizeMax - gridStart) / config.blockSize)
  const grid = zone("grid", gridStart, gridBlocksMax * config.blockSize)
  return { config, superblock, walHeaders, walPrepares, clientReplies, grid, dataFileSizeMin: gridStart, gridBlocksMax }
}

/**
 * The smallest file that can hold a checkpoint whose grid ends at `storageSize` (storage.md
 * §2.2): the fixed zones, then every block up to the newest. A block is written only up to its
 * last sector, and the file only grows, so the newest block's slot need not be whole, but its
 * first sector (the block's header) must be there. A shorter file was cut.
 */
export function dataFileSizeNeeded(layout: Layout, storageSize: number): number {
  // The superblock's validation refuses a storage_size below the zones' size before this runs.
  assert(Number.isSafeInteger(storageSize) && storageSize >= layout.dataFileSizeMin, () => `storage_size ${storageSize} below the zones' size`)
  if (storageSize === layout.dataFileSizeMin) return layout.dataFileSizeMin
  const needed = Math.max(layout.dataFileSizeMin, storageSize - layout.config.blockSize + sectorSize)
  assert(needed >= layout.dataFileSizeMin && needed <= storageSize, () => `size needed ${needed} outside the grid`)
  return needed
}

// --- the checkpoint schedule (storage.md §7.1, vsr.md §7.1) --------------------------------------
//
// Scarab's checkpoints (rung R1) are snapshots of the whole state taken right after committing
// the checkpoint op itself: there is no LSM bar whose memory table lags behind, so the trigger
// op is the checkpoint op (TigerBeetle triggers one bar later; docs/differences.md).

/** What the schedule depends on. */
export type CheckpointSchedule = Pick<StorageConfig, "journalSlotCount" | "checkpointOps" | "pipelineMax">

/** The checkpoint that follows checkpoint `op`: K−1 after the root, then every K ops. */
export function checkpointAfter(config: CheckpointSchedule, op: number): number {
  assert(op === 0 || (op + 1) % config.checkpointOps === 0, () => `op ${op} is not a checkpoint`)
  return op === 0 ? config.checkpointOps - 1 : op + config.checkpointOps
}

export const isCheckpointOp = (config: CheckpointSchedule, op: number): boolean => op > 0 && (op + 1) % config.checkpointOps === 0

/**
 * The newest op that may be prepared while `checkpoint` is the durable checkpoint: its slot must
 * not overwrite an op newer than `checkpoint`, which a restart would have to replay.
 */
export function prepareMax(config: CheckpointSchedule, checkpoint: number): number {
  const max = checkpointAfter(config, checkpoint) + config.journalSlotCount - config.checkpointOps
  assert(max - checkpoint <= config.journalSlotCount, () => "prepareMax would overwrite ops a restart needs")
  return max
}

/**
 * The op whose commit makes `checkpoint` durable (vsr.md §7.1): every replica frees the blocks
 * released before it at this same op, so that their grids stay identical. A replica never
 * acknowledges an op beyond `checkpoint + pipelineMax` before it has written the checkpoint itself.
 */
export const durableOp = (config: CheckpointSchedule, checkpoint: number): number => checkpoint + config.pipelineMax + 1

const zone = (name: string, start: number, sizeBytes: number): Zone => ({ name, start, sizeBytes })
const end = (z: Zone): number => z.start + z.sizeBytes
const roundUp = (value: number, multiple: number): number => Math.ceil(value / multiple) * multiple
