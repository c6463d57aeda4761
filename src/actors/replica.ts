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
import { Cause, Clock, Context, Deferred, Effect, Layer, Queue, Random, Scope } from "effect"
import { assert } from "../assert.ts"
import { createLedger, type Ledger, type LedgerOptions } from "../ledger/ledger.ts"
import { defaultLimits } from "../ledger/memory_store.ts"
import { bodySizeMax, Operation } from "../protocol/operation.ts"
import { PrepareLayout, readU64Number, releaseClientMin, releaseScarab } from "../protocol/header.ts"
import { u128ToBytes } from "../protocol/build.ts"
import type { Checkpointer } from "../storage/checkpoint.ts"
import { type Journal, JournalRecoveryError, recoverJournal, type RecoveryReport } from "../storage/journal.ts"
import { dataFileSizeNeeded, type Layout, layoutOf, productionConfig } from "../storage/layout.ts"
import { Storage, type StorageError } from "../storage/storage.ts"
import { checkpointOp, configOf, openSuperblock, replicaIndexOf } from "../storage/superblock.ts"
import { JournalWrites } from "./journal_writes.ts"
import { MessageBus } from "./message_bus.ts"
import { loadCheckpoint, recover, type RecoveryIo } from "./recovery.ts"
import { currentNow, ReplicaObserver } from "./replica_events.ts"
import { type ReplicaFigures, replicaFigures } from "./replica_metrics.ts"
import { ReplicaOpenError, type ReplicaOpenFailure } from "./replica_open_error.ts"
import { isStageOutput, runStage, type StageContext, type StageOutput } from "./stage_io.ts"
import type { ClockChange } from "./cluster_clock.ts"
import { type Input, type Now, type Output, ReplicaCore, type ReplicaConfig } from "./replica_core.ts"

/** Inputs waiting for the core; the bus stops reading sockets while its own queue is full. */
const inboxMax = 4096
const tickMs = 10
/** How often (in ticks) a refusal for a full journal, or for a full ledger, is logged: once a minute. */
const refusalLogTicks = 6000
/** How often (in ticks) the figures read off the core (sessions, view, ops) are sampled: at the first tick, then once a second. */
const sampleTicks = 100

export { ReplicaOpenError, type ReplicaOpenFailure } from "./replica_open_error.ts"
export { type ReplicaEvent, ReplicaObserver } from "./replica_events.ts"

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

/** The core's inputs, and a failure of the shell's own fibers (a journal write, a checkpoint) that stops the replica. */
type ShellInput = Input | { readonly _tag: "Fatal"; readonly cause: Cause.Cause<never> }

