/**
 * The reference model: a deliberately simple, obviously-correct restatement of the ledger state
 * machine (spec/state-machine.md) for the property and table tests.
 *
 * It is written from the spec alone, independently of src/ledger: plain objects, Map<bigint, …>,
 * bigint arithmetic, and linked-chain rollback by cloning the whole state. It speaks the same
 * byte-level interface as the fast ledger (src/ledger/ledger.ts) so that both can be driven by the
 * same batches and compared byte for byte.
 *
 * SKELETON: the API below is stable; the implementation is being filled in.
 */

export interface ModelAccount {
  id: bigint
  debits_pending: bigint
  debits_posted: bigint
  credits_pending: bigint
  credits_posted: bigint
  user_data_128: bigint
  user_data_64: bigint
  user_data_32: number
  reserved: number
  ledger: number
  code: number
  flags: number
  timestamp: bigint
}

export interface ModelTransfer {
  id: bigint
  debit_account_id: bigint
  credit_account_id: bigint
  amount: bigint
  pending_id: bigint
  user_data_128: bigint
  user_data_64: bigint
  user_data_32: number
  timeout: number
  ledger: number
  code: number
  flags: number
  timestamp: bigint
}

export type PendingStatus = "pending" | "posted" | "voided" | "expired"

/** The model's whole state in comparable form (objects ordered by timestamp). */
export interface ModelState {
  readonly accounts: ReadonlyArray<ModelAccount>
  readonly transfers: ReadonlyArray<ModelTransfer>
  readonly pendingStatus: ReadonlyMap<bigint, PendingStatus>
  readonly orphans: ReadonlySet<bigint>
}

export class ReferenceLedger {
  /** Executes one batch of `operation` with batch end timestamp `timestamp`; returns the reply. */
  execute(_operation: number, _events: Uint8Array, _timestamp: bigint): Uint8Array {
    throw new Error("reference model: not implemented yet")
  }

  /** Runs a pulse with request timestamp `timestamp`; returns how many transfers expired. */
  pulse(_timestamp: bigint): number {
    throw new Error("reference model: not implemented yet")
  }

  /** The earliest expires_at of an unresolved pending transfer with a timeout. */
  nextExpiry(): bigint | undefined {
    throw new Error("reference model: not implemented yet")
  }

  /** A deep copy of the state, for comparisons. */
  state(): ModelState {
    throw new Error("reference model: not implemented yet")
  }

  /** All accounts encoded (128 bytes each), ordered by timestamp. */
  accountsBytes(): Uint8Array {
    throw new Error("reference model: not implemented yet")
  }

  /** All transfers encoded (128 bytes each), ordered by timestamp. */
  transfersBytes(): Uint8Array {
    throw new Error("reference model: not implemented yet")
  }

  /** Throws if an invariant of spec §5 is violated. */
  checkInvariants(): void {
    throw new Error("reference model: not implemented yet")
  }
}
