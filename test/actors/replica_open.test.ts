/**
 * Opening a replica on a data file cut short inside its grid: the file is still longer than its
 * fixed zones, but shorter than what its checkpoint's blocks need. The replica must say the file
 * is truncated, with its size and the size needed, before it reads a block, rather than report
 * the first missing block as a checksum error.
 */
import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { layerEmbedded } from "../../src/client/layer_embedded.ts"
import { Ledger } from "../../src/client/ledger_service.ts"
import { acquireStorageFile } from "../../src/layers/disk.ts"
import { layoutOf, storageConfigs } from "../../src/storage/layout.ts"
import { peekSuperblock } from "../../src/storage/superblock.ts"
import { accountInput } from "../client/conformance.ts"
import { temporaryPath } from "../client/temporary.ts"

const layout = layoutOf(storageConfigs.test)
/** Two checkpoints' worth of ops (one op per call), so the durable checkpoint holds grid blocks. */
const calls = 2 * layout.config.checkpointOps + layout.config.pipelineMax

/** The checkpoint's storage size once `calls` ops have committed on a fresh test-profile file. */
const fileWithCheckpoint = (path: string) => Effect.gen(function* () {
  yield* Effect.gen(function* () {
    const ledger = yield* Ledger
    for (let id = 1; id <= calls; id++) yield* ledger.createAccounts([accountInput(BigInt(id))])
  }).pipe(Effect.provide(layerEmbedded({ path, profile: "test" })))
  const superblock = yield* Effect.scoped(Effect.flatMap(acquireStorageFile({ path }), peekSuperblock))
  assert.isDefined(superblock)
  return superblock!.vsrState.checkpoint.storageSize
})

describe("opening a replica", () => {
  it.effect("a file truncated inside the grid is named truncated, with its size and the size its checkpoint needs", () =>
    Effect.gen(function* () {
      const path = yield* temporaryPath
      const storageSize = yield* fileWithCheckpoint(path)
      assert.isAbove(storageSize, layout.dataFileSizeMin + layout.config.blockSize, "the checkpoint holds grid blocks")
      // Cut inside the grid: the fixed zones stay whole, the newest blocks are gone.
      const truncatedSize = layout.dataFileSizeMin + layout.config.blockSize
      fs.truncateSync(path, truncatedSize)
      const error = yield* Effect.flip(Effect.scoped(Layer.build(layerEmbedded({ path, profile: "test" }))))
      assert.strictEqual(error._tag, "ReplicaOpenError")
      assert.include(error.message, path)
      assert.include(error.message, "truncated")
      assert.include(error.message, `${truncatedSize} bytes`)
      assert.include(error.message, `${storageSize}`)
    }), 60_000)
})
