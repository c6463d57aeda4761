/**
 * A backup's log above its commit (vsr.md §3.5, §3.8): the ops it accepted and has not committed
 * yet, consecutive and hash-chained, each with its header; whether its prepare went to the
 * journal (a header repaired from a peer arrives first, its prepare later: vsr.md §5.3) and
 * whether that write is durable (only then is it acknowledged and may it be committed); and the
 * prepare itself while it fits the cache (vsr.md §1.5's pipeline cache). A prepare that did not
 * fit is read back from the journal when its turn to commit comes. The log holds at most the
 * journal's ops, so its headers are bounded by the journal; its prepares by `cacheMax`.
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
  private readonly entries: Array<LogEntry> = []
  private cached = 0

  constructor(cacheMax: number) {
    assert(Number.isInteger(cacheMax), () => `cacheMax ${cacheMax} is not an integer`)
    assert(cacheMax > 0, () => `cacheMax ${cacheMax} is not positive`)
    this.cacheMax = cacheMax
  }

  get length(): number {
    return this.entries.length
  }

  /** The oldest entry, the next to commit. */
  first(): LogEntry | undefined {
    return this.entries[0]
  }

  /** Appends the prepare of the op after the newest, being written to the journal (the caller checked the chain). */
  append(prepare: Uint8Array): LogEntry {
    assert(prepare.length >= headerSize, () => "a prepare is at least a header")
    const entry = this.appendHeader(prepare.subarray(0, headerSize), false)
    this.fill(entry, prepare)
    assert(entry.written, () => "an appended prepare is being written")
    return entry
  }

  /**
   * Appends the op after the newest by its header alone (the caller checked the chain): `durable`
   * when the journal holds its prepare already (recovered at startup), else repair fetches it.
   */
  appendHeader(header: Uint8Array, durable: boolean): LogEntry {
    assert(header.length >= headerSize, () => "a header is 256 bytes")
    const op = readU64Number(header, PrepareLayout.op.offset)
    const last = this.entries.at(-1)
    assert(last === undefined || op === last.op + 1, () => `op ${op} after op ${last?.op}`)
    const entry: LogEntry = { op, header: header.slice(0, headerSize), prepare: undefined, written: durable, durable }
    this.entries.push(entry)
    return entry
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

  /** The oldest ops known by their header alone, up to `limit`: those repair fetches first. */
  missing(limit: number): Array<LogEntry> {
    assert(limit >= 0, () => `limit ${limit} is not negative`)
    const found: Array<LogEntry> = []
    for (const entry of this.entries) {
      if (found.length === limit) break
      if (!entry.written) found.push(entry)
    }
    assert(found.length <= limit, () => "no more than the limit")
    return found
  }

  find(op: number): LogEntry | undefined {
    assert(Number.isSafeInteger(op), () => `op ${op} is an integer`)
    const first = this.entries[0]
    if (first === undefined || op < first.op || op >= first.op + this.entries.length) return undefined
    const entry = this.entries[op - first.op]!
    assert(entry.op === op, () => "the log's ops are consecutive")
    return entry
  }

  /** Whether `prepare` is the one the log holds for its op. */
  holds(entry: LogEntry, prepare: Uint8Array): boolean {
    assert(prepare.length >= headerSize, () => "a prepare is at least a header")
    assert(entry.header.length === headerSize, () => "the log holds the whole header")
    return u128Equal(entry.header, 0, prepare, 0)
  }

  /** Removes the oldest entry, which has just committed. */
  shift(): LogEntry {
    const entry = this.entries.shift()
    assert(entry !== undefined, () => "a commit from an empty log")
    assert(entry.durable, () => `op ${entry.op} commits before its journal write is durable`)
    if (entry.prepare !== undefined) this.cached -= 1
    assert(this.cached >= 0, () => "the cache counts the prepares it holds")
    return entry
  }
}
