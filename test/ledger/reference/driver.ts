/**
 * A test driver around anything with the ledger's byte-level interface (the fast ledger or the
 * reference model): it keeps a cluster clock (spec §6.1, with the wall clock standing still unless
 * a test moves it), encodes events and decodes replies with the reference codec.
 */
import {
  decodeAccountBalances,
  decodeAccounts,
  decodeCreateResults,
  decodeTransfers,
  encodeAccountFilter,
  encodeAccounts,
  encodeIds,
  encodeQueryFilter,
  encodeTransfers,
  type ModelAccountBalance,
  type ModelAccountFilter,
  type ModelCreateResult,
  type ModelQueryFilter
} from "./codec.ts"
import type { ModelAccount, ModelTransfer } from "./model_types.ts"
import { BATCH_MAX, Op } from "./model.ts"

/** The byte-level interface shared by src/ledger's Ledger and the ReferenceLedger. */
export interface LedgerLike {
  execute(operation: number, events: Uint8Array, timestamp: bigint): Uint8Array
  pulse(timestamp: bigint): number
  nextExpiry(): bigint | undefined
}

export class Driver {
  readonly ledger: LedgerLike
  /** Timestamp of the last committed request (§6.1 `previous_request_timestamp`). */
  now: bigint

  constructor(ledger: LedgerLike, start = 1_000_000_000n) {
    this.ledger = ledger
    this.now = start
  }

  /** The request timestamp of the next request consuming `delta` ns (§6.1, wall clock = now). */
  private tick(delta: number): bigint {
    this.now = this.now + 1n + BigInt(delta)
    return this.now
  }

  /** Moves the wall clock forward by `ns` without a request. */
  advance(ns: bigint): void {
    this.now += ns
  }

  /** Raw execute with the clock; returns the batch end timestamp T and the reply. */
  raw(operation: number, body: Uint8Array, events: number): { T: bigint; reply: Uint8Array } {
    const delta = operation === Op.create_accounts || operation === Op.create_transfers ? events : 0
    const T = this.tick(delta)
    return { T, reply: this.ledger.execute(operation, body, T) }
  }

  createAccounts(accounts: ReadonlyArray<ModelAccount>): Array<ModelCreateResult> {
    return decodeCreateResults(this.raw(Op.create_accounts, encodeAccounts(accounts), accounts.length).reply)
  }

  createTransfers(transfers: ReadonlyArray<ModelTransfer>): Array<ModelCreateResult> {
    return decodeCreateResults(this.raw(Op.create_transfers, encodeTransfers(transfers), transfers.length).reply)
  }

  lookupAccounts(ids: ReadonlyArray<bigint>): Array<ModelAccount> {
    return decodeAccounts(this.raw(Op.lookup_accounts, encodeIds(ids), ids.length).reply)
  }

  lookupTransfers(ids: ReadonlyArray<bigint>): Array<ModelTransfer> {
    return decodeTransfers(this.raw(Op.lookup_transfers, encodeIds(ids), ids.length).reply)
  }

  getAccountTransfers(filter: ModelAccountFilter): Array<ModelTransfer> {
    return decodeTransfers(this.raw(Op.get_account_transfers, encodeAccountFilter(filter), 1).reply)
  }

  getAccountBalances(filter: ModelAccountFilter): Array<ModelAccountBalance> {
    return decodeAccountBalances(this.raw(Op.get_account_balances, encodeAccountFilter(filter), 1).reply)
  }

  queryAccounts(filter: ModelQueryFilter): Array<ModelAccount> {
    return decodeAccounts(this.raw(Op.query_accounts, encodeQueryFilter(filter), 1).reply)
  }

  queryTransfers(filter: ModelQueryFilter): Array<ModelTransfer> {
    return decodeTransfers(this.raw(Op.query_transfers, encodeQueryFilter(filter), 1).reply)
  }

  /** A pulse (§10.4): consumes 8189 ns; returns how many pending transfers expired. */
  pulse(): number {
    return this.ledger.pulse(this.tick(BATCH_MAX))
  }
}
