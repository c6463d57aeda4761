/**
 * The Replica actor: the shell around `ReplicaCore` (vsr.md §12.1). It owns the core and one
 * bounded inbox; bus events, journal completions and 10 ms ticks become inputs, each stamped
 * with the Clock's time and run to completion; the outputs become sends, journal writes and
 * checkpoints.
 *
 * Opening a replica (storage.md §4.6, §7): select the superblock by quorum and repair its
 * copies, load the checkpoint it names (free set, client sessions and replies, the ledger
 * snapshot), recover the WAL, and replay the ops after the checkpoint through the core — storing
 * any checkpoint the replay passes — so a restart rebuilds the ledger and the client sessions
 * exactly (a retry after the restart gets the identical reply). A failed write stops the
 * replica: it must not go on with a disk it cannot trust.
 */
import { Cause, Clock, Context, Deferred, Effect, Layer, Queue, Schema, Scope } from "effect"
import { assert } from "../assert.ts"
import { createLedger, type Ledger, type LedgerOptions } from "../ledger/ledger.ts"
import { defaultLimits } from "../ledger/memory_store.ts"
import { bodySizeMax, Operation } from "../protocol/operation.ts"
import { PrepareLayout, readU64Number, releaseClientMin, releaseScarab } from "../protocol/header.ts"
import { u128ToBytes } from "../protocol/build.ts"
import { type Checkpointer, type CheckpointError, openCheckpoint } from "../storage/checkpoint.ts"
import { Grid, type GridReadError } from "../storage/grid.ts"
import { type Journal, JournalRecoveryError, recoverJournal } from "../storage/journal.ts"
import { dataFileSizeNeeded, type Layout, layoutOf, productionConfig } from "../storage/layout.ts"
import { Storage, type StorageError } from "../storage/storage.ts"
import { configOf, openSuperblock, replicaIndexOf, type SuperblockError } from "../storage/superblock.ts"
import type { GridFullError } from "../storage/trailer.ts"
import { MessageBus } from "./message_bus.ts"
import { type CheckpointPosition, type Input, type Output, ReplicaCore, type ReplicaConfig } from "./replica_core.ts"

/** Inputs waiting for the core; the bus stops reading sockets while its own queue is full. */
const inboxMax = 4096
const tickMs = 10
/** How often (in ticks) a refusal for a full journal, or for a full ledger, is logged: once a minute. */
const refusalLogTicks = 6000

