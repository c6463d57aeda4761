/**
 * The checksum of every message, header, prepare and grid block: a 128-bit AEGIS-128L tag with
 * an all-zero key and nonce, the input absorbed as associated data and an empty plaintext
 * (wire-protocol.md §6.1). This is the pure TypeScript implementation: the reference in tests
 * and the implementation used where the native addon (native/, AES-NI) is not available.
 * `checksum_native.ts` picks the fastest implementation at run time.
 *
 * AES rounds use the classic four 256-entry "T-tables" over 32-bit little-endian column words,
 * so one round of one block is 16 table lookups and 16 XORs. The eight state blocks live in
 * 32 local variables inside `absorb` so that V8 keeps them in registers.
 */

import { assert } from "../assert.ts"

/** Bytes of a checksum (a little-endian u128: tag byte 0 is the least significant). */
export const checksumSize = 16

/** Bytes absorbed by one AEGIS-128L update. */
const chunkSize = 32

/** The checksum of `data`, as the 16 tag bytes in wire order. */
export function checksum(data: Uint8Array): Uint8Array {
  const target = new Uint8Array(checksumSize)
  checksumInto(data, target, 0)
  return target
}

/**
 * Writes the checksum of `data` into `target[targetOffset .. targetOffset + 16)` without
 * allocating: the form the message and block encoders use on hot paths.
 */
export function checksumInto(data: Uint8Array, target: Uint8Array, targetOffset: number): void {
  assert(Number.isInteger(targetOffset) && targetOffset >= 0, () => "targetOffset must be a natural number")
  assert(targetOffset + checksumSize <= target.length, () => "target too small for a checksum")
  state.set(stateInit)
  const chunksFull = Math.floor(data.length / chunkSize)
  absorb(state, data, 0, chunksFull)
  const rest = data.length - chunksFull * chunkSize
  if (rest > 0) {
    // The last short chunk is zero-padded to 32 bytes (§6.1 "Absorb").
    tail.fill(0)
    tail.set(data.subarray(chunksFull * chunkSize))
    absorb(state, tail, 0, 1)
  }
  finalize(state, data.length)
  // tag = S0 ^ S1 ^ ... ^ S6 (S7 is not included).
  for (let w = 0; w < 4; w++) {
    let word = 0
    for (let block = 0; block < 7; block++) word ^= state[block * 4 + w]
    tagWords[w] = word
  }
  target.set(tagBytes, targetOffset)
}

/** The u128 little-endian value of a checksum, for comparisons with spec and vector values. */
export function checksumToBigint(tag: Uint8Array): bigint {
  assert(tag.length === checksumSize, () => "a checksum is 16 bytes")
  let value = 0n
  for (let i = checksumSize - 1; i >= 0; i--) value = (value << 8n) | BigInt(tag[i])
  return value
}

// ---------------------------------------------------------------------------------------------

// The T-tables below read and write words in the host's byte order; every supported platform
// (x86-64, arm64) is little-endian, and a big-endian host would silently compute wrong values.
assert(new Uint8Array(new Uint32Array([1]).buffer)[0] === 1, () => "host must be little-endian")

const sbox = buildSbox()
const [t0, t1, t2, t3] = buildTables(sbox)

/**
 * State after initialisation with K = N = 0 (wire-protocol.md §6.1 table): a constant, so the
 * ten initial updates are never run.
 */
const stateInit = wordsFromHex(
  "72f2f45d9ec742023e84aa66aefd3592" +
    "42071dcd301af7cf8a7c6c4a20f63065" +
    "f84ea4a1c6aa99cea51d8b5c9cc3058f" +
    "0fc05e1117af1075a41119f329c5a8d2" +
    "57888c33d3160355364035c8f21e7986" +
    "48fa4b5dd57042c4084fe9f51508b644" +
    "0b9989cc910503850305de7ef1a98bfe" +
    "b30e7521390ccf8ecfe94af687955dd7"
)

// Scratch state shared by all calls: checksums are computed synchronously, one at a time.
const state = new Int32Array(32)
const tail = new Uint8Array(chunkSize)
const tagWords = new Int32Array(4)
const tagBytes = new Uint8Array(tagWords.buffer)
/** Finalization absorbs the same chunk seven times: prepared once, absorbed in one call. */
const finalizeRounds = 7
const finalizeChunks = new Uint8Array(finalizeRounds * chunkSize)
const finalizeWords = new Int32Array(finalizeChunks.buffer)

