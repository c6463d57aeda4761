/**
 * Building messages byte-exactly (wire-protocol.md §6.3, §6.4, §13; design/vsr.md §3.3): the
 * checksum order (body, then for replies the `context`, then the header), the `parent`/`context`
 * hash chains, and the replies, pongs, evictions and prepares a replica sends.
 *
 * Builders write into caller-provided buffers where the replica reuses memory (`*Into`), and
 * check their output with `assert`: a replica must never send a message it would reject itself.
 */
import { assert } from "../assert.ts"
import { checksumSize } from "./checksum.ts"
import { checksumInto } from "./checksum_native.ts"
import { headerInvalid } from "./header_rules.ts"
import {
  Command, encodeHeader, EvictionLayout, type EvictionReason, evictionReasonMax, FrameLayout, headerSize, messageSizeMax,
  PingClientLayout, PongClientLayout, PrepareLayout, PrepareOkLayout, readU32, replicasMax, ReplyLayout, RequestLayout, type AnyHeader,
  u128Equal, writeU32
} from "./header.ts"

// --- checksums and the hash chain -------------------------------------------------------------

/** The message's size field; asserts that `message` holds at least that many bytes. */
export function messageSize(message: Uint8Array): number {
  assert(message.length >= headerSize, () => "a message holds at least its header")
  const size = readU32(message, FrameLayout.size.offset)
  assert(size >= headerSize && size <= messageSizeMax && size <= message.length, () => `message size ${size} out of range`)
  return size
}

/** `checksum_body` = checksum of `message[256 .. size)`. */
export function setChecksumBody(message: Uint8Array): void {
  const size = messageSize(message)
  checksumInto(message.subarray(headerSize, size), message, FrameLayout.checksum_body.offset)
}

/** `checksum` = checksum of `message[16 .. 256)`; must come last, as it covers every other field. */
export function setChecksum(message: Uint8Array): void {
  checksumInto(message.subarray(checksumSize, headerSize), message, FrameLayout.checksum.offset)
}

/** Both checksums in the order §6.3 requires. For replies use `sealReply`, which adds `context`. */
export function sealMessage(message: Uint8Array): void {
  setChecksumBody(message)
  setChecksum(message)
}

// Scratch for checksums whose input contains their own destination (`context`).
const scratch = new Uint8Array(checksumSize)

/**
 * Seals a reply (§6.4): `checksum_body`, then `context` = the header checksum with `context`
 * still zero, then `checksum`. `context` depends on the view the reply was first built in, and
 * never changes afterwards (`resendReplyInView`).
 */
export function sealReply(message: Uint8Array): void {
  assert(message[FrameLayout.command.offset] === Command.reply, () => "sealReply: not a reply")
  setChecksumBody(message)
  const context = ReplyLayout.context.offset
  message.fill(0, context, context + checksumSize)
  checksumInto(message.subarray(checksumSize, headerSize), scratch, 0)
  message.set(scratch, context)
  setChecksum(message)
}

/**
 * A stored reply re-sent in a newer view (§6.4, §13): only `view` and `checksum` change, so the
 * client's hash chain (`context`) is the same in every view.
 */
export function resendReplyInView(reply: Uint8Array, view: number): void {
  assert(reply[FrameLayout.command.offset] === Command.reply, () => "resendReplyInView: not a reply")
  assert(view >= readU32(reply, FrameLayout.view.offset), () => "a reply is never re-sent in an older view")
  writeU32(reply, FrameLayout.view.offset, view)
  setChecksum(reply)
}

/**
 * The client hash chain (§9.4): a request continues its session only if its `parent` is the
 * `context` of the session's latest reply.
 */
export const requestContinuesReply = (request: Uint8Array, reply: Uint8Array): boolean =>
  u128Equal(request, RequestLayout.parent.offset, reply, ReplyLayout.context.offset)

/**
 * The log hash chain (vsr.md §2.3): a prepare follows `previous` if its `parent` is the checksum
 * of `previous` (the prepare at `op - 1`).
 */
