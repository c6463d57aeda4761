/**
 * layerClient over real TCP:
 * - the whole conformance suite, each test against a fresh replica in this process (the replica
 *   `scarab start` runs, on a temporary test-profile file, behind the TCP MessageBus on port 0),
 *   with TestClock as time, so the expiry test advances time instead of sleeping;
 * - the whole conformance suite again against one `scarab start` child process shared by all its
 *   tests (live clock, real sleeps): each test, and each property run, gets a namespace of its
 *   own on that replica (namespaced.ts) and its own client session;
 * - what only a process shows: auto-batching counted on the wire, and a call surviving a
 *   replica restart (a process per test).
 */
import { type AddressInfo, createServer, type Server } from "node:net"
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { MessageBus } from "../../src/actors/message_bus.ts"
import { layerReplica } from "../../src/actors/replica.ts"
import { makeClientSession } from "../../src/client/layer_client.ts"
import { RequestDeadline } from "../../src/client/session.ts"
import { acquireStorageFile, formatDataFile } from "../../src/layers/disk.ts"
import { makeTcpBus } from "../../src/layers/network_tcp.ts"
import { Storage } from "../../src/storage/storage.ts"
import { layerClient, Ledger, makeLedger } from "../../src/index.ts"
import { format, scarabSync, startReplica, temporaryDataFile, type RunningReplica } from "../integration/replica_process.ts"
import { afterAll, beforeAll } from "vitest"
import { accountInput, conformance, transferInput } from "./conformance.ts"
import { namespaced } from "./namespaced.ts"
import { temporaryPath } from "./temporary.ts"

/** A replica on a fresh file behind the TCP bus on a free port, for the layer's lifetime; yields the port. */
const inProcessReplica = Effect.gen(function* () {
  const path = yield* temporaryPath
  yield* formatDataFile({ path, cluster: 0n, replica: 0, replicaCount: 1, profile: "test" })
  const bus = yield* makeTcpBus({ host: "127.0.0.1", port: 0, cluster: 0n })
  const storage = yield* acquireStorageFile({ path })
  yield* Layer.build(layerReplica).pipe(
    Effect.provideService(MessageBus, bus),
    Effect.provideService(Storage, storage)
  )
  return bus.port
})

conformance("layerClient (TCP, replica in this process)", {
  layer: () => Layer.unwrap(Effect.map(inProcessReplica, (port) => layerClient({ cluster: 0n, addresses: [port] }))).pipe(Layer.orDie),
  advanceTime: (ms) => TestClock.adjust(ms)
})

/**
 * One replica process for the whole conformance suite below, on a production-profile file: the
 * suite commits about 480 ops (registers included), under half of the 1024 its journal holds.
 */
let shared: { readonly file: ReturnType<typeof temporaryDataFile>; readonly replica: RunningReplica } | undefined
let namespaces = 0
beforeAll(async () => {
  const file = temporaryDataFile()
  formatProduction(file.path)
  shared = { file, replica: await startReplica(file.path) }
})
afterAll(async () => {
  await shared?.replica.kill()
  shared?.file.remove()
})

conformance("layerClient (TCP, one replica process for the whole suite)", {
  layer: () => Layer.effect(Ledger, Effect.map(makeClientSession({ cluster: 0n, addresses: [shared!.replica.port] }),
    (session) => Ledger.of(makeLedger(namespaced(session.call, namespaces++))))).pipe(Layer.orDie),
  advanceTime: (ms) => Effect.sleep(ms),
  liveClock: true
})

/**
 * A backup that is down: a port held by the test for its scope whose every connection is closed
 * at once. (A port found free and left unbound could be taken meanwhile by another test's replica.)
 */
