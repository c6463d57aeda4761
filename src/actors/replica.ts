/**
 * The Replica actor: the shell around `ReplicaCore` (vsr.md §12.1). It owns the core and one
 * bounded inbox; bus events, journal completions and 10 ms ticks become inputs, each stamped
 * with the Clock's time and run to completion; the outputs become sends and journal writes.
 *
 * Opening a replica reads the superblock, recovers the WAL and replays it through the core, so a
 * restart rebuilds the ledger and the client sessions exactly (a retry after the restart gets
 * the identical reply). A failed journal write stops the replica: it must not go on with a disk
 * it cannot trust.
 */
import { Cause, Clock, Context, Effect, Layer, Queue, Schema } from "effect"
import { assert } from "../assert.ts"
import { createLedger, type Ledger } from "../ledger/ledger.ts"
import { bodySizeMax } from "../protocol/operation.ts"
import { releaseClientMin, releaseScarab } from "../protocol/header.ts"
import { u128ToBytes } from "../protocol/build.ts"
import { opMaxOf, recoverJournal, writePrepare } from "../storage/journal.ts"
import { layoutOf, productionConfig } from "../storage/layout.ts"
import { Storage, type StorageError } from "../storage/storage.ts"
import { configOf, readSuperblock } from "../storage/superblock.ts"
import { MessageBus } from "./message_bus.ts"
import { type Input, ReplicaCore } from "./replica_core.ts"

/** Inputs waiting for the core; the bus stops reading sockets while its own queue is full. */
const inboxMax = 4096
const tickMs = 10
/** Journal writes waiting: never more than the pipeline's prepares. */
const journalWritesMax = 8
/** How often (in ticks) a refusal for a full journal is logged: once a minute. */
const journalFullLogTicks = 6000

export class ReplicaOpenError extends Schema.TaggedError<ReplicaOpenError>()("ReplicaOpenError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

export class Replica extends Context.Service<Replica, {
  /** The newest committed op. */
  readonly commitOp: Effect.Effect<bigint>
  readonly cluster: bigint
}>()("scarab/Replica") {}

/**
 * How the replica builds its ledger: `createLedger` unless provided otherwise. The simulator
 * (sim/) provides deliberately broken ledgers to prove that its checkers catch them.
 */
export const ReplicaLedger = Context.Reference<() => Ledger>("scarab/ReplicaLedger", { defaultValue: () => () => createLedger() })

type ShellInput = Input | { readonly _tag: "Fatal"; readonly error: StorageError }

/** Opens the data file's replica, recovers it, and serves clients until the layer closes. */
export const layerReplica = Layer.effect(Replica, Effect.gen(function* () {
  const storage = yield* Storage
  const bus = yield* MessageBus
  const opened = yield* openReplica(storage)
  const { core, cluster, layout } = opened
  const inbox = yield* Queue.bounded<ShellInput>(inboxMax)

  yield* Effect.forkScoped(Effect.forever(Effect.gen(function* () {
    const event = yield* Queue.take(bus.events)
    yield* Queue.offer(inbox, event)
  })))
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(tickMs), Queue.offer(inbox, { _tag: "Tick" } as const))))

  // One journal write at a time, in op order: a crash then tears at most the newest op, so any
  // hole below the newest op at recovery is corruption, never an interrupted write. (Writes in
  // parallel would let op n+1 land while op n tears; recovery could not tell that from a lost
  // acknowledged op.) Commits are in op order anyway, so this costs no throughput for one replica.
  const writes = yield* Queue.bounded<{ readonly op: bigint; readonly prepare: Uint8Array }>(journalWritesMax)
  const writeBuffer = storage.allocate(layout.config.messageSizeMax)
  yield* Effect.forkScoped(Effect.forever(Effect.gen(function* () {
    const { op, prepare } = yield* Queue.take(writes)
    yield* writePrepare(storage, layout, op, prepare, writeBuffer).pipe(
      Effect.flatMap(() => Queue.offer(inbox, { _tag: "JournalWriteDone", op } as const)),
      Effect.catch((error: StorageError) => Queue.offer(inbox, { _tag: "Fatal", error } as const))
    )
  })))

  let ticks = 0
  let journalFullLoggedAt = -journalFullLogTicks
  const loop = Effect.gen(function* () {
    const inputs = yield* Queue.takeAll(inbox)
    for (const input of inputs) {
      if (input._tag === "Fatal") return yield* Effect.die(input.error)
      if (input._tag === "Tick") ticks++
      const realtimeNs = yield* Clock.currentTimeNanos
      for (const output of core.step({ realtimeNs }, input)) {
        switch (output._tag) {
          case "Send":
            yield* bus.send(output.connection, output.message)
            break
          case "JournalWrite":
            assert(Queue.offerUnsafe(writes, { op: output.op, prepare: output.prepare }), () => "journal writes beyond the pipeline bound")
            break
          case "JournalFull":
            if (ticks - journalFullLoggedAt >= journalFullLogTicks) {
              journalFullLoggedAt = ticks
              yield* Effect.logError(`replica: the journal holds ops up to ${output.opMax} and checkpoints do not exist yet; ` +
                "new requests are refused so that no acknowledged op is overwritten. Format a new data file to continue.")
            }
            break
          case "Committed":
            break
        }
      }
    }
  })
  yield* Effect.forkScoped(Effect.forever(loop).pipe(
    Effect.onExit((exit) => exit._tag === "Failure" && !Cause.hasInterruptsOnly(exit.cause)
      ? Effect.logFatal("replica stopped", exit.cause)
      : Effect.void)
  ))
  yield* Effect.logInfo(`replica 0 of cluster ${cluster}: serving on port ${bus.port}, commit op ${core.commitOp}`)
  return Replica.of({ commitOp: Effect.sync(() => core.commitOp), cluster })
}))

