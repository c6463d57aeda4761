/**
 * Reads (spec §14): lookups (missing ids skipped, duplicates repeated, orphaned ids missing);
 * get_account_transfers and get_account_balances with every validity rule of an AccountFilter,
 * debits/credits flags, AND of the nonzero user_data/code fields, inclusive timestamp ranges,
 * reversed order and limits; balances only for accounts with `history`, as after-transfer
 * snapshots, without expiries; query_accounts and query_transfers with every QueryFilter rule.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  type AccountFilter,
  AccountFilterFlags,
  AccountFlags,
  Cluster,
  type QueryFilter,
  type Transfer,
  TransferFlags,
  accountFilter,
  accountFilterWithReservedByte,
  acct,
  balances,
  implementations,
  queryFilter,
  queryFilterWithReservedByte,
  resolve,
  second,
  timestampMax,
  u128Max,
  xfer
} from "./table_harness.ts"

const AF = AccountFlags
const F = TransferFlags
const DEBITS = AccountFilterFlags.debits
const CREDITS = AccountFilterFlags.credits
const REVERSED = AccountFilterFlags.reversed

/**
 * The world every read case looks at. Accounts (one batch, so their timestamps ascend with their ids):
 *   1: ledger 1, code 10, user data 100/200/300, history
 *   2: ledger 1, code 20, user data 100/0/300
 *   3: ledger 2, code 10, user data 0/200/0, history
 *   4: ledger 2, code 20, user data 101/201/301
 *   5: ledger 1, code 10, no user data
 * Transfers (one batch, so t1 < t2 < … < t6 in time):
 *   t1: 1 → 2, 10, code 1, user data 7/8/9
 *   t2: 2 → 1, 3, code 2, user data 7/0/0
 *   t3: 1 → 5, 5 pending, code 1, user data 0/8/0
 *   t4: post of t3 for 4 (inherits 1 → 5, code 1, user data 0/8/0)
 *   t5: 3 → 4, 6, ledger 2, code 1, user data 0/0/9
 *   t6: 5 → 1, 1, code 3
 */
const accounts = [
  acct(1n, { ledger: 1, code: 10, user_data_128: 100n, user_data_64: 200n, user_data_32: 300, flags: AF.history }),
  acct(2n, { ledger: 1, code: 20, user_data_128: 100n, user_data_32: 300 }),
  acct(3n, { ledger: 2, code: 10, user_data_64: 200n, flags: AF.history }),
  acct(4n, { ledger: 2, code: 20, user_data_128: 101n, user_data_64: 201n, user_data_32: 301 }),
  acct(5n, { ledger: 1, code: 10 })
]

const transfers: Array<Transfer> = [
  xfer(1n, 1n, 2n, 10n, { code: 1, user_data_128: 7n, user_data_64: 8n, user_data_32: 9 }),
  xfer(2n, 2n, 1n, 3n, { code: 2, user_data_128: 7n }),
  xfer(3n, 1n, 5n, 5n, { code: 1, user_data_64: 8n, flags: F.pending }),
  resolve(4n, 3n, F.post_pending_transfer, 4n),
  xfer(5n, 3n, 4n, 6n, { ledger: 2, code: 1, user_data_32: 9 }),
  xfer(6n, 5n, 1n, 1n, { code: 3 })
]

interface World {
  readonly c: Cluster
  /** Timestamp of account id (index = id). */
  readonly accountAt: ReadonlyArray<bigint>
  /** Timestamp of transfer id (index = id). */
  readonly transferAt: ReadonlyArray<bigint>
}

interface AccountFilterCase {
  readonly name: string
  readonly filter: (w: World) => AccountFilter | Uint8Array
  /** Expected transfer ids, in order. */
  readonly expect: Array<bigint>
}

const f = (fields: Partial<AccountFilter>): AccountFilter => accountFilter({ account_id: 1n, ...fields })

