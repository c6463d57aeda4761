/**
 * The 256-byte header that starts every message, prepare and grid block (wire-protocol.md §3–§5,
 * design/vsr.md §2): command and operation codes with their wire values, releases, eviction
 * reasons, the byte layout of every command, and two ways to read it (the validity rules are in
 * `header_rules.ts`).
 *
 * - Hot path: `readU16/U32`, `readU64Number`, `u128Equal`, `isZero` over the message bytes at
 *   the offsets of the `*Layout` tables. No allocation, no bigint.
 * - Cold path (tests, tools, logs, the REPL): `decodeHeader`/`encodeHeader` between the bytes
 *   and one plain object per header with bigint u64/u128 fields, named as on the wire.
 *
 * Every byte of a header that no named field covers (the `*_padding`, `reserved*`, `epoch` and
 * `nonce_reserved` fields) must be zero: `encodeHeader` writes zeros there and `headerInvalid`
 * rejects anything else. Nothing here verifies checksums; `message.ts` does that first.
 */
import { assert, unreachable } from "../assert.ts"
import { checksumSize } from "./checksum.ts"
import { headerSize, messageSizeMax } from "./operation.ts"

export { headerSize, messageSizeMax }

/** Replicas in a cluster; a client keeps one slot per replica and indexes it with `replica`. */
export const replicasMax = 6

/** The protocol version carried at offset 112 (`Version` in TigerBeetle): 0 in every message. */
export const protocolVersion = 0

// --- commands ---------------------------------------------------------------------------------

/** Command codes (u8 at offset 114), wire-protocol.md §4. */
export const Command = {
  reserved: 0,
  ping: 1,
  pong: 2,
  ping_client: 3,
  pong_client: 4,
  request: 5,
  prepare: 6,
  prepare_ok: 7,
  reply: 8,
  commit: 9,
  exit_view: 10,
  join_view: 11,
  deprecated_12: 12,
  get_view: 13,
  get_headers: 14,
  get_prepare: 15,
  get_reply: 16,
  headers: 17,
  eviction: 18,
  get_blocks: 19,
  block: 20,
  deprecated_21: 21,
  deprecated_22: 22,
  deprecated_23: 23,
  view: 24
} as const
export type Command = (typeof Command)[keyof typeof Command]
export type CommandName = keyof typeof Command

/** Codes above this are unknown: receiving one is a fatal protocol error (§2 step 2). */
export const commandMax = Command.view

export const isCommand = (value: number): value is Command =>
  Number.isInteger(value) && value >= 0 && value <= commandMax

const commandNames: ReadonlyArray<CommandName> = (() => {
  const names: Array<CommandName> = []
  for (const [name, code] of Object.entries(Command)) names[code] = name as CommandName
  assert(names.length === commandMax + 1 && !names.includes(undefined as never), () => "command codes must be dense")
  return names
})()

export const commandName = (command: Command): CommandName => commandNames[command]

// --- operations -------------------------------------------------------------------------------

/**
 * Operation codes below `vsrOperationsReserved` belong to the replication protocol (vsr.md §2.4).
 * The state machine's operations (128 and up) are in `operation.ts` and `body.ts`.
 */
export const VsrOperation = {
  reserved: 0,
  root: 1,
  register: 2,
  reconfigure: 3,
  pulse: 4,
  upgrade: 5,
  noop: 6
} as const
export type VsrOperation = (typeof VsrOperation)[keyof typeof VsrOperation]

export const vsrOperationsReserved = 128

/** Body sizes the request validity rules pin for the protocol operations that carry one. */
export const registerRequestSize = 256
export const registerResultSize = 64
export const reconfigurationRequestSize = 256
export const upgradeRequestSize = 16

// --- releases ---------------------------------------------------------------------------------

