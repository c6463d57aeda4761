/**
 * Checkpoints (storage.md §7, rung R1 of §9.2): every `checkpointOps` ops, right after committing
 * the checkpoint op, the replica stores its whole state in fresh grid blocks and then names them
 * from the superblock. A restart opens the superblock, loads the checkpoint and replays the WAL
 * after it, so history is unbounded while the WAL stays a ring.
 *
 * What a checkpoint writes, in this order, all before the superblock:
 * 1. the ledger snapshot (ledger/snapshot.ts) as `value` blocks of rows. A block of the previous
 *    checkpoint whose rows did not change is named again rather than rewritten, so the cost of a
 *    checkpoint follows what changed (new transfers, resolved pending transfers, the accounts),
 *    not the size of the history;
 * 2. the snapshot's directory (a `manifest` trailer: every section's row count and blocks);
 * 3. the client sessions (a `client_sessions` trailer) and their replies (client_sessions.ts);
 * 4. the free set (two `free_set` trailers);
 * then the superblock, whose write is the commit point. Blocks the new checkpoint no longer names
 * are released before the free set is encoded, so they stay intact until the new checkpoint is
 * durable (free_set.ts); a crash anywhere before the superblock reopens the previous checkpoint,
 * whose blocks were never touched (copy-on-write).
 *
 * Everything written depends only on the committed ops: addresses come from the free set in a
 * fixed order, block bytes from the state. Two replicas fed the same ops write identical grids.
 */
import { Clock, Effect, Schema } from "effect"
import { assert } from "../assert.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { Command, FrameLayout, headerSize, PrepareLayout, readU32, readU64, readU64Number, releaseScarab, u128Equal } from "../protocol/header.ts"
import type { Ledger } from "../ledger/ledger.ts"
import { SnapshotSectionId, snapshotRowWords } from "../ledger/snapshot.ts"
import { Operation } from "../protocol/operation.ts"
import { blockTypeOf, BlockType, sealBlock, ValueMetadata } from "./block.ts"
import { checkpointId, type CheckpointState, checkpointStateSize, encodeCheckpointState, trailerEmpty } from "./checkpoint_state.ts"
import {
  decodeClientSessions, encodeClientSessions, readClientReply, replyWritesMax, type SessionEntry, writeClientReplies
} from "./client_sessions.ts"
import { FreeSet } from "./free_set.ts"
import { type Grid, GridReadError } from "./grid.ts"
import { durableOp, type Layout } from "./layout.ts"
import { type Storage, type StorageError } from "./storage.ts"
import { checkpointOp, nextSuperblock, type Superblock, writeSuperblock } from "./superblock.ts"
import { GridFullError, readTrailer, writeTrailer } from "./trailer.ts"

/** Snapshot block writes in flight during a checkpoint. */
const blockWritesMax = 8

