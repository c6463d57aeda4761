/**
 * Quorums (vsr.md §1.2, Flexible Paxos) and counting votes towards one. Replication needs few
 * acks (at most `quorumReplicationMax`); the view-change quorum grows so that every pair of
 * quorums that must intersect does. A cluster of one needs its own vote for everything.
 */
import { assert } from "../assert.ts"

/** A cluster's replicas: 1 to 6 (vsr.md §1.1). */
export const replicasMax = 6
/** Replication never waits for more than three acks, however large the cluster. */
export const quorumReplicationMax = 3

export interface Quorums {
  /** Acks that commit a prepare (phase 2). */
  readonly replication: number
  /** Votes that elect a new primary (phase 1). */
  readonly viewChange: number
  /** Replicas that must swear they never acked an op before it may be truncated. */
  readonly nackPrepare: number
  readonly majority: number
}

export function quorums(replicaCount: number): Quorums {
  assert(Number.isInteger(replicaCount), () => `replica count ${replicaCount}`)
  assert(replicaCount >= 1, () => `replica count ${replicaCount} below 1`)
  assert(replicaCount <= replicasMax, () => `replica count ${replicaCount} above ${replicasMax}`)
  const replication = replicaCount === 2 ? 2 : Math.min(quorumReplicationMax, Math.ceil(replicaCount / 2))
  const viewChange = replicaCount === 2 ? 2 : replicaCount - replication + 1
  const result: Quorums = {
    replication,
    viewChange,
    nackPrepare: replicaCount - replication + 1,
    majority: Math.ceil(replicaCount / 2) + (replicaCount % 2 === 0 ? 1 : 0)
  }
  // The intersections the protocol's safety rests on (vsr.md §1.2).
  assert(result.replication + result.viewChange > replicaCount, () => "a view-change quorum meets every replication quorum")
  assert(result.nackPrepare + result.replication > replicaCount, () => "a nack quorum meets every replication quorum")
  return result
}

/** Distinct replicas that voted for one thing (an op's `prepare_ok`s, a view's votes): a bitset. */
export class QuorumCounter {
  private bits = 0

  /** Counts `replica`'s vote; a repeated vote counts once. Returns whether it was new. */
  add(replica: number): boolean {
    assertReplica(replica)
    assert(this.bits < 1 << replicasMax, () => "votes of replicas only")
    const bit = 1 << replica
    const fresh = (this.bits & bit) === 0
    this.bits |= bit
    assert(this.has(replica), () => "a vote counted is held")
    return fresh
  }

  has(replica: number): boolean {
    assertReplica(replica)
    assert(this.bits < 1 << replicasMax, () => "votes of replicas only")
    const held = (this.bits & (1 << replica)) !== 0
    assert(held === ((this.bits >>> replica) % 2 === 1), () => "a vote held is its bit")
    return held
  }

  get count(): number {
    let count = 0
    for (let bits = this.bits; bits !== 0; bits &= bits - 1) count++
    assert(count <= replicasMax, () => "no more votes than replicas")
    assert(count > 0 || this.bits === 0, () => "every vote is counted")
    return count
  }
}

function assertReplica(replica: number): void {
  assert(Number.isInteger(replica), () => `replica ${replica} is not an index`)
  assert(replica >= 0, () => `replica ${replica} is negative`)
  assert(replica < replicasMax, () => `replica ${replica} beyond the ${replicasMax} a cluster has at most`)
}
