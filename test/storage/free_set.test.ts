/**
 * The free set (storage.md §6.4, `src/storage/free_set.ts`) and the EWAH code its bitsets are
 * stored in (`src/storage/ewah.ts`):
 * - EWAH: the marker layout pinned by golden bytes, round trips of random run-structured bitsets,
 *   trailing zeros never encoded (so any bitset size gives the same bytes), decoding into a
 *   larger bitset, and malformed encodings rejected with a reason (never a crash);
 * - the free set: deterministic reservations (lowest free address inside disjoint stretches,
 *   cursor reset after the last forfeit, the storage limit), release before and after the
 *   checkpoint is durable, encode/decode with the trailer-block patching, highestAcquired, and a
 *   model-based property over random operation sequences.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { ewahDecode, ewahEncode } from "../../src/storage/ewah.ts"
import { FreeSet, type Reservation } from "../../src/storage/free_set.ts"
import { assertAborts } from "../aborts.ts"

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")

/** 64-bit words (as bigint) to the Uint32Array pairs the module uses. */
function bitsOf(words: ReadonlyArray<bigint>): Uint32Array {
  const bits = new Uint32Array(words.length * 2)
  words.forEach((w, i) => {
    bits[2 * i] = Number(w & 0xffff_ffffn)
    bits[2 * i + 1] = Number(w >> 32n)
  })
  return bits
}

/** Little-endian bytes of 64-bit words: the expected encoding, written out by hand. */
function bytesOf(words: ReadonlyArray<bigint>): string {
  const bytes = new Uint8Array(words.length * 8)
  const view = new DataView(bytes.buffer)
  words.forEach((w, i) => view.setBigUint64(8 * i, w, true))
  return hex(bytes)
}

/** A marker word: bit 0 the uniform bit, bits 1..31 the uniform count, bits 32..63 the literal count. */
const marker = (uniformBit: 0 | 1, uniformCount: number, literalCount: number): bigint =>
  BigInt(uniformBit) | (BigInt(uniformCount) << 1n) | (BigInt(literalCount) << 32n)

const ones = 0xffff_ffff_ffff_ffffn

// --- EWAH ----------------------------------------------------------------------------------------

