/**
 * Per-command header validity (wire-protocol.md §11 row 6–7, §12.1; design/vsr.md §2.3): the
 * rules a receiver applies after both checksums and the cluster passed. A header that breaks one
 * is dropped silently, the connection stays open (§2 step 6).
 *
 * The rules are TigerBeetle's, with one deliberate difference: every byte that no named field
 * covers must be zero for every command, where TigerBeetle skips a few paddings of replica-only
 * commands (docs/decisions.md). Client-facing commands get exactly TigerBeetle's rules.
 *
 * Reads go straight to the bytes (no bigint, no allocation): this runs for every message.
 */
import { assert, unreachable } from "../assert.ts"
import { checksumSize } from "./checksum.ts"
import { checksumInto } from "./checksum_native.ts"
import {
  BlockLayout, Command, CommitLayout, EvictionLayout, evictionReasonMax, FrameLayout, GetHeadersLayout, GetPrepareLayout,
  GetReplyLayout, GetViewLayout, headerSize, isCommand, isZero, JoinViewLayout, messageSizeMax, PingClientLayout,
  PingLayout, PongLayout, PrepareLayout, PrepareOkLayout, protocolVersion, readU16, readU32, registerRequestSize,
  registerResultSize, reconfigurationRequestSize, ReplyLayout, RequestLayout, u128Equal, upgradeRequestSize,
  ViewLayout, VsrOperation, vsrOperationsReserved, writeU32, zeroRangesOf
} from "./header.ts"

/** `checksum_body` of every message without a body (§6.3): `0x49f174618255402de6e7e3c40d60cc83`. */
export const checksumBodyEmpty: Uint8Array = (() => {
  const value = new Uint8Array(checksumSize)
  checksumInto(new Uint8Array(0), value, 0)
  return value
})()

/** Releases a replica advertises in a ping body, u32 each (`vsr_releases_max`). */
export const vsrReleasesMax = 64
/** A `view` body starts with the 1024-byte CheckpointState (vsr.md §7.2). */
export const checkpointStateSize = 1024
/** One entry of a `get_blocks` body: block checksum u128, address u64, 8 reserved bytes. */
export const blockRequestSize = 32
/** Largest grid block, header included (vsr.md §1.6). */
export const blockSizeMax = 512 * 1024
/** Checkpoints fall on bar boundaries of this many ops (`lsm_compaction_ops`, vsr.md §1.6). */
export const lsmCompactionOps = 32
/** Block types 1..5: free_set, client_sessions, manifest, index, value (0 is reserved). */
export const blockTypeMax = 5

/**
 * Why `bytes` (a message whose checksums were verified) has an invalid header, or `undefined`
 * when it is valid. The reason names the rule, for logs and tests.
 */
export function headerInvalid(bytes: Uint8Array): string | undefined {
  assert(bytes.length >= headerSize, () => "headerInvalid: fewer than 256 bytes")
  const command = bytes[FrameLayout.command.offset]
  assert(isCommand(command), () => `headerInvalid: unknown command ${command}`)
  const size = readU32(bytes, FrameLayout.size.offset)
  if (size < headerSize) return "size < 256"
  if (size > messageSizeMax) return "size > message_size_max"
  if (readU16(bytes, FrameLayout.protocol.offset) !== protocolVersion) return "protocol != 0"
  for (const [start, end] of zeroRangesOf(command)) {
    if (!isZero(bytes, start, end)) return `bytes ${start}..${end} (padding or reserved) != 0`
  }
  return commandInvalid(bytes, command, size)
}

function commandInvalid(bytes: Uint8Array, command: Command, size: number): string | undefined {
  switch (command) {
    case Command.reserved:
      return "command reserved"
    case Command.deprecated_12:
    case Command.deprecated_21:
    case Command.deprecated_22:
    case Command.deprecated_23:
      return "command deprecated"
    case Command.request:
      return requestInvalid(bytes, size)
    case Command.reply:
      return replyInvalid(bytes, size)
    case Command.ping_client:
    case Command.pong_client:
    case Command.eviction:
      return clientSessionInvalid(bytes, command, size)
    case Command.prepare:
      return prepareInvalid(bytes, size)
    case Command.prepare_ok:
      return prepareOkInvalid(bytes, size)
    case Command.ping:
    case Command.pong:
    case Command.commit:
    case Command.exit_view:
    case Command.join_view:
    case Command.view:
    case Command.get_view:
    case Command.get_headers:
    case Command.get_prepare:
    case Command.get_reply:
    case Command.headers:
    case Command.get_blocks:
    case Command.block:
      return replicaCommandInvalid(bytes, command, size)
  }
}

