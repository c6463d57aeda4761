/**
 * The Ledger service: Scarab as an Effect service, the same for an in-memory ledger, an embedded
 * replica and a remote cluster. A layer provides one primitive, `send` (execute one validated
 * batch of one operation, binary in, binary out); `makeLedger` builds the rest on top of it:
 *
 * - `submit`: the zero-copy batch API, `send` behind the request checks every layer shares;
 * - the eight typed operations: Schema-decoded records in, Schema classes out;
 * - streams for the four paginated reads, paging by timestamp.
 *
 * Named `Ledger` because that is what users compose; the state machine's interface of the same
 * name (src/ledger/ledger.ts) is internal and is only ever imported under an alias.
 */
import { Context, Effect, Exit, Cause, Option, Schema, SchemaIssue, Stream } from "effect"
import { assert } from "../assert.ts"
import {
  accountSize, batchEventsMax, createResultSize, eventSize, isOperation, isQuery, Operation, queryResultsMax, resultSize, transferSize, type ClientOperation
} from "../protocol/operation.ts"
import {
  AccountFilterFlags, bufferView, CreateResultLayout, decodeAccount, decodeAccountBalance, decodeBatch, decodeTransfer,
  encodeAccount, encodeAccountFilter, encodeBatch, encodeIds, encodeQueryFilter, encodeTransfer, QueryFilterFlags,
  timestampMax
} from "../protocol/records.ts"
import { InvalidRequest, TooMuchData, type LedgerError } from "./errors.ts"
import { accountSlots, allIdsValid, encodeChecked, transferSlots } from "./input_check.ts"
import {
  Account, AccountBalance, AccountFilter, CreateAccountResult, createAccountStatusOf, createResultMaker, CreateTransferResult,
  createTransferStatusOf, QueryFilter, Transfer, trustedRecord, U128,
  type AccountFilterInput, type AccountInput, type QueryFilterInput, type TransferInput
} from "./schema.ts"

export interface LedgerApi {
  /** Creates accounts (at most 8189): one result per account, in order. */
  readonly createAccounts: (accounts: ReadonlyArray<AccountInput>) => Effect.Effect<ReadonlyArray<CreateAccountResult>, LedgerError>
  /** Creates transfers (at most 8189): one result per transfer, in order. */
  readonly createTransfers: (transfers: ReadonlyArray<TransferInput>) => Effect.Effect<ReadonlyArray<CreateTransferResult>, LedgerError>
  /** The accounts found among `ids` (at most 8189), in request order; missing ids are skipped. */
  readonly lookupAccounts: (ids: ReadonlyArray<bigint>) => Effect.Effect<ReadonlyArray<Account>, LedgerError>
  readonly lookupTransfers: (ids: ReadonlyArray<bigint>) => Effect.Effect<ReadonlyArray<Transfer>, LedgerError>
  /** One page (at most `filter.limit` ≤ 8189) of an account's transfers; an invalid filter gives []. */
  readonly getAccountTransfers: (filter: AccountFilterInput) => Effect.Effect<ReadonlyArray<Transfer>, LedgerError>
  /** One page of an account's balance history (accounts with `flags.history` only). */
  readonly getAccountBalances: (filter: AccountFilterInput) => Effect.Effect<ReadonlyArray<AccountBalance>, LedgerError>
  readonly queryAccounts: (filter: QueryFilterInput) => Effect.Effect<ReadonlyArray<Account>, LedgerError>
  readonly queryTransfers: (filter: QueryFilterInput) => Effect.Effect<ReadonlyArray<Transfer>, LedgerError>
  /**
   * Every match of the filter, fetched in pages of `filter.limit` (default 8189) by moving the
   * timestamp bound past the last result; ends after the first short page.
   */
  readonly accountTransfersStream: (filter: AccountFilterInput) => Stream.Stream<Transfer, LedgerError>
  readonly accountBalancesStream: (filter: AccountFilterInput) => Stream.Stream<AccountBalance, LedgerError>
  readonly queryAccountsStream: (filter: QueryFilterInput) => Stream.Stream<Account, LedgerError>
  readonly queryTransfersStream: (filter: QueryFilterInput) => Stream.Stream<Transfer, LedgerError>
  /**
   * The zero-copy batch API: one batch of `operation` as the events back to back (128-byte
   * accounts or transfers, 16-byte ids, or exactly one filter), answered with the reply body of
   * that batch (16-byte create results, or records). Not multi-batch framed. The body must not
   * change until the effect completes.
   */
  readonly submit: (operation: ClientOperation, body: Uint8Array) => Effect.Effect<Uint8Array, LedgerError>
}

