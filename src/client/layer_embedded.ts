/**
 * `layerEmbedded({ path })`: the Ledger service over a single replica running in this process on
 * a local data file, formatted if missing. The replica is the one `scarab start` runs (same
 * journal, same recovery, same client sessions); only the network is replaced by an in-process
 * MessageBus (src/layers/bus_memory.ts), and the client is the same session the network client
 * uses (session.ts), so requests are numbered, hash-chained and auto-batched as over TCP.
 */
import { existsSync } from "node:fs"
import { Cause, Context, Effect, Layer, type LogLevel, References } from "effect"
import { MessageBus } from "../actors/message_bus.ts"
import { LedgerCapacity, layerReplica, Replica, type ReplicaOpenFailure } from "../actors/replica.ts"
import type { LedgerOptions } from "../ledger/ledger.ts"
import { acquireStorageFile, formatDataFile } from "../layers/disk.ts"
import { makeMemoryBus, type MemoryBus } from "../layers/bus_memory.ts"
import { Storage, type StorageOpenError } from "../storage/storage.ts"
import { peekSuperblock } from "../storage/superblock.ts"
import { Ledger, makeLedger } from "./ledger_service.ts"
import { makeSession, type TransportFactory } from "./session.ts"

export interface EmbeddedOptions {
  /** The data file; created and formatted when it does not exist. */
  readonly path: string
  /** The cluster id a new file is formatted with (default 0); an existing file keeps its own. */
  readonly cluster?: bigint
  /** The storage profile of a new file: "production" (default, 1024 WAL slots) or "test" (64 slots, a checkpoint every 32 ops, for tests). */
  readonly profile?: "production" | "test"
  /**
   * How many accounts and transfers the ledger holds (defaults: 4 Mi accounts, 16 Mi transfers,
   * about 4 GiB of memory at the transfer limit). A create that could exceed it is not executed:
   * its call waits (set a `RequestDeadline`) and the replica logs which limit is reached. Reopen
   * a file with at least the capacity its data takes.
   */
  readonly capacity?: LedgerOptions
  /**
   * The least severe of the replica's log lines that reach the application's Effect loggers
   * (default "Warn": a library is quiet until something needs attention; "Info" adds the lines
   * `scarab start` prints, such as the open, view and checkpoint lines).
   */
  readonly logLevel?: LogLevel.LogLevel
}

/** The replica of `options.path`, opened (and formatted if missing) for the current scope, with its in-process bus. */
export const makeEmbeddedReplica = (options: EmbeddedOptions) =>
  openEmbeddedReplica(options).pipe(Effect.provideService(References.MinimumLogLevel, options.logLevel ?? "Warn"))

// The log level provided around this reaches the replica's fibers: they are forked as its layer builds.
const openEmbeddedReplica = Effect.fnUntraced(function* (options: EmbeddedOptions) {
  if (!existsSync(options.path)) {
    yield* formatDataFile({ path: options.path, cluster: options.cluster ?? 0n, replica: 0, replicaCount: 1, profile: options.profile ?? "production" })
  }
  const storage = yield* acquireStorageFile({ path: options.path })
  // The bus checks the cluster of what clients send; the replica reads it from the superblock.
  const cluster = yield* clusterOf(storage)
  const memory = yield* makeMemoryBus(cluster)
  const context = yield* Layer.build(layerReplica).pipe(
    Effect.provideService(Storage, storage),
    Effect.provideService(MessageBus, memory.bus),
    Effect.provideService(LedgerCapacity, options.capacity ?? {})
  )
  const replica = Context.get(context, Replica)
  return { cluster: replica.cluster, memory, stopped: replica.stopped }
})

/** A session transport over one in-process connection to the embedded replica. */
export const memoryTransport = (memory: MemoryBus): TransportFactory => (deliver) => Effect.gen(function* () {
  const connection = yield* memory.connect(deliver)
  yield* Effect.addFinalizer(() => connection.close)
  return { replicaCount: 1, send: (_replica: number, message: Uint8Array) => connection.send(message) }
})

/** Why an embedded ledger could not open: the file (open, lock, size), its superblock, checkpoint or journal. */
export type EmbeddedOpenError = StorageOpenError | ReplicaOpenFailure

export const layerEmbedded = (options: EmbeddedOptions): Layer.Layer<Ledger, EmbeddedOpenError> => Layer.effect(Ledger, Effect.gen(function* () {
  const { cluster, memory, stopped } = yield* makeEmbeddedReplica(options)
  const session = yield* makeSession({ cluster, transport: memoryTransport(memory) })
  // A replica that stopped answers nothing: its calls, and every later one, die with its defect
  // rather than wait forever.
  yield* Effect.forkScoped(Effect.catchCause(stopped, (cause) => session.halt(Cause.squash(cause))))
  return Ledger.of(makeLedger(session.call))
}))

const clusterOf = Effect.fnUntraced(function* (storage: Storage["Service"]) {
  // An unreadable superblock: the replica refuses to open and says why.
  return (yield* peekSuperblock(storage))?.cluster ?? 0n
})