/** Opens the data file's replica, recovers it, and serves clients until the layer closes. */
export const layerReplica = Layer.effect(Replica, Effect.gen(function* () {
  const storage = yield* Storage
  const bus = yield* MessageBus
  const observe = yield* ReplicaObserver
  const opened = yield* openReplica(storage)
  const { core, cluster, journal, checkpointer, capacity, stages } = opened
  assert(core.status !== "recovering", () => "the replica serves once recovered")
  assert(core.commitOp >= checkpointer.op, () => "the replica commits from its checkpoint on")
  const inbox = yield* Queue.bounded<ShellInput>(inboxMax)
  const stopped = yield* Deferred.make<never>()
  const figures = replicaFigures(yield* Effect.context<never>(), cluster, core.config.replica, core.config.clientsMax)

  yield* Effect.forkScoped(Effect.forever(Effect.gen(function* () {
    const event = yield* Queue.take(bus.events)
    yield* Queue.offer(inbox, event)
  })))
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(tickMs), Queue.offer(inbox, { _tag: "Tick" } as const))))

  const writes = yield* journalWriter(inbox, journal, opened.replicaCount, figures)

  const background = backgroundIo(inbox, yield* Scope.Scope, stages, journal)
  let ticks = 0
  const notices = outputNotices(core.config.replica, capacity)
  const handle = Effect.fnUntraced(function* (now: Now, outputs: ReadonlyArray<Output>) {
    assert(core.status !== "recovering", () => "the serving loop handles a recovered core's outputs")
    for (const output of outputs) {
      observe(output)
      figures.output(now, output)
      switch (output._tag) {
        case "SendToClient":
          // A client with no open connection gets nothing: it resends, and its retry gets the reply.
          yield* bus.sendToClient(output.client, output.message)
          break
        case "SendToReplica":
          yield* bus.sendToReplica(output.replica, output.message)
          break
        case "JournalWrite":
          assert(writes.offer(output.prepare), () => `journal writes beyond the bound of ${writes.max}`)
          break
        case "Committed":
          checkpointer.onCommit(Number(output.op))
          break
        case "ReadPrepare":
          // A backup commits an op its cache no longer holds: read it back off the loop.
          yield* background.read(output.op, output.checksum)
          break
        case "ServePrepare":
          yield* background.serve(output.op, output.checksum, (prepare) => bus.sendToReplica(output.replica, prepare))
          break
        case "Prefetch":
        case "CheckpointData":
        case "CheckpointSuperblock":
          yield* background.stage(output)
          break
        case "PersistView":
          yield* background.persistView(checkpointer, output)
          break
        case "StatusChanged":
          yield* Effect.logInfo(`replica ${core.config.replica}: ${output.status.replace("_", " ")} view=${output.view} primary=${output.primary}`)
          break
        case "ViewChangeStalled":
          yield* Effect.logWarning(`replica ${core.config.replica}: the change to view ${output.view} waits for op ${output.op}, which may have committed and ` +
            `which no replica that answered holds${output.undecidable ? " (every replica answered: their journals lost it)" : ""}; it needs the replicas that hold it`)
          break
        case "ClusterTime":
        case "JournalFull":
        case "StoreFull":
          yield* notices(output, ticks)
          break
        default:
          assert(!isStageOutput(output), () => "every stage runs")
          assert(false, () => `a recovered core asks for no ${output._tag}`)
      }
    }
  })
  const loop = Effect.gen(function* () {
    const inputs = yield* Queue.takeAll(inbox)
    assert(inputs.length > 0, () => "takeAll waits for an input")
    assert(inputs.length <= inboxMax, () => "the inbox holds at most inboxMax inputs")
    for (const input of inputs) {
      if (input._tag === "Fatal") return yield* Effect.failCause(input.cause)
      if (input._tag === "Tick" && ++ticks % sampleTicks === 1) figures.sample(core, checkpointer.op)
      const now = yield* currentNow
      figures.input(now, input)
      yield* handle(now, core.step(now, input))
    }
  })
  // What the last step of recovery asked of the serving loop (a view change's first moves).
  yield* handle(yield* currentNow, opened.carried)
  yield* Effect.forkScoped(Effect.forever(loop).pipe(
    Effect.onExit((exit) => exit._tag === "Failure" && !Cause.hasInterruptsOnly(exit.cause)
      ? Effect.andThen(Effect.logFatal("replica stopped", exit.cause), Effect.sync(() => observe({ _tag: "Stopped", cause: exit.cause }))).pipe(
        Effect.andThen(Deferred.failCause(stopped, exit.cause)))
      : Effect.void)
  ))
  yield* Effect.logInfo(`replica ${core.config.replica} of cluster ${cluster}: serving on port ${bus.port}, commit op ${core.commitOp}, checkpoint op ${checkpointer.op}`)
  return Replica.of({
    commitOp: Effect.sync(() => core.commitOp), checkpointOp: Effect.sync(() => checkpointer.op), cluster, stopped: Deferred.await(stopped)
  })
}))

/**
 * One journal write at a time, lowest op first (JournalWrites): a replica of one then writes in
 * op order, and a crash tears at most the newest op, which recovery can tell apart from
 * corruption (storage.md §4.5); commits are in op order anyway, so this costs no throughput for
 * one replica. A replica of one has at most a pipeline of writes waiting (an op commits once
 * written); in a cluster the backups' oks may commit ops before our own writes land, so a slow
 * disk falls behind by up to the journal's ops (the op never passes the journal's reach beyond
 * the durable checkpoint). Each write's completion, or its failure, goes to the inbox.
 */