/** The body-less messages of a client session besides requests and replies (§11, §5.3–§5.5). */
function clientSessionInvalid(bytes: Uint8Array, command: Command, size: number): string | undefined {
  const release = readU32(bytes, FrameLayout.release.offset)
  const view = readU32(bytes, FrameLayout.view.offset)
  const replica = bytes[FrameLayout.replica.offset]
  switch (command) {
    case Command.ping_client:
      if (!bodyEmpty(bytes, size)) return "ping_client: body not empty"
      if (release === 0) return "ping_client: release == 0"
      if (replica !== 0) return "ping_client: replica != 0"
      if (view !== 0) return "ping_client: view != 0"
      if (u128Zero(bytes, PingClientLayout.client.offset)) return "ping_client: client == 0"
      return undefined
    case Command.pong_client:
      if (!bodyEmpty(bytes, size)) return "pong_client: body not empty"
      if (release === 0) return "pong_client: release == 0"
      return undefined
    case Command.eviction:
      if (!bodyEmpty(bytes, size)) return "eviction: body not empty"
      if (release === 0) return "eviction: release == 0"
      if (u128Zero(bytes, EvictionLayout.client.offset)) return "eviction: client == 0"
      {
        const reason = bytes[EvictionLayout.reason.offset]
        if (reason === 0 || reason > evictionReasonMax) return "eviction: reason not in 1..8"
      }
      return undefined
    default:
      // The dispatcher in commandInvalid sends only the commands listed above.
      return unreachable(command as never)
  }
}

