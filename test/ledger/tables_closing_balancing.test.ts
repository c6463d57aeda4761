/**
 * Balancing (spec §9.3, §13.2 step 5, §17.7) and closing (§12, §10.2, §10.4): the amount a
 * balancing transfer actually moves with and without limit flags, combined, with pending amounts
 * and when it comes out as zero; closing an account with a pending closing transfer, reopening it
 * by void and by expiry, accounts created closed, and voids that stay allowed on closed accounts.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  AccountFlags,
  type BatchLedger as Ledger,
  Cluster,
  type Transfer,
  TransferFlags,
  acct,
  amountMax,
  balances,
  implementations,
  queryFilter,
  resolve,
  second,
  statuses,
  xfer
} from "./table_harness.ts"

const AF = AccountFlags
const F = TransferFlags
const BD = F.balancing_debit
const BC = F.balancing_credit
const P = F.pending
const POST = F.post_pending_transfer
const VOID = F.void_pending_transfer

/**
 * Accounts: 1 has credits_posted 100 and debits_posted 30 (room to debit: 70); 2 has debits_posted
 * 100 and credits_posted 40 (room to credit: 60); 3 limits debits by credits and 4 credits by
 * debits, both untouched; 5 is plain and untouched; 9 funds everything.
 */
const fresh = (make: () => Ledger): Cluster => {
  const c = new Cluster(make())
  c.mustCreateAccounts([
    acct(1n), acct(2n), acct(3n, { flags: AF.debits_must_not_exceed_credits }),
    acct(4n, { flags: AF.credits_must_not_exceed_debits }), acct(5n), acct(9n)
  ])
  c.mustCreateTransfers([xfer(901n, 9n, 1n, 100n), xfer(902n, 1n, 9n, 30n), xfer(903n, 2n, 9n, 100n), xfer(904n, 9n, 2n, 40n)])
  return c
}

interface BalancingCase {
  readonly name: string
  readonly setup?: Array<Transfer>
  readonly event: Transfer
  readonly expect: string
  /** The stored amount when created. */
  readonly amount?: bigint
}

const balancing: Array<BalancingCase> = [
  { name: "balancing_debit moves at most the debit account's posted credits minus its debits", event: xfer(1n, 1n, 5n, 1000n, { flags: BD }), expect: "created", amount: 70n },
  { name: "balancing_debit with AMOUNT_MAX moves as much as possible", event: xfer(1n, 1n, 5n, amountMax, { flags: BD }), expect: "created", amount: 70n },
  { name: "balancing_debit below the limit moves the requested amount", event: xfer(1n, 1n, 5n, 20n, { flags: BD }), expect: "created", amount: 20n },
  { name: "balancing_debit counts pending debits", setup: [xfer(10n, 1n, 9n, 20n, { flags: P })], event: xfer(1n, 1n, 5n, 1000n, { flags: BD }), expect: "created", amount: 50n },
  {
    name: "balancing_debit ignores pending credits",
    setup: [xfer(10n, 9n, 1n, 20n, { flags: P })],
    event: xfer(1n, 1n, 5n, 1000n, { flags: BD }),
    expect: "created",
    amount: 70n
  },
  {
    name: "balancing_debit gives the same amount on an account with the limit flag",
    setup: [xfer(10n, 9n, 3n, 100n), xfer(11n, 3n, 9n, 30n)],
    event: xfer(1n, 3n, 5n, 1000n, { flags: BD }),
    expect: "created",
    amount: 70n
  },
  { name: "balancing_debit from an account whose debits exceed its credits moves 0 (saturating)", event: xfer(1n, 2n, 5n, 1000n, { flags: BD }), expect: "created", amount: 0n },
  { name: "balancing_debit from an untouched account moves 0", event: xfer(1n, 5n, 1n, 1000n, { flags: BD }), expect: "created", amount: 0n },
  { name: "balancing_credit moves at most the credit account's posted debits minus its credits", event: xfer(1n, 5n, 2n, 1000n, { flags: BC }), expect: "created", amount: 60n },
  { name: "balancing_credit counts pending credits", setup: [xfer(10n, 9n, 2n, 10n, { flags: P })], event: xfer(1n, 5n, 2n, amountMax, { flags: BC }), expect: "created", amount: 50n },
  { name: "balancing_credit into an account whose credits exceed its debits moves 0", event: xfer(1n, 5n, 1n, 1000n, { flags: BC }), expect: "created", amount: 0n },
  { name: "both balancing flags take the smaller limit (credit side)", event: xfer(1n, 1n, 2n, 1000n, { flags: BD | BC }), expect: "created", amount: 60n },
  {
    name: "both balancing flags take the smaller limit (debit side)",
    setup: [xfer(10n, 1n, 9n, 20n)],
    event: xfer(1n, 1n, 2n, 1000n, { flags: BD | BC }),
    expect: "created",
    amount: 50n
  },
  { name: "both balancing flags below both limits move the requested amount", event: xfer(1n, 1n, 2n, 10n, { flags: BD | BC }), expect: "created", amount: 10n },
  { name: "a pending balancing transfer reserves the limited amount", event: xfer(1n, 1n, 5n, 1000n, { flags: BD | P }), expect: "created", amount: 70n },
  {
    name: "balancing_credit does not lift the debit side's limit flag: exceeds_credits",
    event: xfer(1n, 3n, 2n, 10n, { flags: BC }),
    expect: "exceeds_credits"
  },
  {
    name: "balancing_debit does not lift the credit side's limit flag: exceeds_debits",
    event: xfer(1n, 1n, 4n, 10n, { flags: BD }),
    expect: "exceeds_debits"
  },
  { name: "a balancing transfer limited to 0 does not exceed a limit", event: xfer(1n, 5n, 4n, 10n, { flags: BD }), expect: "created", amount: 0n }
]

