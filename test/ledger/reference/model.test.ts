/**
 * Example tests of the reference model itself, so that a reviewer can trust it before trusting
 * what it says about the fast ledger: the worked rules of spec §17, the §10.2 examples, the result
 * timestamps of §6.3, the chain behaviour of §7, imports (§11), closing (§12), idempotency (§13)
 * and the read filters (§14). Every expectation is derived by hand from the spec.
 */
import { assert, describe, it } from "@effect/vitest"
import { CreateAccountStatus, CreateTransferStatus } from "../../../src/protocol/status.ts"
import { Operation } from "../../../src/protocol/operation.ts"
import {
  AMOUNT_MAX,
  MAX128,
  MAX63,
  account,
  accountFilter,
  decodeAccount,
  encodeAccounts,
  queryFilter,
  transfer
} from "./codec.ts"
import { Driver } from "./driver.ts"
import { A, AF, AFF, Op, QFF, ReferenceLedger, T, TF } from "./model.ts"
import type { ModelTransfer } from "./model_types.ts"

const CREATED = 0xffffffff

/** A model with accounts 1..4 on ledger 1 and account 9 on ledger 2, flags as given. */
const setup = (flags: Record<number, number> = {}) => {
  const model = new ReferenceLedger()
  const d = new Driver(model)
  const ids = [1n, 2n, 3n, 4n]
  const results = d.createAccounts([
    ...ids.map((id) => account({ id, ledger: 1, code: 10, flags: flags[Number(id)] ?? 0 })),
    account({ id: 9n, ledger: 2, code: 10 })
  ])
  assert.deepStrictEqual(results.map((r) => r.status), [CREATED, CREATED, CREATED, CREATED, CREATED])
  return { model, d }
}

const tr = (fields: Partial<ModelTransfer> & { id: bigint }): ModelTransfer =>
  transfer({ debit_account_id: 1n, credit_account_id: 2n, ledger: 1, code: 1, ...fields })

const statuses = (results: ReadonlyArray<{ status: number }>) => results.map((r) => r.status)

const balances = (d: Driver, id: bigint) => {
  const [a] = d.lookupAccounts([id])
  assert.isDefined(a)
  return [a!.debits_pending, a!.debits_posted, a!.credits_pending, a!.credits_posted]
}

describe("reference model: wire constants (§16, §4)", () => {
  it("restates every status and operation number exactly as src/protocol does", () => {
    assert.deepStrictEqual({ ...A }, { ...CreateAccountStatus })
    assert.deepStrictEqual({ ...T }, { ...CreateTransferStatus })
    for (const [name, value] of Object.entries(Op)) {
      assert.strictEqual((Operation as Record<string, number>)[name], value, name)
    }
  })

  it("encodes created as 0xFFFFFFFF and a result as {u64 timestamp, u32 status, u32 0}", () => {
    const model = new ReferenceLedger()
    const reply = model.execute(Op.create_accounts, encodeAccounts([account({ id: 7n, ledger: 1, code: 1 })]), 500n)
    assert.strictEqual(reply.length, 16)
    const v = new DataView(reply.buffer, reply.byteOffset)
    assert.strictEqual(v.getBigUint64(0, true), 500n)
    assert.strictEqual(v.getUint32(8, true), 0xffffffff)
    assert.strictEqual(v.getUint32(12, true), 0)
    // The stored account's bytes at the spec's offsets (§1.1).
    const stored = model.execute(Op.lookup_accounts, new Uint8Array([7, ...new Array(15).fill(0)]), 501n)
    const sv = new DataView(stored.buffer, stored.byteOffset)
    assert.strictEqual(sv.getUint32(112, true), 1) // ledger
    assert.strictEqual(sv.getUint16(116, true), 1) // code
    assert.strictEqual(sv.getBigUint64(120, true), 500n) // timestamp
  })
})

describe("reference model: timestamps (§6)", () => {
  it("gives event i of n the slot T - n + i + 1, whether it succeeds or not (§6.2, §6.3)", () => {
    const model = new ReferenceLedger()
    const results = decodeResults(
      model.execute(
        Op.create_accounts,
        encodeAccounts([account({ id: 1n, ledger: 1, code: 1 }), account({ id: 0n, ledger: 1, code: 1 }), account({ id: 3n, ledger: 1, code: 1 })]),
        1000n
      )
    )
    assert.deepStrictEqual(results, [
      { timestamp: 998n, status: CREATED },
      { timestamp: 999n, status: A.id_must_not_be_zero },
      { timestamp: 1000n, status: CREATED }
    ])
  })

  it("reports the existing object's timestamp for exists (§6.3)", () => {
    const { d } = setup()
    const first = d.createTransfers([tr({ id: 100n, amount: 5n })])
    const again = d.createTransfers([tr({ id: 100n, amount: 5n })])
    assert.strictEqual(again[0]!.status, T.exists)
    assert.strictEqual(again[0]!.timestamp, first[0]!.timestamp)
    const different = d.createTransfers([tr({ id: 100n, amount: 6n })])
    // exists_with_different_* is "any other status": the event's own slot.
    assert.strictEqual(different[0]!.status, T.exists_with_different_amount)
    assert.strictEqual(different[0]!.timestamp, d.now)
  })
})

