/**
 * EWAH, the word-aligned run-length code the free set's bitsets are stored in (storage.md
 * §6.4). The stream is 64-bit little-endian words: a marker word — bit 0 the value of a run of
 * uniform words (all zeroes or all ones), bits 1..31 the run's length in words, bits 32..63 the
 * number of literal words that follow — then those literal words, and so on. A run of zero
 * words at the end is not written, so the encoding does not depend on how large the bitset is:
 * replicas configured with different storage limits write identical bytes.
 *
 * Bitsets are Uint32Arrays; a 64-bit word is the pair (words[2i], words[2i + 1]).
 */
import { assert } from "../assert.ts"

const uniformCountMax = 2 ** 31 - 1
const literalCountMax = 2 ** 32 - 1

/** Encodes `bits` (an even number of u32 words). */
export function ewahEncode(bits: Uint32Array): Uint8Array {
  assert(bits.length % 2 === 0, () => "EWAH words are 64 bits")
  const words = bits.length / 2
  let end = words
  while (end > 0 && bits[2 * end - 2] === 0 && bits[2 * end - 1] === 0) end--
  // Worst case: one marker per literal word plus the literal.
  const output = new Uint32Array(2 * (2 * end + 1))
  let o = 0
  let i = 0
  while (i < end) {
    const uniform = uniformOf(bits, i)
    let uniformCount = 0
    if (uniform !== -1) {
      while (i + uniformCount < end && uniformCount < uniformCountMax && uniformOf(bits, i + uniformCount) === uniform) uniformCount++
    }
    const markerAt = o
    o += 2
    let literalCount = 0
    let j = i + uniformCount
    while (j < end && literalCount < literalCountMax && uniformOf(bits, j) === -1) {
      output[o++] = bits[2 * j]!
      output[o++] = bits[2 * j + 1]!
      literalCount++
      j++
    }
    output[markerAt] = ((uniformCount << 1) | (uniform === 1 ? 1 : 0)) >>> 0
    output[markerAt + 1] = literalCount
    i = j
  }
  return new Uint8Array(output.buffer, 0, o * 4).slice()
}

/**
 * Decodes `encoded` into `target` (zeroed first); the words after the encoded ones stay zero.
 * Returns why the encoding is malformed (not whole words, or longer than the target), or undefined.
 */
export function ewahDecode(encoded: Uint8Array, target: Uint32Array): string | undefined {
  if (encoded.length % 8 !== 0) return "EWAH: not a whole number of 64-bit words"
  const source = new Uint32Array(encoded.slice().buffer)
  target.fill(0)
  const words = target.length / 2
  let w = 0
  let s = 0
  while (s < source.length) {
    const low = source[s]!
    const literalCount = source[s + 1]!
    s += 2
    const uniformCount = low >>> 1
    if (w + uniformCount + literalCount > words) return "EWAH: decodes to more words than the bitset has"
    if (s + 2 * literalCount > source.length) return "EWAH: a marker promises more literal words than follow"
    if ((low & 1) === 1) target.fill(0xffff_ffff, 2 * w, 2 * (w + uniformCount))
    w += uniformCount
    target.set(source.subarray(s, s + 2 * literalCount), 2 * w)
    s += 2 * literalCount
    w += literalCount
  }
  return undefined
}

/** 0 or 1 when word `i` is uniform, -1 when it is a literal. */
function uniformOf(bits: Uint32Array, i: number): number {
  const a = bits[2 * i]!
  const b = bits[2 * i + 1]!
  if (a === 0 && b === 0) return 0
  if (a === 0xffff_ffff && b === 0xffff_ffff) return 1
  return -1
}
