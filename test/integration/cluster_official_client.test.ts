/**
 * A cluster of three `scarab start` processes on this host (issue 14), driven by TigerBeetle's
 * official Node client, unmodified: `tigerbeetle-node@0.17.9`'s own test suite passes against it
 * (its client knows all three addresses and sends to the primary of view 0, replica 0); and
 * under load from that client a backup is SIGKILLed, the load goes on, the backup restarts,
 * repairs its log from its peers and reaches the checkpoint the others are at (the checkpoint
 * ids every replica logs agree), and every acknowledged transfer is there with the balances they
 * add up to; then, with backup 1 killed too, the primary and backup 2 alone commit new transfers.
 *
 * The data files use the test profile: a checkpoint every 32 ops and a journal of 64 slots.
 * Backup 2 is killed once it has logged its checkpoint at op 31, so its restart loads that
 * checkpoint, replays its own journal after it and repairs the rest. What the cluster commits
 * after the kill is bounded (at most 53 requests, so ops), so that every op backup 2 missed is
 * still in its peers' journals while it lags the primary by less than 11 ops at the kill: a
 * replica further behind than the journal needs state sync, which is not this test's subject.
 * Those requests still carry the cluster past its next checkpoint (op 63), which backup 2 must
 * then reach too.
 */
import { createRequire } from "node:module"
import { afterEach, describe, expect, it } from "vitest"
import { Prng } from "../../src/prng.ts"
import { type ClusterFiles, type RunningCluster, runOfficialSuite, startCluster, startMs, temporaryClusterFiles } from "./replica_process.ts"
import { zeroAccount, zeroTransfer } from "./tb_records.ts"

const require = createRequire(import.meta.url)
const tb: typeof import("tigerbeetle-node") = require("tigerbeetle-node")
type Client = import("tigerbeetle-node").Client

const replicaCount = 3
const accounts = 16
/** Backup 2 is SIGKILLed once it has logged the checkpoint at this op (the test profile's first). */
const killAtCheckpoint = 31
/** Requests the first phase's three lanes issue after the kill; the second phase's lane (one op per request) issues 40. */
const requestsAfterKill = 10
/** The second phase restarts backup 2 after this many of its requests are acknowledged. */
const restartAfter = 15

let files: ClusterFiles | undefined
let cluster: RunningCluster | undefined
let client: Client | undefined

afterEach(async () => {
  client?.destroy()
  client = undefined
  await cluster?.kill()
  cluster = undefined
  files?.remove()
  files = undefined
})

async function freshCluster(): Promise<RunningCluster> {
  files = temporaryClusterFiles(replicaCount)
  cluster = await startCluster(files)
  return cluster
}