describe("reference model: linked chains (§7)", () => {
  it("rolls back a broken chain, keeps the timestamps of rolled-back events and fails the rest", () => {
    const { d } = setup()
    const results = d.createTransfers([
      tr({ id: 10n, amount: 1n, flags: TF.linked }),
      tr({ id: 11n, amount: 1n, flags: TF.linked }),
      tr({ id: 12n, amount: 1n, flags: TF.linked, ledger: 0 }),
      tr({ id: 13n, amount: 1n }),
      tr({ id: 14n, amount: 1n })
    ])
    const T0 = d.now
    assert.deepStrictEqual(results, [
      { timestamp: T0 - 4n, status: T.linked_event_failed },
      { timestamp: T0 - 3n, status: T.linked_event_failed },
      { timestamp: T0 - 2n, status: T.ledger_must_not_be_zero },
      { timestamp: T0 - 1n, status: T.linked_event_failed },
      { timestamp: T0, status: CREATED }
    ])
    assert.deepStrictEqual(d.lookupTransfers([10n, 11n, 12n, 13n, 14n]).map((t) => t.id), [14n])
    assert.deepStrictEqual(balances(d, 1n), [0n, 1n, 0n, 0n])
    // Rolled-back ids are not burnt: linked_event_failed is not transient (§9.5).
    assert.strictEqual(d.createTransfers([tr({ id: 10n, amount: 1n })])[0]!.status, CREATED)
  })

  it("treats exists as a failure that breaks the chain, even against an object of the same chain (§6.3, §17.3)", () => {
    const { d } = setup()
    const results = d.createTransfers([tr({ id: 20n, amount: 1n, flags: TF.linked }), tr({ id: 20n, amount: 1n, flags: TF.linked }), tr({ id: 21n })])
    const T0 = d.now
    assert.deepStrictEqual(results, [
      { timestamp: T0 - 2n, status: T.linked_event_failed },
      { timestamp: T0 - 2n, status: T.exists },
      { timestamp: T0, status: T.linked_event_failed }
    ])
    assert.deepStrictEqual(d.lookupTransfers([20n, 21n]), [])
  })

  it("answers linked_event_chain_open for a linked last event and rolls back its open chain", () => {
    const { d } = setup()
    const results = d.createTransfers([tr({ id: 30n, amount: 1n }), tr({ id: 31n, amount: 1n, flags: TF.linked }), tr({ id: 32n, amount: 1n, flags: TF.linked })])
    assert.deepStrictEqual(statuses(results), [CREATED, T.linked_event_failed, T.linked_event_chain_open])
    assert.strictEqual(results[2]!.timestamp, d.now)
    assert.deepStrictEqual(d.lookupTransfers([30n, 31n, 32n]).map((t) => t.id), [30n])
    // Chain open wins even over an already broken chain, and over a lone linked last event.
    const broken = d.createTransfers([tr({ id: 33n, flags: TF.linked, ledger: 0 }), tr({ id: 34n, flags: TF.linked }), tr({ id: 35n, flags: TF.linked })])
    assert.deepStrictEqual(statuses(broken), [T.ledger_must_not_be_zero, T.linked_event_failed, T.linked_event_chain_open])
    assert.deepStrictEqual(statuses(d.createTransfers([tr({ id: 36n, flags: TF.linked })])), [T.linked_event_chain_open])
  })

  it("lets later chain events see earlier ones and commits a whole chain; chains do not leak into the next", () => {
    const { d } = setup()
    const results = d.createTransfers([
      tr({ id: 40n, amount: 7n, flags: TF.linked | TF.pending }),
      tr({ id: 41n, pending_id: 40n, amount: AMOUNT_MAX, flags: TF.post_pending_transfer }),
      tr({ id: 42n, amount: 1n, flags: TF.linked }),
      tr({ id: 43n, amount: 1n, flags: TF.linked, debit_account_id: 77n }),
      tr({ id: 44n, amount: 1n })
    ])
    assert.deepStrictEqual(statuses(results), [CREATED, CREATED, T.linked_event_failed, T.debit_account_not_found, T.linked_event_failed])
    assert.deepStrictEqual(balances(d, 1n), [0n, 7n, 0n, 0n])
  })

  it("keeps the orphaning of a transient failure through the chain's rollback (§7 rule 5, §9.5)", () => {
    const { d } = setup()
    const results = d.createTransfers([tr({ id: 50n, amount: 1n, flags: TF.linked }), tr({ id: 51n, credit_account_id: 66n })])
    assert.deepStrictEqual(statuses(results), [T.linked_event_failed, T.credit_account_not_found])
    const retry = d.createTransfers([tr({ id: 51n, amount: 1n }), tr({ id: 50n, amount: 1n })])
    assert.deepStrictEqual(statuses(retry), [T.id_already_failed, CREATED])
  })

  it("applies the same chain rules to accounts, whose ids are never burnt (§8.2)", () => {
    const model = new ReferenceLedger()
    const d = new Driver(model)
    const results = d.createAccounts([account({ id: 5n, ledger: 1, code: 1, flags: AF.linked }), account({ id: 6n, ledger: 0, code: 1 })])
    assert.deepStrictEqual(statuses(results), [A.linked_event_failed, A.ledger_must_not_be_zero])
    assert.deepStrictEqual(statuses(d.createAccounts([account({ id: 6n, ledger: 1, code: 1 })])), [CREATED])
    // The stored flags keep `linked`; resubmitting without it differs (§7).
    assert.deepStrictEqual(statuses(d.createAccounts([account({ id: 7n, ledger: 1, code: 1, flags: AF.linked }), account({ id: 8n, ledger: 1, code: 1 })])), [CREATED, CREATED])
    assert.deepStrictEqual(statuses(d.createAccounts([account({ id: 7n, ledger: 1, code: 1 })])), [A.exists_with_different_flags])
  })
})

