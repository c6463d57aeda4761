/**
 * Ledgers for the simulator: the verifying ledger every run uses, and deliberately broken ones
 * for the mutant tests, each of which some checker must catch.
 *
 * - `verifyingLedger`: the real ledger, with every invariant recomputed from the accounts after
 *   every request and pulse (`Ledger.verify`, O(accounts): the simulator's ledgers are small). A
 *   broken invariant stops the replica with a message naming it (`ledger_invariants`).
 * - `droppingLedger`: silently drops the first transfer of some create_transfers batches (first
 *   id a multiple of 5, not linked) while answering "created" with the timestamp it would have
 *   had. Its reply is byte-identical to a correct one; only later reads can reveal the loss, and
 *   the reference-model checker must.
 * - `driftingLedger`: after some batches, adds 1 to an account's credits_posted behind the
 *   running totals' back, a corruption that no reply shows at once; the verifying wrapper must.
 * - `rewritingLedger`: after restoring a checkpoint's rows, reports every snapshot block as changed, so checkpoints
 *   rewrite blocks a replica that never restarted carries over: same data at other addresses, the
 *   nondeterminism the storage checker must catch.
 */
import { Cause } from "effect"
import { createLedger, executeBatchesVia, type Ledger, ledgerOver } from "../src/ledger/ledger.ts"
import { makeMemoryStore } from "../src/ledger/memory_store.ts"
import { AccountWord } from "../src/ledger/store.ts"
import { Operation, transferSize } from "../src/protocol/operation.ts"
import { created } from "../src/protocol/status.ts"

const resultSize = 16

/** Thrown by the verifying ledger: a replica that stops with it as its defect broke a ledger invariant. */
export class LedgerInvariantBroken extends Error {
  constructor(detail: string) {
    super(`ledger invariant broken: ${detail}`)
    this.name = "LedgerInvariantBroken"
  }
}

/** Whether a replica's stop was the verifying ledger's (simulation's `ledger_invariants`). */
export const isLedgerInvariantBroken = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((reason) => Cause.isDieReason(reason) && reason.defect instanceof LedgerInvariantBroken)

export function verifyingLedger(inner: Ledger): Ledger {
  const verified = <A>(value: A): A => {
    try {
      inner.verify()
    } catch (error) {
      throw new LedgerInvariantBroken(error instanceof Error ? error.message : String(error))
    }
    return value
  }
  return {
    ...forward(inner),
    execute: (operation, events, timestamp) => verified(inner.execute(operation, events, timestamp)),
    // The real multi-batch path, so that simulation covers it; invariants are checked per request.
    executeBatches: (operation, body, timestamp) => verified(inner.executeBatches(operation, body, timestamp)),
    pulse: (t) => verified(inner.pulse(t))
  }
}

export function droppingLedger(): Ledger {
  const inner = createLedger()
  return {
    ...forward(inner),
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

export function driftingLedger(): Ledger {
  const store = makeMemoryStore()
  const inner = ledgerOver(store)
  let batches = 0
  return {
    ...forward(inner),
    execute: (operation, events, timestamp) => {
      const reply = inner.execute(operation, events, timestamp)
      if (operation === Operation.create_transfers && ++batches % 7 === 0 && store.accounts.count > 0) {
        const array = store.accounts.array(0)
        array[store.accounts.offset(0) + AccountWord.credits_posted] = array[store.accounts.offset(0) + AccountWord.credits_posted]! + 1
      }
      return reply
    }
  }
}

export function rewritingLedger(): Ledger {
  const inner = createLedger()
  let restored = false
  return {
    ...forward(inner),
    restoreRows: (id, words, rowCount, sectionRows) => {
      restored = true
      inner.restoreRows(id, words, rowCount, sectionRows)
    },
    snapshot: () => inner.snapshot().map((section) => (restored ? { ...section, changedIn: () => true, copyRows: section.copyRows } : section))
  }
}

/**
 * `inner`'s methods, to spread into a mutant. A request's batches go through the `execute` of the
 * object the method is called on, so a mutant that replaces `execute` sees every batch.
 */
function forward(inner: Ledger): Ledger {
  return {
    prefetch: (operation, eventCount) => inner.prefetch(operation, eventCount),
    fits: (operation, eventCount) => inner.fits(operation, eventCount),
    execute: (operation, events, timestamp) => inner.execute(operation, events, timestamp),
    executeBatches(operation, body, timestamp) {
      return executeBatchesVia((o, events, t) => this.execute(o, events, t), operation, body, timestamp)
    },
    pulse: (timestamp) => inner.pulse(timestamp),
    nextExpiry: () => inner.nextExpiry(),
    verify: () => inner.verify(),
    snapshot: () => inner.snapshot(),
    snapshotStored: () => inner.snapshotStored(),
    restoreRows: (id, words, rowCount, sectionRows) => inner.restoreRows(id, words, rowCount, sectionRows),
    restoreEnd: (timestamp) => inner.restoreEnd(timestamp)
  }
}
