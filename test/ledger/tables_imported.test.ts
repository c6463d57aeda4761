/**
 * Imported events (spec §11, §8.1 step 12, §9.1 step 16, §10.1 step 10): the batch's first event
 * decides; every timestamp rule (range, must_not_advance, must_not_regress against accounts and
 * transfers, postdate, timeout_must_be_zero); the precedence of those rules among the other
 * checks; imported post/void; idempotency of imports; and the rejection of an imported timestamp
 * inside the batch's own slot window.
 *
 * Every case starts from three imported accounts: 1 at 1000, 2 at 2000, 3 at 3000, and account 4
 * at 3100, imported closed. The cluster clock is far later (10^12), so these are all in the past.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  type Account,
  AccountFlags,
  Cluster,
  type Transfer,
  TransferFlags,
  acct,
  balances,
  implementations,
  resolve,
  second,
  statuses,
  xfer
} from "./table_harness.ts"

const AF = AccountFlags
const F = TransferFlags

const importedAccount = (id: bigint, timestamp: bigint, fields: Partial<Account> = {}): Account =>
  acct(id, { ...fields, flags: AF.imported | (fields.flags ?? 0), timestamp })

const importedTransfer = (timestamp: bigint, transfer: Transfer): Transfer =>
  ({ ...transfer, flags: transfer.flags | F.imported, timestamp })

/** imported(ts, id, debit, credit, amount, fields) */
const imp = (timestamp: bigint, id: bigint, debit: bigint, credit: bigint, amount: bigint, fields: Partial<Transfer> = {}): Transfer =>
  importedTransfer(timestamp, xfer(id, debit, credit, amount, fields))

interface TransferCase {
  readonly name: string
  /** Imported transfers created before the row's batch. */
  readonly setup?: Array<Transfer>
  readonly events: Array<Transfer>
  readonly expect: Array<string>
}

