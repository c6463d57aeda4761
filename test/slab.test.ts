/**
 * The slab allocator (src/slab.ts): pieces are fresh zeroed bytes that never overlap one another,
 * aligned for u32/u64 views, and large requests get a buffer of their own.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Slab } from "../src/slab.ts"

describe("Slab", () => {
  it("pieces are zeroed, 16-byte aligned and never overlap; writing one leaves the others alone", () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 200 }), (lengths) => {
      const slab = new Slab(4096, 512)
      const pieces = lengths.map((length) => slab.take(length))
      pieces.forEach((piece, i) => {
        assert.strictEqual(piece.length, lengths[i])
        assert.strictEqual(piece.byteOffset % 16, 0)
        assert.isTrue(piece.every((byte) => byte === 0), `piece ${i} is zeroed`)
        if (lengths[i]! > 512) assert.strictEqual(piece.byteLength, piece.buffer.byteLength, "a large piece has its own buffer")
        piece.fill(i % 255 + 1)
      })
      pieces.forEach((piece, i) => assert.isTrue(piece.every((byte) => byte === i % 255 + 1), `piece ${i} kept its bytes`))
    }))
  })

  it("a full slab starts a new one; a large piece never comes from a slab", () => {
    const slab = new Slab(64, 32)
    const a = slab.take(16)
    const b = slab.take(16)
    assert.strictEqual(a.buffer, b.buffer)
    assert.strictEqual(b.byteOffset, 16)
    const large = slab.take(40)
    assert.notStrictEqual(large.buffer, a.buffer)
    assert.strictEqual(large.buffer.byteLength, 40)
    // 32 bytes are left in the first slab: a piece of 32 fits, the next starts a new slab.
    assert.strictEqual(slab.take(32).buffer, a.buffer)
    const fresh = slab.take(16)
    assert.notStrictEqual(fresh.buffer, a.buffer)
    assert.strictEqual(fresh.byteOffset, 0)
  })
})