/**
 * Runs `chunks` AEGIS-128L updates with the 32-byte chunks of `data` starting at `offset`:
 * `Update(chunk[0..16), chunk[16..32))`.
 */
function absorb(s: Int32Array, data: Uint8Array, offset: number, chunks: number): void {
  let s00 = s[0], s01 = s[1], s02 = s[2], s03 = s[3]
  let s10 = s[4], s11 = s[5], s12 = s[6], s13 = s[7]
  let s20 = s[8], s21 = s[9], s22 = s[10], s23 = s[11]
  let s30 = s[12], s31 = s[13], s32 = s[14], s33 = s[15]
  let s40 = s[16], s41 = s[17], s42 = s[18], s43 = s[19]
  let s50 = s[20], s51 = s[21], s52 = s[22], s53 = s[23]
  let s60 = s[24], s61 = s[25], s62 = s[26], s63 = s[27]
  let s70 = s[28], s71 = s[29], s72 = s[30], s73 = s[31]
  // Aligned inputs are read as words directly; others word by word from bytes.
  const aligned = ((data.byteOffset + offset) & 3) === 0
  const words = aligned ? new Int32Array(data.buffer, data.byteOffset + offset, chunks * 8) : undefined
  for (let c = 0; c < chunks; c++) {
    let a0: number, a1: number, a2: number, a3: number, b0: number, b1: number, b2: number, b3: number
    if (words !== undefined) {
      const w = c * 8
      a0 = words[w]; a1 = words[w + 1]; a2 = words[w + 2]; a3 = words[w + 3]
      b0 = words[w + 4]; b1 = words[w + 5]; b2 = words[w + 6]; b3 = words[w + 7]
    } else {
      const p = offset + c * chunkSize
      a0 = load(data, p); a1 = load(data, p + 4); a2 = load(data, p + 8); a3 = load(data, p + 12)
      b0 = load(data, p + 16); b1 = load(data, p + 20); b2 = load(data, p + 24); b3 = load(data, p + 28)
    }
    // S'0 = AESRound(S7, S0) ^ A; S'i = AESRound(S(i-1), Si); S'4 ^= B; all from the old state.
    const n00 = t0[s70 & 255] ^ t1[(s71 >>> 8) & 255] ^ t2[(s72 >>> 16) & 255] ^ t3[s73 >>> 24] ^ s00 ^ a0
    const n01 = t0[s71 & 255] ^ t1[(s72 >>> 8) & 255] ^ t2[(s73 >>> 16) & 255] ^ t3[s70 >>> 24] ^ s01 ^ a1
    const n02 = t0[s72 & 255] ^ t1[(s73 >>> 8) & 255] ^ t2[(s70 >>> 16) & 255] ^ t3[s71 >>> 24] ^ s02 ^ a2
    const n03 = t0[s73 & 255] ^ t1[(s70 >>> 8) & 255] ^ t2[(s71 >>> 16) & 255] ^ t3[s72 >>> 24] ^ s03 ^ a3
    const n10 = t0[s00 & 255] ^ t1[(s01 >>> 8) & 255] ^ t2[(s02 >>> 16) & 255] ^ t3[s03 >>> 24] ^ s10
    const n11 = t0[s01 & 255] ^ t1[(s02 >>> 8) & 255] ^ t2[(s03 >>> 16) & 255] ^ t3[s00 >>> 24] ^ s11
    const n12 = t0[s02 & 255] ^ t1[(s03 >>> 8) & 255] ^ t2[(s00 >>> 16) & 255] ^ t3[s01 >>> 24] ^ s12
    const n13 = t0[s03 & 255] ^ t1[(s00 >>> 8) & 255] ^ t2[(s01 >>> 16) & 255] ^ t3[s02 >>> 24] ^ s13
    const n20 = t0[s10 & 255] ^ t1[(s11 >>> 8) & 255] ^ t2[(s12 >>> 16) & 255] ^ t3[s13 >>> 24] ^ s20
    const n21 = t0[s11 & 255] ^ t1[(s12 >>> 8) & 255] ^ t2[(s13 >>> 16) & 255] ^ t3[s10 >>> 24] ^ s21
    const n22 = t0[s12 & 255] ^ t1[(s13 >>> 8) & 255] ^ t2[(s10 >>> 16) & 255] ^ t3[s11 >>> 24] ^ s22
    const n23 = t0[s13 & 255] ^ t1[(s10 >>> 8) & 255] ^ t2[(s11 >>> 16) & 255] ^ t3[s12 >>> 24] ^ s23
    const n30 = t0[s20 & 255] ^ t1[(s21 >>> 8) & 255] ^ t2[(s22 >>> 16) & 255] ^ t3[s23 >>> 24] ^ s30
    const n31 = t0[s21 & 255] ^ t1[(s22 >>> 8) & 255] ^ t2[(s23 >>> 16) & 255] ^ t3[s20 >>> 24] ^ s31
    const n32 = t0[s22 & 255] ^ t1[(s23 >>> 8) & 255] ^ t2[(s20 >>> 16) & 255] ^ t3[s21 >>> 24] ^ s32
    const n33 = t0[s23 & 255] ^ t1[(s20 >>> 8) & 255] ^ t2[(s21 >>> 16) & 255] ^ t3[s22 >>> 24] ^ s33
    const n40 = t0[s30 & 255] ^ t1[(s31 >>> 8) & 255] ^ t2[(s32 >>> 16) & 255] ^ t3[s33 >>> 24] ^ s40 ^ b0
    const n41 = t0[s31 & 255] ^ t1[(s32 >>> 8) & 255] ^ t2[(s33 >>> 16) & 255] ^ t3[s30 >>> 24] ^ s41 ^ b1
    const n42 = t0[s32 & 255] ^ t1[(s33 >>> 8) & 255] ^ t2[(s30 >>> 16) & 255] ^ t3[s31 >>> 24] ^ s42 ^ b2
    const n43 = t0[s33 & 255] ^ t1[(s30 >>> 8) & 255] ^ t2[(s31 >>> 16) & 255] ^ t3[s32 >>> 24] ^ s43 ^ b3
    const n50 = t0[s40 & 255] ^ t1[(s41 >>> 8) & 255] ^ t2[(s42 >>> 16) & 255] ^ t3[s43 >>> 24] ^ s50
    const n51 = t0[s41 & 255] ^ t1[(s42 >>> 8) & 255] ^ t2[(s43 >>> 16) & 255] ^ t3[s40 >>> 24] ^ s51
    const n52 = t0[s42 & 255] ^ t1[(s43 >>> 8) & 255] ^ t2[(s40 >>> 16) & 255] ^ t3[s41 >>> 24] ^ s52
    const n53 = t0[s43 & 255] ^ t1[(s40 >>> 8) & 255] ^ t2[(s41 >>> 16) & 255] ^ t3[s42 >>> 24] ^ s53
    const n60 = t0[s50 & 255] ^ t1[(s51 >>> 8) & 255] ^ t2[(s52 >>> 16) & 255] ^ t3[s53 >>> 24] ^ s60
    const n61 = t0[s51 & 255] ^ t1[(s52 >>> 8) & 255] ^ t2[(s53 >>> 16) & 255] ^ t3[s50 >>> 24] ^ s61
    const n62 = t0[s52 & 255] ^ t1[(s53 >>> 8) & 255] ^ t2[(s50 >>> 16) & 255] ^ t3[s51 >>> 24] ^ s62
    const n63 = t0[s53 & 255] ^ t1[(s50 >>> 8) & 255] ^ t2[(s51 >>> 16) & 255] ^ t3[s52 >>> 24] ^ s63
    const n70 = t0[s60 & 255] ^ t1[(s61 >>> 8) & 255] ^ t2[(s62 >>> 16) & 255] ^ t3[s63 >>> 24] ^ s70
    const n71 = t0[s61 & 255] ^ t1[(s62 >>> 8) & 255] ^ t2[(s63 >>> 16) & 255] ^ t3[s60 >>> 24] ^ s71
    const n72 = t0[s62 & 255] ^ t1[(s63 >>> 8) & 255] ^ t2[(s60 >>> 16) & 255] ^ t3[s61 >>> 24] ^ s72
    const n73 = t0[s63 & 255] ^ t1[(s60 >>> 8) & 255] ^ t2[(s61 >>> 16) & 255] ^ t3[s62 >>> 24] ^ s73
    s00 = n00; s01 = n01; s02 = n02; s03 = n03
    s10 = n10; s11 = n11; s12 = n12; s13 = n13
    s20 = n20; s21 = n21; s22 = n22; s23 = n23
    s30 = n30; s31 = n31; s32 = n32; s33 = n33
    s40 = n40; s41 = n41; s42 = n42; s43 = n43
    s50 = n50; s51 = n51; s52 = n52; s53 = n53
    s60 = n60; s61 = n61; s62 = n62; s63 = n63
    s70 = n70; s71 = n71; s72 = n72; s73 = n73
  }
  s[0] = s00; s[1] = s01; s[2] = s02; s[3] = s03
  s[4] = s10; s[5] = s11; s[6] = s12; s[7] = s13
  s[8] = s20; s[9] = s21; s[10] = s22; s[11] = s23
  s[12] = s30; s[13] = s31; s[14] = s32; s[15] = s33
  s[16] = s40; s[17] = s41; s[18] = s42; s[19] = s43
  s[20] = s50; s[21] = s51; s[22] = s52; s[23] = s53
  s[24] = s60; s[25] = s61; s[26] = s62; s[27] = s63
  s[28] = s70; s[29] = s71; s[30] = s72; s[31] = s73
}

