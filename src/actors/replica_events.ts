/**
 * What a replica does, as it happens, for whoever watches it: the simulator's checkers read
 * these, not log lines. Every output of its core, the checkpoint it restored at startup, each
 * checkpoint once it is durable, and its stop. Nobody watches in production (the default observer ignores everything).
 */
import { type Cause, Clock, Context, Effect } from "effect"
import type { CheckpointPosition, Now, Output } from "./replica_core.ts"

export type ReplicaEvent =
  | Output
  | { readonly _tag: "CheckpointStored"; readonly checkpoint: CheckpointPosition }
  /** Startup loaded the durable checkpoint the superblock names: the replica resumes from it. */
  | { readonly _tag: "CheckpointRestored"; readonly checkpoint: CheckpointPosition }
  | { readonly _tag: "Stopped"; readonly cause: Cause.Cause<unknown> }

export const ReplicaObserver = Context.Reference<(event: ReplicaEvent) => void>("scarab/ReplicaObserver", { defaultValue: () => () => {} })

/** The time a step is stamped with: the clock's real and monotonic time, read together. */
export const currentNow: Effect.Effect<Now> = Effect.clockWith((clock: Clock.Clock) =>
  Effect.sync(() => ({ realtimeNs: clock.currentTimeNanosUnsafe(), monotonicNs: clock.monotonicTimeNanosUnsafe() })))