export class Ledger extends Context.Service<Ledger, LedgerApi>()("scarab/Ledger") {}

/**
 * Decodes the reply of one batch; `countMax` is the most results its request allows
 * (`resultCountExpected`: the events of a create, the ids of a lookup, a query's limit).
 */
export type Decode<A> = (reply: Uint8Array, countMax: number) => A

/**
 * What a layer implements: execute one batch that passed `checkBatch` and answer its reply
 * decoded by `decode`. Errors are the request's (store full, eviction, deadline); per-event
 * outcomes are in the reply. The layer applies `decode` itself so that a network call waits on
 * one effect, not on a chain of them: under fan-in thousands of such calls wait at once.
 */
export type Send = <A>(operation: ClientOperation, body: Uint8Array, decode: Decode<A>) => Effect.Effect<A, LedgerError>

/** The reply as it is: `submit`'s. */
const replyBytes: Decode<Uint8Array> = (reply) => reply

const operationNames = new Map<number, string>(Object.entries(Operation).map(([name, value]) => [value, name]))
export const operationName = (operation: number): string => operationNames.get(operation) ?? `operation ${operation}`

/** The request checks of spec §4.1 and §15 that every layer applies before sending a batch. */
export function checkBatch(operation: number, body: Uint8Array): InvalidRequest | TooMuchData | undefined {
  const name = operationName(operation)
  if (!(body instanceof Uint8Array)) return new InvalidRequest({ operation: name, reason: "the body must be a Uint8Array" })
  if (!isOperation(operation) || operation === Operation.pulse) {
    return new InvalidRequest({ operation: name, reason: "not an operation a client may submit" })
  }
  const size = eventSize(operation)
  if (body.length % size !== 0) {
    return new InvalidRequest({ operation: name, reason: `a body of ${body.length} bytes is not a whole number of ${size}-byte events` })
  }
  const count = body.length / size
  if (isQuery(operation) && count !== 1) {
    return new InvalidRequest({ operation: name, reason: `a query batch holds exactly one filter, not ${count}` })
  }
  if (count > batchEventsMax) return new TooMuchData({ operation: name, count, max: batchEventsMax })
  return undefined
}

