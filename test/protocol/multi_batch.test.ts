/**
 * Multi-batch bodies (wire-protocol.md §10.2): every request and reply body of the captured
 * session decodes to the batches index.json lists and re-encodes to the identical bytes; the
 * spec's worked examples hold; every malformed trailer is a typed rejection; encode/decode
 * round-trips for any batches.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { headerSize } from "../../src/protocol/header.ts"
import {
  batchCountMax, decodeMultiBatch, encodeMultiBatch, MultiBatchDecoder, trailerSize, writeTrailer
} from "../../src/protocol/multi_batch.ts"
import { loadWireVectors } from "./wire_vectors.ts"

const vectors = loadWireVectors()
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")

describe("multi-batch: captured bodies", () => {
  it("every body decodes to the batches index.json lists and re-encodes byte for byte", () => {
    const withTrailers = vectors.filter((v) => v.multiBatch !== undefined)
    assert.strictEqual(withTrailers.length, 24)
    for (const { file, bytes, multiBatch } of withTrailers) {
      const facts = multiBatch!
      const body = bytes.subarray(headerSize)
      const batches = decodeMultiBatch(body, facts.element_size)
      assert.isArray(batches, file)
      if (!Array.isArray(batches)) continue
      assert.deepStrictEqual(batches.map((batch) => batch.length / facts.element_size), [...facts.elements_per_batch], file)
      assert.strictEqual(trailerSize(facts.element_size, facts.batch_count), facts.trailer_size, file)
      assert.deepStrictEqual(encodeMultiBatch(batches, facts.element_size), body, file)
    }
  })

  it("the spec's worked examples (§10.2)", () => {
    const twoAccounts = encodeMultiBatch([new Uint8Array(256)], 128)
    assert.strictEqual(twoAccounts.length, 384)
    // §10.2 says "122 × ff" here; the captured body (03_c2s) has 124, as T = 128 requires.
    assert.strictEqual(hex(twoAccounts.subarray(256)), "ff".repeat(124) + "0200" + "0100")
    const merged = encodeMultiBatch([new Uint8Array(256), new Uint8Array(384)], 128)
    assert.strictEqual(merged.length, 768)
    assert.isTrue(hex(merged).endsWith("ffff030002000200"))
    const threeIds = encodeMultiBatch([new Uint8Array(48)], 16)
    assert.strictEqual(hex(threeIds.subarray(48)), "ff".repeat(12) + "0300" + "0100")
    const emptyReply = encodeMultiBatch([new Uint8Array(0)], 128)
    assert.strictEqual(hex(emptyReply), "ff".repeat(124) + "0000" + "0100")
  })

  it("walks batches in payload order with a reusable decoder", () => {
    const decoder = new MultiBatchDecoder()
    const body = vectors.find((v) => v.file.endsWith("09_c2s_request_create_accounts_2_batches.bin"))!.bytes.subarray(headerSize)
    assert.isUndefined(decoder.decode(body, 128))
    assert.deepStrictEqual([decoder.batchCount, decoder.payloadSize, decoder.elementCount(0), decoder.elementCount(1)], [2, 640, 2, 3])
    assert.strictEqual(decoder.next()?.byteOffset, body.byteOffset)
    assert.strictEqual(decoder.next()?.length, 384)
    assert.isUndefined(decoder.next())
    decoder.rewind()
    assert.strictEqual(decoder.next()?.length, 256)
  })
})

describe("multi-batch: rejections", () => {
  const valid = encodeMultiBatch([new Uint8Array(32), new Uint8Array(0)], 16)

  it("names what is wrong", () => {
    const decode = (body: Uint8Array, elementSize = 16) => new MultiBatchDecoder().decode(body, elementSize)
    assert.isUndefined(decode(valid))
    assert.strictEqual(decode(new Uint8Array(0)), "body_too_short")
    assert.strictEqual(decode(new Uint8Array(1)), "body_too_short")
    assert.strictEqual(decode(valid.subarray(1)), "body_too_short")
    const zeroBatches = valid.slice()
    zeroBatches.fill(0, zeroBatches.length - 2)
    assert.strictEqual(decode(zeroBatches), "batch_count_invalid")
    const fillerBatches = valid.slice()
    fillerBatches.fill(0xff, fillerBatches.length - 2)
    assert.strictEqual(decode(fillerBatches), "batch_count_invalid")
    const manyBatches = new Uint8Array(16)
    manyBatches[14] = 100
    assert.strictEqual(decode(manyBatches), "trailer_too_long")
    const badFiller = valid.slice()
    badFiller[32] = 0
    assert.strictEqual(decode(badFiller), "filler_invalid")
    const badCount = valid.slice()
    badCount[valid.length - 4] = 3
    assert.strictEqual(decode(badCount), "size_mismatch")
    // Read with a larger element size, the trailer would swallow payload bytes as filler.
    assert.strictEqual(decode(valid, 32), "filler_invalid")
  })

  it("arbitrary bodies never throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.constantFrom(8, 16, 64, 128), (body, elementSize) => {
        const result = new MultiBatchDecoder().decode(body, elementSize)
        assert.isTrue(result === undefined || typeof result === "string")
      }),
      { numRuns: 1000 }
    )
  })
})

describe("multi-batch: round trips", () => {
  it("decode(encode(batches)) = batches for any element size and counts", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(8, 16, 64, 128, 256),
        fc.array(fc.nat(20), { minLength: 1, maxLength: 40 }),
        fc.nat(255),
        (elementSize, counts, seed) => {
          const batches = counts.map((count, index) => new Uint8Array(count * elementSize).fill((seed + index) & 0xff))
          const body = encodeMultiBatch(batches, elementSize)
          assert.strictEqual(body.length % elementSize, 0)
          const decoded = decodeMultiBatch(body, elementSize)
          assert.deepStrictEqual(decoded, batches)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("writeTrailer after an in-place payload equals the cold encoder", () => {
    const counts = new Uint16Array([3, 0, 1])
    const body = new Uint8Array(1024).fill(0xaa)
    const size = writeTrailer(body, 4 * 16, counts, 3, 16)
    assert.deepStrictEqual(body.subarray(0, size), encodeMultiBatch([body.slice(0, 48), new Uint8Array(0), body.slice(48, 64)], 16))
    assert.throws(() => writeTrailer(body, 5 * 16, counts, 3, 16))
    assert.throws(() => trailerSize(16, batchCountMax + 1))
    assert.throws(() => trailerSize(24, 1))
  })
})
