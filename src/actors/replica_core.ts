/**
 * The replica's protocol logic as a deterministic state machine (vsr.md §12.1): an input (a
 * client message, a tick, an I/O completion) and the time go in; messages to send and I/O to do
 * come out. No I/O, no clock, no randomness: the same inputs give the same outputs, byte for
 * byte, which is what the simulator and the WAL replay rely on.
 *
 * Startup is driven from here (vsr.md §6): `Open` → load the checkpoint → recover the journal →
 * read and replay each op up to the newest committed one → normal. Normal operation in view 0
 * (vsr.md §3, wire-protocol.md §12, §13): the primary (replica 0) turns a request into a prepare
 * (hash-chained, timestamped), sends it to every other replica (star replication, §3.4) and
 * writes it to its journal, which is its own `prepare_ok`; it commits on a replication quorum of
 * `prepare_ok`s in op order → ledger → reply, and tells the backups how far it committed
 * (prepares carry it, `commit` heartbeats repeat it, §3.8). A backup takes each of the primary's
 * prepares as its new head (§3.5), repairs the gaps below from its peers (§5), acknowledges each
 * prepare once it is durable in its journal (§3.6), and
 * commits up to the primary's `commit_max` in op order, replying to nobody. Client sessions (§9
 * of vsr.md), the pulse that expires pending transfers, and checkpoints (vsr.md §7.1) are the
 * same on every replica. A cluster of one is the same code with nobody to send to.
 *
 * Committing an op is a stage machine, the same for replay and for normal operation: prefetch
 * (the ledger makes resident what the op touches: a no-op in memory, reads for the LSM forest)
 * → execute → at a checkpoint op, checkpoint data → checkpoint superblock. Each I/O stage is an
 * output and its completion an input. While a checkpoint is written only reads commit (they
 * change nothing the checkpoint reads in place), so the checkpoint holds exactly the state after
 * its op. Replication to backups, view changes and repair extend this core; they do not replace it.
 */
import { assert, unreachable } from "../assert.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { isClientOperation, requestBodyInvalid, requestEvictionReason, type ReplicaLimits } from "../protocol/body.ts"
import {
  buildEviction, buildMessage, buildPongClient, buildPrepareOk, buildReplyToPrepare, prepareFromRequest, u128FromBytes, u128ToBytes
} from "../protocol/build.ts"
import { rootPrepare, vsrReleasesMax } from "../protocol/header_rules.ts"
import {
  Command, CommitLayout, EvictionReason, FrameLayout, GetHeadersLayout, GetPrepareLayout, type AnyHeader, GetReplyLayout, GetViewLayout, headerSize, isZero, PingClientLayout, PingLayout, PongLayout, PrepareLayout, PrepareOkLayout,
  readU32, readU64, readU64Number, ReplyLayout, RequestLayout, u128Equal, VsrOperation, zeroHeader
} from "../protocol/header.ts"
import { currentOperation } from "../protocol/deprecated.ts"
import { type ClientOperation, pulseExpiriesMax } from "../protocol/operation.ts"
import { registerRequestBatchSizeLimit, registerResultBody, setRegisterRequestBatchSizeLimit } from "../protocol/register.ts"
import type { Ledger } from "../ledger/ledger.ts"
import { createEventCount, executeRequest, isReadOperation } from "../ledger/request.ts"
import type { SessionEntry } from "../storage/client_sessions.ts"
import { blankHeader, buildExitView, buildGetView, buildJoinView, buildView, decodeJoinView, decodeView, joinViewHeadersMax } from "../protocol/view_change.ts"
import { checkpointStateSize } from "../protocol/header_rules.ts"
import { BackupLog, type LogEntry } from "./backup_log.ts"
import { ExitViewVotes } from "./exit_view_votes.ts"
import { connectDown } from "./log_chain.ts"
import { chooseLog, type JoinView } from "./view_change.ts"
import { ClientTable, type Session } from "./client_table.ts"
import { type ClockChange, ClusterClock } from "./cluster_clock.ts"
import { HeaderRing } from "./header_ring.ts"
import { Pipeline } from "./pipeline.ts"
import { quorums } from "./quorum.ts"
import { getHeadersMax, RepairRequests, validHeaders } from "./repair.ts"
import { Timeout } from "./timeout.ts"
import { Prng } from "../prng.ts"
import { checkpointAfter, type CheckpointSchedule, isCheckpointOp, prepareMax } from "../storage/layout.ts"

export interface ReplicaConfig {
  readonly cluster: bigint
  readonly replica: number
  readonly replicaCount: number
  readonly release: number
  readonly releaseClientMin: number
  /** The largest request body accepted (wire-protocol.md §9.2). */
  readonly batchSizeLimit: number
  /** Client sessions kept (vsr.md §9.1); the least recently committed is evicted beyond it. */
  readonly clientsMax: number
  /** The WAL and checkpoint schedule (journal slots, checkpoint interval, pipeline bound). */
  readonly storage: CheckpointSchedule
}

/** The checkpoint the replica stands on: its op and the ids prepares carry (vsr.md §7.2). */
export interface CheckpointPosition {
  readonly op: number
  readonly id: Uint8Array
  readonly parentId: Uint8Array
}

/** The view state the superblock holds (vsr.md §4.8): durable before the replica acts on it. */
export interface DurableView {
  readonly view: number
  readonly logView: number
  /** Newest op first: the JV's headers (blanks included) while `logView < view`, the View's once equal. */
  readonly headers: ReadonlyArray<Uint8Array>
}

/** Where a restart resumes: the checkpoint's prepare header, ids and client sessions. */
export interface Restored {
  readonly header: Uint8Array
  readonly checkpoint: CheckpointPosition
  readonly sessions: ReadonlyArray<SessionEntry>
  /** The newest op the superblock knows committed (`vsr_state.commit_max`). */
  readonly commitMax: number
  /** Session slots whose latest reply the client-replies zone lost (replay may supersede them). */
  readonly repliesLost: ReadonlyArray<number>
  /** The durable view state; absent, a fresh data file's: view 0, with the checkpoint's header. */
  readonly view?: DurableView
  /** Whether the superblock is as formatted: this replica never served (absent: true, a fresh core of the tests). */
  readonly fresh?: boolean
  /** The encoded checkpoint state (1024 bytes) a new primary's `view` message carries; absent, zeros (tests that send no view message). */
  readonly checkpointState?: Uint8Array
}

/** An op the journal recovered: its prepare's checksum and header. */
export interface JournalOp {
  readonly op: number
  readonly checksum: Uint8Array
  readonly header: Uint8Array
}

/**
 * Time is an input: the shell reads the clock and stamps every step with it. Real time stamps
 * prepares (cluster time); monotonic time, which never goes back, measures intervals.
 */
export interface Now {
  readonly realtimeNs: bigint
  readonly monotonicNs: bigint
}

/**
 * Where the replica stands (vsr.md §6.1): `recovering` from its data file until the shell has fed
 * it the checkpoint and the journal's ops; `normal` in a started view (as its primary or a
 * backup); `view_change` while trying to start `view`; `recovering_head` after a restart that
 * found its journal damaged, so that it may have forgotten what it acknowledged: it votes and
 * acknowledges nothing until a view provably newer than its crash installs its log.
 */
export type Status = "recovering" | "normal" | "view_change" | "recovering_head"

export type Input =
  /** Startup: the shell opened the superblock and built this core for the replica it names. */
  | { readonly _tag: "Open" }
  /** Startup: the checkpoint asked for (`LoadCheckpoint`) is loaded into the ledger; resume from it. */
  | { readonly _tag: "Restore"; readonly restored: Restored }
  /**
   * Startup: the journal is recovered (`RecoverJournal`): the ops after the checkpoint it holds, in
   * op order (in a cluster, with gaps), and the slots that lost a prepare it may have acknowledged.
   */
  | {
    readonly _tag: "JournalRecovered"
    readonly ops: ReadonlyArray<JournalOp>
    readonly faultySlots?: ReadonlyArray<number>
    /** A cluster's: headers of committed ops the journal still holds, up to the checkpoint (peers' repair may need them). */
    readonly committed?: ReadonlyArray<Uint8Array>
  }
  /** The prepare a `ReadPrepare` asked for (replay, or a backup's commit), checksum verified. */
  | { readonly _tag: "PrepareRead"; readonly prepare: Uint8Array }
  /** A `ReadPrepare` of op `op` found another prepare in its slot (a view change replaced it meanwhile). */
  | { readonly _tag: "PrepareUnread"; readonly op: number }
  /** A peer's message, verified by the bus (checksums, cluster, header rules). */
  | { readonly _tag: "Message"; readonly message: Uint8Array }
  | { readonly _tag: "Tick" }
  | { readonly _tag: "JournalWriteDone"; readonly op: number }
  /** The ledger made resident what op `op` touches (`Prefetch`): it executes. */
  | { readonly _tag: "PrefetchDone"; readonly op: number }
  /** The checkpoint's data is written (`CheckpointData`): its superblock is next. */
  | { readonly _tag: "CheckpointDataDone"; readonly op: number }
  /** The checkpoint's superblock is written (`CheckpointSuperblock`): it is durable, and commits resume. */
  | { readonly _tag: "CheckpointDone"; readonly checkpoint: CheckpointPosition; readonly checkpointState?: Uint8Array }
  /** The view state asked for (`PersistView`) is durable in the superblock. */
  | { readonly _tag: "ViewPersisted"; readonly view: number; readonly logView: number }

export type Output =
  /**
   * A message for client `client` (a reply, pong or eviction). The core knows clients, not
   * connections: the shell sends it on the connection the client last spoke on, if any.
   */
  | { readonly _tag: "SendToClient"; readonly client: bigint; readonly message: Uint8Array }
  /** A message for replica `replica` of the cluster; the bus keeps the connection to it. */
  | { readonly _tag: "SendToReplica"; readonly replica: number; readonly message: Uint8Array }
  /** Startup: load the checkpoint the superblock names into the ledger, then send `Restore`. */
  | { readonly _tag: "LoadCheckpoint" }
  /** Startup: recover the journal against the checkpoint of `checkpointOp`, then send `JournalRecovered`. */
  | { readonly _tag: "RecoverJournal"; readonly checkpointOp: number }
  /** Read the prepare of `op` from the journal (replay, or a backup's commit), then send `PrepareRead`. */
  | { readonly _tag: "ReadPrepare"; readonly op: number; readonly checksum: Uint8Array }
  | { readonly _tag: "JournalWrite"; readonly op: number; readonly prepare: Uint8Array }
  /** Make resident what `eventCount` events of `operation` in op `op` touch, then send `PrefetchDone`. */
  | { readonly _tag: "Prefetch"; readonly op: number; readonly operation: ClientOperation; readonly eventCount: number; readonly body: Uint8Array }
  /** Op `op` committed: the prepare of checksum `checksum` (16 bytes) executed. */
  | { readonly _tag: "Committed"; readonly op: number; readonly operation: number; readonly timestamp: bigint; readonly checksum: Uint8Array }
  /** Write the checkpoint's data: the state as it is now, just after committing `op`; then send `CheckpointDataDone`. */
  | { readonly _tag: "CheckpointData"; readonly op: number; readonly header: Uint8Array; readonly sessions: ReadonlyArray<SessionEntry> }
  /** Write the superblock naming the checkpoint data of `op`, then send `CheckpointDone`. */
  | { readonly _tag: "CheckpointSuperblock"; readonly op: number }
  /** A recovered op this replica cannot execute (why, in words): it must not start. */
  | { readonly _tag: "ReplayRefused"; readonly op: number; readonly reason: string }
  /** Cluster time was reached, or lost (vsr.md §8): without it the primary prepares nothing. */
  | { readonly _tag: "ClusterTime"; readonly change: ClockChange }
  /**
   * Write the view state to the superblock (vsr.md §4.8), then send `ViewPersisted`: one superblock
   * write at a time (the core never asks for this while a checkpoint's superblock is written).
   */
  | { readonly _tag: "PersistView"; readonly view: number; readonly logView: number; readonly commitMax: number; readonly headers: ReadonlyArray<Uint8Array> }
  /**
   * As the new primary, the view change waits for op `op`: it may have committed, and no replica
   * that answered holds it (`undecidable`: every replica answered). Correlated damage (journals
   * lost across a quorum) can cause it; said once per view.
   */
  | { readonly _tag: "ViewChangeStalled"; readonly view: number; readonly op: number; readonly undecidable: boolean }
  /** The replica's status or view changed: one log line naming the primary of the view. */
  | { readonly _tag: "StatusChanged"; readonly status: Exclude<Status, "recovering">; readonly view: number; readonly primary: number }
  /**
   * A peer's `get_prepare` (vsr.md §5.3) for a prepare this replica holds in its journal only:
   * read it (checksum verified) and send it to replica `replica`; if the journal cannot give it
   * now (a write of the slot in flight, every repair read busy), say nothing: the peer asks again.
   */
  | { readonly _tag: "ServePrepare"; readonly replica: number; readonly op: number; readonly checksum: Uint8Array }
  /** A session ended at startup: its latest reply was lost from the client-replies zone. */
  | { readonly _tag: "SessionEnded"; readonly client: bigint }
  /** The WAL holds ops up to `opMax` until the next checkpoint: new requests wait (they are retried). */
  | { readonly _tag: "JournalFull"; readonly opMax: number }
  /**
   * A create of `operation` could exceed the ledger's capacity, counting the creates already
   * prepared: the request was dropped before it was prepared (the client retries; reads and
   * creates that fit go on).
   */
  | { readonly _tag: "StoreFull"; readonly operation: ClientOperation }

const ticksPerPulseCheck = 10 // 100 ms at 10 ms per tick (state-machine.md §10.5)
/** Every replica of a cluster pings the others every second (vsr.md §8.1: liveness, and clock samples from the next issue on). */
const ticksPerPing = 100
/** The primary's `commit` heartbeat to the backups (vsr.md §3.8): every 500 ms. */
const ticksPerHeartbeat = 50
/** The primary resends a prepare to the replicas whose `prepare_ok` is missing after 250 ms, then backs off (vsr.md §3.4). */
const prepareTimeoutTicks = 25
/** A backup's repair loop runs every 100 ms ± 50 % (vsr.md §5.1): 50 to 150 ms. */
const repairTicksMin = 5
const repairTicksJitter = 10
/** `get_prepare` requests in flight to one peer (vsr.md §5.3's budget), and how long one waits for its prepare. */
const repairPerPeerMax = 2
const repairExpiryTicks = 20
/**
 * A backup that has heard nothing new from its primary (a prepare advancing its head, a newer
 * heartbeat) for 1.5 s votes to leave the view (vsr.md §4.1.1: three heartbeat periods). A fixed
 * threshold rather than TigerBeetle's smoothed one: docs/decisions.md.
 */
const normalHeartbeatTimeoutTicks = 150
/** Votes, join_views and get_views are sent again every 500 ms, 500 ms and 1 s while they stand (vsr.md §4.1.3, §4.2). */
const exitViewResendTicks = 50
const joinViewResendTicks = 50
const getViewResendTicks = 100
/** Others' exit-view votes are forgotten 5 s after the first (vsr.md §4.1.3). */
const exitViewWindowTicks = 500
/** A view change that has not completed in 5 s: vote to leave the view being started too (vsr.md §4.1.3). */
const viewChangeStatusTicks = 500
/** A primary whose prepares get no new ok for 10 s stops its heartbeats, so the backups depose it (vsr.md §4.1.2). */
const primaryAbdicateTicks = 1000

/**
 * Recovery's steps (vsr.md §6.1): wait for the checkpoint, then for the journal, then replay
 * `ops[next..]` one at a time, each read then committed, until every op up to `opMax` is.
 */
type Recovery =
  | { readonly _tag: "opening" }
  | { readonly _tag: "loading_checkpoint" }
  | { readonly _tag: "recovering_journal" }
  | {
    readonly _tag: "replaying"
    readonly ops: ReadonlyArray<JournalOp>
    next: number
    reading: boolean
    /** A cluster's: every op its journal holds (the log installed once replay is over takes those that connect) and the head it stands on. */
    readonly held: ReadonlyArray<JournalOp>
    readonly head?: Uint8Array | undefined
    /** Journal slots that lost a prepare this replica may have acknowledged: its head is uncertain. */
    readonly faultySlots: ReadonlyArray<number>
  }

/**
 * Where the commit of one op stands: `idle` between commits, `prefetch` while the ledger makes
 * resident what the op (`prepare`) touches, `reading` while a backup reads it back. Execution is synchronous; the checkpoint stages are
 * `checkpointStage`, since reads go on committing through them.
 */
type CommitStage =
  | { readonly _tag: "idle" }
  | { readonly _tag: "prefetch"; readonly prepare: Uint8Array }
  /** A backup reads the next op's prepare from its journal: it was not cached. */
  | { readonly _tag: "reading"; readonly op: number }
  /** A new primary reads an uncommitted op's prepare from its journal for its pipeline: it was not cached. */
  | { readonly _tag: "loading"; readonly op: number }

