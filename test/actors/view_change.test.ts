/**
 * The new primary's choice of the log (issue 15; vsr.md §4.4), by property: from any
 * view-change quorum of join_views describing one primary's log, of which some prefix was
 * committed (held by a replication quorum), the chosen head keeps every committed op, with the
 * committed headers, and invents nothing. With a nack quorum too small (a mutant), a committed op
 * can be truncated: the property finds it.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { quorums, type Quorums } from "../../src/actors/quorum.ts"
import { chooseLog, type JoinView } from "../../src/actors/view_change.ts"
import { buildMessage, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import { Command, VsrOperation, zeroHeader } from "../../src/protocol/header.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"

const pipelineMax = 4
const cluster = 3n

/** One primary's chain of `count` prepares after the root: header k has op k and the commit it was prepared at. */
function chainOf(count: number, committed: number): Array<Uint8Array> {
  const chain = [rootPrepare(u128ToBytes(cluster))]
  for (let op = 1; op <= count; op++) {
    const commit = Math.max(0, Math.min(op - 1, committed, Math.max(0, op - pipelineMax)))
    chain.push(buildMessage({
      ...zeroHeader(Command.prepare), cluster, op: BigInt(op), commit: BigInt(commit), parent: u128FromBytes(chain[op - 1]!, 0),
      timestamp: BigInt(op) + 1000n, operation: VsrOperation.pulse
    }, new Uint8Array(0)).subarray(0, 256))
  }
  return chain
}

/** The JV of a replica holding the chain up to `held`, having committed up to `commitMin`. */
function joinViewOf(replica: number, chain: ReadonlyArray<Uint8Array>, held: number, commitMin: number): JoinView {
  const headers: Array<Uint8Array> = []
  for (let op = held; op >= 0 && headers.length <= pipelineMax; op--) {
    headers.push(chain[op]!)
    if (op <= commitMin) break
  }
  return { replica, logView: 0, op: held, commitMin, checkpointOp: 0, headers, present: (1 << headers.length) - 1, nack: 0 }
}

const scenario = fc.integer({ min: 2, max: 6 }).chain((replicaCount) => fc.record({
  replicaCount: fc.constant(replicaCount),
  held: fc.array(fc.integer({ min: 0, max: 24 }), { minLength: replicaCount, maxLength: replicaCount }),
  commitShares: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: replicaCount, maxLength: replicaCount }),
  quorum: fc.shuffledSubarray(Array.from({ length: replicaCount }, (_, i) => i), { minLength: 1 })
}))

/** Whether the choice over the scenario keeps every committed op; `undefined` when the scenario has too few JVs. */
function keepsCommitted(s: { replicaCount: number; held: Array<number>; commitShares: Array<number>; quorum: Array<number> }, q: Quorums): boolean | undefined {
  // A replica holds a prefix of the primary's chain; an op a replication quorum holds committed.
  const holding = (op: number) => s.held.filter((held) => held >= op).length
  let committed = 0
  while (holding(committed + 1) >= q.replication) committed++
  // The primary prepares no further than a pipeline past what committed.
  const held = s.held.map((h) => Math.min(h, committed + pipelineMax))
  const chain = chainOf(Math.max(...held), committed)
  const jvs = s.quorum.map((replica) => joinViewOf(replica, chain, held[replica]!, Math.floor(Math.min(held[replica]!, committed) * s.commitShares[replica]!)))
  if (jvs.length < q.viewChange) {
    expect(chooseLog(jvs, q, s.replicaCount, pipelineMax)._tag).toBe("AwaitingQuorum")
    return undefined
  }
  const choice = chooseLog(jvs, q, s.replicaCount, pipelineMax)
  if (choice._tag !== "Chosen") return false
  // Nothing invented: the head is an op some JV holds.
  expect(choice.head).toBeLessThanOrEqual(Math.max(...jvs.map((jv) => jv.op)))
  return choice.head >= committed
}

describe("chooseLog", () => {
  it("keeps every committed op, whichever view-change quorum answers", () => {
    fc.assert(fc.property(scenario, (s) => {
      expect(keepsCommitted(s, quorums(s.replicaCount))).not.toBe(false)
    }), { numRuns: 2000 })
  })

  it("keeps every committed op, over every small case (brute force: 2 to 4 replicas, logs of up to 5 ops, every prefix each holds, every subset answering)", () => {
    let cases = 0
    for (let replicaCount = 2; replicaCount <= 4; replicaCount++) {
      const q = quorums(replicaCount)
      const replicas = Array.from({ length: replicaCount }, (_, i) => i)
      for (let code = 0; code < 6 ** replicaCount; code++) {
        const held = replicas.map((replica) => Math.floor(code / 6 ** replica) % 6)
        for (let subset = 1; subset < 1 << replicaCount; subset++) {
          const quorum = replicas.filter((replica) => (subset & (1 << replica)) !== 0)
          for (const share of [0, 1]) {
            const verdict = keepsCommitted({ replicaCount, held, commitShares: replicas.map(() => share), quorum }, q)
            expect(verdict, `${replicaCount} replicas holding ${held}, ${quorum} answering, commit shares ${share}`).not.toBe(false)
            if (verdict !== undefined) cases++
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(10_000)
  })

  it("mutant: with a nack quorum of one, a committed op is truncated for some quorum", () => {
    const broken = (replicaCount: number): Quorums => ({ ...quorums(replicaCount), nackPrepare: 1 })
    const result = fc.check(fc.property(scenario, (s) => keepsCommitted(s, broken(s.replicaCount)) !== false), { numRuns: 2000 })
    expect(result.failed).toBe(true)
  })

  it("waits for more replicas when an op that may have committed has no copy in the quorum", () => {
    const q = quorums(3)
    const chain = chainOf(6, 4)
    // Replica 1 holds ops to 6 but answers with op 6 not present (its slot was damaged), replica 2 holds to 4 and committed 4.
    const damaged = { ...joinViewOf(1, chain, 6, 2), present: 0b11110 }
    const choice = chooseLog([damaged, joinViewOf(2, chain, 4, 4)], q, 3, pipelineMax)
    expect(choice).toEqual({ _tag: "AwaitingRepair", op: 6 })
    expect(chooseLog([damaged, joinViewOf(2, chain, 4, 4), joinViewOf(0, chain, 6, 4)], q, 3, pipelineMax)).toMatchObject({ _tag: "Chosen", head: 6 })
  })
})
