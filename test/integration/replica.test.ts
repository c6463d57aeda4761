/**
 * A Scarab replica process driven through TigerBeetle's official Node client
 * (`tigerbeetle-node@0.17.9`, unmodified) and through raw sockets: every operation and result
 * family end to end, concurrent calls merged into multi-batch requests, more clients than
 * `clients_max` (eviction of the least recently committed session), a client whose replica dies
 * and comes back mid-request (exactly-once), and a retried request answered byte for byte with
 * the stored reply; then the session rules on raw sockets (retries, drops, evictions by reason).
 * Last, a small `scarab benchmark` run: it prints its figures and cleans up.
 */
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { connect, type Socket } from "node:net"
import { dirname } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { buildMessage, u128FromBytes } from "../../src/protocol/build.ts"
import { Command, EvictionReason, releaseScarab, zeroHeader } from "../../src/protocol/header.ts"
import { encodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { Operation } from "../../src/protocol/operation.ts"
import { registerRequestBody } from "../../src/protocol/register.ts"
import { childRunMs, format, type DataDirectory, type RunningReplica, startReplica, temporaryDataFile } from "./replica_process.ts"

const require = createRequire(import.meta.url)
type TigerBeetle = typeof import("tigerbeetle-node")
type Client = import("tigerbeetle-node").Client
const tb: TigerBeetle = require("tigerbeetle-node")
const root = new URL("../../", import.meta.url).pathname

let replica: RunningReplica | undefined
let data: DataDirectory | undefined
const clients: Array<Client> = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy()
  await replica?.kill()
  replica = undefined
  data?.remove()
  data = undefined
})

async function freshReplica(cluster = 0n, flags: ReadonlyArray<string> = []): Promise<RunningReplica> {
  data = temporaryDataFile()
  format(data.path, cluster)
  replica = await startReplica(data.path, 0, flags)
  return replica
}

function client(port: number): Client {
  const created = tb.createClient({ cluster_id: 0n, replica_addresses: [String(port)] })
  clients.push(created)
  return created
}

const ok = tb.CreateAccountStatus.created
const okTransfer = tb.CreateTransferStatus.created

