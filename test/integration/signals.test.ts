/**
 * Stopping a replica (issue 19, "Signals"): SIGTERM and SIGINT stop `scarab start` cleanly — one
 * log line, exit 0 — and what it acknowledged before is there after a restart. `npm start` runs the
 * replica in place of its shell (`exec`), so npm's signal reaches the replica instead of leaving
 * it running as an orphan that holds the port and the file's lock.
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { afterEach, describe, expect, it } from "vitest"
import { format, type DataDirectory, type RunningReplica, startReplica, temporaryDataFile } from "./replica_process.ts"
import { zeroAccount } from "./tb_records.ts"

const require = createRequire(import.meta.url)
const tb: typeof import("tigerbeetle-node") = require("tigerbeetle-node")

let data: DataDirectory | undefined
let replica: RunningReplica | undefined

afterEach(async () => {
  await replica?.kill()
  replica = undefined
  data?.remove()
  data = undefined
})

describe("signals", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`${signal} stops a replica cleanly: a log line, exit 0, and every acknowledged account there after a restart`, async () => {
      data = temporaryDataFile()
      format(data.path)
      replica = await startReplica(data.path)
      const client = tb.createClient({ cluster_id: 0n, replica_addresses: [String(replica.port)] })
      try {
        const created = await client.createAccounts([{ ...zeroAccount, id: 7n, ledger: 1, code: 1 }])
        expect(created.map((result) => result.status)).toEqual([tb.CreateAccountStatus.created])
      } finally {
        client.destroy()
      }
      replica.process.kill(signal)
      expect(await replica.closed).toBe(0)
      expect(replica.output()).toMatch(/replica 0: stopping on a signal at commit op \d+: closing its port/)
      replica = await startReplica(data.path)
      const again = tb.createClient({ cluster_id: 0n, replica_addresses: [String(replica.port)] })
      try {
        expect((await again.lookupAccounts([7n])).map((account) => account.id)).toEqual([7n])
      } finally {
        again.destroy()
      }
    })
  }

  it("npm start runs the replica in place of its shell, so npm's signal reaches it", () => {
    const scripts = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).scripts
    expect(scripts.start).toMatch(/(^| )exec node src\/cli\/main\.ts start /)
  })
})