describe("tigerbeetle-node@0.17.9 against a cluster of three scarab processes", () => {
  it("passes the client's own test suite", async () => {
    const { ports } = await freshCluster()
    const result = await runOfficialSuite(require.resolve("tigerbeetle-node/dist/test.js"), ports.join(","))
    const passed = result.output.split("\n").filter((line) => line.endsWith(": PASSED"))
    const replicas = cluster!.replicas.map((replica, i) => `--- replica ${i} ---\n${replica.output().slice(-8192)}`).join("\n")
    expect(result.code, `${result.output}\n${replicas}`).toBe(0)
    expect(passed, result.output).toHaveLength(27)
    expect(result.output).toContain("Time taken")
  })

  it("keeps every acknowledged transfer while a backup is SIGKILLed under load, and the restarted backup catches up", async () => {
    const running = await freshCluster()
    client = tb.createClient({ cluster_id: 0n, replica_addresses: running.ports.map(String) })
    const created = await client.createAccounts(Array.from({ length: accounts }, (_, i) => ({ ...zeroAccount, id: BigInt(i + 1), ledger: 1, code: 1 })))
    expect(created.map((r) => r.status)).toEqual(created.map(() => tb.CreateAccountStatus.created))
    const ledger = new Acknowledged(accounts)
    const random = new Prng(20261207)

    // Under load from three lanes, backup 2 dies once it has stored its first checkpoint; the lanes
    // go on with replicas 0 and 1 as the quorum. 400 requests are far more than the 31 ops take.
    let killed: Promise<void> | undefined
    const stored = () => checkpointsOf(running.replicas[2]!.output(), 2).has(killAtCheckpoint)
    await load(client, ledger, random, {
      lanes: 3, requestsMax: 400, when: stored, then: () => { killed = running.replicas[2]!.kill("SIGKILL") }, requestsAfter: requestsAfterKill
    })
    expect(killed, "backup 2 logged 'replica 2: checkpoint op=31 id=…' within 400 requests").toBeDefined()
    await killed
    // The load goes on, one request (one op) at a time, and backup 2 restarts part way through it.
    let restarting: Promise<unknown> | undefined
    let acknowledged = 0
    await load(client, ledger, random, {
      lanes: 1, requestsMax: 40, when: () => ++acknowledged === restartAfter, then: () => { restarting = running.restart(2) }, requestsAfter: 40
    })
    await restarting
    const restarted = running.replicas[2]!
    const loaded = /loaded the checkpoint at op (\d+)/.exec(restarted.output())
    expect(loaded, restarted.output()).not.toBeNull()
    const loadedOp = Number(loaded![1])
    expect(loadedOp).toBeGreaterThanOrEqual(killAtCheckpoint)

    // Nothing more is loaded: the others' newest checkpoint stays, and backup 2 must reach it,
    // past the checkpoint it restarted from, with the same checkpoint id.
    const reached = await running.waitFor(() => {
      const [primary, backup1, backup2] = running.replicas.map((replica, i) => checkpointsOf(replica.output(), i))
      const newest = newestOf(primary!)
      if (newest === undefined || newest[0] <= loadedOp) return undefined
      return newestOf(backup1!)?.[0] === newest[0] && newestOf(backup2!)?.[0] === newest[0] ? newest[0] : undefined
    }, "backup 2 at the newest checkpoint of replicas 0 and 1", startMs)
    running.replicas.forEach((replica, i) => expectConsistent(replica.output(), i))
    const logged = running.replicas.map((replica, i) => checkpointsOf(replica.output(), i))
    for (const [op, id] of logged[2]!) {
      // Every checkpoint backup 2 logged since its restart is the one the primary logged at that op.
      expect({ op, id }).toEqual({ op, id: logged[0]!.get(op) })
    }
    for (const [op, id] of logged[1]!) expect({ op, id }).toEqual({ op, id: logged[0]!.get(op) })
    expect(logged[2]!.get(reached)).toBe(logged[0]!.get(reached))

    await expectLedger(client, ledger)
    // Caught up, backup 2 is a full member of the quorum: with backup 1 killed as well, the primary
    // commits only with backup 2's prepare_oks, which it sends only for prepares that extend its chain.
    await running.replicas[1]!.kill("SIGKILL")
    const before = ledger.ids.length
    await within(load(client, ledger, random, { lanes: 1, requestsMax: 5, when: () => false, then: () => {}, requestsAfter: 0 }), startMs,
      "five requests committed by the primary and backup 2 alone")
    expect(ledger.ids.length).toBeGreaterThan(before)
    await expectLedger(client, ledger)
    console.info(`cluster kill test: ${ledger.ids.length} transfers acknowledged; backup 2 restarted from the checkpoint at op ${loadedOp} ` +
      `and reached the cluster's checkpoint at op ${reached}`)
  })
})

/** What the client was told was created: transfer ids in order, and each account's posted sums. */
class Acknowledged {
  readonly ids: Array<bigint> = []
  readonly debits: Array<bigint>
  readonly credits: Array<bigint>
  nextId = 1n

  constructor(accounts: number) {
    this.debits = new Array<bigint>(accounts + 1).fill(0n)
    this.credits = new Array<bigint>(accounts + 1).fill(0n)
  }
}

/**
 * Requests of 1-20 transfers between random distinct accounts from `lanes` lanes, each awaiting
 * its reply before its next; after each reply, once `when` holds, `then` runs (once: the other
 * lanes' requests are in flight meanwhile), and the lanes issue `requestsAfter` more. At most
 * `requestsMax` requests in all.
 */
