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
 * repaired from a peer). The replica writes one prepare at a time, so each sector has one writer.
 *
 * Recovery (§4.4) reads both rings whole, classifies every slot (journal_recovery.ts), rewrites
 * the redundant headers it can fix from intact prepares, and returns the ops after the
 * checkpoint, chained by checksum from the checkpoint's header. A single replica has no peer to
 * repair from: any slot that lost a prepare it may have acknowledged, any gap or broken chain
 * after the checkpoint, stops it with an error naming the slot and op.
 */
import { Effect, Schema } from "effect"
import { assert } from "../assert.ts"
import { checksumInto } from "../protocol/checksum_native.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { checksumBodyEmpty, headerInvalid, rootPrepare } from "../protocol/header_rules.ts"
import { Command, FrameLayout, headerSize, PrepareLayout, readU32, readU64Number, u128Equal, VsrOperation, writeU32 } from "../protocol/header.ts"
import { classifySlot, type Decision, type SlotHeader, tornSlots } from "./journal_recovery.ts"
import { headersPerSector, type Layout, prepareMax } from "./layout.ts"
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
  /** The ops after the checkpoint, oldest first: read each with `journal.readPrepare`. */
  readonly replay: ReadonlyArray<{ readonly op: number; readonly checksum: Uint8Array }>
  readonly report: RecoveryReport
}

export class Journal {
  readonly layout: Layout
  private readonly storage: Storage["Service"]
  private readonly slotCount: number
  /** The header that belongs in each slot (reserved when none): 256 bytes per slot. */
  private readonly headers: Uint8Array
  /** The image of the headers ring; a faulty slot's header has a zeroed, invalid checksum. */
  private readonly redundant: Uint8Array
  private readonly faulty: Uint8Array
  private readonly writeBuffer: Uint8Array

  constructor(storage: Storage["Service"], layout: Layout, headers: Uint8Array, redundant: Uint8Array, faulty: Uint8Array) {
    this.storage = storage
    this.layout = layout
    this.slotCount = layout.config.journalSlotCount
    assert(headers.length === this.slotCount * headerSize && redundant.length === layout.walHeaders.sizeBytes, () => "journal images")
    this.headers = headers
    this.redundant = redundant
    this.faulty = faulty
    this.writeBuffer = storage.allocate(layout.config.messageSizeMax)
  }

  /**
   * Appends `prepare` (a whole message) to its slot: the prepare, then its redundant header's
   * sector. Durable when it succeeds; the caller acknowledges the op only then. One at a time.
   */
  writePrepare(prepare: Uint8Array): Effect.Effect<void, StorageError> {
    const op = readOp(prepare, 0)
    const slot = op % this.slotCount
    const size = readU32(prepare, FrameLayout.size.offset)
    assert(size === prepare.length && size <= this.layout.config.messageSizeMax, () => `prepare of op ${op} has size ${size}`)
    assert(prepare[FrameLayout.command.offset] === Command.prepare && prepare[PrepareLayout.operation.offset] !== VsrOperation.reserved,
      () => "the journal holds prepares")
    const buffer = this.writeBuffer.subarray(0, sectorsCeil(size))
    buffer.set(prepare)
    buffer.fill(0, size) // recovery requires zero padding (§4.1)
    const sector = Math.floor(slot / headersPerSector)
    return Effect.andThen(this.storage.write(this.layout.walPrepares, slot * this.layout.config.messageSizeMax, buffer), () => {
      // Only now may the redundant header name this prepare: it is durable (§4.3).
      this.headers.set(prepare.subarray(0, headerSize), slot * headerSize)
      this.redundant.set(prepare.subarray(0, headerSize), slot * headerSize)
      this.faulty[slot] = 0
      return this.storage.write(this.layout.walHeaders, sector * sectorSize, this.redundant.subarray(sector * sectorSize, (sector + 1) * sectorSize))
    })
  }

