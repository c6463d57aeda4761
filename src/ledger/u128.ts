/**
 * Unsigned 128-bit and 64-bit arithmetic over little-endian u32 words, without BigInt.
 *
 * A u128 at word offset `o` of a Uint32Array is words o..o+3, least significant first; a u64 is
 * two words. Every word is an exact integer below 2^32 as a JS number, so sums of two words and
 * a carry stay exact. The functions write into caller-provided arrays (the ledger's scratch
 * registers), never allocate, and report overflow instead of wrapping silently.
 */
import { assert } from "../assert.ts"

// Typed-array words are in platform byte order; records on the wire are little-endian.
assert(new Uint8Array(new Uint32Array([1]).buffer)[0] === 1, () => "Scarab needs a little-endian platform")

const wordMax = 0xffff_ffff
const twoTo32 = 0x1_0000_0000

export const isZero128 = (a: Uint32Array, o: number): boolean => (a[o]! | a[o + 1]! | a[o + 2]! | a[o + 3]!) === 0

export const isMax128 = (a: Uint32Array, o: number): boolean =>
  (a[o]! & a[o + 1]! & a[o + 2]! & a[o + 3]!) >>> 0 === wordMax

export const equal128 = (a: Uint32Array, ao: number, b: Uint32Array, bo: number): boolean =>
  a[ao] === b[bo] && a[ao + 1] === b[bo + 1] && a[ao + 2] === b[bo + 2] && a[ao + 3] === b[bo + 3]

export const equal64 = (a: Uint32Array, ao: number, b: Uint32Array, bo: number): boolean =>
  a[ao] === b[bo] && a[ao + 1] === b[bo + 1]

/** -1, 0 or 1 as a is below, equal to or above b. */
export function compare128(a: Uint32Array, ao: number, b: Uint32Array, bo: number): number {
  for (let w = 3; w >= 0; w--) {
    const x = a[ao + w]!
    const y = b[bo + w]!
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

export function copy128(target: Uint32Array, to: number, source: Uint32Array, so: number): void {
  target[to] = source[so]!
  target[to + 1] = source[so + 1]!
  target[to + 2] = source[so + 2]!
  target[to + 3] = source[so + 3]!
}

/** target = a + b; returns true when the sum does not fit 128 bits (target then holds it mod 2^128). */
export function add128(target: Uint32Array, to: number, a: Uint32Array, ao: number, b: Uint32Array, bo: number): boolean {
  let carry = 0
  for (let w = 0; w < 4; w++) {
    const sum = a[ao + w]! + b[bo + w]! + carry
    carry = sum > wordMax ? 1 : 0
    target[to + w] = sum - carry * twoTo32
  }
  return carry === 1
}

/** target = a - b, asserting a >= b: balances never go negative. */
export function sub128(target: Uint32Array, to: number, a: Uint32Array, ao: number, b: Uint32Array, bo: number): void {
  let borrow = 0
  for (let w = 0; w < 4; w++) {
    const difference = a[ao + w]! - b[bo + w]! - borrow
    borrow = difference < 0 ? 1 : 0
    target[to + w] = difference + borrow * twoTo32
  }
  assert(borrow === 0, () => "u128 subtraction underflowed")
}

/** target = max(a - b, 0). */
export function saturatingSub128(target: Uint32Array, to: number, a: Uint32Array, ao: number, b: Uint32Array, bo: number): void {
  if (compare128(a, ao, b, bo) <= 0) {
    target[to] = 0
    target[to + 1] = 0
    target[to + 2] = 0
    target[to + 3] = 0
  } else {
    sub128(target, to, a, ao, b, bo)
  }
}

/** target = min(target, b). */
export function min128InPlace(target: Uint32Array, to: number, b: Uint32Array, bo: number): void {
  if (compare128(b, bo, target, to) < 0) copy128(target, to, b, bo)
}

/**
 * Wide accumulators (192 bits) for the ledger's running totals: a sum of u128 balances over
 * many accounts can exceed 2^128.
 */
export const wideWords = 6

export function wideAdd128(total: Uint32Array, to: number, value: Uint32Array, vo: number): void {
  let carry = 0
  for (let w = 0; w < wideWords; w++) {
    const sum = total[to + w]! + (w < 4 ? value[vo + w]! : 0) + carry
    carry = sum > wordMax ? 1 : 0
    total[to + w] = sum - carry * twoTo32
  }
  assert(carry === 0, () => "wide accumulator overflowed")
}

export function wideSub128(total: Uint32Array, to: number, value: Uint32Array, vo: number): void {
  let borrow = 0
  for (let w = 0; w < wideWords; w++) {
    const difference = total[to + w]! - (w < 4 ? value[vo + w]! : 0) - borrow
    borrow = difference < 0 ? 1 : 0
    total[to + w] = difference + borrow * twoTo32
  }
  assert(borrow === 0, () => "wide accumulator underflowed")
}

// --- u64 timestamps as (hi, lo) pairs ----------------------------------------------------------
// Timestamps are at most 2^63 - 1 nanoseconds, more than a double holds exactly, so they travel
// as two u32 halves. Stored records keep them at words (lo, hi).

/** Compares (aHi, aLo) with (bHi, bLo): negative, zero or positive. */
export const compare64 = (aHi: number, aLo: number, bHi: number, bLo: number): number =>
  aHi !== bHi ? aHi - bHi : aLo - bLo

/** The largest valid timestamp's high word: the top bit is reserved by the storage engine. */
export const timestampHiMax = 0x7fff_ffff

/** Scratch output of the u64 helpers below: [hi, lo]. */
export const u64Result = new Float64Array(2)

/** u64Result = (hi, lo) + n for 0 <= n < 2^32. */
export function add64Small(hi: number, lo: number, n: number): void {
  const sum = lo + n
  const carry = sum > wordMax ? 1 : 0
  u64Result[0] = hi + carry
  u64Result[1] = sum - carry * twoTo32
}

/** u64Result = (hi, lo) - n for 0 <= n < 2^32, asserting no underflow. */
export function sub64Small(hi: number, lo: number, n: number): void {
  const difference = lo - n
  const borrow = difference < 0 ? 1 : 0
  u64Result[0] = hi - borrow
  u64Result[1] = difference + borrow * twoTo32
  assert(u64Result[0]! >= 0, () => "u64 subtraction underflowed")
}

const nsPerSecond = 1_000_000_000

/**
 * u64Result = (hi, lo) + seconds × 10^9, exactly. seconds × 10^9 < 2^62 is split into 16-bit
 * halves of `seconds` so every partial product stays below 2^53.
 */
export function addSecondsAsNs(hi: number, lo: number, seconds: number): void {
  const high = (seconds >>> 16) * nsPerSecond // < 2^46, to be shifted left by 16 bits
  const low = (seconds & 0xffff) * nsPerSecond // < 2^46
  const highLo = (high % 0x1_0000) * 0x1_0000 // the part of high << 16 below 2^32
  const highHi = Math.floor(high / 0x1_0000)
  const lowLo = low % twoTo32
  const lowHi = Math.floor(low / twoTo32)
  let resultLo = lo + highLo + lowLo // < 3 × 2^32
  const carry = Math.floor(resultLo / twoTo32)
  resultLo -= carry * twoTo32
  u64Result[0] = hi + highHi + lowHi + carry
  u64Result[1] = resultLo
}

export const toBigInt64 = (hi: number, lo: number): bigint => (BigInt(hi) << 32n) | BigInt(lo)
export const hiOf = (value: bigint): number => Number(value >> 32n)
export const loOf = (value: bigint): number => Number(value & 0xffff_ffffn)