/** The checkpoint being written after its op committed: its data, then its superblock. */
type CheckpointStage = "none" | "data" | "superblock"

export class ReplicaCore {
  readonly config: ReplicaConfig
  private readonly ledger: Ledger
  /** The view this replica is in (normal) or trying to start (view_change), and the newest view whose log it installed. */
  private view = 0
  private logView = 0
  /** What the superblock holds: a message of a view, or a join_view/prepare_ok of a log view, goes out only once durable (vsr.md §4.8). */
  private durableView = 0
  private durableLogView = 0
  /** A view-state write is in flight, another is due after it, a checkpoint's superblock waits for it. */
  private viewWriting = false
  private viewWriteDue = false
  private checkpointSuperblockWaiting = false
  /**
   * The view headers (vsr.md §4.3, §4.6): while `logView < view`, our join_view's (newest first,
   * `undefined` a blank), fixed on entering the view change so every join_view we send for a view
   * is the same; once the view's log is installed, the view message's.
   */
  private viewHeaders: ReadonlyArray<Uint8Array | undefined> = []
  /** Exit-view votes for `view` (vsr.md §4.1.3). */
  private readonly exitVotes: ExitViewVotes
  /** As primary of the view being started: one join_view per replica, and whether a quorum's log is installed. */
  private readonly joinViews = new Map<number, JoinView>()
  private logInstalled = false
  /** As `recovering_head`: the newest view a peer's message named, which it asks for (`get_view`). */
  private viewHeard = 0
  /** The view whose change was last said to wait for an op nobody that answered holds (said once per view). */
  private stalledView = -1
  /** Ticks: the newest sign of the primary's life, when the view change began, the next resends. */
  private primarySeenTick = 0
  private viewChangeStartTick = 0
  private exitViewDueTick = 0
  private joinViewDueTick = 0
  private getViewDueTick = 0
  /** As primary: the tick by which a new ok must arrive, while prepares wait; heartbeats stop once it passed. */
  private abdicateTick: number | undefined
  private abdicating = false
  /** The encoded state of the durable checkpoint, which a `view` message carries. */
  private checkpointState: Uint8Array = new Uint8Array(checkpointStateSize)
  /** Whether the superblock was as formatted at startup, and, as the fresh primary of view 0, that nothing is prepared until a superblock write records that it served. */
  private restoredFresh = false
  private servesOnceWritten = false
  /** Prepares a new primary read back from its journal for its pipeline (the log's cache did not hold them), by op. */
  private readonly loadedPrepares = new Map<number, Uint8Array>()
  /** Ops up to this one may have been acknowledged before a crash that damaged the journal: never nacked (vsr.md §4.3). */
  /**
   * Journal slots that lost a prepare this replica may have acknowledged (recovery found them
   * damaged), until a write fills them: an op in one is never nacked (vsr.md §4.3), and one above
   * the head makes the head uncertain (§6.2).
   */
  private readonly faultySlots = new Set<number>()
  /**
   * Per journal slot, the prepare it durably holds (its op and checksum), whatever our log makes
   * of it: a prepare below a gap does not connect to our head, yet we may have acknowledged it, so
   * a join_view never nacks its op (vsr.md §4.3); and a header repair brings back that connects to
   * our log is durable at once.
   */
  private readonly journalSlots: Array<{ readonly op: number; readonly checksum: Uint8Array } | undefined>
  private readonly quorums: ReturnType<typeof quorums>
  /** Per op, the checksums of the journal writes asked for and not yet done, in order (writes of one op complete in order). */
  private readonly writesInFlight = new Map<number, Array<Uint8Array>>()
  /** The full header of the op at `commit`: the bottom of a join_view or a view message. */
  private commitHeader: Uint8Array
  /** The newest prepared op, the newest committed op, and the newest prepare's checksum. */
  private op = 0
  private commit = 0
  private parent: Uint8Array
  /** The newest prepare's timestamp: cluster time never goes back (state-machine.md §6.1). */
  private timestamp = 0n
  private readonly pipeline: Pipeline
  private readonly sessions: ClientTable
  private ticks = 0
  private outputs: Array<Output> = []
  /** The durable checkpoint, and the stage of the next one (of op `checkpointingOp`) while it is written. */
  private checkpoint: CheckpointPosition = { op: 0, id: zeroChecksum, parentId: zeroChecksum }
  private checkpointStage: CheckpointStage = "none"
  private checkpointingOp = 0
  private commitStage: CommitStage = { _tag: "idle" }
  private recovery: Recovery = { _tag: "opening" }
  /** Monotonic time never goes back between steps. */
  private monotonicNs = 0n
  /** Within `step`: one input runs to completion before the next (vsr.md §12.1 principle 4). */
  private stepping = false
  private opMax: number
  private statusNow: Status = "recovering"
  /** The op of the checkpoint recovery started from, and the replies its client-replies zone lost. */
  private restoredOp = 0
  private repliesLost: ReadonlyArray<number> = []
  /**
   * The newest op known committed: when recovery starts, the superblock's; in normal operation
   * the cluster's, as the primary's prepares and heartbeats tell a backup (vsr.md §3.8).
   */
  private commitMax = 0
  /** The checksum of the prepare at `commit` (the checkpoint's header at a checkpoint op). */
  private commitChecksum: Uint8Array
  /** A backup's accepted prepares above its commit; empty on the primary (its pipeline holds them). */
  private readonly log: BackupLog
  /** The newest heartbeat's monotonic time a backup has seen: older heartbeats are ignored. */
  private heartbeatNs = 0n
  /** Runs while the primary of a cluster has prepares in flight: resend what lacks an ok (vsr.md §3.4). */
  private readonly prepareTimeout = new Timeout("prepare_timeout", prepareTimeoutTicks)
  /** Timeout jitter, seeded from the nonce the shell drew from Effect's Random (vsr.md §12.1). */
  private readonly prng: Prng
  /**
   * Writes done above `prepareOkMax`, by op, with the prepare's header: their oks go out (a
   * backup's) or count (the primary's own) once the replica stored its next checkpoint.
   */
  private readonly oksWithheld = new Map<number, Uint8Array>()
  /** The headers of the journal's prepares, by slot: what peers' `get_headers` and `get_prepare` are answered from. */
  private readonly headerRing: HeaderRing
  /** The newest heartbeat's commit and the checksum of its prepare: a backup whose head is below it fetches that prepare as its head. */
  private heartbeatCommit: { readonly op: number; readonly checksum: Uint8Array } | undefined
  /** The cluster id as bytes, which a repaired header must carry. */
  private readonly clusterBytes: Uint8Array
  /** The tick the backup's repair loop runs next (vsr.md §5.1). */
  private repairDueTick = 0
  /** Cluster time (vsr.md §8): the primary stamps prepares with it. A replica of one is its own clock. */
  private readonly clock: ClusterClock
  /** A backup's `get_prepare` requests in flight; undefined in a cluster of one. */
  private readonly repairRequests: RepairRequests | undefined

  /** Names this incarnation in its `get_view`s: a view answering one is newer than our restart (vsr.md §4.7). */
  private readonly nonce: bigint

  /** `nonce` seeds the core's PRNG: the shell draws it from Effect's Random, so a simulated run replays from its seed. */
  constructor(config: ReplicaConfig, ledger: Ledger, nonce = 0) {
    assert(Number.isSafeInteger(nonce), () => `nonce ${nonce} is not an integer`)
    assert(Number.isInteger(config.replicaCount), () => `replica count ${config.replicaCount}`)
    assert(Number.isInteger(config.replica), () => `replica ${config.replica} is not an index`)
    assert(config.replica >= 0, () => `replica ${config.replica} is negative`)
    assert(config.replica < config.replicaCount, () => `replica ${config.replica} is not one of the cluster's ${config.replicaCount}`)
    assert(config.clientsMax > 0, () => "clientsMax must be positive")
    assert(config.storage.pipelineMax > 0, () => "pipelineMax must be positive")
    this.config = config
    this.ledger = ledger
    this.prng = new Prng(nonce)
    this.commitHeader = rootPrepare(u128ToBytes(config.cluster))
    this.parent = this.commitHeader.slice(0, checksumSize)
    this.commitChecksum = this.parent
    this.nonce = BigInt(nonce) + 1n
    this.exitVotes = new ExitViewVotes(config.replicaCount, config.replica, exitViewWindowTicks)
    this.quorums = quorums(config.replicaCount)
    this.opMax = prepareMax(config.storage, 0)
    // Every client has at most one request in the pipeline, so clientsMax bounds the queue.
    this.pipeline = new Pipeline(config.storage.pipelineMax, config.clientsMax, quorums(config.replicaCount).replication)
    this.sessions = new ClientTable(config.clientsMax)
    // A backup caches as many prepares as the primary may have in flight, and one pipeline more.
    this.log = new BackupLog(2 * config.storage.pipelineMax)
    this.headerRing = new HeaderRing(config.storage.journalSlotCount)
    this.journalSlots = new Array(config.storage.journalSlotCount).fill(undefined)
    this.clusterBytes = u128ToBytes(config.cluster)
    this.clock = new ClusterClock(config.replicaCount, config.replica)
    this.repairRequests = config.replicaCount > 1 ? new RepairRequests(config.replicaCount, repairPerPeerMax, repairExpiryTicks) : undefined
  }

  /** Whether this replica is the primary of its view (vsr.md §1.1: the view modulo the replica count), whatever its status. */
  get primary(): boolean {
    return this.primaryOf(this.view) === this.config.replica
  }

  private primaryOf(view: number): number {
    assert(Number.isSafeInteger(view), () => `view ${view}`)
    assert(view >= 0, () => `view ${view} is not negative`)
    return view % this.config.replicaCount
  }

  /** The primary of a started view: only it prepares, from its pipeline; everyone else keeps a log. */
  private get leading(): boolean {
    return this.statusNow === "normal" && this.primary
  }

  get currentView(): number {
    return this.view
  }

  get status(): Status {
    return this.statusNow
  }

  /** Client sessions kept (at most `clientsMax`). */
  get sessionCount(): number {
    return this.sessions.size
  }

  /** Whether the replica has cluster time (vsr.md §8): without it, as primary, it prepares nothing. */
  get clockSynchronized(): boolean {
    return this.clock.synchronized
  }

  /** Runs one input to completion and returns what to do (vsr.md §12.1 principle 4). */
  step(now: Now, input: Input): Array<Output> {
    // Run to completion: the shell takes a step's outputs before it feeds the next input.
    assert(!this.stepping, () => "a step runs to completion before the next")
    assert(now.monotonicNs >= this.monotonicNs, () => "monotonic time never goes back")
    this.stepping = true
    this.monotonicNs = now.monotonicNs
    this.outputs = []
    switch (input._tag) {
      case "Open":
        this.open()
        break
      case "Restore":
        this.restore(input.restored)
        break
      case "JournalRecovered":
        for (const header of input.committed ?? []) this.headerRing.set(header)
        for (const entry of input.ops) this.journalSlots[entry.op % this.config.storage.journalSlotCount] = { op: entry.op, checksum: entry.checksum }
        this.journalRecovered(now, input.ops, input.faultySlots ?? [])
        break
      case "PrepareRead":
        if (this.statusNow === "recovering") this.prepareRead(now, input.prepare)
        else this.logPrepareRead(now, input.prepare)
        break
      case "Message":
        // Clients wait until the replica has recovered; they resend.
        if (this.statusNow !== "recovering") this.onMessage(now, input.message)
        break
      case "Tick":
        if (this.statusNow !== "recovering") this.onTick(now)
        break
      case "PrepareUnread":
        this.logPrepareUnread(now, input.op)
        break
      case "JournalWriteDone":
        this.onJournalWriteDone(now, input.op)
        break
      case "PrefetchDone":
        this.prefetched(now, input.op)
        break
      case "CheckpointDataDone":
        this.checkpointDataWritten(input.op)
        break
      case "CheckpointDone": {
        const okMax = this.prepareOkMax
        this.checkpointStored(input.checkpoint, input.checkpointState)
        this.releaseOks(okMax)
        if (this.viewWriteDue) this.persistView()
        this.advance(now)
        break
      }
      case "ViewPersisted":
        this.viewPersisted(now, input.view, input.logView)
        break
      default:
        unreachable(input)
    }
    this.assertInvariants()
    // Clients wait while the replica recovers: a message then changes nothing and answers nothing.
    assert(input._tag !== "Message" || this.statusNow !== "recovering" || this.outputs.length === 0, () => "a recovering core answers no client")
    this.stepping = false
    return this.outputs
  }

  /** What holds between any two steps. */
  private assertInvariants(): void {
    assert(this.op === this.commit + this.pipeline.length + this.log.length,
      () => `op ${this.op} != commit ${this.commit} + ${this.pipeline.length} prepares + ${this.log.length} logged`)
    assert(this.leading || this.pipeline.length === 0, () => "only the primary of a started view prepares")
    assert(!this.leading || this.log.length === 0, () => "the primary's prepares are in its pipeline")
    assert(this.durableView <= this.view, () => `durable view ${this.durableView} beyond view ${this.view}`)
    assert(this.logView <= this.view, () => `log view ${this.logView} beyond view ${this.view}`)
    assert(this.durableLogView <= this.logView, () => "the durable log view is one we installed")
    assert(this.durableLogView <= this.durableView, () => "the durable log view is at most the durable view")
    assert(this.statusNow !== "normal" || this.logView === this.view, () => "a started view's log is installed")
    assert(this.commit <= this.commitMax, () => `commit ${this.commit} beyond commit_max ${this.commitMax}`)
    assert(this.checkpoint.op <= this.commit, () => `checkpoint ${this.checkpoint.op} beyond commit ${this.commit}`)
    assert(this.commit <= this.op, () => `commit ${this.commit} beyond op ${this.op}`)
    assert(this.op <= this.opMax, () => `op ${this.op} beyond the journal's ${this.opMax}`)
    assert(this.sessions.size <= this.config.clientsMax, () => `${this.sessions.size} sessions`)
    assert(this.pipeline.queued === 0 || this.pipeline.full, () => "a request queued while the pipeline has room")
    // While recovering, replay commits each op as it comes: nothing waits in the pipeline.
    assert(this.statusNow === "normal" || this.pipeline.length === 0, () => "a recovering core prepares nothing")
    assert(this.checkpointStage === "none" || this.checkpointingOp > this.checkpoint.op, () => "the checkpoint being stored is after the durable one")
    assert(this.checkpointStage === "none" || this.checkpointingOp <= this.commit, () => "a checkpoint is of a committed op")
    assert(this.statusNow === "recovering" || this.recovery._tag === "replaying", () => "a normal core has recovered")
  }

  // --- startup (vsr.md §6.1) ------------------------------------------------------------------

  private open(): void {
    assert(this.statusNow === "recovering", () => "open once")
    assert(this.recovery._tag === "opening", () => "open once")
    this.recovery = { _tag: "loading_checkpoint" }
    this.outputs.push({ _tag: "LoadCheckpoint" })
  }

  /**
   * Resumes from a checkpoint (before any replay): its op is committed, its prepare header is
   * the parent of the next op, and its sessions are the client table.
   */
  private restore(restored: Restored): void {
    assert(this.recovery._tag === "loading_checkpoint", () => "restore once the checkpoint is asked for")
    assert(this.op === 0, () => "restore into a fresh core: no op prepared")
    assert(this.commit === 0, () => "restore into a fresh core: no op committed")
    assert(this.sessions.size === 0, () => "restore into a fresh core: no session")
    const view = new DataView(restored.header.buffer, restored.header.byteOffset, headerSize)
    const op = readU64Number(restored.header, PrepareLayout.op.offset)
    assert(op === restored.checkpoint.op, () => "the checkpoint header names another op")
    assert(restored.commitMax >= op, () => "the superblock's commit_max is at least its checkpoint")
    this.op = op
    this.commit = op
    this.timestamp = view.getBigUint64(PrepareLayout.timestamp.offset, true)
    this.commitHeader = restored.header.slice(0, headerSize)
    this.parent = restored.header.slice(0, checksumSize)
    this.commitChecksum = this.parent
    this.restoreView(restored.view ?? { view: 0, logView: 0, headers: [this.commitHeader] })
    if (restored.checkpointState !== undefined) this.checkpointState = restored.checkpointState
    assert(this.checkpointState.length === checkpointStateSize, () => "the checkpoint state is 1024 bytes")
    this.sessions.restore(restored.sessions)
    this.restoredOp = op
    this.restoredFresh = restored.fresh ?? true
    this.repliesLost = restored.repliesLost
    this.commitMax = restored.commitMax
    this.checkpointed(restored.checkpoint)
    assert(this.sessions.size === restored.sessions.length, () => "every session of the checkpoint restored")
    this.recovery = { _tag: "recovering_journal" }
    this.outputs.push({ _tag: "RecoverJournal", checkpointOp: op })
  }

