/**
 * create_accounts tables (spec §8, §13.1, §16.1, §17): every CreateAccountStatus with a case that
 * produces it, every adjacent pair of the §8.1 precedence order (an event violating both rules
 * reports the earlier one), the result timestamps of §6.3 and what a created account looks like
 * when read back (§1.1, §8.2).
 */
import { describe, expect, it } from "@effect/vitest"
import {
  type Account,
  AccountFlags,
  Cluster,
  acct,
  implementations,
  statuses,
  timestampMax,
  u128Max,
  xfer
} from "./table_harness.ts"

const F = AccountFlags

/** Account 100 exists before every case: the target of the idempotency rows. */
const existing: Account = acct(100n, { user_data_128: 5n, user_data_64: 6n, user_data_32: 7, ledger: 1, code: 2, flags: F.history })

interface StatusCase {
  /** What the row proves. */
  readonly name: string
  /** The batch, built when the clock is known (imported rows need the batch end timestamp T). */
  readonly events: (c: Cluster) => Array<Account>
  /** The status names, one per event. */
  readonly expect: Array<string>
}

const imported = (id: bigint, timestamp: bigint, fields: Partial<Account> = {}): Account =>
  acct(id, { ...fields, flags: F.imported | (fields.flags ?? 0), timestamp })

/**
 * A timestamp after every object `fresh()` creates and before the next batch's slots: the cluster
 * clock jumped ahead after the setup, so this stretch of past time is unused.
 */
const past = (c: Cluster): bigint => c.now - 1_000n

