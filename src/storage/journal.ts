/**
 * The write-ahead log (storage.md §4): the last `journalSlotCount` prepares, op n in slot
 * n mod journalSlotCount of two rings. The prepares ring holds each whole message; the headers
 * ring holds a redundant copy of each slot's header, 16 to a sector. A slot without a prepare
 * holds its reserved header (operation reserved, op = slot), so a misdirected read or write
 * shows up as a header in the wrong place.
 *
 * Write order (§4.3): the prepare first, then the sector of the headers ring that holds its
 * header. A redundant header on disk therefore proves its prepare was durable before it, and the
 * replica acknowledges an op only after both writes, which is what lets recovery tell a torn
 * append (never acknowledged, truncated) from corruption of an acknowledged op (refused, or
 * repaired from a peer).
 *
 * Concurrency (docs/decisions.md, "Concurrent journal writes"). Writes come from a pool of
 * `writesMax` records, each with its own prepare buffer and header-sector buffer; reads from a
 * pool of their own, so a read never shares memory with a write in flight. Several writes may be
 * in flight in a cluster, under three rules: a write waits for an earlier write of the same slot
 * (the slot ends as if they ran in order); one write per headers-ring sector is in flight, and a
 * header that becomes durable meanwhile goes out with the sector's next write, which snapshots the
 * image when it is issued, so it carries every header durable by then and never lands an older
 * header over a newer one; and a replica of one still writes one prepare at a time (asserted),
 * because its recovery truncates a torn append only at the slot of op_max + 1 (journal_recovery.ts).
 *
 * Recovery (§4.4) reads both rings whole, classifies every slot (journal_recovery.ts), rewrites
 * the redundant headers it can fix from intact prepares, and returns the ops after the
 * checkpoint, chained by checksum from the checkpoint's header. A single replica has no peer to
 * repair from: any slot that lost a prepare it may have acknowledged, any gap or broken chain
 * after the checkpoint, stops it with an error naming the slot and op.
 */
import { Cause, Effect, type Exit, Schema } from "effect"
import { AssertionError, assert } from "../assert.ts"
import { checksumInto } from "../protocol/checksum_native.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { checksumBodyEmpty, headerInvalid, rootPrepare } from "../protocol/header_rules.ts"
import { Command, FrameLayout, headerSize, PrepareLayout, readU32, readU64Number, u128Equal, VsrOperation, writeU32 } from "../protocol/header.ts"
import { classifySlot, type Decision, type SlotCase, type SlotHeader, tornSlots } from "./journal_recovery.ts"
import { headersPerSector, type Layout, prepareMax, type StorageConfig } from "./layout.ts"
import { type Storage, type StorageError, sectorSize, sectorsCeil } from "./storage.ts"

