/**
 * Failures of a request as a whole, as tagged errors. Per-event outcomes (a transfer that
 * exceeds credits, an account that exists) are results, never errors: see schema.ts.
 *
 * The union is the contract of every layer of the Ledger service. The in-memory layer never
 * evicts a client and never loses track of a request, but the network client will, so callers
 * written against the service handle `ClientEvicted` and `OutcomeUnknown` from the start and
 * keep working when the layer is swapped.
 */
import { Schema } from "effect"
import { StoreFull } from "../ledger/store.ts"

export { StoreFull }

/**
 * The request is malformed and was not sent: a field out of range, a body whose size is not a
 * multiple of the event size, a query batch without exactly one filter, an unknown operation.
 * `index` is the event's position in the call and `field` the offending field, when there is one.
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  operation: Schema.String,
  reason: Schema.String,
  index: Schema.optionalKey(Schema.Number),
  field: Schema.optionalKey(Schema.String)
}) {
  override get message(): string {
    const at = this.index === undefined ? "" : ` event ${this.index}`
    const field = this.field === undefined ? "" : ` field ${this.field}`
    return `${this.operation}${at}${field}: ${this.reason}`
  }
}

/**
 * More events than one batch holds (8189), or a query `limit` above the 8189 results one reply
 * holds: rejected before sending, as TigerBeetle's clients do (ERR_TOO_MUCH_DATA). Split the
 * call, or use the streams for reads.
 */
export class TooMuchData extends Schema.TaggedError<TooMuchData>()("TooMuchData", {
  operation: Schema.String,
  count: Schema.Number,
  max: Schema.Number
}) {
  override get message(): string {
    return `${this.operation}: ${this.count} exceeds the limit of ${this.max} per batch`
  }
}

/**
 * The cluster evicted this client's session (too many clients, a release it does not accept, a
 * malformed request). Every later call fails the same way; open a new client. Raised by the
 * network client; the in-memory layer never evicts.
 */
export class ClientEvicted extends Schema.TaggedError<ClientEvicted>()("ClientEvicted", {
  reason: Schema.String
}) {
  override get message(): string {
    return `the cluster evicted this client: ${this.reason}`
  }
}

/**
 * A per-call deadline passed before a reply arrived. The request may still commit: the error
 * says so, and carries the ids of the events it held so the caller can look them up. Only a
 * caller-set deadline produces it; without one the network client retries until it gets a reply.
 */
export class OutcomeUnknown extends Schema.TaggedError<OutcomeUnknown>()("OutcomeUnknown", {
  operation: Schema.String,
  ids: Schema.Array(Schema.BigInt)
}) {
  override get message(): string {
    return `${this.operation}: no reply before the deadline; the request may or may not have committed (${this.ids.length} ids)`
  }
}

export type LedgerError = InvalidRequest | TooMuchData | StoreFull | ClientEvicted | OutcomeUnknown
