/**
 * The typed records of the Ledger service: Schema classes for accounts, transfers, balances,
 * filters and create results (spec/state-machine.md §1), with every integer field range-checked
 * against its wire width.
 *
 * These are the edge of Scarab: a caller's objects are decoded here once per call, with errors
 * that name the event and the field, then encoded into the binary batch the ledger executes.
 * Nothing behind `submit` sees a Schema.
 *
 * Inputs may leave out any field but the id (or, for an AccountFilter, the account id): omitted
 * fields are zero, TigerBeetle's "not set", except a filter's `limit` (8189, the most one reply
 * holds) and an AccountFilter's `flags` (debits | credits). Outputs always carry every field.
 */
import { Effect, Schema } from "effect"
import { queryResultsMax } from "../protocol/operation.ts"
import { AccountFilterFlags, timestampMax, u128Max, u64Max } from "../protocol/records.ts"
import { CreateAccountStatus, CreateTransferStatus } from "../protocol/status.ts"

/** Unsigned integers of the wire widths; u128 and u64 are bigints, narrower ones numbers. */
export const U128 = Schema.BigInt.pipe(Schema.check(Schema.isBetweenBigInt({ minimum: 0n, maximum: u128Max })))
export const U64 = Schema.BigInt.pipe(Schema.check(Schema.isBetweenBigInt({ minimum: 0n, maximum: u64Max })))
export const U32 = Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 0xffff_ffff })))
export const U16 = Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 0xffff })))
/** A timestamp bound of a filter: 0 (none) or 1..2^63-1; the ledger treats anything else as an invalid filter. */
export const TimestampBound = Schema.BigInt.pipe(Schema.check(Schema.isBetweenBigInt({ minimum: 0n, maximum: timestampMax })))

/** A field that may be omitted on input (decoding and construction): it is then `value`. */
const bigOr = (schema: typeof U128, value: bigint) =>
  schema.pipe(Schema.withDecodingDefault(Effect.succeed(value)), Schema.withConstructorDefault(Effect.succeed(value)))
const intOr = (schema: typeof U32, value: number) =>
  schema.pipe(Schema.withDecodingDefault(Effect.succeed(value)), Schema.withConstructorDefault(Effect.succeed(value)))

const u128 = bigOr(U128, 0n)
const u64 = bigOr(U64, 0n)
const u32 = intOr(U32, 0)
const u16 = intOr(U16, 0)

export class Account extends Schema.Class<Account>("Account")({
  id: U128,
  debits_pending: u128,
  debits_posted: u128,
  credits_pending: u128,
  credits_posted: u128,
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  reserved: u32,
  ledger: u32,
  code: u16,
  flags: u16,
  timestamp: u64
}) {}

export class Transfer extends Schema.Class<Transfer>("Transfer")({
  id: U128,
  debit_account_id: u128,
  credit_account_id: u128,
  amount: u128,
  pending_id: u128,
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  timeout: u32,
  ledger: u32,
  code: u16,
  flags: u16,
  timestamp: u64
}) {}

/** An account's balances right after the transfer with this timestamp (spec §1.3, §14.3). */
export class AccountBalance extends Schema.Class<AccountBalance>("AccountBalance")({
  debits_pending: U128,
  debits_posted: U128,
  credits_pending: U128,
  credits_posted: U128,
  timestamp: U64
}) {}

/** Input of get_account_transfers and get_account_balances (spec §1.4, §14.2). */
export class AccountFilter extends Schema.Class<AccountFilter>("AccountFilter")({
  account_id: U128,
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  code: u16,
  timestamp_min: bigOr(TimestampBound, 0n),
  timestamp_max: bigOr(TimestampBound, 0n),
  limit: intOr(U32, queryResultsMax),
  flags: intOr(U32, AccountFilterFlags.debits | AccountFilterFlags.credits)
}) {}

/** Input of query_accounts and query_transfers (spec §1.5, §14.4). */
export class QueryFilter extends Schema.Class<QueryFilter>("QueryFilter")({
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  ledger: u32,
  code: u16,
  timestamp_min: bigOr(TimestampBound, 0n),
  timestamp_max: bigOr(TimestampBound, 0n),
  limit: intOr(U32, queryResultsMax),
  flags: u32
}) {}

