/**
 * The deprecated operations 129–136, 138 and 139 (wire-protocol.md §8, §10.4): the encodings of
 * TigerBeetle 0.16 clients, which TigerBeetle 0.17.9 still executes for clients from release
 * 0.16.4 on. Each is the same state machine operation as a 0.17 one, framed differently:
 *
 * - 129–136 (`*_unbatched`): the body is one plain batch (no multi-batch trailer) and so is the
 *   reply; up to 8190 events, one more than a multi-batch batch, since there is no trailer.
 * - 138, 139 (`*_sparse`): multi-batch creates whose result batches are sparse.
 * - Creates of both kinds answer sparse results: one 8-byte (index u32, result u32) per event
 *   that did not succeed, in event order; a created event has none.
 *
 * So the ledger executes the 0.17 operation and this module translates at the edge: which 0.17
 * operation, and dense results (16 bytes: timestamp, status) to sparse ones. Sparse results in
 * event order are exactly the dense results filtered to the failed events: TigerBeetle writes the
 * failures of a broken linked chain in chain order before the failing event, and every later
 * event of the chain in turn.
 */
import { assert } from "../assert.ts"
import { readU32, writeU32 } from "./header.ts"
import { type MultiBatchDecoder, writeTrailer } from "./multi_batch.ts"
import { type ClientOperation, createResultSize, eventsPerBatchMax, Operation } from "./operation.ts"

/** The deprecated operations Scarab executes; 137 (`get_change_events`) is not among them. */
export const DeprecatedOperation = {
  create_accounts_unbatched: 129,
  create_transfers_unbatched: 130,
  lookup_accounts_unbatched: 131,
  lookup_transfers_unbatched: 132,
  get_account_transfers_unbatched: 133,
  get_account_balances_unbatched: 134,
  query_accounts_unbatched: 135,
  query_transfers_unbatched: 136,
  get_change_events: 137,
  create_accounts_sparse: 138,
  create_transfers_sparse: 139
} as const

/** Bytes of one sparse create result: index u32, result u32. */
export const sparseResultSize = 8

const status = 8 // CreateResultLayout.status: the u32 after the u64 timestamp
const statusCreated = 0xffff_ffff

/** Whether `operation` is a deprecated encoding this replica executes (129–136, 138, 139). */
export const isDeprecatedExecuted = (operation: number): boolean =>
  (operation >= DeprecatedOperation.create_accounts_unbatched && operation <= DeprecatedOperation.query_transfers_unbatched) ||
  operation === DeprecatedOperation.create_accounts_sparse || operation === DeprecatedOperation.create_transfers_sparse

/** Whether a deprecated `operation` is one plain batch rather than multi-batch framed. */
export const isUnbatched = (operation: number): boolean =>
  operation >= DeprecatedOperation.create_accounts_unbatched && operation <= DeprecatedOperation.query_transfers_unbatched

/** The 0.17 operation the ledger runs for `operation`: itself for 140–147. */
export function currentOperation(operation: number): ClientOperation {
  assert(isDeprecatedExecuted(operation) || (operation >= Operation.lookup_accounts && operation <= Operation.create_transfers),
    () => `operation ${operation} is not executed for clients`)
  const current = isUnbatched(operation)
    ? unbatchedCurrent[operation - DeprecatedOperation.create_accounts_unbatched]!
    : operation === DeprecatedOperation.create_accounts_sparse
      ? Operation.create_accounts
      : operation === DeprecatedOperation.create_transfers_sparse ? Operation.create_transfers : operation as ClientOperation
  assert(current >= Operation.lookup_accounts && current <= Operation.create_transfers, () => `operation ${operation} maps to ${current}`)
  return current
}

const unbatchedCurrent: ReadonlyArray<ClientOperation> = [
  Operation.create_accounts, Operation.create_transfers, Operation.lookup_accounts, Operation.lookup_transfers,
  Operation.get_account_transfers, Operation.get_account_balances, Operation.query_accounts, Operation.query_transfers
]

/** Whether `operation` answers sparse create results (129, 130, 138, 139). */
export const isSparseCreate = (operation: number): boolean =>
  operation === DeprecatedOperation.create_accounts_unbatched || operation === DeprecatedOperation.create_transfers_unbatched ||
  operation === DeprecatedOperation.create_accounts_sparse || operation === DeprecatedOperation.create_transfers_sparse

/**
 * Writes the sparse results of one batch of dense create results into `target` at `offset`;
 * returns how many (one per event whose status is not `created`).
 */
export function sparseFromDense(dense: Uint8Array, target: Uint8Array, offset: number): number {
  assert(dense.length % createResultSize === 0, () => `dense results of ${dense.length} bytes`)
  const events = dense.length / createResultSize
  assert(events <= eventsPerBatchMax && offset + events * sparseResultSize <= target.length, () => `${events} results do not fit`)
  let count = 0
  for (let index = 0; index < events; index++) {
    const result = readU32(dense, index * createResultSize + status)
    if (result === statusCreated) continue
    writeU32(target, offset + count * sparseResultSize, index)
    writeU32(target, offset + count * sparseResultSize + 4, result)
    count++
  }
  assert(count <= events, () => "more sparse results than events")
  return count
}

/** The sparse body of one plain batch of dense create results (129, 130). */
export function sparseBody(dense: Uint8Array): Uint8Array {
  const body = new Uint8Array((dense.length / createResultSize) * sparseResultSize)
  const count = sparseFromDense(dense, body, 0)
  return body.subarray(0, count * sparseResultSize)
}

/**
 * The sparse multi-batch body of a dense multi-batch reply (138, 139): each result batch
 * filtered, the trailer rewritten for 8-byte elements. `decoder` has decoded `dense`.
 */
export function sparseMultiBatch(decoder: MultiBatchDecoder): Uint8Array {
  const batchCount = decoder.batchCount
  assert(batchCount >= 1, () => "a multi-batch reply has at least one batch")
  // A sparse body is never larger than its dense one: half the bytes per element, and a trailer
  // of 8-byte elements is at most 8 bytes longer than one of 16-byte elements for the same count.
  const body = new Uint8Array(decoder.payloadSize / 2 + 2 * batchCount + 2 + sparseResultSize)
  const counts = new Uint16Array(batchCount)
  let offset = 0
  decoder.rewind()
  for (let batch = 0; batch < batchCount; batch++) {
    const results = decoder.next()
    assert(results !== undefined, () => `result batch ${batch} of ${batchCount}`)
    counts[batch] = sparseFromDense(results, body, offset)
    offset += counts[batch]! * sparseResultSize
  }
  const size = writeTrailer(body, offset, counts, batchCount, sparseResultSize)
  return body.subarray(0, size)
}
