/**
 * How the new primary of a view chooses the log (vsr.md §4.4), pure: from the `join_view`s of a
 * view-change quorum, the freshest suffixes (those of the highest log view) are canonical; an op
 * is kept if no nack quorum swears it was never acknowledged, and truncated with everything above
 * it otherwise; an op that may have committed but has no copy in the quorum makes the primary wait
 * for more replicas rather than guess. Ops certainly committed are never truncated.
 *
 * A JV's headers run down from its head, consecutive, at most a pipeline plus one, blanks
 * (`undefined`) allowed below the head; bit `i` of `present` says the sender holds the prepare of
 * `headers[i]`, bit `i` of `nack` that it certainly never acknowledged that op in its log view.
 */
import { assert } from "../assert.ts"
import { headerSize, PrepareLayout, readU64Number, u128Equal } from "../protocol/header.ts"
import type { Quorums } from "./quorum.ts"

export interface JoinView {
  readonly replica: number
  readonly logView: number
  /** The sender's head: `headers[0]`'s op. */
  readonly op: number
  readonly commitMin: number
  readonly checkpointOp: number
  /** Descending from `op`, consecutive; `undefined` is a blank (the sender has no header for that op). */
  readonly headers: ReadonlyArray<Uint8Array | undefined>
  readonly present: number
  readonly nack: number
}

export type LogChoice =
  | { readonly _tag: "AwaitingQuorum" }
  /** Some op that may have committed has no canonical header or no copy yet: wait for more replicas. */
  | { readonly _tag: "AwaitingRepair"; readonly op: number }
  /** Every replica answered and an op is still undecidable (correlated faults): never guess. */
  | { readonly _tag: "Undecidable"; readonly op: number }
  /** The new log: up to `head`; ops up to `committed` are certainly committed. */
  | { readonly _tag: "Chosen"; readonly head: number; readonly committed: number; readonly canonical: ReadonlyArray<JoinView> }

/** The newest op some JV of the quorum proves committed: never truncated (vsr.md §4.4). */
export function certainlyCommitted(jvs: ReadonlyArray<JoinView>, pipelineMax: number): number {
  assert(jvs.length > 0, () => "a quorum of JVs")
  assert(pipelineMax > 0, () => "a pipeline holds a prepare")
  return Math.max(...jvs.map((jv) => {
    const head = jv.headers[0]
    assert(head !== undefined, () => `replica ${jv.replica}'s JV starts with its head, never a blank`)
    // A suffix stops at an op at or below the sender's commit_max; nothing a full pipeline below
    // a head is uncommitted; the head prepare names the primary's commit when it was made.
    return Math.max(jv.op - (jv.headers.length - 1), jv.op - pipelineMax, jv.commitMin, readU64Number(head, PrepareLayout.commit.offset))
  }))
}

/** The new primary's decision over the JVs it holds (at most one per replica, its own included). */
export function chooseLog(jvs: ReadonlyArray<JoinView>, quorums: Quorums, replicaCount: number, pipelineMax: number): LogChoice {
  assert(new Set(jvs.map((jv) => jv.replica)).size === jvs.length, () => "one JV per replica")
  jvs.forEach(assertJoinView)
  if (jvs.length < quorums.viewChange) return { _tag: "AwaitingQuorum" }
  const logViewMax = Math.max(...jvs.map((jv) => jv.logView))
  const canonical = jvs.filter((jv) => jv.logView === logViewMax)
  const opHigh = Math.max(...canonical.map((jv) => jv.op))
  const committed = certainlyCommitted(jvs, pipelineMax)
  let head = opHigh
  for (let op = committed; op <= opHigh; op++) {
    const chosen = canonicalHeader(canonical, op)
    let copies = 0
    let nacks = 0
    for (const jv of jvs) {
      const i = jv.op - op
      // An op above a JV's head: its sender never had it. (Below its suffix cannot happen from
      // `committed` up: every suffix reaches down to the op certainlyCommitted counts for it.)
      if (i < 0 || i >= jv.headers.length) {
        nacks++
        continue
      }
      const header = jv.headers[i]
      const same = header !== undefined && chosen !== undefined && u128Equal(header, 0, chosen, 0)
      if (same && (jv.present & (1 << i)) !== 0) copies++
      if ((jv.nack & (1 << i)) !== 0 || (header !== undefined && !same)) nacks++
    }
    if (nacks >= quorums.nackPrepare) {
      // Nobody that could complete a replication quorum with it acknowledged it: it never committed.
      assert(op > committed, () => `op ${op} is certainly committed, yet a nack quorum swears it never was`)
      head = op - 1
      break
    }
    if (chosen === undefined || copies === 0) return jvs.length < replicaCount ? { _tag: "AwaitingRepair", op } : { _tag: "Undecidable", op }
  }
  assert(head >= committed, () => "a committed op is never truncated")
  return { _tag: "Chosen", head, committed, canonical }
}

/** The header the canonical JVs hold for `op` (they agree on it: one log view, one primary). */
function canonicalHeader(canonical: ReadonlyArray<JoinView>, op: number): Uint8Array | undefined {
  let found: Uint8Array | undefined
  for (const jv of canonical) {
    const header = jv.headers[jv.op - op]
    if (header === undefined) continue
    assert(found === undefined || u128Equal(found, 0, header, 0), () => `two JVs of log view ${jv.logView} disagree on op ${op}`)
    found ??= header
  }
  assert(found === undefined || readU64Number(found, PrepareLayout.op.offset) === op, () => `the header found is of op ${op}`)
  return found
}

function assertJoinView(jv: JoinView): void {
  assert(jv.headers.length > 0, () => `replica ${jv.replica}'s JV holds its head`)
  assert(jv.headers.length <= 31, () => "the bitsets hold the headers")
  assert(jv.op >= jv.commitMin, () => `replica ${jv.replica}: op ${jv.op} below commit_min ${jv.commitMin}`)
  assert(jv.commitMin >= jv.checkpointOp, () => `replica ${jv.replica}: commit_min below its checkpoint`)
  jv.headers.forEach((header, i) => {
    assert(header === undefined || header.length >= headerSize, () => "a header is 256 bytes")
    assert(header === undefined || readU64Number(header, PrepareLayout.op.offset) === jv.op - i, () => `replica ${jv.replica}'s JV headers run down from its head`)
  })
}