async function load(
  client: Client, ledger: Acknowledged, random: Prng,
  plan: { readonly lanes: number; readonly requestsMax: number; readonly when: () => boolean; readonly then: () => void; readonly requestsAfter: number }
): Promise<void> {
  let issued = 0
  let acknowledged = 0
  let stopAt = plan.requestsMax
  let triggered = false
  const lane = async () => {
    while (issued < stopAt) {
      issued++
      const batch = Array.from({ length: 1 + random.below(20) }, () => {
        const debit = 1 + random.below(accounts)
        const credit = 1 + ((debit + random.below(accounts - 1)) % accounts)
        return { ...zeroTransfer, id: ledger.nextId++, debit_account_id: BigInt(debit), credit_account_id: BigInt(credit), amount: BigInt(1 + random.below(100)), ledger: 1, code: 1 }
      })
      const results = await client.createTransfers(batch)
      expect(results.map((r) => r.status)).toEqual(batch.map(() => tb.CreateTransferStatus.created))
      for (const t of batch) {
        ledger.ids.push(t.id)
        ledger.debits[Number(t.debit_account_id)]! += t.amount
        ledger.credits[Number(t.credit_account_id)]! += t.amount
      }
      acknowledged++
      if (!triggered && plan.when()) {
        triggered = true
        stopAt = Math.min(plan.requestsMax, issued + plan.requestsAfter)
        plan.then()
      }
    }
  }
  await Promise.all(Array.from({ length: plan.lanes }, lane))
  expect(acknowledged).toBe(issued)
}

/** Every acknowledged transfer is found, and the accounts' balances are what they add up to, debits equal to credits. */
async function expectLedger(client: Client, ledger: Acknowledged): Promise<void> {
  const sorted = [...ledger.ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  for (let i = 0; i < sorted.length; i += 8000) {
    const chunk = sorted.slice(i, i + 8000)
    const found = await client.lookupTransfers(chunk)
    expect(found.map((t) => t.id)).toEqual(chunk)
  }
  const balances = await client.lookupAccounts(Array.from({ length: accounts }, (_, i) => BigInt(i + 1)))
  expect(balances.map((a) => a.debits_posted)).toEqual(ledger.debits.slice(1))
  expect(balances.map((a) => a.credits_posted)).toEqual(ledger.credits.slice(1))
  const total = (key: "debits_posted" | "credits_posted") => balances.reduce((sum, a) => sum + a[key], 0n)
  expect(total("debits_posted")).toBe(total("credits_posted"))
}

/**
 * The checkpoints a replica logged, by op: one line per checkpoint from the replica shell,
 * `replica <i>: checkpoint op=<op> id=<32 hex digits>`. Plain parsing, no assertions: it runs in
 * the output listeners too; `expectConsistent` checks the lines.
 */
function checkpointsOf(output: string, replica: number): Map<number, string> {
  const checkpoints = new Map<number, string>()
  for (const line of checkpointLines(output)) if (line.replica === replica && !checkpoints.has(line.op)) checkpoints.set(line.op, line.id)
  return checkpoints
}

function checkpointLines(output: string): Array<{ readonly replica: number; readonly op: number; readonly id: string }> {
  return [...output.matchAll(/replica (\d+): checkpoint op=(\d+) id=([0-9a-f]{32})\b/g)]
    .map((match) => ({ replica: Number(match[1]), op: Number(match[2]), id: match[3]! }))
}

/** A replica logs its own checkpoints only, and the same op twice (a restart replaying past it) with the same id. */
function expectConsistent(output: string, replica: number): void {
  const checkpoints = checkpointsOf(output, replica)
  for (const line of checkpointLines(output)) expect(line).toEqual({ replica, op: line.op, id: checkpoints.get(line.op) })
}

/** `promise`, or a failure naming `what` once `ms` have passed (the official client retries forever). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`not done within ${ms} ms: ${what}`)), ms) })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

const newestOf = (checkpoints: Map<number, string>): [number, string] | undefined =>
  [...checkpoints].reduce<[number, string] | undefined>((newest, entry) => (newest === undefined || entry[0] > newest[0] ? entry : newest), undefined)
