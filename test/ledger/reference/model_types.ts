/** Plain-object forms of the ledger's records and state, shared by the reference model and its codec. */

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
