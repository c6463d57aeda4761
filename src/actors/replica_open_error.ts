/** Why a replica could not open its data file: one error type for the shell and its startup driver. */
import { Schema } from "effect"
import type { CheckpointError } from "../storage/checkpoint.ts"
import type { GridReadError } from "../storage/grid.ts"
import type { JournalRecoveryError } from "../storage/journal.ts"
import type { StorageError } from "../storage/storage.ts"
import type { SuperblockError } from "../storage/superblock.ts"
import type { GridFullError } from "../storage/trailer.ts"

export class ReplicaOpenError extends Schema.TaggedError<ReplicaOpenError>()("ReplicaOpenError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

/** Why a replica could not open its data file. */
export type ReplicaOpenFailure = ReplicaOpenError | SuperblockError | CheckpointError | GridReadError | JournalRecoveryError | StorageError | GridFullError

