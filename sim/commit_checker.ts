/**
 * The state checker of a cluster (issue 14): from each replica's `Committed` events, every
 * replica commits the same prepare (by checksum) at every op number, and each commits its ops in
 * order, one after the other (a restarted incarnation resumes after the op it recovered). In
 * view 0 the primary (replica 0) is the cluster's commit: it commits a prepare only once a
 * replication quorum holds it (itself and the backups whose `prepare_ok` for it went out), and a
 * backup commits nothing the primary has not. At the end of a run, once faults stop, every
 * replica must reach the same commit (`converged`).
 */
import { quorums } from "../src/actors/quorum.ts"
import { PrepareOkLayout, readU64Number } from "../src/protocol/header.ts"
import type { Checker } from "./checker.ts"

export class CommitChecker {
  private readonly checker: Checker
  /** The checksum (hex) of the prepare committed at each op, by whichever replica committed it first. */
  private readonly prepares = new Map<number, string>()
  /** Each replica's newest committed op. */
  readonly commits: Array<number>
  /** Commits compared with another replica's at the same op. */
  compared = 0

  /** The backups whose `prepare_ok` for a prepare (by op and checksum) went out, until the primary commits it. */
  private readonly oks = new Map<string, { readonly op: number; readonly backups: Set<number> }>()
  private readonly quorum: number

  constructor(checker: Checker, replicaCount: number) {
    this.checker = checker
    this.commits = Array.from({ length: replicaCount }, () => 0)
    this.quorum = quorums(replicaCount).replication
  }

  /** Backup `replica` sent a `prepare_ok`: it holds that prepare durably. */
  onPrepareOk(replica: number, ok: Uint8Array): void {
    const op = readU64Number(ok, PrepareOkLayout.op.offset)
    if (op <= this.commits[0]!) return // the primary committed it already
    const key = `${op}:${Buffer.from(ok.subarray(PrepareOkLayout.prepare_checksum.offset, PrepareOkLayout.prepare_checksum.offset + 16)).toString("hex")}`
    const entry = this.oks.get(key) ?? { op, backups: new Set<number>() }
    entry.backups.add(replica)
    this.oks.set(key, entry)
  }

  /** Replica `replica` recovered up to `commitOp`: its next commit is the op after. */
  onRecovered(replica: number, commitOp: number): void {
    this.commits[replica] = commitOp
  }

  onCommitted(replica: number, op: number, checksum: Uint8Array): void {
    const previous = this.commits[replica]!
    if (op !== previous + 1) this.checker.fail("commits_in_order", `replica ${replica} committed op ${op} after op ${previous}`)
    this.commits[replica] = op
    const hex = Buffer.from(checksum).toString("hex")
    if (this.commits.length > 1) this.checkCommittedByCluster(replica, op, hex)
    const first = this.prepares.get(op)
    if (first === undefined) {
      this.prepares.set(op, hex)
    } else {
      this.compared++
      if (first !== hex) this.checker.fail("same_prepare_committed", `replica ${replica} committed prepare ${hex} at op ${op}, another replica ${first}`)
    }
  }

  /** The primary's commit needs a quorum holding the prepare; a backup's, the primary's commit before it. */
  private checkCommittedByCluster(replica: number, op: number, hex: string): void {
    if (replica !== 0) {
      if (op > this.commits[0]!) this.checker.fail("backup_commits_uncommitted", `replica ${replica} committed op ${op}, which the primary has not (it is at op ${this.commits[0]})`)
      return
    }
    const holders = 1 + (this.oks.get(`${op}:${hex}`)?.backups.size ?? 0)
    if (holders < this.quorum) this.checker.fail("commit_without_quorum", `the primary committed op ${op} held by ${holders} replicas, fewer than the quorum of ${this.quorum}`)
    for (const [key, entry] of this.oks) if (entry.op <= op) this.oks.delete(key)
  }

  /** Whether every replica has committed as far as the furthest. */
  get converged(): boolean {
    return this.commits.every((commit) => commit === this.commits[0])
  }
}
