/**
 * create_transfers tables for single-phase and pending transfers (spec §9, §13.2, §16.2, §17):
 * every status of the main path with a case that produces it, every adjacent precedence pair of
 * §9.1 that an event can violate at once, the overflow checks near 2^128-1 and 2^63-1, burnt ids
 * (§9.5), result timestamps (§6.3) and the effect of a created transfer on balances (§9.4).
 * Post/void statuses are in tables_two_phase, imported ones in tables_imported, closing and
 * balancing in tables_closing_balancing.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  AccountFlags,
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
  timestampMax,
  u128Max,
  xfer
} from "./table_harness.ts"

const AF = AccountFlags
const F = TransferFlags

// Accounts of every case: 1 and 2 plain on ledger 1; 3 on ledger 2; 4 limits its debits by its
// credits; 5 limits its credits by its debits; 6 and 7 are created closed. 99 does not exist.
const setupAccounts = [
  acct(1n),
  acct(2n),
  acct(3n, { ledger: 2 }),
  acct(4n, { flags: AF.debits_must_not_exceed_credits }),
  acct(5n, { flags: AF.credits_must_not_exceed_debits }),
  acct(6n, { flags: AF.closed }),
  acct(7n, { flags: AF.closed })
]

/** Transfer 100 exists before every case: the target of the idempotency rows. */
const existing: Transfer = xfer(100n, 1n, 2n, 10n, { user_data_128: 5n, user_data_64: 6n, user_data_32: 7, code: 2 })

/** Transfer 400 took account 4 exactly to its limit: resubmitting it would now exceed credits. */
const atLimit: Array<Transfer> = [xfer(401n, 2n, 4n, 10n), xfer(400n, 4n, 1n, 10n)]

interface StatusCase {
  readonly name: string
  readonly events: (c: Cluster) => Array<Transfer>
  readonly expect: Array<string>
}

const imported = (transfer: Transfer, timestamp: bigint): Transfer =>
  ({ ...transfer, flags: transfer.flags | F.imported, timestamp })

/** A timestamp after every object of the setup and before the next batch's slots. */
const past = (c: Cluster): bigint => c.now - 1_000n

const bothLimits = F.post_pending_transfer | F.void_pending_transfer