/** The checkpoint's contents do not add up: a refusal to start, naming what is wrong. */
export class CheckpointError extends Schema.TaggedError<CheckpointError>()("CheckpointError", {
  path: Schema.String,
  op: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: checkpoint at op ${this.op} cannot be loaded: ${this.reason}`
  }
}

/** One section of a snapshot's directory: its rows and the blocks holding them, in row order. */
export interface DirectorySection {
  readonly id: SnapshotSectionId
  readonly rowCount: number
  readonly addresses: Array<number>
  readonly checksums: Array<Uint8Array>
}

/** What the checkpoint being written captures. */
export interface CheckpointInput {
  /** The prepare header of the checkpoint op, just committed. */
  readonly header: Uint8Array
  readonly ledger: Ledger
  readonly sessions: ReadonlyArray<SessionEntry>
}

/** Timings of the last checkpoint, for logs and benchmarks. */
export interface CheckpointStats {
  readonly op: number
  readonly durationMs: number
  readonly blocksWritten: number
  readonly blocksReused: number
}

/**
 * The replica's checkpoints: the durable superblock, the free set and the directory of the
 * snapshot it names. Owned by the replica's fiber, which calls `write` at each checkpoint op and
 * `onCommit` after every commit.
 */
/** What a view change persists (vsr.md §4.8). */
export interface ViewState {
  readonly view: number
  readonly logView: number
  readonly commitMax: number
  /** Prepare headers, newest op first: the JV's headers while `logView < view`, the View's once equal. */
  readonly viewHeaders: ReadonlyArray<Uint8Array>
}

export class Checkpointer {
  private readonly storage: Storage["Service"]
  private readonly layout: Layout
  private readonly grid: Grid
  private superblockWorking: Superblock
  private freeSet: FreeSet
  private directory: Array<DirectorySection>
  /** The trailers of the durable checkpoint, released when the next one replaces them. */
  private trailers: { directory: ReadonlyArray<number>; sessions: ReadonlyArray<number> }
  /** Per reply slot, the checksum of the reply last written there. */
  private readonly repliesWritten: Array<Uint8Array | undefined>
  /** The data of the checkpoint being written, until its superblock is. */
  private staged: CheckpointData | undefined
  /** Buffers of the reply writes, allocated at the first checkpoint. */
  private replyBuffers: ReadonlyArray<Uint8Array> | undefined
  /** A superblock write (a checkpoint's, or a view state's) is in flight: one at a time. */
  private superblockWriting = false

  constructor(
    storage: Storage["Service"], layout: Layout, grid: Grid, superblock: Superblock, freeSet: FreeSet, directory: Array<DirectorySection>,
    trailers: { directory: ReadonlyArray<number>; sessions: ReadonlyArray<number> }, repliesWritten: Array<Uint8Array | undefined>
  ) {
    assert(grid.blockSize === layout.config.blockSize, () => "the grid's blocks are the layout's")
    assert(repliesWritten.length <= layout.config.clientsMax, () => "a reply written per session slot at most")
    this.storage = storage
    this.layout = layout
    this.grid = grid
    this.superblockWorking = superblock
    this.freeSet = freeSet
    this.directory = directory
    this.trailers = trailers
    this.repliesWritten = repliesWritten
  }

  get superblock(): Superblock {
    return this.superblockWorking
  }

  get state(): CheckpointState {
    return this.superblockWorking.vsrState.checkpoint
  }

  get op(): number {
    return checkpointOp(this.state)
  }

  /** The id of the durable checkpoint and of its parent (vsr.md §7.2). */
  get ids(): { readonly current: Uint8Array; readonly parent: Uint8Array } {
    return { current: checkpointId(this.state), parent: this.state.parentCheckpointId }
  }

  /** The durable checkpoint's state as a view message carries it (1024 bytes, vsr.md §2.3). */
  get encodedState(): Uint8Array {
    const bytes = new Uint8Array(checkpointStateSize)
    encodeCheckpointState(this.state, bytes, 0)
    assert(bytes.length === checkpointStateSize, () => "the encoded state's size")
    assert(checkpointOp(this.state) === this.op, () => "the state of the durable checkpoint")
    return bytes
  }

  get blocksAcquired(): number {
    return this.freeSet.count
  }

  /**
   * After every commit: once commits pass the durability op the blocks released before it are
   * freed. At or past it, not at it: reads commit while a checkpoint is being written, so the
   * durability op may commit before the checkpoint it belongs to is stored.
   */
  onCommit(op: number): void {
    assert(op > 0, () => `commit of op ${op}`)
    // The checkpoint op itself commits before its checkpoint is stored; nothing at or before it after.
    assert(op > this.op, () => "a commit after the durable checkpoint")
    const durable = durableOp(this.layout.config, this.op)
    if (!this.freeSet.checkpointDurable && op >= durable) {
      for (const address of this.freeSet.freedAtDurable()) this.grid.evict(address)
      this.freeSet.markCheckpointDurable()
    }
    assert(this.freeSet.checkpointDurable || op < durable, () => "commits past the durability op make the checkpoint durable")
  }

  /**
   * Persists the view state a view change must make durable before acting on it (vsr.md §4.8):
   * `view`, `log_view`, `commit_max` (never lower than the durable one) and the view headers,
   * newest op first, in a new superblock over the same checkpoint. The caller runs one superblock
   * write at a time (a checkpoint's or this).
   */
  writeViewState(state: ViewState): Effect.Effect<Superblock, StorageError> {
    return Effect.suspend(() => {
      const working = this.superblockWorking
      assert(state.view >= working.vsrState.view, () => `view ${state.view} goes back from ${working.vsrState.view}`)
      assert(state.logView >= working.vsrState.logView, () => `log view ${state.logView} goes back from ${working.vsrState.logView}`)
      assert(state.logView <= state.view, () => `log view ${state.logView} beyond view ${state.view}`)
      assert(state.viewHeaders.length > 0, () => "the view headers hold at least the head")
      const staging = nextSuperblock(working, {
        vsrState: { ...working.vsrState, view: state.view, logView: state.logView, commitMax: Math.max(working.vsrState.commitMax, state.commitMax) },
        viewHeaders: state.viewHeaders
      })
      return this.superblockWrite(writeSuperblock(this.storage, this.layout, working, staging))
    })
  }

  /** Runs one superblock write, the only one in flight, and makes its result the working superblock. */
  private superblockWrite(write: Effect.Effect<Superblock, StorageError>): Effect.Effect<Superblock, StorageError> {
    assert(!this.superblockWriting, () => "one superblock write at a time")
    this.superblockWriting = true
    return write.pipe(
      Effect.tap((written) => Effect.sync(() => {
        assert(written.sequence === this.superblockWorking.sequence + 1, () => "the superblock written follows the working one")
        this.superblockWorking = written
      })),
      Effect.ensuring(Effect.sync(() => {
        this.superblockWriting = false
      }))
    )
  }

  /** Writes the checkpoint of the op just committed, the superblock last: `writeData`, then `writeSuperblock`. */
  write(input: CheckpointInput): Effect.Effect<CheckpointStats, StorageError | GridFullError> {
    return Effect.flatMap(this.writeData(input), (data) => this.writeSuperblock(data.op))
  }

  /**
   * The first stage of a checkpoint (vsr.md §7.1): the snapshot blocks, the trailers, the client
   * replies and the free set, everything but the superblock. Nothing is durable yet: a crash now
   * reopens the previous checkpoint, whose blocks this did not touch (copy-on-write).
   */
  writeData(input: CheckpointInput): Effect.Effect<CheckpointData, StorageError | GridFullError> {
    return Effect.suspend(() => this.writeDataNow(input))
  }

  /** The second stage: the superblock naming what `writeData` wrote for checkpoint `op`. Its write is the commit point. */
  writeSuperblock(op: number): Effect.Effect<CheckpointStats, StorageError> {
    return Effect.suspend(() => {
      const data = this.staged
      assert(data !== undefined, () => `the superblock of checkpoint ${op} before its data`)
      assert(data.op === op, () => `the superblock of checkpoint ${op} over the data of checkpoint ${data.op}`)
      return this.writeSuperblockNow(data)
    })
  }

  private writeDataNow(input: CheckpointInput) {
    const self = this
    return Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      const { storage, layout, grid } = self
      const freeSet = self.freeSet
      const op = readOp(input.header)
      assert(op > self.op, () => `checkpoint ${op} is not after ${self.op}`)
      assert(freeSet.checkpointDurable, () => `checkpoint ${op} before the one at ${self.op} is durable`)
      assert(self.staged === undefined, () => `checkpoint ${op} while another's data waits for its superblock`)
      assert(input.sessions.length <= layout.config.clientsMax, () => `${input.sessions.length} sessions`)
      const snapshot = yield* writeSnapshot(grid, freeSet, self.directory, input.ledger, storage.path)
      const directory = yield* writeTrailer(grid, freeSet, BlockType.manifest, encodeDirectory(snapshot.directory), storage.path)
      const sessions = yield* writeTrailer(grid, freeSet, BlockType.client_sessions,
        encodeClientSessions(input.sessions, layout.config.clientsMax), storage.path)
      for (const address of [...self.trailers.directory, ...self.trailers.sessions]) freeSet.release(address)
      self.replyBuffers ??= Array.from({ length: replyWritesMax }, () => storage.allocate(layout.config.messageSizeMax))
      yield* writeClientReplies(storage, layout, input.sessions, self.repliesWritten, self.replyBuffers)
      const encoded = freeSet.encode()
      const acquired = yield* writeTrailer(grid, freeSet, BlockType.free_set, encoded.acquired, storage.path)
      const released = yield* writeTrailer(grid, freeSet, BlockType.free_set, encoded.released, storage.path)
      const previous = self.superblockWorking.vsrState.checkpoint
      const state: CheckpointState = {
        header: input.header.slice(0, headerSize),
        snapshot: directory.reference,
        freeSetAcquired: acquired.reference,
        freeSetReleased: released.reference,
        clientSessions: sessions.reference,
        parentCheckpointId: checkpointId(previous),
        grandparentCheckpointId: previous.parentCheckpointId,
        storageSize: layout.dataFileSizeMin + freeSet.highestAcquired() * layout.config.blockSize,
        release: releaseScarab
      }
      // What open reads back (openCheckpoint checks the same fields): the header of the checkpoint op.
      assert(state.header[FrameLayout.command.offset] === Command.prepare, () => "a checkpoint names a prepare header")
      assert(checkpointOp(state) === op, () => "a checkpoint names the op just committed")
      const data: CheckpointData = {
        op, state, started, ledger: input.ledger, directory: snapshot.directory, written: snapshot.written, reused: snapshot.reused,
        trailers: { directory: directory.blocks, sessions: sessions.blocks }, freeSetBlocks: [...acquired.blocks, ...released.blocks]
      }
      self.staged = data
      return data
    })
  }

  private writeSuperblockNow(data: CheckpointData) {
    const self = this
    return Effect.gen(function* () {
      const { storage, layout, freeSet } = self
      assert(data.op > self.op, () => `checkpoint ${data.op} is not after ${self.op}`)
      const working = self.superblockWorking
      // The view headers a view change persisted stay (a restart takes its head from them); before
      // any view change, the checkpoint's header is the log's head as far as the superblock knows.
      const viewHeaders = working.vsrState.view > 0 ? working.viewHeaders : [data.state.header]
      const staging = nextSuperblock(working, {
        vsrState: { ...working.vsrState, checkpoint: data.state, commitMax: Math.max(working.vsrState.commitMax, data.op) },
        viewHeaders
      })
      yield* self.superblockWrite(writeSuperblock(storage, layout, working, staging))
      self.staged = undefined
      assert(self.op === data.op, () => "the checkpointer stands on the checkpoint just written")
      // The new checkpoint is written, not yet durable: its own free set trailers are needed
      // until the next one is (they were not in the encoding, which had to exist first).
      freeSet.markCheckpointNotDurable()
      for (const address of data.freeSetBlocks) freeSet.release(address)
      self.directory = data.directory
      self.trailers = data.trailers
      data.ledger.snapshotStored()
      return { op: data.op, durationMs: (yield* Clock.currentTimeMillis) - data.started, blocksWritten: data.written, blocksReused: data.reused }
    })
  }
}

