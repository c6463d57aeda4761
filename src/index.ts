/**
 * Scarab's public API for Effect users: the Ledger service, its typed records and errors, and
 * its layers. Start from the README, "Using Scarab from Effect".
 */
export { checkBatch, Ledger, makeLedger, operationName, type Decode, type LedgerApi, type Send } from "./client/ledger_service.ts"
export { layerMemory, memoryDefaults, type MemoryOptions } from "./client/memory.ts"
export {
  Account, AccountBalance, AccountFilter, AccountFilterFlags, AccountFlags, CreateAccountResult, CreateAccountStatus,
  CreateAccountStatusName, CreateTransferResult, CreateTransferStatus, CreateTransferStatusName, QueryFilter,
  QueryFilterFlags, Transfer, TransferFlags, TimestampBound, U128, U16, U32, U64,
  type AccountFilterInput, type AccountInput, type QueryFilterInput, type TransferInput
} from "./client/schema.ts"
export { ClientEvicted, InvalidRequest, OutcomeUnknown, StoreFull, TooMuchData, type LedgerError } from "./client/errors.ts"
export { batchEventsMax, Operation, queryResultsMax, type ClientOperation } from "./protocol/operation.ts"
export {
  accountBalanceSize, accountFilterSize, accountSize, createResultSize, idSize, queryFilterSize, transferSize
} from "./protocol/operation.ts"
/** The binary codec, for building and reading `submit` batches (cold path: one object per record). */
export {
  AccountBalanceLayout, AccountFilterLayout, AccountLayout, CreateResultLayout, decodeAccount, decodeAccountBalance,
  decodeBatch, decodeCreateResult, decodeTransfer, encodeAccount, encodeAccountFilter, encodeBatch, encodeIds,
  encodeQueryFilter, encodeTransfer, QueryFilterLayout, TransferLayout
} from "./protocol/records.ts"
export { layerEmbedded, type EmbeddedOpenError, type EmbeddedOptions } from "./client/layer_embedded.ts"
export { makeSession, RequestDeadline, type Session, type SessionOptions, type SessionStats, type Transport, type TransportFactory } from "./client/session.ts"
export { InvalidClientOptions, layerClient, type ClientOptions } from "./client/layer_client.ts"