/** Every status a single event (or the smallest batch) can produce. */
const everyStatus: Array<StatusCase> = [
  { name: "a valid account is created", events: () => [acct(1n)], expect: ["created"] },
  { name: "a lone linked event leaves its chain open", events: () => [acct(1n, { flags: F.linked })], expect: ["linked_event_chain_open"] },
  {
    name: "an event after a chain failure fails with the chain",
    events: () => [acct(1n, { flags: F.linked, ledger: 0 }), acct(2n)],
    expect: ["ledger_must_not_be_zero", "linked_event_failed"]
  },
  {
    name: "a non-imported event in an imported batch expects the import flag",
    events: (c) => [imported(1n, past(c)), acct(2n)],
    expect: ["created", "imported_event_expected"]
  },
  {
    name: "an imported event in a non-imported batch is not expected",
    events: (c) => [acct(1n), imported(2n, past(c))],
    expect: ["created", "imported_event_not_expected"]
  },
  { name: "an imported timestamp of 0 is out of range", events: () => [imported(1n, 0n)], expect: ["imported_event_timestamp_out_of_range"] },
  { name: "an imported timestamp of 2^63 is out of range", events: () => [imported(1n, timestampMax + 1n)], expect: ["imported_event_timestamp_out_of_range"] },
  { name: "an imported timestamp of u64 max is out of range", events: () => [imported(1n, (1n << 64n) - 1n)], expect: ["imported_event_timestamp_out_of_range"] },
  {
    name: "an imported timestamp equal to the batch end T must not advance",
    events: (c) => [imported(1n, c.nextBatchEnd(1))],
    expect: ["imported_event_timestamp_must_not_advance"]
  },
  {
    name: "an imported timestamp after T must not advance",
    events: (c) => [imported(1n, c.nextBatchEnd(1) + 1_000n)],
    expect: ["imported_event_timestamp_must_not_advance"]
  },
  { name: "a non-imported event must not carry a timestamp", events: () => [acct(1n, { timestamp: 1n })], expect: ["timestamp_must_be_zero"] },
  { name: "reserved must be zero", events: () => [acct(1n, { reserved: 1 })], expect: ["reserved_field"] },
  { name: "flag bit 6 is reserved", events: () => [acct(1n, { flags: 1 << 6 })], expect: ["reserved_flag"] },
  { name: "flag bit 15 is reserved", events: () => [acct(1n, { flags: 1 << 15 })], expect: ["reserved_flag"] },
  { name: "id 0 is refused", events: () => [acct(0n)], expect: ["id_must_not_be_zero"] },
  { name: "id 2^128-1 is refused", events: () => [acct(u128Max)], expect: ["id_must_not_be_int_max"] },
  { name: "a differing flag is reported", events: () => [{ ...existing, flags: 0 }], expect: ["exists_with_different_flags"] },
  { name: "a differing user_data_128 is reported", events: () => [{ ...existing, user_data_128: 50n }], expect: ["exists_with_different_user_data_128"] },
  { name: "a differing user_data_64 is reported", events: () => [{ ...existing, user_data_64: 60n }], expect: ["exists_with_different_user_data_64"] },
  { name: "a differing user_data_32 is reported", events: () => [{ ...existing, user_data_32: 70 }], expect: ["exists_with_different_user_data_32"] },
  { name: "a differing ledger is reported", events: () => [{ ...existing, ledger: 9 }], expect: ["exists_with_different_ledger"] },
  { name: "a differing code is reported", events: () => [{ ...existing, code: 9 }], expect: ["exists_with_different_code"] },
  { name: "an identical resubmission exists", events: () => [existing], expect: ["exists"] },
  {
    name: "both limit flags are mutually exclusive",
    events: () => [acct(1n, { flags: F.debits_must_not_exceed_credits | F.credits_must_not_exceed_debits })],
    expect: ["flags_are_mutually_exclusive"]
  },
  { name: "debits_pending must be zero", events: () => [acct(1n, { debits_pending: 1n })], expect: ["debits_pending_must_be_zero"] },
  { name: "debits_posted must be zero", events: () => [acct(1n, { debits_posted: 1n })], expect: ["debits_posted_must_be_zero"] },
  { name: "credits_pending must be zero", events: () => [acct(1n, { credits_pending: 1n })], expect: ["credits_pending_must_be_zero"] },
  { name: "credits_posted must be zero", events: () => [acct(1n, { credits_posted: 1n })], expect: ["credits_posted_must_be_zero"] },
  { name: "ledger must not be zero", events: () => [acct(1n, { ledger: 0 })], expect: ["ledger_must_not_be_zero"] },
  { name: "code must not be zero", events: () => [acct(1n, { code: 0 })], expect: ["code_must_not_be_zero"] },
  {
    name: "an imported timestamp at or below the newest account's must not regress",
    events: () => [imported(1n, 10n)],
    // Account 100 was created at the cluster's wall-clock time, far after 10.
    expect: ["imported_event_timestamp_must_not_regress"]
  }
]

