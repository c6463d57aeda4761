/**
 * The prepares waiting for the journal, lowest op first. A replica of one writes in op order
 * anyway; a backup that repairs writes out of order (its head first, the gaps below later), and
 * the oldest op is the one its commits wait for: written behind dozens of newer ops on a slow
 * disk, it held a restarted backup back until the cluster had moved beyond every journal
 * (simulator seed 927, six replicas). Bounded: at most `max` waiting.
 */
import { Effect, Queue } from "effect"
import { assert } from "../assert.ts"
import { PrepareLayout, readU64Number } from "../protocol/header.ts"

export class JournalWrites {
  readonly max: number
  /** Waiting prepares, sorted by op, lowest first. */
  private readonly waiting: Array<Uint8Array> = []
  /** One token per waiting prepare: `take` waits on it. */
  private readonly tokens: Queue.Queue<void>

  private constructor(max: number, tokens: Queue.Queue<void>) {
    assert(max > 0, () => "a journal writes something")
    assert(Queue.isQueue(tokens), () => "tokens are a queue")
    this.max = max
    this.tokens = tokens
  }

  static make(max: number): Effect.Effect<JournalWrites> {
    assert(Number.isInteger(max), () => `a bound of ${max} writes`)
    assert(max > 0, () => "a journal writes something")
    return Effect.map(Queue.bounded<void>(max), (tokens) => new JournalWrites(max, tokens))
  }

  /** Adds a prepare to write; false when `max` are waiting already (a defect: the core bounds them). */
  offer(prepare: Uint8Array): boolean {
    if (this.waiting.length >= this.max) return false
    const op = readU64Number(prepare, PrepareLayout.op.offset)
    let at = this.waiting.length
    while (at > 0 && readU64Number(this.waiting[at - 1]!, PrepareLayout.op.offset) > op) at--
    this.waiting.splice(at, 0, prepare)
    assert(Queue.offerUnsafe(this.tokens, undefined), () => "a token per waiting prepare")
    assert(this.waiting.length <= this.max, () => "at most max waiting")
    return true
  }

  /** The waiting prepare of the lowest op, once there is one. */
  readonly take: Effect.Effect<Uint8Array> = Effect.map(Effect.suspend(() => Queue.take(this.tokens)), () => {
    const prepare = this.waiting.shift()
    assert(prepare !== undefined, () => "a token stands for a waiting prepare")
    return prepare
  })
}
