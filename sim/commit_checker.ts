/**
 * The state checker of a cluster (issue 14): from each replica's `Committed` events, every
 * replica commits the same prepare (by checksum) at every op number, and each commits its ops in
 * order, one after the other (a restarted incarnation resumes after the op it recovered). At the
 * end of a run, once faults stop, every replica must reach the same commit (`converged`).
 */
import type { Checker } from "./checker.ts"

export class CommitChecker {
  private readonly checker: Checker
  /** The checksum (hex) of the prepare committed at each op, by whichever replica committed it first. */
  private readonly prepares = new Map<number, string>()
  /** Each replica's newest committed op. */
  readonly commits: Array<number>
  /** Commits compared with another replica's at the same op. */
  compared = 0

  constructor(checker: Checker, replicaCount: number) {
    this.checker = checker
    this.commits = Array.from({ length: replicaCount }, () => 0)
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
    const first = this.prepares.get(op)
    if (first === undefined) {
      this.prepares.set(op, hex)
    } else {
      this.compared++
      if (first !== hex) this.checker.fail("same_prepare_committed", `replica ${replica} committed prepare ${hex} at op ${op}, another replica ${first}`)
    }
  }

  /** Whether every replica has committed as far as the furthest. */
  get converged(): boolean {
    return this.commits.every((commit) => commit === this.commits[0])
  }
}
