/**
 * A checkpoint does not freeze the replica (issue 13, defect 1). A production-profile replica in
 * this process holds 1M transfers; its checkpoint's grid writes are held at a gate the test
 * controls, so the checkpoint is certainly in progress for as long as the test needs, whatever
 * the machine's load. Meanwhile a ping and a lookup are answered, and a write is not committed
 * (the checkpoint reads the ledger in place); once the gate opens the checkpoint completes and
 * the write commits. How long the answers took is printed: the bound belongs to a benchmark
 * (`bench:replica`'s `ping_latency_max_ms`), not to a test on a shared machine.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Deferred, Effect, Fiber, Layer } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { MessageBus } from "../../src/actors/message_bus.ts"
import { layerReplica, Replica } from "../../src/actors/replica.ts"
import { memoryTransport } from "../../src/client/layer_embedded.ts"
import { makeLedger } from "../../src/client/ledger_service.ts"
import { makeSession } from "../../src/client/session.ts"
import { makeMemoryBus } from "../../src/layers/bus_memory.ts"
import { acquireStorageFile, formatDataFile } from "../../src/layers/disk.ts"
import { buildMessage } from "../../src/protocol/build.ts"
import { Command, FrameLayout, releaseScarab, zeroHeader } from "../../src/protocol/header.ts"
import { batchEventsMax, Operation } from "../../src/protocol/operation.ts"
import { encodeBatch, encodeTransfer, transfer } from "../../src/protocol/records.ts"
import { layoutOf, productionConfig } from "../../src/storage/layout.ts"
import { Storage } from "../../src/storage/storage.ts"

const transfersTotal = 1_000_000
const accounts = 10_000
let directory: string | undefined
afterEach(() => {
  if (directory !== undefined) rmSync(directory, { recursive: true, force: true })
  directory = undefined
})

/** One batch (plain, as `submit` takes it) of `count` transfers from `first` between pseudo-random pairs of the accounts. */
function transfers(first: number, count: number): Uint8Array {
  return encodeBatch(Array.from({ length: count }, (_, i) => {
    const n = first + i
    const debit = 1 + (n * 7919) % accounts
    return transfer({ id: BigInt(n), debit_account_id: BigInt(debit), credit_account_id: BigInt(1 + (debit % accounts)), amount: 1n, ledger: 1, code: 1 })
  }), 128, encodeTransfer)
}

describe("a checkpoint off the replica's loop", () => {
  it("answers a ping and a lookup while a checkpoint of 1M transfers is held mid-write, and commits writes only after it", async () => {
    directory = mkdtempSync(join(tmpdir(), "scarab-checkpoint-"))
    const path = join(directory, "0_0.scarab")
    const grid = layoutOf(productionConfig).grid
    const program = Effect.scoped(Effect.gen(function* () {
      yield* formatDataFile({ path, cluster: 0n, replica: 0, replicaCount: 1, profile: "production" })
      const storage = yield* acquireStorageFile({ path })
      const entered = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      // Grid writes happen only at checkpoints: the first one holds the checkpoint here.
      const gated: Storage["Service"] = {
        ...storage,
        write: (zone, offset, buffer) => zone.start !== grid.start ? storage.write(zone, offset, buffer)
          : Effect.andThen(Effect.andThen(Deferred.succeed(entered, undefined), Deferred.await(gate)), storage.write(zone, offset, buffer))
      }
      const memory = yield* makeMemoryBus(0n)
      const replica = Context.get(yield* Layer.build(layerReplica).pipe(
        Effect.provideService(Storage, gated), Effect.provideService(MessageBus, memory.bus)), Replica)
      const client = () => Effect.map(makeSession({ cluster: 0n, transport: memoryTransport(memory) }), (session) => makeLedger(session.call))
      // Three sessions: each has one request in flight, and the write must not hold up the lookup.
      const [loader, writer, prober] = [yield* client(), yield* client(), yield* client()]

      yield* loader.createAccounts(Array.from({ length: accounts }, (_, i) => ({ id: BigInt(i + 1), ledger: 1, code: 1 }))
        .slice(0, batchEventsMax)).pipe(Effect.andThen(loader.createAccounts(
          Array.from({ length: accounts - batchEventsMax }, (_, i) => ({ id: BigInt(batchEventsMax + i + 1), ledger: 1, code: 1 })))))
      for (let first = 1; first <= transfersTotal; first += batchEventsMax) {
        yield* loader.submit(Operation.create_transfers, transfers(first, Math.min(batchEventsMax, transfersTotal + 1 - first)))
      }
      // Sessions register on their first call, and a register changes the client table, so it
      // waits out a checkpoint like a write: register the writer and the prober before it.
      yield* writer.lookupAccounts([1n])
      yield* prober.lookupAccounts([1n])
      // Cheap ops up to the checkpoint op (959): lookups are ops too.
      const checkpointOp = productionConfig.checkpointOps - 1
      while ((yield* replica.commitOp) < checkpointOp) yield* loader.lookupAccounts([1n])
      yield* Deferred.await(entered)
      expect(yield* replica.checkpointOp).toBe(0)

      // The checkpoint is held mid-write. A ping and a lookup are answered...
      const pingStarted = performance.now()
      const pong = yield* Deferred.make<Uint8Array>()
      const raw = yield* memory.connect((message) => void Deferred.doneUnsafe(pong, Effect.succeed(message)))
      yield* raw.send(buildMessage({ ...zeroHeader(Command.ping_client), cluster: 0n, release: releaseScarab, client: 77n, ping_timestamp_monotonic: 1n }, new Uint8Array(0)))
      expect((yield* Deferred.await(pong))[FrameLayout.command.offset]).toBe(Command.pong_client)
      const pingMs = performance.now() - pingStarted
      const lookupStarted = performance.now()
      const [found] = yield* prober.lookupAccounts([1n])
      const lookupMs = performance.now() - lookupStarted
      expect(found?.id).toBe(1n)
      expect(yield* replica.checkpointOp, "the checkpoint is still held").toBe(0)
      // A write waits for the checkpoint (and so would a read behind it: commits are in op order;
      // test/actors/replica_core_requests.test.ts shows both step by step).
      const write = yield* Effect.forkChild(writer.createTransfers([{ id: 5_000_001n, debit_account_id: 1n, credit_account_id: 2n, amount: 1n, ledger: 1, code: 1 }]))
      yield* Effect.sleep("50 millis")
      expect(write.pollUnsafe(), "a write does not commit during the checkpoint").toBeUndefined()
      expect(yield* replica.commitOp, "the lookup committed during the checkpoint, the write did not").toBe(checkpointOp + 1)

      yield* Deferred.succeed(gate, undefined)
      const [result] = yield* Fiber.join(write)
      expect(result?.status).toBe("created")
      expect(yield* replica.checkpointOp).toBe(checkpointOp)
      console.log(`checkpoint of ${transfersTotal} transfers held mid-write: ping answered in ${pingMs.toFixed(1)} ms, lookup in ${lookupMs.toFixed(1)} ms`)
    }))
    await Effect.runPromise(program)
  }, 600_000)
})
