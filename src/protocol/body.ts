/**
 * What the primary checks on a request before it prepares it (wire-protocol.md §10.3, §12.2
 * items 3–8; state-machine.md §4.1): release, size, operation and the shape of the body. Each
 * failure ends the client's session with an eviction whose reason tells the client why.
 *
 * Shapes are TigerBeetle's for every state machine operation a 0.16.4+ client may send, including
 * the deprecated encodings (129–139) the ledger does not execute yet: a request the replica cannot
 * run must still be judged exactly as TigerBeetle would judge it.
 */
import { assert } from "../assert.ts"
import {
  EvictionReason, FrameLayout, headerSize, readU32, registerRequestSize, RequestLayout, VsrOperation
} from "./header.ts"
import { isDeprecatedExecuted, sparseResultSize } from "./deprecated.ts"
import { MultiBatchDecoder, trailerSize } from "./multi_batch.ts"
import {
  accountBalanceSize, accountFilterSize, accountSize, bodySizeMax, createResultSize, idSize, Operation, queryFilterSize,
  transferSize
} from "./operation.ts"
import { AccountFilterLayout, QueryFilterLayout } from "./records.ts"

/** The state machine's operation numbers: 128 (pulse) to 147 (create_transfers). */
export const stateMachineOperationMin = Operation.pulse
export const stateMachineOperationMax = Operation.create_transfers

/** Sizes of the records only `get_change_events` uses (§10.4). */
export const changeEventSize = 384
export const changeEventsFilterSize = 64
const changeEventsFilterLimitOffset = 16

export interface OperationShape {
  readonly eventSize: number
  readonly resultSize: number
  /** Many events per batch (creates, lookups), or exactly one filter (queries). */
  readonly batchable: boolean
  /** Multi-batch encoded (§10.2), or a plain body. */
  readonly multiBatch: boolean
  /** For a query, where its filter keeps the u32 `limit` that bounds its results. */
  readonly limitOffset: number | undefined
}

const creates = (eventSize: number, resultSize: number, multiBatch: boolean): OperationShape =>
  ({ eventSize, resultSize, batchable: true, multiBatch, limitOffset: undefined })
const query = (eventSize: number, resultSize: number, multiBatch: boolean, limitOffset: number): OperationShape =>
  ({ eventSize, resultSize, batchable: false, multiBatch, limitOffset })

/** Shapes of operations 129..147 (index = operation − 129); pulse (128) takes no body at all. */
const shapes: ReadonlyArray<OperationShape> = [
  creates(accountSize, sparseResultSize, false),
  creates(transferSize, sparseResultSize, false),
  creates(idSize, accountSize, false),
  creates(idSize, transferSize, false),
  query(accountFilterSize, transferSize, false, AccountFilterLayout.limit),
  query(accountFilterSize, accountBalanceSize, false, AccountFilterLayout.limit),
  query(queryFilterSize, accountSize, false, QueryFilterLayout.limit),
  query(queryFilterSize, transferSize, false, QueryFilterLayout.limit),
  query(changeEventsFilterSize, changeEventSize, false, changeEventsFilterLimitOffset),
  creates(accountSize, sparseResultSize, true),
  creates(transferSize, sparseResultSize, true),
  creates(idSize, accountSize, true),
  creates(idSize, transferSize, true),
  query(accountFilterSize, transferSize, true, AccountFilterLayout.limit),
  query(accountFilterSize, accountBalanceSize, true, AccountFilterLayout.limit),
  query(queryFilterSize, accountSize, true, QueryFilterLayout.limit),
  query(queryFilterSize, transferSize, true, QueryFilterLayout.limit),
  creates(accountSize, createResultSize, true),
  creates(transferSize, createResultSize, true)
]
assert(shapes.length === stateMachineOperationMax - stateMachineOperationMin, () => "one shape per operation 129..147")

/** The shape of a state machine operation other than pulse. */
export function operationShape(operation: number): OperationShape {
  assert(operation > stateMachineOperationMin && operation <= stateMachineOperationMax, () => `operation ${operation} has no body shape`)
  return shapes[operation - stateMachineOperationMin - 1]
}

/**
 * Whether TigerBeetle knows the operation (§12.2 item 6): the protocol's own (0..6) or the state
 * machine's (128..147). Anything else gets `invalid_request_operation`.
 */
export const isKnownOperation = (operation: number): boolean =>
  (operation >= VsrOperation.reserved && operation <= VsrOperation.noop) ||
  (operation >= stateMachineOperationMin && operation <= stateMachineOperationMax)

/**
 * Whether a client may send `operation`: `register`, the 0.17 operations (140–147) and the
 * deprecated ones Scarab executes (129–136, 138, 139). TigerBeetle evicts unknown numbers with
 * `invalid_request_operation`; Scarab evicts the same way for the known operations a client has
 * no business sending (`reconfigure`, `pulse`, `upgrade`, `noop`, the state machine's pulse 128)
 * and for `get_change_events` (137), which it does not store the events for (differences.md).
 * None of them may reach the journal: the replica could not execute it.
 */
export const isClientOperation = (operation: number): boolean =>
  operation === VsrOperation.register || isDeprecatedExecuted(operation) ||
  (operation >= Operation.lookup_accounts && operation <= Operation.create_transfers)

