/**
 * The state checker of a cluster (issues 14, 15), across views: from each replica's `Committed`
 * events, its `StatusChanged` events and the prepares the simulated disks make durable.
 *
 * - `same_prepare_committed`: every replica commits the same prepare (by checksum) at every op
 *   number, whatever the view it commits in: no two different prepares are ever committed at one
 *   op.
 * - `commits_in_order`: each replica commits its ops in order, one after the other (a restarted
 *   incarnation resumes after the op it recovered).
 * - `timestamps_increase`: committed timestamps strictly increase with op, across the whole
 *   cluster and every view (state-machine.md §6.1).
 * - The FIRST commit of an op anywhere in the cluster decides it; every later commit of it only
 *   repeats it. That first commit must be made
 *   - by the primary of the committing replica's view, as its latest `StatusChanged` says (in
 *     `normal` status, or in `view_change` status: a new primary commits up to commit_max before it
 *     starts its view), else `backup_commits_uncommitted` (a replica whose status is not known,
 *     such as a restarted one before it reports, is no primary);
 *   - of a prepare that a replication quorum of replicas holds durably at that moment, else
 *     `commit_without_quorum`. The holders are counted from the WAL writes the simulated disks
 *     complete (per op, checksum and replica), not from `prepare_ok`s: a write makes its prepare
 *     durable when it completes; the prepare a journal slot held stops being held when a write of
 *     another prepare to the slot starts, or when the replica crashes with a write to the slot in
 *     flight (the crash may tear it, and the slot with it). A write of the same prepare again
 *     leaves the bytes as they were until then.
 * - `converged`: at the end of a run, once faults stop, every replica reaches the same commit.
 *
 * Until the core reports its status, each replica starts `normal` in view 0, whose primary is
 * replica 0.
 */
import { assert } from "../src/assert.ts"
import { quorums } from "../src/actors/quorum.ts"
import { PrepareLayout } from "../src/protocol/header.ts"
import { readU64, type Checker } from "./checker.ts"

/** What a replica last reported of its status (the core's `StatusChanged` output). */
export interface ReplicaStatus {
  readonly status: "normal" | "view_change" | "recovering_head"
  readonly view: number
  /** The index of the primary of `view`. */
  readonly primary: number
}

/** The status each replica starts in until the core reports one. */
export const statusInitial: ReplicaStatus = { status: "normal", view: 0, primary: 0 }

export class CommitChecker {
  private readonly checker: Checker
  private readonly replicaCount: number
  private readonly quorum: number
  /** The prepare committed at each op by whichever replica committed it first: its checksum (hex). */
  private readonly prepares = new Map<number, string>()
  /** The newest op committed anywhere (every op up to it has been), and its timestamp. */
  private firstCommitOp = 0
  private firstCommitTimestamp = 0n
  /** Each replica's newest committed op. */
  readonly commits: Array<number>
  /** Each replica's latest reported status; undefined while unknown. */
  private readonly statuses: Array<ReplicaStatus | undefined>
  /** Commits compared with another replica's at the same op. */
  compared = 0
  /** Per replica, the prepare each WAL offset holds durably (`op:checksum`), for the ops not committed yet. */
  private readonly slots: Array<Map<number, string>>
  /** Per replica, the WAL offsets it is writing now. */
  private readonly writing: Array<Set<number>>
  /** The replicas holding each prepare (`op:checksum`) durably, and its bytes, until its op is committed. */
  private readonly held = new Map<string, { readonly op: number; readonly replicas: Set<number>; readonly prepare: Uint8Array }>()

  constructor(checker: Checker, replicaCount: number) {
    this.checker = checker
    this.replicaCount = replicaCount
    this.commits = Array.from({ length: replicaCount }, () => 0)
    this.statuses = Array.from({ length: replicaCount }, () => statusInitial)
    this.slots = Array.from({ length: replicaCount }, () => new Map<number, string>())
    this.writing = Array.from({ length: replicaCount }, () => new Set<number>())
    this.quorum = quorums(replicaCount).replication
  }

  /** Replica `replica` reported its status. */
  onStatus(replica: number, status: ReplicaStatus): void {
    assert(replica >= 0 && replica < this.replicaCount, () => `replica ${replica} of ${this.replicaCount}`)
    if (status.primary !== status.view % this.replicaCount) {
      this.checker.fail("primary_of_view", `replica ${replica} names replica ${status.primary} the primary of view ${status.view}, not ${status.view % this.replicaCount}`)
    }
    this.statuses[replica] = status
  }

  /** Replica `replica`'s process died or restarted: its status is unknown until it reports one. */
  onStatusUnknown(replica: number): void {
    this.statuses[replica] = undefined
  }

  status(replica: number): ReplicaStatus | undefined {
    return this.statuses[replica]
  }