/** A release `major.minor.patch` packed into a u32 as `major << 16 | minor << 8 | patch` (§7). */
export const release = (major: number, minor: number, patch: number): number => {
  assert(Number.isInteger(major) && major >= 0 && major <= 0xffff, () => `release major ${major}`)
  assert(Number.isInteger(minor) && minor >= 0 && minor <= 0xff, () => `release minor ${minor}`)
  assert(Number.isInteger(patch) && patch >= 0 && patch <= 0xff, () => `release patch ${patch}`)
  return major * 0x10000 + minor * 0x100 + patch
}

export const releaseFormat = (value: number): string =>
  `${Math.floor(value / 0x10000)}.${(value >>> 8) & 0xff}.${value & 0xff}`

/** The release Scarab's replica runs and advertises in pongs and evictions. */
export const releaseScarab = release(0, 17, 9)
/** The oldest client release TigerBeetle 0.17.9 serves; older clients are evicted. */
export const releaseClientMin = release(0, 16, 4)

// --- eviction reasons ---------------------------------------------------------------------------

/** Why a primary ends a client's session (u8 at eviction offset 255, wire-protocol.md §5.6). */
export const EvictionReason = {
  reserved: 0,
  no_session: 1,
  client_release_too_low: 2,
  client_release_too_high: 3,
  invalid_request_operation: 4,
  invalid_request_body: 5,
  invalid_request_body_size: 6,
  session_too_low: 7,
  session_release_mismatch: 8
} as const
export type EvictionReason = (typeof EvictionReason)[keyof typeof EvictionReason]
export const evictionReasonMax = EvictionReason.session_release_mismatch

// --- layouts ----------------------------------------------------------------------------------

export type FieldKind = "u8" | "u16" | "u32" | "u64" | "u128" | "bytes"

export interface Field<K extends FieldKind = FieldKind> {
  readonly offset: number
  readonly kind: K
  /** Bytes the field occupies. */
  readonly size: number
}

const field = <K extends Exclude<FieldKind, "bytes">>(offset: number, kind: K): Field<K> => ({
  offset,
  kind,
  size: kind === "u8" ? 1 : kind === "u16" ? 2 : kind === "u32" ? 4 : kind === "u64" ? 8 : 16
})
const u8 = (offset: number) => field(offset, "u8")
const u16 = (offset: number) => field(offset, "u16")
const u32 = (offset: number) => field(offset, "u32")
const u64 = (offset: number) => field(offset, "u64")
const u128 = (offset: number) => field(offset, "u128")

type Layout = Readonly<Record<string, Field>>

/** The named fields of the common frame (bytes 0..127); the others in the frame must be zero. */
export const FrameLayout = {
  checksum: u128(0),
  checksum_body: u128(32),
  cluster: u128(80),
  size: u32(96),
  view: u32(104),
  release: u32(108),
  protocol: u16(112),
  command: u8(114),
  replica: u8(115)
} as const satisfies Layout

/** Byte ranges of the frame that must be zero: the checksum paddings, `nonce_reserved`, `epoch`, `reserved_frame`. */
export const frameZeroRanges: ReadonlyArray<readonly [number, number]> = [[16, 32], [48, 80], [100, 104], [116, 128]]

export const RequestLayout = {
  parent: u128(128),
  client: u128(160),
  session: u64(176),
  timestamp: u64(184),
  request: u32(192),
  operation: u8(196),
  previous_request_latency: u32(200)
} as const satisfies Layout

export const ReplyLayout = {
  request_checksum: u128(128),
  context: u128(160),
  client: u128(192),
  op: u64(208),
  commit: u64(216),
  timestamp: u64(224),
  request: u32(232),
  operation: u8(236)
} as const satisfies Layout

export const PingClientLayout = {
  client: u128(128),
  ping_timestamp_monotonic: u64(144),
  session: u64(152)
} as const satisfies Layout

export const PongClientLayout = { ping_timestamp_monotonic: u64(128) } as const satisfies Layout

export const EvictionLayout = { client: u128(128), reason: u8(255) } as const satisfies Layout

export const PingLayout = {
  checkpoint_id: u128(128),
  checkpoint_op: u64(144),
  ping_timestamp_monotonic: u64(152),
  release_count: u16(160)
} as const satisfies Layout