/** Events one batch may hold with request bodies of at most `batchSizeLimit` bytes (§10.3). */
export function eventMax(operation: number, batchSizeLimit: number): number {
  const { eventSize, resultSize, multiBatch } = operationShape(operation)
  assert(batchSizeLimit > 0 && batchSizeLimit <= bodySizeMax, () => `batch_size_limit ${batchSizeLimit}`)
  if (!multiBatch) return Math.min(Math.floor(batchSizeLimit / eventSize), Math.floor(bodySizeMax / resultSize))
  return Math.min(
    Math.floor((batchSizeLimit - trailerSize(eventSize, 1)) / eventSize),
    Math.floor((bodySizeMax - trailerSize(resultSize, 1)) / resultSize)
  )
}

/** Results one batch may produce. Replies are not bound by the request budget, only by 1 MiB. */
export function resultMax(operation: number): number {
  const { resultSize, batchable, multiBatch } = operationShape(operation)
  if (batchable) return eventMax(operation, bodySizeMax)
  if (!multiBatch) return Math.floor(bodySizeMax / resultSize)
  return Math.floor((bodySizeMax - trailerSize(resultSize, 1)) / resultSize)
}

/** Results a valid batch asks for: one per event, or the filter's `limit` (§10.3). */
export function resultCountExpected(operation: number, batch: Uint8Array): number {
  const { eventSize, batchable, limitOffset } = operationShape(operation)
  if (batchable) return batch.length / eventSize
  assert(limitOffset !== undefined && batch.length === eventSize, () => "a query batch is one filter")
  return readU32(batch, limitOffset)
}

export type RequestBodyInvalid =
  | "pulse_body_not_empty"
  | "multi_batch_invalid"
  | "batch_not_whole_events"
  | "batch_too_many_events"
  | "batch_not_one_filter"
  | "reply_too_large"

// Reused for every request: bodies are validated one at a time.
const decoder = new MultiBatchDecoder()

/**
 * TigerBeetle's `input_valid` (§10.3): the body of a state machine operation has the right shape
 * for a primary whose request budget is `batchSizeLimit`. `undefined` means valid.
 */
export function requestBodyInvalid(operation: number, body: Uint8Array, batchSizeLimit: number): RequestBodyInvalid | undefined {
  assert(operation >= stateMachineOperationMin && operation <= stateMachineOperationMax, () => `operation ${operation}`)
  assert(body.length <= batchSizeLimit, () => "the request size is checked before its body")
  if (operation === Operation.pulse) return body.length === 0 ? undefined : "pulse_body_not_empty"
  const shape = operationShape(operation)
  if (!shape.multiBatch) return batchInvalid(operation, shape, body, batchSizeLimit)
  if (decoder.decode(body, shape.eventSize) !== undefined) return "multi_batch_invalid"
  let results = 0
  const resultsPerBatchMax = resultMax(operation)
  if (shape.batchable) {
    // Counted in place: a request of thousands of one-event batches needs no view of each.
    const eventsMax = eventMax(operation, batchSizeLimit)
    for (let batch = 0; batch < decoder.batchCount; batch++) {
      const events = decoder.elementCount(batch)
      if (events > eventsMax) return "batch_too_many_events"
      results += Math.min(events, resultsPerBatchMax)
    }
  } else {
    for (let batch = decoder.next(); batch !== undefined; batch = decoder.next()) {
      const invalid = batchInvalid(operation, shape, batch, batchSizeLimit)
      if (invalid !== undefined) return invalid
      // Clients before 0.17 capped query limits silently, so a larger limit is not an error.
      results += Math.min(resultCountExpected(operation, batch), resultsPerBatchMax)
    }
  }
  if (results * shape.resultSize + trailerSize(shape.resultSize, decoder.batchCount) > bodySizeMax) return "reply_too_large"
  return undefined
}

function batchInvalid(operation: number, shape: OperationShape, batch: Uint8Array, batchSizeLimit: number): RequestBodyInvalid | undefined {
  if (!shape.batchable) return batch.length === shape.eventSize ? undefined : "batch_not_one_filter"
  // Empty batches are valid: they yield empty result batches.
  if (batch.length % shape.eventSize !== 0) return "batch_not_whole_events"
  if (batch.length / shape.eventSize > eventMax(operation, batchSizeLimit)) return "batch_too_many_events"
  return undefined
}

export interface ReplicaLimits {
  /** The replica's release. */
  readonly release: number
  /** The oldest client release served. */
  readonly releaseClientMin: number
  /** The largest request body accepted, 3 840 ..= 1 048 320. */
  readonly batchSizeLimit: number
}

/**
 * §12.2 items 3–8, on a request whose header passed validation, in TigerBeetle's order: the
 * eviction the primary sends, or `undefined` to go on to the session rules.
 */
export function requestEvictionReason(request: Uint8Array, limits: ReplicaLimits): EvictionReason | undefined {
  const release = readU32(request, FrameLayout.release.offset)
  if (release < limits.releaseClientMin) return EvictionReason.client_release_too_low
  if (release > limits.release) return EvictionReason.client_release_too_high
  const size = readU32(request, FrameLayout.size.offset)
  assert(size === request.length, () => "a request whose size was checked")
  if (size > headerSize + limits.batchSizeLimit) return EvictionReason.invalid_request_body_size
  const operation = request[RequestLayout.operation.offset]
  if (!isClientOperation(operation)) return EvictionReason.invalid_request_operation
  if (operation >= stateMachineOperationMin && requestBodyInvalid(operation, request.subarray(headerSize), limits.batchSizeLimit) !== undefined) {
    return EvictionReason.invalid_request_body
  }
  // Clients up to 0.15.3 register without a body; their release is normally caught above.
  if (operation === VsrOperation.register && size !== headerSize + registerRequestSize) return EvictionReason.invalid_request_body_size
  return undefined
}