describe("EWAH", () => {
  // Pins the stream format of §6.4 ([uniform bit:1][uniform count:31][literal count:32] from the
  // least significant bit, then the literals) with hand-written bytes.
  it("encodes the documented marker layout (golden bytes)", () => {
    const cases: ReadonlyArray<readonly [string, ReadonlyArray<bigint>, ReadonlyArray<bigint>]> = [
      ["empty", [], []],
      ["only zeros", [0n, 0n, 0n], []],
      ["one literal", [1n], [marker(0, 0, 1), 1n]],
      ["a run of ones", [ones, ones], [marker(1, 2, 0)]],
      ["zeros then a literal", [0n, 0n, 0n, 0x8000_0000_0000_0000n], [marker(0, 3, 1), 0x8000_0000_0000_0000n]],
      ["ones, literals, zeros, ones", [ones, 5n, 6n, 0n, 0n, ones, 0n],
        [marker(1, 1, 2), 5n, 6n, marker(0, 2, 0), marker(1, 1, 0)]],
      ["a literal between uniform runs", [0n, 7n, ones, ones, 9n], [marker(0, 1, 1), 7n, marker(1, 2, 1), 9n]],
      // A uniform run is never empty-with-bit-1: a literal first gives a zero uniform bit.
      ["literal then ones", [3n, ones], [marker(0, 0, 1), 3n, marker(1, 1, 0)]]
    ]
    for (const [name, words, expected] of cases) {
      assert.strictEqual(hex(ewahEncode(bitsOf(words))), bytesOf(expected), name)
      const decoded = new Uint32Array(words.length * 2)
      assert.isUndefined(ewahDecode(ewahEncode(bitsOf(words)), decoded), name)
      assert.deepStrictEqual(decoded, bitsOf(words), name)
    }
  })

  const word = fc.oneof(
    fc.constant(0n), fc.constant(ones),
    fc.bigInt({ min: 1n, max: ones - 1n }),
    fc.integer({ min: 0, max: 63 }).map((b) => 1n << BigInt(b))
  )
  const runs = fc.array(fc.record({ kind: fc.constantFrom("zeros", "ones", "literals"), length: fc.integer({ min: 1, max: 40 }), literal: word }), { maxLength: 12 })
  const bitsetOf = (rs: ReadonlyArray<{ kind: string; length: number; literal: bigint }>) =>
    rs.flatMap((r) => Array.from({ length: r.length }, (_, i) => (r.kind === "zeros" ? 0n : r.kind === "ones" ? ones : r.literal ^ BigInt(i))))

  // Proves decode(encode(x)) = x for bitsets built of runs of zero, one and literal words, that
  // the encoding never depends on trailing zero words (so the storage limit does not change the
  // bytes), and that decoding into a larger bitset gives the same bits followed by zeros.
  it("round-trips random run-structured bitsets; trailing zeros change nothing (property)", () => {
    fc.assert(fc.property(runs, fc.integer({ min: 0, max: 50 }), (rs, extra) => {
      const words = bitsetOf(rs)
      const bits = bitsOf(words)
      const encoded = ewahEncode(bits)
      assert.strictEqual(encoded.length % 8, 0)
      const decoded = new Uint32Array(bits.length)
      assert.isUndefined(ewahDecode(encoded, decoded))
      assert.deepStrictEqual(decoded, bits)
      // More zero words at the end: identical bytes.
      const padded = bitsOf([...words, ...new Array<bigint>(extra).fill(0n)])
      assert.strictEqual(hex(ewahEncode(padded)), hex(encoded))
      // Decoding into a larger target, even one full of garbage: the same bits, then zeros.
      const larger = new Uint32Array(bits.length + 2 * extra + 2).fill(0xdead_beef)
      assert.isUndefined(ewahDecode(encoded, larger))
      assert.deepStrictEqual(larger.subarray(0, bits.length), bits)
      assert.isTrue(larger.subarray(bits.length).every((w) => w === 0))
      // The encoding is never longer than one marker per literal word plus the literals.
      const literals = words.filter((w) => w !== 0n && w !== ones).length
      assert.isAtMost(encoded.length / 8, 2 * literals + words.length + 1)
    }), { numRuns: 500 })
  })

  it("compresses: uniform runs cost one marker word", () => {
    const words = [...new Array<bigint>(10_000).fill(ones), ...new Array<bigint>(10_000).fill(0n), 1n]
    assert.strictEqual(hex(ewahEncode(bitsOf(words))), bytesOf([marker(1, 10_000, 0), marker(0, 10_000, 1), 1n]))
  })

  it("rejects malformed encodings with a reason", () => {
    const target = new Uint32Array(2 * 4)
    assert.match(ewahDecode(new Uint8Array(7), target) ?? "", /not a whole number of 64-bit words/)
    // A run of 5 words into a bitset of 4.
    assert.match(ewahDecode(hexBytes(bytesOf([marker(0, 5, 0)])), target) ?? "", /more words than the bitset has/)
    assert.match(ewahDecode(hexBytes(bytesOf([marker(1, 3, 2), 1n, 2n])), target) ?? "", /more words than the bitset has/)
    // Two literals promised, one present.
    assert.match(ewahDecode(hexBytes(bytesOf([marker(0, 1, 2), 1n])), target) ?? "", /promises more literal words than follow/)
    // Exactly filling the target is fine.
    assert.isUndefined(ewahDecode(hexBytes(bytesOf([marker(1, 2, 2), 1n, 2n])), target))
    assert.deepStrictEqual([...target], [0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 1, 0, 2, 0])
    // The empty encoding is the empty bitset, whatever the target held.
    target.fill(7)
    assert.isUndefined(ewahDecode(new Uint8Array(0), target))
    assert.isTrue(target.every((w) => w === 0))
  })

  // Corrupt input must give a reason or a bitset, never an exception or an out-of-bounds write.
  it("never throws on random bytes (property)", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), fc.integer({ min: 0, max: 8 }), (bytes, words) => {
      const target = new Uint32Array(2 * words)
      const result = ewahDecode(bytes, target)
      assert.isTrue(result === undefined || typeof result === "string")
      assert.strictEqual(target.length, 2 * words)
      // When it decodes, re-encoding and decoding again is a fixed point.
      if (result === undefined) {
        const again = new Uint32Array(2 * words)
        assert.isUndefined(ewahDecode(ewahEncode(target), again))
        assert.deepStrictEqual(again, target)
      }
    }), { numRuns: 2000 })
  })
})