describe("reference model: precedence (§8.1, §9.1, §17.2)", () => {
  it("puts exists before semantic validation but after timestamp, reserved and id checks (accounts)", () => {
    const model = new ReferenceLedger()
    const d = new Driver(model)
    d.createAccounts([account({ id: 1n, ledger: 1, code: 1 })])
    const results = d.createAccounts([
      account({ id: 1n, ledger: 1, code: 1, debits_posted: 5n }),
      account({ id: 1n, ledger: 1, code: 1, flags: AF.debits_must_not_exceed_credits | AF.credits_must_not_exceed_debits }),
      account({ id: 1n, ledger: 1, code: 1, reserved: 1 }),
      account({ id: 1n, ledger: 1, code: 1, timestamp: 5n }),
      account({ id: 1n, ledger: 1, code: 1, flags: 0x40 }),
      account({ id: MAX128, ledger: 0, code: 0 }),
      account({ id: 1n, ledger: 2, code: 0 }),
      account({ id: 1n, ledger: 1, code: 1, user_data_32: 3 })
    ])
    assert.deepStrictEqual(statuses(results), [
      A.exists,
      A.exists_with_different_flags,
      A.reserved_field,
      A.timestamp_must_be_zero,
      A.reserved_flag,
      A.id_must_not_be_int_max,
      A.exists_with_different_ledger,
      A.exists_with_different_user_data_32
    ])
  })

  it("checks the account fields in order after exists", () => {
    const d = new Driver(new ReferenceLedger())
    const results = d.createAccounts([
      account({ id: 2n, ledger: 0, code: 0, debits_pending: 1n, credits_posted: 1n }),
      account({ id: 3n, ledger: 0, code: 0, credits_posted: 1n }),
      account({ id: 4n, ledger: 0, code: 0 }),
      account({ id: 5n, ledger: 1, code: 0 })
    ])
    assert.deepStrictEqual(statuses(results), [A.debits_pending_must_be_zero, A.credits_posted_must_be_zero, A.ledger_must_not_be_zero, A.code_must_not_be_zero])
  })

  it("puts exists before accounts_must_be_different, not_found and ledger checks, but not before reserved_flag (transfers)", () => {
    const { d } = setup()
    d.createTransfers([tr({ id: 60n, amount: 3n })])
    const results = d.createTransfers([
      tr({ id: 60n, amount: 3n, debit_account_id: 2n, credit_account_id: 2n }),
      tr({ id: 60n, amount: 3n, debit_account_id: 88n }),
      tr({ id: 60n, amount: 3n, ledger: 0, code: 0 }),
      tr({ id: 60n, amount: 3n, flags: 0x200 }),
      tr({ id: 60n, amount: 3n, timestamp: 1n })
    ])
    assert.deepStrictEqual(statuses(results), [
      T.exists_with_different_debit_account_id,
      T.exists_with_different_debit_account_id,
      T.exists_with_different_ledger,
      T.reserved_flag,
      T.timestamp_must_be_zero
    ])
  })

  it("checks transfer fields in the spec's order", () => {
    const { d } = setup()
    const results = d.createTransfers([
      tr({ id: 0n, debit_account_id: 0n }),
      tr({ id: MAX128 }),
      tr({ id: 61n, debit_account_id: 0n, credit_account_id: 0n }),
      tr({ id: 62n, debit_account_id: MAX128 }),
      tr({ id: 63n, credit_account_id: 0n }),
      tr({ id: 64n, credit_account_id: MAX128 }),
      tr({ id: 65n, credit_account_id: 1n, pending_id: 3n }),
      tr({ id: 66n, pending_id: 3n, timeout: 1 }),
      tr({ id: 67n, timeout: 1, flags: TF.closing_debit }),
      tr({ id: 68n, flags: TF.closing_credit, ledger: 0 }),
      tr({ id: 69n, ledger: 0, code: 0, debit_account_id: 99n }),
      tr({ id: 70n, code: 0, debit_account_id: 99n }),
      tr({ id: 71n, debit_account_id: 99n, credit_account_id: 98n }),
      tr({ id: 72n, credit_account_id: 98n }),
      tr({ id: 73n, credit_account_id: 9n, ledger: 3 }),
      tr({ id: 74n, ledger: 2 })
    ])
    assert.deepStrictEqual(statuses(results), [
      T.id_must_not_be_zero,
      T.id_must_not_be_int_max,
      T.debit_account_id_must_not_be_zero,
      T.debit_account_id_must_not_be_int_max,
      T.credit_account_id_must_not_be_zero,
      T.credit_account_id_must_not_be_int_max,
      T.accounts_must_be_different,
      T.pending_id_must_be_zero,
      T.timeout_reserved_for_pending_transfer,
      T.closing_transfer_must_be_pending,
      T.ledger_must_not_be_zero,
      T.code_must_not_be_zero,
      T.debit_account_not_found,
      T.credit_account_not_found,
      T.accounts_must_have_the_same_ledger,
      T.transfer_must_have_the_same_ledger_as_accounts
    ])
  })

  it("accepts every combination of pending, balancing and closing flags (no mutual exclusion, §9.1)", () => {
    const { d } = setup()
    const results = d.createTransfers([
      tr({ id: 80n, amount: 0n, flags: TF.pending | TF.balancing_debit | TF.balancing_credit }),
      tr({ id: 81n, debit_account_id: 3n, credit_account_id: 4n, flags: TF.pending | TF.closing_debit | TF.closing_credit | TF.balancing_debit })
    ])
    assert.deepStrictEqual(statuses(results), [CREATED, CREATED])
    assert.strictEqual(d.lookupAccounts([3n])[0]!.flags & AF.closed, AF.closed)
    assert.strictEqual(d.lookupAccounts([4n])[0]!.flags & AF.closed, AF.closed)
  })
})

describe("reference model: burnt ids (§9.5, §17.4)", () => {
  it("burns an id for every transient status, and only for those", () => {
    const { d } = setup({ 1: AF.debits_must_not_exceed_credits, 4: AF.credits_must_not_exceed_debits })
    const results = d.createTransfers([
      tr({ id: 90n, debit_account_id: 55n }),
      tr({ id: 91n, credit_account_id: 55n }),
      tr({ id: 92n, pending_id: 55n, flags: TF.post_pending_transfer }),
      tr({ id: 93n, amount: 1n }),
      tr({ id: 94n, debit_account_id: 2n, credit_account_id: 4n, amount: 1n }),
      tr({ id: 95n, ledger: 0 })
    ])
    assert.deepStrictEqual(statuses(results), [
      T.debit_account_not_found,
      T.credit_account_not_found,
      T.pending_transfer_not_found,
      T.exceeds_credits,
      T.exceeds_debits,
      T.ledger_must_not_be_zero
    ])
    const retry = d.createTransfers([90n, 91n, 92n, 93n, 94n, 95n].map((id) => tr({ id, debit_account_id: 2n, credit_account_id: 3n })))
    assert.deepStrictEqual(statuses(retry), [T.id_already_failed, T.id_already_failed, T.id_already_failed, T.id_already_failed, T.id_already_failed, CREATED])
  })
})