const transferCases: Array<TransferCase> = [
  { name: "an imported transfer after both accounts is created", events: [imp(3500n, 1n, 1n, 2n, 5n)], expect: ["created"] },
  {
    name: "must_not_regress: a timestamp equal to an existing account's",
    events: [imp(3000n, 1n, 1n, 2n, 5n)],
    expect: ["imported_event_timestamp_must_not_regress"]
  },
  {
    name: "a timestamp older than an unrelated account but newer than every transfer is accepted",
    events: [imp(2500n, 1n, 1n, 2n, 5n)],
    expect: ["created"]
  },
  {
    name: "must_not_regress: a timestamp equal to the newest transfer's",
    setup: [imp(3500n, 10n, 1n, 2n, 5n)],
    events: [imp(3500n, 1n, 1n, 2n, 5n)],
    expect: ["imported_event_timestamp_must_not_regress"]
  },
  {
    name: "must_not_regress: a timestamp before the newest transfer's",
    setup: [imp(3500n, 10n, 1n, 2n, 5n)],
    events: [imp(3400n, 1n, 1n, 2n, 5n)],
    expect: ["imported_event_timestamp_must_not_regress"]
  },
  {
    name: "must_not_regress inside one batch: the second of two equal timestamps, and a decreasing one",
    events: [imp(3500n, 1n, 1n, 2n, 5n), imp(3500n, 2n, 1n, 2n, 5n), imp(3600n, 3n, 1n, 2n, 5n), imp(3550n, 4n, 1n, 2n, 5n)],
    expect: ["created", "imported_event_timestamp_must_not_regress", "created", "imported_event_timestamp_must_not_regress"]
  },
  { name: "must_postdate_debit_account", events: [imp(1500n, 1n, 2n, 1n, 5n)], expect: ["imported_event_timestamp_must_postdate_debit_account"] },
  {
    name: "a timestamp equal to the debit account's is caught earlier, by must_not_regress (an account has it)",
    events: [imp(2000n, 1n, 2n, 3n, 5n)],
    expect: ["imported_event_timestamp_must_not_regress"]
  },
  { name: "must_postdate_credit_account", events: [imp(1500n, 1n, 1n, 2n, 5n)], expect: ["imported_event_timestamp_must_postdate_credit_account"] },
  {
    name: "imported_event_timeout_must_be_zero",
    events: [imp(3500n, 1n, 1n, 2n, 5n, { flags: F.pending, timeout: 1 })],
    expect: ["imported_event_timeout_must_be_zero"]
  },
  {
    name: "an imported transfer into an imported closed account is refused",
    events: [imp(3500n, 1n, 1n, 4n, 5n)],
    expect: ["credit_account_already_closed"]
  },
  // Precedence around the imported checks (§9.1 steps 15–17).
  {
    name: "transfer_must_have_the_same_ledger_as_accounts beats must_not_regress",
    events: [imp(3000n, 1n, 1n, 2n, 5n, { ledger: 2 })],
    expect: ["transfer_must_have_the_same_ledger_as_accounts"]
  },
  {
    name: "must_not_regress beats must_postdate_debit_account",
    setup: [imp(3500n, 10n, 1n, 2n, 5n)],
    events: [imp(500n, 1n, 2n, 1n, 5n)],
    expect: ["imported_event_timestamp_must_not_regress"]
  },
  { name: "must_postdate_debit_account beats must_postdate_credit_account", events: [imp(500n, 1n, 1n, 2n, 5n)], expect: ["imported_event_timestamp_must_postdate_debit_account"] },
  {
    name: "must_postdate_credit_account beats timeout_must_be_zero",
    events: [imp(1500n, 1n, 1n, 2n, 5n, { flags: F.pending, timeout: 1 })],
    expect: ["imported_event_timestamp_must_postdate_credit_account"]
  },
  {
    name: "timeout_must_be_zero beats debit_account_already_closed",
    events: [imp(3500n, 1n, 4n, 1n, 5n, { flags: F.pending, timeout: 1 })],
    expect: ["imported_event_timeout_must_be_zero"]
  },
  {
    name: "must_postdate_debit_account beats debit_account_already_closed",
    events: [imp(3050n, 1n, 4n, 1n, 5n)],
    expect: ["imported_event_timestamp_must_postdate_debit_account"]
  },
  // Imported posts and voids (§10.1 step 10).
  {
    name: "an imported post of an imported pending transfer is created",
    setup: [imp(3500n, 10n, 1n, 2n, 5n, { flags: F.pending })],
    events: [importedTransfer(3600n, resolve(1n, 10n, F.post_pending_transfer, 2n))],
    expect: ["created"]
  },
  {
    name: "an imported void must not regress either",
    setup: [imp(3500n, 10n, 1n, 2n, 5n, { flags: F.pending })],
    events: [importedTransfer(3400n, resolve(1n, 10n, F.void_pending_transfer, 0n))],
    expect: ["imported_event_timestamp_must_not_regress"]
  },
  {
    name: "must_not_regress beats debit_account_already_closed on the post path",
    // Pending 10 (1 → 2), then closing transfer 11 closes account 1.
    setup: [imp(3500n, 10n, 1n, 2n, 5n, { flags: F.pending }), imp(3600n, 11n, 1n, 3n, 0n, { flags: F.pending | F.closing_debit })],
    events: [importedTransfer(3550n, resolve(1n, 10n, F.post_pending_transfer, 5n))],
    expect: ["imported_event_timestamp_must_not_regress"]
  },
  {
    name: "an imported post into a closed account is refused, an imported void allowed",
    setup: [imp(3500n, 10n, 1n, 2n, 5n, { flags: F.pending }), imp(3600n, 11n, 1n, 3n, 0n, { flags: F.pending | F.closing_debit })],
    events: [importedTransfer(3700n, resolve(1n, 10n, F.post_pending_transfer, 5n)), importedTransfer(3800n, resolve(2n, 10n, F.void_pending_transfer, 0n))],
    expect: ["debit_account_already_closed", "created"]
  },
  // Idempotency of imports (§11: the value of the timestamp is not compared).
  {
    name: "an import retried with another past timestamp exists, even one that would regress",
    setup: [imp(3500n, 10n, 1n, 2n, 5n)],
    events: [imp(3900n, 10n, 1n, 2n, 5n), imp(100n, 10n, 1n, 2n, 5n)],
    expect: ["exists", "exists"]
  },
  {
    name: "an import retried without the imported flag has different flags",
    setup: [imp(3500n, 10n, 1n, 2n, 5n)],
    events: [xfer(10n, 1n, 2n, 5n)],
    expect: ["exists_with_different_flags"]
  }
]