function hexBytes(h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h, "hex"))
}

// --- the free set --------------------------------------------------------------------------------

/** Acquires `addresses` (ascending, from an empty set) through one reservation covering them. */
function acquireAll(set: FreeSet, addresses: ReadonlyArray<number>): void {
  const wanted = new Set(addresses)
  const r = set.reserve(Math.max(...addresses))!
  for (let a = 1; a <= Math.max(...addresses); a++) {
    const got = set.acquire(r)
    assert.strictEqual(got, a)
  }
  set.forfeit(r)
  // Give back the ones not wanted, through a full checkpoint cycle.
  for (let a = 1; a <= Math.max(...addresses); a++) if (!wanted.has(a)) set.release(a)
  set.markCheckpointNotDurable()
  set.markCheckpointDurable()
  assert.deepStrictEqual(set.acquiredAddresses(), [...addresses].sort((x, y) => x - y))
}

describe("free set: reservations (deterministic allocation)", () => {
  it("acquires the lowest free address inside its stretch, skipping acquired blocks", () => {
    const set = new FreeSet(100)
    acquireAll(set, [2, 3, 5, 8])
    const r = set.reserve(3)!
    // Free blocks from the cursor: 1, 4, 6 → the stretch is [0, 6) in block indexes.
    assert.deepStrictEqual({ start: r.start, end: r.end, remaining: r.remaining }, { start: 0, end: 6, remaining: 3 })
    assert.deepStrictEqual([set.acquire(r), set.acquire(r), set.acquire(r)], [1, 4, 6])
    assert.strictEqual(r.remaining, 0)
    assertAborts(() => set.acquire(r), "a fourth block from a reservation of three")
    set.forfeit(r)
  })

  it("hands out disjoint stretches in order; each acquires inside its own", () => {
    const set = new FreeSet(100)
    const a = set.reserve(4)!
    const b = set.reserve(2)!
    const c = set.reserve(3)!
    assert.deepStrictEqual([a.start, a.end, b.start, b.end, c.start, c.end], [0, 4, 4, 6, 6, 9])
    // Acquisition order across reservations does not change which address each one gets.
    assert.strictEqual(set.acquire(c), 7)
    assert.strictEqual(set.acquire(a), 1)
    assert.strictEqual(set.acquire(b), 5)
    assert.strictEqual(set.acquire(c), 8)
    assert.strictEqual(set.acquire(a), 2)
    for (const r of [a, b, c]) set.forfeit(r)
    assert.deepStrictEqual(set.acquiredAddresses(), [1, 2, 5, 7, 8])
  })

  it("resets the cursor when the last reservation is forfeited, and only then", () => {
    const set = new FreeSet(100)
    const a = set.reserve(3)!
    const b = set.reserve(3)!
    set.acquire(a)
    set.forfeit(a)
    // b is still open: the next stretch continues after b.
    const c = set.reserve(1)!
    assert.strictEqual(c.start, 6)
    set.acquire(b)
    set.forfeit(b)
    set.forfeit(c)
    // All forfeited: the stretch starts at the beginning again and the unused space of a, b
    // and c is free: two free blocks from there are 2 and 3 (1 is acquired).
    const d = set.reserve(2)!
    assert.deepStrictEqual([d.start, d.end], [0, 3])
    assert.deepStrictEqual([set.acquire(d), set.acquire(d)], [2, 3])
    set.forfeit(d)
    // A reservation of an earlier session is refused.
    assertAborts(() => set.acquire(a), "acquire from a forfeited reservation")
    assertAborts(() => set.forfeit(d), "forfeit with no reservation open")
  })

  it("returns undefined when the storage limit leaves fewer free blocks than asked", () => {
    // 70 blocks: the bitset has 128 bits, the 58 past the limit must never be handed out.
    const set = new FreeSet(70)
    assert.isUndefined(set.reserve(71))
    const r = set.reserve(70)!
    assert.strictEqual(r.end, 70)
    const got = Array.from({ length: 70 }, () => set.acquire(r))
    assert.deepStrictEqual(got, Array.from({ length: 70 }, (_, i) => i + 1))
    set.forfeit(r)
    assert.isUndefined(set.reserve(1))
    assert.strictEqual(set.count, 70)
    assert.strictEqual(set.highestAcquired(), 70)
    // With a reservation open, the rest of the space is what is left after its stretch.
    const small = new FreeSet(10)
    const first = small.reserve(6)!
    assert.isUndefined(small.reserve(5))
    assert.isDefined(small.reserve(4))
    small.forfeit(first)
  })

  it("refuses addresses out of range", () => {
    const set = new FreeSet(10)
    assertAborts(() => set.isAcquired(0), "address 0")
    assertAborts(() => set.isAcquired(11), "address past the limit")
    assertAborts(() => set.reserve(0), "reserve 0")
    assertAborts(() => new FreeSet(0), "empty free set")
  })

  // Determinism: two replicas applying the same operations get the same addresses.
  it("same operations, same addresses (property)", () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 8 }), fc.boolean()), { maxLength: 20 }), (jobs) => {
      const run = () => {
        const set = new FreeSet(200)
        const addresses: Array<number> = []
        // Reserve in job order, acquire interleaved in a fixed but scrambled order, forfeit.
        const reservations = jobs.map(([n]) => set.reserve(n))
        jobs.forEach(([, take], i) => {
          const r = reservations[i]
          if (r !== undefined) for (let k = 0; k < Math.min(take, r.remaining + 0); k++) addresses.push(set.acquire(r))
        })
        for (const r of reservations) if (r !== undefined) set.forfeit(r)
        jobs.forEach(([, , release], i) => { if (release && addresses[i] !== undefined) set.release(addresses[i]!) })
        return { addresses, acquired: set.acquiredAddresses(), encoded: hex(set.encode().acquired) + hex(set.encode().released) }
      }
      assert.deepStrictEqual(run(), run())
    }), { numRuns: 200 })
  })
})