describe("reference model: two-phase transfers (§10, §17.5, §17.6)", () => {
  it("runs the §10.2 examples against a pending 123", () => {
    const cases: Array<[bigint, number, number, bigint]> = [
      // [amount, flags, status, debits_posted after]
      [100n, TF.post_pending_transfer, CREATED, 100n],
      [AMOUNT_MAX, TF.post_pending_transfer, CREATED, 123n],
      [0n, TF.post_pending_transfer, CREATED, 0n],
      [0n, TF.void_pending_transfer, CREATED, 0n],
      [123n, TF.void_pending_transfer, CREATED, 0n],
      [122n, TF.void_pending_transfer, T.pending_transfer_has_different_amount, 0n],
      [124n, TF.post_pending_transfer, T.exceeds_pending_transfer_amount, 0n],
      [124n, TF.void_pending_transfer, T.exceeds_pending_transfer_amount, 0n]
    ]
    for (const [amount, flags, status, posted] of cases) {
      const { d } = setup()
      assert.deepStrictEqual(statuses(d.createTransfers([tr({ id: 1n, amount: 123n, flags: TF.pending })])), [CREATED])
      assert.deepStrictEqual(balances(d, 1n), [123n, 0n, 0n, 0n])
      const results = d.createTransfers([transfer({ id: 2n, pending_id: 1n, amount, flags })])
      assert.deepStrictEqual(statuses(results), [status], `${amount} ${flags}`)
      const resolved = status === CREATED
      assert.deepStrictEqual(balances(d, 1n), [resolved ? 0n : 123n, posted, 0n, 0n])
      assert.deepStrictEqual(balances(d, 2n), [0n, 0n, resolved ? 0n : 123n, posted])
      if (resolved) {
        const stored = d.lookupTransfers([2n])[0]!
        assert.strictEqual(stored.amount, flags === TF.void_pending_transfer ? 123n : posted)
        assert.strictEqual(stored.debit_account_id, 1n)
        assert.strictEqual(stored.ledger, 1)
        assert.strictEqual(stored.code, 1)
      }
    }
  })

  it("inherits user data when zero, resolves once, and follows the post/void validation order", () => {
    const { d } = setup()
    d.createTransfers([
      tr({ id: 1n, amount: 10n, flags: TF.pending, user_data_64: 5n, user_data_32: 6 }),
      tr({ id: 2n, amount: 10n })
    ])
    const results = d.createTransfers([
      transfer({ id: 3n, pending_id: 1n, flags: TF.post_pending_transfer | TF.void_pending_transfer }),
      transfer({ id: 3n, pending_id: 1n, flags: TF.post_pending_transfer | TF.balancing_credit }),
      transfer({ id: 3n, pending_id: 0n, flags: TF.void_pending_transfer }),
      transfer({ id: 3n, pending_id: MAX128, flags: TF.void_pending_transfer }),
      transfer({ id: 3n, pending_id: 3n, flags: TF.void_pending_transfer }),
      transfer({ id: 3n, pending_id: 1n, timeout: 1, flags: TF.void_pending_transfer }),
      transfer({ id: 4n, pending_id: 2n, flags: TF.void_pending_transfer }),
      transfer({ id: 5n, pending_id: 1n, debit_account_id: 3n, flags: TF.void_pending_transfer }),
      transfer({ id: 5n, pending_id: 1n, credit_account_id: 3n, flags: TF.void_pending_transfer }),
      transfer({ id: 5n, pending_id: 1n, ledger: 2, flags: TF.void_pending_transfer }),
      transfer({ id: 5n, pending_id: 1n, code: 2, flags: TF.void_pending_transfer }),
      transfer({ id: 5n, pending_id: 1n, amount: 4n, user_data_32: 9, flags: TF.post_pending_transfer }),
      transfer({ id: 6n, pending_id: 1n, flags: TF.void_pending_transfer }),
      transfer({ id: 6n, pending_id: 1n, amount: 10n, flags: TF.void_pending_transfer })
    ])
    assert.deepStrictEqual(statuses(results), [
      T.flags_are_mutually_exclusive,
      T.flags_are_mutually_exclusive,
      T.pending_id_must_not_be_zero,
      T.pending_id_must_not_be_int_max,
      T.pending_id_must_be_different,
      T.timeout_reserved_for_pending_transfer,
      T.pending_transfer_not_pending,
      T.pending_transfer_has_different_debit_account_id,
      T.pending_transfer_has_different_credit_account_id,
      T.pending_transfer_has_different_ledger,
      T.pending_transfer_has_different_code,
      CREATED,
      T.pending_transfer_already_posted,
      T.pending_transfer_already_posted
    ])
    const post = d.lookupTransfers([5n])[0]!
    assert.deepStrictEqual([post.amount, post.user_data_64, post.user_data_32, post.timeout], [4n, 5n, 9, 0])
    assert.deepStrictEqual(balances(d, 1n), [0n, 14n, 0n, 0n])
  })

  it("compares a resubmitted post/void against the pending transfer where the request inherits (§13.2)", () => {
    const { d } = setup()
    d.createTransfers([
      tr({ id: 1n, amount: 10n, flags: TF.pending, user_data_128: 7n }),
      tr({ id: 2n, amount: 10n, flags: TF.pending }),
      transfer({ id: 3n, pending_id: 1n, amount: AMOUNT_MAX, flags: TF.post_pending_transfer }),
      transfer({ id: 4n, pending_id: 2n, amount: 0n, flags: TF.void_pending_transfer })
    ])
    const results = d.createTransfers([
      transfer({ id: 3n, pending_id: 1n, amount: AMOUNT_MAX, flags: TF.post_pending_transfer }),
      transfer({ id: 3n, pending_id: 1n, amount: 10n, flags: TF.post_pending_transfer, debit_account_id: 1n, ledger: 1, code: 1, user_data_128: 7n }),
      transfer({ id: 3n, pending_id: 1n, amount: 9n, flags: TF.post_pending_transfer }),
      transfer({ id: 3n, pending_id: 1n, amount: AMOUNT_MAX, flags: TF.post_pending_transfer, user_data_128: 8n }),
      transfer({ id: 3n, pending_id: 1n, amount: AMOUNT_MAX, flags: TF.post_pending_transfer, credit_account_id: 1n }),
      transfer({ id: 3n, pending_id: 1n, amount: AMOUNT_MAX, flags: TF.post_pending_transfer, ledger: 2 }),
      transfer({ id: 3n, pending_id: 2n, amount: AMOUNT_MAX, flags: TF.post_pending_transfer }),
      transfer({ id: 3n, pending_id: 1n, amount: AMOUNT_MAX, flags: TF.void_pending_transfer }),
      transfer({ id: 4n, pending_id: 2n, amount: 10n, flags: TF.void_pending_transfer }),
      transfer({ id: 4n, pending_id: 2n, amount: 0n, flags: TF.void_pending_transfer, code: 3 })
    ])
    assert.deepStrictEqual(statuses(results), [
      T.exists,
      T.exists,
      T.exists_with_different_amount,
      T.exists_with_different_user_data_128,
      T.exists_with_different_credit_account_id,
      T.exists_with_different_ledger,
      T.exists_with_different_pending_id,
      T.exists_with_different_flags,
      T.exists,
      T.exists_with_different_code
    ])
  })

  it("matches a balancing resubmission whose amount is at least the stored one (§13.2 rule 5)", () => {
    const { d } = setup()
    d.createTransfers([tr({ id: 1n, debit_account_id: 2n, credit_account_id: 1n, amount: 5n }), tr({ id: 2n, amount: 100n, flags: TF.balancing_debit })])
    assert.strictEqual(d.lookupTransfers([2n])[0]!.amount, 5n)
    const results = d.createTransfers([
      tr({ id: 2n, amount: 100n, flags: TF.balancing_debit }),
      tr({ id: 2n, amount: 5n, flags: TF.balancing_debit }),
      tr({ id: 2n, amount: 4n, flags: TF.balancing_debit })
    ])
    assert.deepStrictEqual(statuses(results), [T.exists, T.exists, T.exists_with_different_amount])
  })

  it("expires pending transfers in pulses, by (expires_at, timestamp), and at the slot for post/void (§10.3, §10.4)", () => {
    const { model, d } = setup()
    d.createTransfers([tr({ id: 1n, amount: 3n, flags: TF.pending, timeout: 2 }), tr({ id: 2n, amount: 4n, flags: TF.pending, timeout: 1 })])
    const t2 = d.lookupTransfers([2n])[0]!.timestamp
    assert.strictEqual(model.nextExpiry(), t2 + 1_000_000_000n)
    d.advance(1_000_000_000n)
    // Due but not swept: the post fails at its slot and the id is not burnt (not transient).
    assert.deepStrictEqual(statuses(d.createTransfers([transfer({ id: 3n, pending_id: 2n, flags: TF.post_pending_transfer })])), [T.pending_transfer_expired])
    assert.deepStrictEqual(balances(d, 1n), [7n, 0n, 0n, 0n])
    assert.strictEqual(d.pulse(), 1)
    assert.deepStrictEqual(balances(d, 1n), [3n, 0n, 0n, 0n])
    assert.deepStrictEqual(statuses(d.createTransfers([transfer({ id: 3n, pending_id: 2n, flags: TF.void_pending_transfer })])), [T.pending_transfer_expired])
    d.advance(1_000_000_000n)
    assert.strictEqual(d.pulse(), 1)
    assert.strictEqual(model.nextExpiry(), undefined)
    assert.strictEqual(d.pulse(), 0)
    assert.deepStrictEqual(balances(d, 2n), [0n, 0n, 0n, 0n])
    model.checkInvariants()
  })

  it("checks the timeout overflow against MAX63 (§9.1 step 21)", () => {
    const model = new ReferenceLedger()
    const d = new Driver(model, MAX63 - 5_000_000_000n)
    d.createAccounts([account({ id: 1n, ledger: 1, code: 1 }), account({ id: 2n, ledger: 1, code: 1 })])
    const results = d.createTransfers([tr({ id: 1n, flags: TF.pending, timeout: 10 }), tr({ id: 2n, flags: TF.pending, timeout: 4 })])
    assert.deepStrictEqual(statuses(results), [T.overflows_timeout, CREATED])
  })
})

