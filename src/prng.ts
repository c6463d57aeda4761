/**
 * A small seeded pseudo-random generator (xoshiro128**, seeded through splitmix32) for the
 * simulated disk, the simulator, and the replica core's timeout jitter (the core draws from one
 * seeded by a nonce its shell takes from Effect's Random, vsr.md §12.1): the same seed gives the
 * same sequence in every process and on every platform, which `Math.random` cannot. A shared
 * utility below every folder (it imports nothing). Not for cryptography.
 */
export class Prng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new Error("prng: seed must be a safe integer")
    // splitmix32 over the seed's low and high words spreads any seed over the whole state.
    let x = (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x100000000) | 0, 0x9e3779b9)
    const next = () => {
      x = (x + 0x9e3779b9) | 0
      let z = x
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next()
    this.b = next()
    this.c = next()
    this.d = next()
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0
    const t = this.b << 9
    this.c ^= this.a
    this.d ^= this.b
    this.b ^= this.c
    this.a ^= this.d
    this.c ^= t
    this.d = rotl(this.d, 11)
    return result
  }

  /** A float in [0, 1). */
  nextFloat(): number {
    return this.nextU32() / 0x100000000
  }

  /** An integer in [0, bound), bound ≤ 2^32. */
  below(bound: number): number {
    if (!(Number.isInteger(bound) && bound > 0 && bound <= 0x100000000)) throw new Error("prng: bad bound")
    return Math.floor(this.nextFloat() * bound)
  }

  /** True with probability `probability` (0 never draws, so a fault-free run uses no randomness for it). */
  chance(probability: number): boolean {
    return probability > 0 && this.nextFloat() < probability
  }

  /** An exponentially distributed value with the given minimum and mean (mean ≥ minimum). */
  exponential(minimum: number, mean: number): number {
    return minimum + -Math.log(1 - this.nextFloat()) * (mean - minimum)
  }
}

function rotl(x: number, shift: number): number {
  return (x << shift) | (x >>> (32 - shift))
}