/** What a checkpoint's first stage wrote, for its superblock stage: opaque to everyone but the checkpointer. */
export interface CheckpointData {
  readonly op: number
  readonly state: CheckpointState
  readonly started: number
  readonly ledger: Ledger
  readonly directory: Array<DirectorySection>
  readonly written: number
  readonly reused: number
  readonly trailers: { readonly directory: ReadonlyArray<number>; readonly sessions: ReadonlyArray<number> }
  readonly freeSetBlocks: ReadonlyArray<number>
}

/** What `openCheckpoint` loaded: the checkpointer, and the sessions to give the replica. */
export interface OpenedCheckpoint {
  readonly checkpointer: Checkpointer
  /**
   * The checkpoint's sessions. A session whose reply body the zone does not hold intact has only
   * the reply's header (its slot is listed in `repliesLost`): a checkpoint attempt that crashed
   * before its superblock may have overwritten it with a newer reply, which replaying the WAL
   * rebuilds. Whatever replay does not supersede was lost to the disk.
   */
  readonly sessions: ReadonlyArray<SessionEntry>
  readonly repliesLost: ReadonlyArray<number>
}

/**
 * Loads the superblock's checkpoint: its free set, its client sessions and replies, and the
 * snapshot restored into `ledger` (which must be fresh). Anything that does not add up is a
 * refusal naming the block; a single replica has no peer to repair a block from.
 */
