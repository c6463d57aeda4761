/**
 * Shared harness of the ledger's table-driven tests (issue 2).
 *
 * Every table runs against both implementations of the byte-level ledger API: the fast ledger
 * (`src/ledger/ledger.ts`) and the independent reference model (`test/ledger/reference/model.ts`).
 * Expectations are derived by hand from spec/state-machine.md, never copied from either.
 *
 * `Cluster` plays the part of the replica around a ledger: it owns a cluster clock that strictly
 * increases the way spec §6.1 describes (a create batch of n events ends at T = previous + n, the
 * next batch ends after T; a read consumes 1 ns; a pulse consumes 8189 ns), encodes bigint objects
 * into batches, decodes replies and names result statuses, so that tables read like the spec.
 */
import { createLedger, type LedgerOperations } from "../../src/ledger/ledger.ts"
import { ReferenceLedger } from "./reference/model.ts"
import {
  type Account,
  type AccountBalance,
  type AccountFilter,
  type QueryFilter,
  type Transfer,
  account,
  accountFilter,
  decodeAccount,
  decodeAccountBalance,
  decodeBatch,
  decodeCreateResult,
  decodeTransfer,
  encodeAccount,
  encodeAccountFilter,
  encodeBatch,
  encodeIds,
  encodeQueryFilter,
  encodeTransfer,
  queryFilter,
  transfer
} from "../../src/protocol/records.ts"
import {
  type ClientOperation,
  Operation,
  accountBalanceSize,
  accountSize,
  createResultSize,
  pulseExpiriesMax,
  transferSize
} from "../../src/protocol/operation.ts"
import { createAccountStatusName, createTransferStatusName } from "../../src/protocol/status.ts"

export { AccountFilterFlags, AccountFlags, QueryFilterFlags, TransferFlags, amountMax, timestampMax, u128Max, u64Max } from "../../src/protocol/records.ts"
export { CreateAccountStatus, CreateTransferStatus } from "../../src/protocol/status.ts"
export { account, accountFilter, queryFilter, transfer }
export type { Account, AccountBalance, AccountFilter, QueryFilter, Transfer }

/** The single-batch interface both implementations share (multi-batch requests: test/ledger/multi_batch.test.ts). */
export type BatchLedger = Omit<LedgerOperations, "executeBatches">

/** Both implementations, for `describe.each(implementations)("%s ledger", (_, make) => …)`. */
export const implementations: Array<[string, () => BatchLedger]> = [
  ["fast", () => createLedger()],
  ["reference", () => new ReferenceLedger()]
]

/**
 * Where the cluster clock starts (ns). Far enough from 0 that imported timestamps such as 1000
 * are comfortably in the past, far enough from 2^63 that nothing overflows by accident.
 */
export const clockStart = 1_000_000_000_000n

/** Nanoseconds per second, for timeouts (spec §10.3: `expires_at = timestamp + timeout × 10^9`). */
export const second = 1_000_000_000n

/** A create result with its status named, so a failing table prints names, not numbers. */
export interface Result {
  readonly status: string
  readonly timestamp: bigint
}

/** The four balances of an account, in the order of the record. */
export interface Balances {
  readonly debits_pending: bigint
  readonly debits_posted: bigint
  readonly credits_pending: bigint
  readonly credits_posted: bigint
}

export const balances = (debits_pending: bigint, debits_posted: bigint, credits_pending: bigint, credits_posted: bigint): Balances =>
  ({ debits_pending, debits_posted, credits_pending, credits_posted })

/** A valid account on ledger 1 with code 1, plus whatever the case changes. */
export const acct = (id: bigint, fields: Partial<Account> = {}): Account => account({ id, ledger: 1, code: 1, ...fields })

/** A valid single-phase transfer on ledger 1 with code 1, plus whatever the case changes. */
export const xfer = (id: bigint, debit: bigint, credit: bigint, amount: bigint, fields: Partial<Transfer> = {}): Transfer =>
  transfer({ id, debit_account_id: debit, credit_account_id: credit, amount, ledger: 1, code: 1, ...fields })

/** A post or void of `pendingId`: every inheritable field left 0. */
export const resolve = (id: bigint, pendingId: bigint, flags: number, amount: bigint, fields: Partial<Transfer> = {}): Transfer =>
  transfer({ id, pending_id: pendingId, flags, amount, ...fields })

export const statuses = (results: ReadonlyArray<Result>): Array<string> => results.map((result) => result.status)

export class Cluster {
  readonly ledger: BatchLedger
  /** The last timestamp the cluster consumed. */
  now: bigint
  /** Slot timestamps (§6.2) of the events of the last create batch. */
  slots: Array<bigint> = []

  constructor(ledger: BatchLedger, start: bigint = clockStart) {
    this.ledger = ledger
    this.now = start
  }

  /** The wall clock jumps ahead by `ns`: the next request is timestamped at least that much later. */
  advance(ns: bigint): void {
    this.now += ns
  }

  /** The batch end timestamp T that the next create batch of `count` events will get. */
  nextBatchEnd(count: number): bigint {
    return this.now + BigInt(count)
  }

  createAccounts(events: ReadonlyArray<Account>): Array<Result> {
    const reply = this.create(Operation.create_accounts, encodeBatch(events, accountSize, encodeAccount), events.length)
    return decodeBatch(reply, createResultSize, decodeCreateResult)
      .map(({ status, timestamp }) => ({ status: createAccountStatusName(status), timestamp }))
  }

