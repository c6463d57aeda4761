/**
 * A deliberately broken ledger for the simulator's mutant tests: it silently drops the first
 * transfer of some create_transfers batches (those whose first transfer id is a multiple of 5 and
 * not linked) while answering "created" with the timestamp the transfer would have had. The
 * reply to that request is byte-identical to a correct one; only later reads (lookups, queries,
 * balances) or results that depend on the lost transfer can reveal it, and the reference model
 * checker must.
 */
import { createLedger, type Ledger } from "../src/ledger/ledger.ts"
import { Operation, transferSize } from "../src/protocol/operation.ts"
import { created } from "../src/protocol/status.ts"

const resultSize = 16

export function droppingLedger(): Ledger {
  const inner = createLedger()
  return {
    prefetch: (operation, eventCount) => inner.prefetch(operation, eventCount),
    pulse: (timestamp) => inner.pulse(timestamp),
    nextExpiry: () => inner.nextExpiry(),
    verify: () => inner.verify(),
    snapshot: () => inner.snapshot(),
    snapshotStored: () => inner.snapshotStored(),
    restoreRows: (id, words, rowCount, sectionRows) => inner.restoreRows(id, words, rowCount, sectionRows),
    restoreEnd: (timestamp) => inner.restoreEnd(timestamp),
    execute: (operation, events, timestamp) => {
      const n = events.length / transferSize
      if (operation !== Operation.create_transfers || n < 1) return inner.execute(operation, events, timestamp)
      const view = new DataView(events.buffer, events.byteOffset, events.length)
      const linked = (view.getUint16(118, true) & 1) !== 0
      if (linked || view.getUint32(0, true) % 5 !== 0) return inner.execute(operation, events, timestamp)
      // Events 1..n-1 keep their timestamps (slot T - n + i + 1) when executed as a batch of n - 1.
      const rest = inner.execute(operation, events.subarray(transferSize), timestamp)
      const results = new Uint8Array(rest.length + resultSize)
      const out = new DataView(results.buffer)
      out.setBigUint64(0, timestamp - BigInt(n) + 1n, true)
      out.setUint32(8, created, true)
      results.set(rest, resultSize)
      return results
    }
  }
}