export const prepareFollows = (prepare: Uint8Array, previous: Uint8Array): boolean =>
  u128Equal(prepare, PrepareLayout.parent.offset, previous, FrameLayout.checksum.offset)

// --- replies, pongs and evictions (§13) -------------------------------------------------------

export interface ReplyFields {
  /** The view the reply is sent in. */
  readonly view: number
  /** Index of the replica that answers (< 256; the client does not check it). */
  readonly replica: number
  /** The op at which the request committed; also `commit`. For `register` the session number. */
  readonly op: bigint
  /** The commit's timestamp; never 0. */
  readonly timestamp: bigint
}

/**
 * Writes the reply to `request` into `target[0 .. 256 + bodySize)`, where the caller already put
 * the body at `target[256 ..)`, and seals it. Every echo the client checks (§11 rows 10–16)
 * comes from the request's bytes: `cluster`, `release`, `client`, `request`, `operation`, and
 * `request_checksum` = the request's `checksum`.
 */
export function buildReplyInto(target: Uint8Array, request: Uint8Array, bodySize: number, fields: ReplyFields): Uint8Array {
  assert(request[FrameLayout.command.offset] === Command.request, () => "buildReply: not a request")
  return writeReply(target, request, fromRequest, bodySize, fields)
}

/** `buildReplyInto` with a fresh buffer holding `body`. */
export function buildReply(request: Uint8Array, body: Uint8Array, fields: ReplyFields): Uint8Array {
  const target = new Uint8Array(headerSize + body.length)
  target.set(body, headerSize)
  return buildReplyInto(target, request, body.length, fields)
}

/**
 * The reply to a committed `prepare`, with `body`: the prepare carries every echo the client
 * checks (its `request_checksum`, `client`, `request`, `operation`, `release`), and its view,
 * replica, op and timestamp are the reply's. So every replica that commits the prepare builds the
 * same reply, byte for byte, whichever view it is in now: the client-sessions trailer, and so the
 * checkpoint id, is the same on every replica (vsr.md §9). A replica replaying its journal
 * rebuilds replies this way without the original requests.
 */
export function buildReplyToPrepare(prepare: Uint8Array, body: Uint8Array): Uint8Array {
  assert(prepare[FrameLayout.command.offset] === Command.prepare, () => "buildReplyToPrepare: not a prepare")
  assert(prepare.length >= headerSize, () => "buildReplyToPrepare: a prepare is at least a header")
  const header = new DataView(prepare.buffer, prepare.byteOffset, headerSize)
  const target = new Uint8Array(headerSize + body.length)
  target.set(body, headerSize)
  return writeReply(target, prepare, fromPrepare, body.length, {
    view: header.getUint32(FrameLayout.view.offset, true),
    replica: prepare[FrameLayout.replica.offset]!,
    op: header.getBigUint64(PrepareLayout.op.offset, true),
    timestamp: header.getBigUint64(PrepareLayout.timestamp.offset, true)
  })
}

/** Where a reply's echoed fields sit in the message it answers. */
interface ReplySource {
  readonly requestChecksum: number
  readonly client: number
  readonly request: number
  readonly operation: number
}

const fromRequest: ReplySource = {
  requestChecksum: FrameLayout.checksum.offset, client: RequestLayout.client.offset,
  request: RequestLayout.request.offset, operation: RequestLayout.operation.offset
}

const fromPrepare: ReplySource = {
  requestChecksum: PrepareLayout.request_checksum.offset, client: PrepareLayout.client.offset,
  request: PrepareLayout.request.offset, operation: PrepareLayout.operation.offset
}