const accountTransferCases: Array<AccountFilterCase> = [
  { name: "debits and credits: every transfer of the account, ascending", filter: () => f({}), expect: [1n, 2n, 3n, 4n, 6n] },
  { name: "debits only", filter: () => f({ flags: DEBITS }), expect: [1n, 3n, 4n] },
  { name: "credits only", filter: () => f({ flags: CREDITS }), expect: [2n, 6n] },
  { name: "reversed", filter: () => f({ flags: DEBITS | CREDITS | REVERSED }), expect: [6n, 4n, 3n, 2n, 1n] },
  { name: "limit keeps the first results", filter: () => f({ limit: 2 }), expect: [1n, 2n] },
  { name: "limit with reversed keeps the last results", filter: () => f({ limit: 2, flags: DEBITS | CREDITS | REVERSED }), expect: [6n, 4n] },
  { name: "a limit above 8189 is valid and caps at 8189", filter: () => f({ limit: 0xffff_ffff }), expect: [1n, 2n, 3n, 4n, 6n] },
  { name: "code filter (a post matches through its inherited code)", filter: () => f({ code: 1 }), expect: [1n, 3n, 4n] },
  { name: "user_data_128 filter", filter: () => f({ user_data_128: 7n }), expect: [1n, 2n] },
  { name: "user_data_64 filter (a post matches through its inherited value)", filter: () => f({ user_data_64: 8n }), expect: [1n, 3n, 4n] },
  { name: "user_data_32 filter", filter: () => f({ user_data_32: 9 }), expect: [1n] },
  { name: "nonzero fields combine with AND", filter: () => f({ code: 1, user_data_128: 7n }), expect: [1n] },
  { name: "AND with the direction flags", filter: () => f({ code: 1, flags: CREDITS }), expect: [] },
  { name: "AND of all four fields", filter: () => f({ code: 1, user_data_128: 7n, user_data_64: 8n, user_data_32: 9 }), expect: [1n] },
  { name: "no transfer matches", filter: () => f({ code: 99 }), expect: [] },
  { name: "inclusive timestamp range", filter: (w) => f({ timestamp_min: w.transferAt[2]!, timestamp_max: w.transferAt[4]! }), expect: [2n, 3n, 4n] },
  { name: "timestamp_min only", filter: (w) => f({ timestamp_min: w.transferAt[3]! }), expect: [3n, 4n, 6n] },
  { name: "timestamp_max only", filter: (w) => f({ timestamp_max: w.transferAt[2]! }), expect: [1n, 2n] },
  { name: "timestamp_min equal to timestamp_max", filter: (w) => f({ timestamp_min: w.transferAt[3]!, timestamp_max: w.transferAt[3]! }), expect: [3n] },
  { name: "timestamp range with reversed and limit", filter: (w) => f({ timestamp_min: w.transferAt[2]!, limit: 2, flags: DEBITS | CREDITS | REVERSED }), expect: [6n, 4n] },
  { name: "timestamp_max of 2^63-1 is valid", filter: () => f({ timestamp_max: timestampMax }), expect: [1n, 2n, 3n, 4n, 6n] },
  { name: "timestamp_min of 2^63-1 is valid (nothing that late)", filter: () => f({ timestamp_min: timestampMax }), expect: [] },
  { name: "an unknown account has no transfers", filter: () => f({ account_id: 99n }), expect: [] },
  { name: "another account: 5 is debited by t6 and credited by t3 and its post", filter: () => f({ account_id: 5n }), expect: [3n, 4n, 6n] },
  // Invalid filters return an empty list (§14.2, §17.11).
  { name: "invalid: account_id 0", filter: () => f({ account_id: 0n }), expect: [] },
  { name: "invalid: account_id 2^128-1", filter: () => f({ account_id: u128Max }), expect: [] },
  { name: "invalid: timestamp_min 2^63", filter: () => f({ timestamp_min: timestampMax + 1n }), expect: [] },
  { name: "invalid: timestamp_max 2^63", filter: () => f({ timestamp_max: timestampMax + 1n }), expect: [] },
  { name: "invalid: timestamp_min after timestamp_max", filter: (w) => f({ timestamp_min: w.transferAt[3]!, timestamp_max: w.transferAt[2]! }), expect: [] },
  { name: "invalid: limit 0", filter: () => f({ limit: 0 }), expect: [] },
  { name: "invalid: neither debits nor credits", filter: () => f({ flags: 0 }), expect: [] },
  { name: "invalid: reversed alone", filter: () => f({ flags: REVERSED }), expect: [] },
  { name: "invalid: flag bit 3", filter: () => f({ flags: DEBITS | CREDITS | (1 << 3) }), expect: [] },
  { name: "invalid: flag bit 31", filter: () => f({ flags: (DEBITS | CREDITS | (2 ** 31)) >>> 0 }), expect: [] },
  { name: "invalid: a reserved byte", filter: () => accountFilterWithReservedByte(f({})), expect: [] }
]

interface QueryCase {
  readonly name: string
  readonly filter: (w: World) => QueryFilter | Uint8Array
  readonly expect: Array<bigint>
}

