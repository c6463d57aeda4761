/**
 * `layerClient` through a failover (issue 15): a cluster of three `scarab start` processes whose
 * primary is SIGKILLed while three fibers keep creating transfers through one Ledger service,
 * each call with a `RequestDeadline` (250 ms, 1 s or 4 s, by fiber). Every call either succeeds, every transfer `created`,
 * or fails with `OutcomeUnknown` naming the ids it carried (the documented outcome of a
 * deadline); nothing else reaches the caller. Once another replica is primary, the same service,
 * not rebuilt, goes on serving, with and without a deadline. Every acknowledged transfer is
 * there with its amount; of the unknown ones some may have committed, and the balances are the
 * sums of the acknowledged ones and of those found; retrying an unknown one with the same id
 * answers `exists` exactly when it had committed, and afterwards every transfer is applied once.
 *
 * The times from the kill to the first backup leaving the view, to the new primary's `normal`
 * line and to its first reply are printed (`FAILOVER {json}`), not asserted.
 */
import { afterEach, assert, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { Prng } from "../../src/prng.ts"
import { layerClient, Ledger, RequestDeadline, type LedgerApi } from "../../src/index.ts"
import { awaitNewPrimary, awaitViewLeft, outputs, printFailover, settled, until } from "../integration/failover_cluster.ts"
import { type ClusterFiles, type RunningCluster, startCluster, temporaryClusterFiles } from "../integration/replica_process.ts"
import { accountInput, transferInput } from "./conformance.ts"

const accounts = 16
/**
 * Each lane's deadline per call: the shorter ones pass while a call waits out the view change
 * (in flight, or queued behind the request in flight and then withdrawn); the longest keeps the
 * load going on a machine so loaded that a call takes more than a second.
 */
const deadlinesMs = [250, 1_000, 4_000] as const
/** Calls answered before the kill, and after the first answer that follows it. */
const callsBeforeKill = 30
const callsAfterFailover = 30

/** A transfer the test made: the fields it checks, as plain bigints, on conformance.ts's ledger and code. */
type Made = ReturnType<typeof made>
const made = (id: bigint, debit: bigint, credit: bigint, amount: bigint) =>
  ({ ...transferInput(id, debit, credit, amount), id, debit_account_id: debit, credit_account_id: credit, amount })

let running: { readonly files: ClusterFiles; readonly cluster: RunningCluster } | undefined

// The scope's finalizer kills the cluster; this covers a test interrupted before it ran.
afterEach(async () => {
  await running?.cluster.kill("SIGKILL")
  running?.files.remove()
  running = undefined
})

const clusterScoped = Effect.acquireRelease(
  Effect.promise(async () => {
    const files = temporaryClusterFiles(3)
    running = { files, cluster: await startCluster(files).catch((error) => { files.remove(); throw error }) }
    return running.cluster
  }),
  () => Effect.promise(async () => {
    await running?.cluster.kill("SIGKILL")
    running?.files.remove()
    running = undefined
  })
)

describe("layerClient through a failover of a cluster of three scarab processes", () => {
  it.live("calls during the failover succeed or fail with OutcomeUnknown; the same client serves after it; nothing acknowledged is lost", () => Effect.gen(function* () {
    const cluster = yield* clusterScoped
    yield* Effect.provide(failover(cluster), layerClient({ cluster: 0n, addresses: cluster.ports.map(String) }))
  }))
})

const failover = (cluster: RunningCluster) => Effect.gen(function* () {
  const ledger = yield* Ledger
  const created = yield* ledger.createAccounts(Array.from({ length: accounts }, (_, i) => accountInput(BigInt(i + 1))))
  expect(created.map((r) => r.status)).toEqual(created.map(() => "created"))
  yield* Effect.promise(() => settled(cluster))
  const load = new Load(ledger, new Prng(20261211))
  const fibers = []
  for (const deadlineMs of deadlinesMs) fibers.push(yield* Effect.forkChild(load.lane(deadlineMs)))
  yield* Effect.promise(() => until(() => (load.replies.length >= callsBeforeKill ? true : undefined), `${callsBeforeKill} calls answered`))

  const leader = yield* Effect.promise(() => settled(cluster))
  const killedMs = performance.now()
  const dead = cluster.replicas[leader.primary]!.kill("SIGKILL")
  // Replies seen once a backup left the view are the new primary's (see awaitViewLeft).
  const leftMs = yield* Effect.promise(() => awaitViewLeft(cluster, leader.view, leader.primary))
  const next = yield* Effect.promise(() => awaitNewPrimary(cluster, leader.view, leader.primary))
  yield* Effect.promise(() => dead)
  const firstReply = yield* Effect.promise(() => until(() => load.replies.find((at) => at > leftMs), "a reply from the new primary"))
  const answered = load.replies.length
  yield* Effect.promise(() => until(() => (load.replies.length >= answered + callsAfterFailover ? true : undefined), `${callsAfterFailover} more calls answered`))
  load.stopped = true
  yield* Effect.forEach(fibers, Fiber.join, { discard: true })
  printFailover({
    scenario: "layer_client_sigkill_primary", kill_to_first_reply_ms: Math.round(firstReply - killedMs), kill_to_new_primary_ms: Math.round(next.seenMs - killedMs),
    kill_to_view_change_ms: Math.round(leftMs - killedMs), old_view: leader.view, new_view: next.view, new_primary: next.primary, calls_answered: load.replies.length, calls_unknown: load.unknownCalls
  })

  // The same client, no deadline: served by the new primary.
  const after = [made(load.nextId++, 1n, 2n, 5n), made(load.nextId++, 2n, 1n, 7n)]
  expect((yield* ledger.createTransfers(after)).map((r) => r.status)).toEqual(["created", "created"])
  load.acknowledged.push(...after)
  yield* expectLedger(ledger, load, cluster)
})

/**
 * The ledger against what the callers were told: every acknowledged transfer is there with its
 * amount, and the balances are the sums of those and of the unknown ones found. Then each
 * unknown one is sent again, answered `exists` if found and `created` if not, and the balances
 * are the sums of every transfer sent.
 */
const expectLedger = (ledger: LedgerApi, load: Load, cluster: RunningCluster) => Effect.gen(function* () {
  const acknowledged = yield* lookup(ledger, load.acknowledged)
  expect(acknowledged.map(fieldsOf), outputs(cluster)).toEqual(load.acknowledged.map(fieldsOf))
  const committed = yield* lookup(ledger, load.unknown)
  const found = new Set(committed.map((t) => t.id))
  expect(committed.map(fieldsOf)).toEqual(load.unknown.filter((t) => found.has(t.id)).map(fieldsOf))
  yield* expectBalances(ledger, [...load.acknowledged, ...load.unknown.filter((t) => found.has(t.id))])
  for (let i = 0; i < load.unknown.length; i += 8000) {
    const chunk = load.unknown.slice(i, i + 8000)
    const results = yield* ledger.createTransfers(chunk)
    expect(results.map((r) => r.status)).toEqual(chunk.map((t) => (found.has(t.id) ? "exists" : "created")))
  }
  yield* expectBalances(ledger, [...load.acknowledged, ...load.unknown])
  console.info(`layerClient failover test: ${load.acknowledged.length} transfers acknowledged, ${load.unknown.length} unknown ` +
    `(${found.size} of them had committed), in ${load.unknownCalls} calls whose deadline passed`)
})

const lookup = (ledger: LedgerApi, transfers: ReadonlyArray<Made>) => Effect.gen(function* () {
  const ids = transfers.map((t) => t.id)
  const found = []
  for (let i = 0; i < ids.length; i += 8000) found.push(...(yield* ledger.lookupTransfers(ids.slice(i, i + 8000))))
  return found
})

const expectBalances = (ledger: LedgerApi, applied: ReadonlyArray<Made>) => Effect.gen(function* () {
  const debits = new Array<bigint>(accounts + 1).fill(0n)
  const credits = new Array<bigint>(accounts + 1).fill(0n)
  for (const t of applied) {
    debits[Number(t.debit_account_id)]! += t.amount
    credits[Number(t.credit_account_id)]! += t.amount
  }
  const balances = yield* ledger.lookupAccounts(Array.from({ length: accounts }, (_, i) => BigInt(i + 1)))
  expect(balances.map((a) => a.debits_posted)).toEqual(debits.slice(1))
  expect(balances.map((a) => a.credits_posted)).toEqual(credits.slice(1))
})

const fieldsOf = (t: { readonly id: bigint; readonly debit_account_id: bigint; readonly credit_account_id: bigint; readonly amount: bigint }) =>
  [t.id, t.debit_account_id, t.credit_account_id, t.amount]

/**
 * The callers: each creates 1-20 transfers between random distinct accounts per call, with the
 * deadline, until `stopped`. A call that succeeds has every transfer `created` (acknowledged); one
 * whose deadline passes fails with `OutcomeUnknown` naming exactly its ids (unknown); any other
 * failure fails the lane, and so the test.
 */
class Load {
  readonly acknowledged: Array<Made> = []
  readonly unknown: Array<Made> = []
  /** When each successful call was answered (performance.now()). */
  readonly replies: Array<number> = []
  /** Calls that failed with OutcomeUnknown. */
  unknownCalls = 0
  nextId = 1n
  stopped = false
  private readonly ledger: LedgerApi
  private readonly random: Prng

  constructor(ledger: LedgerApi, random: Prng) {
    this.ledger = ledger
    this.random = random
  }

  /** One caller, until `stopped`, each call with `deadlineMs`. */
  lane(deadlineMs: number): Effect.Effect<void> {
    const load = this
    return Effect.gen(function* () {
      while (!load.stopped) yield* load.call(deadlineMs)
    })
  }

  private call(deadlineMs: number): Effect.Effect<void> {
    const batch = Array.from({ length: 1 + this.random.below(20) }, () => {
      const debit = 1 + this.random.below(accounts)
      const credit = 1 + ((debit + this.random.below(accounts - 1)) % accounts)
      return made(this.nextId++, BigInt(debit), BigInt(credit), BigInt(1 + this.random.below(100)))
    })
    return this.ledger.createTransfers(batch).pipe(
      Effect.provideService(RequestDeadline, deadlineMs),
      Effect.map((results) => {
        this.replies.push(performance.now())
        assert.deepStrictEqual(results.map((r) => r.status), batch.map(() => "created" as const))
        this.acknowledged.push(...batch)
      }),
      Effect.catchTag("OutcomeUnknown", (error) => Effect.sync(() => {
        assert.deepStrictEqual(error.ids, batch.map((t) => t.id))
        this.unknownCalls++
        this.unknown.push(...batch)
      })),
      // Any other failure is a defect of the test: the lane dies and the join fails.
      Effect.orDie
    )
  }
}
