/**
 * layerEmbedded: the conformance suite against a replica in this process on a fresh temporary
 * data file per test (test profile: a checkpoint every 32 ops), with TestClock as the replica's clock, so the
 * expiry tests advance time instead of sleeping.
 */
import { TestClock } from "effect/testing"
import { conformance } from "./conformance.ts"
import { layerEmbeddedTemporary } from "./temporary.ts"

conformance("layerEmbedded", {
  layer: layerEmbeddedTemporary,
  advanceTime: (ms) => TestClock.adjust(ms)
})
