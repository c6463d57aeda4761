/**
 * A table of fixed-size rows of u32 words, grown in fixed-size segments so that growth never
 * copies what is already stored and never needs one huge allocation.
 *
 * Rows are appended in order and only the newest rows are ever removed (when a linked chain
 * rolls back), so a row index is stable for as long as the row exists.
 *
 * A table whose rows change after they are appended says so with `markChanged`: a checkpoint
 * rewrites only the snapshot blocks that hold new or changed rows (tracked per 16 rows, finer
 * than any block).
 */
import { assert } from "../assert.ts"

const segmentShift = 12
const segmentRows = 1 << segmentShift
const segmentMask = segmentRows - 1
const changeShift = 4

export class RecordTable {
  readonly stride: number
  readonly rowsMax: number
  readonly segments: Array<Uint32Array> = []
  count = 0
  /** Rows at or above this were never written: fresh segments are already zero. */
  private written = 0
  /** Per group of 2^changeShift rows: a row in it changed since the last `clearChanged`. */
  private changed = new Uint8Array(16)

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

  /** Notes that `row`, already stored, changed (its block must be rewritten at the next checkpoint). */
  markChanged(row: number): void {
    assert(row < this.count, () => `row ${row} of ${this.count} changed`)
    const group = row >>> changeShift
    if (group >= this.changed.length) {
      const grown = new Uint8Array(Math.max(group + 1, this.changed.length * 2))
      grown.set(this.changed)
      this.changed = grown
    }
    this.changed[group] = 1
  }

  /** Whether a row in [first, first + count) may have changed since `clearChanged`. */
  changedIn(first: number, count: number): boolean {
    if (count === 0) return false
    for (let group = first >>> changeShift; group <= (first + count - 1) >>> changeShift; group++) {
      if (this.changed[group] === 1) return true
    }
    return false
  }

  clearChanged(): void {
    this.changed.fill(0)
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
