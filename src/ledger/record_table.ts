/**
 * A table of fixed-size rows of u32 words, grown in fixed-size segments so that growth never
 * copies what is already stored and never needs one huge allocation.
 *
 * Rows are appended in order and only the newest rows are ever removed (when a linked chain
 * rolls back), so a row index is stable for as long as the row exists.
 */
import { assert } from "../assert.ts"

const segmentShift = 12
const segmentRows = 1 << segmentShift
const segmentMask = segmentRows - 1

export class RecordTable {
  readonly stride: number
  readonly rowsMax: number
  readonly segments: Array<Uint32Array> = []
  count = 0
  /** Rows at or above this were never written: fresh segments are already zero. */
  private written = 0

  constructor(stride: number, rowsMax: number) {
    assert(Number.isInteger(stride) && stride > 0, () => `bad stride ${stride}`)
    assert(Number.isInteger(rowsMax) && rowsMax > 0 && rowsMax < 2 ** 31, () => `bad rowsMax ${rowsMax}`)
    this.stride = stride
    this.rowsMax = rowsMax
  }

  /** The segment holding `row`; its words start at `offset(row)`. */
  array(row: number): Uint32Array {
    return this.segments[row >>> segmentShift]!
  }

  offset(row: number): number {
    return (row & segmentMask) * this.stride
  }

  /** Appends a zeroed row and returns its index. */
  append(): number {
    const row = this.count
    assert(row < this.rowsMax, () => `table full: ${this.rowsMax} rows`)
    if ((row >>> segmentShift) === this.segments.length) {
      this.segments.push(new Uint32Array(segmentRows * this.stride))
    }
    if (row < this.written) {
      const offset = this.offset(row)
      this.array(row).fill(0, offset, offset + this.stride)
    } else {
      this.written = row + 1
    }
    this.count = row + 1
    return row
  }

  /** Drops the newest rows so that `count` remain. */
  truncate(count: number): void {
    assert(count >= 0 && count <= this.count, () => `truncate to ${count} of ${this.count}`)
    this.count = count
  }
}

/** Copies `count` words between typed arrays without creating a view per call (hot path). */
export function copyWords(target: Uint32Array, to: number, source: Uint32Array, from: number, count: number): void {
  for (let w = 0; w < count; w++) target[to + w] = source[from + w]!
}
