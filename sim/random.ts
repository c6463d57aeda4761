/**
 * Randomness for the simulator (simulation.md §1.3): every stream is derived from the run's u64
 * seed *by name* ("network 0→client 3", "disk 0", "workload", …), never by call order, so adding
 * a consumer does not shift any existing stream.
 */
import { Prng } from "../src/prng.ts"

const u64Mask = (1n << 64n) - 1n

/** splitmix64's finaliser: a good 64-bit mix of one word. */
function mix64(value: bigint): bigint {
  let z = (value + 0x9e3779b97f4a7c15n) & u64Mask
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & u64Mask
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & u64Mask
  return z ^ (z >> 31n)
}

/** FNV-1a over the name's UTF-16 code units, 64-bit. */
function hashName(name: string): bigint {
  let hash = 0xcbf29ce484222325n
  for (let i = 0; i < name.length; i++) hash = ((hash ^ BigInt(name.charCodeAt(i))) * 0x100000001b3n) & u64Mask
  return hash
}

/** The 53-bit seed of the stream `name` of the run `seed`. */
export function streamSeed(seed: bigint, name: string): number {
  return Number(mix64(seed ^ mix64(hashName(name))) & ((1n << 53n) - 1n))
}

/** A PRNG with a few helpers the simulator needs. */
export class Random extends Prng {
  static stream(seed: bigint, name: string): Random {
    return new Random(streamSeed(seed, name))
  }

  /** An integer in [min, max] (inclusive). */
  between(min: number, max: number): number {
    return min + this.below(max - min + 1)
  }

  /** A float in [min, max). */
  uniform(min: number, max: number): number {
    return min + this.nextFloat() * (max - min)
  }

  pick<A>(values: ReadonlyArray<A>): A {
    return values[this.below(values.length)]!
  }

  /** A u64 as a bigint. */
  u64(): bigint {
    return (BigInt(this.nextU32()) << 32n) | BigInt(this.nextU32())
  }

  /** A non-zero u128 below 2^128 - 1. */
  u128NonZero(): bigint {
    for (;;) {
      const value = (this.u64() << 64n) | this.u64()
      if (value !== 0n && value !== (1n << 128n) - 1n) return value
    }
  }
}
