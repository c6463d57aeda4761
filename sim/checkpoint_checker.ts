/**
 * What the replicas report about their checkpoints (the `CheckpointData`, `CheckpointSuperblock`
 * and `CheckpointStored` events of src/actors/replica_events.ts), checked as it arrives and
 * compared with the storage determinism checker's replica (sim/storage_checker.ts) at the end:
 *
 * - a checkpoint stored again at the same op (after a restart, or by another replica) is the
 *   same checkpoint: the same id;
 * - a replica asks for a checkpoint only once the previous one it asked for is reported stored,
 *   and writes the superblock only of the checkpoint whose data it wrote;
 * - the durable checkpoint a replica recovers from was reported stored, unless its previous
 *   incarnation died in that checkpoint's superblock stage (a copy may land, and the checkpoint
 *   become durable, before the report the crash cut off; before that stage it cannot be durable);
 * - every checkpoint a replica that never crashed stores up to the newest one seen was reported
 *   (with the same exception);
 * - the checkpoint a replica restores at startup (`CheckpointRestored`) is the one reported
 *   stored at its op, and the never-crashing replica's: so a checkpoint made durable by a
 *   superblock whose report a crash cut off is compared all the same.
 *
 * The last three are what notice a feed of events that stops arriving: a checker fed nothing
 * must fail, not pass for want of anything to compare.
 */
import type { Checker } from "./checker.ts"

export class CheckpointChecker {
  /** The id (hex) of every checkpoint reported stored, by op. */
  readonly ids = new Map<number, string>()
  /** Checkpoints reported stored, counting repeats. */
  stored = 0
  /** Checkpoints compared with the never-crashing replica's. */
  compared = 0
  private readonly checker: Checker
  /** The checkpoint each replica is storing (asked for, not yet reported stored), and whether it reached its superblock stage. */
  private readonly storing = new Map<number, { readonly op: number; superblock: boolean }>()
  /** Checkpoints that were being stored when their process died: durable or not, never reported. */
  private readonly unreported = new Set<number>()
  /** The id (hex) of every checkpoint a replica restored at startup, by op. */
  private readonly restored = new Map<number, string>()
  /** The newest checkpoint a replica recovered from. */
  private recoveredNewest = 0

  constructor(checker: Checker) {
    this.checker = checker
  }

  /** The newest checkpoint reported stored or recovered from (0: none). */
  get newest(): number {
    return Math.max(this.recoveredNewest, ...this.ids.keys())
  }

  /** Replica `replica`'s core asked for the checkpoint of `op` (the `CheckpointData` output). */
  onRequested(replica: number, op: number): void {
    const previous = this.storing.get(replica)
    if (previous !== undefined) {
      this.checker.fail("checkpoint_reported", `replica ${replica} asked for checkpoint ${op} before checkpoint ${previous.op} was reported stored`)
    }
    this.storing.set(replica, { op, superblock: false })
  }

  /** Replica `replica`'s core asked for the superblock of checkpoint `op` (`CheckpointSuperblock`): from now on it may be durable. */
  onSuperblock(replica: number, op: number): void {
    const storing = this.storing.get(replica)
    if (storing?.op !== op) {
      return this.checker.fail("checkpoint_reported", `replica ${replica} writes the superblock of checkpoint ${op}, whose data it was not asked to write`)
    }
    storing.superblock = true
  }

  onStored(replica: number, op: number, id: string): void {
    this.stored++
    if (this.storing.get(replica)?.op === op) this.storing.delete(replica)
    const before = this.ids.get(op)
    if (before !== undefined && before !== id) this.checker.fail("storage_determinism", `checkpoint ${op} was stored as ${before}, then as ${id} (replica ${replica})`)
    this.ids.set(op, id)
  }

  /**
   * Replica `replica`'s process died (a crash, or its fiber ended). A checkpoint it was storing
   * may be durable yet unreported only if it died in the checkpoint's superblock stage.
   */
  onDied(replica: number): void {
    const storing = this.storing.get(replica)
    if (storing?.superblock === true) this.unreported.add(storing.op)
    this.storing.delete(replica)
  }

  /** Replica `replica`'s startup loaded the checkpoint of `op`, whose id is `id`. */
  onRestored(replica: number, op: number, id: string): void {
    if (op === 0) return
    for (const known of [this.ids.get(op), this.restored.get(op)]) {
      if (known !== undefined && known !== id) this.checker.fail("storage_determinism", `replica ${replica} restored checkpoint ${op} as ${id}, known as ${known}`)
    }
    this.restored.set(op, id)
  }

  /** Replica `replica` recovered from the durable checkpoint of `op`. */
  onRecovered(replica: number, op: number): void {
    this.recoveredNewest = Math.max(this.recoveredNewest, op)
    if (op === 0 || this.ids.has(op) || this.unreported.has(op)) return
    this.checker.fail("checkpoint_reported", `replica ${replica} recovered from checkpoint ${op}, which no replica reported stored`)
  }

  /**
   * Compares with `expected`, the ids a replica that never crashed stores up to `newest`: each
   * reported id must be the expected one, and each expected checkpoint must have been reported.
   */
  compare(expected: ReadonlyMap<number, string>): void {
    for (const [op, id] of this.ids) {
      const shadow = expected.get(op)
      if (shadow !== id) {
        return this.checker.fail("storage_determinism", `checkpoint ${op}: the replica stored ${id}, a replica that never crashed stores ${shadow ?? "none"}`)
      }
      this.compared++
    }
    for (const [op, id] of this.restored) {
      if (expected.get(op) !== id) {
        return this.checker.fail("storage_determinism", `checkpoint ${op}: a replica restored ${id}, a replica that never crashed stores ${expected.get(op) ?? "none"}`)
      }
      this.compared++
    }
    for (const op of expected.keys()) {
      if (!this.ids.has(op) && !this.unreported.has(op)) {
        return this.checker.fail("checkpoint_reported", `checkpoint ${op}: a replica that never crashed stores it, and no replica reported storing it`)
      }
    }
  }
}