  /** The prepare of `op` whose checksum is `checksum`, read from its slot, or undefined if it is not intact there. */
  readPrepare(op: number, expected: Uint8Array): Effect.Effect<Uint8Array | undefined, StorageError> {
    const slot = op % this.slotCount
    const buffer = this.writeBuffer
    return Effect.map(readSlot(this.storage, this.layout, slot, buffer), (size) => {
      if (size === undefined || !u128Equal(buffer, 0, expected, 0) || readOp(buffer, 0) !== op) return undefined
      return buffer.slice(0, size)
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
}

/** Format (storage.md §2.1): every prepare slot gets its header sector, then the headers ring. */
export const formatJournal = Effect.fnUntraced(function* (storage: Storage["Service"], layout: Layout, cluster: Uint8Array) {
  const slotCount = layout.config.journalSlotCount
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

/** Recovers the journal at startup (storage.md §4.4–§4.6). */
export const recoverJournal = Effect.fnUntraced(function* (storage: Storage["Service"], layout: Layout, options: RecoveryOptions) {
  const slotCount = layout.config.journalSlotCount
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
  // The replica writes one prepare at a time, so at most one append can have been torn.
  const torn = tornSlots({
    slotCount, opMax, opCheckpoint: checkpointOp, opPrepareMax, writesMax: 1, decisions, redundant: h, prepareOp, solo: options.solo
  })
  for (const slot of torn) decisions[slot] = "cut_torn"
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
  const replay = yield* chainAfterCheckpoint(headers, slotCount, options.checkpointHeader, faulty, options.solo, refuse)
  return { journal: new Journal(storage, layout, headers, redundant, faulty), replay, report } satisfies Recovered
}) as (storage: Storage["Service"], layout: Layout, options: RecoveryOptions) => Effect.Effect<Recovered, StorageError | JournalRecoveryError>

/** The reserved header of an empty slot: operation reserved, op = slot, valid checksum. */
export function reservedHeader(cluster: Uint8Array, slot: number): Uint8Array {
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
  const offset = slot * layout.config.messageSizeMax
  return Effect.gen(function* () {
    yield* storage.read(layout.walPrepares, offset, buffer.subarray(0, sectorSize))
    if (!headerChecksumValid(buffer, 0)) return undefined
    const size = readU32(buffer, FrameLayout.size.offset)
    if (size < headerSize || size > layout.config.messageSizeMax) return undefined
    const end = sectorsCeil(size)
    if (end > sectorSize) yield* storage.read(layout.walPrepares, offset + sectorSize, buffer.subarray(sectorSize, end))
    const body = new Uint8Array(checksumSize)
    checksumInto(buffer.subarray(headerSize, size), body, 0)
    if (!u128Equal(body, 0, buffer, FrameLayout.checksum_body.offset)) return undefined
    for (let i = size; i < end; i++) if (buffer[i] !== 0) return undefined
    return size
  })
}

/** A header that is ok for `slot` (§4.1): valid checksum and fields, a prepare of this cluster, in its own slot. */
function slotHeader(bytes: Uint8Array, at: number, cluster: Uint8Array, slot: number, slotCount: number): SlotHeader | undefined {
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
 * The ops after the checkpoint, oldest first: every op up to the newest one present, each
 * chained to the one before it, the first to the checkpoint. For a single replica a gap or a
 * break is refused: one that lost op n while holding op n + 1 lost an acknowledged op. In a
 * cluster the chain stops at the first gap; the rest comes from repair.
 */
function chainAfterCheckpoint(
  headers: Uint8Array, slotCount: number, checkpointHeader: Uint8Array, faulty: Uint8Array, solo: boolean,
  refuse: (op: string, reason: string) => JournalRecoveryError
): Effect.Effect<Array<{ op: number; checksum: Uint8Array }>, JournalRecoveryError> {
  const checkpointOp = readOp(checkpointHeader, 0)
  let head = checkpointOp
  for (let slot = 0; slot < slotCount; slot++) {
    const at = slot * headerSize
    if (faulty[slot] === 0 && headers[at + PrepareLayout.operation.offset] !== VsrOperation.reserved) head = Math.max(head, readOp(headers, at))
  }
  const replay: Array<{ op: number; checksum: Uint8Array }> = []
  let parent = checkpointHeader.subarray(0, checksumSize)
  for (let op = checkpointOp + 1; op <= head; op++) {
    const at = (op % slotCount) * headerSize
    if (headers[at + PrepareLayout.operation.offset] === VsrOperation.reserved || readOp(headers, at) !== op) {
      if (!solo) break
      return Effect.fail(refuse(`op ${op}`, `missing while op ${head} is present: the data file lost an op that may have been acknowledged`))
    }
    if (!u128Equal(headers, at + PrepareLayout.parent.offset, parent, 0)) {
      if (!solo) break
      return Effect.fail(refuse(`op ${op}`, `does not chain to op ${op - 1} (a misdirected or stale write)`))
    }
    parent = headers.subarray(at, at + checksumSize)
    replay.push({ op, checksum: headers.slice(at, at + checksumSize) })
  }
  return Effect.succeed(replay)
}

function describe(header: SlotHeader | undefined, ring: string): string {
  if (header === undefined) return `${ring} unreadable`
  return header.reserved ? `${ring} reserved` : `${ring} op ${header.op}`
}

function headerChecksumValid(bytes: Uint8Array, at: number): boolean {
  const expected = new Uint8Array(checksumSize)
  checksumInto(bytes.subarray(at + checksumSize, at + headerSize), expected, 0)
  return u128Equal(expected, 0, bytes, at + FrameLayout.checksum.offset)
}

const readOp = (bytes: Uint8Array, at: number): number => readU64Number(bytes, at + PrepareLayout.op.offset)
