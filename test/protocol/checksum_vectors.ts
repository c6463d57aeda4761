/**
 * Loads the checksum vectors (test/vectors/checksum-vectors.json) and the captured wire
 * messages, for the TypeScript and native checksum tests alike. test/vectors/ is a verbatim copy
 * of the project's shared vectors (../shared/vectors), vendored so that a clean clone (CI) has them.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

export const vectorsDirectory = fileURLToPath(new URL("../vectors/", import.meta.url))

export interface ChecksumVector {
  readonly name: string
  readonly length: number
  readonly input: Uint8Array
  readonly checksum: bigint
  readonly tagBytesHex: string
}

interface RawVector {
  readonly name: string
  readonly length: number
  readonly input: string
  readonly checksum: string
  readonly tag_bytes_hex: string
}

export function loadChecksumVectors(): Array<ChecksumVector> {
  const raw: Array<RawVector> = JSON.parse(readFileSync(vectorsDirectory + "checksum-vectors.json", "utf8"))
  return raw.map((vector) => {
    const input = vectorInput(vector)
    if (input.length !== vector.length) throw new Error(`vector ${vector.name}: length mismatch`)
    return {
      name: vector.name,
      length: vector.length,
      input,
      checksum: BigInt(vector.checksum),
      tagBytesHex: vector.tag_bytes_hex
    }
  })
}

export interface CapturedMessage {
  readonly file: string
  readonly bytes: Uint8Array
  readonly command: number
}

export function loadCapturedMessages(): Array<CapturedMessage> {
  const index: Array<{ file: string; header: { command: string } }> = JSON.parse(
    readFileSync(vectorsDirectory + "index.json", "utf8")
  )
  return index.map((entry) => ({
    file: entry.file,
    bytes: new Uint8Array(readFileSync(vectorsDirectory + entry.file)),
    command: Number(entry.header.command)
  }))
}

/** Long inputs are described in words in the JSON; these are the generators they describe. */
function vectorInput(vector: RawVector): Uint8Array {
  if (/^([0-9a-f]{2})*$/.test(vector.input)) return Uint8Array.from(Buffer.from(vector.input, "hex"))
  const bytes = new Uint8Array(vector.length)
  switch (vector.name) {
    case "bytes_0_to_255":
      for (let i = 0; i < bytes.length; i++) bytes[i] = i
      return bytes
    case "i_mod_251_x_1000":
      for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251
      return bytes
    case "ff_100":
      return bytes.fill(0xff)
    case "zeros_256":
    case "zeros_1048320":
      return bytes
    default:
      throw new Error(`vector ${vector.name}: unknown generator "${vector.input}"`)
  }
}