describe("free set: release and checkpoint durability (§6.4)", () => {
  it("a block released while the checkpoint is durable is freed when the next one is durable", () => {
    const set = new FreeSet(64)
    acquireAll(set, [1, 2, 3])
    set.release(2)
    assert.isTrue(set.isAcquired(2) && set.isReleased(2), "released blocks stay acquired and readable")
    // The next checkpoint is written (not durable yet): still not free.
    set.markCheckpointNotDurable()
    assert.isTrue(set.isAcquired(2))
    const r = set.reserve(1)!
    assert.strictEqual(set.acquire(r), 4, "a released block is not reused before it is free")
    set.forfeit(r)
    set.markCheckpointDurable()
    assert.isFalse(set.isAcquired(2) || set.isReleased(2))
    assert.deepStrictEqual(set.acquiredAddresses(), [1, 3, 4])
    assert.strictEqual(set.count, 3)
  })

  it("a block released before the checkpoint is durable waits for the next checkpoint", () => {
    const set = new FreeSet(64)
    acquireAll(set, [1, 2, 3, 4])
    set.release(1)
    set.markCheckpointNotDurable()
    assert.isFalse(set.checkpointDurable)
    // Released between checkpoint Cn's write and its durability: Cn still references it.
    set.release(2)
    assert.isTrue(set.isReleased(2))
    set.markCheckpointDurable()
    assert.isTrue(set.checkpointDurable)
    assert.isFalse(set.isAcquired(1), "released before Cn was written: freed when Cn is durable")
    assert.isTrue(set.isAcquired(2) && set.isReleased(2), "released before Cn was durable: moved to released")
    set.markCheckpointNotDurable()
    assert.isTrue(set.isAcquired(2))
    set.markCheckpointDurable()
    assert.isFalse(set.isAcquired(2) || set.isReleased(2))
    assert.deepStrictEqual(set.acquiredAddresses(), [3, 4])
  })

  // Block 32 is bit 31 of the first 32-bit word, the sign bit of JavaScript's bitwise results:
  // freeing it (or 64, 96, …) must work like freeing any other block.
  it("frees blocks in the top bit of a word (addresses 32, 64, 96)", () => {
    const set = new FreeSet(128)
    acquireAll(set, [1, 31, 32, 33, 64, 96, 128])
    for (const a of [32, 64, 96, 128]) set.release(a)
    // What the durability op will free (the grid forgets these cached blocks first).
    assert.deepStrictEqual(set.freedAtDurable(), [32, 64, 96, 128])
    set.markCheckpointNotDurable()
    set.release(1) // released while not durable: freed one checkpoint later, not now
    assert.deepStrictEqual(set.freedAtDurable(), [32, 64, 96, 128])
    set.markCheckpointDurable()
    assert.deepStrictEqual(set.acquiredAddresses(), [1, 31, 33])
    assert.deepStrictEqual(set.freedAtDurable(), [1])
    assert.strictEqual(set.count, 3)
    // A whole word of 32 blocks freed at once: the count drops by 32.
    const full = new FreeSet(64)
    acquireAll(full, Array.from({ length: 64 }, (_, i) => i + 1))
    for (let a = 33; a <= 64; a++) full.release(a)
    full.markCheckpointNotDurable()
    full.markCheckpointDurable()
    assert.strictEqual(full.count, 32)
    assert.strictEqual(full.highestAcquired(), 32)
  })

  it("refuses double releases, releases of free blocks and out-of-order durability", () => {
    const set = new FreeSet(64)
    acquireAll(set, [1, 2])
    set.release(1)
    assertAborts(() => set.release(1), "released twice")
    assertAborts(() => set.release(5), "release of a free block")
    assertAborts(() => set.markCheckpointDurable(), "durable without a checkpoint written")
    set.markCheckpointNotDurable()
    assertAborts(() => set.release(1), "released twice across the durability change")
    assertAborts(() => set.markCheckpointNotDurable(), "two checkpoints written before one is durable")
    const r = set.reserve(1)!
    assertAborts(() => set.markCheckpointDurable(), "blocks freed while a reservation is open")
    set.forfeit(r)
    set.markCheckpointDurable()
    assert.isFalse(set.isAcquired(1))
  })
})