/** Builds the whole service over a layer's `send`. */
export function makeLedger(send: Send): LedgerApi {
  const submit = (operation: ClientOperation, body: Uint8Array): Effect.Effect<Uint8Array, LedgerError> => {
    const error = checkBatch(operation, body)
    return error === undefined ? send(operation, body, replyBytes) : Effect.fail(error)
  }

  /**
   * A create or lookup: the count check, the body, the call, the decoded results. Built without a
   * generator, because under fan-in (thousands of fibers making one-event calls) it runs per event.
   */
  const batchCall = <I, A>(operation: ClientOperation, body: (inputs: ReadonlyArray<I>) => Uint8Array | InvalidRequest,
    decode: Decode<ReadonlyArray<A>>) =>
    (inputs: ReadonlyArray<I>): Effect.Effect<ReadonlyArray<A>, LedgerError> => Effect.suspend(() => {
      const refused = countRefused(operation, inputs)
      if (refused !== undefined) return Effect.fail(refused)
      const bytes = body(inputs)
      if (bytes instanceof InvalidRequest) return Effect.fail(bytes)
      return send(operation, bytes, decode)
    })

  const createAccounts = batchCall(Operation.create_accounts, accountsBody, (reply, count) =>
    createResults(reply, count, Operation.create_accounts, createAccountStatusOf, createAccountResult))
  const createTransfers = batchCall(Operation.create_transfers, transfersBody, (reply, count) =>
    createResults(reply, count, Operation.create_transfers, createTransferStatusOf, createTransferResult))
  const lookupAccounts = batchCall(Operation.lookup_accounts, (ids: ReadonlyArray<bigint>) => idsBody(ids, Operation.lookup_accounts),
    (reply, count) => decodeReply(reply, Operation.lookup_accounts, count, accountOf))
  const lookupTransfers = batchCall(Operation.lookup_transfers, (ids: ReadonlyArray<bigint>) => idsBody(ids, Operation.lookup_transfers),
    (reply, count) => decodeReply(reply, Operation.lookup_transfers, count, transferOf))

  // Pages over decoded filters: the streams decode once and page without Schema.
  const accountTransfersPage = (filter: AccountFilter) => send(Operation.get_account_transfers, encodeAccountFilter(filter), (reply, limit) =>
    decodeReply(reply, Operation.get_account_transfers, limit, transferOf))
  const accountBalancesPage = (filter: AccountFilter) => send(Operation.get_account_balances, encodeAccountFilter(filter), (reply, limit) =>
    decodeReply(reply, Operation.get_account_balances, limit, balanceOf))
  const queryAccountsPage = (filter: QueryFilter) => send(Operation.query_accounts, encodeQueryFilter(filter), (reply, limit) =>
    decodeReply(reply, Operation.query_accounts, limit, accountOf))
  const queryTransfersPage = (filter: QueryFilter) => send(Operation.query_transfers, encodeQueryFilter(filter), (reply, limit) =>
    decodeReply(reply, Operation.query_transfers, limit, transferOf))

  return {
    createAccounts,
    createTransfers,
    lookupAccounts,
    lookupTransfers,
    getAccountTransfers: (input) => Effect.flatMap(accountFilter(Operation.get_account_transfers, input), accountTransfersPage),
    getAccountBalances: (input) => Effect.flatMap(accountFilter(Operation.get_account_balances, input), accountBalancesPage),
    queryAccounts: (input) => Effect.flatMap(queryFilter(Operation.query_accounts, input), queryAccountsPage),
    queryTransfers: (input) => Effect.flatMap(queryFilter(Operation.query_transfers, input), queryTransfersPage),
    accountTransfersStream: (input) =>
      pages(accountFilter(Operation.get_account_transfers, input), accountTransfersPage, accountFilterNext),
    accountBalancesStream: (input) =>
      pages(accountFilter(Operation.get_account_balances, input), accountBalancesPage, accountFilterNext),
    queryAccountsStream: (input) => pages(queryFilter(Operation.query_accounts, input), queryAccountsPage, queryFilterNext),
    queryTransfersStream: (input) => pages(queryFilter(Operation.query_transfers, input), queryTransfersPage, queryFilterNext),
    submit
  }
}

const accountsInput = decoderOf(Schema.Array(Account))
const transfersInput = decoderOf(Schema.Array(Transfer))
const idsInput = decoderOf(Schema.Array(U128))
const accountFilterInput = decoderOf(AccountFilter)
const queryFilterInput = decoderOf(QueryFilter)

