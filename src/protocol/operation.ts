/**
 * State machine operations and their batch limits (spec/state-machine.md §3, §4).
 *
 * Operation numbers below 128 belong to the replication protocol; the ledger's are 128 + k.
 * Scarab executes the 0.17 operations (140–147) plus the internal pulse; the deprecated
 * pre-0.17 encodings are translated at the protocol edge, not in the ledger.
 */

export const Operation = {
  pulse: 128,
  lookup_accounts: 140,
  lookup_transfers: 141,
  get_account_transfers: 142,
  get_account_balances: 143,
  query_accounts: 144,
  query_transfers: 145,
  create_accounts: 146,
  create_transfers: 147
} as const

export type Operation = (typeof Operation)[keyof typeof Operation]

/** The operations a client may submit (everything but the internal pulse). */
export type ClientOperation = Exclude<Operation, typeof Operation.pulse>

/** Size of one message, of its header and so of the largest body (wire-protocol.md). */
export const messageSizeMax = 1024 * 1024
export const headerSize = 256
export const bodySizeMax = messageSizeMax - headerSize

/**
 * Events per create or lookup batch: one 128-byte slot of the largest body is taken by the
 * multi-batch trailer, so 8190 - 1.
 */
export const batchEventsMax = 8189

/**
 * Events one batch of any encoding may hold: a deprecated unbatched create or lookup (129–132)
 * has no trailer, so one more than `batchEventsMax` (wire-protocol.md §10.3). The ledger's bound.
 */
export const eventsPerBatchMax = 8190

/** Results per query reply, and expiries per pulse. */
export const queryResultsMax = 8189
export const pulseExpiriesMax = 8189

/** Record sizes in bytes. */
export const accountSize = 128
export const transferSize = 128
export const accountBalanceSize = 128
export const accountFilterSize = 128
export const queryFilterSize = 64
export const createResultSize = 16
export const idSize = 16

export const isOperation = (value: number): value is Operation =>
  value === Operation.pulse || (value >= Operation.lookup_accounts && value <= Operation.create_transfers)

/** Size of one event of `operation` in a request body. */
export const eventSize = (operation: ClientOperation): number => {
  switch (operation) {
    case Operation.create_accounts:
      return accountSize
    case Operation.create_transfers:
      return transferSize
    case Operation.lookup_accounts:
    case Operation.lookup_transfers:
      return idSize
    case Operation.get_account_transfers:
    case Operation.get_account_balances:
      return accountFilterSize
    case Operation.query_accounts:
    case Operation.query_transfers:
      return queryFilterSize
  }
}

/** Size of one result of `operation` in a reply body. */
export const resultSize = (operation: ClientOperation): number => {
  switch (operation) {
    case Operation.create_accounts:
    case Operation.create_transfers:
      return createResultSize
    case Operation.lookup_accounts:
    case Operation.query_accounts:
      return accountSize
    case Operation.lookup_transfers:
    case Operation.get_account_transfers:
    case Operation.query_transfers:
      return transferSize
    case Operation.get_account_balances:
      return accountBalanceSize
  }
}

/** Reads take exactly one filter per batch; creates and lookups take up to `batchEventsMax`. */
export const isQuery = (operation: ClientOperation): boolean =>
  operation === Operation.get_account_transfers ||
  operation === Operation.get_account_balances ||
  operation === Operation.query_accounts ||
  operation === Operation.query_transfers

/** Cluster time (ns) a committed batch of `eventCount` events consumes (spec §6.1). */
export const timestampDelta = (operation: Operation, eventCount: number): number => {
  if (operation === Operation.pulse) return pulseExpiriesMax
  if (operation === Operation.create_accounts || operation === Operation.create_transfers) return eventCount
  return 0
}