function writeReply(target: Uint8Array, source: Uint8Array, at: ReplySource, bodySize: number, fields: ReplyFields): Uint8Array {
  assert(Number.isInteger(bodySize) && bodySize >= 0 && headerSize + bodySize <= messageSizeMax, () => `reply body of ${bodySize} bytes`)
  assert(target.length >= headerSize + bodySize, () => "buildReply: target too small")
  assert(fields.op > 0n && fields.timestamp > 0n, () => "a reply has op = commit != 0 and timestamp != 0")
  target.fill(0, 0, headerSize)
  copy(source, FrameLayout.cluster.offset, target, FrameLayout.cluster.offset, checksumSize)
  writeU32(target, FrameLayout.size.offset, headerSize + bodySize)
  writeU32(target, FrameLayout.view.offset, fields.view)
  copy(source, FrameLayout.release.offset, target, FrameLayout.release.offset, 4)
  target[FrameLayout.command.offset] = Command.reply
  setU8(target, FrameLayout.replica.offset, fields.replica)
  copy(source, at.requestChecksum, target, ReplyLayout.request_checksum.offset, checksumSize)
  copy(source, at.client, target, ReplyLayout.client.offset, checksumSize)
  const view = new DataView(target.buffer, target.byteOffset, headerSize)
  view.setBigUint64(ReplyLayout.op.offset, fields.op, true)
  view.setBigUint64(ReplyLayout.commit.offset, fields.op, true)
  view.setBigUint64(ReplyLayout.timestamp.offset, fields.timestamp, true)
  copy(source, at.request, target, ReplyLayout.request.offset, 4)
  target[ReplyLayout.operation.offset] = source[at.operation]!
  sealReply(target)
  assertSendable(target)
  return target.subarray(0, headerSize + bodySize)
}

export interface ReplicaFields {
  /** The replica's durable view (pongs) or the primary's view (evictions). */
  readonly view: number
  /** The replica's release: never 0. */
  readonly release: number
  /** The replica's index; < 6 for pongs, or the client aborts (§11 row 9). */
  readonly replica: number
}

/** The pong to `ping` (a `ping_client`), §5.4: echoes `cluster` and `ping_timestamp_monotonic`. */
export function buildPongClient(ping: Uint8Array, fields: ReplicaFields, target: Uint8Array = new Uint8Array(headerSize)): Uint8Array {
  assert(ping[FrameLayout.command.offset] === Command.ping_client, () => "buildPongClient: not a ping_client")
  assert(fields.replica < replicasMax, () => "pong_client: replica index must be < replicas_max")
  frameInto(target, ping, Command.pong_client, fields)
  copy(ping, PingClientLayout.ping_timestamp_monotonic.offset, target, PongClientLayout.ping_timestamp_monotonic.offset, 8)
  sealMessage(target)
  assertSendable(target)
  return target
}

/**
 * The eviction of the client that sent `message` (a `request` or `ping_client`), §5.5, with the
 * cluster and client id copied from it.
 */
export function buildEviction(
  message: Uint8Array,
  reason: EvictionReason,
  fields: ReplicaFields,
  target: Uint8Array = new Uint8Array(headerSize)
): Uint8Array {
  const command = message[FrameLayout.command.offset]
  assert(command === Command.request || command === Command.ping_client, () => "buildEviction: not from a client")
  assert(reason > 0 && reason <= evictionReasonMax, () => `eviction reason ${reason}`)
  frameInto(target, message, Command.eviction, fields)
  const client = command === Command.request ? RequestLayout.client.offset : PingClientLayout.client.offset
  copy(message, client, target, EvictionLayout.client.offset, checksumSize)
  target[EvictionLayout.reason.offset] = reason
  sealMessage(target)
  assertSendable(target)
  return target
}

/** The common frame of a body-less message from a replica, in a zeroed header. */
function frameInto(target: Uint8Array, from: Uint8Array, command: Command, fields: ReplicaFields): void {
  assert(target.length >= headerSize, () => "target too small for a header")
  assert(fields.release > 0, () => "a replica's release is never 0")
  target.fill(0, 0, headerSize)
  copy(from, FrameLayout.cluster.offset, target, FrameLayout.cluster.offset, checksumSize)
  writeU32(target, FrameLayout.size.offset, headerSize)
  writeU32(target, FrameLayout.view.offset, fields.view)
  writeU32(target, FrameLayout.release.offset, fields.release)
  target[FrameLayout.command.offset] = command
  setU8(target, FrameLayout.replica.offset, fields.replica)
}

// --- prepares (vsr.md §3.3) -------------------------------------------------------------------

