/**
 * Exit-view votes (vsr.md §4.1.3): the replicas that voted to leave the current view, own vote
 * included, as a bitset of replica indexes. The first vote of another replica opens a window;
 * when it closes, every vote but our own is forgotten, so old votes never add up to a quorum much
 * later. Cleared on entering a view.
 */
import { assert } from "../assert.ts"

export class ExitViewVotes {
  private readonly self: number
  private readonly windowTicks: number
  private votes = 0
  /** The tick the window of others' votes closes, while one is open. */
  private windowEnd: number | undefined

  constructor(replicaCount: number, self: number, windowTicks: number) {
    assert(replicaCount >= 1, () => "a cluster has a replica")
    assert(replicaCount <= 31, () => `${replicaCount} replicas fit the bitset`)
    assert(self >= 0, () => `replica ${self} is an index`)
    assert(self < replicaCount, () => `replica ${self} is one of the ${replicaCount}`)
    assert(windowTicks > 0, () => "the window lasts")
    this.self = self
    this.windowTicks = windowTicks
  }

  get count(): number {
    let count = 0
    for (let votes = this.votes; votes !== 0; votes &= votes - 1) count++
    assert(count <= 31, () => "a vote per replica")
    assert(count === 0 || this.votes !== 0, () => "votes counted from the bitset")
    return count
  }

  get own(): boolean {
    return (this.votes & (1 << this.self)) !== 0
  }

  /** Counts `replica`'s vote (ours too); another's first vote opens the window. */
  add(replica: number, tick: number): void {
    assert(replica >= 0, () => `replica ${replica} is an index`)
    assert(replica < 31, () => `replica ${replica} fits the bitset`)
    if (replica !== this.self && this.windowEnd === undefined) this.windowEnd = tick + this.windowTicks
    this.votes |= 1 << replica
    assert((this.votes & (1 << replica)) !== 0, () => "the vote is counted")
  }

  /** Our vote stands no more: the primary was heard again. */
  withdraw(): void {
    const others = this.votes & ~(1 << this.self)
    this.votes = others
    assert(!this.own, () => "our vote is withdrawn")
    assert(this.votes === others, () => "others' votes stand")
  }

  /** Closes the window when its time is up: only our own vote remains. */
  expire(tick: number): void {
    assert(Number.isSafeInteger(tick), () => `tick ${tick}`)
    if (this.windowEnd === undefined || tick < this.windowEnd) return
    this.votes &= 1 << this.self
    this.windowEnd = undefined
    assert(this.count <= 1, () => "only our own vote outlives the window")
  }

  clear(): void {
    this.votes = 0
    this.windowEnd = undefined
    assert(this.count === 0, () => "no vote")
    assert(!this.own, () => "not even ours")
  }
}
