/**
 * Formatting a data file: create it at the layout's size (never over an existing file), write the
 * journal's root, then the superblock, then sync. Shared by `scarab format` and `layerEmbedded`.
 */
import { Effect } from "effect"
import { layerStorageFile } from "../layers/disk.ts"
import { u128ToBytes } from "../protocol/build.ts"
import { formatJournal } from "./journal.ts"
import { layoutOf, storageConfigs } from "./layout.ts"
import { Storage } from "./storage.ts"
import { writeSuperblock } from "./superblock.ts"

export interface FormatOptions {
  readonly path: string
  readonly cluster: bigint
  readonly replica: number
  readonly replicaCount: number
  readonly profile: "production" | "test"
}

export const formatDataFile = (options: FormatOptions) => {
  const layout = layoutOf(storageConfigs[options.profile])
  return Effect.gen(function* () {
    const storage = yield* Storage
    yield* formatJournal(storage, layout, u128ToBytes(options.cluster))
    yield* writeSuperblock(storage, layout, { cluster: options.cluster, replica: options.replica, replicaCount: options.replicaCount, config: options.profile })
    yield* storage.sync
  }).pipe(Effect.provide(layerStorageFile({ path: options.path, createSizeBytes: layout.dataFileSizeMin })))
}
