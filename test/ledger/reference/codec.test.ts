/**
 * The reference codec (written from spec §1 alone) and the protocol codec in
 * src/protocol/records.ts agree on every layout: random records encoded by one decode to the same
 * fields with the other, byte for byte both ways, and the flag constants match §2. Two codecs
 * written separately from the same tables are unlikely to share a wrong offset.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import * as protocol from "../../../src/protocol/records.ts"
import {
  MAX128,
  MAX64,
  decodeAccount,
  decodeAccountBalances,
  decodeCreateResults,
  decodeTransfer,
  encodeAccountBalanceInto,
  encodeAccountFilter,
  encodeAccounts,
  encodeCreateResults,
  encodeIds,
  encodeQueryFilter,
  encodeTransfers
} from "./codec.ts"
import { AF, AFF, QFF, TF } from "./model.ts"

const u128 = fc.bigInt({ min: 0n, max: MAX128 })
const u64 = fc.bigInt({ min: 0n, max: MAX64 })
const u32 = fc.integer({ min: 0, max: 0xffffffff })
const u16 = fc.integer({ min: 0, max: 0xffff })

const accountArb = fc.record({
  id: u128,
  debits_pending: u128,
  debits_posted: u128,
  credits_pending: u128,
  credits_posted: u128,
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  reserved: u32,
  ledger: u32,
  code: u16,
  flags: u16,
  timestamp: u64
})

const transferArb = fc.record({
  id: u128,
  debit_account_id: u128,
  credit_account_id: u128,
  amount: u128,
  pending_id: u128,
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  timeout: u32,
  ledger: u32,
  code: u16,
  flags: u16,
  timestamp: u64
})

const accountFilterArb = fc.record({
  account_id: u128,
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  code: u16,
  timestamp_min: u64,
  timestamp_max: u64,
  limit: u32,
  flags: u32
})

const queryFilterArb = fc.record({
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  ledger: u32,
  code: u16,
  timestamp_min: u64,
  timestamp_max: u64,
  limit: u32,
  flags: u32
})

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")

describe("reference codec vs protocol codec (§1)", () => {
  it("encodes and decodes accounts identically", () => {
    fc.assert(
      fc.property(accountArb, (a) => {
        const mine = encodeAccounts([a])
        assert.strictEqual(hex(mine), hex(protocol.encodeAccount(a)))
        assert.deepStrictEqual({ ...protocol.decodeAccount(mine) }, { ...a })
        assert.deepStrictEqual(decodeAccount(protocol.encodeAccount(a)), a)
      }),
      { numRuns: 200 }
    )
  })

  it("encodes and decodes transfers identically", () => {
    fc.assert(
      fc.property(transferArb, (t) => {
        const mine = encodeTransfers([t])
        assert.strictEqual(hex(mine), hex(protocol.encodeTransfer(t)))
        assert.deepStrictEqual({ ...protocol.decodeTransfer(mine) }, { ...t })
        assert.deepStrictEqual(decodeTransfer(protocol.encodeTransfer(t)), t)
      }),
      { numRuns: 200 }
    )
  })

  it("encodes filters identically (reserved zero), and ids", () => {
    fc.assert(
      fc.property(accountFilterArb, queryFilterArb, fc.array(u128, { maxLength: 4 }), (af, qf, ids) => {
        assert.strictEqual(hex(encodeAccountFilter(af)), hex(protocol.encodeAccountFilter(af)))
        assert.strictEqual(hex(encodeQueryFilter(qf)), hex(protocol.encodeQueryFilter(qf)))
        assert.strictEqual(hex(encodeIds(ids)), hex(protocol.encodeIds(ids)))
      }),
      { numRuns: 200 }
    )
  })

  it("decodes balances and create results identically", () => {
    fc.assert(
      fc.property(u128, u128, u128, u128, u64, u64, u32, (dp, dq, cp, cq, ts, rts, status) => {
        const balance = { debits_pending: dp, debits_posted: dq, credits_pending: cp, credits_posted: cq, timestamp: ts }
        const bytes = new Uint8Array(128)
        encodeAccountBalanceInto(bytes, 0, balance)
        assert.deepStrictEqual({ ...protocol.decodeAccountBalance(bytes) }, balance)
        assert.deepStrictEqual(decodeAccountBalances(bytes), [balance])
        const results = encodeCreateResults([{ timestamp: rts, status }])
        assert.deepStrictEqual({ ...protocol.decodeCreateResult(results) }, { timestamp: rts, status })
        assert.deepStrictEqual(decodeCreateResults(results), [{ timestamp: rts, status }])
      }),
      { numRuns: 200 }
    )
  })

  it("agrees on every flag bit (§2)", () => {
    const { padding: accountPadding, ...accountFlags } = AF
    const { padding: transferPadding, ...transferFlags } = TF
    assert.deepStrictEqual(accountFlags, { ...protocol.AccountFlags })
    assert.deepStrictEqual(transferFlags, { ...protocol.TransferFlags })
    assert.strictEqual(accountPadding, protocol.accountFlagsPadding)
    assert.strictEqual(transferPadding, protocol.transferFlagsPadding)
    assert.deepStrictEqual({ ...AFF }, { ...protocol.AccountFilterFlags })
    assert.deepStrictEqual({ ...QFF }, { ...protocol.QueryFilterFlags })
  })
})
