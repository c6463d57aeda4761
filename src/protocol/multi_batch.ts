/**
 * Multi-batch bodies (wire-protocol.md §10.2, state-machine.md §4.1): one request or reply body
 * carrying `k` independent batches of one operation, as the payload (batches back to back)
 * followed by a trailer read from the end of the body:
 *
 *     [0xFF filler] [u16 count of batch k−1] … [u16 count of batch 0] [u16 k]
 *
 * The trailer is padded at its front with 0xFF bytes to a multiple of the element size `E`
 * (event size for requests, result size for replies), so the whole body stays a multiple of `E`.
 * Decoding validates everything before exposing a batch; a body that fails is a client bug the
 * replica answers with an eviction (`invalid_request_body`), never an exception.
 */
import { assert } from "../assert.ts"
import { bodySizeMax } from "./operation.ts"
import { readU16 } from "./header.ts"

/** `k` is a u16 and 0xFFFF is the filler value, so at most 65534 batches. */
export const batchCountMax = 0xfffe
/** Bytes of one trailer item (a count) and of the postamble (`k`). */
const itemSize = 2
const filler = 0xff

/** Bytes the trailer of `batchCount` batches takes: `ceil((2k + 2) / E) · E`. */
export function trailerSize(elementSize: number, batchCount: number): number {
  assertElementSize(elementSize)
  assert(Number.isInteger(batchCount) && batchCount >= 1 && batchCount <= batchCountMax, () => `batch count ${batchCount}`)
  const unpadded = itemSize * batchCount + itemSize
  return Math.ceil(unpadded / elementSize) * elementSize
}

export type MultiBatchInvalid =
  | "body_too_short"
  | "batch_count_invalid"
  | "trailer_too_long"
  | "filler_invalid"
  | "size_mismatch"

/**
 * Validates and walks a multi-batch body without copying: `decode` once, then `batch(i)` or the
 * `next()` cursor yields views of the payload. One instance is reused across requests.
 */
export class MultiBatchDecoder {
  private body: Uint8Array = new Uint8Array(0)
  private elementSize = 0
  private cursorBatch = 0
  private cursorOffset = 0
  /** Batches in the body (0 until a body decoded). */
  batchCount = 0
  /** Bytes of the payload, i.e. the body without its trailer. */
  payloadSize = 0

  /** Validates `body` as batches of `elementSize`-byte elements; `undefined` when valid. */
  decode(body: Uint8Array, elementSize: number): MultiBatchInvalid | undefined {
    assertElementSize(elementSize)
    assert(body.length <= bodySizeMax, () => "a body is at most 1 MiB - 256 bytes")
    this.batchCount = 0
    this.payloadSize = 0
    // The trailer is read as u16 items from the end: an odd length cannot hold it.
    if (body.length < itemSize || body.length % itemSize !== 0) return "body_too_short"
    const batchCount = readU16(body, body.length - itemSize)
    if (batchCount === 0 || batchCount > batchCountMax) return "batch_count_invalid"
    const trailer = trailerSize(elementSize, batchCount)
    if (body.length < trailer) return "trailer_too_long"
    const trailerStart = body.length - trailer
    const itemsStart = body.length - itemSize - itemSize * batchCount
    for (let i = trailerStart; i < itemsStart; i++) if (body[i] !== filler) return "filler_invalid"
    let elements = 0
    for (let offset = itemsStart; offset < body.length - itemSize; offset += itemSize) elements += readU16(body, offset)
    // Sums stay far below 2^53 (at most 65534 · 65535 · E), so the product is exact.
    if (elements * elementSize !== trailerStart) return "size_mismatch"
    this.body = body
    this.elementSize = elementSize
    this.batchCount = batchCount
    this.payloadSize = trailerStart
    this.cursorBatch = 0
    this.cursorOffset = 0
    return undefined
  }

  /** Elements in batch `index` (batch 0 is the first in the payload, its count the last item). */
  elementCount(index: number): number {
    assert(Number.isInteger(index) && index >= 0 && index < this.batchCount, () => `batch ${index} of ${this.batchCount}`)
    return readU16(this.body, this.body.length - itemSize - itemSize * (index + 1))
  }