  /** The view state the superblock holds: where this replica stood when it stopped (vsr.md §6.2). */
  private restoreView(durable: DurableView): void {
    assert(durable.logView <= durable.view, () => "the log view is at most the view")
    assert(durable.headers.length > 0, () => "the superblock holds a view header")
    this.view = durable.view
    this.logView = durable.logView
    this.durableView = durable.view
    this.durableLogView = durable.logView
    // A blank (no checksum) held a join_view's place for an op we had no header of.
    this.viewHeaders = durable.headers.map((header) => isZero(header, 0, checksumSize) ? undefined : header)
  }

  /**
   * The journal's ops after the checkpoint. A replica of one replays them all (its write is the
   * quorum). A cluster's replica replays only ops it knows committed and can prove are its view's:
   * those connected down from its head (restartLog); the rest wait in its log for the view.
   */
  private journalRecovered(now: Now, ops: ReadonlyArray<JournalOp>, faultySlots: ReadonlyArray<number>): void {
    assert(this.recovery._tag === "recovering_journal", () => "the journal recovered once the checkpoint is restored")
    assert(ops.every((entry, i) => entry.op > this.commit && (i === 0 || entry.op > ops[i - 1]!.op)), () => "the journal's ops are after the checkpoint, ascending")
    for (const entry of ops) this.headerRing.set(entry.header)
    if (this.config.replicaCount === 1) {
      ops.forEach((entry, i) => assert(entry.op === this.commit + 1 + i, () => `the journal's ops run on from the checkpoint: op ${entry.op} at ${i}`))
      assert(faultySlots.length === 0, () => "a replica of one refuses a journal with faulty slots")
      this.recovery = { _tag: "replaying", ops, next: 0, reading: false, held: [], faultySlots }
      return this.advance(now)
    }
    const { replay, head } = this.restartLog(ops)
    this.recovery = { _tag: "replaying", ops: replay, next: 0, reading: false, held: ops, head, faultySlots }
    this.advance(now)
  }

  /**
   * The head a restarted cluster replica stands on (vsr.md §6.2 step 4), and the ops it may
   * replay. While its log view is its view, the head is the newest op of the journal, unless
   * the view headers name a newer one; an op of an older view above the view's head is one a view
   * change truncated, left in its slot. Mid view change (log view below view), ops written since
   * the view change began must not become the head: only the durable join_view's headers count.
   * Ops connected down from the head are this view's log; those of them up to commit_max, from
   * the checkpoint on without a gap, are replayed.
   */
  private restartLog(ops: ReadonlyArray<JournalOp>): { readonly replay: Array<JournalOp>; readonly head: Uint8Array | undefined } {
    assert(this.config.replicaCount > 1, () => "a cluster's replica")
    assert(this.recovery._tag === "recovering_journal", () => "at startup")
    const journal = new Map(ops.map((entry) => [entry.op, entry]))
    const viewHeaders = this.viewHeaders.filter((header) => header !== undefined)
    const viewHeadOp = viewHeaders.length === 0 ? 0 : readU64Number(viewHeaders[0]!, PrepareLayout.op.offset)
    const candidates = this.logView === this.view
      ? ops.filter((entry) => entry.op <= this.opMax && (entry.op <= viewHeadOp || readU32(entry.header, FrameLayout.view.offset) >= this.logView))
      : []
    const fromViews = viewHeaders.find((header) => readU64Number(header, PrepareLayout.op.offset) <= this.opMax)
    const fromJournal = candidates.at(-1)?.header
    let head = fromJournal
    if (fromViews !== undefined && (head === undefined || readU64Number(fromViews, PrepareLayout.op.offset) > readU64Number(head, PrepareLayout.op.offset))) head = fromViews
    if (head === undefined || readU64Number(head, PrepareLayout.op.offset) <= this.commit) return { replay: [], head: undefined }
    const viewHeaderOf = (op: number) => viewHeaders.find((header) => readU64Number(header, PrepareLayout.op.offset) === op)
    const chain = connectDown(head, this.commit + 1, (op) => [viewHeaderOf(op), journal.get(op)?.header])
    const replay: Array<JournalOp> = []
    let parent = this.commitChecksum
    for (const header of chain.toReversed()) {
      const op = readU64Number(header, PrepareLayout.op.offset)
      const entry = journal.get(op)
      if (op > this.commitMax || op !== this.commit + 1 + replay.length || entry === undefined || !u128Equal(entry.checksum, 0, header, 0)) break
      if (!u128Equal(header, PrepareLayout.parent.offset, parent, 0)) break
      parent = entry.checksum
      replay.push(entry)
    }
    this.commitMax = Math.max(this.commitMax, readU64Number(head, PrepareLayout.op.offset) - this.config.storage.pipelineMax)
    assert(replay.every((entry) => entry.op <= this.commitMax), () => "replay commits only ops known committed")
    return { replay, head }
  }

  /** The prepare of the next op to replay is read: it commits (its stages run as any commit's). */
  private prepareRead(now: Now, prepare: Uint8Array): void {
    const recovery = this.recovery
    assert(recovery._tag === "replaying", () => "a prepare read while replaying")
    assert(recovery.reading, () => "a prepare read while replay asked for one")
    const expected = recovery.ops[recovery.next]!
    const op = readU64Number(prepare, PrepareLayout.op.offset)
    assert(op === expected.op, () => `the journal returned op ${op} for op ${expected.op}`)
    assert(u128Equal(prepare, FrameLayout.checksum.offset, expected.checksum, 0), () => `the journal returned another prepare of op ${op}`)
    recovery.reading = false
    recovery.next += 1
    this.replay(now, prepare)
  }

  /**
   * Re-executes a prepare recovered from the journal at startup, rebuilding the ledger and the
   * client table exactly as the original commit did; nothing is sent. An op it cannot execute
   * is refused in words (`ReplayRefused`) rather than failing an assertion in a restart loop.
   */
  private replay(now: Now, prepare: Uint8Array): void {
    const op = readU64Number(prepare, PrepareLayout.op.offset)
    assert(this.statusNow === "recovering", () => "replay while recovering only")
    assert(op === this.op + 1, () => `replay of op ${op} after op ${this.op}`)
    assert(this.pipeline.length === 0, () => "replay with nothing in the pipeline")
    assert(this.checkpointStage === "none", () => "replay with no checkpoint being stored")
    const refusal = this.replayRefusal(prepare)
    if (refusal !== undefined) {
      this.outputs.push({ _tag: "ReplayRefused", op, reason: refusal })
      return
    }
    assert(u128Equal(prepare, PrepareLayout.parent.offset, this.parent, 0), () => `op ${op} does not chain to op ${this.op}`)
    // A replica that reached different state than the one that prepared the op stops here (vsr.md §7.2).
    assert(u128Equal(prepare, PrepareLayout.checkpoint_id.offset, this.checkpointIdFor(op), 0),
      () => `op ${op} was prepared on another checkpoint than the one it replays on`)
    if (this.commitStart(prepare)) this.advance(now)
  }

  /**
   * Recovery is over (vsr.md §6.2 step 5). A replica of one serves as the primary of view 0,
   * ending the sessions whose reply was lost. A cluster's installs the log it stands on, then: with
   * a damaged journal it is `recovering_head`; mid view change it goes on with its durable join_view;
   * as the primary of its view it starts a view change to the next (what it had in flight is gone);
   * otherwise it is a normal backup and repairs.
   */
  private recoveryDone(now: Now): void {
    assert(this.statusNow === "recovering", () => "recovery ends once")
    assert(this.checkpointStage === "none", () => "recovery ends with no checkpoint being stored")
    assert(this.pipeline.length === 0, () => "recovery ends with nothing in the pipeline")
    assert(this.op === this.commit, () => "recovery ends with every replayed op committed")
    const recovery = this.recovery
    assert(recovery._tag === "replaying", () => "recovery ends after replay")
    this.log.reset(this.commit)
    if (this.config.replicaCount === 1) {
      // The replies the zone lost are those of the checkpoint restored, not of one replay stored
      // since. A cluster's replica keeps those sessions, its table identical to its peers', and
      // fetches the replies (`get_reply`) unless committing supersedes them first.
      for (const client of this.sessions.endWithReplyBefore(this.repliesLost, this.restoredOp)) this.outputs.push({ _tag: "SessionEnded", client })
      this.statusNow = "normal"
      return this.statusChanged()
    }
    const journal = new Map(recovery.held.map((entry) => [entry.op, entry.header]))
    const viewHeaders = this.viewHeaders.filter((header) => header !== undefined)
    const head = recovery.head !== undefined && readU64Number(recovery.head, PrepareLayout.op.offset) > this.commit ? recovery.head : undefined
    this.installLog(head, (op) => [viewHeaders.find((header) => readU64Number(header, PrepareLayout.op.offset) === op), journal.get(op)])
    this.primarySeenTick = this.ticks
    for (const slot of recovery.faultySlots) this.faultySlots.add(slot)
    if (!this.headCertain()) {
      this.statusNow = "recovering_head"
      return this.statusChanged()
    }
    if (this.logView < this.view) return this.enterViewChange(now, this.view, false)
    if (this.primary && !(this.restoredFresh && this.view === 0 && this.op === 0)) return this.enterViewChange(now, this.view + 1, true)
    this.statusNow = "normal"
    this.statusChanged()
    if (!this.primary) return
    // A freshly formatted cluster's primary of view 0 starts it at once, with nothing prepared yet;
    // its first superblock write marks that it served, so a restart is one of a primary that may
    // have forgotten what it prepared (above), and goes through a view change.
    this.servesOnceWritten = true
    this.persistView()
  }

  /**
   * Why a prepare recovered from the journal cannot be replayed, or `undefined`: an operation
   * this replica does not execute, a body it would not have accepted, or creates beyond the
   * ledger's capacity (a restart with a smaller capacity). Replay would stop on an assertion.
   */
  private replayRefusal(prepare: Uint8Array): string | undefined {
    const operation = prepare[PrepareLayout.operation.offset]!
    assert(prepare.length >= headerSize, () => "a prepare is at least a header")
    assert(readU64Number(prepare, PrepareLayout.op.offset) > this.commit, () => "a prepare after the commit")
    if (operation === VsrOperation.pulse) return prepare.length === headerSize ? undefined : "is a pulse with a body"
    if (operation === VsrOperation.register) return undefined
    if (!isClientOperation(operation)) return `has operation ${operation}, which this replica does not execute`
    const body = prepare.subarray(headerSize)
    if (body.length > this.config.batchSizeLimit) return `has a body of ${body.length} bytes, beyond the limit of ${this.config.batchSizeLimit}`
    const invalid = requestBodyInvalid(operation, body, this.config.batchSizeLimit)
    if (invalid !== undefined) return `has operation ${operation} with an invalid body (${invalid})`
    const events = createEventCount(operation, body)
    if (events > 0 && !this.ledger.fits(currentOperation(operation), events)) {
      return `creates ${events} events of operation ${operation}, beyond the ledger's capacity (was it started with a larger one?)`
    }
    return undefined
  }

  get commitOp(): number {
    return this.commit
  }

  // --- requests (wire-protocol.md §12.2) ------------------------------------------------------

  private onMessage(now: Now, message: Uint8Array): void {
    assert(this.statusNow !== "recovering", () => "messages are handled once recovered")
    // The bus hands over whole verified messages (message_bus.ts: `length == size`).
    assert(readU32(message, FrameLayout.size.offset) === message.length, () => "a message is whole")
    const command = message[FrameLayout.command.offset]
    if (command === Command.request) return this.onRequest(now, message)
    if (command === Command.ping_client) return this.onPingClient(message)
    if (this.config.replicaCount === 1) return // a cluster of one has no peers to hear from
    // Peers' repair requests are served in any status (vsr.md §6.1), and a peer's reply repairs our table.
    if (command === Command.get_headers) return this.serveHeaders(message)
    if (command === Command.get_prepare) return this.servePrepare(message)
    if (command === Command.get_reply) return this.serveReply(message)
    if (command === Command.reply) return this.onReplyRepaired(message)
    if (command === Command.view) return this.onView(now, message)
    if (!this.viewJump(now, message)) return
    if (command === Command.ping) return this.onPing(now, message)
    if (this.statusNow === "recovering_head") return // it votes, acknowledges and repairs nothing until a view installs its log
    if (command === Command.prepare) this.onPrepare(now, message)
    else if (command === Command.prepare_ok) this.onPrepareOk(now, message)
    else if (command === Command.commit) this.onCommitHeartbeat(now, message)
    else if (command === Command.pong) this.onPong(now, message)
    else if (command === Command.headers) this.onHeaders(now, message)
    else if (command === Command.exit_view) this.onExitView(now, message)
    else if (command === Command.join_view) this.onJoinView(now, message)
    else if (command === Command.get_view) this.serveView(message)
  }

  private onTick(now: Now): void {
    assert(this.statusNow !== "recovering", () => "ticks count once recovered")
    assert(this.pipeline.length === 0 || this.leading, () => "only the primary of a started view has prepares in flight")
    this.ticks += 1
    if (this.config.replicaCount > 1 && this.ticks % ticksPerPing === 0) this.sendPing(now)
    const change = this.clock.tick(now)
    if (change !== undefined) this.outputs.push({ _tag: "ClusterTime", change })
    if (this.config.replicaCount === 1) {
      if (this.ticks % ticksPerPulseCheck === 0) this.pulseIfDue(now)
      return
    }
    this.exitVotes.expire(this.ticks)
    if (this.exitVotes.own && this.ticks >= this.exitViewDueTick) this.sendExitView()
    if (this.statusNow === "recovering_head") return this.requestView(Math.max(this.view, this.viewHeard))
    if (this.statusNow === "view_change") return this.viewChangeTick(now)
    if (!this.primary) {
      this.repairTick()
      // vsr.md §4.1.1: a primary not heard of for three heartbeat periods is voted out.
      if (this.ticks - this.primarySeenTick > normalHeartbeatTimeoutTicks) this.voteExitView(now)
      return
    }
    if (this.ticks % ticksPerPulseCheck === 0) this.pulseIfDue(now)
    this.checkAbdication(now)
    if (this.ticks % ticksPerHeartbeat === 0 && !this.abdicating) this.sendHeartbeat(now)
    assert(this.prepareTimeout.ticking === this.pipeline.length > 0, () => "the prepare timeout runs while prepares are in flight")
    this.prepareTimeout.tick()
    if (this.prepareTimeout.fired()) this.resendPrepares()
  }

  private onRequest(now: Now, request: Uint8Array): void {
    assert(request[FrameLayout.command.offset] === Command.request, () => "a request")
    assert(request.length >= headerSize, () => "a request is at least a header")
    // Between views nobody prepares: the client resends, and finds the new primary.
    if (readU32(request, FrameLayout.view.offset) > this.view || this.statusNow !== "normal") return
    // Only the primary prepares: a backup may pass the request on (a client that reaches only it).
    if (!this.primary) return this.forwardRequest(request)
    // Only the primary stamps ops; a client's request naming a timestamp is dropped (§12.1).
    if (!isZero(request, RequestLayout.timestamp.offset, RequestLayout.timestamp.offset + 8)) return
    const client = u128FromBytes(request, RequestLayout.client.offset)
    const eviction = requestEvictionReason(request, this.limits())
    if (eviction !== undefined) return this.evict(client, request, eviction)
    const operation = request[RequestLayout.operation.offset]!
    const session = this.sessions.get(client)
    if (session === undefined) {
      if (operation !== VsrOperation.register) return this.evict(client, request, EvictionReason.no_session)
      if (this.pipeline.hasClient(client)) return // still committing
      return this.prepareOrQueue(now, request)
    }
    if (operation === VsrOperation.register) return this.resendIfDuplicate(request, session, 0)
    const requestSession = readU64(request, RequestLayout.session.offset)
    if (session.session > requestSession) return this.evict(client, request, EvictionReason.session_too_low)
    if (session.session < requestSession) return
    if (readU32(session.reply, FrameLayout.release.offset) !== readU32(request, FrameLayout.release.offset)) {
      return this.evict(client, request, EvictionReason.session_release_mismatch)
    }
    const number = readU32(request, RequestLayout.request.offset)
    const latest = readU32(session.reply, ReplyLayout.request.offset)
    if (number <= latest) return this.resendIfDuplicate(request, session, number)
    if (number !== latest + 1) return
    if (!u128Equal(request, RequestLayout.parent.offset, session.reply, ReplyLayout.context.offset)) return
    if (this.pipeline.hasClient(client)) return
    this.prepareOrQueue(now, request)
  }

  /**
   * A backup passes a request to the primary (vsr.md §3.2) when it may be new: the next request
   * of a session it knows, or a register of a client it does not. Anything else is dropped: a
   * retry of a request it has the reply for (TigerBeetle's backup answers it from its client
   * table; ours replies to nobody yet), a stale one, or a request of a session it has not
   * heard of; forwarding those would only multiply traffic.
   */
  private forwardRequest(request: Uint8Array): void {
    assert(!this.primary, () => "a backup forwards requests")
    assert(this.config.replicaCount > 1, () => "a cluster of one is its own primary")
    const client = u128FromBytes(request, RequestLayout.client.offset)
    const session = this.sessions.get(client)
    const operation = request[RequestLayout.operation.offset]!
    const fresh = session === undefined
      ? operation === VsrOperation.register
      : operation !== VsrOperation.register && readU32(request, RequestLayout.request.offset) > readU32(session.reply, ReplyLayout.request.offset)
    if (fresh) this.outputs.push({ _tag: "SendToReplica", replica: this.primaryOf(this.view), message: request })
  }

