/** Temporary data files for client tests: a fresh file per test, removed with the scope. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { layerEmbedded } from "../../src/index.ts"

/** The path of a data file (not yet created) in a fresh directory, removed with the scope. */
export const temporaryPath = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "scarab-client-"))),
  (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
).pipe(Effect.map((directory) => join(directory, "0_0.scarab")))

/** layerEmbedded on a fresh test-profile file (a checkpoint every 32 ops). */
export const layerEmbeddedTemporary = () => Layer.unwrap(Effect.map(temporaryPath, (path) => layerEmbedded({ path, profile: "test" })))
  .pipe(Layer.orDie)
