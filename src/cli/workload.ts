/**
 * TigerBeetle's canonical benchmark workload, built directly in wire format: accounts 1..n on
 * ledger 1, and transfers of amount 1 between random distinct accounts. Shared by the ledger
 * benchmark and `scarab benchmark`, so both measure the same batches.
 */
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

/**
 * `count` transfers with ids `firstId`, `firstId + 1`, …, each of amount 1 from a random account
 * of 1..`accounts` to another, distinct one.
 */
export function transferBatch(random: () => number, accounts: number, firstId: number, count: number, idHigh = 0): Uint8Array {
  const events = new Uint8Array(count * transferSize)
  const view = new DataView(events.buffer)
  for (let i = 0; i < count; i++) {
    const debit = 1 + Math.floor(random() * accounts)
    let credit = 1 + Math.floor(random() * (accounts - 1))
    if (credit >= debit) credit++
    const o = i * transferSize
    view.setUint32(o, firstId + i, true) // id
    view.setUint32(o + 16, debit, true) // debit_account_id
    view.setUint32(o + 32, credit, true) // credit_account_id
    view.setUint32(o + idHighOffset, idHigh, true)
    view.setUint32(o + 16 + idHighOffset, idHigh, true)
    view.setUint32(o + 32 + idHighOffset, idHigh, true)
    view.setUint32(o + 48, 1, true) // amount
    view.setUint32(o + 112, 1, true) // ledger
    view.setUint16(o + 116, 1, true) // code
  }
  return events
}
