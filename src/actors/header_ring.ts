/**
 * The headers of the prepares in this replica's journal, one per slot (slot = op mod slot count),
 * as the core knows them: recovered at startup, then set as each prepare is written or each
 * repaired header is accepted. It answers peers' `get_headers` (vsr.md §5.2) and resolves a
 * `get_prepare` that names no checksum (§5.3) without touching the disk. 256 bytes per slot.
 */
import { assert } from "../assert.ts"
import { Command, FrameLayout, headerSize, PrepareLayout, readU64Number } from "../protocol/header.ts"

export class HeaderRing {
  readonly slotCount: number
  private readonly headers: Uint8Array
  /** Which slots hold a header (a fresh ring holds none). */
  private readonly present: Uint8Array

  constructor(slotCount: number) {
    assert(Number.isInteger(slotCount), () => `slot count ${slotCount} is not an integer`)
    assert(slotCount > 0, () => "a journal has slots")
    this.slotCount = slotCount
    this.headers = new Uint8Array(slotCount * headerSize)
    this.present = new Uint8Array(slotCount)
  }

  /** Sets the header of a prepare in its op's slot, replacing what an older wrap left there. */
  set(header: Uint8Array): void {
    assert(header.length >= headerSize, () => "a header is 256 bytes")
    assert(header[FrameLayout.command.offset] === Command.prepare, () => "the ring holds prepares' headers")
    const op = readU64Number(header, PrepareLayout.op.offset)
    const slot = op % this.slotCount
    this.headers.set(header.subarray(0, headerSize), slot * headerSize)
    this.present[slot] = 1
    assert(this.get(op) !== undefined, () => `op ${op}: the header just set is found`)
  }

  /** Forgets the header of `op`, if its slot holds that op's: a view change truncated it, or replaced it. */
  remove(op: number): void {
    assert(Number.isSafeInteger(op), () => `op ${op} is an integer`)
    if (this.get(op) !== undefined) this.present[op % this.slotCount] = 0
    assert(this.get(op) === undefined, () => `op ${op} is forgotten`)
  }

  /** The header of `op`, if its slot holds that op's (not an older or newer wrap's). */
  get(op: number): Uint8Array | undefined {
    assert(Number.isSafeInteger(op), () => `op ${op} is an integer`)
    assert(op >= 0, () => `op ${op} is not negative`)
    const slot = op % this.slotCount
    if (this.present[slot] === 0) return undefined
    const header = this.headers.subarray(slot * headerSize, (slot + 1) * headerSize)
    return readU64Number(header, PrepareLayout.op.offset) === op ? header : undefined
  }

  /** Up to `limit` headers the ring holds with op in [opMin, opMax], newest first (copies). */
  newest(opMin: number, opMax: number, limit: number): Array<Uint8Array> {
    assert(opMin <= opMax, () => `ops ${opMin}..${opMax} are empty`)
    assert(limit > 0, () => "at least one header is asked for")
    const found: Array<Uint8Array> = []
    // The ring holds at most one header per slot: a wider range repeats slots.
    const low = Math.max(opMin, opMax - this.slotCount + 1)
    for (let op = opMax; op >= low && found.length < limit; op--) {
      const header = this.get(op)
      if (header !== undefined) found.push(header.slice())
    }
    assert(found.length <= limit, () => "no more headers than asked for")
    return found
  }
}