/** Replica-to-replica commands (vsr.md §2.3). */
function replicaCommandInvalid(bytes: Uint8Array, command: Command, size: number): string | undefined {
  const release = readU32(bytes, FrameLayout.release.offset)
  const view = readU32(bytes, FrameLayout.view.offset)
  const replica = bytes[FrameLayout.replica.offset]
  switch (command) {
    case Command.ping:
      if (size !== headerSize + 4 * vsrReleasesMax) return "ping: size != 256 + 4 * releases_max"
      if (release === 0) return "ping: release == 0"
      if (!checkpointOpValid(bytes, PingLayout.checkpoint_op.offset)) return "ping: checkpoint_op invalid"
      if (u64Zero(bytes, PingLayout.ping_timestamp_monotonic.offset)) return "ping: ping_timestamp_monotonic == 0"
      {
        const releaseCount = readU16(bytes, PingLayout.release_count.offset)
        if (releaseCount === 0 || releaseCount > vsrReleasesMax) return "ping: release_count not in 1..releases_max"
      }
      return undefined
    case Command.pong:
      if (!bodyEmpty(bytes, size)) return "pong: body not empty"
      if (release === 0) return "pong: release == 0"
      if (u64Zero(bytes, PongLayout.ping_timestamp_monotonic.offset)) return "pong: ping_timestamp_monotonic == 0"
      if (u64Zero(bytes, PongLayout.pong_timestamp_wall.offset)) return "pong: pong_timestamp_wall == 0"
      return undefined
    case Command.commit:
      if (!bodyEmpty(bytes, size)) return "commit: body not empty"
      if (release !== 0) return "commit: release != 0"
      if (u64Compare(bytes, CommitLayout.commit.offset, CommitLayout.checkpoint_op.offset) < 0) return "commit: commit < checkpoint_op"
      if (u64Zero(bytes, CommitLayout.timestamp_monotonic.offset)) return "commit: timestamp_monotonic == 0"
      return undefined
    case Command.exit_view:
      if (!bodyEmpty(bytes, size)) return "exit_view: body not empty"
      if (release !== 0) return "exit_view: release != 0"
      return undefined
    case Command.join_view:
      if ((size - headerSize) % headerSize !== 0) return "join_view: body not a multiple of 256"
      if (release !== 0) return "join_view: release != 0"
      if (u64Compare(bytes, JoinViewLayout.op.offset, JoinViewLayout.commit_min.offset) < 0) return "join_view: op < commit_min"
      if (u64Compare(bytes, JoinViewLayout.commit_min.offset, JoinViewLayout.checkpoint_op.offset) < 0) return "join_view: commit_min < checkpoint_op"
      return undefined
    case Command.view:
      if (size - headerSize < checkpointStateSize) return "view: CheckpointState missing"
      if ((size - headerSize - checkpointStateSize) % headerSize !== 0) return "view: headers not a multiple of 256"
      if (release !== 0) return "view: release != 0"
      if (u64Compare(bytes, ViewLayout.op.offset, ViewLayout.commit_max.offset) < 0) return "view: op < commit_max"
      if (u64Compare(bytes, ViewLayout.commit_max.offset, ViewLayout.checkpoint_op.offset) < 0) return "view: commit_max < checkpoint_op"
      return undefined
    case Command.get_view:
      if (!bodyEmpty(bytes, size)) return "get_view: body not empty"
      if (release !== 0) return "get_view: release != 0"
      if (u128Zero(bytes, GetViewLayout.nonce.offset)) return "get_view: nonce == 0"
      return undefined
    case Command.get_headers:
      if (!bodyEmpty(bytes, size)) return "get_headers: body not empty"
      if (view !== 0) return "get_headers: view != 0"
      if (release !== 0) return "get_headers: release != 0"
      if (u64Compare(bytes, GetHeadersLayout.op_min.offset, GetHeadersLayout.op_max.offset) > 0) return "get_headers: op_min > op_max"
      return undefined
    case Command.get_prepare:
      if (!bodyEmpty(bytes, size)) return "get_prepare: body not empty"
      // Either "exactly this prepare" (a checksum, view 0) or "any prepare at this op" (no checksum).
      if (view !== 0 && !u128Zero(bytes, GetPrepareLayout.prepare_checksum.offset)) return "get_prepare: view != 0 and checksum != 0"
      if (release !== 0) return "get_prepare: release != 0"
      return undefined
    case Command.get_reply:
      if (!bodyEmpty(bytes, size)) return "get_reply: body not empty"
      if (release !== 0) return "get_reply: release != 0"
      if (view !== 0) return "get_reply: view != 0"
      if (u128Zero(bytes, GetReplyLayout.reply_client.offset)) return "get_reply: reply_client == 0"
      return undefined
    case Command.headers:
      if (size === headerSize) return "headers: empty"
      if ((size - headerSize) % headerSize !== 0) return "headers: body not a multiple of 256"
      if (release !== 0) return "headers: release != 0"
      return undefined
    case Command.get_blocks:
      if (view !== 0) return "get_blocks: view != 0"
      if (size === headerSize) return "get_blocks: empty"
      if ((size - headerSize) % blockRequestSize !== 0) return "get_blocks: body not a multiple of 32"
      if (release !== 0) return "get_blocks: release != 0"
      return undefined
    case Command.block:
      if (size > blockSizeMax) return "block: size > block_size"
      if (size === headerSize) return "block: empty"
      if (view !== 0) return "block: view != 0"
      if (release === 0) return "block: release == 0"
      if (replica !== 0) return "block: replica != 0"
      if (u64Zero(bytes, BlockLayout.address.offset)) return "block: address == 0"
      {
        const blockType = bytes[BlockLayout.block_type.offset]
        if (blockType === 0 || blockType > blockTypeMax) return "block: block_type invalid"
      }
      return undefined
    default:
      // The dispatcher in commandInvalid sends only the commands listed above.
      return unreachable(command as never)
  }
}