describe.each(implementations)("balancing (%s ledger)", (_, make) => {
  it.each(balancing)("$name", ({ setup, event, expect: expected, amount }) => {
    const c = fresh(make)
    if (setup !== undefined) c.mustCreateTransfers(setup)
    const debitBefore = c.balancesOf(event.debit_account_id)
    expect(statuses(c.createTransfers([event]))).toEqual([expected])
    if (amount === undefined) {
      expect(c.lookupTransfer(event.id)).toBeUndefined()
      expect(c.balancesOf(event.debit_account_id)).toEqual(debitBefore)
    } else {
      expect(c.lookupTransfer(event.id)?.amount).toBe(amount)
      const after = c.balancesOf(event.debit_account_id)
      if ((event.flags & P) !== 0) expect(after.debits_pending).toBe(debitBefore.debits_pending + amount)
      else expect(after.debits_posted).toBe(debitBefore.debits_posted + amount)
    }
  })

  it("a balancing resubmission exists for any amount at least the stored one (§13.2 step 5)", () => {
    const c = fresh(make)
    c.mustCreateTransfers([xfer(1n, 1n, 5n, 1000n, { flags: BD })])
    const stamp = c.slots[0]
    expect(c.createTransfers([
      xfer(1n, 1n, 5n, 1000n, { flags: BD }),
      xfer(1n, 1n, 5n, 70n, { flags: BD }),
      xfer(1n, 1n, 5n, amountMax, { flags: BD }),
      xfer(1n, 1n, 5n, 69n, { flags: BD })
    ])).toEqual([
      { status: "exists", timestamp: stamp },
      { status: "exists", timestamp: stamp },
      { status: "exists", timestamp: stamp },
      { status: "exists_with_different_amount", timestamp: c.slots[3] }
    ])
    expect(c.balancesOf(1n)).toEqual(balances(0n, 100n, 0n, 100n))
  })
})