describe("reference model: balancing and limits (§9.3, §17.7, §17.8)", () => {
  it("limits balancing amounts with saturating_sub, whatever the limit flags", () => {
    const { d } = setup({ 3: AF.credits_must_not_exceed_debits })
    d.createTransfers([tr({ id: 1n, debit_account_id: 2n, credit_account_id: 1n, amount: 10n })])
    const results = d.createTransfers([
      tr({ id: 2n, debit_account_id: 1n, credit_account_id: 2n, amount: AMOUNT_MAX, flags: TF.balancing_debit | TF.pending }),
      tr({ id: 3n, debit_account_id: 1n, credit_account_id: 2n, amount: AMOUNT_MAX, flags: TF.balancing_debit }),
      tr({ id: 4n, debit_account_id: 2n, credit_account_id: 3n, amount: 50n, flags: TF.balancing_credit })
    ])
    assert.deepStrictEqual(statuses(results), [CREATED, CREATED, CREATED])
    assert.deepStrictEqual(d.lookupTransfers([2n, 3n, 4n]).map((t) => t.amount), [10n, 0n, 0n])
  })

  it("still enforces the other side's limit for a balancing transfer (exceeds_credits)", () => {
    const { d } = setup({ 1: AF.debits_must_not_exceed_credits })
    d.createTransfers([tr({ id: 1n, debit_account_id: 3n, credit_account_id: 2n, amount: 5n })])
    const results = d.createTransfers([tr({ id: 2n, debit_account_id: 1n, credit_account_id: 3n, amount: 4n, flags: TF.balancing_credit })])
    assert.deepStrictEqual(statuses(results), [T.exceeds_credits])
  })

  it("reports every overflow in order, pending transfers checking the posted and total sums too", () => {
    const { d } = setup()
    const half = 1n << 127n
    assert.deepStrictEqual(statuses(d.createTransfers([tr({ id: 1n, amount: MAX128 })])), [CREATED])
    const results = d.createTransfers([
      tr({ id: 2n, amount: 1n }),
      tr({ id: 3n, debit_account_id: 3n, amount: 1n }),
      tr({ id: 4n, debit_account_id: 1n, credit_account_id: 3n, amount: 1n, flags: TF.pending }),
      tr({ id: 5n, debit_account_id: 3n, credit_account_id: 4n, amount: half, flags: TF.pending }),
      tr({ id: 6n, debit_account_id: 3n, credit_account_id: 4n, amount: half }),
      tr({ id: 7n, debit_account_id: 4n, credit_account_id: 3n, amount: half, flags: TF.pending }),
      tr({ id: 8n, debit_account_id: 2n, credit_account_id: 3n, amount: half })
    ])
    assert.deepStrictEqual(statuses(results), [
      T.overflows_debits_posted,
      T.overflows_credits_posted,
      T.overflows_debits_posted,
      CREATED,
      T.overflows_debits,
      CREATED,
      T.overflows_credits
    ])
    const more = d.createTransfers([
      tr({ id: 9n, debit_account_id: 3n, credit_account_id: 4n, amount: half, flags: TF.pending }),
      tr({ id: 10n, debit_account_id: 2n, credit_account_id: 3n, amount: half, flags: TF.pending })
    ])
    assert.deepStrictEqual(statuses(more), [T.overflows_debits_pending, T.overflows_credits_pending])
  })
})

