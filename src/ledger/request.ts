/**
 * A client request's body as the ledger sees it, whatever its encoding (wire-protocol.md §8):
 * the 0.17 operations 140–147 run as they are; the deprecated encodings of 0.16 clients
 * (129–136, 138, 139) run as the 0.17 operation they stand for, their results translated at the
 * edge (protocol/deprecated.ts). One ledger, one set of rules, two reply formats.
 *
 * The primary validated the body (protocol/body.ts) before it prepared it; so did replay, which
 * refuses an op it cannot execute before it gets here.
 */
import { assert } from "../assert.ts"
import { currentOperation, isDeprecatedExecuted, isSparseCreate, isUnbatched, sparseBody, sparseMultiBatch } from "../protocol/deprecated.ts"
import { MultiBatchDecoder } from "../protocol/multi_batch.ts"
import { type ClientOperation, createResultSize, eventSize, Operation } from "../protocol/operation.ts"
import type { LedgerOperations } from "./ledger.ts"

// Reused for every request: one at a time.
const decoder = new MultiBatchDecoder()

/**
 * Events a request of `operation` creates (0 for reads): the cluster time it consumes (one
 * nanosecond each, state-machine.md §6.1) and the capacity it may take.
 */
export function createEventCount(operation: number, body: Uint8Array): number {
  const current = currentOperation(operation)
  if (current !== Operation.create_accounts && current !== Operation.create_transfers) return 0
  const size = eventSize(current)
  if (isUnbatched(operation)) {
    assert(body.length % size === 0, () => `an unbatched create body of ${body.length} bytes`)
    return body.length / size
  }
  assert(decoder.decode(body, size) === undefined, () => "a create body that does not decode")
  assert(decoder.payloadSize % size === 0, () => "a create payload of partial events")
  return decoder.payloadSize / size
}

/**
 * Whether a client operation only reads the ledger (lookups, queries, in either encoding): it
 * may commit while a checkpoint reads the ledger's state in place, since it changes nothing there.
 */
export function isReadOperation(operation: number): boolean {
  const executed = isDeprecatedExecuted(operation) || (operation >= Operation.lookup_accounts && operation <= Operation.create_transfers)
  if (!executed) return false
  const current = currentOperation(operation)
  return current !== Operation.create_accounts && current !== Operation.create_transfers
}

/** Executes a validated request body of `operation` ending at `timestamp`; returns the reply body. */
export function executeRequest(ledger: LedgerOperations, operation: number, body: Uint8Array, timestamp: bigint): Uint8Array {
  const current: ClientOperation = currentOperation(operation)
  if (current === operation) return ledger.executeBatches(current, body, timestamp)
  if (isUnbatched(operation)) {
    const results = ledger.execute(current, body, timestamp)
    return isSparseCreate(operation) ? sparseBody(results) : results
  }
  assert(isSparseCreate(operation), () => `operation ${operation} is neither unbatched nor sparse`)
  const dense = ledger.executeBatches(current, body, timestamp)
  assert(decoder.decode(dense, createResultSize) === undefined, () => "the ledger's create reply does not decode")
  return sparseMultiBatch(decoder)
}