  /** The next batch's payload bytes (possibly empty), or `undefined` after the last batch. */
  next(): Uint8Array | undefined {
    assert(this.batchCount > 0, () => "next() before a successful decode()")
    if (this.cursorBatch === this.batchCount) {
      assert(this.cursorOffset === this.payloadSize, () => "batches must cover the payload exactly")
      return undefined
    }
    const size = this.elementCount(this.cursorBatch) * this.elementSize
    const batch = this.body.subarray(this.cursorOffset, this.cursorOffset + size)
    assert(batch.length === size, () => "batch beyond the payload")
    this.cursorBatch++
    this.cursorOffset += size
    return batch
  }

  /** Restarts `next()` at batch 0. */
  rewind(): void {
    this.cursorBatch = 0
    this.cursorOffset = 0
  }
}

/** Cold-path decode: the batches as views of `body`, or why the body is invalid. */
export function decodeMultiBatch(body: Uint8Array, elementSize: number): Array<Uint8Array> | MultiBatchInvalid {
  const decoder = new MultiBatchDecoder()
  const invalid = decoder.decode(body, elementSize)
  if (invalid !== undefined) return invalid
  const batches: Array<Uint8Array> = []
  for (let batch = decoder.next(); batch !== undefined; batch = decoder.next()) batches.push(batch)
  return batches
}

/**
 * Writes the trailer for `batchCount` batches whose element counts are `counts[0 .. batchCount)`
 * into `body`, right after a payload of `payloadSize` bytes already in place. Returns the body
 * size. The hot path for replies: results are written first, their counts kept in a reused
 * Uint16Array, then the trailer.
 */
export function writeTrailer(body: Uint8Array, payloadSize: number, counts: ArrayLike<number>, batchCount: number, elementSize: number): number {
  const trailer = trailerSize(elementSize, batchCount)
  assert(counts.length >= batchCount, () => "fewer counts than batches")
  assert(payloadSize % elementSize === 0, () => "payload not a whole number of elements")
  assert(payloadSize + trailer <= body.length, () => "body too small for the trailer")
  let elements = 0
  const end = payloadSize + trailer
  body.fill(filler, payloadSize, end - itemSize - itemSize * batchCount)
  for (let index = 0; index < batchCount; index++) {
    const count = counts[index]
    assert(Number.isInteger(count) && count >= 0 && count <= 0xffff, () => `batch ${index} count ${count}`)
    writeU16(body, end - itemSize - itemSize * (index + 1), count)
    elements += count
  }
  writeU16(body, end - itemSize, batchCount)
  assert(elements * elementSize === payloadSize, () => "counts do not add up to the payload")
  return end
}

/** The size of the multi-batch body holding `batches`. */
export function multiBatchSize(batches: ReadonlyArray<Uint8Array>, elementSize: number): number {
  let payloadSize = 0
  for (const batch of batches) payloadSize += batch.length
  return payloadSize + trailerSize(elementSize, batches.length)
}

/** The batches back to back, then their trailer, into `body` (exactly `multiBatchSize` bytes, zeroed). */
export function encodeMultiBatchInto(body: Uint8Array, batches: ReadonlyArray<Uint8Array>, elementSize: number): void {
  assert(batches.length >= 1, () => "a multi-batch body has at least one batch")
  assert(body.length === multiBatchSize(batches, elementSize), () => `a body of ${body.length} bytes for these batches`)
  const counts = new Uint16Array(batches.length)
  let offset = 0
  for (let index = 0; index < batches.length; index++) {
    const batch = batches[index]!
    assert(batch.length % elementSize === 0 && batch.length / elementSize <= 0xffff, () => `batch ${index} is not a whole number of elements`)
    body.set(batch, offset)
    offset += batch.length
    counts[index] = batch.length / elementSize
  }
  writeTrailer(body, offset, counts, batches.length, elementSize)
}

/** Cold-path encode: a new body holding the batches. */
export function encodeMultiBatch(batches: ReadonlyArray<Uint8Array>, elementSize: number): Uint8Array {
  const body = new Uint8Array(multiBatchSize(batches, elementSize))
  encodeMultiBatchInto(body, batches, elementSize)
  return body
}

function assertElementSize(elementSize: number): void {
  // Every element size of the protocol is a power of two >= 8; odd sizes would need the filler
  // between payload and trailer that TigerBeetle uses for 1-byte elements, which no operation has.
  assert(Number.isInteger(elementSize) && elementSize >= itemSize && (elementSize & (elementSize - 1)) === 0, () => `element size ${elementSize}`)
}

function writeU16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value & 0xff
  bytes[offset + 1] = value >>> 8
}
