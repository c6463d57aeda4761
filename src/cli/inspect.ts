/**
 * `scarab inspect`: an operator's offline look into a data file, as `tigerbeetle inspect`. It
 * reads the file through the storage code itself (the superblock's quorum, the journal's
 * recovery classification, trailers, grid blocks) so that it shows what a replica would see,
 * and it works on files `scarab start` refuses: damaged superblock copies, damaged WAL slots, a
 * file cut short. It opens the file read-only and never writes: the Storage it hands the storage
 * code reads with pread (bytes past the end of a short file read as zeros, and are reported) and
 * dies on any write.
 *
 * Each subcommand builds one report: text lines, the same facts as JSON (`--json`), and the
 * damage it found. `integrity` exits 1 when anything is damaged; the others print what they can
 * and flag the damage inline.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Schema } from "effect"
import { SnapshotSectionId } from "../ledger/snapshot.ts"
import { u128ToBytes } from "../protocol/build.ts"
import { DeprecatedOperation } from "../protocol/deprecated.ts"
import { FrameLayout, PrepareLayout, ReplyLayout, VsrOperation, readU32, readU64Number, releaseFormat } from "../protocol/header.ts"
import { Operation } from "../protocol/operation.ts"
import { BlockType } from "../storage/block.ts"
import { decodeDirectory, type DirectorySection } from "../storage/checkpoint.ts"
import { decodeClientSessions, readClientReply, type StoredSession } from "../storage/client_sessions.ts"
import { FreeSet } from "../storage/free_set.ts"
import { Grid } from "../storage/grid.ts"
import { classifyJournal, type JournalClassified } from "../storage/journal.ts"
import { dataFileSizeNeeded, type Layout, layoutOf, storageConfigs } from "../storage/layout.ts"
import { type Storage, StorageFatalError, type Zone, sectorSize } from "../storage/storage.ts"
import { checkpointOp, decodeSuperblockCopy, selectSuperblock, type Superblock, superblockCopySize } from "../storage/superblock.ts"
import type { SuperblockCopy } from "../storage/superblock_quorum.ts"
import { readTrailer } from "../storage/trailer.ts"
import type { InspectOptions } from "./inspect_options.ts"
import { checkpointId, type TrailerReference } from "../storage/checkpoint_state.ts"

/**
 * Prints the subcommand's report; exit 1 when the file cannot be read at all, and for
 * `integrity` when anything is damaged.
 */
export const runInspect = (options: InspectOptions): void => NodeRuntime.runMain(inspect(options).pipe(
  Effect.map((report) => {
    console.log(renderReport(report, options.json))
    if (options.subcommand === "integrity" && report.damaged.length > 0) process.exitCode = 1
  }),
  Effect.catch((error: InspectError) => Effect.sync(() => {
    console.error(`scarab: ${error.message}`)
    process.exitCode = 1
  }))))

/** What a subcommand found: its text, the same as JSON, and each thing damaged (zone and place). */
export interface InspectReport {
  readonly lines: Array<string>
  readonly json: Record<string, unknown>
  readonly damaged: Array<string>
}