export const openCheckpoint = Effect.fnUntraced(function* (
  storage: Storage["Service"], layout: Layout, grid: Grid, superblock: Superblock, ledger: Ledger
): Effect.fn.Return<OpenedCheckpoint, StorageError | GridReadError | CheckpointError> {
  const state = superblock.vsrState.checkpoint
  const op = checkpointOp(state)
  // Read back what the checkpoint's write asserted (Checkpointer.writeNow); the superblock's decode checked the rest.
  assert(state.header[FrameLayout.command.offset] === Command.prepare, () => "a checkpoint names a prepare header")
  assert(op <= superblock.vsrState.commitMax, () => "a checkpoint holds committed ops only")
  const refuse = (reason: string) => new CheckpointError({ path: storage.path, op, reason })
  const path = storage.path
  const acquired = yield* readTrailer(grid, state.freeSetAcquired, BlockType.free_set, "free set: acquired", path)
  const released = yield* readTrailer(grid, state.freeSetReleased, BlockType.free_set, "free set: released", path)
  const freeSet = FreeSet.decode(layout.gridBlocksMax, acquired.bytes, released.bytes, [...acquired.blocks, ...released.blocks], op === 0)
  if (typeof freeSet === "string") return yield* refuse(freeSet)
  if (state.storageSize !== layout.dataFileSizeMin + freeSet.highestAcquired() * layout.config.blockSize) {
    return yield* refuse(`storage_size ${state.storageSize} disagrees with the free set's highest block ${freeSet.highestAcquired()}`)
  }
  const directoryTrailer = yield* readTrailer(grid, state.snapshot, BlockType.manifest, "snapshot directory", path)
  const sessionsTrailer = yield* readTrailer(grid, state.clientSessions, BlockType.client_sessions, "client sessions", path)
  const directory = decodeDirectory(directoryTrailer.bytes, layout.config.blockSize)
  if (typeof directory === "string") return yield* refuse(directory)
  for (const address of [...directoryTrailer.blocks, ...sessionsTrailer.blocks, ...directory.flatMap((s) => s.addresses)]) {
    if (!freeSet.isAcquired(address) || freeSet.isReleased(address)) return yield* refuse(`block ${address} is named by the checkpoint but free in its free set`)
  }
  const tooLarge = sectionBeyondCapacity(directory, ledger)
  if (tooLarge !== undefined) return yield* refuse(tooLarge)
  yield* restoreSnapshot(grid, directory, ledger, readU64(state.header, PrepareLayout.timestamp.offset), path)

  const stored = state.clientSessions.size === 0 ? [] : decodeClientSessions(sessionsTrailer.bytes, layout.config.clientsMax)
  if (typeof stored === "string") return yield* refuse(stored)
  const sessions: Array<SessionEntry> = []
  const repliesLost: Array<number> = []
  const repliesWritten: Array<Uint8Array | undefined> = []
  for (const session of stored) {
    const reply = yield* readClientReply(storage, layout, session)
    // Pair with writeClientReplies: a reply read back is the one its stored header names.
    assert(reply === undefined || u128Equal(reply, 0, session.replyHeader, 0), () => `slot ${session.slot}: another reply than the stored one`)
    if (reply === undefined) repliesLost.push(session.slot)
    else if (readU32(reply, FrameLayout.size.offset) > headerSize) repliesWritten[session.slot] = reply.slice(0, checksumSize)
    sessions.push({ slot: session.slot, client: session.client, session: session.session, reply: reply ?? session.replyHeader })
  }
  const checkpointer = new Checkpointer(storage, layout, grid, superblock, freeSet, directory,
    { directory: directoryTrailer.blocks, sessions: sessionsTrailer.blocks }, repliesWritten)
  assert(checkpointer.op === op, () => "the checkpointer stands on the checkpoint opened")
  assert(sessions.length === stored.length, () => "every stored session is loaded")
  return { checkpointer, sessions, repliesLost } satisfies OpenedCheckpoint
})

