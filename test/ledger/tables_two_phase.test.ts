/**
 * Two-phase transfer tables (spec §10, §13.2 step 4, §16.3): every status of the post/void path
 * with a case that produces it, its adjacent precedence pairs, the idempotency rules of posts and
 * voids, the effects of post (partial, AMOUNT_MAX, 0) and void (0, full), and expiry: by pulse, due
 * at a slot before any pulse, `nextExpiry`, ordering and the per-pulse cap.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  Cluster,
  type Transfer,
  TransferFlags,
  acct,
  amountMax,
  balances,
  implementations,
  resolve,
  second,
  statuses,
  u128Max,
  xfer
} from "./table_harness.ts"

const F = TransferFlags
const POST = F.post_pending_transfer
const VOID = F.void_pending_transfer
const P = F.pending

/** Pending transfer 200 of 123 from 1 to 2, with user data and code 5: the target of most rows. */
const pending200: Transfer = xfer(200n, 1n, 2n, 123n, { flags: P, user_data_128: 7n, user_data_64: 8n, user_data_32: 9, code: 5 })

// Setup of every row: accounts 1, 2, 3 on ledger 1; pending 200; single-phase 300; pending 210
// (posted by 211) and pending 220 (voided by 221).
const setupTransfers: Array<Transfer> = [
  pending200,
  xfer(300n, 1n, 2n, 10n),
  xfer(210n, 1n, 2n, 123n, { flags: P }),
  resolve(211n, 210n, POST, amountMax),
  xfer(220n, 1n, 2n, 123n, { flags: P }),
  resolve(221n, 220n, VOID, 0n)
]

interface StatusCase {
  readonly name: string
  readonly events: Array<Transfer>
  readonly expect: Array<string>
}

