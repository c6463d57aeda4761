/**
 * The ledger: TigerBeetle 0.17's double-entry state machine (spec/state-machine.md), executed
 * deterministically one batch at a time: (operation, batch bytes, batch timestamp) -> reply bytes.
 *
 * Everything per event is plain loops over u32 words of the stored records; Effect appears only
 * in `prefetch`, the asynchronous half of the store interface (see store.ts).
 */
import type { Effect } from "effect"
import { assert } from "../assert.ts"
import { decodeMultiBatch, encodeMultiBatch, MultiBatchDecoder, trailerSize, writeTrailer } from "../protocol/multi_batch.ts"
import { createResultSize, eventsPerBatchMax, eventSize, isQuery, Operation, resultSize, type ClientOperation } from "../protocol/operation.ts"
import { Slab } from "../slab.ts"
import { LedgerContext } from "./context.ts"
import { executeCreateBatch } from "./create_batch.ts"
import { nextExpiry, pulse } from "./expiry.ts"
import { makeMemoryStore, defaultLimits } from "./memory_store.ts"
import { accountTransfers, lookup, query } from "./reads.ts"
import type { LedgerStore, StoreFull } from "./store.ts"
import { add64Small, compare64, hiOf, loOf, sub64Small, timestampHiMax, u64Result } from "./u128.ts"
import { verifyLedger } from "./totals.ts"
import { restoreEnd, restoreRows, type SnapshotSection, type SnapshotSectionId, snapshotSections, snapshotStored } from "./snapshot.ts"

export interface LedgerOptions {
  /** Upper bounds on what the in-memory store holds; a batch that could exceed them is refused. */
  readonly accountsMax?: number
  readonly transfersMax?: number
}

/** The ledger's operations: what an executor of committed ops needs. */
export interface LedgerOperations {
  /**
   * Makes resident what a batch of `eventCount` events of `operation` needs, or fails (store
   * full) before anything changes. Call before `execute`.
   */
  prefetch(operation: ClientOperation, eventCount: number): Effect.Effect<void, StoreFull>
  /**
   * Whether `eventCount` more events of `operation` fit the store, over one batch or several:
   * the primary asks before it prepares a create, counting the creates already prepared, so
   * that no op in the journal can fail to execute for want of room.
   */
  fits(operation: ClientOperation, eventCount: number): boolean
  /**
   * Executes one batch (not multi-batch framed: the events back to back) of `operation` whose
   * batch end timestamp is `timestamp` (spec §6.2: event i of n owns slot T - n + i + 1), and
   * returns the reply body of that batch. Reads ignore `timestamp`. Queries take exactly one
   * filter. The caller validated the body's size (a multiple of the event size, at most 8190
   * events: a deprecated unbatched request holds one more than a multi-batch batch); the ledger
   * asserts it.
   */
  execute(operation: ClientOperation, events: Uint8Array, timestamp: bigint): Uint8Array
  /**
   * Executes a multi-batch body (§4.1): each batch as `execute` would, the batches ending at
   * consecutive timestamps with the last at `timestamp`; returns the multi-batch reply body, one
   * result batch per batch. The body was validated (it decodes, each batch within the limits).
   * Same results and state as `executeBatchesVia(execute)`, without a buffer per batch.
   */
  executeBatches(operation: ClientOperation, body: Uint8Array, timestamp: bigint): Uint8Array
  /** Runs a pulse with request timestamp `timestamp` (spec §10.4); returns how many expired. */
  pulse(timestamp: bigint): number
  /** The earliest `expires_at` of an unresolved pending transfer, or undefined. */
  nextExpiry(): bigint | undefined
  /** Recomputes every invariant from the stored accounts (O(accounts)): for tests and audits. */
  verify(): void
}

/** A ledger whose state a checkpoint can store and restore. */
export interface Ledger extends LedgerOperations {
  /** The state as a checkpoint stores it (snapshot.ts), read in place: valid until the next execute. */
  snapshot(): ReadonlyArray<SnapshotSection>
  /** A checkpoint stored the snapshot: `changedIn` counts from here. */
  snapshotStored(): void
  /** Loads rows of a checkpoint into this ledger before it executes anything (snapshot.ts). */
  restoreRows(id: SnapshotSectionId, words: Uint32Array, rowCount: number, sectionRows: number): void
  /** Ends a restore: checks the invariants; cluster time resumes after `timestamp`, the checkpoint's. */
  restoreEnd(timestamp: bigint): void
}

