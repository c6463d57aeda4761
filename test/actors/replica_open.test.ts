/**
 * Opening a replica on a data file cut short inside its grid: the file is still longer than its
 * fixed zones, but shorter than what its checkpoint's blocks need. The replica must say the file
 * is truncated, with its size and the size needed, before it reads a block, rather than report
 * the first missing block as a checksum error; and a whole file, whose newest block may end
 * well before the checkpoint's storage_size, must still open.
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

/**
 * The checkpoint's storage size once a checkpoint (with grid blocks) is durable on a fresh file:
 * one op per call, past the second checkpoint and its durability op.
 */
const fileWithCheckpoint = (path: string, profile: "production" | "test") => Effect.gen(function* () {
  const config = storageConfigs[profile]
  const calls = 2 * config.checkpointOps + config.pipelineMax
  yield* Effect.gen(function* () {
    const ledger = yield* Ledger
    for (let id = 1; id <= calls; id++) yield* ledger.createAccounts([accountInput(BigInt(id))])
  }).pipe(Effect.provide(layerEmbedded({ path, profile })))
  const superblock = yield* Effect.scoped(Effect.flatMap(acquireStorageFile({ path }), peekSuperblock))
  assert.isDefined(superblock)
  return superblock!.vsrState.checkpoint.storageSize
})

describe("opening a replica", () => {
  it.effect("a file truncated inside the grid is named truncated, with its size and the size its checkpoint needs", () =>
    Effect.gen(function* () {
      const path = yield* temporaryPath
      const storageSize = yield* fileWithCheckpoint(path, "test")
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
    }))

  it.effect("a whole file whose newest block ends before storage_size opens: blocks are written only up to their last sector", () =>
    Effect.gen(function* () {
      const path = yield* temporaryPath
      const storageSize = yield* fileWithCheckpoint(path, "production")
      // 512 KiB production blocks: the newest (a small trailer) leaves most of its slot unwritten.
      assert.isBelow(fs.statSync(path).size, storageSize, "the case this test is about")
      const accounts = yield* Effect.gen(function* () {
        return yield* (yield* Ledger).lookupAccounts([1n])
      }).pipe(Effect.provide(layerEmbedded({ path, profile: "production" })))
      assert.strictEqual(accounts.length, 1)
    }))
})