  createTransfers(events: ReadonlyArray<Transfer>): Array<Result> {
    const reply = this.create(Operation.create_transfers, encodeBatch(events, transferSize, encodeTransfer), events.length)
    return decodeBatch(reply, createResultSize, decodeCreateResult)
      .map(({ status, timestamp }) => ({ status: createTransferStatusName(status), timestamp }))
  }

  /** Setup step: creates accounts that must all be created, and fails the test loudly otherwise. */
  mustCreateAccounts(events: ReadonlyArray<Account>): Array<Result> {
    return mustAllBeCreated("accounts", this.createAccounts(events))
  }

  /** Setup step: creates transfers that must all be created, and fails the test loudly otherwise. */
  mustCreateTransfers(events: ReadonlyArray<Transfer>): Array<Result> {
    return mustAllBeCreated("transfers", this.createTransfers(events))
  }

  lookupAccounts(ids: ReadonlyArray<bigint>): Array<Account> {
    return decodeBatch(this.read(Operation.lookup_accounts, encodeIds(ids)), accountSize, decodeAccount)
  }

  lookupTransfers(ids: ReadonlyArray<bigint>): Array<Transfer> {
    return decodeBatch(this.read(Operation.lookup_transfers, encodeIds(ids)), transferSize, decodeTransfer)
  }

  lookupAccount(id: bigint): Account | undefined {
    return this.lookupAccounts([id])[0]
  }

  lookupTransfer(id: bigint): Transfer | undefined {
    return this.lookupTransfers([id])[0]
  }

  /** The balances of an account that must exist. */
  balancesOf(id: bigint): Balances {
    const found = this.lookupAccount(id)
    if (found === undefined) throw new Error(`account ${id} does not exist`)
    return balances(found.debits_pending, found.debits_posted, found.credits_pending, found.credits_posted)
  }

  /** The flags of an account that must exist. */
  flagsOf(id: bigint): number {
    const found = this.lookupAccount(id)
    if (found === undefined) throw new Error(`account ${id} does not exist`)
    return found.flags
  }

  /** A filter object, or raw filter bytes when a case needs fields the codec cannot express. */
  getAccountTransfers(filter: AccountFilter | Uint8Array): Array<Transfer> {
    const bytes = filter instanceof Uint8Array ? filter : encodeAccountFilter(filter)
    return decodeBatch(this.read(Operation.get_account_transfers, bytes), transferSize, decodeTransfer)
  }

  getAccountBalances(filter: AccountFilter | Uint8Array): Array<AccountBalance> {
    const bytes = filter instanceof Uint8Array ? filter : encodeAccountFilter(filter)
    return decodeBatch(this.read(Operation.get_account_balances, bytes), accountBalanceSize, decodeAccountBalance)
  }

  queryAccounts(filter: QueryFilter | Uint8Array): Array<Account> {
    const bytes = filter instanceof Uint8Array ? filter : encodeQueryFilter(filter)
    return decodeBatch(this.read(Operation.query_accounts, bytes), accountSize, decodeAccount)
  }

  queryTransfers(filter: QueryFilter | Uint8Array): Array<Transfer> {
    const bytes = filter instanceof Uint8Array ? filter : encodeQueryFilter(filter)
    return decodeBatch(this.read(Operation.query_transfers, bytes), transferSize, decodeTransfer)
  }

  /** A pulse (§10.4, §10.6): consumes 8189 ns and returns how many pending transfers expired. */
  pulse(): number {
    this.now += BigInt(pulseExpiriesMax)
    return this.ledger.pulse(this.now)
  }

  nextExpiry(): bigint | undefined {
    return this.ledger.nextExpiry()
  }

  private create(operation: typeof Operation.create_accounts | typeof Operation.create_transfers, body: Uint8Array, count: number): Uint8Array {
    const end = this.nextBatchEnd(count)
    // A batch of zero events still consumes the request's nanosecond (§6.1 base = previous + 1).
    this.now = count === 0 ? this.now + 1n : end
    this.slots = Array.from({ length: count }, (_, index) => end - BigInt(count) + BigInt(index) + 1n)
    return this.ledger.execute(operation, body, end)
  }

  private read(operation: ClientOperation, body: Uint8Array): Uint8Array {
    this.now += 1n
    return this.ledger.execute(operation, body, this.now)
  }
}

/** Encodes an account filter and then sets one of its reserved bytes, which the codec always zeroes. */
export const accountFilterWithReservedByte = (filter: AccountFilter): Uint8Array => {
  const bytes = encodeAccountFilter(filter)
  bytes[46 + 57] = 1
  return bytes
}

/** Encodes a query filter and then sets one of its reserved bytes. */
export const queryFilterWithReservedByte = (filter: QueryFilter): Uint8Array => {
  const bytes = encodeQueryFilter(filter)
  bytes[34] = 1
  return bytes
}

function mustAllBeCreated(kind: string, results: Array<Result>): Array<Result> {
  const failed = results.flatMap((result, index) => result.status === "created" ? [] : [`${index}: ${result.status}`])
  if (failed.length > 0) throw new Error(`setup: ${kind} not created: ${failed.join(", ")}`)
  return results
}