const everyStatus: Array<StatusCase> = [
  { name: "a valid transfer is created", events: () => [xfer(1n, 1n, 2n, 10n)], expect: ["created"] },
  { name: "a zero-amount transfer is created (§17.5)", events: () => [xfer(1n, 1n, 2n, 0n)], expect: ["created"] },
  { name: "a lone linked event leaves its chain open", events: () => [xfer(1n, 1n, 2n, 1n, { flags: F.linked })], expect: ["linked_event_chain_open"] },
  {
    name: "an event after a chain failure fails with the chain",
    events: () => [xfer(1n, 1n, 2n, 1n, { flags: F.linked, ledger: 0 }), xfer(2n, 1n, 2n, 1n)],
    expect: ["ledger_must_not_be_zero", "linked_event_failed"]
  },
  {
    name: "a non-imported event in an imported batch expects the import flag",
    events: (c) => [imported(xfer(1n, 1n, 2n, 1n), past(c)), xfer(2n, 1n, 2n, 1n)],
    expect: ["created", "imported_event_expected"]
  },
  {
    name: "an imported event in a non-imported batch is not expected",
    events: (c) => [xfer(1n, 1n, 2n, 1n), imported(xfer(2n, 1n, 2n, 1n), past(c))],
    expect: ["created", "imported_event_not_expected"]
  },
  { name: "an imported timestamp of 0 is out of range", events: () => [imported(xfer(1n, 1n, 2n, 1n), 0n)], expect: ["imported_event_timestamp_out_of_range"] },
  {
    name: "an imported timestamp of 2^63 is out of range",
    events: () => [imported(xfer(1n, 1n, 2n, 1n), timestampMax + 1n)],
    expect: ["imported_event_timestamp_out_of_range"]
  },
  {
    name: "an imported timestamp equal to T must not advance",
    events: (c) => [imported(xfer(1n, 1n, 2n, 1n), c.nextBatchEnd(1))],
    expect: ["imported_event_timestamp_must_not_advance"]
  },
  { name: "a non-imported transfer must not carry a timestamp", events: () => [xfer(1n, 1n, 2n, 1n, { timestamp: 1n })], expect: ["timestamp_must_be_zero"] },
  { name: "flag bit 9 is reserved", events: () => [xfer(1n, 1n, 2n, 1n, { flags: 1 << 9 })], expect: ["reserved_flag"] },
  { name: "flag bit 15 is reserved", events: () => [xfer(1n, 1n, 2n, 1n, { flags: 1 << 15 })], expect: ["reserved_flag"] },
  { name: "id 0 is refused", events: () => [xfer(0n, 1n, 2n, 1n)], expect: ["id_must_not_be_zero"] },
  { name: "id 2^128-1 is refused", events: () => [xfer(u128Max, 1n, 2n, 1n)], expect: ["id_must_not_be_int_max"] },
  { name: "a differing flag is reported", events: () => [{ ...existing, flags: F.pending }], expect: ["exists_with_different_flags"] },
  { name: "a differing linked flag is reported", events: () => [{ ...existing, flags: F.linked }, xfer(1n, 1n, 2n, 1n)], expect: ["exists_with_different_flags", "linked_event_failed"] },
  { name: "a differing pending_id is reported", events: () => [{ ...existing, pending_id: 7n }], expect: ["exists_with_different_pending_id"] },
  { name: "a differing timeout is reported", events: () => [{ ...existing, timeout: 1 }], expect: ["exists_with_different_timeout"] },
  { name: "a differing debit account is reported", events: () => [{ ...existing, debit_account_id: 4n }], expect: ["exists_with_different_debit_account_id"] },
  { name: "a differing credit account is reported", events: () => [{ ...existing, credit_account_id: 4n }], expect: ["exists_with_different_credit_account_id"] },
  { name: "a differing amount is reported", events: () => [{ ...existing, amount: 11n }], expect: ["exists_with_different_amount"] },
  { name: "a differing user_data_128 is reported", events: () => [{ ...existing, user_data_128: 50n }], expect: ["exists_with_different_user_data_128"] },
  { name: "a differing user_data_64 is reported", events: () => [{ ...existing, user_data_64: 60n }], expect: ["exists_with_different_user_data_64"] },
  { name: "a differing user_data_32 is reported", events: () => [{ ...existing, user_data_32: 70 }], expect: ["exists_with_different_user_data_32"] },
  { name: "a differing ledger is reported", events: () => [{ ...existing, ledger: 2 }], expect: ["exists_with_different_ledger"] },
  { name: "a differing code is reported", events: () => [{ ...existing, code: 9 }], expect: ["exists_with_different_code"] },
  { name: "an identical resubmission exists", events: () => [existing], expect: ["exists"] },
  {
    name: "an id that failed transiently is burnt",
    events: () => [xfer(1n, 1n, 99n, 1n), xfer(1n, 1n, 2n, 1n)],
    expect: ["credit_account_not_found", "id_already_failed"]
  },
  { name: "debit account 0 is refused", events: () => [xfer(1n, 0n, 2n, 1n)], expect: ["debit_account_id_must_not_be_zero"] },
  { name: "debit account 2^128-1 is refused", events: () => [xfer(1n, u128Max, 2n, 1n)], expect: ["debit_account_id_must_not_be_int_max"] },
  { name: "credit account 0 is refused", events: () => [xfer(1n, 1n, 0n, 1n)], expect: ["credit_account_id_must_not_be_zero"] },
  { name: "credit account 2^128-1 is refused", events: () => [xfer(1n, 1n, u128Max, 1n)], expect: ["credit_account_id_must_not_be_int_max"] },
  { name: "debit and credit account must differ", events: () => [xfer(1n, 1n, 1n, 1n)], expect: ["accounts_must_be_different"] },
  { name: "a transfer that is not a post or void has no pending_id", events: () => [xfer(1n, 1n, 2n, 1n, { pending_id: 5n })], expect: ["pending_id_must_be_zero"] },
  { name: "only a pending transfer may have a timeout", events: () => [xfer(1n, 1n, 2n, 1n, { timeout: 1 })], expect: ["timeout_reserved_for_pending_transfer"] },
  { name: "closing_debit requires pending", events: () => [xfer(1n, 1n, 2n, 1n, { flags: F.closing_debit })], expect: ["closing_transfer_must_be_pending"] },
  { name: "closing_credit requires pending", events: () => [xfer(1n, 1n, 2n, 1n, { flags: F.closing_credit })], expect: ["closing_transfer_must_be_pending"] },
  { name: "ledger must not be zero", events: () => [xfer(1n, 1n, 2n, 1n, { ledger: 0 })], expect: ["ledger_must_not_be_zero"] },
  { name: "code must not be zero", events: () => [xfer(1n, 1n, 2n, 1n, { code: 0 })], expect: ["code_must_not_be_zero"] },
  { name: "the debit account must exist", events: () => [xfer(1n, 99n, 2n, 1n)], expect: ["debit_account_not_found"] },
  { name: "the credit account must exist", events: () => [xfer(1n, 1n, 99n, 1n)], expect: ["credit_account_not_found"] },
  { name: "both accounts must be on one ledger", events: () => [xfer(1n, 1n, 3n, 1n)], expect: ["accounts_must_have_the_same_ledger"] },
  { name: "the transfer must be on the accounts' ledger", events: () => [xfer(1n, 1n, 2n, 1n, { ledger: 2 })], expect: ["transfer_must_have_the_same_ledger_as_accounts"] },
  { name: "a closed debit account refuses transfers", events: () => [xfer(1n, 6n, 2n, 1n)], expect: ["debit_account_already_closed"] },
  { name: "a closed credit account refuses transfers", events: () => [xfer(1n, 1n, 6n, 1n)], expect: ["credit_account_already_closed"] },
  { name: "a debit beyond posted credits is refused", events: () => [xfer(1n, 4n, 2n, 1n)], expect: ["exceeds_credits"] },
  { name: "a credit beyond posted debits is refused", events: () => [xfer(1n, 1n, 5n, 1n)], expect: ["exceeds_debits"] },
  { name: "a pending debit beyond posted credits is refused", events: () => [xfer(1n, 4n, 2n, 1n, { flags: F.pending })], expect: ["exceeds_credits"] },
  { name: "a pending credit beyond posted debits is refused", events: () => [xfer(1n, 1n, 5n, 1n, { flags: F.pending })], expect: ["exceeds_debits"] }
]