describe("reference model: closing (§12)", () => {
  it("closes with a pending closing transfer, rejects transfers but allows voids, reopens on void", () => {
    const { model, d } = setup()
    const results = d.createTransfers([
      tr({ id: 1n, amount: 5n, flags: TF.pending }),
      tr({ id: 2n, amount: 0n, flags: TF.pending | TF.closing_debit }),
      tr({ id: 3n, amount: 1n }),
      tr({ id: 4n, debit_account_id: 2n, credit_account_id: 1n, amount: 1n }),
      transfer({ id: 5n, pending_id: 2n, flags: TF.post_pending_transfer }),
      transfer({ id: 6n, pending_id: 1n, amount: AMOUNT_MAX, flags: TF.post_pending_transfer }),
      transfer({ id: 7n, pending_id: 1n, flags: TF.void_pending_transfer })
    ])
    assert.deepStrictEqual(statuses(results), [
      CREATED,
      CREATED,
      T.debit_account_already_closed,
      T.credit_account_already_closed,
      T.debit_account_already_closed,
      T.debit_account_already_closed,
      CREATED
    ])
    assert.strictEqual(d.lookupAccounts([1n])[0]!.flags, AF.closed)
    // A closed account no longer matches its creation event (§13.1).
    assert.deepStrictEqual(statuses(d.createAccounts([account({ id: 1n, ledger: 1, code: 10 })])), [A.exists_with_different_flags])
    assert.deepStrictEqual(statuses(d.createTransfers([transfer({ id: 8n, pending_id: 2n, flags: TF.void_pending_transfer })])), [CREATED])
    assert.strictEqual(d.lookupAccounts([1n])[0]!.flags, 0)
    assert.deepStrictEqual(statuses(d.createTransfers([tr({ id: 9n, amount: 1n })])), [CREATED])
    model.checkInvariants()
  })

  it("reopens on expiry and keeps accounts created closed closed forever", () => {
    const { d } = setup()
    d.createAccounts([account({ id: 5n, ledger: 1, code: 1, flags: AF.closed })])
    d.createTransfers([tr({ id: 1n, flags: TF.pending | TF.closing_credit, timeout: 1 })])
    assert.strictEqual(d.lookupAccounts([2n])[0]!.flags, AF.closed)
    d.advance(1_000_000_000n)
    assert.strictEqual(d.pulse(), 1)
    assert.strictEqual(d.lookupAccounts([2n])[0]!.flags, 0)
    assert.deepStrictEqual(statuses(d.createTransfers([tr({ id: 2n, credit_account_id: 5n })])), [T.credit_account_already_closed])
  })
})

describe("reference model: imported events (§11)", () => {
  it("lets the first event decide and checks the timestamp range before anything else", () => {
    const d = new Driver(new ReferenceLedger(), 10_000n)
    const results = d.createAccounts([
      account({ id: 1n, ledger: 1, code: 1, flags: AF.imported, timestamp: 100n }),
      account({ id: 2n, ledger: 1, code: 1 }),
      account({ id: 0n, ledger: 1, code: 1, flags: AF.imported, timestamp: 0n }),
      account({ id: 0n, ledger: 1, code: 1, flags: AF.imported, timestamp: MAX63 + 1n }),
      account({ id: 0n, ledger: 1, code: 1, flags: AF.imported, timestamp: 20_000n }),
      account({ id: 1n, ledger: 1, code: 1, flags: AF.imported, timestamp: 200n }),
      account({ id: 6n, ledger: 1, code: 1, flags: AF.imported, timestamp: 100n }),
      account({ id: 7n, ledger: 1, code: 1, flags: AF.imported, timestamp: 101n })
    ])
    assert.deepStrictEqual(results, [
      { timestamp: 100n, status: CREATED },
      { timestamp: d.now - 6n, status: A.imported_event_expected },
      { timestamp: d.now - 5n, status: A.imported_event_timestamp_out_of_range },
      { timestamp: d.now - 4n, status: A.imported_event_timestamp_out_of_range },
      { timestamp: d.now - 3n, status: A.imported_event_timestamp_must_not_advance },
      { timestamp: 100n, status: A.exists },
      { timestamp: d.now - 1n, status: A.imported_event_timestamp_must_not_regress },
      { timestamp: 101n, status: CREATED }
    ])
    const notExpected = d.createAccounts([account({ id: 8n, ledger: 1, code: 1 }), account({ id: 9n, ledger: 1, code: 1, flags: AF.imported, timestamp: 5n })])
    assert.deepStrictEqual(statuses(notExpected), [CREATED, A.imported_event_not_expected])
  })

  it("rejects an imported timestamp inside the batch's own slot window (§11 edge case)", () => {
    const d = new Driver(new ReferenceLedger(), 10_000n)
    // Batch of 3 with T = 10_004: slots 10_002, 10_003, 10_004.
    const results = d.createAccounts([
      account({ id: 1n, ledger: 1, code: 1, flags: AF.imported, timestamp: 10_003n }),
      account({ id: 2n, ledger: 1, code: 1, flags: AF.imported, timestamp: 10_004n }),
      account({ id: 3n, ledger: 1, code: 1, flags: AF.imported, timestamp: 10_003n })
    ])
    assert.strictEqual(d.now, 10_004n)
    assert.deepStrictEqual(results, [
      { timestamp: 10_002n, status: A.imported_event_timestamp_must_not_advance },
      { timestamp: 10_003n, status: A.imported_event_timestamp_must_not_advance },
      { timestamp: 10_003n, status: CREATED }
    ])
  })

  it("applies the transfer import rules: regress, postdate, timeout, and the imported timestamp as the object's", () => {
    const d = new Driver(new ReferenceLedger(), 10_000n)
    d.createAccounts([
      account({ id: 1n, ledger: 1, code: 1, flags: AF.imported, timestamp: 100n }),
      account({ id: 2n, ledger: 1, code: 1, flags: AF.imported, timestamp: 200n })
    ])
    const results = d.createTransfers([
      tr({ id: 1n, amount: 1n, flags: TF.imported, timestamp: 150n }),
      tr({ id: 2n, amount: 1n, flags: TF.imported, timestamp: 200n }),
      tr({ id: 3n, debit_account_id: 2n, credit_account_id: 1n, amount: 1n, flags: TF.imported, timestamp: 150n }),
      tr({ id: 4n, amount: 1n, flags: TF.imported | TF.pending, timeout: 5, timestamp: 300n }),
      tr({ id: 5n, amount: 1n, flags: TF.imported | TF.pending, timestamp: 300n }),
      tr({ id: 6n, amount: 1n, flags: TF.imported, timestamp: 300n }),
      transfer({ id: 7n, pending_id: 5n, flags: TF.imported | TF.post_pending_transfer, amount: AMOUNT_MAX, timestamp: 301n })
    ])
    assert.deepStrictEqual(statuses(results), [
      T.imported_event_timestamp_must_postdate_credit_account,
      T.imported_event_timestamp_must_not_regress,
      T.imported_event_timestamp_must_postdate_debit_account,
      T.imported_event_timeout_must_be_zero,
      CREATED,
      T.imported_event_timestamp_must_not_regress,
      CREATED
    ])
    assert.deepStrictEqual(d.lookupTransfers([5n, 7n]).map((t) => t.timestamp), [300n, 301n])
    assert.deepStrictEqual(results[6]!.timestamp, 301n)
  })
})