describe("a Scarab replica through tigerbeetle-node@0.17.9", () => {
  it("answers every operation with the ledger's results, every result family at least once", async () => {
    const c = client((await freshReplica()).port)
    // create_accounts: created, exists, a linked chain that fails as a whole, invalid fields.
    const created = await c.createAccounts([
      account(1n, { flags: tb.AccountFlags.history }),
      account(2n, { flags: tb.AccountFlags.history }),
      account(3n, { flags: tb.AccountFlags.debits_must_not_exceed_credits }),
      account(4n, { flags: tb.AccountFlags.linked }),
      account(5n, { ledger: 0 }),
      account(0n),
      account(6n, { code: 0 })
    ])
    expect(created.map((r) => r.status)).toEqual([
      ok, ok, ok, tb.CreateAccountStatus.linked_event_failed, tb.CreateAccountStatus.ledger_must_not_be_zero,
      tb.CreateAccountStatus.id_must_not_be_zero, tb.CreateAccountStatus.code_must_not_be_zero
    ])
    expect(created[0]!.timestamp).toBeGreaterThan(0n)
    expect(created[1]!.timestamp).toBe(created[0]!.timestamp + 1n)
    const again = await c.createAccounts([account(1n, { flags: tb.AccountFlags.history }), account(2n, { code: 9 })])
    expect(again.map((r) => r.status)).toEqual([tb.CreateAccountStatus.exists, tb.CreateAccountStatus.exists_with_different_flags])
    expect(again[0]!.timestamp).toBe(created[0]!.timestamp)

    // create_transfers: posted, pending then post and void, balance limits, missing accounts, duplicates.
    const transfers = await c.createTransfers([
      transfer(100n, 1n, 2n, 50n),
      transfer(101n, 1n, 2n, 30n, { flags: tb.TransferFlags.pending, timeout: 3600 }),
      transfer(102n, 1n, 2n, 20n, { flags: tb.TransferFlags.pending }),
      transfer(103n, 0n, 0n, 0n, { flags: tb.TransferFlags.post_pending_transfer, pending_id: 101n, amount: tb.amount_max }),
      transfer(104n, 0n, 0n, 0n, { flags: tb.TransferFlags.void_pending_transfer, pending_id: 102n }),
      transfer(105n, 3n, 2n, 1n),
      transfer(106n, 77n, 2n, 1n),
      transfer(107n, 1n, 1n, 1n),
      transfer(100n, 1n, 2n, 50n)
    ])
    expect(transfers.map((r) => r.status)).toEqual([
      okTransfer, okTransfer, okTransfer, okTransfer, okTransfer, tb.CreateTransferStatus.exceeds_credits,
      tb.CreateTransferStatus.debit_account_not_found, tb.CreateTransferStatus.accounts_must_be_different, tb.CreateTransferStatus.exists
    ])
    const replay = await c.createTransfers([transfer(104n, 0n, 0n, 0n, { flags: tb.TransferFlags.void_pending_transfer, pending_id: 102n })])
    expect(replay[0]!.status).toBe(tb.CreateTransferStatus.exists)
    const voidedAgain = await c.createTransfers([transfer(108n, 0n, 0n, 0n, { flags: tb.TransferFlags.void_pending_transfer, pending_id: 102n })])
    expect(voidedAgain[0]!.status).toBe(tb.CreateTransferStatus.pending_transfer_already_voided)

    // lookup_accounts and lookup_transfers: found in request order, missing ids left out.
    const [one, two, missing] = [...await c.lookupAccounts([1n, 2n, 999n]), undefined]
    expect(missing).toBeUndefined()
    expect(one).toMatchObject({ id: 1n, debits_posted: 80n, debits_pending: 0n, credits_posted: 0n, timestamp: created[0]!.timestamp })
    expect(two).toMatchObject({ id: 2n, credits_posted: 80n, credits_pending: 0n, debits_posted: 0n })
    const found = await c.lookupTransfers([103n, 999n, 100n])
    expect(found.map((t) => [t.id, t.amount])).toEqual([[103n, 30n], [100n, 50n]])

    // get_account_transfers and get_account_balances (history), both directions.
    const history = await c.getAccountTransfers(accountFilter(1n, tb.AccountFilterFlags.debits | tb.AccountFilterFlags.credits))
    expect(history.map((t) => t.id)).toEqual([100n, 101n, 102n, 103n, 104n])
    const reversed = await c.getAccountTransfers(accountFilter(1n, tb.AccountFilterFlags.debits | tb.AccountFilterFlags.reversed, 2))
    expect(reversed.map((t) => t.id)).toEqual([104n, 103n])
    const balances = await c.getAccountBalances(accountFilter(2n, tb.AccountFilterFlags.credits))
    expect(balances.map((b) => [b.credits_posted, b.credits_pending])).toEqual([[50n, 0n], [50n, 30n], [50n, 50n], [80n, 20n], [80n, 0n]])
    expect(await c.getAccountBalances(accountFilter(3n, tb.AccountFilterFlags.credits))).toEqual([])

    // query_accounts and query_transfers.
    const byCode = await c.queryAccounts(queryFilter({ ledger: 1, code: 1 }))
    expect(byCode.map((a) => a.id)).toEqual([1n, 2n, 3n])
    const lastTwo = await c.queryTransfers(queryFilter({ ledger: 1, limit: 2, flags: tb.QueryFilterFlags.reversed }))
    expect(lastTwo.map((t) => t.id)).toEqual([104n, 103n])
    expect(await c.queryTransfers(queryFilter({ ledger: 2 }))).toEqual([])
  })

  it("gives each of many concurrent calls, merged into multi-batch requests, its own results", async () => {
    const c = client((await freshReplica()).port)
    const calls = 40
    // Call i creates accounts i*10+1.. i*10+3; every third call also sends id 0 and a duplicate of
    // its first account, so each call's results differ and a mix-up between batches would show.
    const results = await Promise.all(Array.from({ length: calls }, (_, i) => {
      const ids = [1n, 2n, 3n].map((k) => BigInt(i * 10) + k)
      const batch = ids.map((id) => account(id, { user_data_32: i }))
      if (i % 3 === 0) batch.push(account(0n), account(ids[0]!, { user_data_32: i }))
      return c.createAccounts(batch)
    }))
    results.forEach((result, i) => {
      const expected = i % 3 === 0 ? [ok, ok, ok, tb.CreateAccountStatus.id_must_not_be_zero, tb.CreateAccountStatus.exists] : [ok, ok, ok]
      expect(result.map((r) => r.status), `call ${i}`).toEqual(expected)
      expect(result[1]!.timestamp).toBe(result[0]!.timestamp + 1n)
    })
    // Distinct timestamps across calls: every batch executed once, in its own slot of cluster time.
    const stamps = new Set(results.flatMap((result) => result.slice(0, 3).map((r) => r.timestamp)))
    expect(stamps.size).toBe(calls * 3)
    // Concurrent reads, likewise merged: each call sees exactly its own accounts.
    const lookups = await Promise.all(Array.from({ length: calls }, (_, i) => c.lookupAccounts([BigInt(i * 10) + 3n, 9999n, BigInt(i * 10) + 1n])))
    lookups.forEach((found, i) => {
      expect(found.map((a) => [a.id, a.user_data_32]), `lookup ${i}`).toEqual([[BigInt(i * 10) + 3n, i], [BigInt(i * 10) + 1n, i]])
    })
    const sum = await Promise.all(Array.from({ length: 10 }, (_, i) => c.createTransfers([transfer(BigInt(1000 + i), 1n, 2n, BigInt(i + 1))])))
    expect(sum.map((r) => r[0]!.status)).toEqual(Array(10).fill(okTransfer))
    const [debit] = await c.lookupAccounts([1n])
    expect(debit!.debits_posted).toBe(55n)
    // The calls really were merged: 91 calls committed in far fewer ops (the restart's replay
    // count is the number of ops: register, then one per request).
    await replica!.kill("SIGKILL")
    replica = await startReplica(data!.path, replica!.port)
    const ops = Number(/replayed (\d+) ops/.exec(replica.output())?.[1])
    expect(ops).toBeGreaterThanOrEqual(1 + 3 + 1)
    expect(ops).toBeLessThan(20)
  })

  it("evicts the least recently committed session when a 65th client registers", async () => {
    // Room for 100 accounts, so that the victim can have a call in flight that is never answered.
    const { port } = await freshReplica(0n, ["--accounts-max=100"])
    // In a child process: an evicted 0.17.9 client must not be destroyed (wire-protocol.md §9.9),
    // and one that is never destroyed keeps its thread alive, so the child exits explicitly.
    //
    // The victim has a call in flight from before its eviction until after it: a create of 100
    // accounts, beyond the capacity, which the replica drops and the client retries. An evicted
    // client fails its call in flight with ERR_CLIENT_EVICTED and every later one with
    // ERR_CLIENT_CLOSED. An idle victim could learn of its eviction from the answer to the ping it
    // sends every 30 s and fail its next call CLOSED: whether the 64 registrations outlast a ping
    // (on a loaded machine they take about 30 s) would decide the outcome.
    const script = `
      import { createRequire } from "node:module"
      const tb = createRequire(process.cwd() + "/")("tigerbeetle-node")
      const make = () => tb.createClient({ cluster_id: 0n, replica_addresses: [${JSON.stringify(String(port))}] })
      const account = (id) => ({ id, debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n,
        user_data_128: 0n, user_data_64: 0n, user_data_32: 0, reserved: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n })
      const report = {}
      const victim = make()
      report.victimFirst = (await victim.createAccounts([account(1n)])).map((r) => r.status)
      const inFlight = victim.createAccounts(Array.from({ length: 100 }, (_, i) => account(BigInt(1000 + i)))).then(() => "ok", (e) => e.code)
      const others = Array.from({ length: 64 }, make)
      const results = await Promise.allSettled(others.map((c, i) => c.createAccounts([account(BigInt(100 + i))])))
      report.othersCreated = results.filter((r) => r.status === "fulfilled" && r.value[0].status === tb.CreateAccountStatus.created).length
      report.othersFailed = results.filter((r) => r.status === "rejected").map((r) => String(r.reason?.code ?? r.reason))
      report.victimAfter = await inFlight
      report.victimLater = await victim.lookupAccounts([1n]).then(() => "ok", (e) => e.code)
      report.survivor = (await others[0].lookupAccounts([1n, 163n])).map((a) => a.id.toString())
      for (const c of others) c.destroy()
      console.log("REPORT " + JSON.stringify(report))
      process.exit(0)
    `
    const result = await runChild(script, childRunMs)
    const line = result.output.split("\n").find((l) => l.startsWith("REPORT "))
    expect(line, `${result.output}\n--- replica ---\n${replica?.output()}`).toBeDefined()
    const report = JSON.parse(line!.slice("REPORT ".length))
    expect(report).toEqual({
      victimFirst: [ok],
      othersCreated: 64,
      othersFailed: [],
      victimAfter: "ERR_CLIENT_EVICTED",
      victimLater: "ERR_CLIENT_CLOSED",
      survivor: ["1", "163"]
    })
    expect(result.code).toBe(0)
  })

  it("completes a request across a replica crash and restart, executing it exactly once", async () => {
    const { port } = await freshReplica()
    const c = client(port)
    expect((await c.createAccounts([account(1n), account(2n)])).map((r) => r.status)).toEqual([ok, ok])
    let expectedAmount = 0n
    let nextId = 10_000n
    let opsBefore = 2 // register, create_accounts
    const outcomes: Array<string> = []
    // The kill lands at different points of the request's life: before it arrives, while its
    // prepare is written, after the reply. Each outcome must look the same to the application.
    for (const delayMs of [0, 5, 15, 40]) {
      const batch = Array.from({ length: 2000 }, (_, i) => transfer(nextId + BigInt(i), 1n, 2n, BigInt(i % 7 + 1)))
      nextId += 10_000n
      const pending = c.createTransfers(batch)
      await sleep(delayMs)
      await replica!.kill("SIGKILL")
      replica = await startReplica(data!.path, port)
      const replayed = Number(/replayed (\d+) ops/.exec(replica.output())?.[1] ?? 0)
      expect([opsBefore, opsBefore + 1]).toContain(replayed)
      outcomes.push(replayed === opsBefore ? `${delayMs} ms: lost, re-executed` : `${delayMs} ms: journaled, stored reply`)
      const results = await pending
      expect(results.map((r) => r.status), `kill after ${delayMs} ms`).toEqual(batch.map(() => okTransfer))
      expectedAmount += batch.reduce((sum, t) => sum + t.amount, 0n)
      const found = await c.lookupTransfers(batch.map((t) => t.id))
      expect(found.map((t) => t.id)).toEqual(batch.map((t) => t.id))
      const [debit, credit] = await c.lookupAccounts([1n, 2n])
      expect([debit!.debits_posted, credit!.credits_posted], `kill after ${delayMs} ms`).toEqual([expectedAmount, expectedAmount])
      opsBefore += 3 // create_transfers, lookup_transfers, lookup_accounts
    }
    // Every transfer id appears exactly once in the account's history.
    const history = await c.getAccountTransfers(accountFilter(1n, tb.AccountFilterFlags.debits, 8189))
    expect(history).toHaveLength(8000)
    expect(new Set(history.map((t) => t.id)).size).toBe(8000)
    console.info(`crash outcomes: ${outcomes.join("; ")}`)
  })

  it("answers a retried register with the stored reply, byte for byte, on the same and on a new connection", async () => {
    // The captured session's register request names cluster 0x0f0e…00 (test/vectors/README.md).
    const { port } = await freshReplica(0x0f0e0d0c0b0a09080706050403020100n)
    const register = new Uint8Array(readFileSync(new URL("../vectors/session/01_c2s_request_register.bin", import.meta.url)))
    const socket = await openSocket(port)
    try {
      const first = await exchange(socket, register)
      const second = await exchange(socket, register)
      expect(first[114]).toBe(8) // reply
      expect(Buffer.from(first.subarray(128, 144))).toEqual(Buffer.from(register.subarray(0, 16))) // request_checksum
      expect(first.readBigUInt64LE(216)).toBeGreaterThan(0n) // commit = session number
      expect(Buffer.compare(first, second)).toBe(0)
      const other = await openSocket(port)
      try {
        expect(Buffer.compare(first, await exchange(other, register))).toBe(0)
      } finally {
        other.destroy()
      }
    } finally {
      socket.destroy()
    }
  })
})