  /** Prepares the request, or queues it while the pipeline's prepares are full (vsr.md §12.5). */
  private prepareOrQueue(now: Now, request: Uint8Array): void {
    assert(request[FrameLayout.command.offset] === Command.request, () => "a request is prepared or queued")
    // An expiry already due goes first: what the request sees must not depend on when the last
    // tick happened to run (a lookup 250 ms after a timeout sees the hold released).
    this.pulseIfDue(now)
    if (!this.pipeline.full) return this.prepare(now, request)
    const queued = this.pipeline.queued
    // A full queue drops the request: its client resends it.
    const accepted = this.pipeline.queue(request)
    assert(this.pipeline.queued === (accepted ? queued + 1 : queued), () => "a request queued is counted once")
  }

  /** A retry of the latest request gets the stored reply; anything older or different is dropped. */
  private resendIfDuplicate(request: Uint8Array, session: Session, number: number): void {
    assert(number <= readU32(session.reply, ReplyLayout.request.offset), () => "a duplicate is no newer than the latest reply")
    if (readU32(session.reply, ReplyLayout.request.offset) !== number) return
    if (!u128Equal(request, FrameLayout.checksum.offset, session.reply, ReplyLayout.request_checksum.offset)) return
    // The reply resent is the one the table stored (ClientTable.open and update check the same fields).
    assert(session.reply[FrameLayout.command.offset] === Command.reply, () => "a stored reply is a reply")
    assert(u128Equal(session.reply, ReplyLayout.client.offset, request, RequestLayout.client.offset), () => "a stored reply is the client's")
    assert(readU64Number(session.reply, ReplyLayout.op.offset) === session.commitOp, () => "a stored reply is of the session's latest op")
    this.send(session.client, session.reply)
  }

  private onPingClient(ping: Uint8Array): void {
    // Header rules: a ping is a bare header (message_bus.ts verified them).
    assert(ping.length === headerSize, () => "a ping is a bare header")
    const outputs = this.outputs.length
    const client = u128FromBytes(ping, PingClientLayout.client.offset)
    const session = readU64(ping, PingClientLayout.session.offset)
    const release = readU32(ping, FrameLayout.release.offset)
    if (!this.sessions.has(client) && session !== 0n && BigInt(this.commit) >= session) this.evict(client, ping, EvictionReason.no_session)
    else if (release < this.config.releaseClientMin) this.evict(client, ping, EvictionReason.client_release_too_low)
    else if (release > this.config.release) this.evict(client, ping, EvictionReason.client_release_too_high)
    else this.send(client, buildPongClient(ping, this.replicaFields()))
    assert(this.outputs.length === outputs + 1, () => "a ping gets one answer: a pong or an eviction")
  }

  // --- replication in view 0 (vsr.md §3.4-§3.8) ---------------------------------------------

  /**
   * A backup receives a prepare (vsr.md §3.5, in view 0): the primary's, or a peer's answer to
   * its `get_prepare`. One of an op its log already reached is written if only its header was
   * known, or fills a gap if it connects to the header above it, or is acknowledged again if
   * durable. One beyond the head becomes the head (the primary of the view made it), leaving a gap
   * below it that repair fills from the top down (vsr.md §5.2: headers connect to the head).
   */
  private onPrepare(now: Now, prepare: Uint8Array): void {
    assert(prepare[FrameLayout.command.offset] === Command.prepare, () => "a prepare")
    if (this.leading) return // the primary of a started view holds every prepare of its log
    const view = readU32(prepare, FrameLayout.view.offset)
    const op = readU64Number(prepare, PrepareLayout.op.offset)
    if (view > this.view) return // the view jump asked for the view
    // Only the primary of our started view makes a new head; anything else may repair our log.
    if (view < this.view || op <= this.op || this.statusNow !== "normal") return this.prepareHeld(now, prepare)
    this.primarySeenTick = this.ticks
    assert(prepare.length - headerSize <= this.config.batchSizeLimit, () => `op ${op}: a prepare beyond our batch limit (restart with the cluster's)`)
    const commit = readU64Number(prepare, PrepareLayout.commit.offset)
    assert(commit < op, () => `op ${op} carries commit ${commit}`)
    if (commit > this.commitMax) this.commitMax = commit
    // Beyond the journal's reach until the next checkpoint is stored: dropped, the primary resends.
    if (op <= this.opMax) this.accept(prepare)
    this.advance(now)
    assert(this.commit <= this.commitMax, () => "a backup commits up to commit_max only")
  }

  /** Logs the prepare of a new head and writes it to the journal (vsr.md §3.5 steps 7-10). */
  private accept(prepare: Uint8Array): void {
    assert(readU32(prepare, FrameLayout.size.offset) === prepare.length, () => "a whole prepare is accepted")
    const op = readU64Number(prepare, PrepareLayout.op.offset)
    // The op below is held (or is the commit): the prepare must chain to it.
    const chained = op === this.op + 1 && (this.op === this.commit || this.log.find(this.op) !== undefined)
    if (op > this.op + 1) {
      // A gap: repair fetches what lies between (vsr.md §3.5 step 8).
      this.log.reach(op - 1)
      this.op = op - 1
    }
    const entry = this.extendLog(prepare.subarray(0, headerSize), false, chained)
    this.writeLogged(entry, prepare)
    assert(this.op === entry.op, () => "the accepted prepare is the head")
  }

  /**
   * The log's head moves on to the op of `header`, the next op (from the primary's prepare, or
   * the journal at startup): checked against the checkpoint, against the chain when the op below
   * is held (`chained`), and installed in the header ring. `durable` when the journal holds its
   * prepare already.
   */
  private extendLog(header: Uint8Array, durable: boolean, chained = true): LogEntry {
    const op = readU64Number(header, PrepareLayout.op.offset)
    assert(op === this.op + 1, () => `op ${op} is the next op`)
    assert(op <= this.opMax, () => `op ${op} is within the journal`)
    // A replica whose state differs from the primary's stops here (vsr.md §7.2: storage determinism).
    assert(u128Equal(header, PrepareLayout.checkpoint_id.offset, this.checkpointIdFor(op), 0),
      () => `op ${op} was prepared on another checkpoint than ours: checkpoint diverged`)
    // A primary never breaks its own hash chain within a view.
    assert(!chained || u128Equal(header, PrepareLayout.parent.offset, this.parent, 0), () => `op ${op} does not chain to op ${this.op} in the same view`)
    const timestamp = readU64(header, PrepareLayout.timestamp.offset)
    assert(timestamp > this.timestamp, () => `op ${op}: timestamps increase with op`)
    this.op = op
    this.timestamp = timestamp
    this.parent = header.slice(0, checksumSize)
    this.headerRing.set(header)
    this.log.reach(op)
    const entry = this.log.setHeader(header, durable)
    assert(entry.op === op, () => "the op is logged")
    return entry
  }

  /**
   * Fills the gap place of the op of `header` if the header connects to the one above it (its
   * checksum is that header's parent: vsr.md §5.2 rule 5), checked against the checkpoint like
   * any other. Returns the new entry, or `undefined` when it does not connect.
   */
  private fillGap(header: Uint8Array): LogEntry | undefined {
    const op = readU64Number(header, PrepareLayout.op.offset)
    assert(op > this.commit, () => `op ${op} is above the commit`)
    assert(op < this.op, () => `op ${op} is below the head`)
    const above = this.log.find(op + 1)
    if (this.log.find(op) !== undefined || above === undefined || !u128Equal(above.header, PrepareLayout.parent.offset, header, 0)) return undefined
    assert(u128Equal(header, PrepareLayout.checkpoint_id.offset, this.checkpointIdFor(op), 0),
      () => `op ${op} was prepared on another checkpoint than ours: checkpoint diverged`)
    this.headerRing.set(header)
    return this.log.setHeader(header, this.journalHolds(header))
  }

  /** Whether the journal durably holds this very prepare, with no other write of its op on the way. */
  private journalHolds(header: Uint8Array): boolean {
    const op = readU64Number(header, PrepareLayout.op.offset)
    const held = this.journalSlots[op % this.config.storage.journalSlotCount]
    assert(header.length >= headerSize, () => "a header")
    assert(held === undefined || held.op % this.config.storage.journalSlotCount === op % this.config.storage.journalSlotCount, () => "a slot holds its ops")
    return held !== undefined && held.op === op && u128Equal(header, 0, held.checksum, 0) && !this.writesInFlight.has(op)
  }

  /**
   * The prepare of a logged op, known by its header, goes to the journal, unless the newest write
   * of that op in flight is of this very prepare already (a view change brought back a header
   * whose write had not landed yet): that write makes it durable.
   */
  private writeLogged(entry: LogEntry, prepare: Uint8Array): void {
    assert(!entry.durable, () => `op ${entry.op} is written once`)
    this.log.fill(entry, prepare)
    assert(entry.written, () => `op ${entry.op} is being written`)
    this.repairRequests?.done(entry.op)
    const newest = this.writesInFlight.get(entry.op)?.at(-1)
    if (newest === undefined || !u128Equal(newest, 0, prepare, 0)) this.writeJournal(prepare)
  }

  /** Writes again a cached prepare whose journal write another version overwrote. */
  private rewrite(entry: LogEntry, prepare: Uint8Array): void {
    assert(!entry.written, () => `op ${entry.op} is to be written again`)
    assert(!entry.durable, () => `op ${entry.op} is not durable`)
    assert(this.log.holds(entry, prepare), () => `op ${entry.op}: the cached prepare is the entry's`)
    entry.written = true
    this.writeJournal(prepare)
  }

  /** Asks the shell to write a prepare to the journal; its completion is matched to it (`writesInFlight`). */
  private writeJournal(prepare: Uint8Array): void {
    const op = readU64Number(prepare, PrepareLayout.op.offset)
    const writes = this.writesInFlight.get(op) ?? []
    writes.push(prepare.slice(0, checksumSize))
    this.writesInFlight.set(op, writes)
    // A write and the writes of the same op a view change asked for since: never many.
    assert(writes.length <= this.config.replicaCount + 2, () => `op ${op}: ${writes.length} writes in flight`)
    assert(this.writesInFlight.size <= this.config.storage.journalSlotCount, () => "writes in flight within the journal")
    this.outputs.push({ _tag: "JournalWrite", op, prepare })
  }

  /**
   * A prepare of an op the backup's log already reached: written if only its header was known, or
   * if it fills a gap below a header it connects to (a repaired prepare: the chain connects to the
   * head), else acknowledged again if durable (its `prepare_ok` may have been lost). Anything else
   * changes nothing.
   */
  private prepareHeld(now: Now, prepare: Uint8Array): void {
    assert(!this.leading, () => "a backup acknowledges")
    const op = readU64Number(prepare, PrepareLayout.op.offset)
    // Beyond our head from an older view, or in a view change: not ours to take as a head; and in
    // a view change only the new primary repairs (viewChangeTick).
    if (op > this.op || (this.statusNow === "view_change" && !this.logInstalled)) return
    const entry = op > this.commit ? this.log.find(op) ?? this.fillGap(prepare.subarray(0, headerSize)) : undefined
    if (entry === undefined || !this.log.holds(entry, prepare)) return
    assert(op <= this.op, () => "a prepare already held is of an op the log reached")
    if (!entry.written) {
      this.writeLogged(entry, prepare)
      this.requestPrepares()
      return this.advance(now)
    }
    if (entry.durable && entry.op <= this.prepareOkMax) this.sendPrepareOk(entry.header)
  }

  /**
   * To the primary of our started view, with our view (vsr.md §3.6), once that view and its log
   * are durable (§4.8): an ok from a view we could forget after a crash could help a deposed
   * primary commit. Until then the oks wait (`ackLog` sends them when the view state is written).
   */
  private sendPrepareOk(header: Uint8Array): void {
    assert(!this.leading, () => "the primary's own write is its ok")
    assert(header[FrameLayout.command.offset] === Command.prepare, () => "a prepare_ok acknowledges a prepare")
    if (this.statusNow !== "normal" || this.durableLogView !== this.view) return
    const ok = buildPrepareOk(header, { view: this.view, replica: this.config.replica, commitMin: BigInt(this.commit) })
    assert(u128Equal(ok, PrepareOkLayout.prepare_checksum.offset, header, 0), () => "the ok names the prepare")
    this.outputs.push({ _tag: "SendToReplica", replica: this.primaryOf(this.view), message: ok })
  }

  /** The primary counts a backup's `prepare_ok` (vsr.md §3.7): in our view, for the prepare in flight by checksum. */
  private onPrepareOk(now: Now, ok: Uint8Array): void {
    assert(ok[FrameLayout.command.offset] === Command.prepare_ok, () => "a prepare_ok")
    if (!this.leading || readU32(ok, FrameLayout.view.offset) !== this.view) return
    const replica = ok[FrameLayout.replica.offset]!
    if (replica === this.config.replica || replica >= this.config.replicaCount) return
    const entry = this.pipeline.find(readU64Number(ok, PrepareOkLayout.op.offset))
    // An ok for a prepare committed since, or for another prepare of that op, changes nothing.
    if (entry === undefined || !u128Equal(ok, PrepareOkLayout.prepare_checksum.offset, entry.prepare, 0)) return
    assert(u128Equal(ok, PrepareOkLayout.checkpoint_id.offset, entry.prepare, PrepareLayout.checkpoint_id.offset), () => "an ok repeats its prepare's checkpoint id")
    if (!this.pipeline.ack(entry.op, replica)) return
    // A new ok: the quorum is reachable, abdication waits afresh (vsr.md §4.1.2).
    this.abdicateTick = undefined
    this.abdicating = false
    this.advance(now)
  }

  /**
   * A backup learns how far the primary committed (vsr.md §3.8). A heartbeat no newer than the
   * last is ignored; one naming another prepare at an op the backup holds is a fork, a defect.
   */
  private onCommitHeartbeat(now: Now, message: Uint8Array): void {
    assert(message[FrameLayout.command.offset] === Command.commit, () => "a commit heartbeat")
    if (this.statusNow !== "normal" || this.primary || readU32(message, FrameLayout.view.offset) !== this.view) return
    if (message[FrameLayout.replica.offset] !== this.primaryOf(this.view)) return
    const sentNs = readU64(message, CommitLayout.timestamp_monotonic.offset)
    if (sentNs <= this.heartbeatNs) return
    this.heartbeatNs = sentNs
    // The primary lives: our vote to leave its view stands no more (vsr.md §4.1.3).
    this.primarySeenTick = this.ticks
    this.exitVotes.withdraw()
    const commit = readU64Number(message, CommitLayout.commit.offset)
    const held = commit === this.commit ? this.commitChecksum : this.log.find(commit)?.header
    assert(held === undefined || u128Equal(message, CommitLayout.commit_checksum.offset, held, 0), () => `op ${commit}: the primary committed another prepare than ours`)
    if (commit > this.commitMax) this.commitMax = commit
    this.heartbeatCommit = { op: commit, checksum: message.slice(CommitLayout.commit_checksum.offset, CommitLayout.commit_checksum.offset + checksumSize) }
    this.advance(now)
  }

  /** A ping to every other replica (vsr.md §2.3, §8.1): our checkpoint, our release, and a monotonic timestamp to echo. */
  private sendPing(now: Now): void {
    assert(this.config.replicaCount > 1, () => "a cluster of one has nobody to ping")
    const header = zeroHeader(Command.ping)
    header.cluster = this.config.cluster
    // Pings and pongs carry the durable view (vsr.md §4.8): a peer behind jumps to it.
    header.view = this.durableView
    header.release = this.config.release
    header.replica = this.config.replica
    header.checkpoint_id = u128FromBytes(this.checkpoint.id, 0)
    header.checkpoint_op = BigInt(this.checkpoint.op)
    header.ping_timestamp_monotonic = now.monotonicNs > 0n ? now.monotonicNs : 1n
    // The releases this binary runs, ascending and zero padded: one, ours.
    header.release_count = 1
    const body = new Uint8Array(4 * vsrReleasesMax)
    new DataView(body.buffer).setUint32(0, this.config.release, true)
    const message = buildMessage(header, body)
    assert(readU32(message, FrameLayout.size.offset) === headerSize + body.length, () => "a ping carries the releases")
    for (let replica = 0; replica < this.config.replicaCount; replica++) {
      if (replica !== this.config.replica) this.outputs.push({ _tag: "SendToReplica", replica, message })
    }
  }