const precedence: Array<StatusCase> = [
  {
    name: "chain_open beats linked_event_failed",
    events: () => [xfer(1n, 1n, 2n, 1n, { flags: F.linked, code: 0 }), xfer(2n, 1n, 2n, 1n, { flags: F.linked })],
    expect: ["code_must_not_be_zero", "linked_event_chain_open"]
  },
  {
    name: "linked_event_failed beats imported_event_expected",
    events: (c) => [imported(xfer(1n, 1n, 2n, 1n, { flags: F.linked, code: 0 }), past(c)), xfer(2n, 1n, 2n, 1n)],
    expect: ["code_must_not_be_zero", "linked_event_failed"]
  },
  {
    name: "imported_event_not_expected beats imported_event_timestamp_out_of_range",
    events: () => [xfer(1n, 1n, 2n, 1n), imported(xfer(2n, 1n, 2n, 1n), 0n)],
    expect: ["created", "imported_event_not_expected"]
  },
  {
    name: "imported_event_expected beats timestamp_must_be_zero",
    events: (c) => [imported(xfer(1n, 1n, 2n, 1n), past(c)), xfer(2n, 1n, 2n, 1n, { timestamp: 3n })],
    expect: ["created", "imported_event_expected"]
  },
  { name: "out_of_range beats must_not_advance (2^63 is both)", events: () => [imported(xfer(1n, 1n, 2n, 1n), 1n << 63n)], expect: ["imported_event_timestamp_out_of_range"] },
  {
    name: "must_not_advance beats reserved_flag",
    events: (c) => [imported(xfer(1n, 1n, 2n, 1n, { flags: 1 << 12 }), c.nextBatchEnd(1))],
    expect: ["imported_event_timestamp_must_not_advance"]
  },
  { name: "out_of_range beats reserved_flag", events: () => [imported(xfer(1n, 1n, 2n, 1n, { flags: 1 << 14 }), 0n)], expect: ["imported_event_timestamp_out_of_range"] },
  { name: "timestamp_must_be_zero beats reserved_flag", events: () => [xfer(1n, 1n, 2n, 1n, { flags: 1 << 9, timestamp: 1n })], expect: ["timestamp_must_be_zero"] },
  { name: "reserved_flag beats id_must_not_be_zero", events: () => [xfer(0n, 1n, 2n, 1n, { flags: 1 << 9 })], expect: ["reserved_flag"] },
  { name: "reserved_flag beats id_must_not_be_int_max", events: () => [xfer(u128Max, 1n, 2n, 1n, { flags: 1 << 9 })], expect: ["reserved_flag"] },
  { name: "id_must_not_be_zero beats debit_account_id_must_not_be_zero", events: () => [xfer(0n, 0n, 0n, 1n, { ledger: 0 })], expect: ["id_must_not_be_zero"] },
  { name: "id_must_not_be_int_max beats flags_are_mutually_exclusive", events: () => [resolve(u128Max, 0n, bothLimits, 0n)], expect: ["id_must_not_be_int_max"] },
  // §17: the exists family does not beat the batch-level, reserved-flag and id checks.
  { name: "timestamp_must_be_zero beats exists", events: () => [{ ...existing, timestamp: 1n }], expect: ["timestamp_must_be_zero"] },
  { name: "reserved_flag beats exists_with_different_flags", events: () => [{ ...existing, flags: 1 << 13 }], expect: ["reserved_flag"] },
  {
    name: "imported_event_not_expected beats exists",
    events: (c) => [xfer(1n, 1n, 2n, 1n), { ...existing, flags: F.imported, timestamp: past(c) }],
    expect: ["created", "imported_event_not_expected"]
  },
  // The idempotency chain of §13.2 (main path).
  { name: "exists_with_different_flags beats exists_with_different_pending_id", events: () => [{ ...existing, flags: F.pending, pending_id: 7n }], expect: ["exists_with_different_flags"] },
  { name: "exists_with_different_pending_id beats exists_with_different_timeout", events: () => [{ ...existing, pending_id: 7n, timeout: 1 }], expect: ["exists_with_different_pending_id"] },
  { name: "exists_with_different_timeout beats exists_with_different_debit_account_id", events: () => [{ ...existing, timeout: 1, debit_account_id: 4n }], expect: ["exists_with_different_timeout"] },
  {
    name: "exists_with_different_debit_account_id beats exists_with_different_credit_account_id",
    events: () => [{ ...existing, debit_account_id: 4n, credit_account_id: 5n }],
    expect: ["exists_with_different_debit_account_id"]
  },
  { name: "exists_with_different_credit_account_id beats exists_with_different_amount", events: () => [{ ...existing, credit_account_id: 4n, amount: 1n }], expect: ["exists_with_different_credit_account_id"] },
  { name: "exists_with_different_amount beats exists_with_different_user_data_128", events: () => [{ ...existing, amount: 1n, user_data_128: 1n }], expect: ["exists_with_different_amount"] },
  { name: "exists_with_different_user_data_128 beats exists_with_different_user_data_64", events: () => [{ ...existing, user_data_128: 1n, user_data_64: 1n }], expect: ["exists_with_different_user_data_128"] },
  { name: "exists_with_different_user_data_64 beats exists_with_different_user_data_32", events: () => [{ ...existing, user_data_64: 1n, user_data_32: 1 }], expect: ["exists_with_different_user_data_64"] },
  { name: "exists_with_different_user_data_32 beats exists_with_different_ledger", events: () => [{ ...existing, user_data_32: 1, ledger: 2 }], expect: ["exists_with_different_user_data_32"] },
  { name: "exists_with_different_ledger beats exists_with_different_code", events: () => [{ ...existing, ledger: 2, code: 9 }], expect: ["exists_with_different_ledger"] },
  // §17: the exists family beats the validation after it.
  { name: "exists_with_different_debit_account_id beats debit_account_id_must_not_be_zero", events: () => [{ ...existing, debit_account_id: 0n }], expect: ["exists_with_different_debit_account_id"] },
  { name: "exists_with_different_debit_account_id beats accounts_must_be_different", events: () => [{ ...existing, debit_account_id: 2n }], expect: ["exists_with_different_debit_account_id"] },
  { name: "exists_with_different_debit_account_id beats debit_account_not_found", events: () => [{ ...existing, debit_account_id: 99n }], expect: ["exists_with_different_debit_account_id"] },
  { name: "exists_with_different_pending_id beats pending_id_must_be_zero", events: () => [{ ...existing, pending_id: 3n }], expect: ["exists_with_different_pending_id"] },
  { name: "exists_with_different_timeout beats timeout_reserved_for_pending_transfer", events: () => [{ ...existing, timeout: 3 }], expect: ["exists_with_different_timeout"] },
  { name: "exists_with_different_ledger beats ledger_must_not_be_zero", events: () => [{ ...existing, ledger: 0 }], expect: ["exists_with_different_ledger"] },
  { name: "exists_with_different_code beats code_must_not_be_zero", events: () => [{ ...existing, code: 0 }], expect: ["exists_with_different_code"] },
  { name: "exists beats exceeds_credits (transfer 400 would now exceed account 4's credits)", events: () => [atLimit[1]!], expect: ["exists"] },
  // id_already_failed beats everything after the idempotency check.
  {
    name: "id_already_failed beats debit_account_id_must_not_be_zero",
    events: () => [xfer(1n, 99n, 2n, 1n), xfer(1n, 0n, 2n, 1n)],
    expect: ["debit_account_not_found", "id_already_failed"]
  },
  {
    name: "id_already_failed beats flags_are_mutually_exclusive (post/void path)",
    events: () => [xfer(1n, 99n, 2n, 1n), resolve(1n, 100n, bothLimits, 0n)],
    expect: ["debit_account_not_found", "id_already_failed"]
  },
  // The field checks of §9.1 steps 10–22.
  { name: "debit_account_id_must_not_be_zero beats credit_account_id_must_not_be_zero", events: () => [xfer(1n, 0n, 0n, 1n)], expect: ["debit_account_id_must_not_be_zero"] },
  { name: "debit_account_id_must_not_be_int_max beats credit_account_id_must_not_be_zero", events: () => [xfer(1n, u128Max, 0n, 1n)], expect: ["debit_account_id_must_not_be_int_max"] },
  { name: "debit_account_id_must_not_be_int_max beats accounts_must_be_different", events: () => [xfer(1n, u128Max, u128Max, 1n)], expect: ["debit_account_id_must_not_be_int_max"] },
  { name: "credit_account_id_must_not_be_zero beats pending_id_must_be_zero", events: () => [xfer(1n, 1n, 0n, 1n, { pending_id: 5n })], expect: ["credit_account_id_must_not_be_zero"] },
  { name: "credit_account_id_must_not_be_int_max beats pending_id_must_be_zero", events: () => [xfer(1n, 1n, u128Max, 1n, { pending_id: 5n })], expect: ["credit_account_id_must_not_be_int_max"] },
  { name: "accounts_must_be_different beats pending_id_must_be_zero", events: () => [xfer(1n, 1n, 1n, 1n, { pending_id: 5n })], expect: ["accounts_must_be_different"] },
  { name: "pending_id_must_be_zero beats timeout_reserved_for_pending_transfer", events: () => [xfer(1n, 1n, 2n, 1n, { pending_id: 5n, timeout: 1 })], expect: ["pending_id_must_be_zero"] },
  {
    name: "timeout_reserved_for_pending_transfer beats closing_transfer_must_be_pending",
    events: () => [xfer(1n, 1n, 2n, 1n, { timeout: 1, flags: F.closing_debit })],
    expect: ["timeout_reserved_for_pending_transfer"]
  },
  { name: "closing_transfer_must_be_pending beats ledger_must_not_be_zero", events: () => [xfer(1n, 1n, 2n, 1n, { flags: F.closing_credit, ledger: 0 })], expect: ["closing_transfer_must_be_pending"] },
  { name: "ledger_must_not_be_zero beats code_must_not_be_zero", events: () => [xfer(1n, 1n, 2n, 1n, { ledger: 0, code: 0 })], expect: ["ledger_must_not_be_zero"] },
  { name: "code_must_not_be_zero beats debit_account_not_found", events: () => [xfer(1n, 99n, 98n, 1n, { code: 0 })], expect: ["code_must_not_be_zero"] },
  { name: "debit_account_not_found beats credit_account_not_found", events: () => [xfer(1n, 99n, 98n, 1n)], expect: ["debit_account_not_found"] },
  { name: "debit_account_not_found beats accounts_must_have_the_same_ledger", events: () => [xfer(1n, 99n, 3n, 1n)], expect: ["debit_account_not_found"] },
  { name: "credit_account_not_found beats transfer_must_have_the_same_ledger_as_accounts", events: () => [xfer(1n, 1n, 99n, 1n, { ledger: 2 })], expect: ["credit_account_not_found"] },
  {
    name: "accounts_must_have_the_same_ledger beats transfer_must_have_the_same_ledger_as_accounts",
    events: () => [xfer(1n, 1n, 3n, 1n, { ledger: 5 })],
    expect: ["accounts_must_have_the_same_ledger"]
  },
  { name: "transfer_must_have_the_same_ledger_as_accounts beats debit_account_already_closed", events: () => [xfer(1n, 6n, 2n, 1n, { ledger: 2 })], expect: ["transfer_must_have_the_same_ledger_as_accounts"] },
  { name: "debit_account_already_closed beats credit_account_already_closed", events: () => [xfer(1n, 6n, 7n, 1n)], expect: ["debit_account_already_closed"] },
  { name: "debit_account_already_closed beats exceeds_debits", events: () => [xfer(1n, 6n, 5n, 1n)], expect: ["debit_account_already_closed"] },
  { name: "credit_account_already_closed beats exceeds_credits", events: () => [xfer(1n, 4n, 6n, 1n)], expect: ["credit_account_already_closed"] },
  { name: "exceeds_credits beats exceeds_debits", events: () => [xfer(1n, 4n, 5n, 1n)], expect: ["exceeds_credits"] }
]

