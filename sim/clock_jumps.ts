/**
 * Wall-clock jumps of single replicas (simulation.md §4; issue 15): at drawn times a replica's
 * wall clock steps forward or backward, as an NTP step or an operator's `date` would, often far
 * beyond the 10 s that cluster time tolerates (30 s, 5 min, an hour), and may step back later.
 * The steps add to the run's shared clock error and to each replica's small skew; monotonic time
 * is untouched. Every draw comes from the run's own `clock jumps` stream, so the other streams
 * draw as in runs without jumps, and a replica of one never jumps (its clock is the cluster's).
 *
 * Only a minority of the replicas ever jump, and the replica whose skew is an hour off (if the
 * run has one) counts among them: then fewer clocks than a replication quorum are ever wrong, so
 * every agreement a primary reaches (src/actors/cluster_clock.ts, Marzullo over at least a
 * replication quorum of sources) holds at least one good clock, which bounds cluster time (the
 * simulator's `checkPrepareTime`). A minority is below the replication quorum for every cluster
 * size: 1 of 3 or 4, 2 of 5 or 6 (src/actors/quorum.ts).
 */
import { assert } from "../src/assert.ts"
import { quorums } from "../src/actors/quorum.ts"
import { Random } from "./random.ts"

/** At `tick`, replica `replica`'s clock error from jumps becomes `offsetMs` (0: it stepped back). */
export interface ClockJump {
  readonly replica: number
  readonly tick: number
  readonly offsetMs: number
}

/** How far a clock jumps (either way): within the tolerance, and well beyond it. */
const jumpsMs: ReadonlyArray<number> = [3_000, 30_000, 300_000, 3_600_000]
/** Jumps per jumping replica at most. */
const jumpsPerReplicaMax = 3

export class ClockJumps {
  /** Every jump of the run, in tick order (ties by replica). */
  readonly jumps: ReadonlyArray<ClockJump>
  /** Per replica, its jumps in tick order. */
  private readonly byReplica: ReadonlyArray<ReadonlyArray<ClockJump>>
  private next = 0

  constructor(jumps: ReadonlyArray<ClockJump>, replicaCount: number) {
    this.jumps = [...jumps].sort((a, b) => a.tick - b.tick || a.replica - b.replica)
    this.byReplica = Array.from({ length: replicaCount }, (_, replica) => this.jumps.filter((jump) => jump.replica === replica))
    const jumpers = this.byReplica.filter((list) => list.length > 0).length
    assert(jumpers * 2 < replicaCount || jumpers === 0, () => `${jumpers} of ${replicaCount} replicas jump: not a minority`)
    assert(jumpers < quorums(replicaCount).replication || jumpers === 0, () => "fewer clocks jump than a replication quorum")
  }

  /** Replica `replica`'s clock error from jumps at monotonic `nowMs` (ticks of `tickMs`). */
  offsetMs(replica: number, nowMs: number, tickMs: number): number {
    let offset = 0
    for (const jump of this.byReplica[replica]!) {
      if (jump.tick * tickMs > nowMs) break
      offset = jump.offsetMs
    }
    return offset
  }

  /** The jumps due at `tick` (each once: call with ticks in increasing order). */
  due(tick: number): ReadonlyArray<ClockJump> {
    const start = this.next
    while (this.next < this.jumps.length && this.jumps[this.next]!.tick <= tick) this.next++
    assert(this.next >= start, () => "jumps are reported in order")
    return this.jumps.slice(start, this.next)
  }
}

/**
 * The run's jumps: half the runs of three replicas or more have some, on one up to a minority of
 * the replicas (`badReplica`, the one an hour off if any, first), each jumping one to three times
 * within the safety phase's `ticks`.
 */
export function drawClockJumps(seed: bigint, replicaCount: number, ticks: number, badReplica: number | undefined): ClockJumps {
  const minorityMax = Math.ceil(replicaCount / 2) - 1
  if (replicaCount < 3) return new ClockJumps([], replicaCount)
  const r = Random.stream(seed, "clock jumps")
  if (r.chance(0.5)) return new ClockJumps([], replicaCount)
  const count = r.between(1, minorityMax)
  const jumpers: Array<number> = badReplica === undefined ? [] : [badReplica]
  while (jumpers.length < count) {
    const replica = r.below(replicaCount)
    if (!jumpers.includes(replica)) jumpers.push(replica)
  }
  const jumps: Array<ClockJump> = []
  for (const replica of jumpers) {
    const at = Array.from({ length: r.between(1, jumpsPerReplicaMax) }, () => r.between(1, Math.max(1, ticks))).sort((a, b) => a - b)
    let offsetMs = 0
    for (const tick of at) {
      // Back to no error sometimes (once it has jumped), else a new step either way.
      offsetMs = offsetMs !== 0 && r.chance(0.4) ? 0 : r.pick(jumpsMs) * (r.chance(0.5) ? -1 : 1)
      jumps.push({ replica, tick, offsetMs })
    }
  }
  assert(jumpers.length <= minorityMax, () => "a minority jumps")
  return new ClockJumps(jumps, replicaCount)
}