const journalWriter = Effect.fnUntraced(function* (inbox: Queue.Queue<ShellInput>, journal: Journal, replicaCount: number, figures: ReplicaFigures) {
  assert(replicaCount >= 1, () => "a cluster has a replica")
  const writesMax = replicaCount === 1 ? journal.layout.config.pipelineMax : journal.layout.config.journalSlotCount
  const writes = yield* JournalWrites.make(writesMax)
  assert(writes.max === writesMax, () => "the writes' bound")
  yield* Effect.forkScoped(Effect.forever(Effect.gen(function* () {
    const prepare = yield* writes.take
    const started = (yield* currentNow).monotonicNs
    yield* journal.writePrepare(prepare).pipe(
      Effect.flatMap(() => Effect.flatMap(currentNow, (now) => {
        figures.journalWritten(Number(now.monotonicNs - started) / 1e9)
        return Queue.offer(inbox, { _tag: "JournalWriteDone", op: readOp(prepare) } as const)
      })),
      Effect.catch((error: StorageError) => Queue.offer(inbox, { _tag: "Fatal", cause: Cause.die(error) } as const))
    )
  })))
  return writes
})

/**
 * I/O the serving loop starts and does not wait for, each completing through the inbox (a
 * failure as `Fatal`): a commit stage (a prefetch, a checkpoint's data or superblock), so ticks,
 * pings, requests and reads go on meanwhile (the core asks for one stage at a time and commits no
 * write during a checkpoint, so the ledger state the checkpoint reads in place does not change
 * under it); a backup's read of a prepare its cache no longer holds; and a read for a peer's
 * repair request, sent if the journal gives it (the peer asks again otherwise).
 */
function backgroundIo(inbox: Queue.Queue<ShellInput>, scope: Scope.Scope, stages: StageContext, journal: Journal) {
  assert(journal.readsMax >= 2, () => "the journal keeps two reads for the commit path")
  assert(journal.writesMax >= 1, () => "the journal writes")
  const complete = <E>(io: Effect.Effect<Input, E>) => Effect.forkIn(io.pipe(
    Effect.orDie,
    Effect.flatMap((done) => Queue.offer(inbox, done)),
    Effect.catchCause((cause) => Queue.offer(inbox, { _tag: "Fatal", cause } as const))
  ), scope)
  return {
    stage: (output: StageOutput) => complete(runStage(stages, output)),
    read: (op: number, checksum: Uint8Array) => complete(Effect.map(journal.readPrepare(op, checksum), (prepare): Input => {
      // The core decides what a missing prepare means (a view change replaced it, or it is lost).
      if (prepare === undefined) return { _tag: "PrepareUnread", op }
      assert(readOp(prepare) === op, () => `the journal returned another op than ${op}`)
      assert(prepare.subarray(0, checksum.length).every((byte, i) => byte === checksum[i]), () => `op ${op}: the journal returned another prepare`)
      return { _tag: "PrepareRead", prepare }
    })),
    persistView: (checkpointer: Checkpointer, output: Extract<Output, { _tag: "PersistView" }>) => complete(Effect.map(
      checkpointer.writeViewState({ view: output.view, logView: output.logView, commitMax: output.commitMax, viewHeaders: output.headers }),
      (written): Input => {
        assert(written.vsrState.view === output.view, () => "the view written is the one asked for")
        assert(written.vsrState.logView === output.logView, () => "the log view written is the one asked for")
        return { _tag: "ViewPersisted", view: output.view, logView: output.logView }
      })),
    serve: (op: number, checksum: Uint8Array, send: (prepare: Uint8Array) => Effect.Effect<void>) => Effect.forkIn(
      journal.readPrepareForRepair(op, checksum).pipe(
        // Busy repair reads, or a slot that does not hold it now: silence (vsr.md §5.3).
        Effect.catchTag("JournalReadsBusyError", () => Effect.succeed(undefined)),
        Effect.flatMap((prepare) => prepare === undefined ? Effect.void : send(prepare)),
        Effect.orDie,
        Effect.catchCause((cause) => Queue.offer(inbox, { _tag: "Fatal", cause } as const))
      ), scope)
  }
}