/** Adjacent pairs of §8.1: each event violates both rules and must report the earlier one. */
const precedence: Array<StatusCase> = [
  {
    name: "chain_open beats linked_event_failed: the last linked event of a broken chain reports the open chain",
    events: () => [acct(1n, { flags: F.linked, ledger: 0 }), acct(2n, { flags: F.linked })],
    expect: ["ledger_must_not_be_zero", "linked_event_chain_open"]
  },
  {
    name: "linked_event_failed beats imported_event_expected",
    events: (c) => [imported(1n, past(c), { flags: F.linked, code: 0 }), acct(2n)],
    expect: ["code_must_not_be_zero", "linked_event_failed"]
  },
  {
    name: "linked_event_failed beats timestamp_must_be_zero",
    events: () => [acct(1n, { flags: F.linked, code: 0 }), acct(2n, { timestamp: 5n })],
    expect: ["code_must_not_be_zero", "linked_event_failed"]
  },
  {
    name: "imported_event_not_expected beats imported_event_timestamp_out_of_range",
    events: () => [acct(1n), imported(2n, 0n)],
    expect: ["created", "imported_event_not_expected"]
  },
  {
    name: "imported_event_expected beats timestamp_must_be_zero",
    events: (c) => [imported(1n, past(c)), acct(2n, { timestamp: 5n })],
    expect: ["created", "imported_event_expected"]
  },
  {
    name: "out_of_range beats must_not_advance (2^63 is both)",
    events: () => [imported(1n, 1n << 63n)],
    expect: ["imported_event_timestamp_out_of_range"]
  },
  {
    name: "must_not_advance beats reserved_field",
    events: (c) => [imported(1n, c.nextBatchEnd(1), { reserved: 1 })],
    expect: ["imported_event_timestamp_must_not_advance"]
  },
  { name: "out_of_range beats reserved_field", events: () => [imported(1n, 0n, { reserved: 1 })], expect: ["imported_event_timestamp_out_of_range"] },
  { name: "timestamp_must_be_zero beats reserved_field", events: () => [acct(1n, { timestamp: 1n, reserved: 1 })], expect: ["timestamp_must_be_zero"] },
  { name: "reserved_field beats reserved_flag", events: () => [acct(1n, { reserved: 1, flags: 1 << 6 })], expect: ["reserved_field"] },
  { name: "reserved_flag beats id_must_not_be_zero", events: () => [acct(0n, { flags: 1 << 6 })], expect: ["reserved_flag"] },
  { name: "reserved_flag beats id_must_not_be_int_max", events: () => [acct(u128Max, { flags: 1 << 9 })], expect: ["reserved_flag"] },
  {
    name: "id_must_not_be_zero beats flags_are_mutually_exclusive and every field check",
    events: () => [acct(0n, { flags: F.debits_must_not_exceed_credits | F.credits_must_not_exceed_debits, debits_pending: 1n, ledger: 0, code: 0 })],
    expect: ["id_must_not_be_zero"]
  },
  {
    name: "id_must_not_be_int_max beats flags_are_mutually_exclusive and every field check",
    events: () => [acct(u128Max, { flags: F.debits_must_not_exceed_credits | F.credits_must_not_exceed_debits, credits_posted: 1n, ledger: 0 })],
    expect: ["id_must_not_be_int_max"]
  },
  // §17: the exists family does not beat the batch-level, reserved and id checks.
  { name: "timestamp_must_be_zero beats exists", events: () => [{ ...existing, timestamp: 1n }], expect: ["timestamp_must_be_zero"] },
  { name: "reserved_field beats exists", events: () => [{ ...existing, reserved: 1 }], expect: ["reserved_field"] },
  { name: "reserved_flag beats exists_with_different_flags", events: () => [{ ...existing, flags: existing.flags | (1 << 10) }], expect: ["reserved_flag"] },
  {
    name: "imported_event_not_expected beats exists",
    events: () => [acct(1n), { ...existing, flags: existing.flags | F.imported, timestamp: 10n }],
    expect: ["created", "imported_event_not_expected"]
  },
  // The idempotency chain of §13.1.
  {
    name: "exists_with_different_flags beats exists_with_different_user_data_128",
    events: () => [{ ...existing, flags: 0, user_data_128: 50n }],
    expect: ["exists_with_different_flags"]
  },
  {
    name: "exists_with_different_user_data_128 beats exists_with_different_user_data_64",
    events: () => [{ ...existing, user_data_128: 50n, user_data_64: 60n }],
    expect: ["exists_with_different_user_data_128"]
  },
  {
    name: "exists_with_different_user_data_64 beats exists_with_different_user_data_32",
    events: () => [{ ...existing, user_data_64: 60n, user_data_32: 70 }],
    expect: ["exists_with_different_user_data_64"]
  },
  {
    name: "exists_with_different_user_data_32 beats exists_with_different_ledger",
    events: () => [{ ...existing, user_data_32: 70, ledger: 9 }],
    expect: ["exists_with_different_user_data_32"]
  },
  {
    name: "exists_with_different_ledger beats exists_with_different_code",
    events: () => [{ ...existing, ledger: 9, code: 9 }],
    expect: ["exists_with_different_ledger"]
  },
  // §17: the exists family beats the field checks after it.
  {
    name: "exists_with_different_flags beats flags_are_mutually_exclusive",
    events: () => [{ ...existing, flags: F.debits_must_not_exceed_credits | F.credits_must_not_exceed_debits }],
    expect: ["exists_with_different_flags"]
  },
  {
    name: "exists beats every balance must_be_zero check (balances are not compared)",
    events: () => [{ ...existing, debits_pending: 1n, debits_posted: 2n, credits_pending: 3n, credits_posted: 4n }],
    expect: ["exists"]
  },
  { name: "exists_with_different_ledger beats ledger_must_not_be_zero", events: () => [{ ...existing, ledger: 0 }], expect: ["exists_with_different_ledger"] },
  { name: "exists_with_different_code beats code_must_not_be_zero", events: () => [{ ...existing, code: 0 }], expect: ["exists_with_different_code"] },
  // The field checks of §8.1 steps 9–12.
  {
    name: "flags_are_mutually_exclusive beats debits_pending_must_be_zero",
    events: () => [acct(1n, { flags: F.debits_must_not_exceed_credits | F.credits_must_not_exceed_debits, debits_pending: 1n })],
    expect: ["flags_are_mutually_exclusive"]
  },
  {
    name: "debits_pending_must_be_zero beats debits_posted_must_be_zero",
    events: () => [acct(1n, { debits_pending: 1n, debits_posted: 1n })],
    expect: ["debits_pending_must_be_zero"]
  },
  {
    name: "debits_posted_must_be_zero beats credits_pending_must_be_zero",
    events: () => [acct(1n, { debits_posted: 1n, credits_pending: 1n })],
    expect: ["debits_posted_must_be_zero"]
  },
  {
    name: "credits_pending_must_be_zero beats credits_posted_must_be_zero",
    events: () => [acct(1n, { credits_pending: 1n, credits_posted: 1n })],
    expect: ["credits_pending_must_be_zero"]
  },
  {
    name: "credits_posted_must_be_zero beats ledger_must_not_be_zero",
    events: () => [acct(1n, { credits_posted: 1n, ledger: 0 })],
    expect: ["credits_posted_must_be_zero"]
  },
  { name: "ledger_must_not_be_zero beats code_must_not_be_zero", events: () => [acct(1n, { ledger: 0, code: 0 })], expect: ["ledger_must_not_be_zero"] },
  {
    name: "code_must_not_be_zero beats imported_event_timestamp_must_not_regress",
    events: () => [imported(1n, 10n, { code: 0 })],
    expect: ["code_must_not_be_zero"]
  },
  {
    name: "ledger_must_not_be_zero beats imported_event_timestamp_must_not_regress",
    events: () => [imported(1n, 10n, { ledger: 0 })],
    expect: ["ledger_must_not_be_zero"]
  }
]