  /** Replica `replica` starts writing `prepare` to WAL offset `offset`: the prepare the slot held is replaced, unless it is the same. */
  onWriteStarted(replica: number, offset: number, prepare: Uint8Array): void {
    this.writing[replica]!.add(offset)
    if (this.slots[replica]!.get(offset) !== keyOf(prepare)) this.drop(replica, offset)
    assert(this.writing[replica]!.has(offset), () => "the write is in flight")
  }

  /** Replica `replica` crashed: the slots it was writing may be torn. */
  onCrashed(replica: number): void {
    for (const offset of this.writing[replica]!) this.drop(replica, offset)
    this.writing[replica]!.clear()
    assert(this.writing[replica]!.size === 0, () => "no write survives a crash in flight")
  }

  /** Replica `replica`'s write of `prepare` to WAL offset `offset` completed: it holds the prepare durably. */
  onPrepareWritten(replica: number, offset: number, prepare: Uint8Array): void {
    const op = Number(readU64(prepare, PrepareLayout.op.offset))
    assert(Number.isSafeInteger(op), () => `op ${op}`)
    this.writing[replica]!.delete(offset)
    const key = keyOf(prepare)
    if (this.slots[replica]!.get(offset) !== key) this.drop(replica, offset)
    if (op <= this.firstCommitOp) return // committed already: holders no longer matter
    let entry = this.held.get(key)
    if (entry === undefined) {
      entry = { op, replicas: new Set<number>(), prepare: prepare.slice() }
      this.held.set(key, entry)
    }
    entry.replicas.add(replica)
    this.slots[replica]!.set(offset, key)
    assert(entry.replicas.size <= this.replicaCount, () => "holders are replicas of the cluster")
  }

  /** Replica `replica` recovered up to `commitOp`: its next commit is the op after. */
  onRecovered(replica: number, commitOp: number): void {
    this.commits[replica] = commitOp
  }

  onCommitted(replica: number, op: number, checksum: Uint8Array, timestamp: bigint): void {
    const previous = this.commits[replica]!
    if (op !== previous + 1) this.checker.fail("commits_in_order", `replica ${replica} committed op ${op} after op ${previous}`)
    this.commits[replica] = op
    const committed = Buffer.from(checksum.subarray(0, 16)).toString("hex")
    const first = this.prepares.get(op)
    if (first !== undefined) {
      this.compared++
      if (first !== committed) this.checker.fail("same_prepare_committed", `replica ${replica} committed prepare ${committed} at op ${op}, another replica ${first}`)
      return
    }
    this.prepares.set(op, committed)
    this.onFirstCommit(replica, op, committed, timestamp)
  }

  /** Replica `replica`'s slot at `offset` no longer holds what it held. */
  private drop(replica: number, offset: number): void {
    const key = this.slots[replica]!.get(offset)
    if (key === undefined) return
    this.slots[replica]!.delete(offset)
    this.held.get(key)?.replicas.delete(replica)
  }

  /** Whether every replica has committed as far as the furthest. */
  get converged(): boolean {
    return this.commits.every((commit) => commit === this.commits[0])
  }

  /** The op's first commit anywhere: by the primary of its view, of a prepare a quorum holds, after the previous op's timestamp. */
  private onFirstCommit(replica: number, op: number, committed: string, timestamp: bigint): void {
    if (op > this.firstCommitOp) {
      if (op === this.firstCommitOp + 1 && timestamp <= this.firstCommitTimestamp) {
        this.checker.fail("timestamps_increase", `op ${op} was committed with timestamp ${timestamp}, not after op ${op - 1}'s ${this.firstCommitTimestamp}`)
      }
      this.firstCommitOp = op
      this.firstCommitTimestamp = timestamp
    }
    if (this.replicaCount === 1) return
    const status = this.statuses[replica]
    if (status === undefined || status.status === "recovering_head" || status.primary !== replica) {
      const role = status === undefined ? "its status unknown" : `${status.status} in view ${status.view}, whose primary is replica ${status.primary}`
      this.checker.fail("backup_commits_uncommitted", `replica ${replica} committed op ${op} before any other replica, while not the primary of its view (${role})`)
    }
    const entry = this.held.get(`${op}:${committed}`)
    const holders = entry?.replicas.size ?? 0
    if (holders < this.quorum) {
      this.checker.fail("commit_without_quorum", `replica ${replica} committed op ${op} first, held durably by ${holders} replicas, fewer than the quorum of ${this.quorum}`)
    }
    // The history of the cluster is its committed prepares (the reference model executes them).
    if (entry !== undefined) this.checker.onPrepareCommitted(entry.prepare)
    for (const [key, other] of this.held) if (other.op <= op) this.held.delete(key)
    assert(this.prepares.get(op) === committed, () => `op ${op}'s first commit is recorded`)
  }
}

/** A prepare's identity: its op and checksum. */
const keyOf = (prepare: Uint8Array): string =>
  `${readU64(prepare, PrepareLayout.op.offset)}:${Buffer.from(prepare.subarray(0, 16)).toString("hex")}`