const deadBackup = Effect.acquireRelease(
  Effect.callback<Server>((resume) => {
    const server = createServer((socket) => socket.destroy())
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.callback<void>((resume) => { server.close(() => resume(Effect.void)) })
).pipe(Effect.map((server) => (server.address() as AddressInfo).port))

describe("layerClient with several addresses", () => {
  // TestClock: the replica's disk is real, and on a loaded machine a reply can take longer than
  // the 600 ms after which the client retransmits; in virtual time no retry falls due.
  it.effect("sends to the primary (view 0: the first address) and one other; dead backups do not matter", () => Effect.gen(function* () {
    const port = yield* inProcessReplica
    const dead = [yield* deadBackup, yield* deadBackup]
    const { session, ledger } = yield* ledgerOver(port, dead)
    yield* ledger.createAccounts([accountInput(1n)])
    assert.strictEqual((yield* ledger.lookupAccounts([1n])).length, 1)
    assert.strictEqual((yield* session.stats).retransmissions, 0, "the primary answered the first transmission")
  }))
})

function formatProduction(path: string): void {
  const result = scarabSync(["format", "--cluster=0", "--replica=0", "--replica-count=1", path])
  if (result.status !== 0) throw new Error(`format failed: ${result.stderr}`)
}

/** A `scarab start` process on a fresh file for the scope. */
const replicaProcess = Effect.acquireRelease(
  Effect.promise(async () => {
    const file = temporaryDataFile()
    format(file.path)
    const replica = await startReplica(file.path)
    return { file, replica }
  }),
  ({ file, replica }) => Effect.promise(async () => {
    await replica.kill()
    file.remove()
  })
)

const ledgerOver = (port: number, others: ReadonlyArray<number> = []) => Effect.map(makeClientSession({ cluster: 0n, addresses: [String(port), ...others] }), (session) => ({ session, ledger: makeLedger(session.call) }))

describe("layerClient against a replica process", () => {
  it.live("creates, looks up and batches concurrent calls", () => Effect.gen(function* () {
    const { replica } = yield* replicaProcess
    const { session, ledger } = yield* ledgerOver(replica.port)
    yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
    const results = yield* Effect.forEach(Array.from({ length: 500 }, (_, i) => i), (i) =>
      ledger.createTransfers([transferInput(BigInt(100 + i), 1n, 2n, BigInt(i + 1))]), { concurrency: "unbounded" })
    assert.isTrue(results.every(([r]) => r!.status === "created"))
    const [a] = yield* ledger.lookupAccounts([1n])
    assert.strictEqual(a!.debits_posted, BigInt((500 * 501) / 2))
    const stats = yield* session.stats
    assert.isAtMost(stats.requests, 10, `500 calls in ${stats.requests} requests`)
  }))

  it.live("a call survives a replica restart: retried after reconnecting, executed once; a deadline gives OutcomeUnknown", () => Effect.gen(function* () {
    const { file, replica } = yield* replicaProcess
    const { ledger } = yield* ledgerOver(replica.port)
    yield* ledger.createAccounts([accountInput(1n), accountInput(2n)])
    yield* Effect.promise(() => replica.kill())
    // Down: a call with a deadline fails with the ids it carried.
    const unknown = yield* Effect.flip(ledger.createTransfers([transferInput(7n, 1n, 2n, 3n)]).pipe(Effect.provideService(RequestDeadline, 300)))
    expect([unknown._tag, unknown._tag === "OutcomeUnknown" ? unknown.ids : []]).toEqual(["OutcomeUnknown", [7n]])
    // Without a deadline the call waits, reconnects to the restarted replica and is answered.
    const pending = yield* Effect.forkChild(ledger.createTransfers([transferInput(8n, 1n, 2n, 4n)]))
    yield* Effect.sleep(300)
    const restarted: RunningReplica = yield* Effect.promise(() => startReplica(file.path, replica.port))
    yield* Effect.addFinalizer(() => Effect.promise(() => restarted.kill()))
    const exit = yield* Effect.exit(Fiber.join(pending))
    assert.isTrue(Exit.isSuccess(exit))
    const transfers = yield* ledger.lookupTransfers([7n, 8n])
    // 7 may or may not have committed (its request was the one in flight); 8 committed exactly once.
    const [a] = yield* ledger.lookupAccounts([1n])
    assert.strictEqual(a!.debits_posted, transfers.reduce((sum, t) => sum + t.amount, 0n))
    assert.isTrue(transfers.some((t) => t.id === 8n))
  }))
})