describe("client session rules on the wire (wire-protocol.md §9.3, §9.4, §12.2)", () => {
  it("answers a retry with the stored reply and drops or evicts every request that breaks the session rules", async () => {
    const { port } = await freshReplica()
    const socket = await openSocket(port)
    try {
      // Another client registers first so that X's session number (its register's op) is 2.
      const other = await exchange(socket, rawRequest({ client: 99n, operation: 2, session: 0n, request: 0, body: registerRequestBody() }))
      expect(other.readBigUInt64LE(216)).toBe(1n)
      const client = 0x1234_5678_9abc_def0_1122_3344_5566_7788n
      const registered = await exchange(socket, rawRequest({ client, operation: 2, session: 0n, request: 0, body: registerRequestBody() }))
      const session = registered.readBigUInt64LE(216)
      expect(session).toBe(2n)
      const context = (reply: Buffer) => reply.subarray(160, 176)
      const create = (id: number, fields: Partial<RawRequest> = {}) => rawRequest({
        client, operation: Operation.create_accounts, session, request: 1, parent: context(registered),
        body: encodeMultiBatch([accountBytes(id)], 128), ...fields
      })
      const first = await exchange(socket, create(1))
      expect(first[114]).toBe(Command.reply)
      expect(first.readUInt32LE(256 + 8)).toBe(tb.CreateAccountStatus.created)
      // The identical request again: the stored reply, byte for byte, not a second execution.
      expect(Buffer.compare(await exchange(socket, create(1)), first)).toBe(0)
      // Same number, different request: dropped. A wrong parent, a newer session: dropped.
      await expectSilence(socket, create(2))
      const next = (fields: Partial<RawRequest> = {}) => rawRequest({
        client, operation: Operation.lookup_accounts, session, request: 2, parent: context(first),
        body: encodeMultiBatch([idBytes([1, 2])], 16), ...fields
      })
      await expectSilence(socket, next({ parent: new Uint8Array(16).fill(7) }))
      await expectSilence(socket, next({ request: 3 }))
      await expectSilence(socket, next({ session: session + 1n }))
      // An older session or another release than the session's: evicted with the reason (§12.2 item 10).
      const old = await exchange(socket, next({ session: 1n }))
      expect([old[114], old[255]]).toEqual([Command.eviction, EvictionReason.session_too_low])
      const release = await exchange(socket, next({ release: releaseScarab - 1 }))
      expect([release[114], release[255]]).toEqual([Command.eviction, EvictionReason.session_release_mismatch])
      // The session itself is intact: the correct next request is answered, and only account 1 exists.
      const lookup = await exchange(socket, next())
      expect([lookup[114], lookup.length]).toEqual([Command.reply, 256 + 128 + 128]) // one account and the trailer's row
      expect(lookup.readUInt32LE(256)).toBe(1)
    } finally {
      socket.destroy()
    }
  })
})

