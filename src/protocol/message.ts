/**
 * Receiving a message (wire-protocol.md §2 "Receive pipeline", §11): nothing reads a byte of a
 * message before the checksum that covers it is verified, and nothing acts on a message before
 * its header is validated. The outcome is a typed rejection, never an exception: the input comes
 * from the network.
 *
 * The pipeline has two stages so that a stream can stop at the header (`checkHeader`: header
 * checksum, command, size, as soon as 256 bytes are in) before it buffers a body, and finish when
 * the body is complete (`checkBody`: body checksum, cluster, header rules). `validateMessage`
 * runs both on a whole message; `decodeMessage` also decodes the header for the cold path.
 */
import { assert, unreachable } from "../assert.ts"
import { checksumSize } from "./checksum.ts"
import { checksumInto } from "./checksum_native.ts"
import {
  type AnyHeader, type Command, decodeHeader, FrameLayout, headerSize, isCommand, messageSizeMax, readU32, u128Equal
} from "./header.ts"
import { headerInvalid } from "./header_rules.ts"

/** Why a message was rejected. `InvalidHeader` drops the message; every other closes the connection. */
export type Rejection =
  | { readonly _tag: "Truncated"; readonly length: number }
  | { readonly _tag: "BadHeaderChecksum" }
  | { readonly _tag: "UnknownCommand"; readonly command: number }
  | { readonly _tag: "SizeOutOfRange"; readonly size: number }
  | { readonly _tag: "LengthMismatch"; readonly size: number; readonly length: number }
  | { readonly _tag: "BadBodyChecksum" }
  | { readonly _tag: "WrongCluster" }
  | { readonly _tag: "InvalidHeader"; readonly command: Command; readonly reason: string }

/**
 * What the receiver does (§2): an invalid header is dropped and the connection kept; everything
 * else means the peer cannot be trusted to frame the stream, so the connection is closed. An
 * unknown command closes too: TigerBeetle's processes exit on one, a server must not crash on
 * client input.
 */
export function rejectionAction(rejection: Rejection): "drop" | "close" {
  switch (rejection._tag) {
    case "InvalidHeader":
      return "drop"
    case "Truncated":
    case "BadHeaderChecksum":
    case "UnknownCommand":
    case "SizeOutOfRange":
    case "LengthMismatch":
    case "BadBodyChecksum":
    case "WrongCluster":
      return "close"
    default:
      return unreachable(rejection)
  }
}

const badHeaderChecksum: Rejection = { _tag: "BadHeaderChecksum" }
const badBodyChecksum: Rejection = { _tag: "BadBodyChecksum" }
const wrongCluster: Rejection = { _tag: "WrongCluster" }

// One checksum is computed at a time (the checksum code is synchronous), so one scratch suffices.
const computed = new Uint8Array(checksumSize)

/**
 * Stage 1, on the first 256 bytes at `bytes[offset ..)`: header checksum, then the command code,
 * then `256 <= size <= 1 MiB`. Only after this passes may `size` be trusted, to wait for the body.
 */
export function checkHeader(bytes: Uint8Array, offset = 0): Rejection | undefined {
  assert(offset >= 0 && offset + headerSize <= bytes.length, () => "checkHeader: needs 256 bytes")
  checksumInto(bytes.subarray(offset + checksumSize, offset + headerSize), computed, 0)
  if (!u128Equal(bytes, offset + FrameLayout.checksum.offset, computed, 0)) return badHeaderChecksum
  const command = bytes[offset + FrameLayout.command.offset]
  if (!isCommand(command)) return { _tag: "UnknownCommand", command }
  const size = readU32(bytes, offset + FrameLayout.size.offset)
  if (size < headerSize || size > messageSizeMax) return { _tag: "SizeOutOfRange", size }
  return undefined
}

/**
 * Stage 2, on a whole message (exactly `size` bytes) whose header passed `checkHeader`: body
 * checksum, then the cluster id (16 bytes), then the command's header rules.
 */
export function checkBody(message: Uint8Array, cluster: Uint8Array): Rejection | undefined {
  assert(cluster.length === checksumSize, () => "a cluster id is 16 bytes")
  const size = readU32(message, FrameLayout.size.offset)
  assert(size === message.length && size >= headerSize && size <= messageSizeMax, () => "checkBody: the header was not checked")
  checksumInto(message.subarray(headerSize, size), computed, 0)
  if (!u128Equal(message, FrameLayout.checksum_body.offset, computed, 0)) return badBodyChecksum
  if (!u128Equal(message, FrameLayout.cluster.offset, cluster, 0)) return wrongCluster
  const reason = headerInvalid(message)
  if (reason !== undefined) return { _tag: "InvalidHeader", command: message[FrameLayout.command.offset] as Command, reason }
  return undefined
}

/** Both stages on `bytes`, which must hold exactly one message. `undefined` means valid. */
export function validateMessage(bytes: Uint8Array, cluster: Uint8Array): Rejection | undefined {
  if (bytes.length < headerSize) return { _tag: "Truncated", length: bytes.length }
  const rejection = checkHeader(bytes, 0)
  if (rejection !== undefined) return rejection
  const size = readU32(bytes, FrameLayout.size.offset)
  if (size !== bytes.length) return { _tag: "LengthMismatch", size, length: bytes.length }
  return checkBody(bytes, cluster)
}

export type Decoded =
  | { readonly _tag: "Ok"; readonly header: AnyHeader; readonly body: Uint8Array }
  | Rejection

/** `validateMessage`, then the header as an object and the body as a view into `bytes`. */
export function decodeMessage(bytes: Uint8Array, cluster: Uint8Array): Decoded {
  const rejection = validateMessage(bytes, cluster)
  if (rejection !== undefined) return rejection
  return { _tag: "Ok", header: decodeHeader(bytes, 0), body: bytes.subarray(headerSize) }
}