const everyStatus: Array<StatusCase> = [
  { name: "post of part of the amount is created", events: [resolve(1n, 200n, POST, 100n)], expect: ["created"] },
  { name: "post of AMOUNT_MAX is created", events: [resolve(1n, 200n, POST, amountMax)], expect: ["created"] },
  { name: "post of 0 is created", events: [resolve(1n, 200n, POST, 0n)], expect: ["created"] },
  { name: "post of exactly the pending amount is created", events: [resolve(1n, 200n, POST, 123n)], expect: ["created"] },
  { name: "void of 0 is created", events: [resolve(1n, 200n, VOID, 0n)], expect: ["created"] },
  { name: "void of the full amount is created", events: [resolve(1n, 200n, VOID, 123n)], expect: ["created"] },
  {
    name: "post naming the pending transfer's own accounts, ledger and code is created",
    events: [resolve(1n, 200n, POST, 1n, { debit_account_id: 1n, credit_account_id: 2n, ledger: 1, code: 5 })],
    expect: ["created"]
  },
  { name: "post and void together are mutually exclusive", events: [resolve(1n, 200n, POST | VOID, 0n)], expect: ["flags_are_mutually_exclusive"] },
  { name: "post with pending is mutually exclusive", events: [resolve(1n, 200n, POST | P, 0n)], expect: ["flags_are_mutually_exclusive"] },
  { name: "void with pending is mutually exclusive", events: [resolve(1n, 200n, VOID | P, 0n)], expect: ["flags_are_mutually_exclusive"] },
  { name: "post with balancing_debit is mutually exclusive", events: [resolve(1n, 200n, POST | F.balancing_debit, 0n)], expect: ["flags_are_mutually_exclusive"] },
  { name: "void with balancing_credit is mutually exclusive", events: [resolve(1n, 200n, VOID | F.balancing_credit, 0n)], expect: ["flags_are_mutually_exclusive"] },
  { name: "post with closing_debit is mutually exclusive", events: [resolve(1n, 200n, POST | F.closing_debit, 0n)], expect: ["flags_are_mutually_exclusive"] },
  { name: "void with closing_credit is mutually exclusive", events: [resolve(1n, 200n, VOID | F.closing_credit, 0n)], expect: ["flags_are_mutually_exclusive"] },
  { name: "pending_id must not be zero", events: [resolve(1n, 0n, POST, 0n)], expect: ["pending_id_must_not_be_zero"] },
  { name: "pending_id must not be 2^128-1", events: [resolve(1n, u128Max, VOID, 0n)], expect: ["pending_id_must_not_be_int_max"] },
  { name: "pending_id must differ from id", events: [resolve(5n, 5n, POST, 0n)], expect: ["pending_id_must_be_different"] },
  { name: "a post has no timeout", events: [resolve(1n, 200n, POST, 0n, { timeout: 1 })], expect: ["timeout_reserved_for_pending_transfer"] },
  { name: "the pending transfer must exist", events: [resolve(1n, 77n, POST, 0n)], expect: ["pending_transfer_not_found"] },
  { name: "the referenced transfer must be pending", events: [resolve(1n, 300n, VOID, 0n)], expect: ["pending_transfer_not_pending"] },
  { name: "a differing debit account is refused", events: [resolve(1n, 200n, POST, 0n, { debit_account_id: 3n })], expect: ["pending_transfer_has_different_debit_account_id"] },
  { name: "a differing credit account is refused", events: [resolve(1n, 200n, POST, 0n, { credit_account_id: 3n })], expect: ["pending_transfer_has_different_credit_account_id"] },
  { name: "a differing ledger is refused", events: [resolve(1n, 200n, VOID, 0n, { ledger: 2 })], expect: ["pending_transfer_has_different_ledger"] },
  { name: "a differing code is refused", events: [resolve(1n, 200n, VOID, 0n, { code: 6 })], expect: ["pending_transfer_has_different_code"] },
  {
    name: "user_data may differ freely",
    events: [resolve(1n, 200n, POST, 1n, { user_data_128: 70n, user_data_64: 80n, user_data_32: 90 })],
    expect: ["created"]
  },
  { name: "post of more than pending exceeds it", events: [resolve(1n, 200n, POST, 124n)], expect: ["exceeds_pending_transfer_amount"] },
  { name: "void of more than pending exceeds it", events: [resolve(1n, 200n, VOID, 124n)], expect: ["exceeds_pending_transfer_amount"] },
  { name: "void of less than pending is refused", events: [resolve(1n, 200n, VOID, 122n)], expect: ["pending_transfer_has_different_amount"] },
  { name: "post of an already posted transfer", events: [resolve(1n, 210n, POST, 0n)], expect: ["pending_transfer_already_posted"] },
  { name: "void of an already posted transfer", events: [resolve(1n, 210n, VOID, 0n)], expect: ["pending_transfer_already_posted"] },
  { name: "post of an already voided transfer", events: [resolve(1n, 220n, POST, 0n)], expect: ["pending_transfer_already_voided"] },
  { name: "void of an already voided transfer", events: [resolve(1n, 220n, VOID, 0n)], expect: ["pending_transfer_already_voided"] },
  {
    name: "the second resolution in one batch finds the first",
    events: [resolve(1n, 200n, POST, 1n), resolve(2n, 200n, VOID, 0n), resolve(3n, 200n, POST, 1n)],
    expect: ["created", "pending_transfer_already_posted", "pending_transfer_already_posted"]
  }
]