export const PongLayout = { ping_timestamp_monotonic: u64(128), pong_timestamp_wall: u64(136) } as const satisfies Layout

export const PrepareLayout = {
  parent: u128(128),
  request_checksum: u128(160),
  checkpoint_id: u128(192),
  client: u128(208),
  op: u64(224),
  commit: u64(232),
  timestamp: u64(240),
  request: u32(248),
  operation: u8(252)
} as const satisfies Layout

export const PrepareOkLayout = {
  parent: u128(128),
  prepare_checksum: u128(160),
  checkpoint_id: u128(192),
  client: u128(208),
  op: u64(224),
  commit_min: u64(232),
  timestamp: u64(240),
  request: u32(248),
  operation: u8(252)
} as const satisfies Layout

export const CommitLayout = {
  commit_checksum: u128(128),
  checkpoint_id: u128(160),
  checkpoint_op: u64(176),
  commit: u64(184),
  timestamp_monotonic: u64(192)
} as const satisfies Layout

export const JoinViewLayout = {
  present_bitset: u128(128),
  nack_bitset: u128(144),
  op: u64(160),
  commit_min: u64(168),
  checkpoint_op: u64(176),
  log_view: u32(184)
} as const satisfies Layout

export const ViewLayout = {
  nonce: u128(128),
  op: u64(144),
  commit_max: u64(152),
  checkpoint_op: u64(160)
} as const satisfies Layout

export const GetViewLayout = { nonce: u128(128) } as const satisfies Layout
export const GetHeadersLayout = { op_min: u64(128), op_max: u64(136) } as const satisfies Layout
export const GetPrepareLayout = { prepare_checksum: u128(128), prepare_op: u64(160) } as const satisfies Layout
export const GetReplyLayout = { reply_checksum: u128(128), reply_client: u128(160), reply_op: u64(176) } as const satisfies Layout

/** A grid block's type-specific metadata, then the fields every block type shares. */
export const BlockLayout = {
  metadata_bytes: { offset: 128, kind: "bytes", size: 96 } as Field<"bytes">,
  address: u64(224),
  snapshot: u64(232),
  block_type: u8(240)
} as const satisfies Layout

const emptyLayout = {} as const satisfies Layout

/** The command-specific layout (bytes 128..255) of every command, indexed by its code. */
export const commandLayouts = {
  [Command.reserved]: emptyLayout,
  [Command.ping]: PingLayout,
  [Command.pong]: PongLayout,
  [Command.ping_client]: PingClientLayout,
  [Command.pong_client]: PongClientLayout,
  [Command.request]: RequestLayout,
  [Command.prepare]: PrepareLayout,
  [Command.prepare_ok]: PrepareOkLayout,
  [Command.reply]: ReplyLayout,
  [Command.commit]: CommitLayout,
  [Command.exit_view]: emptyLayout,
  [Command.join_view]: JoinViewLayout,
  [Command.deprecated_12]: emptyLayout,
  [Command.get_view]: GetViewLayout,
  [Command.get_headers]: GetHeadersLayout,
  [Command.get_prepare]: GetPrepareLayout,
  [Command.get_reply]: GetReplyLayout,
  [Command.headers]: emptyLayout,
  [Command.eviction]: EvictionLayout,
  [Command.get_blocks]: emptyLayout,
  [Command.block]: BlockLayout,
  [Command.deprecated_21]: emptyLayout,
  [Command.deprecated_22]: emptyLayout,
  [Command.deprecated_23]: emptyLayout,
  [Command.view]: ViewLayout
} as const

// --- typed headers (cold path) ----------------------------------------------------------------

type FieldValue<F> = F extends Field<"u64" | "u128"> ? bigint : F extends Field<"bytes"> ? Uint8Array : number
type Fields<L> = { -readonly [K in keyof L]: FieldValue<L[K]> }

type FrameFields = Omit<Fields<typeof FrameLayout>, "command">

/** The header of a message with command `C`: frame fields plus that command's fields. */
export type HeaderOf<C extends Command> = FrameFields & { command: C } & Fields<(typeof commandLayouts)[C]>