  /** A replica's ping gets a pong echoing its timestamp with our wall clock (vsr.md §8.1). */
  private onPing(now: Now, ping: Uint8Array): void {
    assert(ping[FrameLayout.command.offset] === Command.ping, () => "a ping")
    const replica = ping[FrameLayout.replica.offset]!
    if (replica === this.config.replica || replica >= this.config.replicaCount || this.statusNow === "recovering_head") return
    const header = zeroHeader(Command.pong)
    header.cluster = this.config.cluster
    header.view = this.durableView
    header.release = this.config.release
    header.replica = this.config.replica
    header.ping_timestamp_monotonic = readU64(ping, PingLayout.ping_timestamp_monotonic.offset)
    // Never zero (header rules), whatever a simulated clock says.
    header.pong_timestamp_wall = now.realtimeNs > 0n ? now.realtimeNs : 1n
    const pong = buildMessage(header, new Uint8Array(0))
    assert(readU64(pong, PongLayout.ping_timestamp_monotonic.offset) !== 0n, () => "a pong echoes the ping's timestamp")
    this.outputs.push({ _tag: "SendToReplica", replica, message: pong })
  }

  /** A pong to our ping: a sample of the sender's clock (vsr.md §8.1). */
  private onPong(now: Now, pong: Uint8Array): void {
    assert(pong[FrameLayout.command.offset] === Command.pong, () => "a pong")
    assert(this.config.replicaCount > 1, () => "a cluster of one pings nobody")
    const replica = pong[FrameLayout.replica.offset]!
    if (replica === this.config.replica || replica >= this.config.replicaCount) return
    this.clock.learn(replica, readU64(pong, PongLayout.ping_timestamp_monotonic.offset), readU64(pong, PongLayout.pong_timestamp_wall.offset), now)
  }

  /** The primary's heartbeat: how far it committed, to every backup (vsr.md §3.8). */
  private sendHeartbeat(now: Now): void {
    assert(this.leading, () => "the primary sends heartbeats")
    assert(this.config.replicaCount > 1, () => "a cluster of one has nobody to send heartbeats to")
    const header = zeroHeader(Command.commit)
    header.cluster = this.config.cluster
    header.view = this.view
    header.replica = this.config.replica
    header.commit_checksum = u128FromBytes(this.commitChecksum, 0)
    header.checkpoint_id = u128FromBytes(this.checkpoint.id, 0)
    header.checkpoint_op = BigInt(this.checkpoint.op)
    header.commit = BigInt(this.commit)
    // Never zero (header rules): backups order heartbeats by it.
    header.timestamp_monotonic = now.monotonicNs > 0n ? now.monotonicNs : 1n
    const message = buildMessage(header, new Uint8Array(0))
    assert(readU64Number(message, CommitLayout.commit.offset) === this.commit, () => "the heartbeat names our commit")
    for (let replica = 0; replica < this.config.replicaCount; replica++) {
      if (replica !== this.config.replica) this.outputs.push({ _tag: "SendToReplica", replica, message })
    }
  }

  /** The prepare timeout fired: each prepare in flight goes again to the replicas whose ok is missing (vsr.md §3.4). */
  private resendPrepares(): void {
    assert(this.leading, () => "the primary resends prepares")
    assert(this.pipeline.length > 0, () => "prepares in flight are resent")
    this.prepareTimeout.backoff(this.prng)
    assert(this.pipeline.prepared.length <= this.pipeline.prepareMax, () => "the pipeline within its bound")
    for (const entry of this.pipeline.prepared) {
      for (let replica = 0; replica < this.config.replicaCount; replica++) {
        if (replica !== this.config.replica && !entry.oks.has(replica)) this.outputs.push({ _tag: "SendToReplica", replica, message: entry.prepare })
      }
    }
  }

  /**
   * Starts every commit a backup may start now (vsr.md §3.8), in op order: an op it holds,
   * durable in its journal, at or below commit_max. Its prepare comes from the cache, else from
   * the journal (`ReadPrepare`). Writes wait while a checkpoint is written, as on the primary.
   */
  private advanceBackup(): void {
    assert(!this.leading, () => "a backup commits up to commit_max")
    assert(this.statusNow === "normal" || this.statusNow === "view_change", () => "a backup commits in a view, or between views")
    // Each pass commits (and removes) one entry: the log's length as it starts bounds the loop.
    const passes = this.log.length
    for (let pass = 0; pass < passes && this.commitStage._tag === "idle"; pass++) {
      const next = this.log.first()
      if (next === undefined || !next.durable || next.op > this.commitMax) break
      assert(next.op === this.commit + 1, () => "the log starts after the commit")
      // The log connects down from the head through every place, and so to our commit: a
      // committed op is never truncated (vsr.md §4.9), so the history our commit is on goes on here.
      assert(u128Equal(next.header, PrepareLayout.parent.offset, this.commitChecksum, 0), () => `op ${next.op} does not chain to the committed op ${this.commit}`)
      if (this.checkpointStage !== "none" && !isReadOperation(next.header[PrepareLayout.operation.offset]!)) break
      if (next.prepare === undefined) {
        this.commitStage = { _tag: "reading", op: next.op }
        this.outputs.push({ _tag: "ReadPrepare", op: next.op, checksum: next.header.slice(0, checksumSize) })
        break
      }
      this.commitStart(next.prepare)
    }
  }

  /**
   * The newest op this replica acknowledges (vsr.md §7.1 `op_prepare_ok_max`; Scarab's trigger
   * is the checkpoint op itself): an ok above the next checkpoint plus a pipeline would let the
   * primary commit far enough to count that checkpoint durable (layout.ts `durableOp`), so a
   * replica of a cluster acknowledges that far only once it has stored the checkpoint itself. It
   * still writes those prepares; their oks go out when its checkpoint is stored (`releaseOks`). A
   * replica of one acknowledges every write: its own write is the quorum, and reads commit past
   * that op while a checkpoint is written (docs/decisions.md, "The replica core reshaped").
   */
  private get prepareOkMax(): number {
    if (this.config.replicaCount === 1) return Number.MAX_SAFE_INTEGER
    const next = checkpointAfter(this.config.storage, this.checkpoint.op)
    assert(next > this.checkpoint.op, () => "the next checkpoint is after the durable one")
    // Below prepareMax: a replica acknowledges only what it may write.
    assert(next + this.config.storage.pipelineMax <= this.opMax, () => "prepareOkMax within the journal's reach")
    return next + this.config.storage.pipelineMax
  }

  /** A checkpoint was stored: the oks withheld above the former `prepareOkMax` (`before`) go out up to the new one. */
  private releaseOks(before: number): void {
    const okMax = this.prepareOkMax
    assert(okMax >= before, () => "prepareOkMax never goes back")
    assert(this.oksWithheld.size === 0 || this.config.replicaCount > 1, () => "a replica of one withholds no ok")
    if (okMax === before) return
    for (const [op, header] of [...this.oksWithheld]) {
      if (op > okMax) continue
      this.oksWithheld.delete(op)
      // The ok goes out even for an op committed meanwhile (a read commits through a checkpoint);
      // on the primary, an op the backups' oks committed has left the pipeline: nothing to count.
      if (this.leading) this.pipeline.ack(op, this.config.replica)
      else this.sendPrepareOk(header)
    }
  }

  private withholdOk(op: number, header: Uint8Array): void {
    assert(op > this.prepareOkMax, () => `op ${op} is acknowledged at once`)
    this.oksWithheld.set(op, header)
    assert(this.oksWithheld.size <= this.config.storage.journalSlotCount, () => "oks withheld for ops within the journal")
  }

  /** A prepare read back from the journal: the next to commit, or one a new primary loads into its pipeline. */
  private logPrepareRead(now: Now, prepare: Uint8Array): void {
    const stage = this.commitStage
    assert(stage._tag === "reading" || stage._tag === "loading", () => "a prepare read while none was asked for")
    assert(readU64Number(prepare, PrepareLayout.op.offset) === stage.op, () => `the journal returned another op than ${stage.op}`)
    const entry = this.log.find(stage.op)
    this.commitStage = { _tag: "idle" }
    // A view change replaced the op's entry while the read was on its way: the next step decides afresh.
    if (entry === undefined || !this.log.holds(entry, prepare)) return this.advance(now)
    if (stage._tag === "loading") {
      this.loadedPrepares.set(stage.op, prepare)
      return this.advance(now)
    }
    assert(entry === this.log.first(), () => `a prepare read of op ${stage.op}, not the next to commit`)
    this.commitStart(prepare)
    this.advance(now)
  }

  // --- view change (vsr.md §4) -----------------------------------------------------------------

  /**
   * Before a replica-to-replica message is handled (vsr.md §4.1.4): a prepare or heartbeat of a
   * newer view (or, mid view change, of the view we are starting) means that view started
   * without us: ask its primary for it. A vote, join_view, ping or pong of a newer view moves us
   * into that view's change. Returns whether the message is handled further.
   */
  private viewJump(now: Now, message: Uint8Array): boolean {
    const command = message[FrameLayout.command.offset]
    const view = readU32(message, FrameLayout.view.offset)
    const sender = message[FrameLayout.replica.offset]!
    assert(this.config.replicaCount > 1, () => "a cluster's replica")
    assert(this.statusNow !== "recovering", () => "a recovered replica hears its peers")
    if (sender === this.config.replica || sender >= this.config.replicaCount || view < this.view) return true
    const started = command === Command.prepare || command === Command.commit
    if (this.statusNow === "recovering_head") {
      // It asks the newest view it heard of (each tick, at most every second), never its own stale one again.
      if (started || view > this.view) this.viewHeard = Math.max(this.viewHeard, view)
      return true
    }
    if (started) {
      if (view === this.view && this.statusNow === "normal") return true
      this.requestView(view)
      return false
    }
    const joins = command === Command.exit_view || command === Command.join_view || command === Command.ping || command === Command.pong
    if (joins && view > this.view) this.enterViewChange(now, view, this.statusNow === "normal" || this.logInstalled)
    return true
  }

  /** Asks the primary of `view` for its view message (`get_view`), at most every second. */
  private requestView(view: number): void {
    assert(view >= this.view, () => "a view we are not past")
    assert(this.config.replicaCount > 1, () => "a cluster's replica")
    const primary = this.primaryOf(view)
    if (primary === this.config.replica || this.ticks < this.getViewDueTick) return
    this.getViewDueTick = this.ticks + getViewResendTicks
    this.outputs.push({ _tag: "SendToReplica", replica: primary, message: buildGetView(this.config.cluster, this.config.replica, view, this.nonce) })
  }

  /** Our vote to leave the view (vsr.md §4.1.3): counted at once, sent now and every 500 ms while it stands. */
  private voteExitView(now: Now): void {
    assert(this.statusNow === "normal" || this.statusNow === "view_change", () => "a replica in a view votes")
    assert(this.config.replicaCount > 1, () => "a cluster's replica")
    // Counts as a sign of life: the next vote is due after another timeout.
    this.primarySeenTick = this.ticks
    this.viewChangeStartTick = this.ticks
    if (!this.exitVotes.own) {
      this.exitVotes.add(this.config.replica, this.ticks)
      this.exitViewDueTick = this.ticks
      this.sendExitView()
    }
    this.exitQuorum(now)
  }

  private sendExitView(): void {
    assert(this.exitVotes.own, () => "our vote stands")
    assert(this.config.replicaCount > 1, () => "a cluster's replica votes")
    this.exitViewDueTick = this.ticks + exitViewResendTicks
    // A message of a view is sent once that view is durable (vsr.md §4.8).
    if (this.durableView < this.view) return
    const message = buildExitView(this.config.cluster, this.config.replica, this.view)
    for (let replica = 0; replica < this.config.replicaCount; replica++) {
      if (replica !== this.config.replica) this.outputs.push({ _tag: "SendToReplica", replica, message })
    }
  }

  private onExitView(now: Now, message: Uint8Array): void {
    assert(message[FrameLayout.command.offset] === Command.exit_view, () => "an exit_view")
    assert(this.statusNow === "normal" || this.statusNow === "view_change", () => "votes count in a view")
    if (readU32(message, FrameLayout.view.offset) !== this.view) return
    this.exitVotes.add(message[FrameLayout.replica.offset]!, this.ticks)
    this.exitQuorum(now)
  }

  /** A view-change quorum of votes to leave the view: start the next (vsr.md §4.1.3). */
  private exitQuorum(now: Now): void {
    assert(this.exitVotes.count <= this.config.replicaCount, () => "a vote per replica")
    assert(this.statusNow === "normal" || this.statusNow === "view_change", () => "votes count in a view")
    if (this.exitVotes.count < this.quorums.viewChange) return
    this.enterViewChange(now, this.view + 1, this.statusNow === "normal" || this.logInstalled)
  }

  /**
   * Enters the view change for `view` (vsr.md §4.2). The join_view's headers are rebuilt when our
   * log is that of our log view as it stands (we were in a started view, or had installed a
   * quorum's log); mid view change they stay those we sent already (`rebuild` false). The primary
   * leaving its view keeps its prepares in its log: they may be in the next view's log.
   */
  private enterViewChange(now: Now, view: number, rebuild: boolean): void {
    assert(this.config.replicaCount > 1, () => "a cluster of one never changes view")
    assert(view > this.view || (view === this.view && this.statusNow === "recovering"), () => `view ${view} from view ${this.view}`)
    if (this.leading) this.leavePipeline()
    if (rebuild) this.viewHeaders = this.joinViewHeaders()
    this.statusNow = "view_change"
    this.view = view
    this.exitVotes.clear()
    this.joinViews.clear()
    this.logInstalled = false
    this.loadedPrepares.clear()
    this.heartbeatNs = 0n
    this.heartbeatCommit = undefined
    this.abdicateTick = undefined
    this.abdicating = false
    this.viewChangeStartTick = this.ticks
    this.joinViewDueTick = this.ticks
    this.getViewDueTick = this.ticks
    this.persistView()
    this.statusChanged()
    this.sendJoinView(now)
    assert(this.viewHeaders[0] !== undefined, () => "a join_view starts with our head")
  }

  /** The primary's prepares in flight join its log, as written (and durable if its write is done), cached; queued requests go. */
  private leavePipeline(): void {
    assert(this.leading, () => "the primary leaves its view")
    assert(this.log.length === 0, () => "the primary keeps no log beside its pipeline")
    this.prepareTimeout.stop()
    const prepares = this.pipeline.clear()
    // The log's places start after the commit, which moved on while the pipeline committed.
    this.log.reset(this.commit)
    if (prepares.length === 0) return
    this.log.reach(prepares.at(-1)!.op)
    for (const prepared of prepares) {
      const durable = !this.writesInFlight.has(prepared.op)
      this.log.restore({ op: prepared.op, header: prepared.prepare.slice(0, headerSize), prepare: prepared.prepare, written: true, durable })
    }
    assert(this.op === this.commit + this.log.length, () => "every prepare in flight is in the log")
  }

  /**
   * Our claim about the uncommitted end of our log (vsr.md §4.3): from the head down, at most a
   * pipeline plus one, stopping after the first op at or below commit_max; a blank where we hold
   * no header.
   */
  private joinViewHeaders(): Array<Uint8Array | undefined> {
    const headers: Array<Uint8Array | undefined> = []
    const max = joinViewHeadersMax(this.config.storage.pipelineMax)
    for (let op = this.op; op >= this.commit && headers.length < max; op--) {
      headers.push(op === this.commit ? this.commitHeader : this.log.find(op)?.header)
      if (op <= this.commitMax) break
    }
    assert(headers[0] !== undefined, () => "the head's place is never empty")
    assert(headers.length <= max, () => "a join_view holds at most a pipeline plus one")
    return headers
  }

  /**
   * The join_view's bits (vsr.md §4.3): `present` when we hold that exact prepare (written or being
   * written); `nack` when we certainly never acknowledged it: no header, or its prepare not yet
   * durable (acks follow the write), unless its slot is damaged or holds a prepare of the op our
   * log does not connect to: either may be the very prepare.
   */
  private joinViewBits(headers: ReadonlyArray<Uint8Array | undefined>): { readonly present: number; readonly nack: number } {
    let present = 0
    let nack = 0
    const headOp = readU64Number(headers[0]!, PrepareLayout.op.offset)
    headers.forEach((header, i) => {
      const op = headOp - i
      const committed = op === this.commit && header !== undefined && u128Equal(header, 0, this.commitHeader, 0)
      const entry = op > this.commit ? this.log.find(op) : undefined
      const same = entry !== undefined && header !== undefined && u128Equal(entry.header, 0, header, 0)
      // The journal may hold the very prepare below a gap our log does not reach (after a restart).
      const journaled = header !== undefined && this.journalHolds(header)
      if (committed || (same && entry.written) || journaled) present |= 1 << i
      const slot = op % this.config.storage.journalSlotCount
      // A blank where our journal durably holds a prepare of the op that may be the log view's (any,
      // below another blank; below a header, its parent): it may be the one we acknowledged.
      const held = this.journalSlots[slot]
      const above = i === 0 ? undefined : headers[i - 1]
      const heldBelowGap = header === undefined && held?.op === op && (above === undefined || u128Equal(above, PrepareLayout.parent.offset, held.checksum, 0))
      if (!committed && !(same && entry.durable) && !journaled && !this.faultySlots.has(slot) && !heldBelowGap) nack |= 1 << i
    })
    assert((present & ~((1 << headers.length) - 1)) === 0, () => "bits within the headers")
    assert((nack & ~((1 << headers.length) - 1)) === 0, () => "bits within the headers")
    return { present, nack }
  }