// Well-formed input is checked and encoded in one pass; the rest is decoded by the Schema, which names what is wrong.
const accountsBody = (inputs: ReadonlyArray<AccountInput>): Uint8Array | InvalidRequest => {
  const body = encodeChecked(inputs, accountSlots, accountSize, "id")
  if (body !== undefined) return body
  const accounts = accountsInput(inputs, Operation.create_accounts)
  return accounts instanceof InvalidRequest ? accounts : encodeBatch(accounts, accountSize, encodeAccount)
}
const transfersBody = (inputs: ReadonlyArray<TransferInput>): Uint8Array | InvalidRequest => {
  const body = encodeChecked(inputs, transferSlots, transferSize, "id")
  if (body !== undefined) return body
  const transfers = transfersInput(inputs, Operation.create_transfers)
  return transfers instanceof InvalidRequest ? transfers : encodeBatch(transfers, transferSize, encodeTransfer)
}
const idsBody = (ids: ReadonlyArray<bigint>, operation: ClientOperation): Uint8Array | InvalidRequest => {
  if (allIdsValid(ids)) return encodeIds(ids)
  const decoded = idsInput(ids, operation)
  return decoded instanceof InvalidRequest ? decoded : encodeIds(decoded)
}

const accountFilter = (operation: ClientOperation, input: AccountFilterInput) => Effect.suspend((): Effect.Effect<AccountFilter, InvalidRequest | TooMuchData> => {
  const filter = accountFilterInput(input, operation)
  return filter instanceof InvalidRequest ? Effect.fail(filter) : limitWithin(operation, filter)
})
const queryFilter = (operation: ClientOperation, input: QueryFilterInput) => Effect.suspend((): Effect.Effect<QueryFilter, InvalidRequest | TooMuchData> => {
  const filter = queryFilterInput(input, operation)
  return filter instanceof InvalidRequest ? Effect.fail(filter) : limitWithin(operation, filter)
})

const accountFilterNext = (filter: AccountFilter, last: bigint): AccountFilter | undefined => {
  const bounds = nextBounds(filter, last, (filter.flags & AccountFilterFlags.reversed) !== 0)
  return bounds === undefined ? undefined : new AccountFilter({ ...filter, ...bounds }, trusted)
}
const queryFilterNext = (filter: QueryFilter, last: bigint): QueryFilter | undefined => {
  const bounds = nextBounds(filter, last, (filter.flags & QueryFilterFlags.reversed) !== 0)
  return bounds === undefined ? undefined : new QueryFilter({ ...filter, ...bounds }, trusted)
}

/** Records built from ledger replies are valid by construction: skip the range checks. */
const trusted = { disableChecks: true } as const

const accountOf = (bytes: Uint8Array, offset: number): Account => trustedRecord(Account, decodeAccount(bytes, offset))
const transferOf = (bytes: Uint8Array, offset: number): Transfer => trustedRecord(Transfer, decodeTransfer(bytes, offset))
const balanceOf = (bytes: Uint8Array, offset: number): AccountBalance => trustedRecord(AccountBalance, decodeAccountBalance(bytes, offset))

/** Decodes a reply, asserting it has the shape the request allows (a defect otherwise). */
function decodeReply<A>(reply: Uint8Array, operation: ClientOperation, countMax: number,
  decode: (bytes: Uint8Array, offset: number) => A): ReadonlyArray<A> {
  const size = resultSize(operation)
  assert(reply.length % size === 0 && reply.length / size <= Math.max(countMax, 0),
    () => `${operationName(operation)}: a reply of ${reply.length} bytes for ${countMax} events`)
  return decodeBatch(reply, size, decode)
}

/** A batch is an array of at most 8189 events (checked first: JavaScript callers may pass anything). */
const countRefused = (operation: ClientOperation, events: ReadonlyArray<unknown>): InvalidRequest | TooMuchData | undefined => {
  if (!Array.isArray(events)) return new InvalidRequest({ operation: operationName(operation), reason: "expected an array of events" })
  const count = events.length
  return count <= batchEventsMax ? undefined : new TooMuchData({ operation: operationName(operation), count, max: batchEventsMax })
}

const createAccountResult = createResultMaker(CreateAccountResult)
const createTransferResult = createResultMaker(CreateTransferResult)

