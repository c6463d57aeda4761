/**
 * The view change's messages (vsr.md §2.3, §4), byte for byte as TigerBeetle 0.17 sends them:
 * `exit_view` (a vote to leave a view), `join_view` (a replica's log suffix for the new primary:
 * headers descending from its head, blanks where it has none, with present and nack bits),
 * `view` (the new primary's log: the checkpoint state, then headers descending) and `get_view`.
 * Building and reading only; what they mean is the replica core's.
 *
 * A blank header is an all-zero prepare header with only `command` and `op` set and no checksum:
 * it holds a place in the suffix and proves nothing.
 */
import { assert } from "../assert.ts"
import { buildMessage, u128FromBytes } from "./build.ts"
import { checksumSize } from "./checksum.ts"
import { checkpointStateSize } from "./header_rules.ts"
import {
  type AnyHeader, Command, FrameLayout, headerSize, isZero, JoinViewLayout, PrepareLayout, readU32, readU64Number, u128Equal, ViewLayout, zeroHeader
} from "./header.ts"
import { checkHeader } from "./message.ts"

/** The headers a `join_view` carries at most: a pipeline's uncommitted ops and the newest committed one. */
export const joinViewHeadersMax = (pipelineMax: number): number => pipelineMax + 1

export interface JoinViewFields {
  readonly cluster: bigint
  readonly replica: number
  /** The view being joined. */
  readonly view: number
  readonly logView: number
  readonly commitMin: number
  readonly checkpointOp: number
  /** Descending from the head (never blank), consecutive; `undefined` is a blank. */
  readonly headers: ReadonlyArray<Uint8Array | undefined>
  readonly present: number
  readonly nack: number
}

export function buildJoinView(fields: JoinViewFields): Uint8Array {
  const head = fields.headers[0]
  assert(head !== undefined, () => "a join_view starts with its head")
  assert(fields.logView < fields.view, () => `log view ${fields.logView} is not below the view joined ${fields.view}`)
  assert(fields.headers.length < 32, () => "the bitsets cover the headers")
  const op = readU64Number(head, PrepareLayout.op.offset)
  const body = new Uint8Array(fields.headers.length * headerSize)
  fields.headers.forEach((header, i) => body.set(header?.subarray(0, headerSize) ?? blankHeader(op - i), i * headerSize))
  const header = zeroHeader(Command.join_view)
  header.cluster = fields.cluster
  header.replica = fields.replica
  header.view = fields.view
  header.present_bitset = BigInt(fields.present)
  header.nack_bitset = BigInt(fields.nack)
  header.op = BigInt(op)
  header.commit_min = BigInt(fields.commitMin)
  header.checkpoint_op = BigInt(fields.checkpointOp)
  header.log_view = fields.logView
  const message = buildMessage(header, body)
  assert(readU64Number(message, JoinViewLayout.op.offset) === op, () => "the join_view names its head")
  return message
}

/** A `join_view` read back, or why it cannot be used (the bus checked its checksums and header rules). */
export function decodeJoinView(message: Uint8Array, cluster: Uint8Array, headersMax: number): JoinViewFields | string {
  assert(message[FrameLayout.command.offset] === Command.join_view, () => "a join_view")
  assert(readU32(message, FrameLayout.size.offset) === message.length, () => "a whole message")
  const op = readU64Number(message, JoinViewLayout.op.offset)
  const count = (message.length - headerSize) / headerSize
  if (count < 1 || count > headersMax) return `join_view: ${count} headers, not 1..${headersMax}`
  const headers: Array<Uint8Array | undefined> = []
  for (let i = 0; i < count; i++) {
    const header = message.subarray(headerSize * (i + 1), headerSize * (i + 2))
    if (readU64Number(header, PrepareLayout.op.offset) !== op - i) return `join_view: header ${i} is not of op ${op - i}`
    const blank = isBlank(header)
    if (blank && i === 0) return "join_view: the head is blank"
    if (!blank && !validPrepare(header, cluster)) return `join_view: header ${i} (op ${op - i}) is not a valid prepare header of the cluster`
    headers.push(blank ? undefined : header.slice())
  }
  const present = readBits(message, JoinViewLayout.present_bitset.offset, count)
  const nack = readBits(message, JoinViewLayout.nack_bitset.offset, count)
  if (present === undefined || nack === undefined) return "join_view: a bit set beyond the headers"
  if (headers.some((header, i) => header === undefined && (present & (1 << i)) !== 0)) return "join_view: a blank is present"
  return {
    cluster: u128FromBytes(message, FrameLayout.cluster.offset), replica: message[FrameLayout.replica.offset]!,
    view: readU32(message, FrameLayout.view.offset), logView: readU32(message, JoinViewLayout.log_view.offset),
    commitMin: readU64Number(message, JoinViewLayout.commit_min.offset), checkpointOp: readU64Number(message, JoinViewLayout.checkpoint_op.offset),
    headers, present, nack
  }
}

export interface ViewFields {
  readonly cluster: bigint
  readonly replica: number
  readonly view: number
  /** 0 when broadcast; the requester's nonce when answering its `get_view`. */
  readonly nonce: bigint
  readonly commitMax: number
  readonly checkpointOp: number
  /** The encoded checkpoint state (1024 bytes) the primary stands on. */
  readonly checkpointState: Uint8Array
  /** Descending from the head, never blank. */
  readonly headers: ReadonlyArray<Uint8Array>
}