export function createLedger(options: LedgerOptions = {}): Ledger {
  return ledgerOver(makeMemoryStore({
    accountsMax: options.accountsMax ?? defaultLimits.accountsMax,
    transfersMax: options.transfersMax ?? defaultLimits.transfersMax
  }))
}

/** A ledger over any store implementing the prefetch/execute split. */
export function ledgerOver(store: LedgerStore): Ledger {
  const ctx = new LedgerContext(store)
  // Cluster time consumed so far: every batch's slots and every pulse lie strictly after it.
  let lastHi = 0
  let lastLo = 0
  // A checkpoint is restored into a ledger that has not executed anything yet.
  let restorable = true

  const advance = (startHi: number, startLo: number, endHi: number, endLo: number): void => {
    assert(compare64(startHi, startLo, lastHi, lastLo) > 0, () => "cluster timestamps must strictly increase")
    assert(endHi <= timestampHiMax, () => "timestamp beyond 2^63 - 1")
    lastHi = endHi
    lastLo = endLo
  }

  const executeCreate: ExecuteCreate = (operation, words, evBase, n, endHi, endLo, reply, replyBase) => {
    assert(n <= eventsPerBatchMax, () => `${n} events exceed the batch limit`)
    assert(store.fits(operation, n), () => "execute without a successful prefetch: the store is full")
    sub64Small(endHi, endLo, n)
    add64Small(u64Result[0]!, u64Result[1]!, 1)
    advance(u64Result[0]!, u64Result[1]!, endHi, endLo)
    executeCreateBatch(ctx, operation === Operation.create_accounts ? "accounts" : "transfers", words, evBase, n, endHi, endLo, reply, replyBase)
  }

  const execute = (operation: ClientOperation, events: Uint8Array, timestamp: bigint): Uint8Array => {
    restorable = false
    const size = eventSize(operation)
    assert(events.length % size === 0, () => `body of ${events.length} bytes is not a multiple of ${size}`)
    const n = events.length / size
    assert(n <= eventsPerBatchMax, () => `${n} events exceed the batch limit`)
    assert(!isQuery(operation) || n === 1, () => "a query batch holds exactly one filter")
    assert(store.fits(operation, n), () => "execute without a successful prefetch: the store is full")
    const words = wordsOf(events)
    if (operation !== Operation.create_accounts && operation !== Operation.create_transfers) return executeRead(ctx, operation, words, n)
    const reply = results.take(n * createResultSize)
    executeCreate(operation, words, 0, n, hiOf(timestamp), loOf(timestamp), new Uint32Array(reply.buffer, reply.byteOffset, n * 4), 0)
    return reply
  }

  const decoder = new MultiBatchDecoder()
  const executeBatches = (operation: ClientOperation, body: Uint8Array, timestamp: bigint): Uint8Array => {
    if (operation !== Operation.create_accounts && operation !== Operation.create_transfers) {
      return executeBatchesVia(execute, operation, body, timestamp)
    }
    restorable = false
    return executeCreateBatches(decoder, operation, body, timestamp, executeCreate)
  }

  return {
    prefetch: store.prefetch,
    fits: store.fits,
    execute,
    executeBatches,
    pulse: (timestamp) => {
      restorable = false
      const hi = hiOf(timestamp)
      const lo = loOf(timestamp)
      advance(hi, lo, hi, lo)
      return pulse(ctx, hi, lo)
    },
    nextExpiry: () => nextExpiry(ctx),
    verify: () => verifyLedger(store, ctx.totals),
    snapshot: () => snapshotSections(store),
    snapshotStored: () => snapshotStored(store),
    restoreRows: (id, words, rowCount, sectionRows) => {
      assert(restorable, () => "a checkpoint is restored only into a ledger that has executed nothing")
      restoreRows(ctx, id, words, rowCount, sectionRows)
    },
    restoreEnd: (timestamp) => {
      assert(restorable, () => "a checkpoint is restored only into a ledger that has executed nothing")
      restoreEnd(ctx)
      lastHi = hiOf(timestamp)
      lastLo = loOf(timestamp)
      restorable = false
    }
  }
}

/**
 * A multi-batch body executed batch by batch through `execute` (state-machine.md §4.1): batches
 * end at consecutive timestamps, the last at `timestamp`; the reply holds one result batch per
 * batch. The reference for `Ledger.executeBatches`, and how ledgers that wrap `execute` run one.
 */