/** Any header, discriminated by `command`. */
export type AnyHeader = { [C in Command]: HeaderOf<C> }[Command]

export type RequestHeader = HeaderOf<typeof Command.request>
export type ReplyHeader = HeaderOf<typeof Command.reply>
export type PrepareHeader = HeaderOf<typeof Command.prepare>

/** Field lists, and the bytes of 0..255 that no named field covers, computed once per command. */
interface CommandCodec {
  readonly fields: ReadonlyArray<readonly [string, Field]>
  readonly zeroRanges: ReadonlyArray<readonly [number, number]>
}

const codecs: ReadonlyArray<CommandCodec> = commandNames.map((_, command) => {
  const layout: Layout = commandLayouts[command as Command]
  const fields = [...Object.entries(FrameLayout), ...Object.entries(layout)]
  const covered = new Uint8Array(headerSize)
  for (const [name, { offset, size }] of fields) {
    assert(offset >= 0 && offset + size <= headerSize, () => `field ${name} outside the header`)
    assert(offset % Math.min(size, 16) === 0 || size > 16, () => `field ${name} is misaligned`)
    for (let i = offset; i < offset + size; i++) {
      assert(covered[i] === 0, () => `field ${name} overlaps another field of command ${command}`)
      covered[i] = 1
    }
  }
  const zeroRanges: Array<readonly [number, number]> = []
  for (let i = 0; i < headerSize; ) {
    if (covered[i] === 1) { i++; continue }
    const start = i
    while (i < headerSize && covered[i] === 0) i++
    zeroRanges.push([start, i])
  }
  return { fields, zeroRanges }
})

/** Byte ranges `[start, end)` of a `command` header that must be zero. */
export const zeroRangesOf = (command: Command): ReadonlyArray<readonly [number, number]> => codecs[command].zeroRanges

/**
 * Decodes the header at `bytes[offset .. offset + 256)` into an object. The command byte must be
 * known (callers check `isCommand` first; `decodeMessage` does). Non-zero reserved bytes are not
 * reported here: `headerInvalid` does that.
 */