describe("reference model: imports inside chains and undefined cases (§6.3, §11)", () => {
  it("keeps an imported timestamp on a rolled-back event and rolls back the import watermark", () => {
    const d = new Driver(new ReferenceLedger(), 10_000n)
    const results = d.createAccounts([
      account({ id: 1n, ledger: 1, code: 1, flags: AF.imported | AF.linked, timestamp: 500n }),
      account({ id: 2n, ledger: 0, code: 1, flags: AF.imported, timestamp: 600n })
    ])
    assert.deepStrictEqual(results, [
      { timestamp: 500n, status: A.linked_event_failed },
      { timestamp: d.now, status: A.ledger_must_not_be_zero }
    ])
    // The watermark went back with the chain: 400 < 500 may be imported now.
    assert.deepStrictEqual(statuses(d.createAccounts([account({ id: 3n, ledger: 1, code: 1, flags: AF.imported, timestamp: 400n })])), [CREATED])
  })

  it("rejects an imported post/void of a live timed pending transfer unless told to accept it", () => {
    for (const policy of ["reject", "accept"] as const) {
      const d = new Driver(new ReferenceLedger({ importedResolveOfTimedPending: policy }))
      d.createAccounts([account({ id: 1n, ledger: 1, code: 1 }), account({ id: 2n, ledger: 1, code: 1 })])
      d.createTransfers([tr({ id: 1n, amount: 5n, flags: TF.pending, timeout: 1 }), tr({ id: 2n, amount: 5n, flags: TF.pending })])
      const prev = d.now
      const results = d.createTransfers([
        transfer({ id: 3n, pending_id: 1n, flags: TF.void_pending_transfer | TF.imported, timestamp: prev + 1n }),
        transfer({ id: 4n, pending_id: 2n, flags: TF.void_pending_transfer | TF.imported, timestamp: prev + 2n })
      ])
      assert.deepStrictEqual(statuses(results), [policy === "reject" ? T.imported_event_timestamp_must_not_advance : CREATED, CREATED], policy)
    }
  })
})