/** Reads the superblock, recovers the journal and replays it into a fresh core. */
const openReplica = Effect.fnUntraced(function* (storage: Storage["Service"]) {
  // Both profiles keep the superblock at the same place, so either layout can read it.
  const probe = yield* readSuperblock(storage, layoutOf(productionConfig))
  if (probe._tag !== "Ok") {
    return yield* new ReplicaOpenError({
      path: storage.path,
      reason: probe._tag === "Unreadable"
        ? "no valid superblock copy: not a Scarab data file, or every copy is damaged"
        : "superblock copies disagree: the data file is damaged"
    })
  }
  const { identity } = probe
  if (identity.replicaCount !== 1 || identity.replica !== 0) {
    return yield* new ReplicaOpenError({ path: storage.path, reason: `formatted as replica ${identity.replica} of ${identity.replicaCount}; only single-replica clusters run yet` })
  }
  if (probe.damagedCopies > 0) yield* Effect.logWarning(`${storage.path}: ${probe.damagedCopies} superblock copies are damaged`)
  const layout = layoutOf(configOf(identity))
  const size = yield* storage.sizeBytes
  if (size < layout.dataFileSizeMin) {
    return yield* new ReplicaOpenError({ path: storage.path, reason: `the file has ${size} bytes, fewer than the ${layout.dataFileSizeMin} its layout needs (truncated?)` })
  }
  const clusterBytes = u128ToBytes(identity.cluster)
  const prepares = yield* recoverJournal(storage, layout, clusterBytes)
  const core = new ReplicaCore({
    cluster: identity.cluster, replica: 0, release: releaseScarab, releaseClientMin, batchSizeLimit: bodySizeMax,
    clientsMax: layout.config.clientsMax, pipelineMax: 8, opMax: opMaxOf(layout)
  }, (yield* ReplicaLedger)())
  for (const prepare of prepares) core.replay(prepare)
  assert(core.commitOp === BigInt(prepares.length), () => "replay must end at the newest recovered op")
  if (prepares.length > 0) yield* Effect.logInfo(`${storage.path}: replayed ${prepares.length} ops from the journal`)
  return { core, cluster: identity.cluster, layout }
})