export function decodeHeader(bytes: Uint8Array, offset = 0): AnyHeader {
  assert(offset >= 0 && offset + headerSize <= bytes.length, () => "decodeHeader: buffer too small for a header")
  const command = bytes[offset + FrameLayout.command.offset]
  assert(isCommand(command), () => `decodeHeader: unknown command ${command}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, headerSize)
  const header: Record<string, bigint | number | Uint8Array> = {}
  for (const [name, fieldSpec] of codecs[command].fields) header[name] = readField(view, fieldSpec)
  return header as unknown as AnyHeader
}

/**
 * Writes `header` into `target[offset .. offset + 256)`, zeroing every byte no field covers.
 * Checksums are written as given: `message.ts` computes them in the order the spec requires.
 */
export function encodeHeader(header: AnyHeader, target: Uint8Array = new Uint8Array(headerSize), offset = 0): Uint8Array {
  assert(offset >= 0 && offset + headerSize <= target.length, () => "encodeHeader: target too small for a header")
  assert(isCommand(header.command), () => `encodeHeader: unknown command ${header.command}`)
  const codec = codecs[header.command]
  const view = new DataView(target.buffer, target.byteOffset + offset, headerSize)
  const values = header as unknown as Readonly<Record<string, bigint | number | Uint8Array>>
  for (const [name, fieldSpec] of codec.fields) {
    const value = values[name]
    assert(value !== undefined, () => `encodeHeader: ${commandName(header.command)} lacks field ${name}`)
    writeField(view, fieldSpec, value, name)
  }
  for (const [start, end] of codec.zeroRanges) target.fill(0, offset + start, offset + end)
  return target
}

/** A header of `command` with every field zero: the starting point of builders and tests. */
export function zeroHeader<C extends Command>(command: C): HeaderOf<C> {
  const header: Record<string, bigint | number | Uint8Array> = {}
  for (const [name, { kind, size }] of codecs[command].fields) {
    header[name] = kind === "u64" || kind === "u128" ? 0n : kind === "bytes" ? new Uint8Array(size) : 0
  }
  header.command = command
  return header as unknown as HeaderOf<C>
}

function readField(view: DataView, { offset, kind, size }: Field): bigint | number | Uint8Array {
  switch (kind) {
    case "u8":
      return view.getUint8(offset)
    case "u16":
      return view.getUint16(offset, true)
    case "u32":
      return view.getUint32(offset, true)
    case "u64":
      return view.getBigUint64(offset, true)
    case "u128":
      return view.getBigUint64(offset, true) | (view.getBigUint64(offset + 8, true) << 64n)
    case "bytes":
      return new Uint8Array(view.buffer, view.byteOffset + offset, size).slice()
    default:
      return unreachable(kind)
  }
}

const u64Max = (1n << 64n) - 1n
const u128Max = (1n << 128n) - 1n

function writeField(view: DataView, { offset, kind, size }: Field, value: bigint | number | Uint8Array, name: string): void {
  switch (kind) {
    case "u8":
    case "u16":
    case "u32": {
      const max = kind === "u8" ? 0xff : kind === "u16" ? 0xffff : 0xffff_ffff
      assert(typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= max, () => `${name}: ${String(value)} is not a ${kind}`)
      if (kind === "u8") view.setUint8(offset, value)
      else if (kind === "u16") view.setUint16(offset, value, true)
      else view.setUint32(offset, value, true)
      return
    }
    case "u64":
      assert(typeof value === "bigint" && value >= 0n && value <= u64Max, () => `${name}: ${String(value)} is not a u64`)
      view.setBigUint64(offset, value, true)
      return
    case "u128":
      assert(typeof value === "bigint" && value >= 0n && value <= u128Max, () => `${name}: ${String(value)} is not a u128`)
      view.setBigUint64(offset, value & u64Max, true)
      view.setBigUint64(offset + 8, value >> 64n, true)
      return
    case "bytes":
      assert(value instanceof Uint8Array && value.length === size, () => `${name}: expected ${size} bytes`)
      new Uint8Array(view.buffer, view.byteOffset + offset, size).set(value)
      return
    default:
      unreachable(kind)
  }
}

// --- hot-path readers -------------------------------------------------------------------------

export const readU16 = (bytes: Uint8Array, offset: number): number => bytes[offset] | (bytes[offset + 1] << 8)

export const readU32 = (bytes: Uint8Array, offset: number): number =>
  (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0

/** Writes a u32 little-endian without a DataView. */
export function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  assert(Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff, () => `writeU32: ${value}`)
  bytes[offset] = value & 0xff
  bytes[offset + 1] = (value >>> 8) & 0xff
  bytes[offset + 2] = (value >>> 16) & 0xff
  bytes[offset + 3] = value >>> 24
}

/**
 * A u64 field as a JavaScript number, for counters that stay far below 2^53 (op, commit,
 * session, view-derived numbers). Asserts rather than silently rounding.
 */
export function readU64Number(bytes: Uint8Array, offset: number): number {
  const high = readU32(bytes, offset + 4)
  assert(high < 0x20_0000, () => `u64 at ${offset} exceeds 2^53`)
  return high * 0x1_0000_0000 + readU32(bytes, offset)
}

/** A u64 field (timestamps, session numbers: values that may pass 2^53). */
export function readU64(bytes: Uint8Array, offset: number): bigint {
  assert(offset >= 0 && offset + 8 <= bytes.length, () => `u64 at ${offset} of ${bytes.length} bytes`)
  return new DataView(bytes.buffer, bytes.byteOffset + offset, 8).getBigUint64(0, true)
}

/** Whether the 16 bytes at `a[aOffset]` equal those at `b[bOffset]` (u128 comparison). */
export function u128Equal(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset: number): boolean {
  for (let i = 0; i < checksumSize; i++) if (a[aOffset + i] !== b[bOffset + i]) return false
  return true
}

/** Whether `bytes[start .. end)` are all zero. */
export function isZero(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false
  return true
}