export class JournalRecoveryError extends Schema.TaggedError<JournalRecoveryError>()("JournalRecoveryError", {
  path: Schema.String,
  op: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: WAL recovery refused at ${this.op}: ${this.reason}`
  }
}

/** Reads of whole prepare slots in flight during recovery (storage.md §1.1: 8 journal reads). */
const recoveryReadsMax = 8

/**
 * Prepare reads in flight at once, the read pool (storage.md §1.1: TigerBeetle's
 * journal_iops_read_max, 8 in production): two for the commit path (replay and commit read one
 * op at a time; a primary may also read one to repair its pipeline), the rest for peers' repair
 * requests, so peers can never starve the commit path.
 */
export const journalReadsMax = 8
export const journalReadsCommitMax = 2
export const journalReadsRepairMax = journalReadsMax - journalReadsCommitMax

/**
 * Prepare writes in flight at once in a cluster: the pipeline bound (8 in production), which is
 * how many uncommitted prepares a primary sends at once; TigerBeetle asks for at least that many
 * journal write IOPs. Each has its own 1 MiB buffer. A replica of one writes one at a time.
 */
export const journalWritesMax = (config: StorageConfig): number => config.pipelineMax

/** A peer's repair read when all of `journalReadsRepairMax` are in flight: refused, the peer asks again. */
export class JournalReadsBusyError extends Schema.TaggedError<JournalReadsBusyError>()("JournalReadsBusyError", {
  path: Schema.String,
  op: Schema.String,
  readsMax: Schema.Number
}) {
  override get message(): string {
    return `${this.path}: WAL read of op ${this.op} refused: ${this.readsMax} repair reads are in flight already`
  }
}

export interface RecoveryOptions {
  readonly cluster: Uint8Array
  /** The durable checkpoint: replay starts after its op, chained from its header's checksum. */
  readonly checkpointHeader: Uint8Array
  /** A single replica repairs locally what it can and refuses to start on anything else. */
  readonly solo: boolean
}

/** What recovery decided, for the log and for tests. */
export interface RecoveryReport {
  readonly decisions: Readonly<Record<Decision, number>>
  readonly tornSlots: ReadonlyArray<number>
  readonly fixedSlots: ReadonlyArray<number>
  /** Slots that lost an op the checkpoint holds, reset to empty (a single replica). */
  readonly resetSlots: ReadonlyArray<number>
  readonly faultySlots: ReadonlyArray<number>
}

export interface Recovered {
  readonly journal: Journal
  /** The ops after the checkpoint, oldest first, with their headers: read each with `journal.readPrepare`. */
  readonly replay: ReadonlyArray<{ readonly op: number; readonly checksum: Uint8Array; readonly header: Uint8Array }>
  /** A cluster's: the headers of the committed ops (up to the checkpoint) the journal still holds, which peers' repair may ask for. */
  readonly committed: ReadonlyArray<Uint8Array>
  readonly report: RecoveryReport
}

export class Journal {
  readonly layout: Layout
  /** Prepare writes this journal lets into flight at once (1 for a single replica: see the header comment). */
  readonly writesMax: number
  /** Prepare reads this journal lets into flight at once: its read pool. */
  readonly readsMax: number
  private readonly storage: Storage["Service"]
  private readonly slotCount: number
  private readonly solo: boolean
  /** The header that belongs in each slot (reserved when none): 256 bytes per slot. */
  private readonly headers: Uint8Array
  /** The image of the headers ring; a faulty slot's header has a zeroed, invalid checksum. */
  private readonly redundant: Uint8Array
  private readonly faulty: Uint8Array

  /** The write pool: one record (prepare buffer, header-sector buffer) per write in flight. */
  private readonly writes: ReadonlyArray<WriteIop>
  private writesInFlight = 0
  /** The newest write of each slot, in flight or waiting: a later write to the slot queues behind it. */
  private readonly slotWriteLast: Array<WriteIop | undefined>
  /** Per headers-ring sector: 1 while one write of it is in flight (one writer per sector, §4.3). */
  private readonly sectorLocked: Uint8Array
  /** Per sector: the writes whose headers joined `redundant` while the sector was locked, oldest first. */
  private readonly sectorWaitingFirst: Array<WriteIop | undefined>
  private readonly sectorWaitingLast: Array<WriteIop | undefined>
  /** Per slot: bumped whenever `redundant` takes a new header for it. */
  private readonly redundantVersion: Uint32Array
  /** Per slot: the version of its header in the last headers-ring write that landed. */
  private readonly redundantVersionLanded: Uint32Array
  /** Set once a write failed or was interrupted: every later write fails the same way (recover anew). */
  private broken: Effect.Effect<never, StorageError> | undefined

  /** The read pool: reads never share memory with a write in flight, nor with each other. */
  private readonly readBuffers: ReadonlyArray<Uint8Array>
  private readonly readBusy: Uint8Array
  private readsCommit = 0
  private readsRepair = 0

  constructor(storage: Storage["Service"], layout: Layout, headers: Uint8Array, redundant: Uint8Array, faulty: Uint8Array, solo = true) {
    this.storage = storage
    this.layout = layout
    this.slotCount = layout.config.journalSlotCount
    this.solo = solo
    assert(headers.length === this.slotCount * headerSize, () => "journal headers image")
    assert(redundant.length === layout.walHeaders.sizeBytes, () => "journal headers-ring image")
    assert(faulty.length === this.slotCount, () => "journal faulty bits")
    this.headers = headers
    this.redundant = redundant
    this.faulty = faulty
    const sectorCount = layout.walHeaders.sizeBytes / sectorSize
    this.writesMax = solo ? 1 : journalWritesMax(layout.config)
    // One crash must not tear every headers-ring sector at once (storage.md §4.1): with one
    // write in flight per sector, that needs more sectors than writes. The test profile's ring
    // (4 sectors) is too small for that, as TigerBeetle's test_min ring is; the simulator keeps
    // replicas of one, whose writes are serial.
    assert(solo || layout.config.name !== "production" || sectorCount > this.writesMax, () => "the headers ring needs more sectors than writes in flight")
    this.writes = Array.from({ length: this.writesMax }, () => {
      const buffer = storage.allocate(layout.config.messageSizeMax)
      return {
        buffer, header: buffer.subarray(0, headerSize), sector: storage.allocate(sectorSize), sectorVersions: new Uint32Array(headersPerSector),
        busy: false, op: 0, slot: 0, slotNext: undefined, slotWait: false, sectorNext: undefined, resume: undefined, signalled: undefined
      } satisfies WriteIop
    })
    this.slotWriteLast = Array.from({ length: this.slotCount }, () => undefined)
    this.sectorLocked = new Uint8Array(sectorCount)
    this.sectorWaitingFirst = Array.from({ length: sectorCount }, () => undefined)
    this.sectorWaitingLast = Array.from({ length: sectorCount }, () => undefined)
    this.redundantVersion = new Uint32Array(this.slotCount)
    this.redundantVersionLanded = new Uint32Array(this.slotCount)
    // A replica of one serves no peer, so it needs only the commit path's reads.
    this.readsMax = solo ? journalReadsCommitMax : journalReadsMax
    this.readBuffers = Array.from({ length: this.readsMax }, () => storage.allocate(layout.config.messageSizeMax))
    this.readBusy = new Uint8Array(this.readsMax)
  }

  /** Writes that may start now without breaking `writesMax`. */
  get writesAvailable(): number {
    return this.writesMax - this.writesInFlight
  }

  /**
   * Appends `prepare` (a whole message) to its slot: the prepare, then its redundant header's
   * sector. Durable when it succeeds; the caller acknowledges the op only then. Up to
   * `writesMax` may be in flight (more is a defect: the caller bounds them); a single replica
   * writes one at a time. A write to a slot that an earlier write still holds (a wrap-around,
   * or a rewrite) waits for it, so the slot ends as if the writes had run one after the other.
   */
  writePrepare(prepare: Uint8Array): Effect.Effect<void, StorageError> {
    return Effect.suspend(() => {
      if (this.broken !== undefined) return this.broken
      assert(prepare.length >= headerSize, () => "a prepare holds at least its header")
      const iop = this.acquireWrite(prepare)
      assert(this.slotWriteLast[iop.slot] === iop, () => `op ${iop.op}: the newest write of its slot`)
      assert(this.writesInFlight <= this.writesMax, () => `${this.writesInFlight} journal writes in flight`)
      return (iop.slotWait ? this.wait(iop) : Effect.void).pipe(
        Effect.andThen(Effect.suspend(() => this.writePrepareSectors(iop))),
        Effect.andThen(Effect.suspend(() => this.writeHeader(iop))),
        Effect.andThen(Effect.sync(() => this.writeDone(iop))),
        Effect.onExit((exit) => Effect.sync(() => this.releaseWrite(iop, exit)))
      )
    })
  }

  /**
   * The prepare of `op` whose checksum is `checksum`, read from its slot into a buffer of the
   * read pool and copied out, or undefined if it is not intact there (or a write of the slot is
   * in flight). This is the commit path (replay, commit): at most `journalReadsCommitMax` at once.
   */
  readPrepare(op: number, expected: Uint8Array): Effect.Effect<Uint8Array | undefined, StorageError> {
    return Effect.suspend(() => {
      assert(expected.length >= checksumSize, () => "a read names the prepare's checksum")
      assert(this.readsCommit < journalReadsCommitMax, () => `more than ${journalReadsCommitMax} journal reads on the commit path at once`)
      return this.read(op, expected, false)
    })
  }

  /**
   * `readPrepare` for a peer's repair request: at most `journalReadsRepairMax` at once; one more
   * fails at once with `JournalReadsBusyError` (the peer asks again), so requests from peers can
   * neither queue without bound nor take the commit path's buffers.
   */
  readPrepareForRepair(op: number, expected: Uint8Array): Effect.Effect<Uint8Array | undefined, StorageError | JournalReadsBusyError> {
    return Effect.suspend((): Effect.Effect<Uint8Array | undefined, StorageError | JournalReadsBusyError> => {
      assert(!this.solo, () => "a replica of one serves no repair reads")
      assert(expected.length >= checksumSize, () => "a read names the prepare's checksum")
      if (this.readsRepair === journalReadsRepairMax) return Effect.fail(new JournalReadsBusyError({ path: this.storage.path, op: String(op), readsMax: journalReadsRepairMax }))
      return this.read(op, expected, true)
    })
  }

  /** Whether recovery left `slot` faulty (a cluster repairs it; a single replica never starts with one). */
  isFaulty(slot: number): boolean {
    return this.faulty[slot] === 1
  }

  /** The header the journal holds for `slot` (reserved when empty). */
  headerOf(slot: number): Uint8Array {
    return this.headers.subarray(slot * headerSize, (slot + 1) * headerSize)
  }

  // --- writes -----------------------------------------------------------------------------------

  /** Takes a record of the write pool for `prepare` and copies it in; queues it behind the slot's earlier write. */
  private acquireWrite(prepare: Uint8Array): WriteIop {
    const op = readOp(prepare, 0)
    const slot = op % this.slotCount
    const size = readU32(prepare, FrameLayout.size.offset)
    assert(size === prepare.length, () => `prepare of op ${op} has size ${size} in a message of ${prepare.length} bytes`)
    assert(size <= this.layout.config.messageSizeMax, () => `prepare of op ${op} has size ${size}`)
    assert(prepare[FrameLayout.command.offset] === Command.prepare, () => "the journal holds prepares")
    assert(prepare[PrepareLayout.operation.offset] !== VsrOperation.reserved, () => "the journal holds prepares, not reserved headers")
    // TigerBeetle asserts the same: recovery's single-replica rule (only op_max + 1 can be torn) holds only then.
    assert(!this.solo || this.writesInFlight === 0, () => `op ${op}: a single replica writes one prepare at a time`)
    assert(this.writesInFlight < this.writesMax, () => `op ${op}: ${this.writesInFlight} journal writes in flight, the bound is ${this.writesMax}`)
    let iop: WriteIop | undefined
    for (const candidate of this.writes) if (!candidate.busy) { iop = candidate; break }
    assert(iop !== undefined, () => "a free write record")
    assert(iop.slotNext === undefined, () => "a free write record queues no write behind it")
    assert(iop.sectorNext === undefined, () => "a free write record belongs to no sector group")
    assert(iop.resume === undefined, () => "a free write record waits for nothing")
    iop.busy = true
    this.writesInFlight++
    iop.op = op
    iop.slot = slot
    iop.signalled = undefined
    iop.buffer.set(prepare)
    iop.buffer.fill(0, size, sectorsCeil(size)) // recovery requires zero padding (§4.1)
    const last = this.slotWriteLast[slot]
    this.slotWriteLast[slot] = iop
    if (last !== undefined) {
      assert(last.busy, () => `slot ${slot}: its newest write is in flight`)
      assert(last.slot === slot, () => `slot ${slot}: its newest write is of another slot`)
      assert(last.slotNext === undefined, () => `slot ${slot}: one write queued behind another`)
      last.slotNext = iop
    }
    iop.slotWait = last !== undefined
    return iop
  }

  private writePrepareSectors(iop: WriteIop): Effect.Effect<void, StorageError> {
    if (this.broken !== undefined) return this.broken
    assert(this.slotWriteLast[iop.slot] !== undefined, () => `slot ${iop.slot}: written without its write record`)
    assert(readOp(iop.header, 0) === iop.op, () => `slot ${iop.slot}: its write record holds another op`)
    const size = readU32(iop.header, FrameLayout.size.offset)
    assert(size >= headerSize, () => `op ${iop.op}: size ${size}`)
    return this.storage.write(this.layout.walPrepares, iop.slot * this.layout.config.messageSizeMax, iop.buffer.subarray(0, sectorsCeil(size)))
  }

  /**
   * The prepare is durable: only now may its header enter the headers ring (§4.3). One write per
   * sector is in flight at a time; a header that joins the image meanwhile waits and goes out
   * with the next write of that sector, together with every other header that joined by then.
   */
  private writeHeader(iop: WriteIop): Effect.Effect<void, StorageError> {
    if (this.broken !== undefined) return this.broken
    assert(iop.sectorNext === undefined, () => `op ${iop.op}: in a sector group before its prepare landed`)
    const at = iop.slot * headerSize
    this.headers.set(iop.header, at)
    this.redundant.set(iop.header, at)
    this.redundantVersion[iop.slot]++
    const sector = Math.floor(iop.slot / headersPerSector)
    assert(sector < this.sectorLocked.length, () => `slot ${iop.slot}: beyond the headers ring`)
    if (this.sectorLocked[sector] === 0) {
      this.sectorLocked[sector] = 1
      return this.writeSector(sector, iop)
    }
    const last = this.sectorWaitingLast[sector]
    if (last === undefined) this.sectorWaitingFirst[sector] = iop
    else last.sectorNext = iop
    this.sectorWaitingLast[sector] = iop
    return this.wait(iop)
  }

  /**
   * Writes headers-ring `sector` for the group `issuer`, `issuer.sectorNext`, …: a snapshot of
   * the image taken now, so it carries every header whose prepare is durable, in the issuer's
   * own buffer (the image may change while the write is in flight). The caller holds the lock.
   */
  private writeSector(sector: number, issuer: WriteIop): Effect.Effect<void, StorageError> {
    assert(this.sectorLocked[sector] === 1, () => `headers sector ${sector} written without its lock`)
    const first = sector * headersPerSector
    issuer.sector.set(this.redundant.subarray(first * headerSize, (first + headersPerSector) * headerSize))
    for (let i = 0; i < headersPerSector; i++) issuer.sectorVersions[i] = this.redundantVersion[first + i]!
    for (let w: WriteIop | undefined = issuer; w !== undefined; w = w.sectorNext) {
      assert(Math.floor(w.slot / headersPerSector) === sector, () => `op ${w.op}: in the group of another sector`)
      assert(u128Equal(issuer.sector, (w.slot - first) * headerSize, w.header, 0), () => `op ${w.op}: its header is missing from the sector write meant to carry it`)
    }
    return this.storage.write(this.layout.walHeaders, sector * sectorSize, issuer.sector).pipe(
      Effect.onExit((exit) => Effect.sync(() => this.sectorDone(sector, issuer, exit)))
    )
  }

  /** A sector write ended: its group is durable; the writes that waited meanwhile go out as the next group. */
  private sectorDone(sector: number, issuer: WriteIop, exit: Exit.Exit<void, StorageError>): void {
    assert(this.sectorLocked[sector] === 1, () => `headers sector ${sector} completed without its lock`)
    if (exit._tag === "Failure") return this.breakWith(exit.cause)
    const first = sector * headersPerSector
    for (let i = 0; i < headersPerSector; i++) {
      // The pair of the snapshot above: what lands is never older than what the sector held.
      assert(issuer.sectorVersions[i]! >= this.redundantVersionLanded[first + i]!, () => `slot ${first + i}: an older redundant header landed over a newer one`)
      this.redundantVersionLanded[first + i] = issuer.sectorVersions[i]!
    }
    let covered = issuer.sectorNext
    issuer.sectorNext = undefined
    while (covered !== undefined) {
      const next: WriteIop | undefined = covered.sectorNext
      covered.sectorNext = undefined
      this.signal(covered, Effect.void)
      covered = next
    }
    const waiting = this.sectorWaitingFirst[sector]
    this.sectorWaitingFirst[sector] = undefined
    this.sectorWaitingLast[sector] = undefined
    // The lock passes to the waiting group, so no newcomer can write the sector in between.
    if (waiting === undefined) this.sectorLocked[sector] = 0
    else this.signal(waiting, Effect.suspend(() => (this.broken !== undefined ? this.broken : this.writeSector(sector, waiting))))
  }

  private writeDone(iop: WriteIop): void {
    // Same-slot writes are serial, so the slot's images still name this prepare.
    assert(u128Equal(this.redundant, iop.slot * headerSize, iop.header, 0), () => `op ${iop.op}: the image names another header`)
    assert(this.redundantVersionLanded[iop.slot] === this.redundantVersion[iop.slot], () => `op ${iop.op}: its redundant header is not the one on disk`)
    this.faulty[iop.slot] = 0
  }

  private releaseWrite(iop: WriteIop, exit: Exit.Exit<void, StorageError>): void {
    assert(iop.busy, () => "releasing a free write record")
    assert(this.writesInFlight > 0, () => "releasing a write while none is in flight")
    if (exit._tag === "Failure") return this.breakWith(exit.cause)
    assert(iop.sectorNext === undefined, () => `op ${iop.op}: released inside a sector group`)
    assert(iop.resume === undefined, () => `op ${iop.op}: released while waiting`)
    const next = iop.slotNext
    iop.slotNext = undefined
    if (this.slotWriteLast[iop.slot] === iop) this.slotWriteLast[iop.slot] = undefined
    iop.busy = false
    this.writesInFlight--
    if (next !== undefined) this.signal(next, Effect.void)
  }

  /**
   * A write failed (a fatal storage error) or was interrupted: what is on disk for the writes
   * in flight is unknown, so this journal takes no more writes, and every write waiting fails
   * the same way. The replica stops; a restart recovers from what the disk holds.
   */
  private breakWith(cause: Cause.Cause<StorageError>): void {
    assert(this.writesInFlight > 0, () => "a write broke the journal while none was in flight")
    assert(cause.reasons.length > 0, () => "a write broke the journal without a cause")
    if (this.broken === undefined) {
      const error = Cause.findErrorOption(cause)
      this.broken = error._tag === "Some"
        ? Effect.fail(error.value)
        : Effect.die(new AssertionError("a journal write was interrupted or died: recover the journal to write again"))
      for (const iop of this.writes) if (iop.busy) this.signal(iop, this.broken)
    }
  }

  /** Suspends `iop`'s write until `signal` resumes it with what to do next. */
  private wait(iop: WriteIop): Effect.Effect<void, StorageError> {
    return Effect.callback<void, StorageError>((resume) => {
      assert(iop.busy, () => "a free write record waits")
      assert(iop.resume === undefined, () => `op ${iop.op}: waits twice at once`)
      const signalled = iop.signalled
      if (signalled !== undefined) {
        iop.signalled = undefined
        resume(signalled)
      } else {
        iop.resume = resume
      }
    })
  }

  /** Resumes `iop` with `next`, or leaves it for its `wait` if it has not reached it yet. */
  private signal(iop: WriteIop, next: Effect.Effect<void, StorageError>): void {
    assert(iop.busy, () => "a free write record is signalled")
    // Only a broken journal signals a write twice (its failure, then a sector write that ended).
    assert(iop.signalled === undefined || this.broken !== undefined, () => `op ${iop.op}: signalled twice`)
    const resume = iop.resume
    if (resume === undefined) {
      iop.signalled = next
    } else {
      iop.resume = undefined
      resume(next)
    }
  }

  // --- reads ------------------------------------------------------------------------------------

  private read(op: number, expected: Uint8Array, repair: boolean): Effect.Effect<Uint8Array | undefined, StorageError> {
    const slot = op % this.slotCount
    // A slot being written holds no prepare anyone may read yet (TigerBeetle: not inhabited).
    if (this.slotWriteLast[slot] !== undefined) return Effect.succeed(undefined)
    let index = -1
    for (let i = 0; i < this.readsMax; i++) if (this.readBusy[i] === 0) { index = i; break }
    assert(index >= 0, () => "a free read buffer")
    assert(this.readsCommit + this.readsRepair < this.readsMax, () => "reads in flight within the read pool")
    this.readBusy[index] = 1
    if (repair) this.readsRepair++
    else this.readsCommit++
    const buffer = this.readBuffers[index]!
    return readSlot(this.storage, this.layout, slot, buffer).pipe(
      Effect.map((size) => {
        if (size === undefined || !u128Equal(buffer, 0, expected, 0) || readOp(buffer, 0) !== op) return undefined
        return buffer.slice(0, size)
      }),
      Effect.ensuring(Effect.sync(() => {
        assert(this.readBusy[index] === 1, () => "releasing a read buffer that is free")
        this.readBusy[index] = 0
        if (repair) this.readsRepair--
        else this.readsCommit--
      }))
    )
  }
}

/** One record of the write pool: a prepare write in flight or waiting, with its own memory. */
interface WriteIop {
  /** The prepare, zero-padded to its sector end (messageSizeMax, sector-aligned). */
  readonly buffer: Uint8Array
  readonly header: Uint8Array
  /** The headers-ring sector this write issues, when it issues one (a snapshot of the image). */
  readonly sector: Uint8Array
  /** The image version of each slot in `sector`. */
  readonly sectorVersions: Uint32Array
  busy: boolean
  op: number
  slot: number
  /** The next write of the same slot, waiting for this one. */
  slotNext: WriteIop | undefined
  /** Whether this write waits for an earlier write of its slot to finish. */
  slotWait: boolean
  /** The next write in this one's header-sector group (covered by one sector write, or waiting for it). */
  sectorNext: WriteIop | undefined
  resume: ((effect: Effect.Effect<void, StorageError>) => void) | undefined
  /** What to do next, when `signal` came before `wait`. */
  signalled: Effect.Effect<void, StorageError> | undefined
}

/** Format (storage.md §2.1): every prepare slot gets its header sector, then the headers ring. */
export const formatJournal = Effect.fnUntraced(function* (storage: Storage["Service"], layout: Layout, cluster: Uint8Array) {
  const slotCount = layout.config.journalSlotCount
  assert(cluster.length === checksumSize, () => "a cluster id is 16 bytes")
  assert(slotCount * headerSize <= layout.walHeaders.sizeBytes, () => "the headers ring holds every slot's header")
  const ring = storage.allocate(layout.walHeaders.sizeBytes)
  for (let slot = 0; slot < slotCount; slot++) ring.set(slot === 0 ? rootPrepare(cluster) : reservedHeader(cluster, slot), slot * headerSize)
  // Prepares first, so that no redundant header exists on disk without its prepare (§4.2).
  const sectors = Array.from({ length: recoveryReadsMax }, () => storage.allocate(sectorSize))
  for (let first = 0; first < slotCount; first += recoveryReadsMax) {
    yield* Effect.forEach(sectors, (sector, i) => {
      const slot = first + i
      if (slot >= slotCount) return Effect.void
      sector.fill(0)
      sector.set(ring.subarray(slot * headerSize, (slot + 1) * headerSize))
      return storage.write(layout.walPrepares, slot * layout.config.messageSizeMax, sector)
    }, { concurrency: "unbounded", discard: true })
  }
  yield* storage.write(layout.walHeaders, 0, ring)
})

/**
 * What recovery reads of both rings and decides for every slot (§4.4), before it changes
 * anything: recovery applies it, and `scarab inspect wal` prints it (it reads, never writes).
 */
export interface JournalClassified {
  /** The headers ring as read. */
  readonly redundant: Uint8Array
  /** The first 256 bytes of every prepare slot as read (its header, intact or not). */
  readonly prepareHeaders: Uint8Array
  /** Per slot: 1 when its prepare is intact (header, body and padding). */
  readonly prepareOk: Uint8Array
  /** Per slot: the op of a prepare header whose checksum is valid (the rest may be broken). */
  readonly prepareOp: ReadonlyArray<number | undefined>
  /** Per slot: its ok redundant header and its ok prepare header, or undefined. */
  readonly h: ReadonlyArray<SlotHeader | undefined>
  readonly p: ReadonlyArray<SlotHeader | undefined>
  readonly cases: ReadonlyArray<SlotCase>
  /** The cases' decisions, with torn appends at the head as `cut_torn`. */
  readonly decisions: Array<Decision>
  readonly torn: ReadonlyArray<number>
  readonly opMax: number
  readonly checkpointOp: number
  readonly opPrepareMax: number
}

/** Reads both rings whole and classifies every slot (storage.md §4.4, steps 1–6), writing nothing. */
export const classifyJournal = Effect.fnUntraced(function* (
  storage: Storage["Service"], layout: Layout, options: RecoveryOptions
): Effect.fn.Return<JournalClassified, StorageError> {
  const slotCount = layout.config.journalSlotCount
  assert(options.cluster.length === checksumSize, () => "a cluster id is 16 bytes")
  const redundant = storage.allocate(layout.walHeaders.sizeBytes)
  yield* storage.read(layout.walHeaders, 0, redundant)
  const prepareHeaders = new Uint8Array(slotCount * headerSize)
  const prepareOk = new Uint8Array(slotCount)
  const prepareOp: Array<number | undefined> = []
  const buffers = Array.from({ length: recoveryReadsMax }, () => storage.allocate(layout.config.messageSizeMax))
  for (let first = 0; first < slotCount; first += recoveryReadsMax) {
    yield* Effect.forEach(buffers, (buffer, i) => {
      const slot = first + i
      if (slot >= slotCount) return Effect.void
      return Effect.map(readSlot(storage, layout, slot, buffer), (size) => {
        prepareOp[slot] = headerChecksumValid(buffer, 0) ? readOp(buffer, 0) : undefined
        prepareHeaders.set(buffer.subarray(0, headerSize), slot * headerSize)
        prepareOk[slot] = size === undefined ? 0 : 1
      })
    }, { concurrency: "unbounded", discard: true })
  }

  const checkpointOp = readOp(options.checkpointHeader, 0)
  const opPrepareMax = prepareMax(layout.config, checkpointOp)
  const h: Array<SlotHeader | undefined> = []
  const p: Array<SlotHeader | undefined> = []
  let opMax = 0
  for (let slot = 0; slot < slotCount; slot++) {
    h.push(slotHeader(redundant, slot * headerSize, options.cluster, slot, slotCount))
    p.push(prepareOk[slot] === 1 ? slotHeader(prepareHeaders, slot * headerSize, options.cluster, slot, slotCount) : undefined)
    for (const header of [h[slot], p[slot]]) if (header !== undefined && !header.reserved && header.op > opMax) opMax = header.op
  }
  const cases = h.map((header, slot) => classifySlot(header, p[slot], opMax, opPrepareMax, options.solo))
  const decisions = cases.map((c) => c.decision)
  // A crash tears at most the writes in flight: one for a replica of one (its journal asserts
  // it), the write pool's bound in a cluster.
  const writesMax = options.solo ? 1 : journalWritesMax(layout.config)
  const torn = tornSlots({
    slotCount, opMax, opCheckpoint: checkpointOp, opPrepareMax, writesMax, decisions, redundant: h, prepareOp, solo: options.solo
  })
  for (const slot of torn) decisions[slot] = "cut_torn"
  assert(decisions.length === slotCount, () => "a decision per slot")
  assert(torn.length <= writesMax, () => "no more torn slots than writes in flight")
  return { redundant, prepareHeaders, prepareOk, prepareOp, h, p, cases, decisions, torn, opMax, checkpointOp, opPrepareMax } satisfies JournalClassified
})

/** Recovers the journal at startup (storage.md §4.4–§4.6). */
export const recoverJournal = Effect.fnUntraced(function* (
  storage: Storage["Service"], layout: Layout, options: RecoveryOptions
): Effect.fn.Return<Recovered, StorageError | JournalRecoveryError> {
  const slotCount = layout.config.journalSlotCount
  const { redundant, prepareHeaders, h, p, cases, decisions, torn, opMax, checkpointOp } = yield* classifyJournal(storage, layout, options)
  // A single replica needs only the ops after its checkpoint: a slot that lost an op the
  // checkpoint already holds (its redundant header names that op) is reset to empty, prepare
  // then redundant header, as if formatted. Any other lost slot may hide an op after the
  // checkpoint, and stops a single replica below.
  const reset = options.solo
    ? decisions.flatMap((decision, slot) => (decision === "vsr" && h[slot] !== undefined && !h[slot]!.reserved && h[slot]!.op <= checkpointOp ? [slot] : []))
    : []

  // Apply the decisions: what belongs in each slot, and the headers ring image to match.
  const headers = new Uint8Array(slotCount * headerSize)
  const faulty = new Uint8Array(slotCount)
  const fixed: Array<number> = []
  const counts: Record<Decision, number> = { eql: 0, nil: 0, fix: 0, vsr: 0, cut: 0, cut_torn: 0 }
  for (let slot = 0; slot < slotCount; slot++) {
    const decision = decisions[slot]!
    counts[decision]++
    const at = slot * headerSize
    if (decision === "eql") headers.set(redundant.subarray(at, at + headerSize), at)
    else if (decision === "fix") {
      headers.set(prepareHeaders.subarray(at, at + headerSize), at)
      fixed.push(slot)
    } else headers.set(reservedHeader(options.cluster, slot), at)
    if (decision === "nil") assert(u128Equal(redundant, at, headers, at), () => `slot ${slot}: a reserved header that is not the slot's own`)
    if (decision === "vsr" && !reset.includes(slot)) faulty[slot] = 1
  }
  // Every slot got exactly one decision, and only a lost prepare leaves a slot faulty (§4.4, step 8).
  assert(Object.values(counts).reduce((a, b) => a + b, 0) === slotCount, () => "one decision per slot")
  assert(faulty.reduce((a, b) => a + b, 0) + reset.length === counts.vsr, () => "faulty slots are the vsr slots not reset")
  redundant.set(headers)
  // A faulty slot's redundant header is written invalid, so that a later recovery still sees
  // the slot as faulty after a neighbour rewrote the sector (§4.3, "faults stay visible").
  for (let slot = 0; slot < slotCount; slot++) if (faulty[slot] === 1) redundant.fill(0, slot * headerSize, slot * headerSize + checksumSize)
  const sector0 = storage.allocate(sectorSize)
  for (const slot of reset) {
    sector0.fill(0)
    sector0.set(headers.subarray(slot * headerSize, (slot + 1) * headerSize))
    yield* storage.write(layout.walPrepares, slot * layout.config.messageSizeMax, sector0)
  }
  const fixSectors = [...new Set([...fixed, ...reset].map((slot) => Math.floor(slot / headersPerSector)))]
  for (const sector of fixSectors) yield* storage.write(layout.walHeaders, sector * sectorSize, redundant.subarray(sector * sectorSize, (sector + 1) * sectorSize))

  const faultySlots = [...faulty.keys()].filter((slot) => faulty[slot] === 1)
  const report: RecoveryReport = { decisions: counts, tornSlots: torn, fixedSlots: fixed, resetSlots: reset, faultySlots }
  const refuse = (op: string, reason: string) => new JournalRecoveryError({ path: storage.path, op, reason })
  if (options.solo && faultySlots.length + reset.length === slotCount) return yield* refuse("every slot", "no slot of the WAL is readable: not a WAL, or the whole ring is damaged")
  const needed = faultySlots
  if (options.solo && needed.length > 0) {
    const slot = needed[0]!
    const named = h[slot] !== undefined && !h[slot]!.reserved ? `op ${h[slot]!.op} (slot ${slot})` : `slot ${slot}`
    const described = needed.slice(0, 8).map((s) => `${s} (case ${cases[s]!.label}: ${describe(h[s], "header")}, ${describe(p[s], "prepare")})`)
    return yield* refuse(named, `${needed.length} WAL slot(s) lost a prepare that may have been acknowledged: ` +
      `slots ${described.join("; ")}${needed.length > 8 ? "; …" : ""} (head op ${opMax}, checkpoint op ${checkpointOp}); ` +
      "a single replica has no peer to repair them from")
  }
  const replay = yield* opsAfterCheckpoint(headers, slotCount, options.checkpointHeader, faulty, options.solo, refuse)
  const committed = options.solo ? [] : committedHeaders(headers, slotCount, options.checkpointHeader, faulty)
  return { journal: new Journal(storage, layout, headers, redundant, faulty, options.solo), replay, committed, report } satisfies Recovered
})