export class ReplicaOpenError extends Schema.TaggedError<ReplicaOpenError>()("ReplicaOpenError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

/** Why a replica could not open its data file. */
export type ReplicaOpenFailure = ReplicaOpenError | SuperblockError | CheckpointError | GridReadError | JournalRecoveryError | StorageError | GridFullError

export class Replica extends Context.Service<Replica, {
  /** The newest committed op. */
  readonly commitOp: Effect.Effect<number>
  /** The op of the durable checkpoint. */
  readonly checkpointOp: Effect.Effect<number>
  readonly cluster: bigint
  /**
   * Waits while the replica runs; if its loop stops for good (a broken invariant, a disk error it
   * cannot handle such as ENOSPC), dies with why. A replica that stopped serves nothing, so whoever
   * runs it must end with it: `scarab start` exits non-zero, `layerEmbedded` fails its calls.
   */
  readonly stopped: Effect.Effect<never>
}>()("scarab/Replica") {}

/**
 * How the replica builds its ledger: `createLedger` unless provided otherwise. The simulator
 * (sim/) provides deliberately broken ledgers to prove that its checkers catch them.
 */
export const ReplicaLedger = Context.Reference<(capacity: LedgerOptions) => Ledger>("scarab/ReplicaLedger", {
  defaultValue: () => (capacity) => createLedger(capacity)
})

/**
 * How many accounts and transfers the replica's ledger holds (in memory until the LSM forest):
 * a request that could create more is refused before it is prepared, so nothing in the journal
 * can fail to execute. A restart must give at least the capacity the data already takes.
 */
export const LedgerCapacity = Context.Reference<LedgerOptions>("scarab/LedgerCapacity", { defaultValue: () => ({}) })

const capacityOf = (capacity: LedgerOptions, what: "accounts" | "transfers"): number =>
  what === "accounts" ? capacity.accountsMax ?? defaultLimits.accountsMax : capacity.transfersMax ?? defaultLimits.transfersMax

/**
 * What the replica does, as it happens, for whoever watches it (the simulator's checkers read
 * these, not log lines): every output of its core, each checkpoint once it is durable, and its
 * stop. Nobody watches in production.
 */
export type ReplicaEvent =
  | Output
  | { readonly _tag: "CheckpointStored"; readonly checkpoint: CheckpointPosition }
  | { readonly _tag: "Stopped"; readonly cause: Cause.Cause<unknown> }

export const ReplicaObserver = Context.Reference<(event: ReplicaEvent) => void>("scarab/ReplicaObserver", { defaultValue: () => () => {} })

/** The core's inputs, and a failure of the shell's own fibers (a journal write, a checkpoint) that stops the replica. */
type ShellInput = Input | { readonly _tag: "Fatal"; readonly cause: Cause.Cause<never> }

/** Opens the data file's replica, recovers it, and serves clients until the layer closes. */
export const layerReplica = Layer.effect(Replica, Effect.gen(function* () {
  const storage = yield* Storage
  const bus = yield* MessageBus
  const opened = yield* openReplica(storage)
  const { core, cluster, journal, checkpointer, ledger, capacity } = opened
  assert(core.status === "normal", () => "the replica serves once recovered")
  assert(core.commitOp >= checkpointer.op, () => "the replica commits from its checkpoint on")
  const inbox = yield* Queue.bounded<ShellInput>(inboxMax)
  const stopped = yield* Deferred.make<never>()

  yield* Effect.forkScoped(Effect.forever(Effect.gen(function* () {
    const event = yield* Queue.take(bus.events)
    yield* Queue.offer(inbox, event)
  })))
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(tickMs), Queue.offer(inbox, { _tag: "Tick" } as const))))

  // One journal write at a time, in op order: a crash then tears at most the newest op, which
  // recovery can tell apart from corruption (storage.md §4.5). Commits are in op order anyway,
  // so this costs no throughput for one replica.
  const writes = yield* Queue.bounded<Uint8Array>(journal.layout.config.pipelineMax)
  yield* Effect.forkScoped(Effect.forever(Effect.gen(function* () {
    const prepare = yield* Queue.take(writes)
    yield* journal.writePrepare(prepare).pipe(
      Effect.flatMap(() => Queue.offer(inbox, { _tag: "JournalWriteDone", op: readOp(prepare) } as const)),
      Effect.catch((error: StorageError) => Queue.offer(inbox, { _tag: "Fatal", cause: Cause.die(error) } as const))
    )
  })))

  // A checkpoint is written off the loop (issue 13): ticks, pings, requests and reads go on while
  // its I/O runs, and it completes through the inbox. The core commits no write meanwhile, so the
  // ledger state the checkpoint reads in place does not change under it.
  const scope = yield* Scope.Scope
  const observe = yield* ReplicaObserver
  const checkpointInBackground = (output: Extract<Output, { _tag: "Checkpoint" }>) =>
    Effect.forkIn(storeCheckpoint(checkpointer, ledger, output).pipe(
      Effect.flatMap((checkpoint) => Queue.offer(inbox, { _tag: "CheckpointDone", checkpoint } as const)),
      Effect.catchCause((cause) => Queue.offer(inbox, { _tag: "Fatal", cause } as const))
    ), scope)

  let ticks = 0
  const refusalLoggedAt = { JournalFull: -refusalLogTicks, StoreFull: -refusalLogTicks }
  const handle = Effect.fnUntraced(function* (outputs: ReadonlyArray<Output>) {
    assert(core.status === "normal", () => "the serving loop handles a recovered core's outputs")
    for (const output of outputs) {
      observe(output)
      switch (output._tag) {
        case "SendToClient":
          // A client with no open connection gets nothing: it resends, and its retry gets the reply.
          yield* bus.sendToClient(output.client, output.message)
          break
        case "SendToReplica":
          yield* bus.sendToReplica(output.replica, output.message)
          break
        case "JournalWrite":
          assert(Queue.offerUnsafe(writes, output.prepare), () => "journal writes beyond the pipeline bound")
          break
        case "Committed":
          checkpointer.onCommit(Number(output.op))
          break
        case "Checkpoint":
          // The core asks for a checkpoint only after the previous one is stored (CheckpointDone).
          assert(output.op > checkpointer.op, () => "a checkpoint after the durable one")
          yield* checkpointInBackground(output)
          break
        case "JournalFull":
        case "StoreFull":
          if (ticks - refusalLoggedAt[output._tag] >= refusalLogTicks) {
            refusalLoggedAt[output._tag] = ticks
            yield* Effect.logWarning(refusalWarning(output, capacity))
          }
          break
      }
    }
  })
  const loop = Effect.gen(function* () {
    const inputs = yield* Queue.takeAll(inbox)
    assert(inputs.length > 0, () => "takeAll waits for an input")
    assert(inputs.length <= inboxMax, () => "the inbox holds at most inboxMax inputs")
    for (const input of inputs) {
      if (input._tag === "Fatal") return yield* Effect.failCause(input.cause)
      if (input._tag === "Tick") ticks++
      const realtimeNs = yield* Clock.currentTimeNanos
      yield* handle(core.step({ realtimeNs }, input))
    }
  })
  yield* Effect.forkScoped(Effect.forever(loop).pipe(
    Effect.onExit((exit) => exit._tag === "Failure" && !Cause.hasInterruptsOnly(exit.cause)
      ? Effect.andThen(Effect.logFatal("replica stopped", exit.cause), Effect.sync(() => observe({ _tag: "Stopped", cause: exit.cause }))).pipe(
        Effect.andThen(Deferred.failCause(stopped, exit.cause)))
      : Effect.void)
  ))
  yield* Effect.logInfo(`replica 0 of cluster ${cluster}: serving on port ${bus.port}, commit op ${core.commitOp}, checkpoint op ${checkpointer.op}`)
  return Replica.of({
    commitOp: Effect.sync(() => core.commitOp), checkpointOp: Effect.sync(() => checkpointer.op), cluster, stopped: Deferred.await(stopped)
  })
}))