/**
 * Finalize: `T = S2 ^ (LE64(8n) || LE64(0))`, then seven `Update(T, T)` (§6.1). `T` is fixed
 * before the first of the seven updates, so the same 32-byte chunk `T || T` is absorbed 7 times.
 */
function finalize(s: Int32Array, length: number): void {
  assert(Number.isSafeInteger(length) && length >= 0, () => "length must be a safe natural number")
  // 8n < 2^56: split into two u32 words without BigInt.
  const bits = length * 8
  const lengthWords = [bits % 0x100000000, Math.floor(bits / 0x100000000), 0, 0]
  for (let w = 0; w < 4; w++) {
    const word = lengthWords[w] ^ s[8 + w]
    for (let round = 0; round < finalizeRounds; round++) {
      finalizeWords[round * 8 + w] = word
      finalizeWords[round * 8 + 4 + w] = word
    }
  }
  absorb(s, finalizeChunks, 0, finalizeRounds)
}

function load(data: Uint8Array, p: number): number {
  return data[p] | (data[p + 1] << 8) | (data[p + 2] << 16) | (data[p + 3] << 24)
}

function wordsFromHex(hex: string): Int32Array {
  assert(hex.length % 8 === 0, () => "hex must hold whole words")
  const bytes = new Uint8Array(hex.length / 2)
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return new Int32Array(bytes.buffer)
}