/** The reserved header of an empty slot: operation reserved, op = slot, valid checksum. */
export function reservedHeader(cluster: Uint8Array, slot: number): Uint8Array {
  assert(cluster.length === checksumSize, () => "a cluster id is 16 bytes")
  assert(Number.isSafeInteger(slot), () => `slot ${slot}`)
  assert(slot >= 0, () => `slot ${slot}`)
  const header = new Uint8Array(headerSize)
  header.set(cluster, FrameLayout.cluster.offset)
  writeU32(header, FrameLayout.size.offset, headerSize)
  header[FrameLayout.command.offset] = Command.prepare
  header[PrepareLayout.operation.offset] = VsrOperation.reserved
  new DataView(header.buffer).setBigUint64(PrepareLayout.op.offset, BigInt(slot), true)
  header.set(checksumBodyEmpty, FrameLayout.checksum_body.offset)
  checksumInto(header.subarray(checksumSize), header, FrameLayout.checksum.offset)
  return header
}

// --- helpers ------------------------------------------------------------------------------------

/**
 * Reads slot `slot` of the prepares ring into `buffer`: its size when the slot holds an intact
 * message (header and body checksums, zero padding), else undefined. The header is always read.
 */
function readSlot(storage: Storage["Service"], layout: Layout, slot: number, buffer: Uint8Array) {
  assert(slot < layout.config.journalSlotCount, () => `slot ${slot} is not in the ring`)
  assert(buffer.length >= layout.config.messageSizeMax, () => "a read buffer holds a whole message")
  const offset = slot * layout.config.messageSizeMax
  return Effect.gen(function* () {
    yield* storage.read(layout.walPrepares, offset, buffer.subarray(0, sectorSize))
    if (!headerChecksumValid(buffer, 0)) return undefined
    const size = readU32(buffer, FrameLayout.size.offset)
    if (size < headerSize || size > layout.config.messageSizeMax) return undefined
    const end = sectorsCeil(size)
    if (end > sectorSize) yield* storage.read(layout.walPrepares, offset + sectorSize, buffer.subarray(sectorSize, end))
    checksumInto(buffer.subarray(headerSize, size), checksumScratch, 0)
    if (!u128Equal(checksumScratch, 0, buffer, FrameLayout.checksum_body.offset)) return undefined
    for (let i = size; i < end; i++) if (buffer[i] !== 0) return undefined
    return size
  })
}