/** Why requests wait or are refused: the journal holds no more ops, or the ledger no more creates (logged once a minute, per kind). */
function refusalWarning(output: Extract<Output, { _tag: "JournalFull" | "StoreFull" }>, capacity: LedgerOptions): string {
  assert(output._tag === "StoreFull" || output.opMax > 0, () => "the journal is full at some op")
  assert(output._tag === "JournalFull" || output.operation === Operation.create_accounts || output.operation === Operation.create_transfers,
    () => "only creates fill the ledger")
  if (output._tag === "JournalFull") return `replica: the journal holds ops up to ${output.opMax} until the next checkpoint is stored; new requests wait`
  const what = output.operation === Operation.create_accounts ? "accounts" : "transfers"
  return `replica: the ledger holds as many ${what} as its capacity allows (${capacityOf(capacity, what)}); ` +
    `requests that create ${what} are refused before they are prepared (logged once a minute); reads and other requests are served`
}

/** Stores the checkpoint a `Checkpoint` output asks for; a failure stops the replica. */
const storeCheckpoint = Effect.fnUntraced(function* (checkpointer: Checkpointer, ledger: Ledger, output: Extract<Output, { _tag: "Checkpoint" }>) {
  assert(readOp(output.header) === output.op, () => "the checkpoint header is of the checkpoint op")
  const stats = yield* checkpointer.write({ header: output.header, ledger, sessions: output.sessions }).pipe(Effect.orDie)
  assert(stats.op === output.op, () => "the checkpoint written is the one asked for")
  assert(checkpointer.op === output.op, () => "the checkpointer stands on the checkpoint just written")
  const { current, parent } = checkpointer.ids
  const checkpoint: CheckpointPosition = { op: checkpointer.op, id: current, parentId: parent }
  ;(yield* ReplicaObserver)({ _tag: "CheckpointStored", checkpoint })
  yield* Effect.logInfo(`checkpoint at op ${stats.op}: ${stats.durationMs} ms, ${stats.blocksWritten} blocks written, ` +
    `${stats.blocksReused} carried over, ${checkpointer.blocksAcquired} blocks in use (id ${hex(current)})`)
  return checkpoint
})

/** Opens the superblock, loads its checkpoint, recovers the journal and replays it into a fresh core. */
/** What `openReplica` hands the shell: a recovered core and what it works with. */
interface OpenedReplica {
  readonly core: ReplicaCore
  readonly cluster: bigint
  readonly journal: Journal
  readonly checkpointer: Checkpointer
  readonly ledger: Ledger
  readonly capacity: LedgerOptions
}

