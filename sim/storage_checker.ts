/**
 * The storage determinism checker (simulation.md §8.4, storage.md §7.3): a replica that never
 * crashes, fed the same committed ops, must write the same checkpoints as the replica under test,
 * which crashed, restarted from older checkpoints and replayed its WAL in between. Checkpoint ids
 * are the comparison: an id is the checksum of the CheckpointState, which names every block of
 * the checkpoint by (address, checksum), so equal ids mean byte-identical grids (every acquired
 * block, its address and the free set) and identical client sessions.
 *
 * The shadow runs the production pieces (`ReplicaCore` and its startup driver, `recover`) on a
 * fault-free simulated disk of its own, after the run, on the simulator's scheduler.
 */
import { Cause, Clock, Effect, Exit, References } from "effect"
import { coreConfig, ReplicaObserver } from "../src/actors/replica.ts"
import { loadCheckpoint, recover, type RecoveryIo } from "../src/actors/recovery.ts"
import { ReplicaCore } from "../src/actors/replica_core.ts"
import { SimulatedDisk } from "../src/layers/disk_sim.ts"
import type { Ledger } from "../src/ledger/ledger.ts"
import { checksumSize } from "../src/protocol/checksum.ts"
import { formatStorage } from "../src/storage/format.ts"
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
    // The committed ops stand for the journal: the shadow replays them all, as one long startup.
    const io: RecoveryIo = {
      loadCheckpoint: loadCheckpoint(storage, layout, working, fresh),
      recoverJournal: Effect.succeed({ ops: prepares.map((prepare, i) => ({ op: i + 1, checksum: prepare.subarray(0, checksumSize), header: prepare.subarray(0, 256) })), faultySlots: [], committed: [] }),
      readPrepare: (op) => Effect.succeed(prepares[op - 1]!)
    }
    yield* recover(new ReplicaCore(coreConfig(cluster, layout), fresh), fresh, io, "shadow.sim").pipe(
      Effect.provideService(ReplicaObserver, (event) => {
        if (event._tag === "CheckpointStored") ids.set(event.checkpoint.op, Buffer.from(event.checkpoint.id).toString("hex"))
      }))
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
