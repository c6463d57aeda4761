/**
 * The ledger: TigerBeetle 0.17's double-entry state machine (spec/state-machine.md), executed
 * one batch at a time over binary records.
 *
 * STUB: the signatures below are final; the implementation is being written.
 */
import type { ClientOperation } from "../protocol/operation.ts"

export interface LedgerOptions {
  /** Upper bounds on what the in-memory store holds; a batch that could exceed them is refused. */
  readonly accountsMax?: number
  readonly transfersMax?: number
}

export interface Ledger {
  /**
   * Executes one batch (not multi-batch framed: the events back to back) of `operation` whose
   * batch end timestamp is `timestamp` (spec §6.2: event i of n owns slot T - n + i + 1), and
   * returns the reply body of that batch. Reads ignore `timestamp`. Queries take exactly one
   * filter. The caller validated the body's size (a multiple of the event size, at most 8189
   * events); the ledger asserts it.
   */
  execute(operation: ClientOperation, events: Uint8Array, timestamp: bigint): Uint8Array
  /** Runs a pulse with request timestamp `timestamp` (spec §10.4); returns how many expired. */
  pulse(timestamp: bigint): number
  /** The earliest `expires_at` of an unresolved pending transfer, or undefined. */
  nextExpiry(): bigint | undefined
}

export function createLedger(_options: LedgerOptions = {}): Ledger {
  throw new Error("not implemented yet")
}
