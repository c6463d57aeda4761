/**
 * The checksum (wire-protocol.md §6) through the fastest implementation available: the native
 * addon's AES-NI code when it is loaded and the CPU has AES-NI, the TypeScript one otherwise.
 * Both produce identical bytes (test/native/checksum_native.test.ts checks them against the
 * shared vectors and against each other).
 */
import { native } from "../native.ts"
import { checksumInto as checksumIntoTypeScript, checksumSize } from "./checksum.ts"

/** Which implementation `checksum` below uses in this process. */
export const checksumImplementation: "native" | "typescript" = native?.aesNi === true ? "native" : "typescript"

const checksumIntoNative = native?.aesNi === true ? native.checksum : undefined

/** Writes the checksum of `data` into `target[targetOffset .. targetOffset + 16)`. */
export const checksumInto: (data: Uint8Array, target: Uint8Array, targetOffset: number) => void =
  checksumIntoNative ?? checksumIntoTypeScript

/** The checksum of `data`, as the 16 tag bytes in wire order. */
export function checksum(data: Uint8Array): Uint8Array {
  const target = new Uint8Array(checksumSize)
  checksumInto(data, target, 0)
  return target
}
