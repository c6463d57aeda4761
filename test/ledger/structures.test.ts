/**
 * The ledger's building blocks against obviously-correct models: u128/u64 word arithmetic
 * against BigInt, the id index (with rollback removals) against a Map, posting lists against
 * arrays, the expiry queue against a sorted array.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ExpiryQueue } from "../../src/ledger/expiry_queue.ts"
import { IdIndex } from "../../src/ledger/id_index.ts"
import { PostingLists } from "../../src/ledger/posting_lists.ts"
import { RecordTable } from "../../src/ledger/record_table.ts"
import {
  add128, add64Small, addSecondsAsNs, compare128, isMax128, isZero128, saturatingSub128, sub128, sub64Small, toBigInt64,
  u64Result, wideAdd128, wideSub128
} from "../../src/ledger/u128.ts"

const u128 = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  fc.constantFrom(0n, 1n, (1n << 32n) - 1n, 1n << 32n, (1n << 64n) - 1n, (1n << 128n) - 1n, (1n << 128n) - 2n)
)
const max128 = (1n << 128n) - 1n

const words = (...values: Array<bigint>): Uint32Array => {
  const array = new Uint32Array(values.length * 4)
  values.forEach((value, i) => {
    for (let w = 0; w < 4; w++) array[i * 4 + w] = Number((value >> BigInt(32 * w)) & 0xffff_ffffn)
  })
  return array
}
const read128 = (array: Uint32Array, o: number): bigint =>
  [0, 1, 2, 3].reduce((sum, w) => sum | (BigInt(array[o + w]!) << BigInt(32 * w)), 0n)

describe("u128 words", () => {
  it("add128 matches BigInt and reports overflow exactly", () => {
    fc.assert(fc.property(u128, u128, (a, b) => {
      const array = words(a, b, 0n)
      const overflow = add128(array, 8, array, 0, array, 4)
      expect(overflow).toBe(a + b > max128)
      expect(read128(array, 8)).toBe((a + b) & max128)
    }))
  })

  it("sub128, saturatingSub128 and compare128 match BigInt", () => {
    fc.assert(fc.property(u128, u128, (a, b) => {
      const array = words(a, b, 0n)
      expect(compare128(array, 0, array, 4)).toBe(a < b ? -1 : a > b ? 1 : 0)
      saturatingSub128(array, 8, array, 0, array, 4)
      expect(read128(array, 8)).toBe(a > b ? a - b : 0n)
      if (a >= b) {
        sub128(array, 8, array, 0, array, 4)
        expect(read128(array, 8)).toBe(a - b)
      } else {
        expect(() => sub128(array, 8, array, 0, array, 4)).toThrow(/underflow/)
      }
    }))
  })

  it("isZero128 and isMax128 see every word", () => {
    fc.assert(fc.property(u128, (a) => {
      const array = words(a)
      expect(isZero128(array, 0)).toBe(a === 0n)
      expect(isMax128(array, 0)).toBe(a === max128)
    }))
  })

  it("wide accumulators sum past 2^128 and come back", () => {
    fc.assert(fc.property(fc.array(u128, { maxLength: 20 }), (values) => {
      const total = new Uint32Array(6)
      for (const value of values) wideAdd128(total, 0, words(value), 0)
      const sum = values.reduce((a, b) => a + b, 0n)
      const read = [0, 1, 2, 3, 4, 5].reduce((s, w) => s | (BigInt(total[w]!) << BigInt(32 * w)), 0n)
      expect(read).toBe(sum)
      for (const value of values) wideSub128(total, 0, words(value), 0)
      expect([...total]).toEqual([0, 0, 0, 0, 0, 0])
    }))
  })

  it("u64 timestamp helpers match BigInt", () => {
    const u63 = fc.bigInt({ min: 0n, max: (1n << 63n) - 1n })
    fc.assert(fc.property(u63, fc.integer({ min: 0, max: 0xffff_ffff }), (t, n) => {
      const hi = Number(t >> 32n), lo = Number(t & 0xffff_ffffn)
      add64Small(hi, lo, n)
      expect(toBigInt64(u64Result[0]!, u64Result[1]!)).toBe(t + BigInt(n))
      addSecondsAsNs(hi, lo, n)
      expect(toBigInt64(u64Result[0]!, u64Result[1]!)).toBe(t + BigInt(n) * 1_000_000_000n)
      if (t >= BigInt(n)) {
        sub64Small(hi, lo, n)
        expect(toBigInt64(u64Result[0]!, u64Result[1]!)).toBe(t - BigInt(n))
      }
    }))
  })
})

describe("IdIndex", () => {
  it("agrees with a Map through inserts, growth and rollback removals", () => {
    const id = fc.oneof(fc.bigInt({ min: 1n, max: 200n }), fc.bigInt({ min: 1n, max: max128 }), fc.bigInt({ min: 0n, max: 3n }).map((k) => k << 96n))
    const op = fc.oneof(
      fc.record({ kind: fc.constant("insert" as const), id }),
      fc.record({ kind: fc.constant("rollback" as const), count: fc.integer({ min: 0, max: 30 }) })
    )
    fc.assert(fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
      const index = new IdIndex(4096)
      const model = new Map<bigint, number>()
      const order: Array<bigint> = []
      for (const step of ops) {
        if (step.kind === "insert") {
          if (model.has(step.id)) continue
          index.insert(words(step.id), 0, order.length)
          model.set(step.id, order.length)
          order.push(step.id)
        } else {
          for (let k = 0; k < step.count && order.length > 0; k++) {
            const removed = order.pop()!
            index.remove(words(removed), 0)
            model.delete(removed)
          }
        }
        expect(index.count).toBe(model.size)
      }
      for (const [key, value] of model) expect(index.find(words(key), 0)).toBe(value)
      for (let probe = 0n; probe < 50n; probe++) if (!model.has(probe)) expect(index.find(words(probe), 0)).toBe(-1)
    }), { numRuns: 60 })
  })

  it("keeps every id through several doublings and removes them newest first", () => {
    const index = new IdIndex(20_000)
    const ids = Array.from({ length: 10_000 }, (_, i) => (BigInt(i) * 0x9e37_79b9_7f4a_7c15n) & max128)
    ids.forEach((id, row) => index.insert(words(id + 1n), 0, row))
    ids.forEach((id, row) => expect(index.find(words(id + 1n), 0)).toBe(row))
    for (let row = ids.length - 1; row >= 5_000; row--) index.remove(words(ids[row]! + 1n), 0)
    ids.forEach((id, row) => expect(index.find(words(id + 1n), 0)).toBe(row < 5_000 ? row : -1))
    expect(index.count).toBe(5_000)
  })

  it("refuses a second insert of the same id", () => {
    const index = new IdIndex(16)
    index.insert(words(7n), 0, 0)
    expect(() => index.insert(words(7n), 0, 1)).toThrow(/twice/)
  })
})

describe("PostingLists", () => {
  it("agree with arrays through appends, pops, releases and binary search", () => {
    const op = fc.record({ list: fc.integer({ min: 0, max: 7 }), pop: fc.boolean() })
    fc.assert(fc.property(fc.array(op, { maxLength: 600 }), (ops) => {
      const lists = new PostingLists(10_000)
      const meta = new Uint32Array(8 * 3)
      const model: Array<Array<number>> = Array.from({ length: 8 }, () => [])
      let row = 0
      for (const { list, pop } of ops) {
        const entries = model[list]!
        if (pop && entries.length > 0) lists.pop(meta, list * 3, entries.pop()!)
        else {
          row += 1 + (row % 3)
          lists.append(meta, list * 3, row)
          entries.push(row)
        }
      }
      model.forEach((entries, list) => {
        expect(lists.length(meta, list * 3)).toBe(entries.length)
        entries.forEach((entry, i) => expect(lists.get(meta, list * 3, i)).toBe(entry))
        for (const probe of [0, 5, row / 2, row + 1]) {
          expect(lists.lowerBound(meta, list * 3, probe)).toBe(entries.filter((entry) => entry < probe).length)
        }
        while (entries.length > 0) lists.pop(meta, list * 3, entries.pop()!)
        lists.release(meta, list * 3)
        expect(meta[list * 3 + 2]).toBe(0)
      })
    }), { numRuns: 60 })
  })
})

describe("PostingLists across chunks", () => {
  it("keeps lists that cross chunk boundaries and one longer than a chunk (its own chunk)", () => {
    const lists = new PostingLists(4_000_000)
    const long = new Uint32Array(3)
    const many = new Uint32Array(3000 * 3)
    let row = 0
    // Interleave so that blocks of many lists are moved (doubled) into fresh chunks over time.
    for (let round = 0; round < 500; round++) {
      for (let list = 0; list < 3000; list++) lists.append(many, list * 3, row++)
      for (let k = 0; k < 3000; k++) lists.append(long, 0, row++)
    }
    expect(lists.length(long, 0)).toBe(1_500_000)
    for (const i of [0, 1, 2999, 3000, 1_048_575, 1_048_576, 1_499_999]) {
      const round = Math.floor(i / 3000)
      expect(lists.get(long, 0, i)).toBe(round * 6000 + 3000 + (i % 3000))
    }
    for (const list of [0, 1, 1500, 2999]) {
      expect(lists.length(many, list * 3)).toBe(500)
      for (const i of [0, 1, 250, 499]) expect(lists.get(many, list * 3, i)).toBe(i * 6000 + list)
      expect(lists.lowerBound(many, list * 3, 250 * 6000 + list)).toBe(250)
    }
    expect(lists.lowerBound(long, 0, 6000 * 400)).toBe(400 * 3000)
  })
})

describe("ExpiryQueue", () => {
  it("pops in (expires_at, timestamp) order", () => {
    const entry = fc.record({ expires: fc.bigInt({ min: 1n, max: 1n << 40n }), timestamp: fc.bigInt({ min: 1n, max: 1n << 40n }) })
    fc.assert(fc.property(fc.uniqueArray(entry, { selector: (e) => e.timestamp, maxLength: 200 }), (entries) => {
      const queue = new ExpiryQueue(1000)
      entries.forEach((e, row) => queue.push(Number(e.expires >> 32n), Number(e.expires & 0xffff_ffffn), Number(e.timestamp >> 32n), Number(e.timestamp & 0xffff_ffffn), row))
      const sorted = entries.map((e, row) => ({ ...e, row }))
        .sort((a, b) => (a.expires === b.expires ? Number(a.timestamp - b.timestamp) : Number(a.expires - b.expires)))
      for (const expected of sorted) {
        expect(queue.topRow()).toBe(expected.row)
        expect(toBigInt64(queue.topExpiresHi(), queue.topExpiresLo())).toBe(expected.expires)
        queue.pop()
      }
      expect(queue.count).toBe(0)
    }), { numRuns: 100 })
  })
})

describe("RecordTable", () => {
  it("hands out zeroed rows, also after truncation, across segments", () => {
    const table = new RecordTable(3, 10_000)
    for (let i = 0; i < 5000; i++) {
      const row = table.append()
      expect(row).toBe(i)
      table.array(row).fill(i + 1, table.offset(row), table.offset(row) + 3)
    }
    table.truncate(4000)
    const row = table.append()
    expect(row).toBe(4000)
    expect([...table.array(row).subarray(table.offset(row), table.offset(row) + 3)]).toEqual([0, 0, 0])
    expect(table.array(3999)[table.offset(3999)]).toBe(4000)
  })

  it("refuses rows past its limit", () => {
    const table = new RecordTable(1, 2)
    table.append()
    table.append()
    expect(() => table.append()).toThrow(/table full/)
  })
})