/** §12.1. Operation-specific body rules (multi-batch, events) come later, in `body.ts`. */
function requestInvalid(bytes: Uint8Array, size: number): string | undefined {
  const L = RequestLayout
  const release = readU32(bytes, FrameLayout.release.offset)
  const replica = bytes[FrameLayout.replica.offset]
  if (release === 0) return "request: release == 0"
  const operation = bytes[L.operation.offset]
  const client = !u128Zero(bytes, L.client.offset)
  const parent = !u128Zero(bytes, L.parent.offset)
  const session = !u64Zero(bytes, L.session.offset)
  const request = readU32(bytes, L.request.offset) !== 0
  switch (operation) {
    case VsrOperation.reserved:
      return "request: operation reserved"
    case VsrOperation.root:
      return "request: operation root"
    case VsrOperation.register:
      if (replica !== 0) return "register: replica != 0"
      if (!client) return "register: client == 0"
      if (parent) return "register: parent != 0"
      if (session) return "register: session != 0"
      if (request) return "register: request != 0"
      // Clients up to 0.15.3 register without a body; they are answered with an eviction.
      if (size !== headerSize && size !== headerSize + registerRequestSize) return "register: size not 256 or 512"
      return undefined
    case VsrOperation.pulse:
    case VsrOperation.upgrade:
      // The primary's own operations: no client, no session.
      if (client) return "pulse/upgrade: client != 0"
      if (parent) return "pulse/upgrade: parent != 0"
      if (session) return "pulse/upgrade: session != 0"
      if (request) return "pulse/upgrade: request != 0"
      if (size !== headerSize + (operation === VsrOperation.pulse ? 0 : upgradeRequestSize)) return "pulse/upgrade: size"
      return undefined
    default:
      if (operation === VsrOperation.reconfigure) {
        if (size !== headerSize + reconfigurationRequestSize) return "reconfigure: size != 512"
      } else if (operation === VsrOperation.noop) {
        if (size !== headerSize) return "noop: size != 256"
      } else if (operation < vsrOperationsReserved) {
        return "request: operation reserved for the protocol"
      }
      if (replica !== 0) return "request: replica != 0"
      if (!client) return "request: client == 0"
      if (!session) return "request: session == 0"
      if (!request) return "request: request == 0"
      return undefined
  }
}

function prepareInvalid(bytes: Uint8Array, size: number): string | undefined {
  const L = PrepareLayout
  const release = readU32(bytes, FrameLayout.release.offset)
  const view = readU32(bytes, FrameLayout.view.offset)
  const replica = bytes[FrameLayout.replica.offset]
  const operation = bytes[L.operation.offset]
  if (operation === VsrOperation.reserved || operation === VsrOperation.root) {
    // An empty WAL slot (`op` = slot) or op 0 of the cluster: everything but `op` is zero.
    const name = operation === VsrOperation.root ? "root" : "reserved"
    if (!bodyEmpty(bytes, size)) return `prepare ${name}: body not empty`
    if (view !== 0 || release !== 0 || replica !== 0) return `prepare ${name}: view, release or replica != 0`
    if (!isZero(bytes, L.parent.offset, L.op.offset)) return `prepare ${name}: parent, request_checksum, checkpoint_id or client != 0`
    if (operation === VsrOperation.root && !u64Zero(bytes, L.op.offset)) return "prepare root: op != 0"
    if (!isZero(bytes, L.commit.offset, L.operation.offset)) return `prepare ${name}: commit, timestamp or request != 0`
    return undefined
  }
  if (release === 0) return "prepare: release == 0"
  const internal = operation === VsrOperation.pulse || operation === VsrOperation.upgrade
  if (internal === !u128Zero(bytes, L.client.offset)) return internal ? "prepare: client != 0" : "prepare: client == 0"
  if (u64Zero(bytes, L.op.offset)) return "prepare: op == 0"
  if (u64Compare(bytes, L.op.offset, L.commit.offset) <= 0) return "prepare: op <= commit"
  if (u64Zero(bytes, L.timestamp.offset)) return "prepare: timestamp == 0"
  const sessionless = internal || operation === VsrOperation.register
  if (sessionless === (readU32(bytes, L.request.offset) !== 0)) return sessionless ? "prepare: request != 0" : "prepare: request == 0"
  return undefined
}

function prepareOkInvalid(bytes: Uint8Array, size: number): string | undefined {
  const L = PrepareOkLayout
  const release = readU32(bytes, FrameLayout.release.offset)
  if (!bodyEmpty(bytes, size)) return "prepare_ok: body not empty"
  if (release !== 0) return "prepare_ok: release != 0"
  const operation = bytes[L.operation.offset]
  if (operation === VsrOperation.reserved) return "prepare_ok: operation reserved"
  const client = !u128Zero(bytes, L.client.offset)
  const request = readU32(bytes, L.request.offset) !== 0
  if (operation === VsrOperation.root) {
    if (!u128Zero(bytes, L.parent.offset) || client || request) return "prepare_ok root: parent, client or request != 0"
    if (!u64Zero(bytes, L.op.offset) || !u64Zero(bytes, L.timestamp.offset)) return "prepare_ok root: op or timestamp != 0"
    if (!u128Equal(bytes, L.prepare_checksum.offset, rootPrepareOf(bytes.subarray(FrameLayout.cluster.offset, FrameLayout.cluster.offset + checksumSize)), FrameLayout.checksum.offset)) {
      return "prepare_ok root: prepare_checksum is not the root prepare's"
    }
    return undefined
  }
  const internal = operation === VsrOperation.pulse || operation === VsrOperation.upgrade
  if (internal === client) return internal ? "prepare_ok: client != 0" : "prepare_ok: client == 0"
  if (u64Zero(bytes, L.op.offset)) return "prepare_ok: op == 0"
  if (u64Zero(bytes, L.timestamp.offset)) return "prepare_ok: timestamp == 0"
  const sessionless = !client || operation === VsrOperation.register || operation === VsrOperation.upgrade
  if (sessionless === request) return sessionless ? "prepare_ok: request != 0" : "prepare_ok: request == 0"
  return undefined
}