const q = queryFilter

const queryAccountCases: Array<QueryCase> = [
  { name: "an all-zero filter finds every account, ascending", filter: () => q({}), expect: [1n, 2n, 3n, 4n, 5n] },
  { name: "ledger", filter: () => q({ ledger: 1 }), expect: [1n, 2n, 5n] },
  { name: "code", filter: () => q({ code: 10 }), expect: [1n, 3n, 5n] },
  { name: "ledger AND code", filter: () => q({ ledger: 1, code: 10 }), expect: [1n, 5n] },
  { name: "user_data_128", filter: () => q({ user_data_128: 100n }), expect: [1n, 2n] },
  { name: "user_data_64", filter: () => q({ user_data_64: 200n }), expect: [1n, 3n] },
  { name: "user_data_32", filter: () => q({ user_data_32: 300 }), expect: [1n, 2n] },
  { name: "user_data_128 AND user_data_64", filter: () => q({ user_data_128: 100n, user_data_64: 200n }), expect: [1n] },
  { name: "all five fields", filter: () => q({ user_data_128: 101n, user_data_64: 201n, user_data_32: 301, ledger: 2, code: 20 }), expect: [4n] },
  { name: "one mismatching field excludes", filter: () => q({ user_data_128: 101n, ledger: 1 }), expect: [] },
  { name: "reversed", filter: () => q({ flags: 1 }), expect: [5n, 4n, 3n, 2n, 1n] },
  { name: "limit", filter: () => q({ limit: 2 }), expect: [1n, 2n] },
  { name: "limit with reversed", filter: () => q({ limit: 2, flags: 1 }), expect: [5n, 4n] },
  { name: "inclusive timestamp range", filter: (w) => q({ timestamp_min: w.accountAt[2]!, timestamp_max: w.accountAt[4]! }), expect: [2n, 3n, 4n] },
  { name: "timestamp range AND ledger", filter: (w) => q({ timestamp_min: w.accountAt[2]!, ledger: 1 }), expect: [2n, 5n] },
  { name: "timestamp_max of 2^63-1 is valid", filter: () => q({ timestamp_max: timestampMax }), expect: [1n, 2n, 3n, 4n, 5n] },
  { name: "a limit above 8189 is valid", filter: () => q({ limit: 0xffff_ffff }), expect: [1n, 2n, 3n, 4n, 5n] },
  { name: "invalid: timestamp_min 2^63", filter: () => q({ timestamp_min: timestampMax + 1n }), expect: [] },
  { name: "invalid: timestamp_max 2^63", filter: () => q({ timestamp_max: timestampMax + 1n }), expect: [] },
  { name: "invalid: timestamp_min after timestamp_max", filter: (w) => q({ timestamp_min: w.accountAt[3]!, timestamp_max: w.accountAt[2]! }), expect: [] },
  { name: "invalid: limit 0", filter: () => q({ limit: 0 }), expect: [] },
  { name: "invalid: flag bit 1", filter: () => q({ flags: 2 }), expect: [] },
  { name: "invalid: flag bit 31", filter: () => q({ flags: 2 ** 31 }), expect: [] },
  { name: "invalid: a reserved byte", filter: () => queryFilterWithReservedByte(q({})), expect: [] }
]

const queryTransferCases: Array<QueryCase> = [
  { name: "an all-zero filter finds every transfer, ascending", filter: () => q({}), expect: [1n, 2n, 3n, 4n, 5n, 6n] },
  { name: "ledger", filter: () => q({ ledger: 2 }), expect: [5n] },
  { name: "code (a post matches through its inherited code)", filter: () => q({ code: 1 }), expect: [1n, 3n, 4n, 5n] },
  { name: "ledger AND code", filter: () => q({ ledger: 1, code: 1 }), expect: [1n, 3n, 4n] },
  { name: "user_data_128", filter: () => q({ user_data_128: 7n }), expect: [1n, 2n] },
  { name: "user_data_64", filter: () => q({ user_data_64: 8n }), expect: [1n, 3n, 4n] },
  { name: "user_data_32", filter: () => q({ user_data_32: 9 }), expect: [1n, 5n] },
  { name: "user_data_32 AND code", filter: () => q({ user_data_32: 9, code: 1, ledger: 2 }), expect: [5n] },
  { name: "reversed with limit", filter: () => q({ limit: 3, flags: 1 }), expect: [6n, 5n, 4n] },
  { name: "inclusive timestamp range", filter: (w) => q({ timestamp_min: w.transferAt[3]!, timestamp_max: w.transferAt[5]! }), expect: [3n, 4n, 5n] },
  { name: "timestamp_max only", filter: (w) => q({ timestamp_max: w.transferAt[1]! }), expect: [1n] },
  { name: "invalid: timestamp_max 2^63", filter: () => q({ timestamp_max: 1n << 63n }), expect: [] },
  { name: "invalid: timestamp_min after timestamp_max", filter: (w) => q({ timestamp_min: w.transferAt[2]!, timestamp_max: w.transferAt[1]! }), expect: [] },
  { name: "invalid: limit 0", filter: () => q({ limit: 0 }), expect: [] },
  { name: "invalid: flag bit 1", filter: () => q({ flags: 3 }), expect: [] },
  { name: "invalid: a reserved byte", filter: () => queryFilterWithReservedByte(q({})), expect: [] }
]

