/**
 * The batch loop shared by create_accounts and create_transfers (spec/state-machine.md §6.2, §7,
 * §7.1, §11): event timestamps, linked chains with rollback, the imported-batch rule and the
 * timestamp checks that come before any per-kind validation. Results are the dense 0.17 format:
 * one 16-byte {timestamp, status, reserved} per event.
 */
import { assert } from "../assert.ts"
import { createResultSize } from "../protocol/operation.ts"
import { AccountFlags, TransferFlags } from "../protocol/records.ts"
import { created, CreateAccountStatus, CreateTransferStatus, isTransientTransferStatus } from "../protocol/status.ts"
import type { LedgerContext } from "./context.ts"
import { createAccount } from "./create_accounts.ts"
import { createTransfer } from "./create_transfers.ts"
import { recordOrphan } from "./store.ts"
import { compare64, add64Small, sub64Small, timestampHiMax, u64Result } from "./u128.ts"

const recordWords = 32
// `linked` is bit 0 for both kinds; `imported` is not (account bit 4, transfer bit 8).
const linked = AccountFlags.linked
assert(linked === TransferFlags.linked, () => "linked must be bit 0 for both kinds")

export type Kind = "accounts" | "transfers"

/**
 * Executes one create batch of `n` events at `ev[evBase ..]` whose batch end timestamp is
 * (endHi, endLo), writing n results into `reply[replyBase ..]` (u32 words). The bases let the
 * batches of a multi-batch body run in place, over one view of the body and one of the reply.
 */
export function executeCreateBatch(
  ctx: LedgerContext, kind: Kind, ev: Uint32Array, evBase: number, n: number, endHi: number, endLo: number, reply: Uint32Array, replyBase: number
): void {
  assert(evBase >= 0 && ev.length >= evBase + n * recordWords && replyBase >= 0 && reply.length >= replyBase + (n * createResultSize) / 4,
    () => "batch buffers too small")
  assert(!ctx.scope.active, () => "a chain scope leaked from an earlier batch")
  const transfers = kind === "transfers"
  const status = transfers ? CreateTransferStatus : CreateAccountStatus
  const importedFlag = transfers ? TransferFlags.imported : AccountFlags.imported
  const create = transfers ? createTransfer : createAccount
  // Slots are T - n + 1 .. T: base = T - n, slot(i) = base + i + 1.
  sub64Small(endHi, endLo, n)
  const baseHi = u64Result[0]!
  const baseLo = u64Result[1]!
  const batchImported = n > 0 && ((ev[evBase + 29]! >>> 16) & importedFlag) !== 0
  let chainStart = -1
  let broken = false

  for (let i = 0; i < n; i++) {
    const e = evBase + i * recordWords
    add64Small(baseHi, baseLo, i + 1)
    const slotHi = u64Result[0]!
    const slotLo = u64Result[1]!
    const flags = ev[e + 29]! >>> 16
    const isLinked = (flags & linked) !== 0
    const imported = (flags & importedFlag) !== 0
    if (isLinked && chainStart < 0) {
      chainStart = i
      broken = false
      ctx.scope.begin()
    }
    let result: number
    let resultHi = slotHi
    let resultLo = slotLo
    if (isLinked && i === n - 1) {
      result = status.linked_event_chain_open
    } else if (broken) {
      result = status.linked_event_failed
    } else if (imported !== batchImported) {
      result = imported ? status.imported_event_not_expected : status.imported_event_expected
    } else if (imported) {
      const hi = ev[e + 31]!
      const lo = ev[e + 30]!
      if ((hi === 0 && lo === 0) || hi > timestampHiMax) {
        result = status.imported_event_timestamp_out_of_range
      } else if (compare64(hi, lo, endHi, endLo) >= 0 || compare64(hi, lo, slotHi, slotLo) > 0) {
        // At or past the batch end, or inside the batch's own slot window (where 0.17 has no
        // defined result and asserts): the event would claim a timestamp the cluster hands out.
        result = status.imported_event_timestamp_must_not_advance
      } else {
        result = create(ctx, ev, e, slotHi, slotLo)
      }
    } else if (ev[e + 30] !== 0 || ev[e + 31] !== 0) {
      result = status.timestamp_must_be_zero
    } else {
      result = create(ctx, ev, e, slotHi, slotLo)
    }
    // Only `created` and `exists` report the object's timestamp; every other status, including
    // the exists_with_different_* family, reports the slot (§6.3).
    if (result === created || result === status.exists) {
      resultHi = ctx.resultHi
      resultLo = ctx.resultLo
    }

    if (result !== created) {
      if (chainStart >= 0 && !broken) {
        broken = true
        ctx.scope.rollback()
        for (let j = chainStart; j < i; j++) reply[replyBase + j * 4 + 2] = status.linked_event_failed
      }
      if (transfers && isTransientTransferStatus(result)) recordOrphan(ctx.store, ev, e)
    }
    const r = replyBase + i * 4
    reply[r] = resultLo
    reply[r + 1] = resultHi
    reply[r + 2] = result
    reply[r + 3] = 0
    if (chainStart >= 0 && (!isLinked || result === status.linked_event_chain_open)) {
      if (!broken) ctx.scope.commit()
      chainStart = -1
      broken = false
    }
  }
  assert(!ctx.scope.active, () => "a chain scope outlived its batch")
  ctx.totals.assertBalanced()
}