/** The root checkpoint's state (op 0): nothing in the grid. */
export function rootCheckpointState(root: Uint8Array, dataFileSizeMin: number): CheckpointState {
  return {
    header: root,
    snapshot: trailerEmpty,
    freeSetAcquired: trailerEmpty,
    freeSetReleased: trailerEmpty,
    clientSessions: trailerEmpty,
    parentCheckpointId: new Uint8Array(checksumSize),
    grandparentCheckpointId: new Uint8Array(checksumSize),
    storageSize: dataFileSizeMin,
    release: releaseScarab
  }
}

// --- the snapshot ---------------------------------------------------------------------------------

/** Rows of a section that fit in one block's body. */
export const rowsPerBlock = (id: SnapshotSectionId, blockSize: number): number => Math.floor((blockSize - headerSize) / (snapshotRowWords[id] * 4))

interface BlockPlan {
  readonly section: number
  readonly block: number
  readonly first: number
  readonly count: number
  readonly address: number
}

function writeSnapshot(grid: Grid, freeSet: FreeSet, previous: ReadonlyArray<DirectorySection>, ledger: Ledger, path: string) {
  return Effect.gen(function* () {
    const sections = ledger.snapshot()
    // Plan first: which blocks are carried over, which are new (addresses acquired in block order).
    const directory: Array<DirectorySection> = []
    const toWrite: Array<Omit<BlockPlan, "address">> = []
    let reused = 0
    sections.forEach((section, s) => {
      const rpb = rowsPerBlock(section.id, grid.blockSize)
      const before = previous.find((p) => p.id === section.id)
      const blocks = Math.ceil(section.rowCount / rpb)
      const entry: DirectorySection = { id: section.id, rowCount: section.rowCount, addresses: [], checksums: [] }
      for (let block = 0; block < blocks; block++) {
        const first = block * rpb
        const count = Math.min(rpb, section.rowCount - first)
        const carried = before !== undefined && block < before.addresses.length &&
          Math.min(rpb, before.rowCount - first) === count && !section.changedIn(first, count)
        if (carried) {
          entry.addresses.push(before.addresses[block]!)
          entry.checksums.push(before.checksums[block]!)
          reused++
        } else {
          entry.addresses.push(0)
          entry.checksums.push(new Uint8Array(checksumSize))
          toWrite.push({ section: s, block, first, count })
        }
      }
      assert(entry.addresses.length === blocks, () => `section ${section.id}: a directory entry per block`)
      directory.push(entry)
      if (before !== undefined) {
        for (let block = 0; block < before.addresses.length; block++) {
          if (entry.addresses[block] !== before.addresses[block]) freeSet.release(before.addresses[block]!)
        }
      }
    })
    const plans: Array<BlockPlan> = []
    if (toWrite.length > 0) {
      const reservation = freeSet.reserve(toWrite.length)
      if (reservation === undefined) return yield* new GridFullError({ path, blocksNeeded: toWrite.length, blocksMax: freeSet.blocksMax })
      for (const plan of toWrite) plans.push({ ...plan, address: freeSet.acquire(reservation) })
      freeSet.forfeit(reservation)
    }
    assert(plans.length === toWrite.length, () => "an address for every block to write")
    const buffers = Array.from({ length: Math.min(blockWritesMax, plans.length) }, () => grid.allocate())
    for (let start = 0; start < plans.length; start += buffers.length) {
      yield* Effect.forEach(plans.slice(start, start + buffers.length), (plan, i) => {
        const section = sections[plan.section]!
        const block = buffers[i]!
        const rowBytes = snapshotRowWords[section.id] * 4
        block.fill(0, 0, headerSize)
        section.copyRows(plan.first, plan.count, new Uint32Array(block.buffer, block.byteOffset + headerSize, (grid.blockSize - headerSize) >>> 2), 0)
        const metadata = new DataView(block.buffer, block.byteOffset, headerSize)
        metadata.setUint32(ValueMetadata.countMax, rowsPerBlock(section.id, grid.blockSize), true)
        metadata.setUint32(ValueMetadata.count, plan.count, true)
        metadata.setUint32(ValueMetadata.rowSize, rowBytes, true)
        metadata.setUint16(ValueMetadata.treeId, section.id, true)
        const sealed = sealBlock(block, { cluster: grid.cluster, address: plan.address, blockType: BlockType.value, size: headerSize + plan.count * rowBytes })
        const entry = directory[plan.section]!
        entry.addresses[plan.block] = plan.address
        entry.checksums[plan.block] = sealed.slice(0, checksumSize)
        return grid.write(plan.address, sealed)
      }, { concurrency: "unbounded", discard: true })
    }
    // Every block of the new snapshot is named: carried over, or written at its fresh address.
    assert(directory.every((section) => section.addresses.every((address) => address > 0)), () => "a snapshot block without an address")
    assert(plans.length + reused === directory.reduce((sum, section) => sum + section.addresses.length, 0), () => "blocks written + reused = blocks named")
    return { directory, written: plans.length, reused }
  })
}