describe("client replies across checkpoints and restarts (raw sockets)", () => {
  it("answers a retry, after a restart, of a request committed before the last checkpoint with its stored reply, byte for byte", async () => {
    const { port } = await freshReplica()
    let socket = await openSocket(port)
    const client = 0x77n
    const registered = await exchange(socket, rawRequest({ client, operation: 2, session: 0n, request: 0, body: registerRequestBody() }))
    const session = registered.readBigUInt64LE(216)
    // X: a create with a body-bearing reply, then another client drives the replica past two
    // checkpoints (every 32 ops on the test profile), so that X's op lies inside a checkpoint
    // and not in the WAL that a restart replays.
    const x = rawRequest({ client, operation: Operation.create_accounts, session, request: 1, parent: registered.subarray(160, 176),
      body: encodeMultiBatch([accountBytes(1), accountBytes(2)], 128) })
    const reply = await exchange(socket, x)
    const xOp = reply.readBigUInt64LE(208)
    const other = 0x88n
    const otherRegistered = await exchange(socket, rawRequest({ client: other, operation: 2, session: 0n, request: 0, body: registerRequestBody() }))
    let parent = otherRegistered.subarray(160, 176)
    for (let request = 1; request <= 70; request++) {
      const answer = await exchange(socket, rawRequest({ client: other, operation: Operation.lookup_accounts, session: otherRegistered.readBigUInt64LE(216),
        request, parent, body: encodeMultiBatch([idBytes([1])], 16) }))
      parent = answer.subarray(160, 176)
    }
    socket.destroy()
    await replica!.kill("SIGKILL")
    replica = await startReplica(data!.path, port)
    const checkpoint = Number(/loaded the checkpoint at op (\d+)/.exec(replica.output())?.[1])
    expect(checkpoint).toBeGreaterThan(Number(xOp))
    socket = await openSocket(port)
    try {
      expect(Buffer.compare(await exchange(socket, x), reply)).toBe(0)
    } finally {
      socket.destroy()
    }
  })
})

