/**
 * layerEmbedded: the conformance suite against a replica in this process on a fresh temporary
 * data file per test (test profile: 256 ops), with TestClock as the replica's clock, so the
 * expiry tests advance time instead of sleeping.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { layerEmbedded } from "../../src/index.ts"
import { conformance } from "./conformance.ts"

/** A fresh data file in its own directory, removed with the layer. */
export const temporaryPath = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "scarab-embedded-"))),
  (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
).pipe(Effect.map((directory) => join(directory, "0_0.scarab")))

export const layerEmbeddedTemporary = () => Layer.unwrap(Effect.map(temporaryPath, (path) => layerEmbedded({ path, profile: "test" })))
  .pipe(Layer.orDie)

conformance("layerEmbedded", {
  layer: layerEmbeddedTemporary,
  advanceTime: (ms) => TestClock.adjust(ms)
})