const openReplica = Effect.fnUntraced(function* (storage: Storage["Service"]): Effect.fn.Return<OpenedReplica, ReplicaOpenFailure> {
  const started = yield* Clock.currentTimeMillis
  // Both profiles keep the superblock at the same place, so either layout can read it.
  const { working, repairedCopies } = yield* openSuperblock(storage, layoutOf(productionConfig))
  if (repairedCopies.length > 0) yield* Effect.logWarning(`${storage.path}: superblock copies ${repairedCopies.join(", ")} were damaged and are repaired`)
  const replica = replicaIndexOf(working)
  if (working.vsrState.replicaCount !== 1 || replica !== 0) {
    return yield* new ReplicaOpenError({ path: storage.path, reason: `formatted as replica ${replica} of ${working.vsrState.replicaCount}; only single-replica clusters run yet` })
  }
  const layout = layoutOf(configOf(working))
  const size = yield* storage.sizeBytes
  if (size < layout.dataFileSizeMin) {
    return yield* new ReplicaOpenError({ path: storage.path, reason: `the file has ${size} bytes, fewer than the ${layout.dataFileSizeMin} its layout needs (truncated?)` })
  }
  const state = working.vsrState.checkpoint
  if (state.storageSize > layout.grid.start + layout.grid.sizeBytes) {
    return yield* new ReplicaOpenError({ path: storage.path, reason: `the checkpoint needs ${state.storageSize} bytes, beyond the storage limit` })
  }
  // Before any block is read: past a cut, every block would look like a checksum failure.
  const sizeNeeded = dataFileSizeNeeded(layout, state.storageSize)
  if (size < sizeNeeded) {
    return yield* new ReplicaOpenError({ path: storage.path, reason: `truncated: the file has ${size} bytes, but its checkpoint's grid needs at least ${sizeNeeded} (storage_size ${state.storageSize})` })
  }
  const cluster = u128ToBytes(working.cluster)
  const capacity = yield* LedgerCapacity
  const ledger = (yield* ReplicaLedger)(capacity)
  const grid = new Grid(storage, layout, cluster)
  const checkpoint = yield* openCheckpoint(storage, layout, grid, working, ledger)
  const { checkpointer } = checkpoint
  const loaded = yield* Clock.currentTimeMillis
  const recovered = yield* recoverJournal(storage, layout, { cluster, checkpointHeader: state.header, solo: true })
  const journalRecovered = yield* Clock.currentTimeMillis
  const { journal, report } = recovered
  if (report.resetSlots.length > 0) {
    yield* Effect.logWarning(`${storage.path}: WAL slots [${report.resetSlots.join(", ")}] were damaged; they held ops the checkpoint at op ` +
      `${checkpointer.op} already contains, and are reset to empty`)
  }
  if (report.tornSlots.length + report.fixedSlots.length > 0) {
    yield* Effect.logWarning(`${storage.path}: WAL recovery truncated torn slots [${report.tornSlots.join(", ")}] and rewrote the headers of slots [${report.fixedSlots.join(", ")}]`)
  }
  const core = new ReplicaCore(coreConfig(working.cluster, layout), ledger)
  const ids = checkpointer.ids
  const restored = { header: state.header, checkpoint: { op: checkpointer.op, id: ids.current, parentId: ids.parent }, sessions: checkpoint.sessions }
  yield* recoveryStep(core, checkpointer, ledger, { _tag: "Restore", restored })
  assert(core.commitOp === checkpointer.op, () => "the core resumes at the checkpoint")
  const checkpointOp = checkpointer.op
  yield* replay(core, journal, checkpointer, ledger, recovered.replay, storage.path)
  // A reply the zone lost and replay did not supersede cannot be resent: that session ends.
  for (const output of yield* recoveryStep(core, checkpointer, ledger, { _tag: "RecoveryDone", repliesLost: checkpoint.repliesLost })) {
    if (output._tag !== "SessionEnded") continue
    yield* Effect.logWarning(`${storage.path}: the latest reply of client ${output.client} is lost from the client-replies zone; its session ends (it will be evicted)`)
  }
  assert(core.status === "normal", () => "the replica serves once recovered")
  const replayed = yield* Clock.currentTimeMillis
  yield* Effect.logInfo(`${storage.path}: loaded the checkpoint at op ${checkpointOp} and replayed ${recovered.replay.length} ops from the journal ` +
    `(open ${replayed - started} ms: checkpoint ${loaded - started} ms, WAL recovery ${journalRecovered - loaded} ms, replay ${replayed - journalRecovered} ms)`)
  return { core, cluster: working.cluster, journal, checkpointer, ledger, capacity }
})