describe("a client that reconnects mid-request (raw sockets)", () => {
  it("gets its reply on the new connection, and the request executes once", async () => {
    const { port } = await freshReplica()
    const client = 0xabcdefn
    const first = await openSocket(port)
    const registered = await exchange(first, rawRequest({ client, operation: 2, session: 0n, request: 0, body: registerRequestBody() }))
    const session = registered.readBigUInt64LE(216)
    const create = rawRequest({
      client, operation: Operation.create_accounts, session, request: 1, parent: registered.subarray(160, 176),
      body: encodeMultiBatch([accountBytes(1), accountBytes(2)], 128)
    })
    // The request goes out and its connection dies at once; the retry comes on a new connection.
    first.write(create)
    first.destroy()
    const second = await openSocket(port)
    try {
      const reply = await exchange(second, create)
      expect(reply[114]).toBe(Command.reply)
      expect([reply.readUInt32LE(256 + 8), reply.readUInt32LE(256 + 16 + 8)]).toEqual([tb.CreateAccountStatus.created, tb.CreateAccountStatus.created])
      // Whichever copy executed, it executed once: a further retry gets the same bytes.
      expect(Buffer.compare(await exchange(second, create), reply)).toBe(0)
    } finally {
      second.destroy()
    }
  })
})

describe("scarab benchmark", () => {
  it("formats, starts a replica, loads it, queries it, checkpoints and restarts it, prints its figures and RESULT, and cleans up", async () => {
    const result = await runBenchmark(["--transfers=40000", "--accounts=1000", "--queries=5", "--restart-points=20000"])
    expect(result.code, result.stdout + result.stderr).toBe(0)
    const lines = result.stdout.trim().split("\n")
    expect(lines.some((line) => /^load accepted = \d+ tx\/s/.test(line))).toBe(true)
    for (const p of [1, 50, 99, 100]) expect(lines.some((line) => line.startsWith(`batch latency p${p} = `))).toBe(true)
    expect(result.stderr).toMatch(/transfers 40,000 \/ 40,000/)
    const last = lines.at(-1)!
    expect(last).toMatch(/^RESULT \{/)
    const figures = JSON.parse(last.slice("RESULT ".length))
    expect(figures).toMatchObject({ transfers: 40000, accounts: 1000 })
    for (const key of ["load_accepted_tps", "batch_latency_p50_ms", "batch_latency_p99_ms", "query_latency_p50_ms", "rss_bytes",
      "checkpoint_ms_20000", "restart_ms_20000", "data_file_bytes_per_transfer", "ping_latency_max_ms"]) {
      expect(figures[key], key).toBeGreaterThan(0)
    }
    // The replica child is gone and its temporary folder deleted (only its own: other benchmarks
    // may run beside this test and create or remove theirs meanwhile).
    const started = /replica 0 started: pid (\d+), port \d+, data file (\S+)/.exec(result.stderr)
    const pid = Number(started?.[1])
    expect(pid).toBeGreaterThan(0)
    expect(() => process.kill(pid, 0)).toThrow()
    expect(existsSync(dirname(started![2]!)), started![2]).toBe(false)
  })

  it("with --replica-count=3 starts a cluster of three processes, loads its primary, prints each replica's RSS and RESULT, and cleans up", async () => {
    const result = await runBenchmark(["--replica-count=3", "--transfers=40000", "--accounts=1000", "--queries=5"])
    expect(result.code, result.stdout + result.stderr).toBe(0)
    const figures = JSON.parse(result.stdout.trim().split("\n").at(-1)!.slice("RESULT ".length))
    expect(figures).toMatchObject({ transfers: 40000, accounts: 1000, replica_count: 3 })
    for (const key of ["load_accepted_tps", "batch_latency_p50_ms", "batch_latency_p99_ms"]) expect(figures[key], key).toBeGreaterThan(0)
    expect(figures.replica_rss_bytes).toHaveLength(3)
    const started = [...result.stderr.matchAll(/replica \d started: pid (\d+), port \d+, data file (\S+)/g)]
    expect(started).toHaveLength(3)
    for (const [, pid, path] of started) {
      expect(() => process.kill(Number(pid), 0)).toThrow()
      expect(existsSync(dirname(path!)), path).toBe(false)
    }
  })
})

/** Runs `scarab benchmark` with `args` in its own process group (killed whole if it takes too long). */
function runBenchmark(args: ReadonlyArray<string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [root + "src/cli/main.ts", "benchmark", ...args], { cwd: root, detached: true })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), childRunMs)
    // "close", not "exit": the output is all read by then.
    child.once("close", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

// --- helpers ---------------------------------------------------------------------------------

function account(id: bigint, fields: Partial<import("tigerbeetle-node").Account> = {}): import("tigerbeetle-node").Account {
  return {
    id, debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n, user_data_128: 0n, user_data_64: 0n,
    user_data_32: 0, reserved: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n, ...fields
  }
}

function transfer(id: bigint, debit: bigint, credit: bigint, amount: bigint, fields: Partial<import("tigerbeetle-node").Transfer> = {}): import("tigerbeetle-node").Transfer {
  return {
    id, debit_account_id: debit, credit_account_id: credit, amount, pending_id: 0n, user_data_128: 0n, user_data_64: 0n,
    user_data_32: 0, timeout: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n, ...fields
  }
}

function accountFilter(accountId: bigint, flags: number, limit = 100): import("tigerbeetle-node").AccountFilter {
  return { account_id: accountId, user_data_128: 0n, user_data_64: 0n, user_data_32: 0, code: 0, timestamp_min: 0n, timestamp_max: 0n, limit, flags }
}

function queryFilter(fields: Partial<import("tigerbeetle-node").QueryFilter>): import("tigerbeetle-node").QueryFilter {
  return { user_data_128: 0n, user_data_64: 0n, user_data_32: 0, ledger: 0, code: 0, timestamp_min: 0n, timestamp_max: 0n, limit: 100, flags: 0, ...fields }
}

interface RawRequest {
  readonly client: bigint
  readonly operation: number
  readonly session: bigint
  readonly request: number
  readonly body: Uint8Array
  readonly parent?: Uint8Array
  readonly release?: number
}

/** A request built byte by byte for cluster 0, both checksums set. */
function rawRequest(fields: RawRequest): Uint8Array {
  const header = zeroHeader(Command.request)
  header.release = fields.release ?? releaseScarab
  header.client = fields.client
  header.operation = fields.operation
  header.session = fields.session
  header.request = fields.request
  header.parent = fields.parent === undefined ? 0n : u128FromBytes(fields.parent, 0)
  return buildMessage(header, fields.body)
}

function accountBytes(id: number): Uint8Array {
  const bytes = new Uint8Array(128)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, id, true)
  view.setUint32(112, 1, true) // ledger
  view.setUint16(116, 1, true) // code
  return bytes
}