describe.each(implementations)("imported events (%s ledger)", (_, make) => {
  const fresh = (): Cluster => {
    const c = new Cluster(make())
    c.mustCreateAccounts([
      importedAccount(1n, 1000n),
      importedAccount(2n, 2000n),
      importedAccount(3n, 3000n),
      importedAccount(4n, 3100n, { flags: AF.closed })
    ])
    return c
  }

  describe("transfers", () => {
    it.each(transferCases)("$name", ({ setup, events, expect: expected }) => {
      const c = fresh()
      if (setup !== undefined) c.mustCreateTransfers(setup)
      expect(statuses(c.createTransfers(events))).toEqual(expected)
    })

    it("a created import reports and stores the caller's timestamp and moves balances", () => {
      const c = fresh()
      const event = imp(3500n, 1n, 1n, 2n, 5n, { user_data_64: 9n })
      expect(c.createTransfers([event])).toEqual([{ status: "created", timestamp: 3500n }])
      expect(c.lookupTransfer(1n)).toEqual(event)
      expect(c.balancesOf(1n)).toEqual(balances(0n, 5n, 0n, 0n))
    })

    it("a rolled-back chain also rolls back the transfers' import watermark", () => {
      const c = fresh()
      expect(statuses(c.createTransfers([imp(3500n, 1n, 1n, 2n, 5n, { flags: F.linked }), imp(3600n, 2n, 1n, 2n, 5n, { code: 0 })])))
        .toEqual(["linked_event_failed", "code_must_not_be_zero"])
      expect(c.createTransfers([imp(3400n, 3n, 1n, 2n, 5n)])).toEqual([{ status: "created", timestamp: 3400n }])
    })

    it("an imported pending transfer never expires", () => {
      const c = fresh()
      c.mustCreateTransfers([imp(3500n, 1n, 1n, 2n, 5n, { flags: F.pending })])
      expect(c.nextExpiry()).toBeUndefined()
      c.advance(10n * second)
      expect(c.pulse()).toBe(0)
      expect(c.balancesOf(1n)).toEqual(balances(5n, 0n, 0n, 0n))
    })

    it("once a transfer has a cluster timestamp, older transfers can no longer be imported", () => {
      const c = fresh()
      c.mustCreateTransfers([xfer(1n, 1n, 2n, 1n)])
      const clusterStamp = c.slots[0]!
      c.advance(1_000n)
      expect(statuses(c.createTransfers([imp(clusterStamp - 1n, 2n, 1n, 2n, 1n), imp(clusterStamp, 3n, 1n, 2n, 1n), imp(clusterStamp + 1n, 4n, 1n, 2n, 1n)])))
        .toEqual(["imported_event_timestamp_must_not_regress", "imported_event_timestamp_must_not_regress", "created"])
    })

    it("an imported post of a non-imported pending transfer without timeout is created", () => {
      const c = fresh()
      c.mustCreateTransfers([xfer(10n, 1n, 2n, 5n, { flags: F.pending })])
      const pendingStamp = c.slots[0]!
      c.advance(1_000n)
      expect(c.createTransfers([importedTransfer(pendingStamp + 10n, resolve(1n, 10n, F.void_pending_transfer, 0n))]))
        .toEqual([{ status: "created", timestamp: pendingStamp + 10n }])
      expect(c.balancesOf(1n)).toEqual(balances(0n, 0n, 0n, 0n))
    })

    it("pending_transfer_expired beats must_not_regress for an imported post of an expired transfer", () => {
      const c = fresh()
      c.mustCreateTransfers([xfer(10n, 1n, 2n, 5n, { flags: F.pending, timeout: 1 })])
      const pendingStamp = c.slots[0]!
      c.advance(2n * second)
      // Due but not swept, and swept.
      expect(statuses(c.createTransfers([importedTransfer(pendingStamp, resolve(1n, 10n, F.post_pending_transfer, 5n))])))
        .toEqual(["pending_transfer_expired"])
      expect(c.pulse()).toBe(1)
      expect(statuses(c.createTransfers([importedTransfer(pendingStamp, resolve(2n, 10n, F.void_pending_transfer, 0n))])))
        .toEqual(["pending_transfer_expired"])
    })

    it("an imported timestamp inside the batch's own slot window is rejected, not stored", () => {
      const c = fresh()
      const end = c.nextBatchEnd(3)
      // Event 0 owns slot end - 2; end - 1 lies after its slot and before T.
      const results = c.createTransfers([imp(end - 1n, 1n, 1n, 2n, 5n), imp(end - 1n, 2n, 1n, 2n, 5n), imp(end, 3n, 1n, 2n, 5n)])
      expect(results[0]?.status).not.toBe("created")
      expect(results[2]?.status).toBe("imported_event_timestamp_must_not_advance")
      expect(c.lookupTransfer(1n)).toBeUndefined()
    })
  })

  describe("accounts", () => {
    it("a created import reports and stores the caller's timestamp and keeps the imported bit", () => {
      const c = fresh()
      expect(c.createAccounts([importedAccount(5n, 4000n), importedAccount(6n, 4001n, { flags: AF.history })]))
        .toEqual([{ status: "created", timestamp: 4000n }, { status: "created", timestamp: 4001n }])
      expect(c.lookupAccounts([5n, 6n])).toEqual([importedAccount(5n, 4000n), importedAccount(6n, 4001n, { flags: AF.history })])
    })

    it("the imported range is 1 … 2^63-1: 1 is a valid timestamp, 2^63-1 is in range but in the future", () => {
      const c = new Cluster(make())
      expect(c.createAccounts([importedAccount(1n, 1n)])).toEqual([{ status: "created", timestamp: 1n }])
      expect(statuses(c.createAccounts([importedAccount(2n, (1n << 63n) - 1n)]))).toEqual(["imported_event_timestamp_must_not_advance"])
    })

    it("must_not_regress: at or below the newest account, inside a batch too", () => {
      const c = fresh()
      expect(statuses(c.createAccounts([importedAccount(5n, 3100n), importedAccount(6n, 2500n), importedAccount(7n, 4000n), importedAccount(8n, 4000n)])))
        .toEqual(["imported_event_timestamp_must_not_regress", "imported_event_timestamp_must_not_regress", "created", "imported_event_timestamp_must_not_regress"])
    })

    it("must_not_regress: equal to an existing transfer's timestamp, but older transfers do not matter otherwise", () => {
      const c = fresh()
      c.mustCreateTransfers([imp(3500n, 1n, 1n, 2n, 5n), imp(3700n, 2n, 1n, 2n, 5n)])
      expect(statuses(c.createAccounts([importedAccount(5n, 3500n), importedAccount(6n, 3600n), importedAccount(7n, 3700n)])))
        .toEqual(["imported_event_timestamp_must_not_regress", "created", "imported_event_timestamp_must_not_regress"])
    })

    it("an import retried with another past timestamp exists and reports the stored timestamp", () => {
      const c = fresh()
      expect(c.createAccounts([importedAccount(2n, 5000n), importedAccount(2n, 10n)]))
        .toEqual([{ status: "exists", timestamp: 2000n }, { status: "exists", timestamp: 2000n }])
    })

    it("the range checks still beat exists for an import", () => {
      const c = fresh()
      expect(statuses(c.createAccounts([importedAccount(2n, 0n)]))).toEqual(["imported_event_timestamp_out_of_range"])
      expect(statuses(c.createAccounts([importedAccount(2n, c.nextBatchEnd(1))]))).toEqual(["imported_event_timestamp_must_not_advance"])
    })

    it("once an account has a cluster timestamp, older accounts can no longer be imported", () => {
      const c = fresh()
      c.mustCreateAccounts([acct(5n)])
      const clusterStamp = c.slots[0]!
      c.advance(1_000n)
      expect(statuses(c.createAccounts([importedAccount(6n, clusterStamp), importedAccount(7n, clusterStamp + 1n)])))
        .toEqual(["imported_event_timestamp_must_not_regress", "created"])
    })

    it("a mixed batch rejects only the events whose flag differs from the first", () => {
      const c = fresh()
      expect(statuses(c.createAccounts([importedAccount(5n, 4000n), acct(6n), importedAccount(7n, 4001n)])))
        .toEqual(["created", "imported_event_expected", "created"])
      expect(statuses(c.createAccounts([acct(8n), importedAccount(9n, 4002n), acct(10n)])))
        .toEqual(["created", "imported_event_not_expected", "created"])
    })

    it("an imported timestamp inside the batch's own slot window is rejected, not stored", () => {
      const c = fresh()
      const end = c.nextBatchEnd(3)
      const results = c.createAccounts([importedAccount(5n, end - 1n), importedAccount(6n, end - 1n), importedAccount(7n, end)])
      expect(results[0]?.status).not.toBe("created")
      expect(results[2]?.status).toBe("imported_event_timestamp_must_not_advance")
      expect(c.lookupAccount(5n)).toBeUndefined()
    })

    it("an imported timestamp equal to the event's own slot is an ordinary past timestamp", () => {
      const c = fresh()
      const end = c.nextBatchEnd(2)
      expect(c.createAccounts([importedAccount(5n, end - 1n), importedAccount(6n, end - 3n)]))
        .toEqual([{ status: "created", timestamp: end - 1n }, { status: "imported_event_timestamp_must_not_regress", timestamp: end }])
    })
  })
})