describe.each(implementations)("closing (%s ledger)", (_, make) => {
  const closed = (c: Cluster, id: bigint): boolean => (c.flagsOf(id) & AF.closed) !== 0

  it("closing_debit closes the debit account only; it then refuses transfers on both sides", () => {
    const c = fresh(make)
    c.mustCreateTransfers([xfer(10n, 1n, 5n, 0n, { flags: P | F.closing_debit })])
    expect([closed(c, 1n), closed(c, 5n)]).toEqual([true, false])
    expect(statuses(c.createTransfers([
      xfer(1n, 1n, 2n, 1n),
      xfer(2n, 2n, 1n, 1n),
      xfer(3n, 1n, 2n, 1n, { flags: P }),
      xfer(4n, 2n, 1n, 0n, { flags: P | F.closing_credit }),
      xfer(5n, 5n, 2n, 1n)
    ]))).toEqual(["debit_account_already_closed", "credit_account_already_closed", "debit_account_already_closed", "credit_account_already_closed", "created"])
    // Both refusals are transient: the ids are burnt.
    expect(statuses(c.createTransfers([xfer(1n, 5n, 2n, 1n)]))).toEqual(["id_already_failed"])
  })

  it("closing_credit closes the credit account; both flags close both", () => {
    const c = fresh(make)
    c.mustCreateTransfers([xfer(10n, 5n, 1n, 0n, { flags: P | F.closing_credit }), xfer(11n, 2n, 9n, 0n, { flags: P | F.closing_debit | F.closing_credit })])
    expect([closed(c, 5n), closed(c, 1n), closed(c, 2n), closed(c, 9n)]).toEqual([false, true, true, true])
  })

  it("a closing transfer may move an amount and may balance", () => {
    const c = fresh(make)
    expect(statuses(c.createTransfers([xfer(10n, 1n, 5n, amountMax, { flags: P | F.closing_debit | BD })]))).toEqual(["created"])
    expect(c.lookupTransfer(10n)?.amount).toBe(70n)
    expect(c.balancesOf(1n)).toEqual(balances(70n, 30n, 0n, 100n))
    expect(closed(c, 1n)).toBe(true)
  })

  it("the zero-balance recipe: a balancing chain followed by a zero closing transfer", () => {
    const c = fresh(make)
    expect(statuses(c.createTransfers([
      xfer(10n, 1n, 9n, amountMax, { flags: BD | F.linked }),
      xfer(11n, 1n, 9n, 0n, { flags: P | F.closing_debit })
    ]))).toEqual(["created", "created"])
    expect(c.balancesOf(1n)).toEqual(balances(0n, 100n, 0n, 100n))
    expect(closed(c, 1n)).toBe(true)
  })

  it("voiding the closing transfer reopens the account; posting it is refused", () => {
    const c = fresh(make)
    c.mustCreateTransfers([xfer(10n, 1n, 5n, 5n, { flags: P | F.closing_debit | F.closing_credit })])
    expect(statuses(c.createTransfers([resolve(11n, 10n, POST, 5n)]))).toEqual(["debit_account_already_closed"])
    expect(statuses(c.createTransfers([resolve(12n, 10n, VOID, 0n)]))).toEqual(["created"])
    expect([closed(c, 1n), closed(c, 5n)]).toEqual([false, false])
    expect(c.balancesOf(1n)).toEqual(balances(0n, 30n, 0n, 100n))
    expect(statuses(c.createTransfers([xfer(13n, 1n, 5n, 1n)]))).toEqual(["created"])
  })

  it("a post into an account closed on the credit side is refused with credit_account_already_closed", () => {
    const c = fresh(make)
    c.mustCreateTransfers([xfer(10n, 1n, 5n, 5n, { flags: P }), xfer(11n, 2n, 5n, 0n, { flags: P | F.closing_credit })])
    expect(statuses(c.createTransfers([resolve(12n, 10n, POST, 5n)]))).toEqual(["credit_account_already_closed"])
    // debit_account_already_closed beats credit_account_already_closed on the post path too.
    c.mustCreateTransfers([xfer(13n, 1n, 9n, 0n, { flags: P | F.closing_debit })])
    expect(statuses(c.createTransfers([resolve(14n, 10n, POST, 5n)]))).toEqual(["debit_account_already_closed"])
  })

  it("pending_transfer_already_posted and pending_transfer_expired beat the closed-account checks", () => {
    const c = fresh(make)
    const [, expiring] = c.mustCreateTransfers([
      xfer(10n, 1n, 5n, 5n, { flags: P }),
      xfer(11n, 1n, 5n, 5n, { flags: P, timeout: 1 }),
      resolve(12n, 10n, POST, 5n)
    ])
    c.mustCreateTransfers([xfer(13n, 1n, 9n, 0n, { flags: P | F.closing_debit })])
    c.advance(expiring!.timestamp + second - c.now)
    // 11 is due at the next slot (not yet swept), 10 is posted; account 1 is closed.
    expect(statuses(c.createTransfers([resolve(14n, 10n, POST, 5n), resolve(15n, 11n, POST, 5n), xfer(16n, 1n, 5n, 1n)])))
      .toEqual(["pending_transfer_already_posted", "pending_transfer_expired", "debit_account_already_closed"])
  })

  it("voids of other pending transfers stay allowed on a closed account and do not reopen it", () => {
    const c = fresh(make)
    c.mustCreateTransfers([xfer(10n, 1n, 5n, 5n, { flags: P }), xfer(11n, 1n, 5n, 6n, { flags: P }), xfer(12n, 1n, 9n, 0n, { flags: P | F.closing_debit })])
    expect(statuses(c.createTransfers([resolve(13n, 10n, VOID, 0n), resolve(14n, 11n, POST, 6n)])))
      .toEqual(["created", "debit_account_already_closed"])
    expect(closed(c, 1n)).toBe(true)
    expect(c.balancesOf(1n)).toEqual(balances(6n, 30n, 0n, 100n))
  })

  it("expiry of the closing transfer reopens the account, and only the pulse does", () => {
    const c = fresh(make)
    const [result] = c.mustCreateTransfers([xfer(10n, 1n, 5n, 3n, { flags: P | F.closing_debit, timeout: 1 })])
    c.advance(result!.timestamp + second - c.now)
    // Due but not yet swept: the account is still closed.
    expect(statuses(c.createTransfers([xfer(11n, 1n, 5n, 1n)]))).toEqual(["debit_account_already_closed"])
    expect(c.pulse()).toBe(1)
    expect(closed(c, 1n)).toBe(false)
    expect(c.balancesOf(1n)).toEqual(balances(0n, 30n, 0n, 100n))
    expect(statuses(c.createTransfers([xfer(12n, 1n, 5n, 1n), resolve(13n, 10n, VOID, 0n)]))).toEqual(["created", "pending_transfer_expired"])
  })

  it("a pending transfer of a closed account still expires; the account stays closed", () => {
    const c = fresh(make)
    const [pending] = c.mustCreateTransfers([xfer(10n, 1n, 5n, 3n, { flags: P, timeout: 1 }), xfer(11n, 1n, 9n, 0n, { flags: P | F.closing_debit })])
    c.advance(pending!.timestamp + second - c.now)
    expect(c.pulse()).toBe(1)
    expect(c.balancesOf(1n)).toEqual(balances(0n, 30n, 0n, 100n))
    expect(closed(c, 1n)).toBe(true)
  })

  it("an account created closed refuses every transfer and stays closed", () => {
    const c = fresh(make)
    c.mustCreateAccounts([acct(20n, { flags: AF.closed })])
    expect(statuses(c.createTransfers([
      xfer(1n, 20n, 5n, 0n),
      xfer(2n, 5n, 20n, 0n),
      xfer(3n, 20n, 5n, 0n, { flags: P | F.closing_debit })
    ]))).toEqual(["debit_account_already_closed", "credit_account_already_closed", "debit_account_already_closed"])
    expect(statuses(c.createAccounts([acct(20n, { flags: AF.closed })]))).toEqual(["exists"])
  })

  it("an account closed by a transfer no longer matches its creation event; reopened, it does again", () => {
    const c = fresh(make)
    c.mustCreateTransfers([xfer(10n, 5n, 1n, 0n, { flags: P | F.closing_debit })])
    expect(statuses(c.createAccounts([acct(5n)]))).toEqual(["exists_with_different_flags"])
    c.mustCreateTransfers([resolve(11n, 10n, VOID, 0n)])
    expect(statuses(c.createAccounts([acct(5n)]))).toEqual(["exists"])
  })

  it("the closed flag shows in lookups and queries", () => {
    const c = fresh(make)
    c.mustCreateTransfers([xfer(10n, 5n, 1n, 0n, { flags: P | F.closing_debit })])
    expect(c.lookupAccount(5n)?.flags).toBe(AF.closed)
    const found = c.queryAccounts(queryFilter({ ledger: 1 })).find((a) => a.id === 5n)
    expect(found?.flags).toBe(AF.closed)
  })

  it("an identical resubmission of a transfer from a now-closed account still exists (§17.2)", () => {
    const c = fresh(make)
    c.mustCreateTransfers([xfer(10n, 5n, 1n, 0n, { flags: P | F.closing_debit })])
    expect(statuses(c.createTransfers([xfer(901n, 9n, 1n, 100n), xfer(10n, 5n, 1n, 0n, { flags: P | F.closing_debit })]))).toEqual(["exists", "exists"])
  })
})