export function buildView(fields: ViewFields): Uint8Array {
  assert(fields.headers.length > 0, () => "a view holds its head")
  assert(fields.checkpointState.length === checkpointStateSize, () => "the checkpoint state is 1024 bytes")
  const op = readU64Number(fields.headers[0]!, PrepareLayout.op.offset)
  assert(op >= fields.commitMax, () => `head ${op} below commit_max ${fields.commitMax}`)
  const body = new Uint8Array(checkpointStateSize + fields.headers.length * headerSize)
  body.set(fields.checkpointState, 0)
  fields.headers.forEach((header, i) => body.set(header.subarray(0, headerSize), checkpointStateSize + i * headerSize))
  const header = zeroHeader(Command.view)
  header.cluster = fields.cluster
  header.replica = fields.replica
  header.view = fields.view
  header.nonce = fields.nonce
  header.op = BigInt(op)
  header.commit_max = BigInt(fields.commitMax)
  header.checkpoint_op = BigInt(fields.checkpointOp)
  return buildMessage(header, body)
}

/** A `view` read back: its headers, each a valid prepare header of the cluster, descending; or why not. */
export function decodeView(message: Uint8Array, cluster: Uint8Array): (Omit<ViewFields, "cluster"> & { readonly op: number }) | string {
  assert(message[FrameLayout.command.offset] === Command.view, () => "a view")
  assert(readU32(message, FrameLayout.size.offset) === message.length, () => "a whole message")
  const count = (message.length - headerSize - checkpointStateSize) / headerSize
  if (count < 1) return "view: no headers"
  const headers: Array<Uint8Array> = []
  for (let i = 0; i < count; i++) {
    const start = headerSize + checkpointStateSize + i * headerSize
    const header = message.subarray(start, start + headerSize)
    if (!validPrepare(header, cluster)) return `view: header ${i} is not a valid prepare header of the cluster`
    const op = readU64Number(header, PrepareLayout.op.offset)
    if (i > 0 && op >= readU64Number(headers[i - 1]!, PrepareLayout.op.offset)) return `view: header ${i} is not below the one before`
    headers.push(header.slice())
  }
  const op = readU64Number(message, ViewLayout.op.offset)
  if (readU64Number(headers[0]!, PrepareLayout.op.offset) !== op) return "view: the first header is not the head"
  return {
    replica: message[FrameLayout.replica.offset]!, view: readU32(message, FrameLayout.view.offset), op,
    nonce: u128FromBytes(message, ViewLayout.nonce.offset),
    commitMax: readU64Number(message, ViewLayout.commit_max.offset), checkpointOp: readU64Number(message, ViewLayout.checkpoint_op.offset),
    checkpointState: message.slice(headerSize, headerSize + checkpointStateSize), headers
  }
}

/** A vote to leave `view`: a bare header. */
export function buildExitView(cluster: bigint, replica: number, view: number): Uint8Array {
  assert(Number.isInteger(view), () => `view ${view}`)
  const message = bareMessage(zeroHeader(Command.exit_view), cluster, replica, view)
  assert(message[FrameLayout.command.offset] === Command.exit_view, () => "an exit_view")
  return message
}

/** A request for the `view` message of `view` from its primary, naming the requester's nonce: a bare header. */
export function buildGetView(cluster: bigint, replica: number, view: number, nonce: bigint): Uint8Array {
  assert(nonce !== 0n, () => "a get_view names the requester's nonce")
  const header = zeroHeader(Command.get_view)
  header.nonce = nonce
  const message = bareMessage(header, cluster, replica, view)
  assert(message[FrameLayout.command.offset] === Command.get_view, () => "a get_view")
  return message
}

/** `header` from `replica` of `cluster` in `view`, with no body, sealed. */
function bareMessage(header: AnyHeader, cluster: bigint, replica: number, view: number): Uint8Array {
  header.cluster = cluster
  header.replica = replica
  header.view = view
  const message = buildMessage(header, new Uint8Array(0))
  assert(message.length === headerSize, () => "a bare header")
  assert(message[FrameLayout.replica.offset] === replica, () => "the sender named")
  return message
}

/** The blank header of `op`: a prepare header with only its op, and no checksum. */
export function blankHeader(op: number): Uint8Array {
  assert(Number.isSafeInteger(op), () => `op ${op}`)
  assert(op >= 0, () => `op ${op} is not negative`)
  const blank = new Uint8Array(headerSize)
  blank[FrameLayout.command.offset] = Command.prepare
  new DataView(blank.buffer).setBigUint64(PrepareLayout.op.offset, BigInt(op), true)
  return blank
}

function isBlank(header: Uint8Array): boolean {
  assert(header.length === headerSize, () => "a header is 256 bytes")
  assert(PrepareLayout.op.offset > FrameLayout.command.offset, () => "the op follows the command")
  if (header[FrameLayout.command.offset] !== Command.prepare) return false
  // Everything but the command and the op is zero.
  return isZero(header, 0, FrameLayout.command.offset) && isZero(header, FrameLayout.command.offset + 1, PrepareLayout.op.offset) &&
    isZero(header, PrepareLayout.op.offset + 8, headerSize)
}

function validPrepare(header: Uint8Array, cluster: Uint8Array): boolean {
  assert(header.length === headerSize, () => "a header is 256 bytes")
  assert(cluster.length === checksumSize, () => "a cluster id is a u128")
  return checkHeader(header) === undefined && header[FrameLayout.command.offset] === Command.prepare && u128Equal(header, FrameLayout.cluster.offset, cluster, 0)
}

/** A u128 bitset of at most `count` bits as a number, or `undefined` if a bit beyond them is set. */
function readBits(message: Uint8Array, offset: number, count: number): number | undefined {
  assert(count < 32, () => "bits as a number")
  assert(offset + 16 <= headerSize, () => "the bitset is in the header")
  const view = new DataView(message.buffer, message.byteOffset)
  const low = view.getBigUint64(offset, true)
  const high = view.getBigUint64(offset + 8, true)
  if (high !== 0n || low >> BigInt(count) !== 0n) return undefined
  return Number(low)
}
