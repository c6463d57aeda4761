/**
 * Issue 12, defect 4: connections that never send a valid message cannot lock clients out. A
 * replica process (default bounds: 128 connections) gets 200 silent sockets, more than it holds,
 * then `tigerbeetle-node@0.17.9` registers, creates and looks up an account: it is served at
 * once, because a newcomer at the limit closes the oldest silent connection instead of being
 * refused. 200 more silent sockets after that close only silent ones, never the client's. The
 * time the client took is printed (a `RESULT` line), not asserted: the guarantee is that the
 * client gets in without waiting for any deadline, which the exact counts of closed sockets show.
 */
import { createRequire } from "node:module"
import { connect, type Socket } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { format, type DataDirectory, type RunningReplica, startReplica, temporaryDataFile } from "./replica_process.ts"
import { zeroAccount } from "./tb_records.ts"

const require = createRequire(import.meta.url)
type TigerBeetle = typeof import("tigerbeetle-node")
const tb: TigerBeetle = require("tigerbeetle-node")

/** The replica's `connectionsMax` default (src/layers/network_tcp.ts). */
const connectionsMax = 128
const silentCount = 200
/** Liveness waits: generous, for a loaded 2-core machine; nothing here should take near this long. */
const waitMs = 120_000

let replica: RunningReplica | undefined
let data: DataDirectory | undefined
const sockets: Array<Socket> = []

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  await replica?.kill()
  replica = undefined
  data?.remove()
  data = undefined
})

/** Silent sockets, opened one after another (so the replica accepts them in this order), and how many the replica closed. */
class SilentCrowd {
  readonly closed: Array<number> = []
  private readonly waiters: Array<{ count: number; resolve: () => void }> = []

  async open(port: number, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const index = sockets.length
      const socket = await new Promise<Socket>((resolve, reject) => {
        const socket = connect({ host: "127.0.0.1", port }, () => resolve(socket))
        socket.once("error", reject)
      })
      socket.on("error", () => {})
      socket.on("close", () => this.onClose(index))
      sockets.push(socket)
    }
  }

  /** Resolves once `count` of the silent sockets have been closed by the replica. */
  closedAtLeast(count: number, what: string): Promise<void> {
    if (this.closed.length >= count) return Promise.resolve()
    return withDeadline(new Promise((resolve) => this.waiters.push({ count, resolve })), `${what}: ${this.closed.length} of ${count} closed`)
  }

  private onClose(index: number): void {
    this.closed.push(index)
    for (const waiter of this.waiters) if (this.closed.length >= waiter.count) waiter.resolve()
  }
}

describe("silent connections against a replica process", () => {
  it(`${silentCount} silent connections do not keep tigerbeetle-node out, before or after it registers`, async () => {
    data = temporaryDataFile()
    format(data.path)
    replica = await startReplica(data.path)
    const port = replica.port
    const crowd = new SilentCrowd()
    await crowd.open(port, silentCount)
    // Every connection beyond the limit has closed one: the replica has accepted all 200 and is full of silent ones.
    await crowd.closedAtLeast(silentCount - connectionsMax, "the replica accepting the silent crowd")

    const client = tb.createClient({ cluster_id: 0n, replica_addresses: [String(port)] })
    try {
      const started = performance.now()
      const account = { ...zeroAccount, id: 1n, ledger: 1, code: 1 }
      const created = await withDeadline(client.createAccounts([account]), `tigerbeetle-node served beside ${silentCount} silent connections`)
      const servedMs = performance.now() - started
      expect(created).toEqual([expect.objectContaining({ status: tb.CreateAccountStatus.created })])
      expect((await client.lookupAccounts([1n])).map((a) => a.id)).toEqual([1n])
      // The client's connection made room by closing the oldest silent one, which it could only do at once.
      await crowd.closedAtLeast(silentCount - connectionsMax + 1, "the eviction the client's connection caused")
      expect([...crowd.closed].sort((a, b) => a - b)).toEqual(Array.from({ length: silentCount - connectionsMax + 1 }, (_, i) => i))

      // Now the client has spoken: a second crowd evicts the 127 silent ones and its own oldest, never the client.
      await crowd.open(port, silentCount)
      await crowd.closedAtLeast(2 * silentCount - connectionsMax + 1, "the second crowd")
      const again = performance.now()
      expect((await withDeadline(client.lookupAccounts([1n]), "the client after the second crowd")).map((a) => a.id)).toEqual([1n])
      const againMs = performance.now() - again
      expect(crowd.closed.length).toBe(2 * silentCount - connectionsMax + 1)
      console.log(`RESULT ${JSON.stringify({ silentConnections: silentCount, firstCallMs: Math.round(servedMs), callAfterSecondCrowdMs: Math.round(againMs) })}`)
    } finally {
      client.destroy()
    }
  })
})

function withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${waitMs} ms`)), waitMs)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}
