/**
 * The storage determinism checker (simulation.md §8.4, storage.md §7.3): a replica that never
 * crashes, fed the same committed ops, must write the same checkpoints as the replica under test,
 * which crashed, restarted from older checkpoints and replayed its WAL in between. Checkpoint ids
 * are the comparison: an id is the checksum of the CheckpointState, which names every block of
 * the checkpoint by (address, checksum), so equal ids mean byte-identical grids (every acquired
 * block, its address and the free set) and identical client sessions.
 *
 * The shadow runs the production pieces (`ReplicaCore`, `openCheckpoint`, `replayPrepare`) on a
 * fault-free simulated disk of its own, after the run, on the simulator's scheduler.
 */
import { Cause, Clock, Effect, Exit, References } from "effect"
import { coreConfig, recoveryStep, replayPrepare } from "../src/actors/replica.ts"
import { assert } from "../src/assert.ts"
import { ReplicaCore } from "../src/actors/replica_core.ts"
import { SimulatedDisk } from "../src/layers/disk_sim.ts"
import type { Ledger } from "../src/ledger/ledger.ts"
import { u128ToBytes } from "../src/protocol/build.ts"
import { openCheckpoint } from "../src/storage/checkpoint.ts"
import { formatStorage } from "../src/storage/format.ts"
import { Grid } from "../src/storage/grid.ts"
import { layoutOf, testConfig } from "../src/storage/layout.ts"
import { Storage } from "../src/storage/storage.ts"
import { openSuperblock } from "../src/storage/superblock.ts"
import type { SimClock, SimScheduler } from "./runtime.ts"

const layout = layoutOf(testConfig)

/**
 * The checkpoint ids (hex, by op) a never-crashing replica writes when it commits `prepares`
 * (ops 1..n, in order). A prepare whose checkpoint id disagrees with the shadow's checkpoint
 * stops the shadow's replay (vsr.md §7.2): that is reported as `diverged`, the first sign of
 * nondeterministic storage.
 */
export function shadowCheckpoints(
  prepares: ReadonlyArray<Uint8Array>, cluster: bigint, ledger: () => Ledger, sizeBytes: number, clock: SimClock, scheduler: SimScheduler
): { readonly ids: Map<number, string>; readonly diverged: string | undefined } {
  const disk = new SimulatedDisk({ seed: 1, sizeBytes, path: "shadow.sim", unwrittenReadsRandom: false })
  const ids = new Map<number, string>()
  const program = Effect.gen(function* () {
    yield* formatStorage({ cluster, replica: 0, replicaCount: 1, profile: "test" })
    const storage = yield* Storage
    const { working } = yield* openSuperblock(storage, layout)
    const fresh = ledger()
    const { checkpointer } = yield* openCheckpoint(storage, layout, new Grid(storage, layout, u128ToBytes(cluster)), working, fresh)
    const core = new ReplicaCore(coreConfig(cluster, layout), fresh)
    const root = checkpointer.ids
    const restored = { header: working.vsrState.checkpoint.header, checkpoint: { op: 0, id: root.current, parentId: root.parent }, sessions: [] }
    yield* recoveryStep(core, checkpointer, fresh, { _tag: "Restore", restored })
    for (const prepare of prepares) {
      const before = checkpointer.op
      const refused = yield* replayPrepare(core, checkpointer, fresh, prepare)
      assert(refused === undefined, () => `the shadow replica refused a committed op: ${refused}`)
      if (checkpointer.op !== before) ids.set(checkpointer.op, Buffer.from(checkpointer.ids.current).toString("hex"))
    }
  }).pipe(Effect.provide(disk.layer()), Effect.provideService(Clock.Clock, clock), Effect.provideService(References.MinimumLogLevel, "None"))
  const fiber = Effect.runFork(program, { scheduler })
  while (fiber.pollUnsafe() === undefined) {
    scheduler.runUntilQuiescent()
    if (fiber.pollUnsafe() !== undefined) break
    if (!clock.fireNext(Number.MAX_SAFE_INTEGER)) break
  }
  const exit = fiber.pollUnsafe()
  if (exit === undefined) throw new Error("sim: the shadow replica is stuck")
  const failure = Exit.isFailure(exit) ? Cause.pretty(exit.cause).split("\n")[0]! : undefined
  if (failure !== undefined && !failure.includes("was prepared on another checkpoint")) throw new Error(`sim: the shadow replica failed: ${failure}`)
  return { ids, diverged: failure }
}
