/**
 * The captured and crafted messages of ../shared/vectors with everything index.json says about
 * them: decoded header fields (as strings), multi-batch trailers, register bodies. The path is
 * resolved from this file (checksum_vectors.ts), so tests run from any working directory.
 */
import { readFileSync } from "node:fs"
import { vectorsDirectory } from "./checksum_vectors.ts"

export interface MultiBatchFacts {
  readonly element_size: number
  readonly batch_count: number
  readonly elements_per_batch: ReadonlyArray<number>
  readonly trailer_size: number
  readonly payload_size: number
}

export interface WireVector {
  readonly file: string
  readonly bytes: Uint8Array
  /** Every header field as index.json prints it: decimal or `0x…` strings, byte arrays as hex. */
  readonly header: Readonly<Record<string, string>>
  readonly multiBatch: MultiBatchFacts | undefined
  readonly registerRequestBatchSizeLimit: number | undefined
  readonly registerResultBatchSizeLimit: number | undefined
}

interface RawEntry {
  readonly file: string
  readonly bytes: number
  readonly header: Record<string, string>
  readonly multi_batch?: MultiBatchFacts
  readonly register_request_batch_size_limit?: number
  readonly register_result_batch_size_limit?: number
}

export function loadWireVectors(): Array<WireVector> {
  const index: Array<RawEntry> = JSON.parse(readFileSync(vectorsDirectory + "index.json", "utf8"))
  return index.map((entry) => {
    const bytes = new Uint8Array(readFileSync(vectorsDirectory + entry.file))
    if (bytes.length !== entry.bytes) throw new Error(`${entry.file}: ${bytes.length} bytes, index says ${entry.bytes}`)
    return {
      file: entry.file,
      bytes,
      header: entry.header,
      multiBatch: entry.multi_batch,
      registerRequestBatchSizeLimit: entry.register_request_batch_size_limit,
      registerResultBatchSizeLimit: entry.register_result_batch_size_limit
    }
  })
}

export const readVectorFile = (path: string): Uint8Array => new Uint8Array(readFileSync(vectorsDirectory + path))

/** The session's cluster id and the eviction runs' (0). */
export const sessionCluster = 0x0f0e0d0c0b0a09080706050403020100n