describe("free set: highestAcquired", () => {
  it("is 0 when empty and follows the highest acquired block across word boundaries", () => {
    for (const blocksMax of [1, 31, 32, 33, 64, 65, 200]) {
      const set = new FreeSet(blocksMax)
      assert.strictEqual(set.highestAcquired(), 0)
      const r = set.reserve(blocksMax)!
      for (let a = 1; a <= blocksMax; a++) {
        assert.strictEqual(set.acquire(r), a)
        assert.strictEqual(set.highestAcquired(), a, `${blocksMax}: ${a}`)
      }
      set.forfeit(r)
      // Free the highest ones: it goes down.
      set.release(blocksMax)
      if (blocksMax > 1) set.release(blocksMax - 1)
      set.markCheckpointNotDurable()
      set.markCheckpointDurable()
      assert.strictEqual(set.highestAcquired(), Math.max(0, blocksMax - 2))
    }
  })
})

describe("free set: encode and decode (§6.4)", () => {
  function sample(blocksMax: number): FreeSet {
    const set = new FreeSet(blocksMax)
    acquireAll(set, [1, 2, 3, 5, 40, 64, 65, 66, 100])
    set.release(3)
    set.release(65)
    return set
  }

  it("round-trips acquired and released blocks", () => {
    const set = sample(128)
    const { acquired, released } = set.encode()
    const decoded = FreeSet.decode(128, acquired, released, [], true)
    assert.instanceOf(decoded, FreeSet)
    const d = decoded as FreeSet
    assert.deepStrictEqual(d.acquiredAddresses(), set.acquiredAddresses())
    assert.strictEqual(d.count, set.count)
    assert.strictEqual(d.highestAcquired(), 100)
    for (let a = 1; a <= 128; a++) assert.strictEqual(d.isReleased(a), set.isReleased(a), `block ${a}`)
    assert.isTrue(d.checkpointDurable)
    // The decoded set behaves like the original: the released blocks are freed at durability.
    d.markCheckpointNotDurable()
    d.markCheckpointDurable()
    assert.deepStrictEqual(d.acquiredAddresses(), [1, 2, 5, 40, 64, 66, 100])
    // And encodes to the same bytes as the original would.
    set.markCheckpointNotDurable()
    set.markCheckpointDurable()
    assert.strictEqual(hex(d.encode().acquired), hex(set.encode().acquired))
  })

  it("encodes identically whatever the storage limit, and decodes into a larger one", () => {
    const small = sample(128).encode()
    const large = sample(100_000).encode()
    assert.strictEqual(hex(small.acquired), hex(large.acquired))
    assert.strictEqual(hex(small.released), hex(large.released))
    const decoded = FreeSet.decode(100_000, small.acquired, small.released, [], true) as FreeSet
    assert.deepStrictEqual(decoded.acquiredAddresses(), [1, 2, 3, 5, 40, 64, 65, 66, 100])
    // Into a smaller one that cannot address block 100: refused.
    assert.match(String(FreeSet.decode(99, small.acquired, small.released, [], true)), /beyond the storage limit/)
    assert.match(String(FreeSet.decode(50, small.acquired, small.released, [], true)), /EWAH|beyond the storage limit/)
  })

  // The trailer blocks that hold the encoding were acquired after it was made and released once
  // the superblock was written, while that checkpoint was not durable. Decode patches them back in
  // the same state: acquired, released before durable, freed one checkpoint after the next.
  it("patches the checkpoint's own trailer blocks back in as acquired and released", () => {
    const set = sample(128)
    const { acquired, released } = set.encode()
    // What the write path does: acquire the trailer blocks, write the superblock, release them.
    const r = set.reserve(2)!
    const trailer = [set.acquire(r), set.acquire(r)]
    set.forfeit(r)
    assert.deepStrictEqual(trailer, [4, 6])
    set.markCheckpointNotDurable()
    for (const a of trailer) set.release(a)

    const decoded = FreeSet.decode(128, acquired, released, trailer, false) as FreeSet
    assert.instanceOf(decoded, FreeSet)
    assert.isFalse(decoded.checkpointDurable)
    assert.deepStrictEqual(decoded.acquiredAddresses(), set.acquiredAddresses())
    assert.strictEqual(decoded.count, set.count)
    for (let a = 1; a <= 128; a++) assert.strictEqual(decoded.isReleased(a), set.isReleased(a), `block ${a}`)
    // Both go through two durability points identically.
    for (const s of [set, decoded]) {
      s.markCheckpointDurable()
      assert.isTrue(s.isAcquired(4) && s.isReleased(4), "trailer blocks outlive the checkpoint becoming durable")
      s.markCheckpointNotDurable()
      s.markCheckpointDurable()
      assert.isFalse(s.isAcquired(4) || s.isAcquired(6))
    }
    assert.deepStrictEqual(decoded.acquiredAddresses(), set.acquiredAddresses())

    // At the root checkpoint (durable): the trailer blocks go to released directly.
    const root = FreeSet.decode(128, acquired, released, trailer, true) as FreeSet
    root.markCheckpointNotDurable()
    root.markCheckpointDurable()
    assert.isFalse(root.isAcquired(4) || root.isAcquired(6) || root.isAcquired(3))
  })

  it("refuses inconsistent encodings", () => {
    const set = sample(128)
    const { acquired, released } = set.encode()
    assert.match(String(FreeSet.decode(128, acquired, released, [5], false)), /trailer block 5 is already acquired/)
    assert.match(String(FreeSet.decode(128, acquired, released, [0], false)), /trailer block 0/)
    assert.match(String(FreeSet.decode(128, acquired, released, [129], false)), /trailer block 129/)
    // Released but not acquired: swap the two encodings.
    assert.match(String(FreeSet.decode(128, released, acquired, [], true)), /released block is not acquired/)
    assert.match(String(FreeSet.decode(128, acquired.subarray(0, 5), released, [], true)), /EWAH/)
    assert.match(String(FreeSet.decode(128, acquired, released.subarray(0, 12), [], true)), /EWAH/)
    // A block past the limit inside the last word's padding bits (limit 70, block 100 acquired).
    const padded = FreeSet.decode(70, ewahEncode(bitsOf([0n, 1n << 35n])), new Uint8Array(0), [], true)
    assert.match(String(padded), /beyond the storage limit/)
  })

  it("encodes only between units of work", () => {
    const set = sample(128)
    const r = set.reserve(1)!
    assertAborts(() => set.encode(), "encode with a reservation open")
    set.forfeit(r)
    set.markCheckpointNotDurable()
    assertAborts(() => set.encode(), "encode before the checkpoint is durable")
  })
})

