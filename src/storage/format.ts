/**
 * Formatting a data file (storage.md §2.1): write the WAL (every prepare slot's header sector,
 * then the headers ring), then the first superblock, naming the root checkpoint (op 0, nothing in
 * the grid), then sync. A crash during format leaves no valid superblock: format again. It
 * formats the Storage in context; creating the file for it is the disk layer's part
 * (`formatDataFile` in src/layers/disk.ts). Shared by `scarab format`, `layerEmbedded` and the
 * simulator.
 */
import { Effect } from "effect"
import { u128ToBytes } from "../protocol/build.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { releaseScarab } from "../protocol/header.ts"
import { rootPrepare } from "../protocol/header_rules.ts"
import { rootCheckpointState } from "./checkpoint.ts"
import { formatJournal } from "./journal.ts"
import { layoutOf, storageConfigs } from "./layout.ts"
import { Storage } from "./storage.ts"
import { membersMax, replicaIdOf, sealSuperblock, writeSuperblock } from "./superblock.ts"

export interface FormatOptions {
  readonly path: string
  readonly cluster: bigint
  readonly replica: number
  readonly replicaCount: number
  readonly profile: "production" | "test"
}

/** Formats the Storage in context (a new file, or a simulated disk). */
export const formatStorage = (options: Omit<FormatOptions, "path">) => Effect.gen(function* () {
  const storage = yield* Storage
  const layout = layoutOf(storageConfigs[options.profile])
  const cluster = u128ToBytes(options.cluster)
  const root = rootPrepare(cluster)
  yield* formatJournal(storage, layout, cluster)
  const members = Array.from({ length: membersMax }, (_, i) => (i < options.replicaCount ? replicaIdOf(options.cluster, i) : 0n))
  const superblock = sealSuperblock({
    sequence: 1,
    cluster: options.cluster,
    parent: new Uint8Array(checksumSize),
    releaseFormat: releaseScarab,
    profile: options.profile,
    vsrState: {
      checkpoint: rootCheckpointState(root, layout.dataFileSizeMin),
      replicaId: members[options.replica]!,
      members,
      commitMax: 0,
      syncOpMin: 0,
      syncOpMax: 0,
      logView: 0,
      view: 0,
      replicaCount: options.replicaCount
    },
    viewHeaders: [root]
  })
  yield* writeSuperblock(storage, layout, undefined, superblock)
  yield* storage.sync
})
