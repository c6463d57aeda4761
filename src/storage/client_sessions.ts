/**
 * Client sessions as a checkpoint stores them (storage.md §7.2, vsr.md §9): the table of
 * `clientsMax` slots goes into one `client_sessions` trailer block — each slot's latest reply
 * header, then each slot's session number — and each reply's body into the slot of the same
 * index in the client-replies zone. After a restart from the checkpoint, a client retrying its
 * latest request gets the identical reply, byte for byte.
 *
 * Replies are written to the zone at checkpoints, only those that changed since the previous
 * one: the ops after a checkpoint are replayed from the WAL, which rebuilds their replies.
 * (TigerBeetle writes every reply as it commits, because it keeps no reply bodies in memory.)
 */
import { Effect } from "effect"
import { assert } from "../assert.ts"
import { checksumInto } from "../protocol/checksum_native.ts"
import { checksumSize } from "../protocol/checksum.ts"
import { Command, FrameLayout, headerSize, isZero, readU32, ReplyLayout, u128Equal } from "../protocol/header.ts"
import { equalBytes } from "./checkpoint_state.ts"
import { u128FromBytes } from "../protocol/build.ts"
import type { Layout } from "./layout.ts"
import { type Storage, type StorageError, sectorsCeil } from "./storage.ts"

/** One client session: its slot, its number (the op of its register) and its latest reply. */
export interface SessionEntry {
  readonly slot: number
  readonly client: bigint
  readonly session: bigint
  readonly reply: Uint8Array
}

/** A session as the trailer stores it: the reply's body is in the zone. */
export interface StoredSession {
  readonly slot: number
  readonly client: bigint
  readonly session: bigint
  readonly replyHeader: Uint8Array
}

export const clientSessionsSize = (clientsMax: number): number => clientsMax * (headerSize + 8)

export function encodeClientSessions(entries: ReadonlyArray<SessionEntry>, clientsMax: number): Uint8Array {
  const bytes = new Uint8Array(clientSessionsSize(clientsMax))
  const view = new DataView(bytes.buffer)
  for (const entry of entries) {
    assert(entry.slot >= 0 && entry.slot < clientsMax && entry.session > 0n, () => `session slot ${entry.slot}`)
    assert(isZero(bytes, entry.slot * headerSize, (entry.slot + 1) * headerSize), () => `two sessions in slot ${entry.slot}`)
    bytes.set(entry.reply.subarray(0, headerSize), entry.slot * headerSize)
    view.setBigUint64(clientsMax * headerSize + entry.slot * 8, entry.session, true)
  }
  return bytes
}

/** The stored sessions, or why the table is malformed. */
export function decodeClientSessions(bytes: Uint8Array, clientsMax: number): Array<StoredSession> | string {
  if (bytes.length !== clientSessionsSize(clientsMax)) return `client sessions: ${bytes.length} bytes, expected ${clientSessionsSize(clientsMax)}`
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
  const sessions: Array<StoredSession> = []
  for (let slot = 0; slot < clientsMax; slot++) {
    const header = bytes.subarray(slot * headerSize, (slot + 1) * headerSize)
    const session = view.getBigUint64(clientsMax * headerSize + slot * 8, true)
    if (session === 0n) {
      if (!isZero(header, 0, headerSize)) return `client sessions: slot ${slot} has a reply but no session`
      continue
    }
    const valid = new Uint8Array(checksumSize)
    checksumInto(header.subarray(checksumSize), valid, 0)
    if (!u128Equal(valid, 0, header, 0) || header[FrameLayout.command.offset] !== Command.reply) return `client sessions: slot ${slot} holds no reply header`
    sessions.push({ slot, client: u128FromBytes(header, ReplyLayout.client.offset), session, replyHeader: header.slice() })
  }
  return sessions
}

/** Reply writes in flight at once during a checkpoint. */
export const replyWritesMax = 8

/**
 * Writes into the client-replies zone every reply with a body whose checksum differs from the
 * one last written to its slot (`written`, updated), so a checkpoint can name them all. The
 * slots are independent: up to `replyWritesMax` writes run at once, each from its own buffer of
 * `buffers` (message-sized, sector-aligned, owned by the caller).
 */
export const writeClientReplies = Effect.fnUntraced(function* (
  storage: Storage["Service"], layout: Layout, entries: ReadonlyArray<SessionEntry>, written: Array<Uint8Array | undefined>,
  buffers: ReadonlyArray<Uint8Array>
): Effect.fn.Return<void, StorageError> {
  const changed = entries.filter((entry) => {
    if (readU32(entry.reply, FrameLayout.size.offset) === headerSize) return false // a reply without a body is whole in the trailer
    // A reply restored by its header alone (the zone lost its body; a cluster fetches it from a peer): nothing to write yet.
    if (entry.reply.length < readU32(entry.reply, FrameLayout.size.offset)) return false
    const last = written[entry.slot]
    return last === undefined || !u128Equal(last, 0, entry.reply, 0)
  })
  for (let first = 0; first < changed.length; first += buffers.length) {
    yield* Effect.forEach(changed.slice(first, first + buffers.length), (entry, i) => {
      const size = readU32(entry.reply, FrameLayout.size.offset)
      const end = sectorsCeil(size)
      const buffer = buffers[i]!
      assert(buffer.length >= end, () => "a reply buffer smaller than the reply")
      buffer.set(entry.reply.subarray(0, size))
      buffer.fill(0, size, end)
      return storage.write(layout.clientReplies, entry.slot * layout.config.messageSizeMax, buffer.subarray(0, end))
    }, { concurrency: "unbounded", discard: true })
  }
  for (const entry of changed) written[entry.slot] = entry.reply.slice(0, checksumSize)
})

/** The reply of a stored session: its header from the trailer, its body from the zone, or undefined if the zone lost it. */
export const readClientReply = Effect.fnUntraced(function* (
  storage: Storage["Service"], layout: Layout, stored: StoredSession
): Effect.fn.Return<Uint8Array | undefined, StorageError> {
  const size = readU32(stored.replyHeader, FrameLayout.size.offset)
  if (size === headerSize) return stored.replyHeader.slice()
  if (size > layout.config.messageSizeMax) return undefined
  const end = sectorsCeil(size)
  const buffer = storage.allocate(end)
  yield* storage.read(layout.clientReplies, stored.slot * layout.config.messageSizeMax, buffer)
  if (!u128Equal(buffer, 0, stored.replyHeader, 0) || !equalBytes(buffer.subarray(0, headerSize), stored.replyHeader)) return undefined
  const body = new Uint8Array(checksumSize)
  checksumInto(buffer.subarray(headerSize, size), body, 0)
  if (!u128Equal(body, 0, buffer, FrameLayout.checksum_body.offset) || !isZero(buffer, size, end)) return undefined
  return buffer.slice(0, size)
})
