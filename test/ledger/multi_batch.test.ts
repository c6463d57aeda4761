/**
 * `Ledger.executeBatches`, the in-place execution of a multi-batch create body, against its
 * reference `executeBatchesVia(execute)` (batch by batch through `execute`): random requests of
 * random batches (empty ones, linked chains, imported events, duplicates, missing accounts,
 * two-phase transfers) on two ledgers must give byte-identical replies and identical state.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { createLedger, executeBatchesVia, type Ledger } from "../../src/ledger/ledger.ts"
import { encodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { accountSize, Operation, transferSize, type ClientOperation } from "../../src/protocol/operation.ts"
import { encodeAccount, encodeQueryFilter, encodeTransfer, TransferFlags, AccountFlags } from "../../src/protocol/records.ts"

interface Event {
  readonly id: number
  readonly debit: number
  readonly credit: number
  readonly amount: number
  readonly flags: number
  readonly pendingId: number
  readonly imported: boolean
}

const event: fc.Arbitrary<Event> = fc.record({
  id: fc.integer({ min: 0, max: 40 }),
  debit: fc.integer({ min: 1, max: 10 }),
  credit: fc.integer({ min: 1, max: 10 }),
  amount: fc.integer({ min: 0, max: 5 }),
  flags: fc.constantFrom(0, 0, 0, TransferFlags.linked, TransferFlags.pending, TransferFlags.post_pending_transfer, TransferFlags.void_pending_transfer,
    TransferFlags.linked | TransferFlags.pending, TransferFlags.balancing_debit),
  pendingId: fc.integer({ min: 0, max: 40 }),
  imported: fc.integer({ min: 0, max: 9 }).map((r) => r === 0)
})

/** A request: its batches, each a list of events (some empty). */
const request = fc.array(fc.array(event, { maxLength: 6 }), { minLength: 1, maxLength: 8 })

const transferBytes = (e: Event, timestamp: bigint): Uint8Array => encodeTransfer({
  id: BigInt(e.id), debit_account_id: BigInt(e.debit), credit_account_id: BigInt(e.credit), amount: BigInt(e.amount),
  pending_id: (e.flags & (TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer)) !== 0 ? BigInt(e.pendingId) : 0n,
  user_data_128: 0n, user_data_64: 0n, user_data_32: 0, timeout: 0, ledger: 1, code: 1,
  flags: e.flags | (e.imported ? TransferFlags.imported : 0), timestamp: e.imported ? timestamp : 0n
})

const accountsBody = (): Uint8Array => {
  const body = new Uint8Array(8 * accountSize)
  for (let i = 0; i < 8; i++) {
    encodeAccount({
      id: BigInt(i + 1), debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n, user_data_128: 0n,
      user_data_64: 0n, user_data_32: 0, reserved: 0, ledger: 1, code: 1, flags: i === 7 ? AccountFlags.debits_must_not_exceed_credits : 0, timestamp: 0n
    }, body, i * accountSize)
  }
  return body
}

/** Everything a ledger holds, as the bytes of full queries (accounts and transfers, in timestamp order). */
const state = (ledger: Ledger): string => [Operation.query_accounts, Operation.query_transfers].map((operation) =>
  Buffer.from(ledger.execute(operation as ClientOperation, encodeQueryFilter({
    user_data_128: 0n, user_data_64: 0n, user_data_32: 0, ledger: 0, code: 0, timestamp_min: 0n, timestamp_max: 0n, limit: 8189, flags: 0
  }), 0n)).toString("hex")).join("/")

describe("Ledger.executeBatches", () => {
  it("answers and changes state exactly as the batches executed one by one through execute", () => {
    fc.assert(fc.property(fc.array(request, { minLength: 1, maxLength: 6 }), (requests) => {
      const fast = createLedger()
      const reference = createLedger()
      let timestamp = 1_000_000_000n
      const accounts = encodeMultiBatch([accountsBody()], accountSize)
      assert.deepStrictEqual(fast.executeBatches(Operation.create_accounts, accounts, timestamp), executeBatchesVia(reference.execute, Operation.create_accounts, accounts, timestamp))
      for (const batches of requests) {
        const events = batches.reduce((sum, batch) => sum + batch.length, 0)
        timestamp += BigInt(events) + 1000n
        const body = encodeMultiBatch(batches.map((batch) => {
          const bytes = new Uint8Array(batch.length * transferSize)
          batch.forEach((e, i) => bytes.set(transferBytes(e, 1000n + BigInt(e.id)), i * transferSize))
          return bytes
        }), transferSize)
        const reply = fast.executeBatches(Operation.create_transfers, body, timestamp)
        const expected = executeBatchesVia(reference.execute, Operation.create_transfers, body, timestamp)
        assert.strictEqual(Buffer.from(reply).toString("hex"), Buffer.from(expected).toString("hex"))
        assert.strictEqual(state(fast), state(reference))
        fast.verify()
      }
    }), { numRuns: 200 })
  })

  it("reads go batch by batch: a lookup request of three batches", () => {
    const ledger = createLedger()
    const accounts = encodeMultiBatch([accountsBody()], accountSize)
    ledger.executeBatches(Operation.create_accounts, accounts, 1_000_000n)
    const ids = (...values: Array<number>) => {
      const bytes = new Uint8Array(values.length * 16)
      values.forEach((v, i) => new DataView(bytes.buffer).setBigUint64(i * 16, BigInt(v), true))
      return bytes
    }
    const body = encodeMultiBatch([ids(1, 2), ids(9), ids(3)], 16)
    assert.deepStrictEqual(ledger.executeBatches(Operation.lookup_accounts, body, 2_000_000n), executeBatchesVia(ledger.execute, Operation.lookup_accounts, body, 2_000_000n))
  })
})
