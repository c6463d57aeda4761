/**
 * The superblock, first rung: who this data file belongs to. Every copy holds the same
 * checksummed sector (cluster, replica, replica count, the configuration profile); opening reads
 * all copies and needs a valid one that agrees with every other valid one.
 *
 * The full superblock of storage.md §3 (sequenced VSR state, working and staging versions,
 * quorum rules, repair of damaged copies) replaces this with the durable-data-file issue; the
 * layout reserves its space already.
 */
import { Effect } from "effect"
import { checksum } from "../protocol/checksum.ts"
import type { Layout, StorageConfig } from "./layout.ts"
import { storageConfigs } from "./layout.ts"
import { type Storage, type StorageError, sectorSize } from "./storage.ts"

export interface SuperblockIdentity {
  readonly cluster: bigint
  readonly replica: number
  readonly replicaCount: number
  readonly config: StorageConfig["name"]
}

const magic = 0x53434152 // "SCAR"
const version = 1
// Layout of the sector: checksum 0..15, then magic u32, version u32, cluster u128, replica u8,
// replica_count u8, config name length u8 and the name; the rest zero.
const Offset = { checksum: 0, magic: 16, version: 20, cluster: 24, replica: 40, replicaCount: 41, configLength: 42, config: 43 } as const

export function encodeSuperblock(identity: SuperblockIdentity, target: Uint8Array): void {
  target.fill(0, 0, sectorSize)
  const view = new DataView(target.buffer, target.byteOffset, sectorSize)
  view.setUint32(Offset.magic, magic, true)
  view.setUint32(Offset.version, version, true)
  view.setBigUint64(Offset.cluster, identity.cluster & 0xffff_ffff_ffff_ffffn, true)
  view.setBigUint64(Offset.cluster + 8, identity.cluster >> 64n, true)
  target[Offset.replica] = identity.replica
  target[Offset.replicaCount] = identity.replicaCount
  const name = new TextEncoder().encode(identity.config)
  target[Offset.configLength] = name.length
  target.set(name, Offset.config)
  target.set(checksum(target.subarray(16, sectorSize)), Offset.checksum)
}

/** The identity in one copy, or undefined when the copy is damaged or not a Scarab superblock. */
export function decodeSuperblock(sector: Uint8Array): SuperblockIdentity | undefined {
  const expected = checksum(sector.subarray(16, sectorSize))
  for (let i = 0; i < 16; i++) if (sector[i] !== expected[i]) return undefined
  const view = new DataView(sector.buffer, sector.byteOffset, sectorSize)
  if (view.getUint32(Offset.magic, true) !== magic || view.getUint32(Offset.version, true) !== version) return undefined
  const config = new TextDecoder().decode(sector.subarray(Offset.config, Offset.config + sector[Offset.configLength]!))
  if (config !== "production" && config !== "test") return undefined
  return {
    cluster: view.getBigUint64(Offset.cluster, true) | (view.getBigUint64(Offset.cluster + 8, true) << 64n),
    replica: sector[Offset.replica]!,
    replicaCount: sector[Offset.replicaCount]!,
    config
  }
}

export const writeSuperblock = Effect.fnUntraced(function* (storage: Storage["Service"], layout: Layout, identity: SuperblockIdentity) {
  const sector = storage.allocate(sectorSize)
  encodeSuperblock(identity, sector)
  for (let copy = 0; copy < layout.config.superblockCopies; copy++) {
    yield* storage.write(layout.superblock, copy * layout.config.superblockCopySize, sector)
  }
})

export type SuperblockReadResult =
  | { readonly _tag: "Ok"; readonly identity: SuperblockIdentity; readonly damagedCopies: number }
  | { readonly _tag: "Unreadable" }
  | { readonly _tag: "Disagreeing" }

/** Reads every copy: the identity all valid copies agree on. */
export const readSuperblock = Effect.fnUntraced(function* (storage: Storage["Service"], layout: Layout) {
  const sector = storage.allocate(sectorSize)
  let found: SuperblockIdentity | undefined
  let damaged = 0
  for (let copy = 0; copy < layout.config.superblockCopies; copy++) {
    yield* storage.read(layout.superblock, copy * layout.config.superblockCopySize, sector)
    const identity = decodeSuperblock(sector)
    if (identity === undefined) damaged++
    else if (found === undefined) found = identity
    else if (!sameIdentity(found, identity)) return { _tag: "Disagreeing" } as SuperblockReadResult
  }
  return (found === undefined ? { _tag: "Unreadable" } : { _tag: "Ok", identity: found, damagedCopies: damaged }) as SuperblockReadResult
}) as (storage: Storage["Service"], layout: Layout) => Effect.Effect<SuperblockReadResult, StorageError>

const sameIdentity = (a: SuperblockIdentity, b: SuperblockIdentity): boolean =>
  a.cluster === b.cluster && a.replica === b.replica && a.replicaCount === b.replicaCount && a.config === b.config

/** The layout a superblock's profile names. */
export const configOf = (identity: SuperblockIdentity): StorageConfig => storageConfigs[identity.config]