  /** Sends our join_view to the primary of the view (ours goes straight to our own count), once our view state is durable. */
  private sendJoinView(now: Now): void {
    assert(this.statusNow === "view_change", () => "a join_view while changing views")
    this.joinViewDueTick = this.ticks + joinViewResendTicks
    if (this.logInstalled || this.durableView < this.view || this.durableLogView < this.logView) return
    const headers = this.viewHeaders
    assert(headers.length > 0, () => "join_view headers")
    const { present, nack } = this.joinViewBits(headers)
    const fields = {
      cluster: this.config.cluster, replica: this.config.replica, view: this.view, logView: this.logView, commitMin: this.commit,
      checkpointOp: this.checkpoint.op, headers, present, nack
    }
    if (!this.primary) {
      this.outputs.push({ _tag: "SendToReplica", replica: this.primaryOf(this.view), message: buildJoinView(fields) })
      return
    }
    this.joinViews.set(this.config.replica, { ...fields, op: readU64Number(headers[0]!, PrepareLayout.op.offset) })
    this.chooseAndInstall(now)
  }

  /** A join_view for the view we are to start (vsr.md §4.4): at most one per replica, the newest by checkpoint and commit. */
  private onJoinView(now: Now, message: Uint8Array): void {
    assert(message[FrameLayout.command.offset] === Command.join_view, () => "a join_view")
    assert(readU32(message, FrameLayout.size.offset) === message.length, () => "a whole message")
    if (this.statusNow !== "view_change" || !this.primary || this.logInstalled || readU32(message, FrameLayout.view.offset) !== this.view) return
    const decoded = decodeJoinView(message, this.clusterBytes, joinViewHeadersMax(this.config.storage.pipelineMax))
    if (typeof decoded === "string") return
    const op = readU64Number(decoded.headers[0]!, PrepareLayout.op.offset)
    if (decoded.logView >= decoded.view || op < decoded.commitMin || decoded.commitMin < decoded.checkpointOp) return
    const held = this.joinViews.get(decoded.replica)
    if (held !== undefined && held.checkpointOp >= decoded.checkpointOp && held.commitMin >= decoded.commitMin) return
    this.joinViews.set(decoded.replica, { ...decoded, op })
    this.chooseAndInstall(now)
  }

  /**
   * With a quorum of join_views (ours among them), choose the log (view_change.ts) and install it
   * (vsr.md §4.5). A primary that could not hold the chosen log in its journal (its checkpoint is
   * too far behind) steps aside for the next view's primary.
   */
  private chooseAndInstall(now: Now): void {
    assert(this.primary, () => "the new primary chooses")
    if (!this.joinViews.has(this.config.replica)) return
    const jvs = [...this.joinViews.values()]
    const choice = chooseLog(jvs, this.quorums, this.config.replicaCount, this.config.storage.pipelineMax)
    if (choice._tag !== "Chosen") {
      if (choice._tag !== "AwaitingQuorum" && this.stalledView !== this.view) {
        this.stalledView = this.view
        this.outputs.push({ _tag: "ViewChangeStalled", view: this.view, op: choice.op, undecidable: choice._tag === "Undecidable" })
      }
      return
    }
    if (choice.head > this.opMax) return this.enterViewChange(now, this.view + 1, false)
    // Timestamps never go back, not even below an op the choice truncates (vsr.md §4.5 step 1).
    let timestamp = this.timestamp
    for (const jv of jvs) {
      const headTimestamp = readU64(jv.headers[0]!, PrepareLayout.timestamp.offset)
      if (headTimestamp > timestamp) timestamp = headTimestamp
    }
    this.commitMax = Math.max(this.commitMax, choice.committed)
    const candidates = (op: number) => jvs.map((jv) => jv.headers[jv.op - op])
    const head = choice.head === this.commit ? undefined : choice.canonical.map((jv) => jv.headers[jv.op - choice.head]).find((header) => header !== undefined)
    assert(choice.head === this.commit || head !== undefined, () => `the canonical join_views hold the head ${choice.head}`)
    this.installLog(head, candidates)
    this.timestamp = timestamp > this.timestamp ? timestamp : this.timestamp
    this.logView = this.view
    this.logInstalled = true
    this.viewHeaders = []
    this.repairDueTick = this.ticks
    assert(this.op === choice.head, () => "the chosen head is ours")
    this.advance(now)
  }

  /**
   * Replaces the log above the commit with the one connected down from `head` (log_chain.ts):
   * each op's header is the candidate that connects, or the header we held if that one does;
   * what we knew of a prepare we keep (written, durable, cached) when the header is the same.
   * The chain stops at a gap, which repair fills from the top. Everything above the head, and
   * every header not in the new log, is forgotten (the header ring, oks withheld). A header whose
   * prepare the journal durably holds is durable at once.
   */
  private installLog(head: Uint8Array | undefined, candidates: (op: number) => ReadonlyArray<Uint8Array | undefined>): void {
    const headOp = head === undefined ? this.commit : readU64Number(head, PrepareLayout.op.offset)
    assert(headOp >= this.commit, () => `head ${headOp} below the commit ${this.commit}: a committed op is never truncated`)
    assert(headOp <= this.opMax, () => `head ${headOp} beyond the journal's ${this.opMax}`)
    const previous = this.log.takeAll()
    this.log.reset(this.commit)
    // A head at our commit is our committed op: committed ops never change (vsr.md §4.9).
    assert(head === undefined || headOp > this.commit || u128Equal(head, 0, this.commitHeader, 0), () => `op ${headOp}: the view's log differs from what we committed`)
    const chain = head === undefined || headOp === this.commit ? [] : connectDown(head, this.commit + 1, (op) => [...candidates(op), previous.get(op)?.header])
    for (let op = this.commit + 1; op <= Math.max(this.op, headOp); op++) this.headerRing.remove(op)
    this.op = this.commit
    this.parent = this.commitChecksum
    this.timestamp = readU64(this.commitHeader, PrepareLayout.timestamp.offset)
    if (head !== undefined) this.log.reach(headOp)
    for (const header of chain) {
      const op = readU64Number(header, PrepareLayout.op.offset)
      const old = previous.get(op)
      if (old !== undefined && u128Equal(old.header, 0, header, 0)) this.log.restore(old)
      else this.log.setHeader(header, this.journalHolds(header))
      this.headerRing.set(header)
    }
    for (const [op, header] of [...this.oksWithheld]) {
      const entry = this.log.find(op)
      if (entry === undefined || !u128Equal(entry.header, 0, header, 0)) this.oksWithheld.delete(op)
    }
    if (head !== undefined) {
      this.op = headOp
      this.parent = head.slice(0, checksumSize)
      this.timestamp = readU64(head, PrepareLayout.timestamp.offset)
    }
    assert(this.op === this.commit + this.log.length, () => "the log spans the commit to the head")
  }

  /**
   * The new primary completes the view change (vsr.md §4.6), a step each time its log changes:
   * once no header is missing, its view message is fixed, made durable and sent; once every
   * uncommitted op is durable here and everything up to commit_max committed, the view starts.
   */
  private viewChangeProgress(now: Now): void {
    assert(this.primary, () => "the new primary completes the view change")
    assert(this.logInstalled, () => "the new primary has installed a quorum's log")
    assert(this.statusNow === "view_change", () => "while changing views")
    if (this.log.oldestGap() !== undefined) return
    if (this.viewHeaders.length === 0) {
      this.viewHeaders = this.viewMessageHeaders()
      this.persistView()
    }
    if (this.commit < this.commitMax || this.commitStage._tag !== "idle" || this.durableLogView < this.view) return
    for (let op = this.commit + 1; op <= this.op; op++) {
      const entry = this.log.find(op)
      assert(entry !== undefined, () => `op ${op}: no gap remains`)
      if (!entry.durable) return // repair fetches it, or its write is in flight
      if (entry.prepare === undefined && !this.loadedPrepares.has(op)) {
        this.commitStage = { _tag: "loading", op }
        this.outputs.push({ _tag: "ReadPrepare", op, checksum: entry.header.slice(0, checksumSize) })
        return
      }
    }
    this.startView(now)
  }

  /** The view message's headers: from the head down to commit_max (and at least the head), none missing. */
  private viewMessageHeaders(): Array<Uint8Array> {
    const headers: Array<Uint8Array> = []
    for (let op = this.op; op >= Math.max(this.commit, Math.min(this.commitMax, this.op)); op--) {
      const header = op === this.commit ? this.commitHeader : this.log.find(op)?.header
      assert(header !== undefined, () => `op ${op}: the view's log has no gap`)
      headers.push(header)
    }
    assert(headers.length >= 1, () => "a view message holds its head")
    assert(headers.length <= joinViewHeadersMax(this.config.storage.pipelineMax), () => "at most a pipeline above commit_max")
    return headers
  }

  /**
   * The view starts (vsr.md §4.6 step 6): the uncommitted ops, each durable here, become the
   * pipeline (with their original view, op and checksum), acknowledged by ourselves; they commit
   * once a replication quorum acknowledges them in this view. They go to the backups again now.
   */
  private startView(now: Now): void {
    assert(this.commit === this.commitMax, () => "the new primary committed up to commit_max")
    assert(this.op - this.commit <= this.pipeline.prepareMax, () => "the uncommitted ops fit the pipeline")
    const entries = this.log.takeAll()
    this.statusNow = "normal"
    for (let op = this.commit + 1; op <= this.op; op++) {
      const entry = entries.get(op)!
      const prepare = entry.prepare ?? this.loadedPrepares.get(op)
      assert(prepare !== undefined, () => `op ${op} is loaded`)
      assert(entry.durable, () => `op ${op} is durable`)
      const body = prepare.subarray(headerSize)
      const operation = prepare[PrepareLayout.operation.offset]!
      const createEvents = operation === VsrOperation.pulse || operation === VsrOperation.register ? 0 : createEventCount(operation, body)
      this.pipeline.push({ op, prepare, creates: createEvents > 0 ? currentOperation(operation) : 0, createEvents })
      if (op <= this.prepareOkMax) this.pipeline.ack(op, this.config.replica)
      else this.withholdOk(op, entry.header)
    }
    this.loadedPrepares.clear()
    this.primarySeenTick = this.ticks
    this.statusChanged()
    if (this.pipeline.length > 0) {
      this.prepareTimeout.start()
      this.resendPrepares()
    }
    this.sendHeartbeat(now)
    this.advance(now)
  }

  /** Sends our view message (vsr.md §4.6 step 2): to every other replica, or (with its nonce) to one that asked. */
  private sendView(nonce: bigint, to: number | undefined): void {
    assert(this.primary, () => "the primary sends its view")
    assert(this.durableLogView === this.view, () => "the primary's log view is durable")
    // A started view's log has moved on since it started: its head and what is uncommitted now.
    const headers = this.leading ? this.pipelineHeaders() : this.viewHeaders
    assert(headers.length > 0, () => "a view message holds its head")
    assert(headers.every((header) => header !== undefined), () => "a view message has no blank")
    const message = buildView({
      cluster: this.config.cluster, replica: this.config.replica, view: this.view, nonce, commitMax: this.commitMax,
      checkpointOp: this.checkpoint.op, checkpointState: this.checkpointState, headers: headers as ReadonlyArray<Uint8Array>
    })
    for (let replica = 0; replica < this.config.replicaCount; replica++) {
      if (replica !== this.config.replica && (to === undefined || to === replica)) this.outputs.push({ _tag: "SendToReplica", replica, message })
    }
  }

  /** The headers of a started view's log as its primary holds it: its pipeline, newest first, and its commit. */
  private pipelineHeaders(): Array<Uint8Array> {
    assert(this.leading, () => "the primary of a started view")
    const headers: Array<Uint8Array> = []
    for (let op = this.op; op > this.commit; op--) headers.push(this.pipeline.find(op)!.prepare.subarray(0, headerSize))
    headers.push(this.commitHeader)
    assert(headers.length === this.pipeline.length + 1, () => "every prepare in flight and the commit")
    return headers
  }

  /** A `get_view` (vsr.md §4.7): the primary of that started view answers with its view message. */
  private serveView(message: Uint8Array): void {
    assert(message[FrameLayout.command.offset] === Command.get_view, () => "a get_view")
    assert(message.length === headerSize, () => "a get_view is a bare header")
    if (!this.leading || readU32(message, FrameLayout.view.offset) !== this.view || this.durableLogView !== this.view) return
    this.sendView(u128FromBytes(message, GetViewLayout.nonce.offset), message[FrameLayout.replica.offset]!)
  }

  /**
   * The primary's view message (vsr.md §4.7): its log replaces ours from its head down (as far as
   * it connects, and our journal can hold), and we are its backup. A replica restarted with a
   * damaged journal takes only a view provably newer than its crash (a newer view, or the answer to
   * this incarnation's get_view). A view no newer than what we hold only raises commit_max.
   */
  private onView(now: Now, message: Uint8Array): void {
    assert(message[FrameLayout.command.offset] === Command.view, () => "a view message")
    assert(this.statusNow !== "recovering", () => "a recovered replica hears its peers")
    const decoded = decodeView(message, this.clusterBytes)
    if (typeof decoded === "string" || decoded.view < this.view || decoded.replica !== this.primaryOf(decoded.view)) return
    if (decoded.replica === this.config.replica) return
    if (this.statusNow === "recovering_head" && decoded.view === this.view && decoded.nonce !== this.nonce) return
    if (this.statusNow === "normal" && decoded.view === this.view && decoded.op <= this.op) {
      if (decoded.commitMax > this.commitMax) this.commitMax = decoded.commitMax
      return this.advance(now)
    }
    if (decoded.view > this.view) this.enterViewChange(now, decoded.view, this.statusNow === "normal" || this.logInstalled)
    this.commitMax = Math.max(this.commitMax, decoded.commitMax)
    // The first header our journal can hold is our head; the view's log above it comes with our next checkpoint.
    const head = decoded.headers.find((header) => readU64Number(header, PrepareLayout.op.offset) <= this.opMax)
    const fits = head !== undefined && readU64Number(head, PrepareLayout.op.offset) >= this.commit
    this.installLog(fits ? head : undefined, (op) => [decoded.headers.find((header) => readU64Number(header, PrepareLayout.op.offset) === op)])
    this.logView = this.view
    this.viewHeaders = decoded.headers.slice(0, joinViewHeadersMax(this.config.storage.pipelineMax))
    this.statusNow = "normal"
    this.primarySeenTick = this.ticks
    this.exitVotes.clear()
    this.persistView()
    this.statusChanged()
    this.advance(now)
  }

  /**
   * The tick of a view change: the new primary repairs the log it installed; our join_view and
   * get_view go again when due, and a vote to move on after 5 s. Nobody else repairs (writes) in
   * a view change: what our journal holds is what our join_view's bits say we may have
   * acknowledged, and that must not change under them (a damaged slot written over would be nacked).
   */
  private viewChangeTick(now: Now): void {
    assert(this.statusNow === "view_change", () => "while changing views")
    assert(this.config.replicaCount > 1, () => "a cluster's replica")
    if (this.logInstalled) this.repairTick()
    if (this.ticks >= this.joinViewDueTick) this.sendJoinView(now)
    if (!this.primary) this.requestView(this.view)
    if (this.statusNow === "view_change" && this.ticks - this.viewChangeStartTick >= viewChangeStatusTicks) this.voteExitView(now)
  }

  /**
   * Primary abdication (vsr.md §4.1.2): prepares waiting for their quorum (or requests dropped for
   * want of cluster time) with no new ok for 10 s: the heartbeats stop, and the backups, hearing
   * nothing, vote us out. A new ok (onPrepareOk) ends it.
   */
  private checkAbdication(now: Now): void {
    assert(this.leading, () => "the primary abdicates")
    assert(now.monotonicNs >= 0n, () => "time")
    const waiting = this.pipeline.length > 0 || !this.clock.synchronized
    if (!waiting) {
      this.abdicateTick = undefined
      this.abdicating = false
    } else if (this.abdicateTick === undefined) {
      this.abdicateTick = this.ticks + primaryAbdicateTicks
    } else if (this.ticks >= this.abdicateTick) {
      this.abdicating = true
    }
  }

  /**
   * Writes the view state (vsr.md §4.8): one write at a time, none while a checkpoint's superblock
   * is written; a change meanwhile is written next. A new primary's log view is written with its
   * view message's headers, once no header is missing.
   */
  private persistView(): void {
    assert(this.config.replicaCount > 1, () => "a cluster of one never changes view")
    assert(this.logView <= this.view, () => "the log view is at most the view")
    const headers = this.viewHeaders
    if (this.viewWriting || this.checkpointStage === "superblock" || headers.length === 0) {
      this.viewWriteDue = true
      return
    }
    this.viewWriting = true
    this.viewWriteDue = false
    const op = readU64Number(headers.find((header) => header !== undefined)!, PrepareLayout.op.offset)
    this.outputs.push({
      _tag: "PersistView", view: this.view, logView: this.logView, commitMax: this.commitMax,
      headers: headers.map((header, i) => header ?? blankHeader(op - i))
    })
  }