interface OverflowCase {
  readonly name: string
  /** Transfers that push accounts 11..16 near the limit. */
  readonly setup: Array<Transfer>
  readonly event: Transfer
  readonly expect: string
}

const half = 1n << 127n
const P = F.pending

/**
 * §9.1 steps 19–20, §17.8. Accounts 11..16 are plain accounts on ledger 1. The last row of each
 * pair proves the precedence of the two checks that the event violates at once.
 */
const overflows: Array<OverflowCase> = [
  { name: "overflows_debits_pending", setup: [xfer(1n, 11n, 12n, u128Max - 5n, { flags: P })], event: xfer(9n, 11n, 13n, 10n, { flags: P }), expect: "overflows_debits_pending" },
  { name: "overflows_credits_pending", setup: [xfer(1n, 11n, 12n, u128Max - 5n, { flags: P })], event: xfer(9n, 13n, 12n, 10n, { flags: P }), expect: "overflows_credits_pending" },
  {
    name: "a pending amount that fits exactly does not overflow",
    setup: [xfer(1n, 11n, 12n, u128Max - 5n, { flags: P })],
    event: xfer(9n, 11n, 13n, 5n, { flags: P }),
    expect: "created"
  },
  {
    name: "overflows_debits_pending beats overflows_credits_pending",
    setup: [xfer(1n, 11n, 12n, u128Max - 5n, { flags: P })],
    event: xfer(9n, 11n, 12n, 10n, { flags: P }),
    expect: "overflows_debits_pending"
  },
  {
    name: "overflows_credits_pending beats overflows_debits_posted",
    setup: [xfer(1n, 11n, 13n, u128Max - 5n), xfer(2n, 14n, 12n, u128Max - 5n, { flags: P })],
    event: xfer(9n, 11n, 12n, 10n, { flags: P }),
    expect: "overflows_credits_pending"
  },
  {
    name: "a pending transfer is checked against posted debits too (§17.8)",
    setup: [xfer(1n, 11n, 13n, u128Max - 5n)],
    event: xfer(9n, 11n, 12n, 10n, { flags: P }),
    expect: "overflows_debits_posted"
  },
  { name: "overflows_debits_posted", setup: [xfer(1n, 11n, 13n, u128Max - 5n)], event: xfer(9n, 11n, 12n, 10n), expect: "overflows_debits_posted" },
  {
    name: "overflows_debits_posted beats overflows_credits_posted",
    setup: [xfer(1n, 11n, 13n, u128Max - 5n), xfer(2n, 14n, 12n, u128Max - 5n)],
    event: xfer(9n, 11n, 12n, 10n),
    expect: "overflows_debits_posted"
  },
  { name: "overflows_credits_posted", setup: [xfer(2n, 14n, 12n, u128Max - 5n)], event: xfer(9n, 11n, 12n, 10n), expect: "overflows_credits_posted" },
  {
    name: "a posted amount that fits exactly does not overflow",
    setup: [xfer(2n, 14n, 12n, u128Max - 5n)],
    event: xfer(9n, 11n, 12n, 5n),
    expect: "created"
  },
  {
    name: "overflows_credits_posted beats overflows_debits",
    setup: [xfer(1n, 11n, 13n, half, { flags: P }), xfer(2n, 11n, 14n, half - 10n), xfer(3n, 15n, 12n, u128Max - 5n)],
    event: xfer(9n, 11n, 12n, 20n),
    expect: "overflows_credits_posted"
  },
  {
    name: "overflows_debits: pending plus posted debits exceed 2^128-1 although each fits",
    setup: [xfer(1n, 11n, 13n, half, { flags: P }), xfer(2n, 11n, 14n, half - 10n)],
    event: xfer(9n, 11n, 12n, 20n),
    expect: "overflows_debits"
  },
  {
    name: "overflows_debits beats overflows_credits",
    setup: [xfer(1n, 11n, 13n, half, { flags: P }), xfer(2n, 11n, 14n, half - 10n), xfer(3n, 15n, 12n, half, { flags: P }), xfer(4n, 16n, 12n, half - 10n)],
    event: xfer(9n, 11n, 12n, 20n),
    expect: "overflows_debits"
  },
  {
    name: "overflows_credits: pending plus posted credits exceed 2^128-1 although each fits",
    setup: [xfer(3n, 15n, 12n, half, { flags: P }), xfer(4n, 16n, 12n, half - 10n)],
    event: xfer(9n, 13n, 12n, 20n),
    expect: "overflows_credits"
  },
  {
    name: "overflows_credits for a pending transfer",
    setup: [xfer(3n, 15n, 12n, half, { flags: P }), xfer(4n, 16n, 12n, half - 10n)],
    event: xfer(9n, 13n, 12n, 20n, { flags: P }),
    expect: "overflows_credits"
  },
  {
    name: "credit_account_already_closed beats overflows_debits_pending",
    setup: [xfer(1n, 11n, 12n, u128Max - 5n, { flags: P }), xfer(2n, 14n, 13n, 0n, { flags: P | F.closing_credit })],
    event: xfer(9n, 11n, 13n, 10n, { flags: P }),
    expect: "credit_account_already_closed"
  },
  {
    name: "a total that fits exactly does not overflow",
    setup: [xfer(3n, 15n, 12n, half, { flags: P }), xfer(4n, 16n, 12n, half - 10n)],
    event: xfer(9n, 13n, 12n, 9n),
    expect: "created"
  }
]