/**
 * The log lines of outputs an operator must hear of: cluster time reached or lost (each time),
 * and requests waiting for the journal or refused for the ledger's capacity (once a minute per kind).
 */
function outputNotices(replica: number, capacity: LedgerOptions) {
  assert(replica >= 0, () => "a replica index")
  assert(refusalLogTicks > 0, () => "refusals are logged at most once per interval")
  const refusalLoggedAt = { JournalFull: -refusalLogTicks, StoreFull: -refusalLogTicks }
  return (output: Extract<Output, { _tag: "ClusterTime" | "JournalFull" | "StoreFull" }>, ticks: number): Effect.Effect<void> => {
    if (output._tag === "ClusterTime") return clusterTimeLog(replica, output.change)
    if (ticks - refusalLoggedAt[output._tag] < refusalLogTicks) return Effect.void
    refusalLoggedAt[output._tag] = ticks
    return Effect.logWarning(refusalWarning(output, capacity))
  }
}

/** One line when cluster time is reached or lost (vsr.md §8): without it the primary prepares nothing. */
function clusterTimeLog(replica: number, change: ClockChange): Effect.Effect<void> {
  assert(replica >= 0, () => "a replica index")
  assert(change._tag === "Lost" || change.lower <= change.upper, () => "agreed bounds are ordered")
  if (change._tag === "Lost") {
    return Effect.logWarning(`replica ${replica}: no cluster time (${change.reason}); as primary it prepares nothing until a quorum of clocks agrees again`)
  }
  const ms = (ns: number) => (ns / 1e6).toFixed(1)
  return Effect.logInfo(`replica ${replica}: cluster time synchronized: ${change.sources} clocks agree; cluster time is ${ms(change.lower)} to ${ms(change.upper)} ms from our clock`)
}

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

/** What `openReplica` hands the shell: a recovered core and what it works with. */
interface OpenedReplica {
  readonly core: ReplicaCore
  readonly cluster: bigint
  readonly replicaCount: number
  readonly journal: Journal
  readonly checkpointer: Checkpointer
  readonly capacity: LedgerOptions
  readonly stages: StageContext
  /** Outputs of recovery's last step for the serving loop. */
  readonly carried: ReadonlyArray<Output>
}

/**
 * Opens the superblock and builds the core for the replica it names; the core then drives its
 * own recovery (recovery.ts): the checkpoint, the journal, the replay.
 */
const openReplica = Effect.fnUntraced(function* (storage: Storage["Service"]): Effect.fn.Return<OpenedReplica, ReplicaOpenFailure> {
  const started = yield* Clock.currentTimeMillis
  const working = yield* openWorkingSuperblock(storage)
  const layout = layoutOf(configOf(working))
  const cluster = u128ToBytes(working.cluster)
  const capacity = yield* LedgerCapacity
  const ledger = (yield* ReplicaLedger)(capacity)
  const state = working.vsrState.checkpoint
  let journal: Journal | undefined
  const times = { loaded: started, journal: started }
  const io: RecoveryIo = {
    loadCheckpoint: Effect.tap(loadCheckpoint(storage, layout, working, ledger), () => Effect.map(Clock.currentTimeMillis, (ms) => {
      times.loaded = ms
    })),
    recoverJournal: Effect.gen(function* () {
      const recovered = yield* recoverJournal(storage, layout, { cluster, checkpointHeader: state.header, solo: working.vsrState.replicaCount === 1 })
      assert(journal === undefined, () => "the journal is recovered once")
      assert(recovered.replay.every((entry) => entry.op > checkpointOp(state)), () => "the journal replays ops after the checkpoint")
      journal = recovered.journal
      times.journal = yield* Clock.currentTimeMillis
      yield* logJournalRepairs(storage.path, recovered.report, checkpointOp(state))
      return { ops: recovered.replay, faultySlots: recovered.report.faultySlots, committed: recovered.committed }
    }),
    readPrepare: (op, checksum) => Effect.gen(function* () {
      assert(journal !== undefined, () => "a prepare is read once the journal is recovered")
      const prepare = yield* journal.readPrepare(op, checksum)
      if (prepare === undefined) {
        return yield* new JournalRecoveryError({ path: storage.path, op: `op ${op}`, reason: "the prepare changed on disk between recovery and replay" })
      }
      // Read back what the journal wrote: the prepare of the op asked for.
      assert(readOp(prepare) === op, () => `the journal returned another op than ${op}`)
      return prepare
    })
  }
  // The core's PRNG (timeout jitter) is seeded from Random: a simulated run seeds Random, so it replays.
  const nonce = yield* Random.nextIntBetween(0, 0x7fff_ffff)
  const core = new ReplicaCore(coreConfig(working.cluster, layout, replicaIndexOf(working), working.vsrState.replicaCount), ledger, nonce)
  const { stages, replayed, carried } = yield* recover(core, ledger, io, storage.path)
  assert(core.status !== "recovering", () => "the replica serves once recovered")
  assert(journal !== undefined, () => "recovery recovered the journal")
  const done = yield* Clock.currentTimeMillis
  yield* Effect.logInfo(`${storage.path}: loaded the checkpoint at op ${checkpointOp(state)} and replayed ${replayed} ops from the journal ` +
    `(open ${done - started} ms: checkpoint ${times.loaded - started} ms, WAL recovery ${times.journal - times.loaded} ms, replay ${done - times.journal} ms)`)
  return { core, cluster: working.cluster, replicaCount: working.vsrState.replicaCount, journal, checkpointer: stages.checkpointer, capacity, stages, carried }
})