  /**
   * The view state asked for is durable. What waited for it goes out: our join_view, or our view
   * message as the new primary, or the oks of a backup's log; a checkpoint's superblock waiting
   * for the write goes first, any newer view state after it.
   */
  private viewPersisted(now: Now, view: number, logView: number): void {
    assert(this.viewWriting, () => "a view state write was asked for")
    assert(view >= this.durableView, () => "the durable view never goes back")
    assert(logView >= this.durableLogView, () => "the durable log view never goes back")
    assert(view <= this.view, () => "the view written is one we stood in")
    assert(logView <= this.logView, () => "the log view written is one we installed")
    this.viewWriting = false
    this.servesOnceWritten = false
    this.durableView = view
    this.durableLogView = logView
    if (this.checkpointSuperblockWaiting) {
      this.checkpointSuperblockWaiting = false
      this.outputs.push({ _tag: "CheckpointSuperblock", op: this.checkpointingOp })
    } else if (this.viewWriteDue || view !== this.view || logView !== this.logView) {
      this.persistView()
    }
    if (this.statusNow === "view_change" && !this.logInstalled) this.sendJoinView(now)
    if (this.primary && this.logInstalled && this.durableLogView === this.view) this.sendView(0n, undefined)
    if (this.statusNow === "normal" && !this.primary) this.ackLog()
    if (this.exitVotes.own) this.sendExitView()
    this.advance(now)
  }

  /** A backup's oks for its log's durable ops, once its log view is durable (vsr.md §4.7 step 8). */
  private ackLog(): void {
    assert(this.statusNow === "normal", () => "a replica of a started view acknowledges")
    assert(!this.primary, () => "a backup acknowledges")
    if (this.durableLogView !== this.view) return
    assert(this.op === this.commit + this.log.length, () => "the log spans the commit to the head")
    for (let op = this.commit + 1; op <= this.op; op++) {
      const entry = this.log.find(op)
      if (entry === undefined || !entry.durable) continue
      if (op <= this.prepareOkMax) this.sendPrepareOk(entry.header)
      else this.withholdOk(op, entry.header)
    }
  }

  /**
   * Whether a restarted replica's head is certain (vsr.md §6.2): no damaged slot could have held
   * an op beyond it that we acknowledged (the slots of the ops after the head, up to the newest
   * op the journal may hold), and the head's own slot is sound.
   */
  private headCertain(): boolean {
    const slots = this.config.storage.journalSlotCount
    assert(this.op <= this.opMax, () => "the head within the journal")
    assert(this.faultySlots.size <= slots, () => "faulty slots are slots")
    if (this.op === this.opMax) return true
    if (this.op > this.commit && this.faultySlots.has(this.op % slots)) return false
    // Beyond a whole journal past the head, the slots repeat.
    for (let op = this.op + 1; op <= Math.min(this.opMax, this.op + slots); op++) if (this.faultySlots.has(op % slots)) return false
    return true
  }

  /** One log line per change of status or view (the shell writes it): who we are, where we stand, who leads. */
  private statusChanged(): void {
    const status = this.statusNow
    assert(status !== "recovering", () => "a status after recovery")
    assert(this.view >= this.logView, () => "the view is at least the log view")
    this.outputs.push({ _tag: "StatusChanged", status, view: this.view, primary: this.primaryOf(this.view) })
  }

  /**
   * A read did not find the prepare asked for in its slot: a view change replaced the op's entry
   * meanwhile (the next step decides afresh), another version's write landed over it (ours is
   * written again), or the slot is damaged. Damaged, it may hold a prepare we acknowledged: the
   * slot is faulty (its op never nacked, vsr.md §4.3) and repair fetches the prepare from a peer.
   */
  private logPrepareUnread(now: Now, op: number): void {
    const stage = this.commitStage
    assert(stage._tag === "reading" || stage._tag === "loading", () => `op ${op}: a read was asked for`)
    assert(stage.op === op, () => `op ${op}: the read asked for was of op ${stage.op}`)
    this.commitStage = { _tag: "idle" }
    const entry = this.log.find(op)
    if (entry?.durable === true) {
      const slot = op % this.config.storage.journalSlotCount
      if (this.journalHolds(entry.header)) {
        this.faultySlots.add(slot)
        this.journalSlots[slot] = undefined
      }
      entry.durable = false
      entry.written = false
      if (entry.prepare !== undefined) this.rewrite(entry, entry.prepare)
    }
    this.advance(now)
  }

  // --- repair (vsr.md §5.1-§5.3) ---------------------------------------------------------------

  /**
   * The backup's repair loop (vsr.md §5.1), every 100 ms ± 50 %: a head below the cluster's
   * commit moves up by fetching the prepare the primary's heartbeat named; the oldest gap below the
   * head is filled from the top by a random peer's headers (at most a message's worth); then the
   * prepares of ops known by header alone are asked for, and a lost client reply.
   */
  private repairTick(): void {
    assert(!this.leading, () => "a backup repairs its log")
    assert(this.repairRequests !== undefined, () => "a cluster's backup repairs")
    if (this.ticks < this.repairDueTick) return
    this.repairDueTick = this.ticks + repairTicksMin + this.prng.below(repairTicksJitter + 1)
    this.repairRequests.expire(this.ticks)
    const beat = this.heartbeatCommit
    if (beat !== undefined && beat.op > this.op) {
      // Beyond the journal's reach, the newest op we may hold: any peer's prepare of it (in view 0
      // there is one), which becomes the head; our next checkpoint then lets the head go further.
      if (beat.op <= this.opMax) this.sendGetPrepare(this.randomPeer(), beat.op, beat.checksum)
      else if (this.op < this.opMax) this.sendGetPrepare(this.randomPeer(), this.opMax, undefined)
    }
    // The oldest gap first (commits wait for it), and every header above it a message holds: the
    // places already held are skipped, the gaps among them fill from the top down.
    const gap = this.log.oldestGap()
    if (gap !== undefined) {
      const header = zeroHeader(Command.get_headers)
      header.op_min = BigInt(gap)
      header.op_max = BigInt(Math.min(gap + getHeadersMax - 1, this.op - 1))
      this.sendRepairRequest(this.randomPeer(), header)
    }
    this.requestPrepares()
    this.requestReply()
  }

  /** Asks `peer` for the prepare of `op`: the one of `checksum`, or (none named) whichever it holds, in our view (vsr.md §2.3). */
  private sendGetPrepare(peer: number, op: number, checksum: Uint8Array | undefined): void {
    assert(peer !== this.config.replica, () => "a peer is asked")
    assert(checksum === undefined || checksum.length >= checksumSize, () => "a get_prepare names the prepare's checksum")
    const header = zeroHeader(Command.get_prepare)
    header.prepare_op = BigInt(op)
    if (checksum !== undefined) header.prepare_checksum = u128FromBytes(checksum, 0)
    else header.view = this.view
    this.sendRepairRequest(peer, header)
  }

  /** A repair request (`get_headers`, `get_prepare`, `get_reply`: bare headers) from us to `peer`. */
  private sendRepairRequest(peer: number, header: AnyHeader): void {
    assert(peer !== this.config.replica, () => "a peer is asked")
    header.cluster = this.config.cluster
    header.replica = this.config.replica
    const message = buildMessage(header, new Uint8Array(0))
    assert(message.length === headerSize, () => "a repair request is a bare header")
    this.outputs.push({ _tag: "SendToReplica", replica: peer, message })
  }

  /** Asks a random peer for the oldest reply our table holds by its header alone (vsr.md §5.4), one per repair round. */
  private requestReply(): void {
    assert(this.config.replicaCount > 1, () => "a cluster's replica repairs replies")
    const session = this.sessions.replyMissing()
    if (session === undefined) return
    assert(session.reply[FrameLayout.command.offset] === Command.reply, () => "a session's reply")
    const header = zeroHeader(Command.get_reply)
    header.reply_checksum = u128FromBytes(session.reply, 0)
    header.reply_client = session.client
    header.reply_op = BigInt(session.commitOp)
    this.sendRepairRequest(this.randomPeer(), header)
  }

  /** A peer's `get_reply` (vsr.md §5.4): the reply, if our session of that client holds exactly it, whole; silence otherwise. */
  private serveReply(request: Uint8Array): void {
    assert(request[FrameLayout.command.offset] === Command.get_reply, () => "get_reply")
    const peer = request[FrameLayout.replica.offset]!
    if (peer === this.config.replica || peer >= this.config.replicaCount) return
    const session = this.sessions.get(u128FromBytes(request, GetReplyLayout.reply_client.offset))
    if (session === undefined || !u128Equal(session.reply, 0, request, GetReplyLayout.reply_checksum.offset)) return
    if (readU32(session.reply, FrameLayout.size.offset) !== session.reply.length) return // ours is lost too
    assert(readU64Number(session.reply, ReplyLayout.op.offset) === session.commitOp, () => "a session's reply is of its latest op")
    this.outputs.push({ _tag: "SendToReplica", replica: peer, message: session.reply })
  }

  /** A peer's reply, answering our `get_reply`: the table takes it if it is the one a session lacks. */
  private onReplyRepaired(reply: Uint8Array): void {
    assert(reply[FrameLayout.command.offset] === Command.reply, () => "a reply")
    assert(readU32(reply, FrameLayout.size.offset) === reply.length, () => "the bus hands over whole messages")
    this.sessions.repairReply(reply)
  }

  /** Asks peers for the prepares of the oldest ops known by header alone, within each peer's budget (vsr.md §5.3). */
  private requestPrepares(): void {
    const requests = this.repairRequests
    assert(requests !== undefined, () => "a cluster's backup repairs")
    assert(!this.leading, () => "a backup repairs its log")
    const budget = requests.perPeerMax * (this.config.replicaCount - 1)
    for (const entry of this.log.missing(budget + requests.size)) {
      if (requests.has(entry.op)) continue
      const peer = requests.ask(entry.op, this.config.replica, this.ticks, this.prng)
      if (peer === undefined) break
      this.sendGetPrepare(peer, entry.op, entry.header)
    }
  }

  /**
   * A peer's headers (vsr.md §5.2): newest first, each fills its gap if it connects to the header
   * held above it (rule 5), so a run connected down from the head fills in one pass. Repair never
   * moves the head.
   */
  private onHeaders(now: Now, message: Uint8Array): void {
    assert(message[FrameLayout.command.offset] === Command.headers, () => "headers")
    if (this.leading) return // the primary of a started view holds every header of its log
    if (this.statusNow === "view_change" && !this.logInstalled) return // only the new primary repairs in a view change
    const head = this.op
    let filled = 0
    for (const header of validHeaders(message.subarray(headerSize), this.clusterBytes)) {
      const op = readU64Number(header, PrepareLayout.op.offset)
      if (op > this.commit && op < this.op && this.fillGap(header) !== undefined) filled++
    }
    assert(this.op === head, () => "repair never moves the head")
    if (filled === 0) return
    this.requestPrepares()
    this.advance(now)
  }

  /** A peer's `get_headers` (vsr.md §5.2): the newest headers we hold in its range, up to our head; silence if none. */
  private serveHeaders(request: Uint8Array): void {
    assert(request[FrameLayout.command.offset] === Command.get_headers, () => "get_headers")
    const peer = request[FrameLayout.replica.offset]!
    if (peer === this.config.replica || peer >= this.config.replicaCount) return
    const opMin = readU64Number(request, GetHeadersLayout.op_min.offset)
    const opMax = Math.min(readU64Number(request, GetHeadersLayout.op_max.offset), this.op)
    if (opMin > opMax) return
    const headers = this.headerRing.newest(opMin, opMax, getHeadersMax)
    if (headers.length === 0) return
    const header = zeroHeader(Command.headers)
    header.cluster = this.config.cluster
    header.view = this.view
    header.replica = this.config.replica
    const body = new Uint8Array(headers.length * headerSize)
    headers.forEach((found, i) => body.set(found, i * headerSize))
    const message = buildMessage(header, body)
    assert(readU32(message, FrameLayout.size.offset) === headerSize * (1 + headers.length), () => "the headers go in the body")
    this.outputs.push({ _tag: "SendToReplica", replica: peer, message })
  }

  /**
   * A peer's `get_prepare` (vsr.md §5.3): the prepare of that op with that checksum (or, with no
   * checksum, the one our header names), from memory if the pipeline or the log caches it, else
   * read from the journal by the shell. Silence when we do not hold it: never "I don't have it".
   */
  private servePrepare(request: Uint8Array): void {
    assert(request[FrameLayout.command.offset] === Command.get_prepare, () => "get_prepare")
    const peer = request[FrameLayout.replica.offset]!
    if (peer === this.config.replica || peer >= this.config.replicaCount) return
    const op = readU64Number(request, GetPrepareLayout.prepare_op.offset)
    const checksum = this.preparedChecksum(request, op)
    if (checksum === undefined) return
    const cached = this.leading ? this.pipeline.find(op)?.prepare : this.log.find(op)?.prepare
    if (cached !== undefined && u128Equal(cached, 0, checksum, 0)) {
      this.outputs.push({ _tag: "SendToReplica", replica: peer, message: cached })
      return
    }
    const entry = this.log.find(op)
    if (entry !== undefined && !entry.written && u128Equal(entry.header, 0, checksum, 0)) return // its prepare is what we are repairing ourselves
    assert(checksum.length === checksumSize, () => "a prepare's checksum")
    this.outputs.push({ _tag: "ServePrepare", replica: peer, op, checksum })
  }

  /**
   * The checksum of the prepare a `get_prepare` asks us for, if we may hold it: the one named, if
   * our header of that op, or our journal's prepare of it, is that one (a prepare below a gap of
   * our log, after a restart, may be one a new primary needs); unnamed, the one our header of
   * that op names, asked in our started view (only a replica in that view knows which that is).
   */
  private preparedChecksum(request: Uint8Array, op: number): Uint8Array | undefined {
    const header = op <= this.op ? this.headerRing.get(op) : undefined
    const named = request.subarray(GetPrepareLayout.prepare_checksum.offset, GetPrepareLayout.prepare_checksum.offset + checksumSize)
    assert(named.length === checksumSize, () => "a get_prepare's checksum")
    assert(Number.isSafeInteger(op), () => `op ${op}`)
    if (isZero(named, 0, checksumSize)) {
      if (this.statusNow !== "normal" || readU32(request, FrameLayout.view.offset) !== this.view || header === undefined) return undefined
      return header.slice(0, checksumSize)
    }
    const held = this.journalSlots[op % this.config.storage.journalSlotCount]
    const known = header !== undefined && u128Equal(header, 0, named, 0)
    const journaled = held !== undefined && held.op === op && u128Equal(held.checksum, 0, named, 0)
    return known || journaled ? named.slice() : undefined
  }

  /** Another replica, chosen at random. */
  private randomPeer(): number {
    assert(this.config.replicaCount > 1, () => "a cluster of one has no peer")
    const peer = (this.config.replica + 1 + this.prng.below(this.config.replicaCount - 1)) % this.config.replicaCount
    assert(peer !== this.config.replica, () => "a peer is another replica")
    return peer
  }

  // --- prepare, journal, commit ---------------------------------------------------------------

  /**
   * Turns an accepted request into the next op (vsr.md §3.3) and writes it to the journal. Without
   * cluster time (fewer than a quorum of clocks agree, vsr.md §8.3) the request is dropped: its
   * client retries, and the primary prepares again once the clocks agree.
   */
  private prepare(now: Now, request: Uint8Array): void {
    assert(!this.pipeline.full, () => "prepare with the pipeline full")
    assert(this.statusNow === "normal", () => "prepare once recovered")
    const realtime = this.clock.realtime(now)
    if (realtime === undefined || this.servesOnceWritten || this.journalFull()) return
    const operation = request[RequestLayout.operation.offset]!
    const body = request.subarray(headerSize)
    const createEvents = operation === VsrOperation.register ? 0 : createEventCount(operation, body)
    const creates = createEvents > 0 ? currentOperation(operation) : 0
    if (creates !== 0 && !this.ledger.fits(creates, this.pipeline.preparedCreates(creates) + createEvents)) {
      this.outputs.push({ _tag: "StoreFull", operation: creates })
      return
    }
    let bodyChanged = false
    if (operation === VsrOperation.register) {
      // The primary's limit goes into the prepare so that replay answers with the same one.
      if (registerRequestBatchSizeLimit(body) !== this.config.batchSizeLimit) {
        setRegisterRequestBatchSizeLimit(body, this.config.batchSizeLimit)
        bodyChanged = true
      }
    }
    // Cluster time a request consumes (state-machine.md §6.1): one nanosecond per created event.
    const timestamp = this.nextTimestamp(realtime, createEvents)
    this.op += 1
    prepareFromRequest(request, {
      view: this.view, replica: this.config.replica, parent: this.parent, parentOffset: 0,
      checkpointId: this.checkpointIdFor(this.op), op: BigInt(this.op), commit: BigInt(this.commit), timestamp
    }, bodyChanged)
    // The request is now the prepare, in place: read back what was written.
    assert(readU64(request, PrepareLayout.timestamp.offset) === timestamp, () => "the prepare carries its timestamp")
    this.appendToPipeline(request, creates, createEvents)
  }

