/**
 * The TypeScript AEGIS-128L checksum reproduces every shared vector and the checksum fields of
 * every captured wire message (wire-protocol.md §6.2, §6.3, §6.4).
 */
import { assert, describe, it } from "@effect/vitest"
import { checksum, checksumInto, checksumToBigint } from "../../src/protocol/checksum.ts"
import { loadCapturedMessages, loadChecksumVectors } from "./checksum_vectors.ts"

const vectors = loadChecksumVectors()
const messages = loadCapturedMessages()

describe("checksum (TypeScript)", () => {
  it("reproduces every vector, as a u128 and as tag bytes in wire order", () => {
    assert.isAtLeast(vectors.length, 12)
    for (const vector of vectors) {
      const tag = checksum(vector.input)
      assert.strictEqual(checksumToBigint(tag), vector.checksum, vector.name)
      assert.strictEqual(Buffer.from(tag).toString("hex"), vector.tagBytesHex, vector.name)
    }
  })

  it("reproduces the RegisterResult vector of §6.2 (listed in the spec, not in the JSON)", () => {
    const body = new Uint8Array(64)
    body.set([0x00, 0xff, 0x0f, 0x00])
    assert.strictEqual(checksumToBigint(checksum(body)), 0x191cda322bd68ef8082c67fd040ed2b5n)
  })

  it("reproduces checksum, checksum_body and a reply's context of every captured message", () => {
    assert.isAtLeast(messages.length, 30)
    for (const message of messages) {
      const { bytes, file } = message
      const size = new DataView(bytes.buffer, bytes.byteOffset).getUint32(96, true)
      assert.strictEqual(size, bytes.length, file)
      assert.deepStrictEqual(checksum(bytes.subarray(16, 256)), bytes.subarray(0, 16), file)
      assert.deepStrictEqual(checksum(bytes.subarray(256)), bytes.subarray(32, 48), file)
      if (message.command === 8) {
        // context = checksum of header bytes 16..255 with the context field zeroed.
        const header = bytes.slice(16, 256)
        header.fill(0, 160 - 16, 176 - 16)
        assert.deepStrictEqual(checksum(header), bytes.subarray(160, 176), file)
      }
    }
  })

  it("does not depend on the input's alignment or on the target offset", () => {
    const backing = new Uint8Array(4096 + 3)
    for (let i = 0; i < backing.length; i++) backing[i] = (i * 131 + 7) & 0xff
    const target = new Uint8Array(16 + 5)
    for (const length of [0, 1, 31, 32, 33, 255, 256, 4096]) {
      const reference = checksum(backing.slice(0, length))
      for (const shift of [1, 2, 3]) {
        const shifted = new Uint8Array(backing.length)
        shifted.set(backing.subarray(0, length), shift)
        checksumInto(shifted.subarray(shift, shift + length), target, 5)
        assert.deepStrictEqual(target.subarray(5), reference, `length ${length} shift ${shift}`)
      }
    }
  })

  it("rejects a target that cannot hold 16 bytes", () => {
    assert.throws(() => checksumInto(new Uint8Array(1), new Uint8Array(20), 5))
  })
})