/** A header that is ok for `slot` (§4.1): valid checksum and fields, a prepare of this cluster, in its own slot. */
function slotHeader(bytes: Uint8Array, at: number, cluster: Uint8Array, slot: number, slotCount: number): SlotHeader | undefined {
  assert(at + headerSize <= bytes.length, () => `a header at ${at} past the image`)
  assert(slot < slotCount, () => `slot ${slot} is not in the ring`)
  const header = bytes.subarray(at, at + headerSize)
  if (!headerChecksumValid(header, 0) || header[FrameLayout.command.offset] !== Command.prepare) return undefined
  if (!u128Equal(header, FrameLayout.cluster.offset, cluster, 0)) return undefined
  const op = readOp(header, 0)
  const reserved = header[PrepareLayout.operation.offset] === VsrOperation.reserved
  if (reserved ? op !== slot : op % slotCount !== slot) return undefined
  if (headerInvalid(header) !== undefined) return undefined
  return { reserved, op, view: readU32(header, FrameLayout.view.offset), checksum: header.subarray(0, checksumSize) }
}

/**
 * The ops after the checkpoint, oldest first. For a single replica: every op up to the newest one
 * present, each chained to the one before it, the first to the checkpoint; a gap or a break is
 * refused (one that lost op n while holding op n + 1 lost an acknowledged op). In a cluster:
 * every op a slot holds after the checkpoint, gaps and breaks included: a backup writes out of
 * order, and a view change may have left a truncated op of an older view in a slot. Which of
 * them form the log is the replica core's decision (it walks the chain down from its head).
 */
