/**
 * The data file's zones (storage.md §2), computed from one configuration record. Two profiles:
 * production (1 MiB messages, 1024 WAL slots, 64 sessions) and a small test profile that keeps
 * test and simulator data files tiny.
 */
import { assert } from "../assert.ts"
import type { Zone } from "./storage.ts"
import { sectorSize } from "./storage.ts"

export interface StorageConfig {
  readonly name: "production" | "test"
  readonly superblockCopies: number
  /** Bytes reserved per superblock copy. */
  readonly superblockCopySize: number
  /** WAL length in ops; slot = op mod journalSlotCount. */
  readonly journalSlotCount: number
  /** Largest message: the size of a WAL slot and of a client-reply slot. */
  readonly messageSizeMax: number
  readonly clientsMax: number
  readonly blockSize: number
}

export const productionConfig: StorageConfig = {
  name: "production", superblockCopies: 4, superblockCopySize: 24 * 1024, journalSlotCount: 1024,
  messageSizeMax: 1024 * 1024, clientsMax: 64, blockSize: 512 * 1024
}

/**
 * Fewer WAL slots (256) for tests and the simulator, with full-size messages so that a client
 * can send a full 8189-event batch (a data file of ~130 MiB, sparse on disk). The superblock
 * copies sit where production has them, so a file names its own profile.
 */
export const testConfig: StorageConfig = {
  name: "test", superblockCopies: 4, superblockCopySize: 24 * 1024, journalSlotCount: 256,
  messageSizeMax: 1024 * 1024, clientsMax: 64, blockSize: 64 * 1024
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
}

/** Grid capacity described by the layout until the grid is sized by its own limit (issue 5). */
const gridSizeDefault = 0

export function layoutOf(config: StorageConfig): Layout {
  assert(config.messageSizeMax % sectorSize === 0 && config.superblockCopySize % sectorSize === 0, () => "zone sizes must be sector multiples")
  assert(config.journalSlotCount >= 32 && (config.journalSlotCount & (config.journalSlotCount - 1)) === 0, () => "journalSlotCount must be a power of two >= 32")
  const superblock = zone("superblock", 0, config.superblockCopies * config.superblockCopySize)
  const walHeaders = zone("wal_headers", end(superblock), roundUp(config.journalSlotCount * 256, sectorSize))
  const walPrepares = zone("wal_prepares", end(walHeaders), config.journalSlotCount * config.messageSizeMax)
  const clientReplies = zone("client_replies", end(walPrepares), config.clientsMax * config.messageSizeMax)
  const gridStart = roundUp(end(clientReplies), config.blockSize)
  const grid = zone("grid", gridStart, gridSizeDefault)
  return { config, superblock, walHeaders, walPrepares, clientReplies, grid, dataFileSizeMin: gridStart }
}

const zone = (name: string, start: number, sizeBytes: number): Zone => ({ name, start, sizeBytes })
const end = (z: Zone): number => z.start + z.sizeBytes
const roundUp = (value: number, multiple: number): number => Math.ceil(value / multiple) * multiple
