/**
 * Zeroed records of `tigerbeetle-node@0.17.9`, which the tests spread and override: every field
 * present, as the client requires.
 */
export const zeroAccount = {
  id: 0n, debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n,
  user_data_128: 0n, user_data_64: 0n, user_data_32: 0, reserved: 0, ledger: 0, code: 0, flags: 0, timestamp: 0n
}

export const zeroTransfer = {
  id: 0n, debit_account_id: 0n, credit_account_id: 0n, amount: 0n, pending_id: 0n, user_data_128: 0n, user_data_64: 0n,
  user_data_32: 0, timeout: 0, ledger: 0, code: 0, flags: 0, timestamp: 0n
}