/** §11 row 7: what the client checks on a reply, so a replica never sends one it would drop. */
function replyInvalid(bytes: Uint8Array, size: number): string | undefined {
  const L = ReplyLayout
  const release = readU32(bytes, FrameLayout.release.offset)
  if (release === 0) return "reply: release == 0"
  if (u128Zero(bytes, L.client.offset)) return "reply: client == 0"
  if (u64Compare(bytes, L.op.offset, L.commit.offset) !== 0) return "reply: op != commit"
  if (u64Zero(bytes, L.timestamp.offset)) return "reply: timestamp == 0"
  // The commit of a register reply is the new session number; 0 is reserved for the root.
  if (u64Zero(bytes, L.commit.offset)) return "reply: commit == 0"
  const request = readU32(bytes, L.request.offset) !== 0
  if (bytes[L.operation.offset] === VsrOperation.register) {
    if (size !== headerSize + registerResultSize) return "reply register: size != 320"
    if (request) return "reply register: request != 0"
  } else if (!request) {
    return "reply: request == 0"
  }
  return undefined
}

// --- the root prepare -------------------------------------------------------------------------

/**
 * Op 0 of the cluster whose 16 id bytes are `cluster` (vsr.md §2.3): a body-less prepare with
 * operation `root` and every other field zero. Its checksum is what a root `prepare_ok` names.
 */
export function rootPrepare(cluster: Uint8Array): Uint8Array {
  assert(cluster.length === checksumSize, () => "a cluster id is 16 bytes")
  const root = new Uint8Array(headerSize)
  root.set(cluster, FrameLayout.cluster.offset)
  writeU32(root, FrameLayout.size.offset, headerSize)
  root[FrameLayout.command.offset] = Command.prepare
  root[PrepareLayout.operation.offset] = VsrOperation.root
  root.set(checksumBodyEmpty, FrameLayout.checksum_body.offset)
  checksumInto(root.subarray(checksumSize, headerSize), root, FrameLayout.checksum.offset)
  return root
}

// The root prepare of the last cluster asked about: a replica only ever sees its own.
let rootCached: Uint8Array = rootPrepare(new Uint8Array(checksumSize))

function rootPrepareOf(cluster: Uint8Array): Uint8Array {
  if (!u128Equal(rootCached, FrameLayout.cluster.offset, cluster, 0)) rootCached = rootPrepare(cluster)
  return rootCached
}

// --- helpers ----------------------------------------------------------------------------------

/** An empty body: size 256 and `checksum_body` = checksum of nothing. */
const bodyEmpty = (bytes: Uint8Array, size: number): boolean =>
  size === headerSize && u128Equal(bytes, FrameLayout.checksum_body.offset, checksumBodyEmpty, 0)

const u64Zero = (bytes: Uint8Array, offset: number): boolean => isZero(bytes, offset, offset + 8)
const u128Zero = (bytes: Uint8Array, offset: number): boolean => isZero(bytes, offset, offset + 16)

/** Compares the u64 fields at `a` and `b` of the same header: negative, zero or positive. */
function u64Compare(bytes: Uint8Array, a: number, b: number): number {
  const high = readU32(bytes, a + 4) - readU32(bytes, b + 4)
  return high !== 0 ? high : readU32(bytes, a) - readU32(bytes, b)
}

/** A checkpoint op is 0 or the last op of a bar: `(op + 1) % 32 == 0`, decided by the low byte. */
function checkpointOpValid(bytes: Uint8Array, offset: number): boolean {
  return u64Zero(bytes, offset) || (bytes[offset] & (lsmCompactionOps - 1)) === lsmCompactionOps - 1
}
