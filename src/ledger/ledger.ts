/**
 * The ledger: TigerBeetle 0.17's double-entry state machine (spec/state-machine.md), executed
 * deterministically one batch at a time: (operation, batch bytes, batch timestamp) -> reply bytes.
 *
 * Everything per event is plain loops over u32 words of the stored records; Effect appears only
 * in `prefetch`, the asynchronous half of the store interface (see store.ts).
 */
import type { Effect } from "effect"
import { assert } from "../assert.ts"
import { batchEventsMax, eventSize, isQuery, Operation, type ClientOperation } from "../protocol/operation.ts"
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
   * Executes one batch (not multi-batch framed: the events back to back) of `operation` whose
   * batch end timestamp is `timestamp` (spec §6.2: event i of n owns slot T - n + i + 1), and
   * returns the reply body of that batch. Reads ignore `timestamp`. Queries take exactly one
   * filter. The caller validated the body's size (a multiple of the event size, at most 8189
   * events); the ledger asserts it.
   */
  execute(operation: ClientOperation, events: Uint8Array, timestamp: bigint): Uint8Array
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

  const execute = (operation: ClientOperation, events: Uint8Array, timestamp: bigint): Uint8Array => {
    restorable = false
    const size = eventSize(operation)
    assert(events.length % size === 0, () => `body of ${events.length} bytes is not a multiple of ${size}`)
    const n = events.length / size
    assert(n <= batchEventsMax, () => `${n} events exceed the batch limit`)
    assert(!isQuery(operation) || n === 1, () => "a query batch holds exactly one filter")
    assert(store.fits(operation, n), () => "execute without a successful prefetch: the store is full")
    const words = wordsOf(events)
    switch (operation) {
      case Operation.create_accounts:
      case Operation.create_transfers: {
        const endHi = hiOf(timestamp)
        const endLo = loOf(timestamp)
        sub64Small(endHi, endLo, n)
        add64Small(u64Result[0]!, u64Result[1]!, 1)
        advance(u64Result[0]!, u64Result[1]!, endHi, endLo)
        const reply = new Uint32Array(n * 4)
        executeCreateBatch(ctx, operation === Operation.create_accounts ? "accounts" : "transfers", words, n, endHi, endLo, reply)
        return new Uint8Array(reply.buffer)
      }
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

  return {
    prefetch: store.prefetch,
    execute,
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

/** A u32 view of a batch body, copied only when the body is not 4-byte aligned. */
function wordsOf(events: Uint8Array): Uint32Array {
  if (events.byteOffset % 4 === 0) return new Uint32Array(events.buffer, events.byteOffset, events.length / 4)
  return new Uint32Array(events.slice().buffer)
}