const precedence: Array<StatusCase> = [
  { name: "flags_are_mutually_exclusive beats pending_id_must_not_be_zero", events: [resolve(1n, 0n, POST | VOID, 0n)], expect: ["flags_are_mutually_exclusive"] },
  { name: "pending_id_must_not_be_zero beats timeout_reserved_for_pending_transfer", events: [resolve(1n, 0n, POST, 0n, { timeout: 1 })], expect: ["pending_id_must_not_be_zero"] },
  { name: "pending_id_must_not_be_int_max beats timeout_reserved_for_pending_transfer", events: [resolve(1n, u128Max, POST, 0n, { timeout: 1 })], expect: ["pending_id_must_not_be_int_max"] },
  { name: "pending_id_must_be_different beats timeout_reserved_for_pending_transfer", events: [resolve(5n, 5n, VOID, 0n, { timeout: 1 })], expect: ["pending_id_must_be_different"] },
  { name: "timeout_reserved_for_pending_transfer beats pending_transfer_not_found", events: [resolve(1n, 77n, POST, 0n, { timeout: 1 })], expect: ["timeout_reserved_for_pending_transfer"] },
  { name: "pending_transfer_not_found beats a differing debit account", events: [resolve(1n, 77n, POST, 0n, { debit_account_id: 3n })], expect: ["pending_transfer_not_found"] },
  { name: "pending_transfer_not_pending beats pending_transfer_has_different_debit_account_id", events: [resolve(1n, 300n, POST, 0n, { debit_account_id: 3n })], expect: ["pending_transfer_not_pending"] },
  {
    name: "has_different_debit_account_id beats has_different_credit_account_id",
    events: [resolve(1n, 200n, POST, 0n, { debit_account_id: 3n, credit_account_id: 1n })],
    expect: ["pending_transfer_has_different_debit_account_id"]
  },
  { name: "has_different_credit_account_id beats has_different_ledger", events: [resolve(1n, 200n, POST, 0n, { credit_account_id: 3n, ledger: 2 })], expect: ["pending_transfer_has_different_credit_account_id"] },
  { name: "has_different_ledger beats has_different_code", events: [resolve(1n, 200n, POST, 0n, { ledger: 2, code: 6 })], expect: ["pending_transfer_has_different_ledger"] },
  { name: "has_different_code beats exceeds_pending_transfer_amount", events: [resolve(1n, 200n, POST, 124n, { code: 6 })], expect: ["pending_transfer_has_different_code"] },
  { name: "exceeds_pending_transfer_amount beats pending_transfer_already_posted", events: [resolve(1n, 210n, POST, 124n)], expect: ["exceeds_pending_transfer_amount"] },
  { name: "pending_transfer_has_different_amount beats pending_transfer_already_posted", events: [resolve(1n, 210n, VOID, 1n)], expect: ["pending_transfer_has_different_amount"] },
  { name: "pending_transfer_has_different_amount beats pending_transfer_already_voided", events: [resolve(1n, 220n, VOID, 1n)], expect: ["pending_transfer_has_different_amount"] },
  {
    name: "a post with every field left 0 inherits: no ledger/code/account check on this path",
    events: [resolve(1n, 200n, POST, 0n, { ledger: 0, code: 0, debit_account_id: 0n, credit_account_id: 0n })],
    expect: ["created"]
  }
]

/** Idempotency of posts and voids (§13.2 step 4): rows resubmit a post or void created in setup. */
interface ExistsCase {
  readonly name: string
  readonly event: Transfer
  readonly expect: string
}

// Created by the setup below: 250 posts 60 of 200 (user data inherited), 251 posts AMOUNT_MAX of
// 260, 252 voids 270 with amount 0, 253 posts 1 of 280 with its own user_data_64 = 99.
const post250 = resolve(250n, 200n, POST, 60n)
const post251 = resolve(251n, 260n, POST, amountMax)
const void252 = resolve(252n, 270n, VOID, 0n)
const post253 = resolve(253n, 280n, POST, 1n, { user_data_64: 99n })