/** The results of a create, one per event: (timestamp, status code) read in place, one object each. */
function createResults<S, A>(reply: Uint8Array, count: number, operation: ClientOperation, statusOf: (code: number) => S | undefined,
  make: (timestamp: bigint, status: S, statusCode: number) => A): ReadonlyArray<A> {
  assert(reply.length === count * createResultSize, () => `${operationName(operation)}: ${reply.length} reply bytes for ${count} events`)
  // One view of the whole reply message serves every caller's result batch in it.
  const view = bufferView(reply)
  const results = new Array<A>(count)
  for (let i = 0; i < count; i++) {
    const offset = reply.byteOffset + i * createResultSize
    const code = view.getUint32(offset + CreateResultLayout.status, true)
    const status = statusOf(code)
    assert(status !== undefined, () => `${operationName(operation)}: unknown status ${code} in the reply`)
    results[i] = make(view.getBigUint64(offset + CreateResultLayout.timestamp, true), status, code)
  }
  return results
}

/** A query's limit above what one reply holds is refused, as TigerBeetle 0.17's clients do (spec §15). */
const limitWithin = <F extends { readonly limit: number }>(operation: ClientOperation, filter: F): Effect.Effect<F, TooMuchData> =>
  filter.limit <= queryResultsMax
    ? Effect.succeed(filter)
    : Effect.fail(new TooMuchData({ operation: operationName(operation), count: filter.limit, max: queryResultsMax }))

/**
 * A Schema decoder whose failure is an InvalidRequest naming the event (its index in the call)
 * and the field, with Schema's own description of what was expected.
 */
function decoderOf<S extends Schema.Top & { readonly DecodingServices: never }>(schema: S) {
  const decode = Schema.decodeUnknownExit(schema)
  const format = SchemaIssue.makeFormatterStandardSchemaV1()
  return (input: unknown, operation: ClientOperation): S["Type"] | InvalidRequest => {
    const exit = decode(input)
    if (Exit.isSuccess(exit)) return exit.value
    const error = Cause.squash(exit.cause)
    const issue = Schema.isSchemaError(error) ? format(error.issue).issues[0] : undefined
    const path = issue?.path ?? []
    const index = typeof path[0] === "number" ? path[0] : undefined
    const field = path.filter((key) => typeof key === "string").join(".")
    return new InvalidRequest({
      operation: operationName(operation),
      reason: issue?.message ?? String(error),
      ...(index === undefined ? {} : { index }),
      ...(field === "" ? {} : { field })
    })
  }
}

interface TimestampRange {
  readonly timestamp_min: bigint
  readonly timestamp_max: bigint
}

/**
 * The range of the page after one ending at `last`: past it in the direction of the scan, or
 * undefined when nothing can follow (a bound of 0 would mean "unbounded", so never produce one).
 */
function nextBounds(filter: TimestampRange, last: bigint, reversed: boolean): TimestampRange | undefined {
  if (reversed) {
    if (last <= 1n || last - 1n < filter.timestamp_min) return undefined
    return { timestamp_min: filter.timestamp_min, timestamp_max: last - 1n }
  }
  if (last >= timestampMax || (filter.timestamp_max !== 0n && last + 1n > filter.timestamp_max)) return undefined
  return { timestamp_min: last + 1n, timestamp_max: filter.timestamp_max }
}

/** Pages through a read: each full page is followed by the page past its last timestamp. */
function pages<F extends { readonly limit: number }, A extends { readonly timestamp: bigint }>(
  first: Effect.Effect<F, LedgerError>,
  page: (filter: F) => Effect.Effect<ReadonlyArray<A>, LedgerError>,
  next: (filter: F, last: bigint) => F | undefined
): Stream.Stream<A, LedgerError> {
  return Stream.unwrap(Effect.map(first, (filter) =>
    Stream.paginate(filter, (current: F) =>
      Effect.map(page(current), (items) => {
        const last = items[items.length - 1]
        const following = last === undefined || items.length < current.limit ? undefined : next(current, last.timestamp)
        return [items, following === undefined ? Option.none<F>() : Option.some(following)] as const
      }))))
}
