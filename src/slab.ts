/**
 * Small byte ranges carved out of shared ArrayBuffers. A typed array of more than 64 bytes, or
 * one whose `.buffer` is read, gets an off-heap backing store of its own, which costs about a
 * microsecond to allocate (and more to collect), against a few tens of nanoseconds for a view
 * into a slab. Hot paths that make one small buffer per event (a one-event call's body, a batch's
 * results) take them from a slab instead.
 *
 * A range is never handed out twice, so ranges never alias; a slab is collected with its last
 * range. Ranges are zeroed and 16-byte aligned, so u32 and u64 views of them are valid.
 */
import { assert } from "./assert.ts"

const alignment = 16

export class Slab {
  private readonly size: number
  private readonly pieceMax: number
  private buffer: ArrayBuffer
  private used = 0

  /** `size` bytes a slab; ranges above `pieceMax` bytes get a buffer of their own. */
  constructor(size: number, pieceMax: number) {
    this.size = size
    this.pieceMax = pieceMax
    assert(Number.isInteger(size) && size % alignment === 0 && pieceMax >= 0 && pieceMax <= size, () => `slab ${size}, pieces up to ${pieceMax}`)
    this.buffer = new ArrayBuffer(size)
  }

  /** `length` fresh zeroed bytes. */
  take(length: number): Uint8Array<ArrayBuffer> {
    if (length > this.pieceMax) return new Uint8Array(length)
    if (this.used + length > this.size) {
      this.buffer = new ArrayBuffer(this.size)
      this.used = 0
    }
    const piece = new Uint8Array(this.buffer, this.used, length)
    this.used += Math.ceil(length / alignment) * alignment
    return piece
  }
}
