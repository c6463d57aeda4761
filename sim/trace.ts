/**
 * The trace hash (simulation.md §1.3): every delivered message, I/O completion and replica event
 * is folded into one running 64-bit hash (two 32-bit FNV-1a lanes with different offsets), printed
 * at the end of a run. Two runs of one seed must print the same hash.
 */
export class TraceHash {
  private a = 0x811c9dc5
  private b = 0x050c5d1f
  /** Events folded so far. */
  events = 0

  /** Folds a small tag and numbers (each taken as a u32; larger values fold both halves). */
  add(tag: number, ...values: ReadonlyArray<number>): void {
    this.events++
    this.word(tag)
    for (const value of values) {
      this.word(value >>> 0)
      if (value > 0xffffffff) this.word(Math.floor(value / 0x100000000) >>> 0)
    }
  }

  /** Folds `bytes[start, end)`, typically a message's 16-byte checksum. */
  addBytes(tag: number, bytes: Uint8Array, start: number, end: number): void {
    this.events++
    this.word(tag)
    for (let i = start; i < end; i++) this.byte(bytes[i]!)
  }

  hex(): string {
    return (this.a >>> 0).toString(16).padStart(8, "0") + (this.b >>> 0).toString(16).padStart(8, "0")
  }

  private word(value: number): void {
    this.byte(value & 0xff)
    this.byte((value >>> 8) & 0xff)
    this.byte((value >>> 16) & 0xff)
    this.byte(value >>> 24)
  }

  private byte(value: number): void {
    this.a = Math.imul(this.a ^ value, 0x01000193)
    this.b = Math.imul(this.b ^ value, 0x01000193) ^ (this.a >>> 15)
  }
}

/** Tags of traced events. */
export const Trace = {
  deliverToReplica: 1,
  deliverToClient: 2,
  drop: 3,
  duplicate: 4,
  corrupt: 5,
  diskWrite: 6,
  diskRead: 7,
  reply: 8,
  crash: 9,
  restart: 10,
  request: 11,
  closed: 12,
  eviction: 13,
  pause: 14,
  deliverBetweenReplicas: 15,
  /** A replica's wall clock jumps (sim/clock_jumps.ts). */
  clockJump: 16,
  /** A partition starts (sim/partitions.ts), heals, and loses a packet on a link it cut. */
  partition: 17,
  partitionHeal: 18,
  partitionDrop: 19,
  /** A replica reports its status, view and primary (the core's StatusChanged). */
  status: 20
} as const

/**
 * The tag of an event at replica `replica`: the replica's index rides above the tag's low byte,
 * so replica 0's events keep their bare tags (a single-replica run hashes as it always did).
 */
export function atReplica(tag: number, replica: number): number {
  return tag | (replica << 8)
}
