/**
 * The write-ahead log, first rung: prepares in the WAL prepares ring (storage.md §2, §4.1),
 * slot = op mod journalSlotCount, each written sector-rounded with zero padding. A write that
 * completes is durable (the data file is O_DSYNC), so the replica replies only after it.
 *
 * Recovery reads every slot, keeps the prepares whose checksums verify, whose padding is zero
 * and that belong to their slot, and returns ops 1..n in order, checking the hash chain from the root. Any hole or broken
 * chain below the newest op is refused with the op named: an acknowledged op may have been lost,
 * and a replica of one has no peer to repair it from. A torn or missing newest op is dropped:
 * its write never completed, so it was never acknowledged.
 *
 * Until checkpoints exist, the ring bounds history: op journalSlotCount is the last op that
 * does not overwrite an op still needed for replay (`opMax`).
 *
 * Known gap until the durable-data-file issue: without the redundant headers ring (§4.1, §4.4),
 * a corrupted newest op cannot be told from a torn one.
 */
import { Effect, Schema } from "effect"
import { checksum } from "../protocol/checksum.ts"
import { FrameLayout, PrepareLayout, readU32, u128Equal, VsrOperation, Command, headerSize } from "../protocol/header.ts"
import { rootPrepare } from "../protocol/header_rules.ts"
import type { Layout } from "./layout.ts"
import { type Storage, type StorageError, sectorSize } from "./storage.ts"

export class JournalRecoveryError extends Schema.TaggedError<JournalRecoveryError>()("JournalRecoveryError", {
  op: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `WAL recovery refused at op ${this.op}: ${this.reason}`
  }
}

/** The newest op the ring can hold without overwriting history that replay still needs. */
export const opMaxOf = (layout: Layout): bigint => BigInt(layout.config.journalSlotCount)

const roundUpToSector = (size: number): number => Math.ceil(size / sectorSize) * sectorSize

/** Format: the root prepare (op 0) in slot 0. */
export const formatJournal = Effect.fnUntraced(function* (storage: Storage["Service"], layout: Layout, cluster: Uint8Array) {
  const root = rootPrepare(cluster)
  const buffer = storage.allocate(sectorSize)
  buffer.set(root)
  yield* storage.write(layout.walPrepares, 0, buffer)
})

/**
 * Writes `prepare` (a whole message) into its slot; durable when it succeeds. `scratch`, when
 * given, is reused as the aligned write buffer (at least `messageSizeMax` bytes from
 * `storage.allocate`, owned by the caller until the write completes), so that a replica writing
 * one prepare at a time allocates nothing per request.
 */
export function writePrepare(
  storage: Storage["Service"], layout: Layout, op: bigint, prepare: Uint8Array, scratch?: Uint8Array
): Effect.Effect<void, StorageError> {
  const slot = Number(op % BigInt(layout.config.journalSlotCount))
  const size = roundUpToSector(prepare.length)
  const buffer = scratch === undefined ? storage.allocate(size) : scratch.subarray(0, size)
  buffer.set(prepare)
  buffer.fill(0, prepare.length, size) // recovery requires zero padding (§4.1)
  return storage.write(layout.walPrepares, slot * layout.config.messageSizeMax, buffer)
}

/** Reads the ring and returns the prepares of ops 1..n, in order, chained from the root. */
export const recoverJournal = Effect.fnUntraced(function* (storage: Storage["Service"], layout: Layout, cluster: Uint8Array) {
  const slotCount = layout.config.journalSlotCount
  const messageSizeMax = layout.config.messageSizeMax
  const found = new Map<bigint, Uint8Array>()
  const first = storage.allocate(sectorSize)
  for (let slot = 0; slot < slotCount; slot++) {
    yield* storage.read(layout.walPrepares, slot * messageSizeMax, first)
    const size = readU32(first, FrameLayout.size.offset)
    if (size < headerSize || size > messageSizeMax) continue
    let sectors = first
    if (size > sectorSize) {
      sectors = storage.allocate(roundUpToSector(size))
      yield* storage.read(layout.walPrepares, slot * messageSizeMax, sectors)
    }
    // The padding after the message is part of what was written: a flipped byte there is as
    // much a sign of a damaged slot as one inside the message (storage.md §4.1).
    if (!isZero(sectors, size, roundUpToSector(size))) continue
    const message = sectors.subarray(0, size)
    const op = prepareOp(message, cluster, slot, slotCount)
    if (op !== undefined && op > 0n) found.set(op, message.slice())
  }
  const prepares: Array<Uint8Array> = []
  let parent = rootPrepare(cluster).subarray(0, 16)
  const newest = found.size === 0 ? 0n : [...found.keys()].reduce((a, b) => (a > b ? a : b))
  for (let op = 1n; op <= newest; op++) {
    const prepare = found.get(op)
    if (prepare === undefined) {
      return yield* new JournalRecoveryError({ op: op.toString(), reason: `missing or corrupt while op ${newest} is present: the data file lost an op that may have been acknowledged` })
    }
    if (!u128Equal(prepare, PrepareLayout.parent.offset, parent, 0)) {
      return yield* new JournalRecoveryError({ op: op.toString(), reason: "does not chain to the previous op (a misdirected or stale write)" })
    }
    prepares.push(prepare)
    parent = prepare.subarray(0, 16)
  }
  return prepares
}) as (storage: Storage["Service"], layout: Layout, cluster: Uint8Array) => Effect.Effect<Array<Uint8Array>, StorageError | JournalRecoveryError>

/** The op of a valid prepare that belongs to `slot`, or undefined. */
function prepareOp(message: Uint8Array, cluster: Uint8Array, slot: number, slotCount: number): bigint | undefined {
  if (message[FrameLayout.command.offset] !== Command.prepare) return undefined
  if (!equalBytes(checksum(message.subarray(16, headerSize)), message, FrameLayout.checksum.offset)) return undefined
  if (!equalBytes(checksum(message.subarray(headerSize)), message, FrameLayout.checksum_body.offset)) return undefined
  if (!u128Equal(message, FrameLayout.cluster.offset, cluster, 0)) return undefined
  if (message[PrepareLayout.operation.offset] === VsrOperation.root) return undefined
  const op = new DataView(message.buffer, message.byteOffset + PrepareLayout.op.offset, 8).getBigUint64(0, true)
  return Number(op % BigInt(slotCount)) === slot ? op : undefined
}

function isZero(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false
  return true
}

function equalBytes(expected: Uint8Array, bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < expected.length; i++) if (expected[i] !== bytes[offset + i]) return false
  return true
}
