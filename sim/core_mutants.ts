/**
 * Mutants of the replica core's replication rules (issue 14), for the simulator's checkers to
 * catch: the shipping core is patched in place for the length of one run and restored after it
 * (the simulator runs one simulation at a time in a process). Each breaks one rule a cluster
 * relies on, in a way no assertion inside the core notices:
 *
 * - `commit_without_quorum`: the primary commits each prepare as soon as it is the pipeline's
 *   oldest, acknowledged or not (vsr.md §3.7);
 * - `backup_commits_above_commit_max`: a backup commits every durable op it holds, as if the
 *   primary had committed it (vsr.md §3.8);
 * - `cluster_time_ignored`: cluster time is the replica's own wall clock, whatever the others'
 *   clocks say (vsr.md §8.3);
 * - `timestamp_ignores_previous`: a prepare's timestamp is cluster time (plus its events), even
 *   when that is not after the previous prepare's (state-machine.md §6.1): two prepares in one
 *   millisecond, or a clock that steps back, give timestamps that do not increase;
 * - `view_change_keeps_own_log` (issue 15): a new primary installs its own log as if its
 *   join_view were the quorum's, so an op the quorum knows committed may be missing from it
 *   (vsr.md §4.4);
 * - `view_forgotten_on_restart` (issue 15): a restarted replica reads view 0 and log view 0 from
 *   its superblock, whatever it had made durable (vsr.md §4.8).
 */
import { assert } from "../src/assert.ts"
import { Pipeline } from "../src/actors/pipeline.ts"
import { ClusterClock } from "../src/actors/cluster_clock.ts"
import { type Now, ReplicaCore } from "../src/actors/replica_core.ts"

export type CoreMutant =
  | "commit_without_quorum" | "backup_commits_above_commit_max" | "cluster_time_ignored" | "timestamp_ignores_previous" | "view_change_keeps_own_log"
  | "view_forgotten_on_restart"

export const coreMutants: ReadonlyArray<CoreMutant> = [
  "commit_without_quorum", "backup_commits_above_commit_max", "cluster_time_ignored", "timestamp_ignores_previous", "view_change_keeps_own_log",
  "view_forgotten_on_restart"
]

type Patchable = Record<string, (...args: Array<unknown>) => unknown>

/** Runs `run` with `mutant` patched into the core, and restores the core whatever happens. */
export function withCoreMutant<A>(mutant: CoreMutant | undefined, run: () => A): A {
  if (mutant === undefined) return run()
  const [prototype, name] = mutant === "commit_without_quorum" ? [Pipeline.prototype as unknown as Patchable, "hasQuorum"]
    : mutant === "cluster_time_ignored" ? [ClusterClock.prototype as unknown as Patchable, "realtime"]
    : mutant === "timestamp_ignores_previous" ? [ReplicaCore.prototype as unknown as Patchable, "nextTimestamp"]
    : mutant === "view_change_keeps_own_log" ? [ReplicaCore.prototype as unknown as Patchable, "chooseAndInstall"]
    : mutant === "view_forgotten_on_restart" ? [ReplicaCore.prototype as unknown as Patchable, "restoreView"]
    : [ReplicaCore.prototype as unknown as Patchable, "advanceBackup"]
  const original = prototype[name]
  assert(typeof original === "function", () => `the core has a method ${name} to patch`)
  prototype[name] = mutant === "commit_without_quorum" ? () => true
    : mutant === "cluster_time_ignored" ? (now: unknown) => (now as Now).realtimeNs
    : mutant === "timestamp_ignores_previous" ? function (this: Record<string, unknown>, realtime: unknown, delta: unknown) {
      // Cluster time plus the events, whatever the previous prepare's timestamp was.
      this["timestamp"] = (realtime as bigint) + BigInt(delta as number)
      return this["timestamp"]
    }
    : mutant === "view_change_keeps_own_log" ? function (this: Record<string, unknown>, ...args: Array<unknown>) {
      // Our own join_view alone, taken for a quorum's.
      const joinViews = this["joinViews"] as Map<number, unknown>
      const own = joinViews.get((this["config"] as { replica: number }).replica)
      if (own === undefined) return undefined
      const quorums = this["quorums"] as Record<string, number>
      joinViews.clear()
      joinViews.set((this["config"] as { replica: number }).replica, own)
      this["quorums"] = { ...quorums, viewChange: 1 }
      try {
        return original!.apply(this, args)
      } finally {
        this["quorums"] = quorums
      }
    }
    : mutant === "view_forgotten_on_restart" ? function (this: Record<string, unknown>, durable: unknown) {
      return original!.call(this, { ...(durable as object), view: 0, logView: 0 })
    }
    : function (this: Record<string, unknown>, ...args: Array<unknown>) {
      // The backup believes the primary committed everything it holds.
      this["commitMax"] = Math.max(this["commitMax"] as number, this["op"] as number)
      return original!.apply(this, args)
    }
  try {
    return run()
  } finally {
    prototype[name] = original!
    assert(prototype[name] === original, () => `${name} restored`)
  }
}