describe.each(implementations)("reads (%s ledger)", (_, make) => {
  const world = (): World => {
    const c = new Cluster(make())
    const accountResults = c.mustCreateAccounts(accounts)
    const transferResults = c.mustCreateTransfers(transfers)
    return {
      c,
      accountAt: [0n, ...accountResults.map((r) => r.timestamp)],
      transferAt: [0n, ...transferResults.map((r) => r.timestamp)]
    }
  }

  describe("lookups (§14.1)", () => {
    it("returns objects in request order, skips missing ids (0 and 2^128-1 too), repeats duplicates", () => {
      const { c } = world()
      expect(c.lookupAccounts([3n, 99n, 1n, 1n, 0n, u128Max]).map((a) => a.id)).toEqual([3n, 1n, 1n])
      expect(c.lookupTransfers([6n, 0n, 2n, 77n, 6n, u128Max]).map((t) => t.id)).toEqual([6n, 2n, 6n])
      expect(c.lookupAccounts([])).toEqual([])
      expect(c.lookupTransfers([])).toEqual([])
    })

    it("returns the accounts' current balances and the stored transfers", () => {
      const { c, accountAt, transferAt } = world()
      // Account 1: debited 10 (t1) + 4 (t4); credited 3 (t2) + 1 (t6).
      expect(c.lookupAccount(1n)).toEqual({ ...accounts[0], debits_posted: 14n, credits_posted: 4n, timestamp: accountAt[1] })
      expect(c.lookupTransfer(4n)).toEqual({ ...transfers[3], debit_account_id: 1n, credit_account_id: 5n, ledger: 1, code: 1, user_data_64: 8n, timestamp: transferAt[4] })
    })

    it("an orphaned id and a rolled-back id are missing", () => {
      const { c } = world()
      expect(c.createTransfers([xfer(10n, 1n, 99n, 1n), xfer(11n, 1n, 2n, 1n, { flags: F.linked }), xfer(12n, 1n, 1n, 1n)]).map((r) => r.status))
        .toEqual(["credit_account_not_found", "linked_event_failed", "accounts_must_be_different"])
      expect(c.lookupTransfers([10n, 11n, 12n, 1n]).map((t) => t.id)).toEqual([1n])
    })
  })

  describe("get_account_transfers (§14.2)", () => {
    it.each(accountTransferCases)("$name", ({ filter, expect: expected }) => {
      const w = world()
      expect(w.c.getAccountTransfers(filter(w)).map((t) => t.id)).toEqual(expected)
    })

    it("returns whole transfers with their timestamps", () => {
      const w = world()
      const [first] = w.c.getAccountTransfers(f({ limit: 1 }))
      expect(first).toEqual({ ...transfers[0], timestamp: w.transferAt[1] })
    })

    it("truncates to 8189 results even with a larger limit", () => {
      const c = new Cluster(make())
      c.mustCreateAccounts([acct(1n), acct(2n)])
      c.mustCreateTransfers(Array.from({ length: 8189 }, (_, i) => xfer(1000n + BigInt(i), 1n, 2n, 1n)))
      c.mustCreateTransfers([xfer(1n, 1n, 2n, 1n)])
      const page = c.getAccountTransfers(accountFilter({ account_id: 1n, limit: 10_000 }))
      expect(page.length).toBe(8189)
      expect(page[0]?.id).toBe(1000n)
      const reversed = c.getAccountTransfers(accountFilter({ account_id: 1n, limit: 10_000, flags: DEBITS | CREDITS | REVERSED }))
      expect(reversed.length).toBe(8189)
      expect(reversed[0]?.id).toBe(1n)
      expect(c.queryTransfers(queryFilter({ limit: 10_000 })).length).toBe(8189)
    })
  })

  describe("get_account_balances (§14.3)", () => {
    it("lists the account's balances after each of its transfers", () => {
      const { c, transferAt } = world()
      expect(c.getAccountBalances(f({}))).toEqual([
        { ...balances(0n, 10n, 0n, 0n), timestamp: transferAt[1] },
        { ...balances(0n, 10n, 0n, 3n), timestamp: transferAt[2] },
        { ...balances(5n, 10n, 0n, 3n), timestamp: transferAt[3] },
        { ...balances(0n, 14n, 0n, 3n), timestamp: transferAt[4] },
        { ...balances(0n, 14n, 0n, 4n), timestamp: transferAt[6] }
      ])
      expect(c.getAccountBalances(accountFilter({ account_id: 3n }))).toEqual([{ ...balances(0n, 6n, 0n, 0n), timestamp: transferAt[5] }])
    })

    it("applies the same matching, order and limit as get_account_transfers", () => {
      const { c, transferAt } = world()
      expect(c.getAccountBalances(f({ flags: DEBITS | REVERSED, limit: 2 }))).toEqual([
        { ...balances(0n, 14n, 0n, 3n), timestamp: transferAt[4] },
        { ...balances(5n, 10n, 0n, 3n), timestamp: transferAt[3] }
      ])
      expect(c.getAccountBalances(f({ user_data_128: 7n, flags: CREDITS }))).toEqual([{ ...balances(0n, 10n, 0n, 3n), timestamp: transferAt[2] }])
      expect(c.getAccountBalances(f({ timestamp_min: transferAt[6]! }))).toEqual([{ ...balances(0n, 14n, 0n, 4n), timestamp: transferAt[6] }])
    })

    it("is empty for an account without history, an unknown account and every invalid filter", () => {
      const w = world()
      expect(w.c.getAccountTransfers(f({ account_id: 2n })).map((t) => t.id)).toEqual([1n, 2n])
      expect(w.c.getAccountBalances(f({ account_id: 2n }))).toEqual([])
      expect(w.c.getAccountBalances(f({ account_id: 5n }))).toEqual([])
      expect(w.c.getAccountBalances(f({ account_id: 99n }))).toEqual([])
      for (const invalid of accountTransferCases.filter((row) => row.name.startsWith("invalid"))) {
        expect(w.c.getAccountBalances(invalid.filter(w)), invalid.name).toEqual([])
      }
    })

    it("records zero-amount and closing transfers; expiries appear only in the next transfer's snapshot", () => {
      const c = new Cluster(make())
      c.mustCreateAccounts([acct(1n, { flags: AF.history }), acct(2n)])
      const [pending] = c.mustCreateTransfers([xfer(1n, 1n, 2n, 7n, { flags: F.pending, timeout: 1 })])
      c.mustCreateTransfers([xfer(2n, 2n, 1n, 0n)])
      c.advance(2n * second)
      expect(c.pulse()).toBe(1)
      const [closing] = c.mustCreateTransfers([xfer(3n, 1n, 2n, 0n, { flags: F.pending | F.closing_debit })])
      const rows = c.getAccountBalances(accountFilter({ account_id: 1n }))
      expect(rows).toEqual([
        { ...balances(7n, 0n, 0n, 0n), timestamp: pending!.timestamp },
        { ...balances(7n, 0n, 0n, 0n), timestamp: pending!.timestamp + 1n },
        { ...balances(0n, 0n, 0n, 0n), timestamp: closing!.timestamp }
      ])
      // Expiries are not transfers either.
      expect(c.getAccountTransfers(accountFilter({ account_id: 1n })).map((t) => t.id)).toEqual([1n, 2n, 3n])
      expect(c.queryTransfers(queryFilter({})).map((t) => t.id)).toEqual([1n, 2n, 3n])
    })
  })

  describe("query_accounts (§14.4)", () => {
    it.each(queryAccountCases)("$name", ({ filter, expect: expected }) => {
      const w = world()
      expect(w.c.queryAccounts(filter(w)).map((a) => a.id)).toEqual(expected)
    })
  })

  describe("query_transfers (§14.4)", () => {
    it.each(queryTransferCases)("$name", ({ filter, expect: expected }) => {
      const w = world()
      expect(w.c.queryTransfers(filter(w)).map((t) => t.id)).toEqual(expected)
    })
  })
})