const existsCases: Array<ExistsCase> = [
  { name: "an identical post exists", event: post250, expect: "exists" },
  { name: "a post resubmitted with the pending transfer's accounts, ledger and code exists", event: { ...post250, debit_account_id: 1n, credit_account_id: 2n, ledger: 1, code: 5 }, expect: "exists" },
  { name: "a post resubmitted with the inherited user data spelled out exists", event: { ...post250, user_data_128: 7n, user_data_64: 8n, user_data_32: 9 }, expect: "exists" },
  { name: "a partial post resubmitted with AMOUNT_MAX has a different amount", event: { ...post250, amount: amountMax }, expect: "exists_with_different_amount" },
  { name: "a partial post resubmitted with another amount has a different amount", event: { ...post250, amount: 61n }, expect: "exists_with_different_amount" },
  { name: "a differing flag", event: { ...post250, flags: VOID }, expect: "exists_with_different_flags" },
  { name: "a differing pending_id", event: { ...post250, pending_id: 210n }, expect: "exists_with_different_pending_id" },
  { name: "a differing timeout", event: { ...post250, timeout: 1 }, expect: "exists_with_different_timeout" },
  { name: "a differing debit account", event: { ...post250, debit_account_id: 3n }, expect: "exists_with_different_debit_account_id" },
  { name: "a differing credit account", event: { ...post250, credit_account_id: 3n }, expect: "exists_with_different_credit_account_id" },
  { name: "a differing user_data_128", event: { ...post250, user_data_128: 1n }, expect: "exists_with_different_user_data_128" },
  { name: "a differing user_data_64", event: { ...post250, user_data_64: 1n }, expect: "exists_with_different_user_data_64" },
  { name: "a differing user_data_32", event: { ...post250, user_data_32: 1 }, expect: "exists_with_different_user_data_32" },
  { name: "a differing ledger", event: { ...post250, ledger: 2 }, expect: "exists_with_different_ledger" },
  { name: "a differing code", event: { ...post250, code: 6 }, expect: "exists_with_different_code" },
  { name: "debit account beats credit account", event: { ...post250, debit_account_id: 3n, credit_account_id: 3n }, expect: "exists_with_different_debit_account_id" },
  { name: "credit account beats amount", event: { ...post250, credit_account_id: 3n, amount: 1n }, expect: "exists_with_different_credit_account_id" },
  { name: "amount beats user_data_128", event: { ...post250, amount: 1n, user_data_128: 1n }, expect: "exists_with_different_amount" },
  { name: "user_data_32 beats ledger", event: { ...post250, user_data_32: 1, ledger: 2 }, expect: "exists_with_different_user_data_32" },
  { name: "ledger beats code", event: { ...post250, ledger: 2, code: 6 }, expect: "exists_with_different_ledger" },
  { name: "timeout beats debit account", event: { ...post250, timeout: 1, debit_account_id: 3n }, expect: "exists_with_different_timeout" },
  { name: "a full post resubmitted with AMOUNT_MAX exists", event: post251, expect: "exists" },
  { name: "a full post resubmitted with the exact amount exists", event: { ...post251, amount: 40n }, expect: "exists" },
  { name: "a full post resubmitted with less has a different amount", event: { ...post251, amount: 39n }, expect: "exists_with_different_amount" },
  { name: "a void resubmitted with 0 exists", event: void252, expect: "exists" },
  { name: "a void resubmitted with the full amount exists", event: { ...void252, amount: 30n }, expect: "exists" },
  { name: "a void resubmitted with another amount has a different amount", event: { ...void252, amount: 29n }, expect: "exists_with_different_amount" },
  { name: "user data 0 does not match a post that stored its own value", event: { ...post253, user_data_64: 0n }, expect: "exists_with_different_user_data_64" },
  { name: "a post that stored its own user data exists when resubmitted as it was", event: post253, expect: "exists" }
]

