/**
 * The I/O of the core's commit stages (replica_core.ts): the ledger's prefetch, the checkpoint's
 * data, the checkpoint's superblock. Each takes the output that asks for it and gives back the
 * input that reports it done. Startup runs them inline (nothing else runs while recovering); the
 * serving loop runs them off the loop, in a fiber of their own, so ticks, pings and reads go on.
 */
import { Effect } from "effect"
import { assert } from "../assert.ts"
import type { Ledger } from "../ledger/ledger.ts"
import { PrepareLayout, readU64Number } from "../protocol/header.ts"
import type { Checkpointer } from "../storage/checkpoint.ts"
import type { StorageError } from "../storage/storage.ts"
import type { GridFullError } from "../storage/trailer.ts"
import type { CheckpointPosition, Input, Output } from "./replica_core.ts"

/** The outputs of a commit stage. */
export type StageOutput = Extract<Output, { readonly _tag: "Prefetch" | "CheckpointData" | "CheckpointSuperblock" }>

export const isStageOutput = (output: Output): output is StageOutput =>
  output._tag === "Prefetch" || output._tag === "CheckpointData" || output._tag === "CheckpointSuperblock"

/** What the stages work on, and who hears of a checkpoint made durable. */
export interface StageContext {
  /** The replica's index, for the log line of each checkpoint. */
  readonly replica: number
  readonly ledger: Ledger
  readonly checkpointer: Checkpointer
  readonly onCheckpointStored: (checkpoint: CheckpointPosition) => void
}

/**
 * Does one stage's I/O and returns the input reporting it. A prefetch cannot fail for want of
 * room: the primary checked that every create fits before it prepared the op (a failure is a
 * defect); a storage failure stops the replica.
 */
export const runStage = (context: StageContext, output: StageOutput): Effect.Effect<Input, StorageError | GridFullError> => {
  assert(output.op > context.checkpointer.op, () => `a stage of op ${output.op}, at or before the durable checkpoint`)
  switch (output._tag) {
    case "Prefetch":
      return Effect.as(Effect.orDie(context.ledger.prefetch(output.operation, output.eventCount)), { _tag: "PrefetchDone", op: output.op } as const)
    case "CheckpointData": {
      assert(readU64Number(output.header, PrepareLayout.op.offset) === output.op, () => "the checkpoint header is of the checkpoint op")
      const data = context.checkpointer.writeData({ header: output.header, ledger: context.ledger, sessions: output.sessions })
      return Effect.map(data, (written) => ({ _tag: "CheckpointDataDone", op: written.op }) as const)
    }
    case "CheckpointSuperblock":
      return Effect.flatMap(context.checkpointer.writeSuperblock(output.op), (stats) => checkpointStored(context, stats))
  }
}

const checkpointStored = Effect.fnUntraced(function* (context: StageContext, stats: { op: number; durationMs: number; blocksWritten: number; blocksReused: number }) {
  const { checkpointer } = context
  assert(checkpointer.op === stats.op, () => "the checkpointer stands on the checkpoint just written")
  const { current, parent } = checkpointer.ids
  const checkpoint: CheckpointPosition = { op: checkpointer.op, id: current, parentId: parent }
  assert(checkpoint.id.length === 16, () => "a checkpoint id is a u128")
  context.onCheckpointStored(checkpoint)
  // One line per checkpoint, alike on every replica but for the timings: operators (and tests)
  // compare the ids of the same op across replicas.
  yield* Effect.logInfo(`replica ${context.replica}: checkpoint op=${stats.op} id=${Buffer.from(current).toString("hex")} (${stats.durationMs} ms, ` +
    `${stats.blocksWritten} blocks written, ${stats.blocksReused} carried over, ${checkpointer.blocksAcquired} blocks in use)`)
  return { _tag: "CheckpointDone", checkpoint, checkpointState: checkpointer.encodedState } as const satisfies Input
})