describe("reference model: reads (§14, §17.9, §17.11, §17.12)", () => {
  it("skips missing ids in lookups and returns duplicates again", () => {
    const { d } = setup()
    assert.deepStrictEqual(d.lookupAccounts([2n, 0n, MAX128, 77n, 2n]).map((a) => a.id), [2n, 2n])
  })

  it("filters account transfers by side, fields and range, sorts, reverses and limits", () => {
    const { d } = setup()
    d.createTransfers([
      tr({ id: 1n, amount: 1n, code: 5 }),
      tr({ id: 2n, debit_account_id: 2n, credit_account_id: 1n, amount: 2n, user_data_64: 9n }),
      tr({ id: 3n, debit_account_id: 3n, credit_account_id: 4n, amount: 3n }),
      tr({ id: 4n, amount: 4n, flags: TF.pending, code: 5 })
    ])
    const ids = (f: Parameters<typeof accountFilter>[0]) => d.getAccountTransfers(accountFilter(f)).map((t) => t.id)
    assert.deepStrictEqual(ids({ account_id: 1n }), [1n, 2n, 4n])
    assert.deepStrictEqual(ids({ account_id: 1n, flags: AFF.debits }), [1n, 4n])
    assert.deepStrictEqual(ids({ account_id: 1n, flags: AFF.credits | AFF.reversed }), [2n])
    assert.deepStrictEqual(ids({ account_id: 1n, flags: AFF.debits | AFF.credits | AFF.reversed, limit: 2 }), [4n, 2n])
    assert.deepStrictEqual(ids({ account_id: 1n, code: 5, user_data_64: 0n }), [1n, 4n])
    assert.deepStrictEqual(ids({ account_id: 1n, user_data_64: 9n }), [2n])
    const [t1, t2] = d.lookupTransfers([1n, 2n])
    assert.deepStrictEqual(ids({ account_id: 1n, timestamp_min: t1!.timestamp + 1n, timestamp_max: t2!.timestamp }), [2n])
    // Invalid filters fail softly.
    assert.deepStrictEqual(ids({ account_id: 0n }), [])
    assert.deepStrictEqual(ids({ account_id: MAX128 }), [])
    assert.deepStrictEqual(ids({ account_id: 1n, flags: AFF.reversed }), [])
    assert.deepStrictEqual(ids({ account_id: 1n, flags: 3 | 8 }), [])
    assert.deepStrictEqual(ids({ account_id: 1n, limit: 0 }), [])
    assert.deepStrictEqual(ids({ account_id: 1n, timestamp_min: 5n, timestamp_max: 4n }), [])
    assert.deepStrictEqual(ids({ account_id: 1n, timestamp_max: MAX63 + 1n }), [])
    assert.deepStrictEqual(ids({ account_id: 1n, reserved: new Uint8Array(58).fill(1, 57) }), [])
    assert.deepStrictEqual(ids({ account_id: 1n, timestamp_min: t2!.timestamp, timestamp_max: 0n }), [2n, 4n])
    assert.deepStrictEqual(ids({ account_id: 1n, limit: 0xffffffff }), [1n, 2n, 4n])
  })

  it("returns balances after each transfer only for history accounts, never for expiries", () => {
    const { d } = setup({ 1: AF.history })
    d.createTransfers([tr({ id: 1n, amount: 5n, flags: TF.pending, timeout: 1 }), tr({ id: 2n, debit_account_id: 3n, credit_account_id: 1n, amount: 7n })])
    d.advance(1_000_000_000n)
    assert.strictEqual(d.pulse(), 1)
    d.createTransfers([tr({ id: 3n, amount: 0n })])
    const rows = d.getAccountBalances(accountFilter({ account_id: 1n }))
    const [t1, t2, t3] = d.lookupTransfers([1n, 2n, 3n])
    assert.deepStrictEqual(rows, [
      { debits_pending: 5n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n, timestamp: t1!.timestamp },
      { debits_pending: 5n, debits_posted: 0n, credits_pending: 0n, credits_posted: 7n, timestamp: t2!.timestamp },
      { debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 7n, timestamp: t3!.timestamp }
    ])
    assert.deepStrictEqual(d.getAccountBalances(accountFilter({ account_id: 2n })), [])
    assert.deepStrictEqual(d.getAccountBalances(accountFilter({ account_id: 1n, flags: AFF.credits | AFF.reversed, limit: 1 })).map((r) => r.timestamp), [t2!.timestamp])
    assert.deepStrictEqual(d.getAccountBalances(accountFilter({ account_id: 1n, limit: 0 })), [])
  })

  it("queries by the AND of nonzero fields and a timestamp range", () => {
    const { d } = setup()
    d.createAccounts([account({ id: 20n, ledger: 1, code: 3, user_data_32: 4 }), account({ id: 21n, ledger: 7, code: 3, user_data_128: 4n })])
    d.createTransfers([tr({ id: 1n, user_data_128: 4n, code: 3 }), tr({ id: 2n, user_data_128: 4n })])
    const accountIds = (f: Parameters<typeof queryFilter>[0]) => d.queryAccounts(queryFilter(f)).map((a) => a.id)
    assert.deepStrictEqual(accountIds({ code: 3 }), [20n, 21n])
    assert.deepStrictEqual(accountIds({ code: 3, ledger: 7 }), [21n])
    assert.deepStrictEqual(accountIds({ code: 3, flags: QFF.reversed }), [21n, 20n])
    assert.deepStrictEqual(accountIds({ user_data_32: 4 }), [20n])
    assert.deepStrictEqual(accountIds({}).length, 7)
    assert.deepStrictEqual(accountIds({ limit: 2 }), [1n, 2n])
    assert.deepStrictEqual(accountIds({ flags: 2 }), [])
    assert.deepStrictEqual(accountIds({ reserved: new Uint8Array([0, 0, 0, 0, 0, 1]) }), [])
    const transferIds = (f: Parameters<typeof queryFilter>[0]) => d.queryTransfers(queryFilter(f)).map((t) => t.id)
    assert.deepStrictEqual(transferIds({ user_data_128: 4n }), [1n, 2n])
    assert.deepStrictEqual(transferIds({ user_data_128: 4n, code: 3 }), [1n])
    const [a21] = d.lookupAccounts([21n])
    assert.deepStrictEqual(accountIds({ timestamp_min: a21!.timestamp }), [21n])
    assert.deepStrictEqual(accountIds({ timestamp_max: a21!.timestamp - 1n, flags: QFF.reversed, limit: 1 }), [20n])
  })
})

describe("reference model: invariants (§5)", () => {
  it("notices a broken invariant", () => {
    const { model, d } = setup()
    d.createTransfers([tr({ id: 1n, amount: 5n })])
    model.checkInvariants()
    // Corrupt a stored balance through the state copy's source: the check must fail.
    const corrupted = model as unknown as { current: { accounts: Map<bigint, { debits_posted: bigint }> } }
    corrupted.current.accounts.get(1n)!.debits_posted = 4n
    assert.throws(() => model.checkInvariants())
  })

  it("returns a comparable copy of its state", () => {
    const { model, d } = setup()
    d.createTransfers([tr({ id: 1n, amount: 5n, flags: TF.pending })])
    const state = model.state()
    assert.deepStrictEqual(state.accounts.map((a) => a.id), [1n, 2n, 3n, 4n, 9n])
    assert.strictEqual(state.pendingStatus.get(1n), "pending")
    assert.deepStrictEqual(decodeAccount(model.accountsBytes(), 0), state.accounts[0])
    assert.strictEqual(model.transfersBytes().length, 128)
  })
})

function decodeResults(reply: Uint8Array) {
  const v = new DataView(reply.buffer, reply.byteOffset, reply.byteLength)
  const out: Array<{ timestamp: bigint; status: number }> = []
  for (let o = 0; o < reply.length; o += 16) out.push({ timestamp: v.getBigUint64(o, true), status: v.getUint32(o + 8, true) })
  return out
}
