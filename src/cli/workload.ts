/**
 * TigerBeetle's canonical benchmark workload, built directly in wire format: accounts 1..n on
 * ledger 1, and transfers of amount 1 between random distinct accounts. Shared by the ledger
 * benchmark and `scarab benchmark`, so both measure the same batches.
 */
import { assert } from "../assert.ts"
import { accountSize, transferSize } from "../protocol/operation.ts"

/** Where the top 32 bits of a u128 id start (little-endian), from the id's offset. */
export const idHighOffset = 12

/** xorshift32: a seeded generator, so every run builds the same batches. */
export function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1
  return () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) / 0x1_0000_0000
  }
}

/**
 * `count` accounts with ids `firstId`, `firstId + 1`, …; ledger 1, code 1, everything else zero.
 * `idHigh` fills the ids' top 32 bits (of every account and transfer id, see `transferBatch`): a
 * benchmark run against a cluster that already holds an earlier run's ids uses a fresh one.
 */
export function accountBatch(firstId: number, count: number, idHigh = 0): Uint8Array {
  const events = new Uint8Array(count * accountSize)
  const view = new DataView(events.buffer)
  for (let i = 0; i < count; i++) {
    view.setUint32(i * accountSize, firstId + i, true) // id
    view.setUint32(i * accountSize + idHighOffset, idHigh, true)
    view.setUint32(i * accountSize + 112, 1, true) // ledger
    view.setUint16(i * accountSize + 116, 1, true) // code
  }
  return events
}

/** TigerBeetle's benchmark --id-order: the order in which transfer ids are created. */
export type IdOrder = "sequential" | "random" | "reversed"

/**
 * Transfer number n (1..`count`) → its id, a permutation of 1..`count`: n itself, `count + 1 - n`,
 * or a seeded pseudo-random bijection (invertible multiply and xor-shift steps over the next
 * power of two, walked until the value falls in range: under two steps on average), so any
 * transfer's id is computed without a table of `count` entries.
 */
export function idPermutation(order: IdOrder, count: number, seed: number): (n: number) => number {
  assert(Number.isInteger(count) && count >= 1 && count <= 2 ** 31, () => `a permutation of ${count} ids`)
  switch (order) {
    case "sequential":
      return (n) => n
    case "reversed":
      return (n) => count + 1 - n
    case "random": {
      const bits = Math.max(1, Math.ceil(Math.log2(count)))
      const mask = bits >= 32 ? 0xffff_ffff : (2 ** bits) - 1
      const multiplier = ((seed * 2 + 1) | 1) >>> 0
      const scramble = (x: number) => {
        let y = (x ^ (x >>> Math.ceil(bits / 2))) & mask
        y = Math.imul(y, multiplier) & mask
        y = (y ^ (y >>> Math.ceil(bits / 3))) & mask
        return (Math.imul(y, 0x2c1b_3c6d | 1) & mask) >>> 0
      }
      return (n) => {
        assert(n >= 1 && n <= count, () => `transfer ${n} outside 1..${count}`)
        let x = scramble(n - 1)
        while (x >= count) x = scramble(x)
        return x + 1
      }
    }
  }
}

/** What a batch's transfers are, beyond the defaults (sequential ids, posted at once). */
export interface TransferShape {
  /** Transfer number n's id (default n itself). */
  readonly idOf?: (n: number) => number
  /** Every transfer pending (flags.pending, no timeout), as TigerBeetle's --transfer-pending. */
  readonly pending?: boolean
}

/** `flags.pending` of a transfer (TransferFlags), at byte 118. */
const transferFlagPending = 1 << 1

/**
 * `count` transfers numbered `first`, `first + 1`, … (ids by `shape.idOf`, default the number
 * itself), each of amount 1 from a random account of 1..`accounts` to another, distinct one.
 */
export function transferBatch(random: () => number, accounts: number, first: number, count: number, idHigh = 0,
  shape: TransferShape = {}): Uint8Array {
  const events = new Uint8Array(count * transferSize)
  const view = new DataView(events.buffer)
  const idOf = shape.idOf
  for (let i = 0; i < count; i++) {
    const debit = 1 + Math.floor(random() * accounts)
    let credit = 1 + Math.floor(random() * (accounts - 1))
    if (credit >= debit) credit++
    const o = i * transferSize
    view.setUint32(o, idOf === undefined ? first + i : idOf(first + i), true) // id
    view.setUint32(o + 16, debit, true) // debit_account_id
    view.setUint32(o + 32, credit, true) // credit_account_id
    view.setUint32(o + idHighOffset, idHigh, true)
    view.setUint32(o + 16 + idHighOffset, idHigh, true)
    view.setUint32(o + 32 + idHighOffset, idHigh, true)
    view.setUint32(o + 48, 1, true) // amount
    view.setUint32(o + 112, 1, true) // ledger
    view.setUint16(o + 116, 1, true) // code
    if (shape.pending === true) view.setUint16(o + 118, transferFlagPending, true) // flags
  }
  return events
}