export interface PrepareFields {
  readonly view: number
  /** The primary's index. */
  readonly replica: number
  /** Checksum of the prepare at `op - 1` (16 bytes at `parent[parentOffset]`). */
  readonly parent: Uint8Array
  readonly parentOffset: number
  /** The checkpoint id `op` belongs to (vsr.md §7.2), 16 bytes. */
  readonly checkpointId: Uint8Array
  readonly op: bigint
  /** The primary's `commit_max`; below `op`. */
  readonly commit: bigint
  /** The highest timestamp of the batch. */
  readonly timestamp: bigint
}

/**
 * Turns the request in `message` into its prepare, in place (vsr.md §3.3 step 3): the body stays,
 * the header is rewritten. The caller changes the body first if it must (a `register` gets the
 * primary's `batch_size_limit`); `checksum_body` is recomputed only in that case (`bodyChanged`).
 */
export function prepareFromRequest(message: Uint8Array, fields: PrepareFields, bodyChanged: boolean): void {
  assert(message[FrameLayout.command.offset] === Command.request, () => "prepareFromRequest: not a request")
  assert(fields.op > fields.commit && fields.timestamp > 0n, () => "a prepare has op > commit and timestamp != 0")
  const size = messageSize(message)
  // Move the request's fields to their prepare offsets before anything overwrites them. Each
  // target lies beyond every source still to be read, so the order below loses nothing:
  // client 160 → 208, request 192 → 248, operation 196 → 252, then checksum 0 → 160.
  message.copyWithin(PrepareLayout.client.offset, RequestLayout.client.offset, RequestLayout.client.offset + checksumSize)
  message.copyWithin(PrepareLayout.request.offset, RequestLayout.request.offset, RequestLayout.request.offset + 4)
  message[PrepareLayout.operation.offset] = message[RequestLayout.operation.offset]
  message.copyWithin(PrepareLayout.request_checksum.offset, FrameLayout.checksum.offset, FrameLayout.checksum.offset + checksumSize)
  // `release` (the client's) and `cluster`, `size`, `checksum_body` stay where they are.
  message.fill(0, FrameLayout.checksum.offset, checksumSize)
  message.fill(0, FrameLayout.protocol.offset, PrepareLayout.request_checksum.offset)
  message.fill(0, PrepareLayout.request_checksum.offset + checksumSize, PrepareLayout.client.offset)
  message.fill(0, PrepareLayout.op.offset, PrepareLayout.request.offset)
  message.fill(0, PrepareLayout.operation.offset + 1, headerSize)
  writeU32(message, FrameLayout.view.offset, fields.view)
  message[FrameLayout.command.offset] = Command.prepare
  setU8(message, FrameLayout.replica.offset, fields.replica)
  copy(fields.parent, fields.parentOffset, message, PrepareLayout.parent.offset, checksumSize)
  copy(fields.checkpointId, 0, message, PrepareLayout.checkpoint_id.offset, checksumSize)
  const view = new DataView(message.buffer, message.byteOffset, headerSize)
  view.setBigUint64(PrepareLayout.op.offset, fields.op, true)
  view.setBigUint64(PrepareLayout.commit.offset, fields.commit, true)
  view.setBigUint64(PrepareLayout.timestamp.offset, fields.timestamp, true)
  assert(size === readU32(message, FrameLayout.size.offset), () => "prepareFromRequest: size changed")
  if (bodyChanged) setChecksumBody(message)
  setChecksum(message)
  assertSendable(message)
}

export interface PrepareOkFields {
  /** The sender's current view (vsr.md §3.6: never the prepare's view if newer). */
  readonly view: number
  readonly replica: number
  /** The sender's `commit_min`, for the primary's backpressure (vsr.md §3.9). */
  readonly commitMin: bigint
}

/**
 * The `prepare_ok` acknowledging `prepare` once it is durable (vsr.md §2.3, §3.6): it names the
 * prepare by checksum and repeats the fields the primary cross-checks.
 */
