/**
 * Startup, driven by the core (vsr.md §6.1): the shell opened the superblock and built the core
 * for the replica it names; from there the core asks and the shell does. `Open` → load the
 * checkpoint → recover the journal → read each op to replay → its commit stages (prefetch,
 * checkpoint data, checkpoint superblock) → normal. Each answer is the next input, so exactly one
 * input waits at a time and nothing else runs while the replica recovers.
 */
import { Effect } from "effect"
import { assert } from "../assert.ts"
import type { ReplicaOpenFailure } from "./replica_open_error.ts"
import { ReplicaOpenError } from "./replica_open_error.ts"
import type { Ledger } from "../ledger/ledger.ts"
import { u128ToBytes } from "../protocol/build.ts"
import { type Checkpointer, openCheckpoint } from "../storage/checkpoint.ts"
import { Grid } from "../storage/grid.ts"
import type { Layout } from "../storage/layout.ts"
import type { Storage } from "../storage/storage.ts"
import { checkpointOp, type Superblock } from "../storage/superblock.ts"
import type { CheckpointPosition, Input, JournalOp, Output, ReplicaCore, Restored } from "./replica_core.ts"
import { currentNow, ReplicaObserver } from "./replica_events.ts"
import { runStage, type StageContext } from "./stage_io.ts"

/** The startup I/O only the shell can do. */
export interface RecoveryIo {
  /** Loads the superblock's checkpoint into the ledger; its checkpointer writes the checkpoints after it. */
  readonly loadCheckpoint: Effect.Effect<{ readonly restored: Restored; readonly checkpointer: Checkpointer }, ReplicaOpenFailure>
  /** Recovers the journal: the ops after the checkpoint it holds, in op order, and how many slots are faulty. */
  readonly recoverJournal: Effect.Effect<{
    readonly ops: ReadonlyArray<JournalOp>
    readonly faultySlots: ReadonlyArray<number>
    readonly committed: ReadonlyArray<Uint8Array>
  }, ReplicaOpenFailure>
  /** The prepare of `op` with `checksum`, read from the journal. */
  readonly readPrepare: (op: number, checksum: Uint8Array) => Effect.Effect<Uint8Array, ReplicaOpenFailure>
}

/** Loads the checkpoint `working` names into `ledger`: what `RecoveryIo.loadCheckpoint` gives the core. */
export const loadCheckpoint = Effect.fnUntraced(function* (storage: Storage["Service"], layout: Layout, working: Superblock, ledger: Ledger) {
  const grid = new Grid(storage, layout, u128ToBytes(working.cluster))
  const { checkpointer, sessions, repliesLost } = yield* openCheckpoint(storage, layout, grid, working, ledger)
  const ids = checkpointer.ids
  const state = working.vsrState.checkpoint
  assert(checkpointer.op === checkpointOp(state), () => "the checkpointer stands on the superblock's checkpoint")
  assert(working.vsrState.commitMax >= checkpointer.op, () => "commit_max is at least the checkpoint")
  const restored: Restored = {
    header: state.header, checkpoint: { op: checkpointer.op, id: ids.current, parentId: ids.parent }, sessions,
    commitMax: working.vsrState.commitMax, repliesLost,
    view: { view: working.vsrState.view, logView: working.vsrState.logView, headers: working.viewHeaders },
    checkpointState: checkpointer.encodedState,
    fresh: working.sequence === 1
  }
  return { checkpointer, restored }
})

/**
 * Runs a fresh core's startup to the end; returns what the serving replica's commit stages work
 * on, how many ops it replayed, and the outputs of the last step that are the serving loop's (a
 * cluster's replica may end recovery by starting a view change: its view state to write, its status).
 */
export const recover = Effect.fnUntraced(function* (core: ReplicaCore, ledger: Ledger, io: RecoveryIo, path: string) {
  assert(core.status === "recovering", () => "a fresh core recovers")
  assert(core.commitOp === 0, () => "a fresh core has committed nothing")
  const observe = yield* ReplicaObserver
  const onCheckpointStored = (checkpoint: CheckpointPosition) => observe({ _tag: "CheckpointStored", checkpoint })
  let stages: StageContext | undefined
  let next: Input | undefined = { _tag: "Open" }
  let replayed = 0
  const carried: Array<Output> = []
  while (core.status === "recovering") {
    assert(next !== undefined, () => "a recovering core always waits for I/O the shell does")
    const input: Input = next
    next = undefined
    for (const output of core.step(yield* currentNow, input)) {
      observe(output)
      let answer: Input | undefined
      switch (output._tag) {
        case "LoadCheckpoint": {
          const loaded = yield* io.loadCheckpoint
          observe({ _tag: "CheckpointRestored", checkpoint: loaded.restored.checkpoint })
          stages = { replica: core.config.replica, ledger, checkpointer: loaded.checkpointer, onCheckpointStored }
          answer = { _tag: "Restore", restored: loaded.restored }
          break
        }
        case "RecoverJournal": {
          const { ops, faultySlots, committed } = yield* io.recoverJournal
          answer = { _tag: "JournalRecovered", ops, faultySlots, committed }
          break
        }
        case "ReadPrepare":
          answer = { _tag: "PrepareRead", prepare: yield* io.readPrepare(output.op, output.checksum) }
          replayed++
          break
        case "Prefetch":
        case "CheckpointData":
        case "CheckpointSuperblock":
          assert(stages !== undefined, () => "a commit stage runs once the checkpoint is loaded")
          answer = yield* runStage(stages, output)
          break
        case "Committed":
          assert(stages !== undefined, () => "a commit once the checkpoint is loaded")
          stages.checkpointer.onCommit(output.op)
          break
        case "ReplayRefused":
          return yield* new ReplicaOpenError({ path, reason: `op ${output.op} in the journal ${output.reason}; the replica cannot replay it, and will not start` })
        case "SessionEnded":
          yield* Effect.logWarning(`${path}: the latest reply of client ${output.client} is lost from the client-replies zone; its session ends (it will be evicted)`)
          break
        default:
          assert(core.status !== "recovering", () => `a recovering core asks for no ${output._tag}`)
          carried.push(output)
      }
      if (answer === undefined) continue
      // One I/O at a time: a step asks for at most one thing.
      assert(next === undefined, () => `a recovering step asked for two things (${output._tag})`)
      next = answer
    }
  }
  assert(next === undefined, () => "nothing asked for once recovered")
  assert(stages !== undefined, () => "recovery loaded the checkpoint")
  return { stages, replayed, carried }
})
