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
    assert(replicaCount >= 1 && replicaCount <= 31, () => `${replicaCount} replicas fit the bitset`)
    assert(self >= 0 && self < replicaCount, () => `replica ${self} is one of the ${replicaCount}`)
    assert(windowTicks > 0, () => "the window lasts")
    this.self = self
    this.windowTicks = windowTicks
  }

  get count(): number {
    let count = 0
    for (let votes = this.votes; votes !== 0; votes &= votes - 1) count++
    assert(count <= 31, () => "a vote per replica")
    return count
  }

  get own(): boolean {
    return (this.votes & (1 << this.self)) !== 0
  }

  /** Counts `replica`'s vote (ours too); another's first vote opens the window. */
  add(replica: number, tick: number): void {
    assert(replica >= 0 && replica < 31, () => `replica ${replica}`)
    if (replica !== this.self && this.windowEnd === undefined) this.windowEnd = tick + this.windowTicks
    this.votes |= 1 << replica
    assert((this.votes & (1 << replica)) !== 0, () => "the vote is counted")
  }

  /** Our vote stands no more: the primary was heard again. */
  withdraw(): void {
    this.votes &= ~(1 << this.self)
    assert(!this.own, () => "our vote is withdrawn")
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
  }
}