function opsAfterCheckpoint(
  headers: Uint8Array, slotCount: number, checkpointHeader: Uint8Array, faulty: Uint8Array, solo: boolean,
  refuse: (op: string, reason: string) => JournalRecoveryError
): Effect.Effect<Array<{ op: number; checksum: Uint8Array; header: Uint8Array }>, JournalRecoveryError> {
  assert(headers.length === slotCount * headerSize, () => "the headers image")
  assert(faulty.length === slotCount, () => "the faulty bits")
  const checkpointOp = readOp(checkpointHeader, 0)
  let head = checkpointOp
  for (let slot = 0; slot < slotCount; slot++) {
    const at = slot * headerSize
    if (faulty[slot] === 0 && headers[at + PrepareLayout.operation.offset] !== VsrOperation.reserved) head = Math.max(head, readOp(headers, at))
  }
  const replay: Array<{ op: number; checksum: Uint8Array; header: Uint8Array }> = []
  let parent = checkpointHeader.subarray(0, checksumSize)
  for (let op = checkpointOp + 1; op <= head; op++) {
    const at = (op % slotCount) * headerSize
    const held = faulty[op % slotCount] === 0 && headers[at + PrepareLayout.operation.offset] !== VsrOperation.reserved && readOp(headers, at) === op
    if (!solo) {
      if (held) replay.push({ op, checksum: headers.slice(at, at + checksumSize), header: headers.slice(at, at + headerSize) })
      continue
    }
    if (!held) {
      return Effect.fail(refuse(`op ${op}`, `missing while op ${head} is present: the data file lost an op that may have been acknowledged`))
    }
    if (!u128Equal(headers, at + PrepareLayout.parent.offset, parent, 0)) {
      return Effect.fail(refuse(`op ${op}`, `does not chain to op ${op - 1} (a misdirected or stale write)`))
    }
    parent = headers.subarray(at, at + checksumSize)
    const header = headers.slice(at, at + headerSize)
    replay.push({ op, checksum: header.subarray(0, checksumSize), header })
  }
  return Effect.succeed(replay)
}

