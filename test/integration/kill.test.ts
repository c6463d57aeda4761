/**
 * The real-process crash test (issue 5): `scarab start` as a child process on a test-profile
 * data file (a checkpoint every 32 ops), driven by the official `tigerbeetle-node@0.17.9` client
 * with several requests in flight, killed with SIGKILL at random moments over several rounds and
 * restarted each time. The client retries across the restarts, so every transfer it was told was
 * created, and every one still in flight, must end up in the ledger exactly once, with the
 * balances they add up to, and the double-entry totals must balance. The rounds cross many
 * checkpoints, so restarts load a checkpoint and replay the WAL after it.
 */
import { createRequire } from "node:module"
import { afterEach, describe, expect, it } from "vitest"
import { Prng } from "../../src/prng.ts"
import { format, type DataDirectory, type RunningReplica, startReplica, temporaryDataFile } from "./replica_process.ts"

const require = createRequire(import.meta.url)
const tb: typeof import("tigerbeetle-node") = require("tigerbeetle-node")
type Client = import("tigerbeetle-node").Client

const accounts = 16
const roundsMin = 6
/** A bound for a replica that never checkpoints; about six rounds reach the checkpoints below. */
const roundsMax = 30
const requestsPerRound = 45
/** Checkpoints (ops 31, 63, 95, …) the restarts must have loaded: the rounds go on until they have. */
const checkpointsLoadedMin = 3
const checkpointOpMin = 95

let replica: RunningReplica | undefined
let data: DataDirectory | undefined
let client: Client | undefined

afterEach(async () => {
  client?.destroy()
  client = undefined
  await replica?.kill()
  replica = undefined
  data?.remove()
  data = undefined
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("SIGKILL at random moments", () => {
  it("keeps every acknowledged transfer and balance across kills and restarts, over many checkpoints", async () => {
    data = temporaryDataFile()
    format(data.path)
    replica = await startReplica(data.path)
    const port = replica.port
    client = tb.createClient({ cluster_id: 0n, replica_addresses: [String(port)] })
    const c = client
    const created = await c.createAccounts(Array.from({ length: accounts }, (_, i) => ({
      id: BigInt(i + 1), debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n, user_data_128: 0n,
      user_data_64: 0n, user_data_32: 0, reserved: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n
    })))
    expect(created.every((r) => r.status === tb.CreateAccountStatus.created)).toBe(true)

    const random = new Prng(20261203)
    const debits = new Array<bigint>(accounts + 1).fill(0n)
    const credits = new Array<bigint>(accounts + 1).fill(0n)
    const ids: Array<bigint> = []
    let nextId = 1n
    const checkpointsLoaded: Array<number> = []
    // How many ops a round commits depends on how many of its requests the client merges, which
    // depends on timing: so the rounds are counted by the checkpoints they reach, not fixed.
    const checkpointsReached = () => new Set(checkpointsLoaded.filter((op) => op > 0)).size >= checkpointsLoadedMin &&
      Math.max(...checkpointsLoaded) >= checkpointOpMin
    let rounds = 0
    for (; rounds < roundsMax && (rounds < roundsMin || !checkpointsReached()); rounds++) {
      // A stream of requests, three in flight at a time, killed at a random moment.
      let issued = 0
      const stream = (async () => {
        const lanes = Array.from({ length: 3 }, async () => {
          while (issued < requestsPerRound) {
            issued++
            const batch = Array.from({ length: 1 + random.below(20) }, () => {
              const debit = 1 + random.below(accounts)
              const credit = 1 + ((debit + random.below(accounts - 1)) % accounts)
              return {
                id: nextId++, debit_account_id: BigInt(debit), credit_account_id: BigInt(credit), amount: BigInt(1 + random.below(100)),
                pending_id: 0n, user_data_128: 0n, user_data_64: 0n, user_data_32: 0, timeout: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n
              }
            })
            const results = await c.createTransfers(batch)
            expect(results.map((r) => r.status)).toEqual(batch.map(() => tb.CreateTransferStatus.created))
            for (const t of batch) {
              ids.push(t.id)
              debits[Number(t.debit_account_id)]! += t.amount
              credits[Number(t.credit_account_id)]! += t.amount
            }
          }
        })
        await Promise.all(lanes)
      })()
      await sleep(30 + random.below(400))
      await replica.kill("SIGKILL")
      replica = await startReplica(data.path, port)
      const loaded = /loaded the checkpoint at op (\d+)/.exec(replica.output())
      checkpointsLoaded.push(loaded === null ? 0 : Number(loaded[1]))
      await stream // the client retries what was in flight; the restarted replica answers it once
    }
    expect(ids.length).toBeGreaterThan(rounds * requestsPerRound)
    // Restarts loaded checkpoints (ops 31, 63, …) and replayed the WAL after them.
    expect(Math.max(...checkpointsLoaded)).toBeGreaterThanOrEqual(checkpointOpMin)
    expect(new Set(checkpointsLoaded.filter((op) => op > 0)).size).toBeGreaterThanOrEqual(checkpointsLoadedMin)

    // One more kill with nothing in flight, then everything is checked against what was acknowledged.
    await replica.kill("SIGKILL")
    replica = await startReplica(data.path, port)
    for (let i = 0; i < ids.length; i += 8000) {
      const chunk = ids.slice(i, i + 8000)
      const found = await c.lookupTransfers(chunk)
      expect(found.map((t) => t.id)).toEqual(chunk)
    }
    const balances = await c.lookupAccounts(Array.from({ length: accounts }, (_, i) => BigInt(i + 1)))
    expect(balances.map((a) => a.debits_posted)).toEqual(debits.slice(1))
    expect(balances.map((a) => a.credits_posted)).toEqual(credits.slice(1))
    const total = (key: "debits_posted" | "credits_posted") => balances.reduce((sum, a) => sum + a[key], 0n)
    expect(total("debits_posted")).toBe(total("credits_posted"))
    console.info(`kill test: ${ids.length} transfers in ${rounds} rounds; checkpoints loaded at restarts: ${checkpointsLoaded.join(", ")}`)
  })
})