  /** Injects a pulse when a pending transfer is due (state-machine.md §10.5). */
  private pulseIfDue(now: Now): void {
    assert(this.statusNow === "normal", () => "pulses once recovered")
    assert(this.leading, () => "only the primary injects pulses")
    if (this.pipeline.full || this.pipeline.hasOperation(VsrOperation.pulse)) return
    const realtime = this.clock.realtime(now)
    if (realtime === undefined || this.servesOnceWritten || this.ledger.nextExpiry() === undefined || this.journalFull()) return
    const expiry = this.ledger.nextExpiry()
    assert(expiry !== undefined, () => "the expiry seen a moment ago is still there")
    const horizon = this.timestamp > realtime ? this.timestamp : realtime
    if (expiry > horizon) return
    const header = zeroHeader(Command.prepare)
    header.cluster = this.config.cluster
    header.view = this.view
    header.replica = this.config.replica
    header.size = headerSize
    header.release = this.config.release
    header.parent = u128FromBytes(this.parent, 0)
    header.op = BigInt(this.op + 1)
    header.commit = BigInt(this.commit)
    header.timestamp = this.nextTimestamp(realtime, pulseExpiriesMax)
    // A prepare names the protocol's pulse (4); the state machine's own number (128) is internal.
    header.operation = VsrOperation.pulse
    header.checkpoint_id = u128FromBytes(this.checkpointIdFor(this.op + 1), 0)
    // The pulse's timestamp reaches the expiry it is for: that transfer expires when it commits.
    assert(header.timestamp >= expiry, () => "a pulse reaches its expiry")
    this.op += 1
    this.appendToPipeline(buildMessage(header, new Uint8Array(0)), 0, 0)
  }

  private journalFull(): boolean {
    assert(this.op <= this.opMax, () => "op within the journal")
    if (this.op < this.opMax) return false
    assert(this.op === this.opMax, () => "the journal is full at its last op")
    this.outputs.push({ _tag: "JournalFull", opMax: this.opMax })
    return true
  }

  /** The checkpoint is durable: prepares may reach further, and carry its ids. */
  private checkpointed(checkpoint: CheckpointPosition): void {
    assert(checkpoint.op >= this.checkpoint.op, () => "checkpoints move forward")
    assert(checkpoint.op <= this.commit, () => "a checkpoint holds committed ops only")
    assert(checkpoint.id.length === checksumSize, () => "a checkpoint id is a u128")
    assert(checkpoint.parentId.length === checksumSize, () => "a checkpoint's parent id is a u128")
    this.checkpoint = checkpoint
    this.opMax = prepareMax(this.config.storage, checkpoint.op)
    assert(this.op <= this.opMax, () => "the journal holds every op prepared")
  }

  /**
   * The checkpoint id a prepare of `op` carries (vsr.md §7.2): for op in (C_k, C_{k+1}] the id of
   * C_{k−1}, the newest checkpoint certain to exist when it is prepared (zero while k = 0).
   */
  private checkpointIdFor(op: number): Uint8Array {
    assert(op > this.checkpoint.op, () => `op ${op} is not after the checkpoint ${this.checkpoint.op}`)
    const next = checkpointAfter(this.config.storage, this.checkpoint.op)
    // No op is prepared beyond the checkpoint after next before the next is durable (prepareMax).
    assert(op <= checkpointAfter(this.config.storage, next), () => `op ${op} two checkpoints ahead`)
    return op <= next ? this.checkpoint.parentId : this.checkpoint.id
  }

  private appendToPipeline(prepare: Uint8Array, creates: number, createEvents: number): void {
    // Pair with what prepare() and pulseIfDue() wrote: the bytes are the prepare of the new op.
    assert(prepare[FrameLayout.command.offset] === Command.prepare, () => "a prepare goes into the pipeline")
    assert(readU64Number(prepare, PrepareLayout.op.offset) === this.op, () => "the prepare carries the new op")
    assert(u128Equal(prepare, PrepareLayout.parent.offset, this.parent, 0), () => "the prepare chains to the previous one")
    this.parent = prepare.slice(0, checksumSize)
    if (this.pipeline.length === 0 && this.config.replicaCount > 1) this.prepareTimeout.start()
    this.pipeline.push({ op: this.op, prepare, creates, createEvents })
    this.headerRing.set(prepare)
    assert(this.op === this.commit + this.pipeline.length, () => `op ${this.op}, commit ${this.commit}, ${this.pipeline.length} in the pipeline`)
    // Star replication (vsr.md §3.4): every backup gets the prepare now, while our journal writes it.
    for (let replica = 0; replica < this.config.replicaCount; replica++) {
      if (replica !== this.config.replica) this.outputs.push({ _tag: "SendToReplica", replica, message: prepare })
    }
    this.writeJournal(prepare)
  }

  /** state-machine.md §6.1, vsr.md §8.3: strictly increasing, never behind cluster time (`realtime`). */
  private nextTimestamp(realtime: bigint, delta: number): bigint {
    assert(Number.isSafeInteger(delta), () => "a timestamp advances by a whole count of events")
    assert(delta >= 0, () => "a timestamp never goes back")
    const previous = this.timestamp
    const base = this.timestamp + 1n > realtime ? this.timestamp + 1n : realtime
    this.timestamp = base + BigInt(delta)
    assert(this.timestamp > previous, () => "timestamps strictly increase")
    assert(this.timestamp >= realtime, () => "timestamps are never behind cluster time")
    return this.timestamp
  }

  /**
   * A journal write is done. The primary's own write is its `prepare_ok` (vsr.md §3.4): prepares
   * with a quorum commit, in op order; its disk is one of the quorum's, not a precondition. Any
   * other replica's write makes its log entry durable: acknowledged (§3.6), committable. A write of
   * a prepare a view change truncated or replaced since, or of an op committed since, changes nothing.
   */
  private onJournalWriteDone(now: Now, op: number): void {
    const writes = this.writesInFlight.get(op)
    assert(writes !== undefined, () => `journal completion for op ${op}, which no write asked for`)
    const checksum = writes.shift()!
    if (writes.length === 0) this.writesInFlight.delete(op)
    if (this.leading) {
      const entry = this.pipeline.find(op)
      if (entry === undefined || !u128Equal(entry.prepare, 0, checksum, 0)) return
      assert(!entry.oks.has(this.config.replica), () => `journal completion for op ${op} twice`)
      if (op > this.prepareOkMax) return this.withholdOk(op, entry.prepare.subarray(0, headerSize))
      this.pipeline.ack(op, this.config.replica)
      return this.advance(now)
    }
    // The slot holds what we wrote now, whatever the damage recovery found there.
    this.faultySlots.delete(op % this.config.storage.journalSlotCount)
    this.journalSlots[op % this.config.storage.journalSlotCount] = { op, checksum }
    const entry = this.log.find(op)
    if (entry === undefined || entry.durable || !entry.written) return
    const ours = (written: Uint8Array) => u128Equal(entry.header, 0, written, 0)
    if (!ours(checksum)) {
      // Another version of the op landed over ours (a view change replaced it, then brought it
      // back): ours is written again, from the cache or by repair.
      if (writes.some(ours)) return
      entry.written = false
      if (entry.prepare !== undefined) this.rewrite(entry, entry.prepare)
      return
    }
    // Durable only once no other version's write, queued after ours, can land over it.
    if (writes.some((written) => !ours(written))) return
    entry.durable = true
    if (op <= this.prepareOkMax) this.sendPrepareOk(entry.header)
    else this.withholdOk(op, entry.header)
    this.advance(now)
  }

  /**
   * Starts every commit that may start now, in op order, until one waits: for its quorum, its
   * prefetch, or a checkpoint being written (only reads commit through that: the checkpoint
   * reads the ledger's state in place, and a read changes nothing there, nor the client table
   * the checkpoint took). Then the requests that waited for room are prepared, then a due pulse.
   */
  private advance(now: Now): void {
    if (this.statusNow === "recovering") return this.advanceReplay(now)
    if (this.statusNow === "recovering_head") return
    if (!this.leading) {
      this.advanceBackup()
      if (this.statusNow === "view_change" && this.logInstalled) this.viewChangeProgress(now)
      return
    }
    assert(this.recovery._tag === "replaying", () => "a normal core has recovered")
    // Each pass commits one op of the pipeline, so the pipeline's bound bounds the loop.
    for (let pass = 0; pass <= this.pipeline.prepareMax && this.commitStage._tag === "idle"; pass++) {
      const head = this.pipeline.head()
      if (head === undefined || !this.pipeline.hasQuorum(head)) break
      if (this.checkpointStage !== "none" && !isReadOperation(head.prepare[PrepareLayout.operation.offset]!)) break
      this.commitStart(head.prepare)
    }
    const head = this.pipeline.head()
    assert(head === undefined || !this.pipeline.hasQuorum(head) || this.commitStage._tag !== "idle" || this.checkpointStage !== "none",
      () => "every prepare with its quorum commits, unless a prefetch or a checkpoint holds it")
    for (let request = this.pipeline.dequeue(); request !== undefined; request = this.pipeline.dequeue()) this.prepare(now, request)
    this.pulseIfDue(now)
  }

  /** Replay's next move: read the next op once the previous one (and its checkpoint) is done, or end recovery. */
  private advanceReplay(now: Now): void {
    const recovery = this.recovery
    assert(recovery._tag === "replaying", () => "replay advances once the journal is recovered")
    assert(this.statusNow === "recovering", () => "replay while recovering")
    if (this.commitStage._tag !== "idle" || this.checkpointStage !== "none" || recovery.reading) return
    const next = recovery.ops[recovery.next]
    if (next === undefined) return this.recoveryDone(now)
    recovery.reading = true
    this.outputs.push({ _tag: "ReadPrepare", op: next.op, checksum: next.checksum })
  }

  /**
   * The commit's first stage: the ledger's prefetch of what the op touches. A pulse or a
   * register touches nothing to prefetch (the in-memory expiry queue, the client table): it
   * executes at once. Returns whether it did.
   */
  private commitStart(prepare: Uint8Array): boolean {
    const op = readU64Number(prepare, PrepareLayout.op.offset)
    assert(this.commitStage._tag === "idle", () => `op ${op} starts its commit while another commits`)
    assert(op === this.commit + 1, () => "commits follow op order")
    const operation = prepare[PrepareLayout.operation.offset]!
    if (operation === VsrOperation.pulse || operation === VsrOperation.register) {
      this.commitPrepare(prepare)
      return true
    }
    const body = prepare.subarray(headerSize)
    this.commitStage = { _tag: "prefetch", prepare }
    this.outputs.push({ _tag: "Prefetch", op, operation: currentOperation(operation), eventCount: createEventCount(operation, body), body })
    return false
  }

  /** The prefetch is done: the op executes, and the next commit may start. */
  private prefetched(now: Now, op: number): void {
    const stage = this.commitStage
    assert(stage._tag === "prefetch", () => `a prefetch of op ${op} done while none was asked for`)
    assert(readU64Number(stage.prepare, PrepareLayout.op.offset) === op, () => `a prefetch of op ${op}, not of the op asked for`)
    this.commitStage = { _tag: "idle" }
    this.commitPrepare(stage.prepare)
    this.advance(now)
  }

  /** Commits the next op: executes it, and starts a checkpoint when it is a checkpoint op. */
  private commitPrepare(prepare: Uint8Array): void {
    const op = readU64Number(prepare, PrepareLayout.op.offset)
    assert(op === this.commit + 1, () => "commits must follow op order")
    assert(this.commitStage._tag === "idle", () => "an op executes once its prefetch is done")
    if (this.leading) {
      const head = this.pipeline.shift()
      assert(head.prepare === prepare, () => "the pipeline's head commits")
      // A prepare reached its quorum: wait afresh for the next, or for none.
      if (this.config.replicaCount > 1 && this.pipeline.length === 0) this.prepareTimeout.stop()
      else if (this.config.replicaCount > 1) this.prepareTimeout.reset()
    } else if (this.statusNow !== "recovering") {
      // A backup never executes above commit_max (vsr.md §3.8): ops above it may yet be truncated.
      assert(op <= this.commitMax, () => `a backup commits op ${op} above commit_max ${this.commitMax}`)
      const entry = this.log.shift()
      assert(entry.op === op, () => `op ${op} commits, not the log's first`)
      assert(this.log.holds(entry, prepare), () => `op ${op} commits another prepare than the one logged`)
    } else {
      // Replay: the op is prepared again as it commits.
      this.op = op
      this.timestamp = readU64(prepare, PrepareLayout.timestamp.offset)
      this.parent = prepare.slice(0, checksumSize)
    }
    this.commit = op
    this.commitHeader = prepare.slice(0, headerSize)
    this.commitChecksum = prepare.slice(0, checksumSize)
    if (this.commitMax < op) this.commitMax = op
    this.execute(prepare)
    if (isCheckpointOp(this.config.storage, op)) {
      // The journal holds too few ops past the durable checkpoint to reach the next checkpoint op.
      assert(this.checkpointStage === "none", () => `checkpoint op ${op} while the previous checkpoint is being stored`)
      this.checkpointStage = "data"
      this.checkpointingOp = op
      this.outputs.push({ _tag: "CheckpointData", op, header: prepare.slice(0, headerSize), sessions: this.sessions.entries() })
    }
    assert(this.commit <= this.op, () => "commits never pass the prepared op")
  }

  /** The checkpoint's data is written (`CheckpointDataDone`): its superblock is next. */
  private checkpointDataWritten(op: number): void {
    assert(this.checkpointStage === "data", () => "checkpoint data written while none was asked for")
    assert(op === this.checkpointingOp, () => `checkpoint data of op ${op}, not of the op asked for`)
    this.checkpointStage = "superblock"
    // One superblock write at a time: a view state's first, then the checkpoint's.
    if (this.viewWriting) this.checkpointSuperblockWaiting = true
    else this.outputs.push({ _tag: "CheckpointSuperblock", op })
  }

  /** The checkpoint's superblock is written (`CheckpointDone`): it is durable. */
  private checkpointStored(checkpoint: CheckpointPosition, state: Uint8Array | undefined): void {
    assert(this.checkpointStage === "superblock", () => "a checkpoint stored while its superblock was not asked for")
    assert(!this.checkpointSuperblockWaiting, () => "the checkpoint's superblock was written")
    if (state !== undefined) this.checkpointState = state
    assert(checkpoint.op === this.checkpointingOp, () => "a checkpoint of another op than the one asked for")
    assert(this.commit >= this.checkpointingOp, () => "commits never go back")
    this.checkpointStage = "none"
    this.checkpointed(checkpoint)
  }

  /** Applies a committed prepare: the ledger, the client table, and the reply. */
  private execute(prepare: Uint8Array): void {
    const op = readU64Number(prepare, PrepareLayout.op.offset)
    const timestamp = readU64(prepare, PrepareLayout.timestamp.offset)
    const operation = prepare[PrepareLayout.operation.offset]!
    assert(op === this.commit, () => "execute the op just committed")
    // Timestamps increase with op (state-machine.md §6.1): a committed op is no newer than the newest prepared.
    assert(timestamp <= this.timestamp, () => "a committed op's timestamp is no later than the newest prepare's")
    assert(u128Equal(this.commitChecksum, 0, prepare, 0), () => "the commit's checksum is the prepare's")
    this.outputs.push({ _tag: "Committed", op, operation, timestamp, checksum: this.commitChecksum })
    if (operation === VsrOperation.pulse) {
      this.ledger.pulse(timestamp)
      return
    }
    const body = operation === VsrOperation.register
      ? registerResultBody(registerRequestBatchSizeLimit(prepare.subarray(headerSize)))
      : executeRequest(this.ledger, operation, prepare.subarray(headerSize), timestamp)
    const reply = buildReplyToPrepare(prepare, body)
    assert(readU64Number(reply, ReplyLayout.op.offset) === op, () => "the reply names the op it answers")
    const client = u128FromBytes(prepare, PrepareLayout.client.offset)
    // A register that committed after a request was prepared may have evicted its session: the
    // op is committed and executed all the same; the client gets this reply if it is still
    // listening, and `no_session` on its next request.
    if (operation === VsrOperation.register) this.sessions.open(client, op, reply)
    else this.sessions.update(client, op, reply)
    // Replay rebuilds replies without sending them: nobody asked yet. Backups reply to nobody.
    if (this.leading) this.send(client, reply)
  }

  private evict(client: bigint, message: Uint8Array, reason: EvictionReason): void {
    this.send(client, buildEviction(message, reason, this.replicaFields()))
  }

  private send(client: bigint, message: Uint8Array): void {
    this.outputs.push({ _tag: "SendToClient", client, message })
  }

  private limits(): ReplicaLimits {
    return { release: this.config.release, releaseClientMin: this.config.releaseClientMin, batchSizeLimit: this.config.batchSizeLimit }
  }

  private replicaFields() {
    return { view: this.view, replica: this.config.replica, release: this.config.release }
  }
}

const zeroChecksum = new Uint8Array(checksumSize)