export function executeBatchesVia(execute: LedgerOperations["execute"], operation: ClientOperation, body: Uint8Array, timestamp: bigint): Uint8Array {
  const batches = decodeMultiBatch(body, eventSize(operation))
  assert(Array.isArray(batches), () => "a multi-batch body that does not decode")
  const creates = operation === Operation.create_accounts || operation === Operation.create_transfers
  const delta = (batch: Uint8Array) => (creates ? batch.length / eventSize(operation) : 0)
  let end = timestamp - BigInt(batches.reduce((sum, batch) => sum + delta(batch), 0))
  const results: Array<Uint8Array> = []
  for (const batch of batches) {
    end += BigInt(delta(batch))
    results.push(execute(operation, batch, end))
  }
  return encodeMultiBatch(results, resultSize(operation))
}

/** The operations that create (the rest read). */
type CreateOperation = typeof Operation.create_accounts | typeof Operation.create_transfers

/** One create batch of `n` events at `words[evBase ..]` ending at (endHi, endLo), results into `reply[replyBase ..]`. */
type ExecuteCreate = (operation: CreateOperation, words: Uint32Array, evBase: number, n: number, endHi: number, endLo: number,
  reply: Uint32Array, replyBase: number) => void

/**
 * `Ledger.executeBatches` for creates, which run in place: one view of the body, one reply
 * buffer, timestamps as u32 pairs. Under fan-in a request holds thousands of one-event batches,
 * and a buffer and BigInt arithmetic per batch cost as much as executing its event. Reads take
 * the general path (`executeBatchesVia`).
 */
function executeCreateBatches(decoder: MultiBatchDecoder, operation: CreateOperation, body: Uint8Array, timestamp: bigint,
  executeCreate: ExecuteCreate): Uint8Array {
  const size = eventSize(operation)
  assert(decoder.decode(body, size) === undefined, () => "a multi-batch body that does not decode")
  const batchCount = decoder.batchCount
  const eventCount = decoder.payloadSize / size
  const words = wordsOf(body.subarray(0, decoder.payloadSize))
  const reply = new Uint8Array(eventCount * createResultSize + trailerSize(createResultSize, batchCount))
  const replyWords = new Uint32Array(reply.buffer, 0, eventCount * 4)
  const counts = new Uint16Array(batchCount)
  // Batch i ends where the events before it, and its own, take the slots after T - eventCount.
  sub64Small(hiOf(timestamp), loOf(timestamp), eventCount)
  let endHi = u64Result[0]!
  let endLo = u64Result[1]!
  let event = 0
  for (let batch = 0; batch < batchCount; batch++) {
    const n = decoder.elementCount(batch)
    add64Small(endHi, endLo, n)
    endHi = u64Result[0]!
    endLo = u64Result[1]!
    executeCreate(operation, words, event * (size / 4), n, endHi, endLo, replyWords, event * (createResultSize / 4))
    counts[batch] = n
    event += n
  }
  assert(event === eventCount && endHi === hiOf(timestamp) && endLo === loOf(timestamp), () => "the batches end at the request's timestamp")
  writeTrailer(reply, eventCount * createResultSize, counts, batchCount, createResultSize)
  return reply
}

/** A read: lookups of `n` ids, or one filter (the others), at `words`. */
function executeRead(ctx: LedgerContext, operation: Exclude<ClientOperation, CreateOperation>, words: Uint32Array, n: number): Uint8Array {
  const store = ctx.store
  switch (operation) {
    case Operation.lookup_accounts:
      return lookup(store.accounts, store.accountIds, words, n)
    case Operation.lookup_transfers:
      return lookup(store.transfers, store.transferIds, words, n)
    case Operation.get_account_transfers:
      return accountTransfers(ctx, words, false)
    case Operation.get_account_balances:
      return accountTransfers(ctx, words, true)
    case Operation.query_accounts:
      return query(store.accounts, words)
    case Operation.query_transfers:
      return query(store.transfers, words)
  }
}

/**
 * Results of `execute`'s creates: the in-memory layer under fan-in, and the batch-by-batch path,
 * make one small result buffer per batch; carved from slabs, they cost a view each. The slabs
 * are small because a caller that keeps a result keeps its slab.
 */
const results = new Slab(64 * 1024, 4096)

/** A u32 view of a batch body, copied only when the body is not 4-byte aligned. */
function wordsOf(events: Uint8Array): Uint32Array {
  if (events.byteOffset % 4 === 0) return new Uint32Array(events.buffer, events.byteOffset, events.length / 4)
  return new Uint32Array(events.slice().buffer)
}
