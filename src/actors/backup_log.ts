/**
 * A backup's log above its commit (vsr.md §3.5, §3.8): the prepares it accepted from the primary
 * and has not committed yet, consecutive and hash-chained, each with its header, whether its
 * journal write is durable (only then is it acknowledged and may it be committed), and the
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
  /** The whole prepare while cached; `undefined` once it must be read from the journal. */
  prepare: Uint8Array | undefined
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

  /** Appends the prepare of the op after the newest (the caller checked the chain). */
  append(prepare: Uint8Array): LogEntry {
    assert(prepare.length >= headerSize, () => "a prepare is at least a header")
    const op = readU64Number(prepare, PrepareLayout.op.offset)
    const last = this.entries.at(-1)
    assert(last === undefined || op === last.op + 1, () => `op ${op} after op ${last?.op}`)
    assert(this.cached <= this.cacheMax, () => "the cache holds at most cacheMax prepares")
    const keep = this.cached < this.cacheMax
    if (keep) this.cached += 1
    const entry: LogEntry = { op, header: prepare.slice(0, headerSize), prepare: keep ? prepare : undefined, durable: false }
    this.entries.push(entry)
    return entry
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