/** What a caller passes: the encoded side, where every defaulted field may be omitted. */
export type AccountInput = typeof Account.Encoded
export type TransferInput = typeof Transfer.Encoded
export type AccountFilterInput = typeof AccountFilter.Encoded
export type QueryFilterInput = typeof QueryFilter.Encoded

export type CreateAccountStatusName = keyof typeof CreateAccountStatus
export type CreateTransferStatusName = keyof typeof CreateTransferStatus

const namesOf = <K extends string>(table: Record<K, number>): ReadonlyArray<K> => Object.keys(table) as Array<K>
export const CreateAccountStatusName = Schema.Literals(namesOf(CreateAccountStatus))
export const CreateTransferStatusName = Schema.Literals(namesOf(CreateTransferStatus))

/**
 * The outcome of one event of create_accounts, in event order: `status` by name, `statusCode` as
 * on the wire (created = 0xFFFFFFFF), `timestamp` as in spec §6.3. A failed event is a result,
 * not an error.
 */
export class CreateAccountResult extends Schema.Class<CreateAccountResult>("CreateAccountResult")({
  timestamp: U64,
  status: CreateAccountStatusName,
  statusCode: U32
}) {}

export class CreateTransferResult extends Schema.Class<CreateTransferResult>("CreateTransferResult")({
  timestamp: U64,
  status: CreateTransferStatusName,
  statusCode: U32
}) {}

/**
 * An instance of one of the record classes above, built from fields the ledger produced (valid
 * by construction) without running the class constructor. The constructor parses its input even
 * with `disableChecks` (about 1 µs per record, and garbage), which dominated a one-event call
 * under fan-in and a full lookup. The instance is the one the constructor builds: the class's
 * prototype and the fields as own enumerable properties (a `Data.Class`); test/client/schema.test.ts
 * holds the two to being equal, so an Effect upgrade that changes the classes is caught.
 */
export const trustedRecord = <C extends { readonly prototype: object }>(
  recordClass: C, fields: Omit<C["prototype"], never>
): C["prototype"] => Object.assign(Object.create(recordClass.prototype), fields)

/**
 * A maker of create results (`CreateAccountResult`, `CreateTransferResult`) from the ledger's
 * reply: `trustedRecord` in one allocation, through a constructor that shares the class's
 * prototype and sets the fields in the class's order. Under fan-in it runs once per event.
 */
export function createResultMaker<C extends typeof CreateAccountResult | typeof CreateTransferResult>(recordClass: C) {
  type Fields = Omit<C["prototype"], never>
  const Result = function (this: Record<string, unknown>, timestamp: bigint, status: Fields["status"], statusCode: number) {
    this.timestamp = timestamp
    this.status = status
    this.statusCode = statusCode
  } as unknown as new (timestamp: bigint, status: Fields["status"], statusCode: number) => C["prototype"]
  Result.prototype = recordClass.prototype
  return (timestamp: bigint, status: Fields["status"], statusCode: number): C["prototype"] => new Result(timestamp, status, statusCode)
}

const accountStatusByCode = new Map<number, CreateAccountStatusName>(
  namesOf(CreateAccountStatus).map((name) => [CreateAccountStatus[name], name]))
const transferStatusByCode = new Map<number, CreateTransferStatusName>(
  namesOf(CreateTransferStatus).map((name) => [CreateTransferStatus[name], name]))

/** The name of a status code the ledger produced; undefined for a value no 0.17 ledger sends. */
export const createAccountStatusOf = (code: number): CreateAccountStatusName | undefined => accountStatusByCode.get(code)
export const createTransferStatusOf = (code: number): CreateTransferStatusName | undefined => transferStatusByCode.get(code)

export { AccountFilterFlags, AccountFlags, QueryFilterFlags, TransferFlags } from "../protocol/records.ts"
export { CreateAccountStatus, CreateTransferStatus } from "../protocol/status.ts"
