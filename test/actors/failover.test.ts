/**
 * Failover scenarios (issue 15), each driven by hand on a cluster of cores (scenario_cluster.ts):
 * who holds what when the primary goes, and what the view change makes of it.
 */
import { describe, expect, it } from "vitest"
import { PrepareLayout, readU64, readU64Number, ReplyLayout } from "../../src/protocol/header.ts"
import { ScenarioCluster } from "./scenario_cluster.ts"

/** Rounds (10 ms each) for clocks to agree, a view change to complete, a request to commit: generous. */
const settleRounds = 3000

/** A cluster whose clients registered, served by replica 0 in view 0. */
function servingCluster(replicaCount: number, clients = 1): ScenarioCluster {
  const cluster = new ScenarioCluster(replicaCount)
  for (let client = 0; client < clients; client++) cluster.addClient(BigInt(100 + client))
  cluster.runUntil(() => Array.from({ length: clients }, (_, client) => cluster.idle(client)).every(Boolean), settleRounds, "the clients registered")
  expect(cluster.primary()).toBe(0)
  return cluster
}

/** Client 0's next request, committed and answered. */
function served(cluster: ScenarioCluster, what: string): number {
  const request = cluster.request(0)
  cluster.runUntil(() => cluster.idle(0), settleRounds, what)
  return request
}

describe("failover scenarios", () => {
  it("a primary crash with an uncommitted op on a minority: the new view decides it once, and the client's retry gets one answer", () => {
    const cluster = servingCluster(5)
    served(cluster, "a request in view 0")
    // The primary's next prepare reaches only replica 1: a minority (the primary and one backup) holds it.
    cluster.isolate([0])
    cluster.cut.delete("0>1")
    const request = cluster.request(0)
    cluster.run(20)
    // Its prepare is in the journals of replicas 0 and 1 only, uncommitted.
    const op = Math.max(...cluster.journals[0]!.keys())
    expect(cluster.journals[1]!.has(op)).toBe(true)
    for (const replica of [2, 3, 4]) expect(cluster.journals[replica]!.has(op)).toBe(false)
    expect(cluster.replies.has(`100/${request}`)).toBe(false)
    cluster.crash(0)
    cluster.heal()
    cluster.runUntil(() => cluster.idle(0), settleRounds, "the request answered in a new view")
    const primary = cluster.primary()
    expect(primary).toBeDefined()
    expect(primary).not.toBe(0)
    expect(cluster.replies.has(`100/${request}`)).toBe(true)
    cluster.start(0)
    cluster.runUntil(() => cluster.converged() && cluster.statuses[0]?.status === "normal", settleRounds, "the old primary caught up as a backup")
    served(cluster, "a request after the old primary rejoined")
    cluster.expectConsistent()
  })

  it("two successive view changes: the primaries of views 0 and 1 both crash, the third view serves what both committed", () => {
    const cluster = servingCluster(5)
    served(cluster, "a request in view 0")
    cluster.crash(0)
    cluster.runUntil(() => cluster.primary() !== undefined, settleRounds, "a new primary")
    const second = cluster.primary()!
    served(cluster, "a request in the second view")
    cluster.crash(second)
    cluster.runUntil(() => cluster.primary() !== undefined, settleRounds, "a third primary")
    served(cluster, "a request in the third view")
    expect(cluster.statuses[cluster.primary()!]!.view).toBeGreaterThanOrEqual(2)
    cluster.expectConsistent()
  })

  it("a backup partitioned through a view change learns the new view and catches up", () => {
    const cluster = servingCluster(3)
    served(cluster, "a request in view 0")
    cluster.isolate([2])
    cluster.crash(0)
    cluster.start(0)
    cluster.runUntil(() => cluster.primary() !== undefined && cluster.statuses[cluster.primary()!]!.view > 0, settleRounds, "a view change without replica 2")
    for (let i = 0; i < 3; i++) served(cluster, `request ${i} while replica 2 is cut off`)
    expect(cluster.statuses[2]!.view).toBe(0)
    cluster.heal()
    const view = cluster.statuses[cluster.primary()!]!.view
    cluster.runUntil(() => cluster.statuses[2]?.view === view && cluster.statuses[2]?.status === "normal" && cluster.converged(), settleRounds, "replica 2 in the new view, caught up")
    cluster.expectConsistent()
  })

  it("a primary that can send but not receive abdicates: its heartbeats stop, and the backups elect another", () => {
    const cluster = servingCluster(3)
    served(cluster, "a request in view 0")
    // The backups hear the primary (its heartbeats keep them from voting), but nothing reaches it.
    cluster.isolate([1, 2], true)
    const request = cluster.request(0)
    // Its prepare waits for oks that never come; after 10 s it stops its heartbeats.
    cluster.run(900)
    expect(cluster.statuses[1]).toMatchObject({ status: "normal", view: 0 })
    cluster.runUntil(() => cluster.primary() !== undefined && cluster.primary() !== 0, settleRounds, "another primary")
    cluster.runUntil(() => cluster.idle(0), settleRounds, "the request answered in the new view")
    expect(cluster.replies.has(`100/${request}`)).toBe(true)
    cluster.heal()
    cluster.runUntil(() => cluster.converged() && cluster.statuses[0]?.status === "normal", settleRounds, "the old primary a backup, caught up")
    cluster.expectConsistent()
  })

  it("all replicas restart at once: the cluster comes back in a later view with everything acknowledged", () => {
    const cluster = servingCluster(3)
    const requests = [served(cluster, "request 1"), served(cluster, "request 2")]
    for (let replica = 0; replica < 3; replica++) cluster.crash(replica)
    for (let replica = 0; replica < 3; replica++) cluster.start(replica)
    cluster.runUntil(() => cluster.primary() !== undefined, settleRounds, "a primary after the restart")
    expect(cluster.statuses[cluster.primary()!]!.view).toBeGreaterThan(0)
    served(cluster, "a request after the restart")
    cluster.runUntil(() => cluster.converged(), settleRounds, "every replica at the same commit")
    for (const request of requests) expect(cluster.replies.has(`100/${request}`)).toBe(true)
    cluster.expectConsistent()
  })

  it("one replica's clock an hour ahead: the others keep cluster time, and it leads without stamping its own clock", () => {
    const cluster = servingCluster(3)
    cluster.skew(1, 3_600_000)
    served(cluster, "a request with a clock an hour off")
    cluster.crash(0)
    // The primary of view 1 is replica 1, the one an hour ahead.
    cluster.runUntil(() => cluster.primary() === 1, settleRounds, "replica 1 leads")
    const request = served(cluster, "a request in the new view")
    const reply = cluster.replies.get(`100/${request}`)!
    const stamped = cluster.journals[1]!.get(readU64Number(reply, ReplyLayout.op.offset))!
    // Cluster time: the true time give or take the tolerance (10 s), not its own clock an hour ahead.
    const ahead = readU64(stamped, PrepareLayout.timestamp.offset) - cluster.trueTimeNs()
    expect(ahead).toBeLessThan(11_000_000_000n)
    expect(ahead).toBeGreaterThan(-11_000_000_000n)
    cluster.expectConsistent()
  })
})