describe.each(implementations)("create_transfers tables (%s ledger)", (_, make) => {
  const fresh = (): Cluster => {
    const c = new Cluster(make())
    c.mustCreateAccounts(setupAccounts)
    c.mustCreateTransfers([existing, ...atLimit])
    c.advance(1_000_000n)
    return c
  }

  describe("every status of the main path", () => {
    it.each(everyStatus)("$name", ({ events, expect: expected }) => {
      const c = fresh()
      expect(statuses(c.createTransfers(events(c)))).toEqual(expected)
    })
  })

  describe("precedence (§9.1, §16.2, §17)", () => {
    it.each(precedence)("$name", ({ events, expect: expected }) => {
      const c = fresh()
      expect(statuses(c.createTransfers(events(c)))).toEqual(expected)
    })
  })

  describe("overflows (§9.1 steps 19–21)", () => {
    it.each(overflows)("$name", ({ setup, event, expect: expected }) => {
      const c = new Cluster(make())
      c.mustCreateAccounts([11n, 12n, 13n, 14n, 15n, 16n].map((id) => acct(id)))
      c.mustCreateTransfers(setup)
      const before = [11n, 12n, 13n].map((id) => c.balancesOf(id))
      expect(statuses(c.createTransfers([event]))).toEqual([expected])
      if (expected.startsWith("overflows_")) {
        // A refused transfer changes nothing, and an overflow is not transient: the id stays usable.
        expect([11n, 12n, 13n].map((id) => c.balancesOf(id))).toEqual(before)
        expect(statuses(c.createTransfers([xfer(event.id, 15n, 16n, 0n)]))).toEqual(["created"])
      }
    })

    // 2^63-1 minus a timeout of 10^9 s is about 8.2e18 ns: the cluster clock jumps there.
    const timeoutSeconds = 1_000_000_000
    const timeoutFitsAt = timestampMax - BigInt(timeoutSeconds) * second

    it("overflows_timeout when timestamp + timeout × 10^9 exceeds 2^63-1, not when it equals it", () => {
      const c = new Cluster(make(), timeoutFitsAt - 10n)
      c.mustCreateAccounts([acct(11n), acct(12n)])
      c.advance(timeoutFitsAt - 1n - c.now)
      // The next single-event batch ends, and its only slot is, exactly at timeoutFitsAt.
      const fits = c.createTransfers([xfer(1n, 11n, 12n, 1n, { flags: P, timeout: timeoutSeconds })])
      expect(fits).toEqual([{ status: "created", timestamp: timeoutFitsAt }])
      expect(c.nextExpiry()).toBe(timestampMax)
      const overflows = c.createTransfers([xfer(2n, 11n, 12n, 1n, { flags: P, timeout: timeoutSeconds })])
      expect(overflows).toEqual([{ status: "overflows_timeout", timestamp: timeoutFitsAt + 1n }])
    })

    it("overflows_credits beats overflows_timeout, which beats exceeds_credits", () => {
      const c = new Cluster(make(), timeoutFitsAt)
      c.mustCreateAccounts([acct(11n), acct(12n), acct(13n), acct(15n), acct(16n), acct(4n, { flags: AF.debits_must_not_exceed_credits })])
      c.mustCreateTransfers([xfer(3n, 15n, 12n, half, { flags: P }), xfer(4n, 16n, 12n, half - 10n)])
      const maxTimeout = 0xffff_ffff
      expect(statuses(c.createTransfers([
        xfer(9n, 13n, 12n, 20n, { flags: P, timeout: maxTimeout }),
        xfer(10n, 4n, 11n, 20n, { flags: P, timeout: maxTimeout }),
        xfer(11n, 4n, 11n, 20n, { flags: P, timeout: 1 })
      ]))).toEqual(["overflows_credits", "overflows_timeout", "exceeds_credits"])
    })
  })

  describe("burnt ids (§9.5, §17.4)", () => {
    const transient: Array<{ readonly name: string; readonly event: Transfer }> = [
      { name: "debit_account_not_found", event: xfer(1n, 99n, 2n, 1n) },
      { name: "credit_account_not_found", event: xfer(1n, 1n, 99n, 1n) },
      { name: "exceeds_credits", event: xfer(1n, 4n, 2n, 1n) },
      { name: "exceeds_debits", event: xfer(1n, 1n, 5n, 1n) },
      { name: "debit_account_already_closed", event: xfer(1n, 6n, 2n, 1n) },
      { name: "credit_account_already_closed", event: xfer(1n, 1n, 7n, 1n) },
      { name: "pending_transfer_not_found", event: resolve(1n, 77n, F.post_pending_transfer, 1n) }
    ]
    it.each(transient)("$name burns the id for good, across batches", ({ name, event }) => {
      const c = fresh()
      expect(statuses(c.createTransfers([event]))).toEqual([name])
      expect(statuses(c.createTransfers([xfer(1n, 1n, 2n, 1n)]))).toEqual(["id_already_failed"])
      expect(statuses(c.createTransfers([xfer(1n, 2n, 1n, 3n, { flags: F.pending })]))).toEqual(["id_already_failed"])
      expect(c.lookupTransfer(1n)).toBeUndefined()
    })

    const permanent: Array<{ readonly name: string; readonly event: Transfer }> = [
      { name: "ledger_must_not_be_zero", event: xfer(1n, 1n, 2n, 1n, { ledger: 0 }) },
      { name: "accounts_must_be_different", event: xfer(1n, 1n, 1n, 1n) },
      { name: "accounts_must_have_the_same_ledger", event: xfer(1n, 1n, 3n, 1n) },
      { name: "transfer_must_have_the_same_ledger_as_accounts", event: xfer(1n, 1n, 2n, 1n, { ledger: 2 }) },
      { name: "timeout_reserved_for_pending_transfer", event: xfer(1n, 1n, 2n, 1n, { timeout: 1 }) },
      { name: "pending_transfer_not_pending", event: resolve(1n, 100n, F.void_pending_transfer, 0n) }
    ]
    it.each(permanent)("$name does not burn the id", ({ name, event }) => {
      const c = fresh()
      expect(statuses(c.createTransfers([event, xfer(1n, 1n, 2n, 1n)]))).toEqual([name, "created"])
    })

    it("a burnt id reports id_already_failed with the slot timestamp", () => {
      const c = fresh()
      const results = c.createTransfers([xfer(1n, 99n, 2n, 1n), xfer(1n, 1n, 2n, 1n)])
      expect(results).toEqual([
        { status: "debit_account_not_found", timestamp: c.slots[0] },
        { status: "id_already_failed", timestamp: c.slots[1] }
      ])
    })
  })

  describe("result timestamps (§6.3)", () => {
    it("created gets its slot, exists the existing transfer's timestamp, failures their slot", () => {
      const c = fresh()
      const existingTimestamp = c.lookupTransfer(100n)?.timestamp
      expect(existingTimestamp).toBeDefined()
      const results = c.createTransfers([xfer(1n, 1n, 2n, 1n), existing, { ...existing, amount: 3n }, xfer(2n, 1n, 2n, 1n, { code: 0 })])
      expect(results).toEqual([
        { status: "created", timestamp: c.slots[0] },
        { status: "exists", timestamp: existingTimestamp },
        { status: "exists_with_different_amount", timestamp: c.slots[2] },
        { status: "code_must_not_be_zero", timestamp: c.slots[3] }
      ])
      expect(c.slots).toEqual([c.now - 3n, c.now - 2n, c.now - 1n, c.now])
    })
  })

  describe("effects (§9.4)", () => {
    it("a single-phase transfer moves posted balances and is stored as submitted", () => {
      const c = fresh()
      const submitted = xfer(1n, 1n, 2n, 25n, { user_data_128: 1n, user_data_64: 2n, user_data_32: 3, code: 4, flags: 0 })
      c.mustCreateTransfers([submitted])
      expect(c.lookupTransfer(1n)).toEqual({ ...submitted, timestamp: c.slots[0] })
      // Account 1 had debited 10 (transfer 100) and been credited 10 (transfer 400).
      expect(c.balancesOf(1n)).toEqual(balances(0n, 35n, 0n, 10n))
      expect(c.balancesOf(2n)).toEqual(balances(0n, 10n, 0n, 35n))
    })

    it("a pending transfer moves pending balances", () => {
      const c = fresh()
      c.mustCreateTransfers([xfer(1n, 1n, 2n, 25n, { flags: P, timeout: 60 })])
      expect(c.balancesOf(1n)).toEqual(balances(25n, 10n, 0n, 10n))
      expect(c.balancesOf(2n)).toEqual(balances(0n, 10n, 25n, 10n))
      expect(c.lookupTransfer(1n)?.timeout).toBe(60)
    })

    it("limit flags allow transfers up to the limit exactly", () => {
      const c = fresh()
      // Account 4: credits_posted 10, debits_posted 10; one more credit of 5 allows a debit of 5.
      expect(statuses(c.createTransfers([xfer(1n, 2n, 4n, 5n), xfer(2n, 4n, 2n, 6n), xfer(3n, 4n, 2n, 5n)])))
        .toEqual(["created", "exceeds_credits", "created"])
      // Account 5: a credit needs posted debits: debit 5 by 7, then credit it 7 but not 8.
      expect(statuses(c.createTransfers([xfer(4n, 5n, 1n, 7n), xfer(5n, 1n, 5n, 8n), xfer(6n, 1n, 5n, 7n)])))
        .toEqual(["created", "exceeds_debits", "created"])
      expect(c.balancesOf(4n)).toEqual(balances(0n, 15n, 0n, 15n))
      expect(c.balancesOf(5n)).toEqual(balances(0n, 7n, 0n, 7n))
    })

    it("pending debits count against the debit limit", () => {
      const c = fresh()
      expect(statuses(c.createTransfers([xfer(1n, 2n, 4n, 5n), xfer(2n, 4n, 2n, 3n, { flags: P }), xfer(3n, 4n, 2n, 3n)])))
        .toEqual(["created", "created", "exceeds_credits"])
    })

    it("amount 2^128-1 is an ordinary amount on a plain single-phase transfer", () => {
      const c = new Cluster(make())
      c.mustCreateAccounts([acct(1n), acct(2n)])
      expect(statuses(c.createTransfers([xfer(1n, 1n, 2n, amountMax)]))).toEqual(["created"])
      expect(c.balancesOf(1n)).toEqual(balances(0n, amountMax, 0n, 0n))
    })

    it("an empty batch yields no results", () => {
      const c = fresh()
      expect(c.createTransfers([])).toEqual([])
      expect(c.createTransfers([xfer(1n, 1n, 2n, 1n)])).toEqual([{ status: "created", timestamp: c.now }])
    })

    it("each event sees the effects of the earlier ones in its batch", () => {
      const c = fresh()
      expect(statuses(c.createTransfers([xfer(1n, 4n, 2n, 1n), xfer(2n, 2n, 4n, 1n), xfer(3n, 4n, 2n, 1n), xfer(3n, 4n, 2n, 1n)])))
        .toEqual(["exceeds_credits", "created", "created", "exists"])
    })
  })
})