describe("free set: model-based property", () => {
  // A plain model of §6.4 (sets of addresses, a cursor, a session) driven by random operations;
  // the free set must agree with it after every step, including across encode/decode round trips.
  type Op =
    | { readonly kind: "reserve"; readonly n: number }
    | { readonly kind: "acquire"; readonly which: number; readonly count: number }
    | { readonly kind: "forfeitAll" }
    | { readonly kind: "release"; readonly which: number; readonly count: number }
    | { readonly kind: "checkpoint" }
    | { readonly kind: "durable" }
    | { readonly kind: "reopen" }
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant("reserve" as const), n: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 20, max: 70 })) }),
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("acquire" as const), which: fc.nat(), count: fc.integer({ min: 1, max: 24 }) }) },
    fc.constant({ kind: "forfeitAll" as const }),
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("release" as const), which: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }) },
    fc.constant({ kind: "checkpoint" as const }),
    fc.constant({ kind: "durable" as const }),
    fc.constant({ kind: "reopen" as const })
  )

  it("agrees with a model of reserve/acquire/forfeit/release/durability (property)", () => {
    const blocksMax = 90
    const addresses = Array.from({ length: blocksMax }, (_, i) => i + 1)
    let reachedBit31 = 0
    // Rounds as the replica runs them: units of work (reserve, acquire, release), all reservations
    // forfeited, then maybe a checkpoint written, made durable, or reopened from its encoding.
    const round = fc.tuple(fc.array(op, { maxLength: 12 }), fc.subarray(["checkpoint", "durable", "reopen"] as const))
      .map(([work, ends]): Array<Op> => [...work, { kind: "forfeitAll" }, ...ends.map((kind) => ({ kind }))])
    fc.assert(fc.property(fc.array(round, { maxLength: 10 }).map((rounds) => rounds.flat()), (ops) => {
      let set = new FreeSet(blocksMax)
      const model = { acquired: new Set<number>(), released: new Set<number>(), beforeDurable: new Set<number>(), durable: true, cursor: 0 }
      let open: Array<{ real: Reservation; start: number; end: number; remaining: number }> = []
      for (const o of ops) {
        switch (o.kind) {
          case "reserve": {
            let free = 0
            let i = model.cursor
            for (; i < blocksMax && free < o.n; i++) if (!model.acquired.has(i + 1)) free++
            const real = set.reserve(o.n)
            if (free < o.n) {
              assert.isUndefined(real)
              break
            }
            assert.deepStrictEqual([real!.start, real!.end], [model.cursor, i])
            open.push({ real: real!, start: model.cursor, end: i, remaining: o.n })
            model.cursor = i
            break
          }
          case "acquire": {
            const candidates = open.filter((r) => r.remaining > 0)
            if (candidates.length === 0) break
            const r = candidates[o.which % candidates.length]!
            // Runs of blocks, so that high addresses (bit 31 of a word) are reached.
            for (let k = Math.min(o.count, r.remaining); k > 0; k--) {
              let a = r.start + 1
              while (model.acquired.has(a)) a++
              assert.isBelow(a - 1, r.end)
              assert.strictEqual(set.acquire(r.real), a)
              model.acquired.add(a)
              r.remaining--
            }
            break
          }
          case "forfeitAll":
            for (const r of open) set.forfeit(r.real)
            if (open.length > 0) model.cursor = 0
            open = []
            break
          case "release": {
            // A run of consecutive candidates from a random one.
            const candidates = [...model.acquired].filter((a) => !model.released.has(a) && !model.beforeDurable.has(a)).sort((x, y) => x - y)
            const first = candidates.length === 0 ? 0 : o.which % candidates.length
            for (const a of candidates.slice(first, first + o.count)) {
              set.release(a)
              ;(model.durable ? model.released : model.beforeDurable).add(a)
            }
            break
          }
          case "checkpoint":
            if (!model.durable) break
            set.markCheckpointNotDurable()
            model.durable = false
            break
          case "durable":
            if (model.durable || open.length > 0) break
            set.markCheckpointDurable()
            if ([...model.released].some((a) => a % 32 === 0)) reachedBit31++
            for (const a of model.released) model.acquired.delete(a)
            model.released = model.beforeDurable
            model.beforeDurable = new Set()
            model.durable = true
            break
          case "reopen": {
            // A checkpoint's view of the set: only between units of work, while durable.
            if (!model.durable || open.length > 0) break
            const { acquired, released } = set.encode()
            set = FreeSet.decode(blocksMax, acquired, released, [], true) as FreeSet
            model.cursor = 0
            break
          }
        }
        const real = { acquired: set.acquiredAddresses(), count: set.count, highest: set.highestAcquired(), durable: set.checkpointDurable,
          released: addresses.filter((a) => set.isReleased(a)) }
        const expected = { acquired: [...model.acquired].sort((x, y) => x - y), count: model.acquired.size, highest: Math.max(0, ...model.acquired),
          durable: model.durable, released: addresses.filter((a) => model.released.has(a) || model.beforeDurable.has(a)) }
        if (JSON.stringify(real) !== JSON.stringify(expected)) assert.deepStrictEqual(real, expected, `after ${JSON.stringify(o)}`)
      }
    }), { numRuns: 1000 })
    // The runs freed blocks in the top bit of a 32-bit word (addresses 32, 64): the sign bit.
    assert.isAbove(reachedBit31, 8)
  })
})