/** The core's configuration for a replica of `cluster` on a data file of `layout`. */
export const coreConfig = (cluster: bigint, layout: Layout): ReplicaConfig => ({
  cluster, replica: 0, release: releaseScarab, releaseClientMin, batchSizeLimit: bodySizeMax, clientsMax: layout.config.clientsMax,
  storage: layout.config
})

/** Re-executes the ops after the checkpoint, storing every checkpoint the replay passes. */
const replay = Effect.fnUntraced(function* (
  core: ReplicaCore, journal: Journal, checkpointer: Checkpointer, ledger: Ledger,
  ops: ReadonlyArray<{ readonly op: number; readonly checksum: Uint8Array }>, path: string
) {
  assert(core.status === "recovering", () => "replay while recovering")
  for (const { op, checksum } of ops) {
    const prepare = yield* journal.readPrepare(op, checksum)
    if (prepare === undefined) {
      return yield* new JournalRecoveryError({ path, op: `op ${op}`, reason: "the prepare changed on disk between recovery and replay" })
    }
    // Read back what the journal wrote: the prepare of the op asked for.
    assert(readOp(prepare) === op, () => `the journal returned another op than ${op}`)
    const refusal = yield* replayPrepare(core, checkpointer, ledger, prepare)
    if (refusal !== undefined) {
      return yield* new ReplicaOpenError({ path, reason: `op ${op} in the journal ${refusal}; the replica cannot replay it, and will not start` })
    }
  }
  assert(core.commitOp === (ops.at(-1)?.op ?? checkpointer.op), () => "replay must end at the newest recovered op")
})

/**
 * Re-executes one committed prepare and stores the checkpoint it completes, if any; returns why
 * the core refused it, if it did. Replay at startup uses it; so does the simulator's storage
 * checker, which replays the committed ops on a replica that never crashed and compares
 * checkpoints.
 */
export const replayPrepare = Effect.fnUntraced(function* (core: ReplicaCore, checkpointer: Checkpointer, ledger: Ledger, prepare: Uint8Array) {
  const outputs = yield* recoveryStep(core, checkpointer, ledger, { _tag: "Replay", prepare })
  const refused = outputs.find((output) => output._tag === "ReplayRefused")
  assert(refused !== undefined || core.commitOp === readOp(prepare), () => "a replayed op is committed")
  assert(refused === undefined || core.commitOp < readOp(prepare), () => "a refused op is not committed")
  return refused?._tag === "ReplayRefused" ? refused.reason : undefined
})

/**
 * One input to a recovering core, and what it asks done: a commit is noted, a checkpoint is
 * stored at once and reported back (nothing else runs while recovering). Returns every output.
 */
export const recoveryStep = Effect.fnUntraced(function* (core: ReplicaCore, checkpointer: Checkpointer, ledger: Ledger, input: Input) {
  assert(core.status === "recovering", () => "recovery steps only while recovering")
  const outputs = core.step({ realtimeNs: yield* Clock.currentTimeNanos }, input)
  const observe = yield* ReplicaObserver
  for (let i = 0; i < outputs.length; i++) {
    const output = outputs[i]!
    observe(output)
    assert(output._tag !== "JournalWrite", () => "a recovering core writes nothing to the journal")
    assert(output._tag !== "SendToClient", () => "a recovering core sends nothing")
    if (output._tag === "Committed") checkpointer.onCommit(output.op)
    else if (output._tag === "Checkpoint") {
      const checkpoint = yield* storeCheckpoint(checkpointer, ledger, output)
      outputs.push(...core.step({ realtimeNs: yield* Clock.currentTimeNanos }, { _tag: "CheckpointDone", checkpoint }))
    }
  }
  return outputs
})

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")

const readOp = (prepare: Uint8Array): number => readU64Number(prepare, PrepareLayout.op.offset)