/**
 * The headers of ops at or below the checkpoint still in their slots, oldest first: committed ops
 * (a replica checkpoints only what it committed, and commits only what its journal held).
 */
function committedHeaders(headers: Uint8Array, slotCount: number, checkpointHeader: Uint8Array, faulty: Uint8Array): Array<Uint8Array> {
  assert(headers.length === slotCount * headerSize, () => "the headers image")
  assert(faulty.length === slotCount, () => "the faulty bits")
  const checkpointOp = readOp(checkpointHeader, 0)
  const found: Array<Uint8Array> = []
  for (let op = Math.max(1, checkpointOp - slotCount + 1); op <= checkpointOp; op++) {
    const at = (op % slotCount) * headerSize
    if (faulty[op % slotCount] !== 0 || headers[at + PrepareLayout.operation.offset] === VsrOperation.reserved || readOp(headers, at) !== op) continue
    found.push(headers.slice(at, at + headerSize))
  }
  return found
}

const describe = (header: SlotHeader | undefined, ring: string): string =>
  header === undefined ? `${ring} unreadable` : header.reserved ? `${ring} reserved` : `${ring} op ${header.op}`

function headerChecksumValid(bytes: Uint8Array, at: number): boolean {
  assert(at >= 0, () => `a header at ${at}`)
  assert(at + headerSize <= bytes.length, () => `a header at ${at} past the bytes`)
  checksumInto(bytes.subarray(at + checksumSize, at + headerSize), checksumScratch, 0)
  return u128Equal(checksumScratch, 0, bytes, at + FrameLayout.checksum.offset)
}

/** Where a checksum is computed to be compared at once: used synchronously only, so one suffices. */
const checksumScratch = new Uint8Array(checksumSize)

const readOp = (bytes: Uint8Array, at: number): number => readU64Number(bytes, at + PrepareLayout.op.offset)
