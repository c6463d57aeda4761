/**
 * Marzullo's algorithm (vsr.md §8.2): given an interval per clock source (the offset it may be
 * at, widened by its round trip and a tolerance), the narrowest interval that the most sources
 * agree on. Cluster time trusts the wall clock only within such an interval agreed by a quorum.
 *
 * Every interval gives two bounds, sorted by offset; at equal offsets a lower bound comes before
 * an upper one (intervals that only touch overlap), then by source, so the order is total and
 * every replica computes the same result from the same samples.
 */
import { assert } from "../assert.ts"

export interface SourceInterval {
  readonly source: number
  /** The bounds of the offset (ns); `lower <= upper`. */
  readonly lower: number
  readonly upper: number
}

export interface Agreement {
  readonly lower: number
  readonly upper: number
  /** Sources whose interval contains [lower, upper]. */
  readonly sourcesTrue: number
  /** The others. */
  readonly sourcesFalse: number
}

interface Bound {
  readonly source: number
  readonly offset: number
  readonly upper: boolean
}

/** The narrowest interval the largest number of `intervals` overlap on; nothing agrees on no sources. */
export function smallestInterval(intervals: ReadonlyArray<SourceInterval>): Agreement {
  assert(intervals.every((interval) => interval.lower <= interval.upper), () => "every interval's lower bound is at most its upper")
  assert(new Set(intervals.map((interval) => interval.source)).size === intervals.length, () => "one interval per source")
  if (intervals.length === 0) return { lower: 0, upper: 0, sourcesTrue: 0, sourcesFalse: 0 }
  const bounds: Array<Bound> = intervals.flatMap((interval) => [
    { source: interval.source, offset: interval.lower, upper: false },
    { source: interval.source, offset: interval.upper, upper: true }
  ])
  bounds.sort((a, b) => a.offset - b.offset || Number(a.upper) - Number(b.upper) || a.source - b.source)
  let best = 0
  let count = 0
  let lower = 0
  let upper = 0
  for (let i = 0; i < bounds.length; i++) {
    const bound = bounds[i]!
    count += bound.upper ? -1 : 1
    // The last bound is an upper one, with a count below any best: `next` exists whenever it is read.
    const next = bounds[i + 1]
    if (count > best) {
      best = count
      lower = bound.offset
      upper = next!.offset
    } else if (count === best && next?.upper === true && next.offset - bound.offset < upper - lower) {
      // As many sources, on a narrower interval.
      lower = bound.offset
      upper = next.offset
    }
  }
  assert(count === 0, () => "every interval opened is closed")
  assert(best <= intervals.length, () => "no more sources agree than there are")
  return { lower, upper, sourcesTrue: best, sourcesFalse: intervals.length - best }
}