describe.each(implementations)("two-phase tables (%s ledger)", (_, make) => {
  const fresh = (): Cluster => {
    const c = new Cluster(make())
    c.mustCreateAccounts([acct(1n), acct(2n), acct(3n)])
    c.mustCreateTransfers(setupTransfers)
    return c
  }

  describe("every status of the post/void path", () => {
    it.each(everyStatus)("$name", ({ events, expect: expected }) => {
      const c = fresh()
      expect(statuses(c.createTransfers(events))).toEqual(expected)
    })
  })

  describe("precedence (§10.1, §16.3)", () => {
    it.each(precedence)("$name", ({ events, expect: expected }) => {
      const c = fresh()
      expect(statuses(c.createTransfers(events))).toEqual(expected)
    })
  })

  describe("idempotency of posts and voids (§13.2 step 4)", () => {
    it.each(existsCases)("$name", ({ event, expect: expected }) => {
      const c = fresh()
      c.mustCreateTransfers([
        post250,
        xfer(260n, 1n, 2n, 40n, { flags: P }), post251,
        xfer(270n, 1n, 2n, 30n, { flags: P }), void252,
        xfer(280n, 1n, 2n, 20n, { flags: P, user_data_64: 8n }), post253
      ])
      const original = c.lookupTransfer(event.id)
      expect(original).toBeDefined()
      const results = c.createTransfers([event])
      expect(statuses(results)).toEqual([expected])
      // §6.3: exists reports the original's timestamp, the other statuses their slot.
      expect(results[0]?.timestamp).toBe(expected === "exists" ? original?.timestamp : c.slots[0])
    })
  })

  describe("effects of post and void (§10.2)", () => {
    interface EffectCase {
      readonly name: string
      readonly event: Transfer
      /** The amount stored on the post/void transfer. */
      readonly stored: bigint
      /** Account 1's debits_posted after the event (it was 10 + 123 from the setup). */
      readonly debitsPosted: bigint
    }
    const effects: Array<EffectCase> = [
      { name: "partial post of 100 posts 100 and releases all 123 pending", event: resolve(1n, 200n, POST, 100n), stored: 100n, debitsPosted: 233n },
      { name: "post of AMOUNT_MAX posts the full 123", event: resolve(1n, 200n, POST, amountMax), stored: 123n, debitsPosted: 256n },
      { name: "post of 0 posts nothing and releases everything", event: resolve(1n, 200n, POST, 0n), stored: 0n, debitsPosted: 133n },
      { name: "void of 0 voids the full amount", event: resolve(1n, 200n, VOID, 0n), stored: 123n, debitsPosted: 133n },
      { name: "void of the full amount", event: resolve(1n, 200n, VOID, 123n), stored: 123n, debitsPosted: 133n }
    ]
    it.each(effects)("$name", ({ event, stored, debitsPosted }) => {
      const c = fresh()
      expect(c.balancesOf(1n)).toEqual(balances(123n, 133n, 0n, 0n))
      c.mustCreateTransfers([event])
      expect(c.balancesOf(1n)).toEqual(balances(0n, debitsPosted, 0n, 0n))
      expect(c.balancesOf(2n)).toEqual(balances(0n, 0n, 0n, debitsPosted))
      // The stored post/void inherits accounts, ledger, code and user data; timeout is 0.
      expect(c.lookupTransfer(1n)).toEqual({
        ...event,
        debit_account_id: 1n,
        credit_account_id: 2n,
        amount: stored,
        user_data_128: 7n,
        user_data_64: 8n,
        user_data_32: 9,
        ledger: 1,
        code: 5,
        timeout: 0,
        timestamp: c.slots[0]
      })
      // The pending record never changes.
      expect(c.lookupTransfer(200n)).toEqual({ ...pending200, timestamp: c.lookupTransfer(200n)?.timestamp })
    })

    it("submitted nonzero user data replaces the pending transfer's", () => {
      const c = fresh()
      c.mustCreateTransfers([resolve(1n, 200n, VOID, 0n, { user_data_128: 70n, user_data_32: 90 })])
      const stored = c.lookupTransfer(1n)
      expect([stored?.user_data_128, stored?.user_data_64, stored?.user_data_32]).toEqual([70n, 8n, 90])
    })

    it("a pending transfer resolves at most once, across batches", () => {
      const c = fresh()
      c.mustCreateTransfers([resolve(1n, 200n, VOID, 0n)])
      expect(statuses(c.createTransfers([resolve(2n, 200n, POST, 1n), resolve(3n, 200n, VOID, 0n)])))
        .toEqual(["pending_transfer_already_voided", "pending_transfer_already_voided"])
      expect(c.balancesOf(1n)).toEqual(balances(0n, 133n, 0n, 0n))
    })

    it("a post sees a pending transfer created earlier in the same batch", () => {
      const c = fresh()
      expect(statuses(c.createTransfers([xfer(1n, 2n, 3n, 5n, { flags: P }), resolve(2n, 1n, POST, 4n)]))).toEqual(["created", "created"])
      expect(c.balancesOf(3n)).toEqual(balances(0n, 0n, 0n, 4n))
    })
  })

  describe("expiry (§10.3–§10.6)", () => {
    /** A cluster with accounts 1..4 and a pending transfer 10 of 7 from 1 to 2 with a one-second timeout. */
    const withTimeout = (): { readonly c: Cluster; readonly expiresAt: bigint } => {
      const c = new Cluster(make())
      c.mustCreateAccounts([acct(1n), acct(2n), acct(3n), acct(4n)])
      const [result] = c.mustCreateTransfers([xfer(10n, 1n, 2n, 7n, { flags: P, timeout: 1 })])
      return { c, expiresAt: result!.timestamp + second }
    }

    it("nextExpiry is undefined without timeouts and timestamp + timeout × 10^9 with one", () => {
      const c = new Cluster(make())
      expect(c.nextExpiry()).toBeUndefined()
      c.mustCreateAccounts([acct(1n), acct(2n)])
      c.mustCreateTransfers([xfer(1n, 1n, 2n, 7n, { flags: P })])
      expect(c.nextExpiry()).toBeUndefined()
      c.mustCreateTransfers([xfer(2n, 1n, 2n, 7n, { flags: P, timeout: 5 }), xfer(3n, 1n, 2n, 7n, { flags: P, timeout: 2 })])
      expect(c.nextExpiry()).toBe(c.slots[1]! + 2n * second)
      // Resolving the earliest moves nextExpiry to the next one; resolving that clears it.
      c.mustCreateTransfers([resolve(4n, 3n, POST, 1n)])
      expect(c.nextExpiry()).toBe(c.lookupTransfer(2n)!.timestamp + 5n * second)
      c.mustCreateTransfers([resolve(5n, 2n, VOID, 0n)])
      expect(c.nextExpiry()).toBeUndefined()
    })

    it("a pulse before expires_at expires nothing; a pulse at exactly expires_at expires it", () => {
      const { c, expiresAt } = withTimeout()
      c.advance(expiresAt - 8189n - 1n - c.now)
      expect(c.pulse()).toBe(0)
      expect(c.now).toBe(expiresAt - 1n)
      expect(c.balancesOf(1n)).toEqual(balances(7n, 0n, 0n, 0n))
      c.advance(expiresAt - 8189n - c.now)
      expect(c.pulse()).toBe(1)
      expect(c.now).toBe(expiresAt)
      expect(c.nextExpiry()).toBeUndefined()
    })

    it("expiry releases both pending balances and later resolutions report pending_transfer_expired", () => {
      const { c, expiresAt } = withTimeout()
      expect(c.nextExpiry()).toBe(expiresAt)
      c.advance(second)
      expect(c.pulse()).toBe(1)
      expect(c.balancesOf(1n)).toEqual(balances(0n, 0n, 0n, 0n))
      expect(c.balancesOf(2n)).toEqual(balances(0n, 0n, 0n, 0n))
      expect(statuses(c.createTransfers([resolve(11n, 10n, POST, 1n), resolve(12n, 10n, VOID, 0n)])))
        .toEqual(["pending_transfer_expired", "pending_transfer_expired"])
      // Expiry is not a transfer and leaves the pending record as it was.
      expect(c.lookupTransfer(10n)?.flags).toBe(P)
      expect(c.lookupTransfers([11n, 12n])).toEqual([])
      // A second pulse has nothing to do.
      expect(c.pulse()).toBe(0)
    })

    it("a transfer due at its slot is expired before any pulse; one nanosecond earlier it is not", () => {
      const { c, expiresAt } = withTimeout()
      c.advance(expiresAt - 2n - c.now)
      // Slot expiresAt - 1: still pending, the post succeeds.
      expect(c.createTransfers([xfer(20n, 3n, 4n, 5n, { flags: P, timeout: 1 })])).toEqual([{ status: "created", timestamp: expiresAt - 1n }])
      const results = c.createTransfers([resolve(11n, 10n, POST, 1n), resolve(21n, 20n, VOID, 0n)])
      expect(results).toEqual([
        { status: "pending_transfer_expired", timestamp: expiresAt },
        { status: "created", timestamp: expiresAt + 1n }
      ])
      // Not transient: the id is not burnt. Not swept yet: the balance is still pending until a pulse.
      expect(c.balancesOf(1n)).toEqual(balances(7n, 0n, 0n, 0n))
      expect(c.pulse()).toBe(1)
      expect(c.balancesOf(1n)).toEqual(balances(0n, 0n, 0n, 0n))
      expect(statuses(c.createTransfers([xfer(11n, 1n, 2n, 1n)]))).toEqual(["created"])
    })

    it("a pending transfer posted before its expiry never expires", () => {
      const { c } = withTimeout()
      c.mustCreateTransfers([resolve(11n, 10n, POST, amountMax)])
      expect(c.nextExpiry()).toBeUndefined()
      c.advance(10n * second)
      expect(c.pulse()).toBe(0)
      expect(c.balancesOf(1n)).toEqual(balances(0n, 7n, 0n, 0n))
    })

    it("a pulse expires every due transfer, earliest expires_at first, at most 8189 per pulse", () => {
      const c = new Cluster(make())
      c.mustCreateAccounts([acct(1n), acct(2n), acct(3n), acct(4n)])
      // Transfer 1 (3 → 4, amount 5) expires after 2 s; then 8189 transfers (1 → 2) that expire after 1 s.
      c.mustCreateTransfers([xfer(1n, 3n, 4n, 5n, { flags: P, timeout: 2 })])
      const batch = Array.from({ length: 8189 }, (_, index) => xfer(100n + BigInt(index), 1n, 2n, 1n, { flags: P, timeout: 1 }))
      c.mustCreateTransfers(batch)
      c.advance(3n * second)
      expect(c.pulse()).toBe(8189)
      // The later-expiring transfer 1 did not fit into the first pulse.
      expect(c.balancesOf(1n)).toEqual(balances(0n, 0n, 0n, 0n))
      expect(c.balancesOf(3n)).toEqual(balances(5n, 0n, 0n, 0n))
      expect(c.pulse()).toBe(1)
      expect(c.balancesOf(3n)).toEqual(balances(0n, 0n, 0n, 0n))
      expect(c.nextExpiry()).toBeUndefined()
    })

    it("transfers with equal expires_at are swept in creation order, also across the cap", () => {
      const c = new Cluster(make())
      c.mustCreateAccounts([acct(1n), acct(2n), acct(3n), acct(4n)])
      // 8188 transfers (1 → 2) that expire after 1 s; then X (3 → 4) with a 2 s timeout; exactly
      // 1 s after X, Y (1 → 2) with a 1 s timeout: X and Y expire at the same instant, the 8189th
      // and 8190th due, and X was created first.
      const batch = Array.from({ length: 8188 }, (_, index) => xfer(100n + BigInt(index), 1n, 2n, 1n, { flags: P, timeout: 1 }))
      c.mustCreateTransfers(batch)
      const [x] = c.mustCreateTransfers([xfer(1n, 3n, 4n, 5n, { flags: P, timeout: 2 })])
      c.advance(x!.timestamp + second - 1n - c.now)
      const [y] = c.mustCreateTransfers([xfer(2n, 1n, 2n, 1n, { flags: P, timeout: 1 })])
      expect(y!.timestamp + second).toBe(x!.timestamp + 2n * second)
      c.advance(3n * second)
      expect(c.pulse()).toBe(8189)
      // X went in the first pulse, Y waits for the next one.
      expect(c.balancesOf(3n)).toEqual(balances(0n, 0n, 0n, 0n))
      expect(c.balancesOf(1n)).toEqual(balances(1n, 0n, 0n, 0n))
      expect(c.nextExpiry()).toBe(y!.timestamp + second)
      expect(c.pulse()).toBe(1)
      expect(c.balancesOf(1n)).toEqual(balances(0n, 0n, 0n, 0n))
    })
  })
})

