/**
 * A backup's log above its commit (vsr.md §3.5, §3.8, §5): one place per op from `commit + 1` up
 * to the head, the newest op the primary is known to have prepared. A place may be empty (a gap:
 * no header yet), hold a header alone (repair fetches its prepare: vsr.md §5.3), or a prepare
 * being written or durable in the journal (only then is it acknowledged and may it be committed),
 * with the prepare itself while it fits the cache (vsr.md §1.5's pipeline cache); a prepare that
 * did not fit is read back from the journal when its turn to commit comes. The log spans at most
 * the journal's ops, so its places are bounded by the journal; its prepares by `cacheMax`.
 */
import { assert } from "../assert.ts"
import { headerSize, PrepareLayout, readU64Number, u128Equal } from "../protocol/header.ts"

export interface LogEntry {
  readonly op: number
  /** The prepare's header (a copy): its checksum names it, its operation tells a read from a write. */
  readonly header: Uint8Array
  /** The whole prepare while cached; `undefined` once it must be read from the journal (or before it arrived). */
  prepare: Uint8Array | undefined
  /** The prepare went to the journal; false while only its header is known and repair fetches it. */
  written: boolean
  /** The journal write is done: the prepare may be acknowledged and committed. */
  durable: boolean
}

export class BackupLog {
  /** Prepares kept in memory; the rest are read back from the journal. */
  readonly cacheMax: number
  /** The op of the first place (`commit + 1`). */
  private base: number
  /** Places from `base` on; `undefined` is a gap. */
  private readonly places: Array<LogEntry | undefined> = []
  private cached = 0

  constructor(cacheMax: number) {
    assert(Number.isInteger(cacheMax), () => `cacheMax ${cacheMax} is not an integer`)
    assert(cacheMax > 0, () => `cacheMax ${cacheMax} is not positive`)
    this.cacheMax = cacheMax
    this.base = 1
  }

  /** Places from `commit + 1` to the head, gaps included. */
  get length(): number {
    return this.places.length
  }

  /** Restarts the log empty after op `commit` (recovery moved the commit; no place is held). */
  reset(commit: number): void {
    assert(this.places.length === 0, () => "the log is reset only while empty")
    assert(commit >= 0, () => `commit ${commit} is an op`)
    this.base = commit + 1
  }

  /** The place of the next op to commit, if it holds a header. */
  first(): LogEntry | undefined {
    return this.places[0]
  }

  /** The head moves on to `op`, leaving gaps on the way (the caller sets the head's place next). */
  reach(op: number): void {
    assert(op >= this.base + this.places.length - 1, () => `the head never moves back (to op ${op})`)
    while (this.base + this.places.length <= op) this.places.push(undefined)
    assert(this.base + this.places.length - 1 === op, () => `the log reaches op ${op}`)
  }

  /**
   * Sets op's place to its header (the caller checked the chain): `durable` when the journal holds
   * its prepare already (recovered at startup), else repair fetches it. The place must be empty.
   */
  setHeader(header: Uint8Array, durable: boolean): LogEntry {
    assert(header.length >= headerSize, () => "a header is 256 bytes")
    const op = readU64Number(header, PrepareLayout.op.offset)
    const index = op - this.base
    assert(index >= 0, () => `op ${op} is below the log`)
    assert(index < this.places.length, () => `op ${op} is beyond the head`)
    assert(this.places[index] === undefined, () => `op ${op}'s place is taken`)
    const entry: LogEntry = { op, header: header.slice(0, headerSize), prepare: undefined, written: durable, durable }
    this.places[index] = entry
    return entry
  }

  /**
   * Puts an entry back in its op's empty place as it is (a view change keeps what it knew of a
   * prepare: whether it was written, durable, cached); a cached prepare counts against the cache,
   * and is let go if the cache is full (the journal still holds it once written).
   */
  restore(entry: LogEntry): void {
    const index = entry.op - this.base
    assert(index >= 0, () => `op ${entry.op} is above the log's base`)
    assert(index < this.places.length, () => `op ${entry.op} is within the log's reach`)
    assert(this.places[index] === undefined, () => `op ${entry.op}'s place is taken`)
    if (entry.prepare !== undefined && (this.cached === this.cacheMax || !entry.written)) entry.prepare = undefined
    if (entry.prepare !== undefined) this.cached += 1
    this.places[index] = entry
    assert(this.cached <= this.cacheMax, () => "the cache holds at most cacheMax prepares")
  }

  /** Empties the log (a view change installs another): its entries by op, gaps left out; the log starts again after the commit. */
  takeAll(): Map<number, LogEntry> {
    const entries = new Map<number, LogEntry>()
    for (const entry of this.places) if (entry !== undefined) entries.set(entry.op, entry)
    this.places.length = 0
    this.cached = 0
    assert(this.places.length === 0, () => "the log is empty")
    assert([...entries.values()].every((entry) => entry.op >= this.base), () => "every entry was above the commit")
    return entries
  }

  /** The prepare of an entry known by its header goes to the journal now; it is cached if there is room. */
  fill(entry: LogEntry, prepare: Uint8Array): void {
    assert(!entry.written, () => `op ${entry.op} is written once`)
    assert(this.holds(entry, prepare), () => `op ${entry.op}: the prepare is the one the header names`)
    assert(this.cached <= this.cacheMax, () => "the cache holds at most cacheMax prepares")
    entry.written = true
    if (this.cached === this.cacheMax) return
    this.cached += 1
    entry.prepare = prepare
  }

  /** The oldest places known by their header alone, up to `limit`: those repair fetches first. */
  missing(limit: number): Array<LogEntry> {
    assert(limit >= 0, () => `limit ${limit} is not negative`)
    const found: Array<LogEntry> = []
    for (const entry of this.places) {
      if (found.length === limit) break
      if (entry !== undefined && !entry.written) found.push(entry)
    }
    assert(found.length <= limit, () => "no more than the limit")
    return found
  }

  /** The oldest empty place's op, or `undefined` when every place holds a header. */
  oldestGap(): number | undefined {
    const index = this.places.indexOf(undefined)
    if (index < 0) return undefined
    const op = this.base + index
    assert(this.find(op) === undefined, () => "a gap's place is empty")
    assert(index < this.places.length - 1, () => "the head's place is never empty")
    return op
  }

  find(op: number): LogEntry | undefined {
    assert(Number.isSafeInteger(op), () => `op ${op} is an integer`)
    if (op < this.base || op >= this.base + this.places.length) return undefined
    const entry = this.places[op - this.base]
    assert(entry === undefined || entry.op === op, () => "each place holds its own op")
    return entry
  }

  /** Whether `prepare` is the one the log holds for its op. */
  holds(entry: LogEntry, prepare: Uint8Array): boolean {
    assert(prepare.length >= headerSize, () => "a prepare is at least a header")
    assert(entry.header.length === headerSize, () => "the log holds the whole header")
    return u128Equal(entry.header, 0, prepare, 0)
  }

  /** Removes the oldest place, which has just committed. */
  shift(): LogEntry {
    const entry = this.places.shift()
    assert(entry !== undefined, () => "a commit from an empty place")
    assert(entry.durable, () => `op ${entry.op} commits before its journal write is durable`)
    this.base += 1
    if (entry.prepare !== undefined) this.cached -= 1
    assert(this.cached >= 0, () => "the cache counts the prepares it holds")
    return entry
  }
}