/** The file cannot be inspected at all: missing, unreadable, or no superblock copy names its layout. */
export class InspectError extends Schema.TaggedError<InspectError>()("InspectError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

/** Runs one subcommand; the file is closed when it ends. */
export const inspect = (options: InspectOptions): Effect.Effect<InspectReport, InspectError> => {
  if (options.subcommand === "constants") return Effect.succeed(constantsReport())
  const path = options.path
  if (path === undefined) return Effect.fail(new InspectError({ path: "", reason: "the data file's path is missing" }))
  return Effect.scoped(Effect.gen(function* () {
    const file = yield* openReadOnly(path)
    const opened = yield* readSuperblock(file)
    switch (options.subcommand) {
      case "superblock": return superblockReport(file, opened)
      case "wal": return yield* walReport(file, yield* usable(file, opened))
      case "replies": return yield* repliesReport(file, yield* usable(file, opened))
      case "grid": return yield* gridReport(file, yield* usable(file, opened))
      case "integrity": return yield* integrityReport(file, opened)
      case "constants": return constantsReport()
    }
  }))
}

/** The report as printed: text lines, or one JSON document. */
export function renderReport(report: InspectReport, json: boolean): string {
  if (!json) return report.lines.join("\n")
  return JSON.stringify({ ...report.json, damaged: report.damaged }, (_, value: unknown) => typeof value === "bigint" ? value.toString() : value, 2)
}

// --- the file, read-only ----------------------------------------------------------------------------

interface ReadOnlyFile {
  readonly path: string
  readonly sizeBytes: number
  readonly storage: Storage["Service"]
}

const openReadOnly = (path: string) => Effect.acquireRelease(
  Effect.try({
    try: () => {
      const fd = openSync(path, "r")
      const stat = fstatSync(fd)
      if (!stat.isFile()) {
        closeSync(fd)
        throw Object.assign(new Error("not a regular file"), { code: "EINVAL" })
      }
      return { fd, file: readOnlyFile(path, fd, stat.size) }
    },
    catch: (error) => new InspectError({ path, reason: `cannot open the data file (${codeOf(error)}): ${error instanceof Error ? error.message : String(error)}` })
  }),
  ({ fd }) => Effect.sync(() => closeSync(fd))
).pipe(Effect.map(({ file }) => file))

function readOnlyFile(path: string, fd: number, sizeBytes: number): ReadOnlyFile {
  const read = (zone: Zone, offset: number, buffer: Uint8Array) => Effect.try({
    try: () => {
      const position = zone.start + offset
      let done = 0
      while (done < buffer.length) {
        const n = readSync(fd, buffer, done, buffer.length - done, position + done)
        if (n === 0) break
        done += n
      }
      buffer.fill(0, done)
      const sectorsZeroed: Array<number> = []
      for (let at = Math.floor(done / sectorSize) * sectorSize; at < buffer.length; at += sectorSize) sectorsZeroed.push(position + at)
      return { sectorsZeroed }
    },
    catch: (error) => new StorageFatalError({ path, operation: "read", offset: zone.start + offset, code: codeOf(error), reason: String(error) })
  })
  // Reads are synchronous preads: inspect reads one thing at a time, and needs no ring or pool.
  const storage: Storage["Service"] = {
    implementation: "thread_pool", path, directIo: false, inFlightMax: 1,
    allocate: (size) => new Uint8Array(size),
    read,
    write: () => Effect.die(new Error(`${path}: scarab inspect opened the data file read-only, and never writes`)),
    sync: Effect.void,
    sizeBytes: Effect.succeed(sizeBytes)
  }
  return { path, sizeBytes, storage }
}

// --- the superblock -----------------------------------------------------------------------------

interface SuperblockRead {
  readonly copies: ReadonlyArray<SuperblockCopy<Superblock> | undefined>
  /** The version open selects, or why it refuses. */
  readonly selected: Superblock | undefined
  readonly refusal: string | undefined
  /** The selected version, or else the newest valid copy (which start would refuse): what the other zones are read by. */
  readonly working: Superblock | undefined
  readonly layout: Layout | undefined
}

/** Both profiles keep the copies at the same place, so the production layout finds them in any file. */
const superblockZoneLayout = layoutOf(storageConfigs.production)

const readSuperblock = (file: ReadOnlyFile) => Effect.gen(function* () {
  const config = superblockZoneLayout.config
  const copies: Array<SuperblockCopy<Superblock> | undefined> = []
  for (let copy = 0; copy < config.superblockCopies; copy++) {
    const buffer = new Uint8Array(superblockCopySize)
    yield* file.storage.read(superblockZoneLayout.superblock, copy * config.superblockCopySize, buffer)
    copies.push(decodeSuperblockCopy(buffer))
  }
  const result = selectSuperblock(copies)
  const selected = result._tag === "Success" ? result.value : undefined
  const newest = copies.reduce<Superblock | undefined>((best, copy) =>
    copy !== undefined && (best === undefined || copy.value.sequence > best.sequence) ? copy.value : best, undefined)
  const working = selected ?? newest
  return {
    copies, selected, refusal: result._tag === "Failure" ? result.reason : undefined, working,
    layout: working === undefined ? undefined : layoutOf(storageConfigs[working.profile])
  } satisfies SuperblockRead
}).pipe(Effect.orDie)

/** The working superblock and its layout, or a failure when no copy is valid. */
const usable = (file: ReadOnlyFile, read: SuperblockRead) =>
  read.working === undefined || read.layout === undefined
    ? Effect.fail(new InspectError({ path: file.path, reason: `superblock: ${read.refusal ?? "no valid copy"}; the file's layout is unknown` }))
    : Effect.succeed({ ...read, working: read.working, layout: read.layout })

type Usable = SuperblockRead & { readonly working: Superblock; readonly layout: Layout }

function superblockReport(file: ReadOnlyFile, read: SuperblockRead): InspectReport {
  const lines = [`${file.path}: ${file.sizeBytes} bytes`, "superblock copies:"]
  const damaged = superblockDamage(read)
  const copies = read.copies.map((copy, slot) => {
    const offset = slot * superblockZoneLayout.config.superblockCopySize
    if (copy === undefined) {
      lines.push(`  copy ${slot} at offset ${offset}: DAMAGED (invalid checksum or format)`)
      return { slot, offset, valid: false }
    }
    const selected = read.selected !== undefined && equal(copy.checksum, read.selected.checksum)
    lines.push(`  copy ${slot} at offset ${offset}: valid sequence=${copy.sequence} checksum=${hex(copy.checksum)}` +
      `${copy.copy !== slot ? ` (claims copy ${copy.copy})` : ""}${selected ? " selected" : ""}`)
    return { slot, offset, valid: true, sequence: copy.sequence, checksum: hex(copy.checksum), copy: copy.copy, selected }
  })
  if (read.refusal !== undefined) lines.push(`quorum: REFUSED: ${read.refusal}`)
  const working = read.working
  if (working === undefined) return { lines, json: { path: file.path, sizeBytes: file.sizeBytes, copies, refusal: read.refusal }, damaged }
  lines.push(read.selected === undefined ? `the newest valid copy (sequence ${working.sequence}), which start would refuse:` : "the working copy (selected by quorum):")
  const state = vsrStateOf(working)
  lines.push(...Object.entries(state).map(([name, value]) => `  ${name}: ${Array.isArray(value) ? value.join(" ") : String(value)}`))
  const size = fileSizeDamage(file, read)
  if (size !== undefined) lines.push(`file: DAMAGED: ${size}`)
  return { lines, json: { path: file.path, sizeBytes: file.sizeBytes, copies, refusal: read.refusal, working: state }, damaged }
}

function vsrStateOf(working: Superblock) {
  const v = working.vsrState
  const members = v.members.slice(0, v.replicaCount)
  return {
    sequence: working.sequence,
    checksum: hex(working.checksum),
    cluster: working.cluster,
    profile: working.profile,
    replica: members.indexOf(v.replicaId),
    replica_id: v.replicaId,
    replica_count: v.replicaCount,
    view: v.view,
    log_view: v.logView,
    commit_max: v.commitMax,
    sync_op_min: v.syncOpMin,
    sync_op_max: v.syncOpMax,
    checkpoint_op: checkpointOp(v.checkpoint),
    checkpoint_id: hex(checkpointId(v.checkpoint)),
    parent_checkpoint_id: hex(v.checkpoint.parentCheckpointId),
    storage_size: v.checkpoint.storageSize,
    release: releaseFormat(v.checkpoint.release),
    release_format: releaseFormat(working.releaseFormat),
    view_headers_ops: working.viewHeaders.map((header) => readU64Number(header, PrepareLayout.op.offset))
  }
}

/** Damage the superblock shows: invalid copies, a refused quorum, a file shorter than its checkpoint needs. */
function superblockDamage(read: SuperblockRead): Array<string> {
  const damaged = read.copies.flatMap((copy, slot) =>
    copy === undefined ? [`superblock copy ${slot} (offset ${slot * superblockZoneLayout.config.superblockCopySize}): invalid checksum or format`] : [])
  if (read.refusal !== undefined) damaged.push(`superblock: ${read.refusal}`)
  return damaged
}

function fileSizeDamage(file: ReadOnlyFile, read: SuperblockRead): string | undefined {
  if (read.working === undefined || read.layout === undefined) return undefined
  const needed = dataFileSizeNeeded(read.layout, read.working.vsrState.checkpoint.storageSize)
  return file.sizeBytes < needed ? `the file is cut short: ${file.sizeBytes} bytes, its checkpoint needs ${needed}` : undefined
}

// --- the WAL ------------------------------------------------------------------------------------

/** Classifies every slot as recovery would; an impossible slot state (recovery would stop) is reported, not thrown. */
const classify = (file: ReadOnlyFile, read: Usable) => classifyJournal(file.storage, read.layout, {
  cluster: u128ToBytes(read.working.cluster),
  checkpointHeader: read.working.vsrState.checkpoint.header,
  solo: read.working.vsrState.replicaCount === 1
}).pipe(Effect.map((classified): JournalClassified | string => classified), Effect.catchCause((cause) => Effect.succeed(errorText(cause))))

interface SlotView {
  readonly slot: number
  readonly op: number | undefined
  readonly checksum: string | undefined
  readonly view: number | undefined
  readonly operation: string | undefined
  readonly decision: string
  readonly case: string
  readonly header: "ok" | "reserved" | "damaged"
  readonly prepare: "ok" | "reserved" | "damaged"
}

const walReport = (file: ReadOnlyFile, read: Usable) => Effect.gen(function* () {
  const classified = yield* classify(file, read)
  const lines = [`${file.path}: WAL of ${read.layout.config.journalSlotCount} slots (${read.working.profile} profile)`]
  if (typeof classified === "string") {
    lines.push(`recovery would stop: ${classified}`)
    return { lines, json: { path: file.path, error: classified }, damaged: [`wal: ${classified}`] } satisfies InspectReport
  }
  const slots = slotViews(classified)
  const counts: Record<string, number> = {}
  for (const slot of slots) counts[slot.decision] = (counts[slot.decision] ?? 0) + 1
  lines.push(`op_max=${classified.opMax} checkpoint_op=${classified.checkpointOp} op_prepare_max=${classified.opPrepareMax} ` +
    Object.entries(counts).map(([decision, count]) => `${decision}=${count}`).join(" "))
  lines.push("slot  op        checksum          view  operation           decision  header    prepare")
  for (let i = 0; i < slots.length; i++) {
    const first = slots[i]!
    let last = i
    while (first.decision === "nil" && slots[last + 1]?.decision === "nil") last++
    if (last > i) {
      lines.push(`${`${first.slot}-${slots[last]!.slot}`.padEnd(6)}(reserved: empty slots)                         nil (${first.case})`)
      i = last
      continue
    }
    lines.push(`${String(first.slot).padEnd(6)}${String(first.op ?? "-").padEnd(10)}${(first.checksum ?? "-").padEnd(18)}` +
      `${String(first.view ?? "-").padEnd(6)}${(first.operation ?? "-").padEnd(20)}${`${first.decision} (${first.case})`.padEnd(10)}` +
      `${first.header.padEnd(10)}${first.prepare}`)
  }
  const damaged = walDamage(slots)
  return {
    lines, damaged,
    json: { path: file.path, slotCount: slots.length, opMax: classified.opMax, checkpointOp: classified.checkpointOp, opPrepareMax: classified.opPrepareMax, decisions: counts, slots }
  } satisfies InspectReport
})

function slotViews(classified: JournalClassified): Array<SlotView> {
  return classified.cases.map((slotCase, slot) => {
    const h = classified.h[slot]
    const p = classified.p[slot]
    const shown = p ?? h
    const at = slot * 256
    const source = p !== undefined ? classified.prepareHeaders : classified.redundant
    return {
      slot,
      op: shown === undefined || shown.reserved ? undefined : shown.op,
      checksum: shown === undefined || shown.reserved ? undefined : hex(shown.checksum).slice(0, 16),
      view: shown === undefined || shown.reserved ? undefined : shown.view,
      operation: shown === undefined ? undefined : operationName(source[at + PrepareLayout.operation.offset]!),
      decision: classified.decisions[slot]!,
      case: slotCase.label,
      header: h === undefined ? "damaged" : h.reserved ? "reserved" : "ok",
      prepare: p === undefined ? "damaged" : p.reserved ? "reserved" : "ok"
    } satisfies SlotView
  })
}

function walDamage(slots: ReadonlyArray<SlotView>): Array<string> {
  const damaged: Array<string> = []
  for (const slot of slots) {
    if (slot.header === "damaged") damaged.push(`wal_headers slot ${slot.slot}: redundant header invalid (decision ${slot.decision}, case ${slot.case})`)
    if (slot.prepare === "damaged") damaged.push(`wal_prepares slot ${slot.slot}: prepare invalid (decision ${slot.decision}, case ${slot.case})`)
  }
  return damaged
}

// --- the checkpoint: client replies and grid ----------------------------------------------------

interface CheckpointRead {
  readonly sessions: ReadonlyArray<StoredSession>
  readonly freeSet: FreeSet | undefined
  readonly directory: ReadonlyArray<DirectorySection>
  /** Trailer blocks by type. */
  readonly trailerBlocks: Readonly<Record<string, ReadonlyArray<number>>>
  readonly damaged: Array<string>
}

const trailers: ReadonlyArray<{ readonly name: string; readonly type: BlockType; readonly of: (s: Superblock) => TrailerReference }> = [
  { name: "free set: acquired", type: BlockType.free_set, of: (s) => s.vsrState.checkpoint.freeSetAcquired },
  { name: "free set: released", type: BlockType.free_set, of: (s) => s.vsrState.checkpoint.freeSetReleased },
  { name: "snapshot directory", type: BlockType.manifest, of: (s) => s.vsrState.checkpoint.snapshot },
  { name: "client sessions", type: BlockType.client_sessions, of: (s) => s.vsrState.checkpoint.clientSessions }
]

/** Reads the checkpoint's trailers (every block of each, checked), continuing past a damaged one. */
const readCheckpoint = (file: ReadOnlyFile, read: Usable, grid: Grid) => Effect.gen(function* () {
  const damaged: Array<string> = []
  const bytes: Record<string, Uint8Array> = {}
  const trailerBlocks: Record<string, ReadonlyArray<number>> = {}
  for (const trailer of trailers) {
    const result = yield* readTrailer(grid, trailer.of(read.working), trailer.type, trailer.name, file.path).pipe(
      Effect.map((value) => value as { bytes: Uint8Array; blocks: Array<number> } | string),
      Effect.catchCause((cause) => Effect.succeed(errorText(cause))))
    if (typeof result === "string") damaged.push(`grid: ${result}`)
    else {
      bytes[trailer.name] = result.bytes
      trailerBlocks[trailer.name] = result.blocks
    }
  }
  const op = checkpointOp(read.working.vsrState.checkpoint)
  const acquired = bytes["free set: acquired"]
  const released = bytes["free set: released"]
  const freeSet = acquired === undefined || released === undefined ? undefined : FreeSet.decode(read.layout.gridBlocksMax, acquired, released,
    [...trailerBlocks["free set: acquired"]!, ...trailerBlocks["free set: released"]!], op === 0)
  if (typeof freeSet === "string") damaged.push(`grid: ${freeSet}`)
  const directory = bytes["snapshot directory"] === undefined ? [] : decodeDirectory(bytes["snapshot directory"], read.layout.config.blockSize)
  if (typeof directory === "string") damaged.push(`grid: ${directory}`)
  const sessionBytes = bytes["client sessions"]
  const sessions = sessionBytes === undefined || sessionBytes.length === 0 ? [] : decodeClientSessions(sessionBytes, read.layout.config.clientsMax)
  if (typeof sessions === "string") damaged.push(`grid: ${sessions}`)
  return {
    sessions: typeof sessions === "string" ? [] : sessions,
    freeSet: typeof freeSet === "string" ? undefined : freeSet,
    directory: typeof directory === "string" ? [] : directory,
    trailerBlocks, damaged
  } satisfies CheckpointRead
})

const gridOf = (read: Usable, file: ReadOnlyFile) => new Grid(file.storage, read.layout, u128ToBytes(read.working.cluster))

const repliesReport = (file: ReadOnlyFile, read: Usable) => Effect.gen(function* () {
  const checkpoint = yield* readCheckpoint(file, read, gridOf(read, file))
  const lines = [`${file.path}: client sessions of checkpoint op ${checkpointOp(read.working.vsrState.checkpoint)}: ${checkpoint.sessions.length}`]
  const damaged = checkpoint.damaged.filter((line) => line.includes("client sessions"))
  lines.push(...damaged.map((line) => `DAMAGED: ${line}`))
  lines.push(`slot  ${"client".padEnd(41)}session   request   reply op  reply`)
  const sessions = []
  for (const session of checkpoint.sessions) {
    const reply = yield* readClientReply(file.storage, read.layout, session).pipe(Effect.orDie)
    const size = readU32(session.replyHeader, FrameLayout.size.offset)
    const intact = reply !== undefined
    if (!intact) damaged.push(`client_replies slot ${session.slot} (offset ${session.slot * read.layout.config.messageSizeMax}): reply of client ${session.client} invalid`)
    const entry = {
      slot: session.slot, client: session.client, session: session.session,
      request: readU32(session.replyHeader, ReplyLayout.request.offset),
      replyOp: readU64Number(session.replyHeader, ReplyLayout.op.offset), replySize: size, intact
    }
    sessions.push(entry)
    lines.push(`${String(entry.slot).padEnd(6)}${entry.client.toString().padEnd(41)}${String(entry.session).padEnd(10)}${String(entry.request).padEnd(10)}` +
      `${String(entry.replyOp).padEnd(10)}${intact ? `intact (${size} bytes)` : "DAMAGED"}`)
  }
  return { lines, damaged, json: { path: file.path, checkpointOp: checkpointOp(read.working.vsrState.checkpoint), sessions } } satisfies InspectReport
})

const gridReport = (file: ReadOnlyFile, read: Usable) => Effect.gen(function* () {
  const checkpoint = yield* readCheckpoint(file, read, gridOf(read, file))
  const op = checkpointOp(read.working.vsrState.checkpoint)
  const byType: Record<string, number> = {
    free_set: (checkpoint.trailerBlocks["free set: acquired"]?.length ?? 0) + (checkpoint.trailerBlocks["free set: released"]?.length ?? 0),
    client_sessions: checkpoint.trailerBlocks["client sessions"]?.length ?? 0,
    manifest: checkpoint.trailerBlocks["snapshot directory"]?.length ?? 0,
    value: checkpoint.directory.reduce((n, section) => n + section.addresses.length, 0)
  }
  const freeSet = checkpoint.freeSet
  const highest = freeSet?.highestAcquired() ?? 0
  const free = freeSet === undefined ? {} : {
    acquired: freeSet.count, released: freeSet.freedAtDurable().length, highestAcquired: highest,
    freeBelowHighest: highest - freeSet.count, blocksMax: read.layout.gridBlocksMax
  }
  const lines = [
    `${file.path}: grid of checkpoint op ${op} (${read.layout.config.blockSize}-byte blocks, storage_size ${read.working.vsrState.checkpoint.storageSize})`,
    freeSet === undefined ? "free set: DAMAGED (unreadable)" :
      `free set: ${free.acquired} blocks acquired (${free.released} released, freed when the next checkpoint is durable), ` +
        `highest acquired ${highest}, ${free.freeBelowHighest} free below it, ${read.layout.gridBlocksMax} addressable`,
    `blocks by type: ${Object.entries(byType).map(([type, count]) => `${type}=${count}`).join(" ")}`,
    ...checkpoint.directory.map((section) => `  snapshot ${sectionName(section.id)}: ${section.rowCount} rows in ${section.addresses.length} blocks`),
    ...checkpoint.damaged.map((line) => `DAMAGED: ${line}`)
  ]
  const sections = checkpoint.directory.map((section) => ({
    id: section.id, name: sectionName(section.id), rows: section.rowCount, blocks: section.addresses.length, addresses: section.addresses
  }))
  return {
    lines, damaged: checkpoint.damaged,
    json: { path: file.path, checkpointOp: op, blockSize: read.layout.config.blockSize, freeSet: free, blocksByType: byType, trailers: checkpoint.trailerBlocks, sections }
  } satisfies InspectReport
})

// --- integrity ----------------------------------------------------------------------------------

const integrityReport = (file: ReadOnlyFile, read: SuperblockRead) => Effect.gen(function* () {
  const damaged = superblockDamage(read)
  const size = fileSizeDamage(file, read)
  if (size !== undefined) damaged.push(`file: ${size}`)
  const checked: Record<string, number> = { superblock_copies: read.copies.length }
  if (read.working !== undefined && read.layout !== undefined) {
    const usableRead = { ...read, working: read.working, layout: read.layout }
    const wal = yield* walReport(file, usableRead)
    damaged.push(...wal.damaged)
    checked.wal_slots = read.layout.config.journalSlotCount
    const replies = yield* repliesReport(file, usableRead)
    damaged.push(...replies.damaged.filter((line) => line.startsWith("client_replies")))
    checked.client_replies = (replies.json.sessions as ReadonlyArray<unknown>).length
    const grid = gridOf(usableRead, file)
    const checkpoint = yield* readCheckpoint(file, usableRead, grid)
    damaged.push(...checkpoint.damaged)
    let blocks = Object.values(checkpoint.trailerBlocks).reduce((n, list) => n + list.length, 0)
    for (const section of checkpoint.directory) {
      for (let i = 0; i < section.addresses.length; i++) {
        const failed = yield* grid.read(section.addresses[i]!, section.checksums[i]!, `snapshot ${sectionName(section.id)}`).pipe(
          Effect.as(undefined), Effect.catchCause((cause) => Effect.succeed(errorText(cause))))
        if (failed !== undefined) damaged.push(`grid: ${failed}`)
        blocks++
      }
    }
    checked.grid_blocks = blocks
  }
  const lines = damaged.length === 0
    ? [`${file.path}: ok: ${Object.entries(checked).map(([what, count]) => `${count} ${what.replaceAll("_", " ")}`).join(", ")} verified`]
    : [`${file.path}: DAMAGED: ${damaged.length} problem(s)`, ...damaged.map((line) => `  ${line}`)]
  return { lines, damaged, json: { path: file.path, ok: damaged.length === 0, checked } } satisfies InspectReport
})

// --- constants ----------------------------------------------------------------------------------

function constantsReport(): InspectReport {
  const profiles = Object.fromEntries(Object.values(storageConfigs).map((config) => {
    const layout = layoutOf(config)
    return [config.name, {
      journal_slot_count: config.journalSlotCount,
      checkpoint_ops: config.checkpointOps,
      pipeline_prepare_queue_max: config.pipelineMax,
      block_size: config.blockSize,
      message_size_max: config.messageSizeMax,
      clients_max: config.clientsMax,
      superblock_copies: config.superblockCopies,
      storage_size_max: config.storageSizeMax,
      grid_blocks_max: layout.gridBlocksMax,
      data_file_size_min: layout.dataFileSizeMin,
      zones: Object.fromEntries([layout.superblock, layout.walHeaders, layout.walPrepares, layout.clientReplies, layout.grid]
        .map((zone) => [zone.name, { start: zone.start, size: zone.sizeBytes }]))
    }]
  }))
  const lines: Array<string> = []
  for (const [name, constants] of Object.entries(profiles)) {
    lines.push(`${name}:`)
    for (const [key, value] of Object.entries(constants)) {
      if (typeof value === "object") {
        lines.push(`  zones:`)
        for (const [zone, at] of Object.entries(value)) lines.push(`    ${zone.padEnd(16)}start ${String(at.start).padStart(14)}  size ${at.size}`)
      } else lines.push(`  ${key.padEnd(28)}${value}`)
    }
  }
  return { lines, json: profiles, damaged: [] }
}

// --- helpers ------------------------------------------------------------------------------------

/** A checksum's 16 bytes in hex, in the order the replica's checkpoint log line prints an id. */
const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((byte, i) => byte === b[i])

const operationNames = new Map<number, string>([
  ...Object.entries(VsrOperation).map(([name, value]) => [value, name] as const),
  ...Object.entries(Operation).map(([name, value]) => [value, name] as const),
  ...Object.entries(DeprecatedOperation).map(([name, value]) => [value as number, `${name} (0.16)`] as const)
])

const operationName = (operation: number): string => operationNames.get(operation) ?? String(operation)

const sectionName = (id: number): string => Object.entries(SnapshotSectionId).find(([, value]) => value === id)?.[0] ?? `section ${id}`

function codeOf(error: unknown): string {
  return typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : "EIO"
}

function errorText(cause: Cause.Cause<unknown>): string {
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : String(error)
}