/**
 * A section with more rows than the ledger holds (a restart with a smaller capacity than the
 * data takes): why it cannot be restored, or `undefined`. Checked before any row is read.
 */
function sectionBeyondCapacity(directory: ReadonlyArray<DirectorySection>, ledger: Ledger): string | undefined {
  for (const section of directory) {
    assert(Number.isSafeInteger(section.rowCount), () => `section ${section.id}: ${section.rowCount} rows`)
    const operation = section.id === SnapshotSectionId.accounts ? Operation.create_accounts
      : section.id === SnapshotSectionId.transfers || section.id === SnapshotSectionId.orphans ? Operation.create_transfers : undefined
    if (operation === undefined || ledger.fits(operation, section.rowCount)) continue
    const what = operation === Operation.create_accounts ? "accounts" : "transfers"
    return `it holds ${section.rowCount} ${section.id === SnapshotSectionId.orphans ? "failed transfer ids" : what}, ` +
      `more than the ledger's capacity for ${what}: start the replica with a capacity at least that large`
  }
  assert(directory.length <= Object.keys(snapshotRowWords).length, () => `${directory.length} snapshot sections`)
  return undefined
}

function restoreSnapshot(grid: Grid, directory: ReadonlyArray<DirectorySection>, ledger: Ledger, timestamp: bigint, path: string) {
  return Effect.gen(function* () {
    for (const section of directory) {
      const rpb = rowsPerBlock(section.id, grid.blockSize)
      const rowBytes = snapshotRowWords[section.id] * 4
      assert(section.addresses.length === section.checksums.length, () => `section ${section.id}: a checksum per block`)
      let restored = 0
      for (let block = 0; block < section.addresses.length; block++) {
        const address = section.addresses[block]!
        const what = `snapshot section ${section.id} block ${block}`
        const bytes = yield* grid.read(address, section.checksums[block]!, what)
        const metadata = new DataView(bytes.buffer, bytes.byteOffset, headerSize)
        const count = Math.min(rpb, section.rowCount - block * rpb)
        if (blockTypeOf(bytes) !== BlockType.value || metadata.getUint16(ValueMetadata.treeId, true) !== section.id ||
          metadata.getUint32(ValueMetadata.count, true) !== count || metadata.getUint32(ValueMetadata.rowSize, true) !== rowBytes ||
          bytes.length !== headerSize + count * rowBytes) {
          return yield* new GridReadError({ path, address, what, reason: "the block does not hold the rows its directory names" })
        }
        ledger.restoreRows(section.id, new Uint32Array(bytes.buffer, bytes.byteOffset + headerSize, count * rowBytes / 4), count, section.rowCount)
        restored += count
      }
      // decodeDirectory checked the block count against the rows: the blocks hold them all.
      assert(restored === section.rowCount, () => `section ${section.id}: ${restored} rows restored of ${section.rowCount}`)
    }
    ledger.restoreEnd(timestamp)
  })
}

