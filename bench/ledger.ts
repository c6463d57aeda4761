/**
 * Question: how fast does the ledger execute create_transfers, in memory on one core, so that
 * consensus and disk (not the ledger) bound Scarab's throughput?
 *
 * Workload (TigerBeetle's canonical one): 10,000 accounts (then 1,000,000), transfers between
 * random pairs with amount 1, batches of 8189, built in wire format before timing. Measured path:
 * `Ledger.execute(create_transfers, batch, timestamp)` per batch, then lookup_accounts of 8189
 * random ids per batch. Prints figures and ends with `RESULT {json}`.
 *
 * Usage: npm run bench:ledger [-- --transfers=N]
 */
import { performance } from "node:perf_hooks"
import { createLedger, type Ledger } from "../src/ledger/ledger.ts"
import { accountBatch, transferBatch, xorshift } from "../src/cli/workload.ts"
import { batchEventsMax, Operation } from "../src/protocol/operation.ts"

const transfersArg = process.argv.find((arg) => arg.startsWith("--transfers="))
const transfersTotal = transfersArg === undefined ? 4_000_000 : Number(transfersArg.slice("--transfers=".length))
if (!Number.isSafeInteger(transfersTotal) || transfersTotal <= 0) {
  console.error(`--transfers must be a positive integer, got ${transfersArg}`)
  process.exit(2)
}

let clock = 1_000_000_000_000n
const next = (events: number): bigint => (clock += BigInt(events) + 1n)

function createAccounts(ledger: Ledger, count: number): void {
  for (let first = 0; first < count; first += batchEventsMax) {
    const n = Math.min(batchEventsMax, count - first)
    const reply = new Uint32Array(ledger.execute(Operation.create_accounts, accountBatch(first + 1, n), next(n)).buffer)
    for (let i = 0; i < n; i++) if (reply[i * 4 + 2] !== 0xffff_ffff) throw new Error(`account ${first + i + 1} failed: ${reply[i * 4 + 2]}`)
  }
}

function transferBatches(accounts: number, total: number, firstId: number): Array<Uint8Array> {
  const random = xorshift(42)
  const batches: Array<Uint8Array> = []
  for (let first = 0; first < total; first += batchEventsMax) {
    batches.push(transferBatch(random, accounts, firstId + first, Math.min(batchEventsMax, total - first)))
  }
  return batches
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

function runTransfers(accounts: number): { tps: number; p50: number; p99: number } {
  const ledger = createLedger({ accountsMax: accounts, transfersMax: transfersTotal })
  createAccounts(ledger, accounts)
  const batches = transferBatches(accounts, transfersTotal, 1)
  const times: Array<number> = []
  const start = performance.now()
  for (const [index, batch] of batches.entries()) {
    const t0 = performance.now()
    const reply = ledger.execute(Operation.create_transfers, batch, next(batch.length / 128))
    times.push(performance.now() - t0)
    const words = new Uint32Array(reply.buffer)
    if (words[2] !== 0xffff_ffff) throw new Error(`batch ${index}: first transfer failed with ${words[2]}`)
  }
  const seconds = (performance.now() - start) / 1000
  ledger.verify()
  times.sort((a, b) => a - b)
  const tps = transfersTotal / seconds
  console.log(`create_transfers, ${accounts.toLocaleString()} accounts: ${Math.round(tps).toLocaleString()} transfers/s, ` +
    `batch p50 ${percentile(times, 50).toFixed(2)} ms, p99 ${percentile(times, 99).toFixed(2)} ms (${batches.length} batches)`)
  if (accounts === 10_000) lookupBenchmark(ledger, accounts)
  return { tps, p50: percentile(times, 50), p99: percentile(times, 99) }
}

let lookupsPerSecond = 0
function lookupBenchmark(ledger: Ledger, accounts: number): void {
  const random = xorshift(7)
  const batches = Array.from({ length: 400 }, () => {
    const ids = new Uint8Array(batchEventsMax * 16)
    const view = new DataView(ids.buffer)
    for (let i = 0; i < batchEventsMax; i++) view.setUint32(i * 16, 1 + Math.floor(random() * accounts), true)
    return ids
  })
  for (const ids of batches.slice(0, 20)) ledger.execute(Operation.lookup_accounts, ids, clock) // warm-up
  const start = performance.now()
  for (const ids of batches) {
    const reply = ledger.execute(Operation.lookup_accounts, ids, clock)
    if (reply.length !== batchEventsMax * 128) throw new Error("lookup missed an account")
  }
  lookupsPerSecond = (batches.length * batchEventsMax) / ((performance.now() - start) / 1000)
  console.log(`lookup_accounts: ${Math.round(lookupsPerSecond).toLocaleString()} accounts/s`)
}

console.log(`ledger benchmark: ${transfersTotal.toLocaleString()} transfers per run, batches of ${batchEventsMax}, one core`)
const small = runTransfers(10_000)
const large = runTransfers(1_000_000)
console.log("RESULT " + JSON.stringify({
  transfers: transfersTotal,
  create_transfers_10k_accounts_tps: Math.round(small.tps),
  create_transfers_1m_accounts_tps: Math.round(large.tps),
  batch_p50_ms: Number(small.p50.toFixed(3)),
  batch_p99_ms: Number(small.p99.toFixed(3)),
  batch_1m_accounts_p50_ms: Number(large.p50.toFixed(3)),
  batch_1m_accounts_p99_ms: Number(large.p99.toFixed(3)),
  lookup_accounts_per_s: Math.round(lookupsPerSecond)
}))
