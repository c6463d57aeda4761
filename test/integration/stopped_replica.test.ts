/**
 * A replica whose loop stops for good must not leave a live port (issue 12, defect 2). The fault
 * is real: the data file is a sparse copy on a small tmpfs with little room left, so journal
 * writes into the file's holes fail with ENOSPC while a client loads it (the situation of a data
 * file formatted sparse before format reserved its space). `scarab start` must exit with code 1
 * and one line naming the cause, its port closed; `layerEmbedded` must fail the waiting calls
 * with the defect instead of leaving them waiting forever.
 *
 * Mounting a tmpfs needs root, which CI has; without it these tests fail and say so.
 */
import { spawnSync } from "node:child_process"
import { createRequire } from "node:module"
import { connect } from "node:net"
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cause, Effect, Exit } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { layerEmbedded } from "../../src/client/layer_embedded.ts"
import { Ledger } from "../../src/client/ledger_service.ts"
import { format, type RunningReplica, startReplica } from "./replica_process.ts"

const require = createRequire(import.meta.url)
type TigerBeetle = typeof import("tigerbeetle-node")
const tb: TigerBeetle = require("tigerbeetle-node")

/** Room left beyond what the sparse copy already takes: a few dozen journal writes. */
const roomBytes = 2 * 1024 * 1024

let cleanups: Array<() => void> = []
afterEach(() => {
  for (const cleanup of cleanups.reverse()) cleanup()
  cleanups = []
})

/** A formatted test-profile data file, copied sparse onto a tmpfs with `roomBytes` to spare. */
function dataFileOnSmallDisk(): string {
  const source = mkdtempSync(join(tmpdir(), "scarab-stopped-"))
  cleanups.push(() => rmSync(source, { recursive: true, force: true }))
  format(join(source, "0_0.scarab"))
  const mountPoint = mkdtempSync(join(tmpdir(), "scarab-small-disk-"))
  const sparse = join(source, "sparse.scarab")
  const copy = spawnSync("cp", ["--sparse=always", join(source, "0_0.scarab"), sparse])
  expect(copy.status, String(copy.stderr)).toBe(0)
  const allocated = statSync(sparse).blocks * 512
  const mount = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${allocated + roomBytes}`, "tmpfs", mountPoint])
  if (mount.status !== 0) throw new Error(`this test mounts a small tmpfs and needs root: ${String(mount.stderr)}`)
  cleanups.push(() => {
    spawnSync("umount", ["-l", mountPoint])
    rmSync(mountPoint, { recursive: true, force: true })
  })
  const path = join(mountPoint, "0_0.scarab")
  const onDisk = spawnSync("cp", ["--sparse=always", sparse, path])
  expect(onDisk.status, String(onDisk.stderr)).toBe(0)
  return path
}

const transfers = (first: number, count: number) => Array.from({ length: count }, (_, i) => ({
  id: BigInt(first + i), debit_account_id: 1n, credit_account_id: 2n, amount: 1n, pending_id: 0n, user_data_128: 0n, user_data_64: 0n,
  user_data_32: 0, timeout: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n
}))
const accounts = [1n, 2n].map((id) => ({
  id, debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n, user_data_128: 0n, user_data_64: 0n,
  user_data_32: 0, reserved: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n
}))

describe("a replica that stops for good", () => {
  it("scarab start exits with code 1 and one line when the disk is full, and its port closes", async () => {
    const path = dataFileOnSmallDisk()
    const replica: RunningReplica = await startReplica(path)
    cleanups.push(() => void replica.kill())
    const exited = replica.closed
    const client = tb.createClient({ cluster_id: 0n, replica_addresses: [String(replica.port)] })
    cleanups.push(() => client.destroy())
    // Load until the replica stops: every batch goes to the journal, and the journal soon finds
    // no room. A call still waiting when it stops is abandoned with the client.
    let stopped = false
    void exited.then(() => (stopped = true))
    await client.createAccounts(accounts)
    for (let batch = 0; batch < 10_000 && !stopped; batch++) {
      await Promise.race([client.createTransfers(transfers(1 + batch * 1000, 1000)), exited])
    }
    const code = await exited
    expect(code, replica.output()).toBe(1)
    // The last line on stderr: info lines go to stdout, a pipe of its own, and may arrive after it.
    const lines = replica.errors().trim().split("\n")
    expect(lines.at(-1), replica.output()).toMatch(/^scarab: the replica stopped: .*no space left on the device/)
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(replica.port, "127.0.0.1")
      socket.once("connect", () => { socket.destroy(); resolve("connected") })
      socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"))
    })
    expect(refused).toBe("ECONNREFUSED")
  })

  it("layerEmbedded fails the waiting and later calls with the defect when the disk is full", async () => {
    const path = dataFileOnSmallDisk()
    const exit = await Effect.runPromiseExit(Effect.gen(function* () {
      const ledger = yield* Ledger
      yield* ledger.createAccounts([{ id: 1n, ledger: 1, code: 1 }, { id: 2n, ledger: 1, code: 1 }])
      // Bounded: the room runs out within a few dozen batches.
      for (let batch = 0; batch < 10_000; batch++) {
        yield* ledger.createTransfers(transfers(1 + batch * 1000, 1000).map(({ id }) => ({ id, debit_account_id: 1n, credit_account_id: 2n, amount: 1n, ledger: 1, code: 1 })))
      }
    }).pipe(Effect.provide(layerEmbedded({ path }))))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) {
      expect(Cause.hasDies(exit.cause), Cause.pretty(exit.cause)).toBe(true)
      expect(Cause.pretty(exit.cause)).toMatch(/no space left on the device/)
    }
  })
})
