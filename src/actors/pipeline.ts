/**
 * The primary's pipeline (vsr.md §3.3, §12.5): the prepares in flight, in op order, each waiting
 * for a replication quorum of `prepare_ok`s (its own journal write counts as the primary's) before
 * it commits; and behind them a
 * bounded queue of requests that arrived while the prepares were at their bound. A queued request
 * is prepared as soon as a prepare commits, instead of being dropped for the client to resend
 * 600 ms later. Each client has at most one request in the pipeline, prepared or queued.
 */
import { assert } from "../assert.ts"
import { u128FromBytes } from "../protocol/build.ts"
import { PrepareLayout, RequestLayout } from "../protocol/header.ts"
import { QuorumCounter } from "./quorum.ts"

export interface Prepared {
  readonly op: number
  readonly prepare: Uint8Array
  /** The 0.17 create operation the op runs (0 for anything else), and how many events it creates. */
  readonly creates: number
  readonly createEvents: number
  /** The replicas whose `prepare_ok` the prepare has: each wrote it to its journal. */
  readonly oks: QuorumCounter
}

export class Pipeline {
  readonly prepareMax: number
  readonly requestMax: number
  /** `prepare_ok`s that commit a prepare (quorum.ts). */
  readonly quorum: number
  private readonly prepares: Array<Prepared> = []
  private readonly requests: Array<Uint8Array> = []

  constructor(prepareMax: number, requestMax: number, quorum: number) {
    assert(Number.isInteger(quorum), () => `quorum ${quorum} is not an integer`)
    assert(quorum > 0, () => `quorum ${quorum} is not positive`)
    assert(Number.isInteger(prepareMax), () => `prepareMax ${prepareMax} is not an integer`)
    assert(prepareMax > 0, () => `prepareMax ${prepareMax} is not positive`)
    assert(Number.isInteger(requestMax), () => `requestMax ${requestMax} is not an integer`)
    assert(requestMax >= 0, () => `requestMax ${requestMax} is negative`)
    this.prepareMax = prepareMax
    this.requestMax = requestMax
    this.quorum = quorum
  }

  get length(): number {
    return this.prepares.length
  }

  get full(): boolean {
    return this.prepares.length >= this.prepareMax
  }

  get queued(): number {
    return this.requests.length
  }

  /** The prepares in flight, oldest first. */
  get prepared(): ReadonlyArray<Prepared> {
    return this.prepares
  }

  /** The oldest prepare, the next to commit. */
  head(): Prepared | undefined {
    return this.prepares[0]
  }

  push(prepared: Omit<Prepared, "oks">): void {
    assert(!this.full, () => `a prepare beyond the pipeline's ${this.prepareMax}`)
    const last = this.prepares.at(-1)
    assert(last === undefined || prepared.op === last.op + 1, () => `op ${prepared.op} after op ${last?.op}`)
    this.prepares.push({ ...prepared, oks: new QuorumCounter() })
  }

  /** Counts `replica`'s `prepare_ok` for `op`. False if `op` is not in flight or the ok is a repeat. */
  ack(op: number, replica: number): boolean {
    assert(Number.isSafeInteger(op), () => `op ${op} is an integer`)
    const prepared = this.find(op)
    if (prepared === undefined) return false
    const count = prepared.oks.count
    const fresh = prepared.oks.add(replica)
    assert(prepared.oks.count === (fresh ? count + 1 : count), () => "an ack is counted once")
    return fresh
  }

  /** Whether `prepared` has its replication quorum and may commit (in op order). */
  hasQuorum(prepared: Prepared): boolean {
    assert(prepared.oks.count >= 0, () => "a count is never negative")
    assert(this.quorum > 0, () => "a quorum needs a vote")
    return prepared.oks.count >= this.quorum
  }

  /** Removes the head, which has just committed. */
  shift(): Prepared {
    const head = this.prepares.shift()
    assert(head !== undefined, () => "a commit from an empty pipeline")
    assert(this.hasQuorum(head), () => "only a head with its quorum commits")
    assert(this.prepares.length === 0 || this.prepares[0]!.op === head.op + 1, () => "the next head follows the one committed")
    return head
  }

  find(op: number): Prepared | undefined {
    return this.prepares.find((prepared) => prepared.op === op)
  }

  /** Whether `client` has a request in the pipeline, prepared or queued. */
  hasClient(client: bigint): boolean {
    assert(client !== 0n, () => "a client id is never zero")
    assert(this.prepares.length + this.requests.length <= this.prepareMax + this.requestMax, () => "pipeline over its bound")
    if (this.prepares.some((prepared) => u128FromBytes(prepared.prepare, PrepareLayout.client.offset) === client)) return true
    return this.requests.some((request) => u128FromBytes(request, RequestLayout.client.offset) === client)
  }

  /** Whether any prepare in flight has `operation`. */
  hasOperation(operation: number): boolean {
    return this.prepares.some((prepared) => prepared.prepare[PrepareLayout.operation.offset] === operation)
  }

  /** Events of the create `operation` prepared and not yet committed. */
  preparedCreates(operation: number): number {
    let events = 0
    assert(operation !== 0, () => "prepared creates of a create operation")
    for (const prepared of this.prepares) if (prepared.creates === operation) events += prepared.createEvents
    assert(Number.isSafeInteger(events), () => `${events} events prepared`)
    assert(events >= 0, () => `${events} events prepared`)
    assert(this.prepares.length <= this.prepareMax, () => "pipeline over its bound")
    return events
  }

  /**
   * Empties the pipeline as its primary leaves the view (vsr.md §4.2 step 3): the prepares in
   * flight, oldest first, go to the replica's log; the queued requests are dropped (their clients resend).
   */
  clear(): Array<Prepared> {
    const prepares = this.prepares.splice(0)
    this.requests.splice(0)
    assert(this.prepares.length === 0, () => "the pipeline is empty")
    assert(prepares.every((prepared, i) => i === 0 || prepared.op === prepares[i - 1]!.op + 1), () => "the prepares were consecutive")
    return prepares
  }

  /** Queues a request while the prepares are full; false when the queue is full too (it is dropped: the client resends). */
  queue(request: Uint8Array): boolean {
    assert(this.full, () => "a request is queued only while the prepares are full")
    assert(this.requests.length <= this.requestMax, () => "request queue over its bound")
    if (this.requests.length >= this.requestMax) return false
    this.requests.push(request)
    return true
  }

  /** The oldest queued request, once a prepare has room for it. */
  dequeue(): Uint8Array | undefined {
    if (this.full) return undefined
    const queued = this.requests.length
    const request = this.requests.shift()
    assert(this.requests.length < this.requestMax || this.requestMax === 0, () => "request queue over its bound")
    assert(request === undefined ? queued === 0 : this.requests.length === queued - 1, () => "a request dequeued once")
    return request
  }
}