// Directory layout: u32 section count, u32 zero; per section u32 id, u32 row bytes, u64 row
// count, u32 block count, u32 zero; then per block u64 address, u64 zero, u128 checksum.
const sectionHeaderSize = 24
const entrySize = 32

function encodeDirectory(directory: ReadonlyArray<DirectorySection>): Uint8Array {
  const blocks = directory.reduce((sum, s) => sum + s.addresses.length, 0)
  const bytes = new Uint8Array(8 + directory.length * sectionHeaderSize + blocks * entrySize)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, directory.length, true)
  let at = 8
  for (const section of directory) {
    assert(section.addresses.length === section.checksums.length, () => `section ${section.id}: a checksum per block`)
    view.setUint32(at, section.id, true)
    view.setUint32(at + 4, snapshotRowWords[section.id] * 4, true)
    view.setBigUint64(at + 8, BigInt(section.rowCount), true)
    view.setUint32(at + 16, section.addresses.length, true)
    at += sectionHeaderSize
    for (let block = 0; block < section.addresses.length; block++) {
      assert(section.addresses[block]! > 0, () => "a snapshot block without an address")
      view.setBigUint64(at, BigInt(section.addresses[block]!), true)
      bytes.set(section.checksums[block]!, at + 16)
      at += entrySize
    }
  }
  // decodeDirectory refuses trailing bytes: the encoding fills the buffer exactly.
  assert(at === bytes.length, () => "the directory fills its encoding")
  return bytes
}