/** The superblock, selected by quorum and repaired, refused unless this replica can run on it. */
const openWorkingSuperblock = Effect.fnUntraced(function* (storage: Storage["Service"]) {
  // Both profiles keep the superblock at the same place, so either layout can read it.
  const { working, repairedCopies } = yield* openSuperblock(storage, layoutOf(productionConfig))
  if (repairedCopies.length > 0) yield* Effect.logWarning(`${storage.path}: superblock copies ${repairedCopies.join(", ")} were damaged and are repaired`)
  const replica = replicaIndexOf(working)
  // A cluster's replicas run in normal operation in view 0 (issue 14); standbys come with disk repair.
  if (replica >= working.vsrState.replicaCount) {
    return yield* new ReplicaOpenError({ path: storage.path, reason: `formatted as replica ${replica} of ${working.vsrState.replicaCount}, a standby; standbys do not run yet` })
  }
  const layout = layoutOf(configOf(working))
  assert(layout.config.clientsMax > 0, () => "the layout holds client sessions")
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
  assert(size >= sizeNeeded, () => "the file holds the checkpoint's grid")
  return working
})

const logJournalRepairs = Effect.fnUntraced(function* (path: string, report: RecoveryReport, checkpoint: number) {
  assert(report.resetSlots.every((slot) => slot >= 0), () => "slots are indexes")
  assert(report.tornSlots.every((slot) => slot >= 0), () => "slots are indexes")
  if (report.resetSlots.length > 0) {
    yield* Effect.logWarning(`${path}: WAL slots [${report.resetSlots.join(", ")}] were damaged; they held ops the checkpoint at op ` +
      `${checkpoint} already contains, and are reset to empty`)
  }
  if (report.tornSlots.length + report.fixedSlots.length > 0) {
    yield* Effect.logWarning(`${path}: WAL recovery truncated torn slots [${report.tornSlots.join(", ")}] and rewrote the headers of slots [${report.fixedSlots.join(", ")}]`)
  }
})

/** The core's configuration for replica `replica` of `replicaCount` in `cluster`, on a data file of `layout`. */
export const coreConfig = (cluster: bigint, layout: Layout, replica = 0, replicaCount = 1): ReplicaConfig => ({
  cluster, replica, replicaCount, release: releaseScarab, releaseClientMin, batchSizeLimit: bodySizeMax, clientsMax: layout.config.clientsMax,
  storage: layout.config
})

const readOp = (prepare: Uint8Array): number => readU64Number(prepare, PrepareLayout.op.offset)