/** The AES S-box, computed from its definition (inverse in GF(2^8), then the affine map). */
function buildSbox(): Uint8Array {
  const box = new Uint8Array(256)
  let p = 1
  let q = 1
  // p walks the multiplicative group by powers of 3; q tracks its inverse (powers of 3^-1).
  do {
    p = p ^ ((p << 1) & 0xff) ^ (p & 0x80 ? 0x1b : 0)
    q ^= q << 1
    q ^= q << 2
    q ^= q << 4
    q &= 0xff
    if (q & 0x80) q ^= 0x09
    const rotated = q ^ rotl8(q, 1) ^ rotl8(q, 2) ^ rotl8(q, 3) ^ rotl8(q, 4)
    box[p] = rotated ^ 0x63
  } while (p !== 1)
  box[0] = 0x63
  return box
}

function rotl8(x: number, shift: number): number {
  return ((x << shift) | (x >>> (8 - shift))) & 0xff
}

/**
 * T-tables for little-endian column words: `t0[x]` is the MixColumns contribution of S(x) in
 * row 0, i.e. bytes (2s, s, s, 3s); t1..t3 are the same rotated for rows 1..3.
 */
function buildTables(box: Uint8Array): [Int32Array, Int32Array, Int32Array, Int32Array] {
  const tables: [Int32Array, Int32Array, Int32Array, Int32Array] = [
    new Int32Array(256), new Int32Array(256), new Int32Array(256), new Int32Array(256)
  ]
  for (let x = 0; x < 256; x++) {
    const s = box[x]
    const s2 = ((s << 1) ^ (s & 0x80 ? 0x1b : 0)) & 0xff
    const s3 = s2 ^ s
    const word = s2 | (s << 8) | (s << 16) | (s3 << 24)
    tables[0][x] = word
    tables[1][x] = (word << 8) | (word >>> 24)
    tables[2][x] = (word << 16) | (word >>> 16)
    tables[3][x] = (word << 24) | (word >>> 8)
  }
  return tables
}