/** The snapshot directory's sections, or why its bytes are malformed (also read by `scarab inspect`). */
export function decodeDirectory(bytes: Uint8Array, blockSize: number): Array<DirectorySection> | string {
  assert(blockSize > headerSize, () => "a block holds more than its header")
  if (bytes.length === 0) return []
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
  if (bytes.length < 8) return "snapshot directory: truncated"
  const count = view.getUint32(0, true)
  const sections: Array<DirectorySection> = []
  let at = 8
  for (let s = 0; s < count; s++) {
    if (at + sectionHeaderSize > bytes.length) return "snapshot directory: truncated"
    const id = view.getUint32(at, true) as SnapshotSectionId
    if (!(id in snapshotRowWords) || sections.some((other) => other.id === id)) return `snapshot directory: section ${id}`
    if (view.getUint32(at + 4, true) !== snapshotRowWords[id] * 4) return `snapshot directory: section ${id} row size`
    const rowCount = Number(view.getBigUint64(at + 8, true))
    const blocks = view.getUint32(at + 16, true)
    if (blocks !== Math.ceil(rowCount / rowsPerBlock(id, blockSize))) return `snapshot directory: section ${id} has ${blocks} blocks for ${rowCount} rows`
    at += sectionHeaderSize
    if (at + blocks * entrySize > bytes.length) return "snapshot directory: truncated"
    const section: DirectorySection = { id, rowCount, addresses: [], checksums: [] }
    for (let block = 0; block < blocks; block++) {
      section.addresses.push(Number(view.getBigUint64(at, true)))
      section.checksums.push(bytes.slice(at + 16, at + 32))
      at += entrySize
    }
    sections.push(section)
  }
  if (at !== bytes.length) return "snapshot directory: trailing bytes"
  assert(sections.length === count, () => "a section per count")
  return sections
}

const readOp = (header: Uint8Array): number => readU64Number(header, PrepareLayout.op.offset)

