/**
 * Linked chains (spec §7, §6.3, §9.5) for accounts and transfers: a chain commits as a unit; a
 * failure anywhere (including `exists`) rolls back every earlier event, marks the others
 * `linked_event_failed` (rolled-back events keep their creation timestamp); a trailing linked
 * event reports `linked_event_chain_open`, also in a chain that is already broken; chains never
 * span batches; orphaned ids survive the rollback; later chain events see earlier ones' effects.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  AccountFlags,
  Cluster,
  TransferFlags,
  acct,
  accountFilter,
  balances,
  implementations,
  resolve,
  statuses,
  xfer
} from "./table_harness.ts"

const AF = AccountFlags
const F = TransferFlags
const L = AF.linked
const TL = F.linked

describe.each(implementations)("linked chains (%s ledger)", (_, make) => {
  describe("accounts", () => {
    const fresh = (): Cluster => {
      const c = new Cluster(make())
      c.mustCreateAccounts([acct(100n)])
      c.advance(1_000_000n)
      return c
    }

    it("a successful chain creates every event and stores the linked bit", () => {
      const c = fresh()
      const results = c.createAccounts([acct(1n, { flags: L }), acct(2n, { flags: L }), acct(3n)])
      expect(results).toEqual(c.slots.map((timestamp) => ({ status: "created", timestamp })))
      expect(c.lookupAccounts([1n, 2n, 3n]).map((a) => a.flags)).toEqual([L, L, 0])
      // The stored linked bit takes part in the idempotency comparison.
      expect(statuses(c.createAccounts([acct(1n), acct(3n)]))).toEqual(["exists_with_different_flags", "exists"])
    })

    it("a failure in the middle rolls back the chain; events after the chain are independent", () => {
      const c = fresh()
      const results = c.createAccounts([
        acct(1n, { flags: L }),
        acct(2n, { flags: L, ledger: 0 }),
        acct(3n, { flags: L }),
        acct(4n),
        acct(5n)
      ])
      expect(results).toEqual([
        { status: "linked_event_failed", timestamp: c.slots[0] },
        { status: "ledger_must_not_be_zero", timestamp: c.slots[1] },
        { status: "linked_event_failed", timestamp: c.slots[2] },
        { status: "linked_event_failed", timestamp: c.slots[3] },
        { status: "created", timestamp: c.slots[4] }
      ])
      expect(c.lookupAccounts([1n, 2n, 3n, 4n, 5n]).map((a) => a.id)).toEqual([5n])
    })

    it("exists breaks a chain and reports the existing account's timestamp", () => {
      const c = fresh()
      const existingTimestamp = c.lookupAccount(100n)!.timestamp
      const results = c.createAccounts([acct(1n, { flags: L }), acct(100n)])
      expect(results).toEqual([
        { status: "linked_event_failed", timestamp: c.slots[0] },
        { status: "exists", timestamp: existingTimestamp }
      ])
      expect(c.lookupAccount(1n)).toBeUndefined()
    })

    it("exists of an account created earlier in the same chain reports its timestamp though it is rolled back", () => {
      const c = fresh()
      const results = c.createAccounts([acct(1n, { flags: L }), acct(1n, { flags: L }), acct(2n)])
      expect(results).toEqual([
        { status: "linked_event_failed", timestamp: c.slots[0] },
        { status: "exists", timestamp: c.slots[0] },
        { status: "linked_event_failed", timestamp: c.slots[2] }
      ])
      expect(c.lookupAccounts([1n, 2n])).toEqual([])
      // Ids of rolled-back accounts are free again.
      expect(statuses(c.createAccounts([acct(1n), acct(2n)]))).toEqual(["created", "created"])
    })

    it("a trailing linked event leaves the chain open and rolls back the unbroken chain before it", () => {
      const c = fresh()
      const results = c.createAccounts([acct(1n), acct(2n, { flags: L }), acct(3n, { flags: L })])
      expect(results).toEqual([
        { status: "created", timestamp: c.slots[0] },
        { status: "linked_event_failed", timestamp: c.slots[1] },
        { status: "linked_event_chain_open", timestamp: c.slots[2] }
      ])
      expect(c.lookupAccounts([1n, 2n, 3n]).map((a) => a.id)).toEqual([1n])
    })

    it("a trailing linked event reports chain_open also when the chain is already broken", () => {
      const c = fresh()
      expect(statuses(c.createAccounts([acct(1n, { flags: L, code: 0 }), acct(2n, { flags: L }), acct(3n, { flags: L })])))
        .toEqual(["code_must_not_be_zero", "linked_event_failed", "linked_event_chain_open"])
    })

    it("chain_open is checked before anything else about the event", () => {
      const c = fresh()
      expect(statuses(c.createAccounts([acct(0n, { flags: L | (1 << 7), timestamp: 5n, reserved: 1 })]))).toEqual(["linked_event_chain_open"])
    })

    it("chains never span batches", () => {
      const c = fresh()
      expect(statuses(c.createAccounts([acct(1n), acct(2n, { flags: L })]))).toEqual(["created", "linked_event_chain_open"])
      // The next batch starts without an open chain: its first event is independent.
      expect(statuses(c.createAccounts([acct(2n), acct(3n, { flags: L, code: 0 }), acct(4n)])))
        .toEqual(["created", "code_must_not_be_zero", "linked_event_failed"])
      expect(statuses(c.createAccounts([acct(4n)]))).toEqual(["created"])
    })

    it("several chains in one batch succeed or fail independently", () => {
      const c = fresh()
      expect(statuses(c.createAccounts([
        acct(1n, { flags: L }), acct(2n),
        acct(3n, { flags: L }), acct(4n, { flags: L, ledger: 0 }), acct(5n),
        acct(6n), acct(7n, { flags: L }), acct(8n)
      ]))).toEqual(["created", "created", "linked_event_failed", "ledger_must_not_be_zero", "linked_event_failed", "created", "created", "created"])
      expect(c.lookupAccounts([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]).map((a) => a.id)).toEqual([1n, 2n, 6n, 7n, 8n])
    })

    it("events after a broken chain see the state from before the chain", () => {
      const c = fresh()
      expect(statuses(c.createAccounts([acct(1n, { flags: L }), acct(2n, { reserved: 1 }), acct(1n)])))
        .toEqual(["linked_event_failed", "reserved_field", "created"])
    })

    it("a rolled-back imported account keeps its imported timestamp; the import watermark is rolled back", () => {
      const c = fresh()
      const earlier = c.now - 2_000n
      const later = c.now - 1_000n
      const results = c.createAccounts([
        acct(1n, { flags: L | AF.imported, timestamp: later }),
        acct(2n, { flags: AF.imported, timestamp: later + 1n, code: 0 })
      ])
      expect(results).toEqual([
        { status: "linked_event_failed", timestamp: later },
        { status: "code_must_not_be_zero", timestamp: c.slots[1] }
      ])
      // Had the chain's account stayed, `earlier` would regress.
      expect(c.createAccounts([acct(3n, { flags: AF.imported, timestamp: earlier })])).toEqual([{ status: "created", timestamp: earlier }])
    })
  })

  describe("transfers", () => {
    const fresh = (): Cluster => {
      const c = new Cluster(make())
      c.mustCreateAccounts([acct(1n), acct(2n), acct(3n), acct(4n, { flags: AF.debits_must_not_exceed_credits }), acct(5n, { flags: AF.history })])
      c.mustCreateTransfers([xfer(100n, 1n, 2n, 1n)])
      c.advance(1_000_000n)
      return c
    }

    it("a successful chain applies every transfer", () => {
      const c = fresh()
      expect(statuses(c.createTransfers([xfer(1n, 1n, 2n, 10n, { flags: TL }), xfer(2n, 2n, 3n, 4n, { flags: TL }), xfer(3n, 3n, 1n, 1n)])))
        .toEqual(["created", "created", "created"])
      expect(c.balancesOf(2n)).toEqual(balances(0n, 4n, 0n, 11n))
      expect(c.lookupTransfer(1n)?.flags).toBe(TL)
    })

    it("a failure in the middle undoes the balances of earlier events", () => {
      const c = fresh()
      const results = c.createTransfers([
        xfer(1n, 1n, 2n, 10n, { flags: TL }),
        xfer(2n, 1n, 2n, 5n, { flags: TL }),
        xfer(3n, 1n, 1n, 5n, { flags: TL }),
        xfer(4n, 1n, 2n, 5n)
      ])
      expect(results).toEqual([
        { status: "linked_event_failed", timestamp: c.slots[0] },
        { status: "linked_event_failed", timestamp: c.slots[1] },
        { status: "accounts_must_be_different", timestamp: c.slots[2] },
        { status: "linked_event_failed", timestamp: c.slots[3] }
      ])
      expect(c.balancesOf(1n)).toEqual(balances(0n, 1n, 0n, 0n))
      expect(c.lookupTransfers([1n, 2n, 3n, 4n])).toEqual([])
      // linked_event_failed is not transient: every id of the chain is reusable.
      expect(statuses(c.createTransfers([xfer(1n, 1n, 2n, 1n), xfer(2n, 1n, 2n, 1n), xfer(3n, 1n, 2n, 1n), xfer(4n, 1n, 2n, 1n)])))
        .toEqual(["created", "created", "created", "created"])
    })

    it("exists breaks a chain", () => {
      const c = fresh()
      const existingTimestamp = c.lookupTransfer(100n)!.timestamp
      expect(c.createTransfers([xfer(1n, 1n, 2n, 10n, { flags: TL }), xfer(100n, 1n, 2n, 1n)])).toEqual([
        { status: "linked_event_failed", timestamp: c.slots[0] },
        { status: "exists", timestamp: existingTimestamp }
      ])
      expect(c.balancesOf(1n)).toEqual(balances(0n, 1n, 0n, 0n))
    })

    it("exists of a transfer created earlier in the same chain reports that transfer's timestamp", () => {
      const c = fresh()
      // The stored flags include linked, so the resubmission carries it too (and a third event ends the chain).
      expect(c.createTransfers([xfer(1n, 1n, 2n, 10n, { flags: TL }), xfer(1n, 1n, 2n, 10n, { flags: TL }), xfer(2n, 1n, 2n, 1n)])).toEqual([
        { status: "linked_event_failed", timestamp: c.slots[0] },
        { status: "exists", timestamp: c.slots[0] },
        { status: "linked_event_failed", timestamp: c.slots[2] }
      ])
      expect(c.lookupTransfer(1n)).toBeUndefined()
    })

    it("a transient failure in a chain orphans its id although the chain is rolled back", () => {
      const c = fresh()
      expect(statuses(c.createTransfers([xfer(1n, 1n, 2n, 1n, { flags: TL }), xfer(2n, 1n, 99n, 1n, { flags: TL }), xfer(3n, 1n, 2n, 1n)])))
        .toEqual(["linked_event_failed", "credit_account_not_found", "linked_event_failed"])
      expect(statuses(c.createTransfers([xfer(2n, 1n, 2n, 1n), xfer(1n, 1n, 2n, 1n), xfer(3n, 1n, 2n, 1n)])))
        .toEqual(["id_already_failed", "created", "created"])
    })

    it("later events of a chain see the effects of earlier ones", () => {
      const c = fresh()
      // Account 4 may only debit what it was credited: the credit comes first in the chain.
      expect(statuses(c.createTransfers([xfer(1n, 2n, 4n, 10n, { flags: TL }), xfer(2n, 4n, 1n, 10n)]))).toEqual(["created", "created"])
      // A post can resolve a pending transfer created earlier in the same chain.
      expect(statuses(c.createTransfers([xfer(3n, 1n, 2n, 10n, { flags: TL | F.pending }), resolve(4n, 3n, F.post_pending_transfer, 6n)])))
        .toEqual(["created", "created"])
      expect(c.balancesOf(2n)).toEqual(balances(0n, 10n, 0n, 7n))
    })

    it("events after a broken chain see the state from before the chain", () => {
      const c = fresh()
      expect(statuses(c.createTransfers([xfer(1n, 2n, 4n, 10n, { flags: TL }), xfer(2n, 1n, 2n, 1n, { ledger: 0 }), xfer(3n, 4n, 1n, 10n)])))
        .toEqual(["linked_event_failed", "ledger_must_not_be_zero", "exceeds_credits"])
    })

    it("a trailing linked transfer leaves the chain open and rolls back the chain before it", () => {
      const c = fresh()
      expect(statuses(c.createTransfers([xfer(1n, 1n, 2n, 3n), xfer(2n, 1n, 2n, 3n, { flags: TL }), xfer(3n, 1n, 2n, 3n, { flags: TL })])))
        .toEqual(["created", "linked_event_failed", "linked_event_chain_open"])
      expect(c.balancesOf(1n)).toEqual(balances(0n, 4n, 0n, 0n))
      // The id of a chain_open event is not burnt.
      expect(statuses(c.createTransfers([xfer(3n, 1n, 2n, 3n)]))).toEqual(["created"])
    })

    it("a trailing linked transfer reports chain_open in an already broken chain", () => {
      const c = fresh()
      expect(statuses(c.createTransfers([xfer(1n, 1n, 99n, 3n, { flags: TL }), xfer(2n, 1n, 2n, 3n, { flags: TL })])))
        .toEqual(["credit_account_not_found", "linked_event_chain_open"])
    })

    it("a chain never continues into the next batch", () => {
      const c = fresh()
      expect(statuses(c.createTransfers([xfer(1n, 1n, 2n, 3n, { flags: TL })]))).toEqual(["linked_event_chain_open"])
      expect(statuses(c.createTransfers([xfer(1n, 1n, 2n, 3n)]))).toEqual(["created"])
    })

    it("rollback restores a pending transfer's status, its expiry and the history", () => {
      const c = fresh()
      c.mustCreateTransfers([xfer(10n, 1n, 5n, 7n, { flags: F.pending })])
      const historyBefore = c.getAccountBalances(accountFilter({ account_id: 5n }))
      expect(historyBefore.length).toBe(1)
      expect(statuses(c.createTransfers([
        resolve(11n, 10n, F.post_pending_transfer, 7n, { flags: F.post_pending_transfer | TL }),
        xfer(12n, 5n, 1n, 1n, { flags: TL | F.pending, timeout: 5 }),
        xfer(13n, 1n, 5n, 1n, { code: 0 })
      ]))).toEqual(["linked_event_failed", "linked_event_failed", "code_must_not_be_zero"])
      expect(c.nextExpiry()).toBeUndefined()
      expect(c.getAccountBalances(accountFilter({ account_id: 5n }))).toEqual(historyBefore)
      expect(c.balancesOf(5n)).toEqual(balances(0n, 0n, 7n, 0n))
      // The pending transfer is still pending: it can be posted now.
      expect(statuses(c.createTransfers([resolve(14n, 10n, F.post_pending_transfer, 7n)]))).toEqual(["created"])
    })

    it("rollback restores closed flags set or cleared by the chain", () => {
      const c = fresh()
      expect(statuses(c.createTransfers([xfer(1n, 1n, 2n, 0n, { flags: TL | F.pending | F.closing_debit }), xfer(2n, 1n, 1n, 1n)])))
        .toEqual(["linked_event_failed", "accounts_must_be_different"])
      expect(c.flagsOf(1n) & AF.closed).toBe(0)
      c.mustCreateTransfers([xfer(3n, 1n, 2n, 0n, { flags: F.pending | F.closing_debit })])
      expect(statuses(c.createTransfers([resolve(4n, 3n, F.void_pending_transfer | TL, 0n), xfer(5n, 3n, 3n, 1n)])))
        .toEqual(["linked_event_failed", "accounts_must_be_different"])
      expect(c.flagsOf(1n) & AF.closed).toBe(AF.closed)
    })

    it("a rolled-back imported transfer keeps its imported timestamp in the result", () => {
      const c = fresh()
      const stamp = c.now - 1_000n
      expect(c.createTransfers([
        xfer(1n, 1n, 2n, 1n, { flags: TL | F.imported, timestamp: stamp }),
        xfer(2n, 1n, 2n, 1n, { flags: F.imported, timestamp: stamp + 1n, ledger: 0 })
      ])).toEqual([
        { status: "linked_event_failed", timestamp: stamp },
        { status: "ledger_must_not_be_zero", timestamp: c.slots[1] }
      ])
    })
  })
})