describe.each(implementations)("create_accounts tables (%s ledger)", (_, make) => {
  const fresh = (): Cluster => {
    const c = new Cluster(make())
    c.mustCreateAccounts([existing])
    c.advance(1_000_000n)
    return c
  }

  describe("every status", () => {
    it.each(everyStatus)("$name", ({ events, expect: expected }) => {
      const c = fresh()
      expect(statuses(c.createAccounts(events(c)))).toEqual(expected)
    })
  })

  describe("precedence (§8.1, §16.1, §17)", () => {
    it.each(precedence)("$name", ({ events, expect: expected }) => {
      const c = fresh()
      expect(statuses(c.createAccounts(events(c)))).toEqual(expected)
    })
  })

  describe("result timestamps (§6.3)", () => {
    it("created gets its slot, failures get theirs, exists gets the existing account's timestamp", () => {
      const c = fresh()
      const existingTimestamp = c.lookupAccount(100n)?.timestamp
      expect(existingTimestamp).toBeDefined()
      const results = c.createAccounts([acct(1n), acct(2n, { ledger: 0 }), existing, acct(3n)])
      expect(results).toEqual([
        { status: "created", timestamp: c.slots[0] },
        { status: "ledger_must_not_be_zero", timestamp: c.slots[1] },
        { status: "exists", timestamp: existingTimestamp },
        { status: "created", timestamp: c.slots[3] }
      ])
      // Slots are the batch's last n nanoseconds (§6.2).
      expect(c.slots[3]).toBe(c.now)
      expect(c.slots[0]).toBe(c.now - 3n)
    })

    it("exists_with_different_* reports the slot, not the existing timestamp", () => {
      const c = fresh()
      const results = c.createAccounts([{ ...existing, code: 9 }])
      expect(results).toEqual([{ status: "exists_with_different_code", timestamp: c.slots[0] }])
    })

    it("an imported account's result and record carry the imported timestamp", () => {
      const c = fresh()
      const stamp = past(c)
      // The newest account (100) was created at an earlier slot, so `stamp` does not regress.
      expect(c.lookupAccount(100n)?.timestamp).toBeLessThan(stamp)
      const results = c.createAccounts([acct(1n, { flags: F.imported, timestamp: stamp })])
      expect(results).toEqual([{ status: "created", timestamp: stamp }])
      expect(c.lookupAccount(1n)?.timestamp).toBe(stamp)
    })

    it("an exists for an account created earlier in the same batch reports that account's slot", () => {
      const c = fresh()
      const results = c.createAccounts([acct(1n), acct(1n)])
      expect(results).toEqual([
        { status: "created", timestamp: c.slots[0] },
        { status: "exists", timestamp: c.slots[0] }
      ])
    })

    it("an empty batch yields no results and still moves the clock", () => {
      const c = fresh()
      const before = c.now
      expect(c.createAccounts([])).toEqual([])
      expect(c.now).toBeGreaterThan(before)
      const results = c.createAccounts([acct(1n)])
      expect(results).toEqual([{ status: "created", timestamp: c.now }])
    })
  })

  describe("the stored account (§1.1, §8.2)", () => {
    it("keeps every submitted field and flag bit (linked, history, limit, closed) with zero balances", () => {
      const c = fresh()
      const submitted = [
        acct(1n, { flags: F.linked | F.history | F.debits_must_not_exceed_credits, user_data_128: 11n, user_data_64: 12n, user_data_32: 13, ledger: 7, code: 8 }),
        acct(2n, { flags: F.credits_must_not_exceed_debits | F.closed, ledger: 7, code: 9 })
      ]
      c.mustCreateAccounts(submitted)
      expect(c.lookupAccounts([1n, 2n])).toEqual([
        { ...submitted[0], timestamp: c.slots[0] },
        { ...submitted[1], timestamp: c.slots[1] }
      ])
    })

    it("an account created after a failure with the same id is created: account ids are never burnt (§8.2)", () => {
      const c = fresh()
      expect(statuses(c.createAccounts([acct(1n, { code: 0 }), acct(1n)]))).toEqual(["code_must_not_be_zero", "created"])
      expect(c.lookupAccount(1n)?.code).toBe(1)
    })

    it("a failed account is not stored", () => {
      const c = fresh()
      c.createAccounts([acct(1n, { ledger: 0 }), acct(2n, { reserved: 1 }), acct(3n, { debits_posted: 5n })])
      expect(c.lookupAccounts([1n, 2n, 3n])).toEqual([])
    })

    it("a resubmission of an account that a transfer has moved still exists (balances are not compared)", () => {
      const c = fresh()
      c.mustCreateAccounts([acct(1n, { code: 2 })])
      c.mustCreateTransfers([xfer(1n, 100n, 1n, 5n)])
      expect(statuses(c.createAccounts([existing, acct(1n, { code: 2 })]))).toEqual(["exists", "exists"])
    })
  })
})