function idBytes(ids: ReadonlyArray<number>): Uint8Array {
  const bytes = new Uint8Array(16 * ids.length)
  ids.forEach((id, i) => new DataView(bytes.buffer).setUint32(16 * i, id, true))
  return bytes
}

/** Sends `message` and checks that nothing comes back for a while (a dropped request). */
async function expectSilence(socket: Socket, message: Uint8Array, ms = 300): Promise<void> {
  let received = 0
  const onData = (chunk: Buffer) => (received += chunk.length)
  socket.on("data", onData)
  socket.write(message)
  await sleep(ms)
  socket.off("data", onData)
  expect(received, "a dropped request gets no answer").toBe(0)
  expect(socket.destroyed, "and the connection stays open").toBe(false)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs an ES module script with the repository as working directory; kills it at the deadline. */
function runChild(script: string, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: root })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    // "close", not "exit": the output (its REPORT line) is all read by then.
    child.once("close", (code) => { clearTimeout(timer); resolve({ code, output }) })
  })
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => resolve(socket))
    socket.once("error", reject)
  })
}

/**
 * Writes `message` and resolves with the next whole message read (size from its header). The
 * bound is for a replica that never answers; a loaded machine may take seconds for one reply.
 */
function exchange(socket: Socket, message: Uint8Array, timeoutMs = 120_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0)
    const timer = setTimeout(() => { socket.off("data", onData); reject(new Error("no reply in time")) }, timeoutMs)
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      if (buffered.length < 256) return
      const size = buffered.readUInt32LE(96)
      if (buffered.length < size) return
      clearTimeout(timer)
      socket.off("data", onData)
      expect(buffered.length, "one reply, nothing after it").toBe(size)
      resolve(buffered)
    }
    socket.on("data", onData)
    socket.write(message)
  })
}