export function buildPrepareOk(prepare: Uint8Array, fields: PrepareOkFields, target: Uint8Array = new Uint8Array(headerSize)): Uint8Array {
  assert(prepare[FrameLayout.command.offset] === Command.prepare, () => "buildPrepareOk: not a prepare")
  assert(target.length >= headerSize && fields.commitMin >= 0n, () => "buildPrepareOk: bad target or commit_min")
  target.fill(0, 0, headerSize)
  copy(prepare, FrameLayout.cluster.offset, target, FrameLayout.cluster.offset, checksumSize)
  writeU32(target, FrameLayout.size.offset, headerSize)
  writeU32(target, FrameLayout.view.offset, fields.view)
  target[FrameLayout.command.offset] = Command.prepare_ok
  setU8(target, FrameLayout.replica.offset, fields.replica)
  copy(prepare, PrepareLayout.parent.offset, target, PrepareOkLayout.parent.offset, checksumSize)
  copy(prepare, FrameLayout.checksum.offset, target, PrepareOkLayout.prepare_checksum.offset, checksumSize)
  // checkpoint_id, client and op are adjacent in both layouts (192..232).
  copy(prepare, PrepareLayout.checkpoint_id.offset, target, PrepareOkLayout.checkpoint_id.offset, PrepareLayout.commit.offset - PrepareLayout.checkpoint_id.offset)
  new DataView(target.buffer, target.byteOffset, headerSize).setBigUint64(PrepareOkLayout.commit_min.offset, fields.commitMin, true)
  // timestamp, request and operation are adjacent in both layouts (240..253).
  copy(prepare, PrepareLayout.timestamp.offset, target, PrepareOkLayout.timestamp.offset, PrepareLayout.operation.offset + 1 - PrepareLayout.timestamp.offset)
  sealMessage(target)
  assertSendable(target)
  return target
}

// --- cold path --------------------------------------------------------------------------------

/**
 * Any message from a header object and a body: `size` is set from the body, then both checksums
 * (and a reply's `context`) in the spec's order. Tools, tests and the load generator use this.
 */
export function buildMessage(header: AnyHeader, body: Uint8Array): Uint8Array {
  return buildMessageWith(header, body.length, (target) => target.set(body))
}

/** `buildMessage` with a body of `bodySize` bytes that `writeBody` writes in place (it gets them zeroed). */
export function buildMessageWith(header: AnyHeader, bodySize: number, writeBody: (body: Uint8Array) => void): Uint8Array {
  assert(headerSize + bodySize <= messageSizeMax, () => `body of ${bodySize} bytes is too large`)
  const message = new Uint8Array(headerSize + bodySize)
  encodeHeader({ ...header, size: headerSize + bodySize }, message, 0)
  writeBody(message.subarray(headerSize))
  if (header.command === Command.reply) sealReply(message)
  else sealMessage(message)
  return message
}

/** A u128 from its 16 little-endian bytes. */
export function u128FromBytes(bytes: Uint8Array, offset: number): bigint {
  let value = 0n
  for (let i = checksumSize - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[offset + i])
  return value
}

/** The 16 little-endian bytes of a u128. */
export function u128ToBytes(value: bigint, target: Uint8Array = new Uint8Array(checksumSize), offset = 0): Uint8Array {
  assert(value >= 0n && value < 1n << 128n, () => `${value} is not a u128`)
  for (let i = 0; i < checksumSize; i++) target[offset + i] = Number((value >> BigInt(8 * i)) & 0xffn)
  return target
}

// --- helpers ----------------------------------------------------------------------------------

/** A replica never sends a message it would itself reject (vsr.md §2.1). */
function assertSendable(message: Uint8Array): void {
  const reason = headerInvalid(message)
  assert(reason === undefined, () => `built an invalid ${message[FrameLayout.command.offset]}: ${reason}`)
}

function copy(source: Uint8Array, sourceOffset: number, target: Uint8Array, targetOffset: number, length: number): void {
  for (let i = 0; i < length; i++) target[targetOffset + i] = source[sourceOffset + i]
}

function setU8(target: Uint8Array, offset: number, value: number): void {
  assert(Number.isInteger(value) && value >= 0 && value <= 0xff, () => `${value} is not a u8`)
  target[offset] = value
}

