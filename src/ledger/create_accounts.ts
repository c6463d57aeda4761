/**
 * create_accounts, per event (spec/state-machine.md §8): validation in the spec's order of
 * precedence, the idempotency comparison of §13.1, then storage. The batch loop (linked chains,
 * imported batches, event timestamps) is in `create_batch.ts`.
 */
import { assert } from "../assert.ts"
import { CreateAccountStatus as Status } from "../protocol/status.ts"
import { AccountFlags, accountFlagsPadding } from "../protocol/records.ts"
import { hasTimestamp, notAfterNewest, rowTimestampHi, rowTimestampLo, type LedgerContext } from "./context.ts"
import { copyWords } from "./record_table.ts"
import { AccountWord as W } from "./store.ts"
import { equal128, equal64, isMax128, isZero128 } from "./u128.ts"

const limitFlags = AccountFlags.debits_must_not_exceed_credits | AccountFlags.credits_must_not_exceed_debits

/**
 * Creates the account at `ev[e..e+31]` whose slot timestamp is (slotHi, slotLo); the batch loop
 * already checked the linked, imported and timestamp rules. Returns its status; for `created` and
 * the `exists` family, `ctx.result*` holds the stored object's timestamp.
 */
export function createAccount(ctx: LedgerContext, ev: Uint32Array, e: number, slotHi: number, slotLo: number): number {
  const { accounts, accountIds, transfers } = ctx.store
  const codeFlags = ev[e + W.code_flags]!
  const flags = codeFlags >>> 16
  if (ev[e + W.reserved] !== 0) return Status.reserved_field
  if ((flags & accountFlagsPadding) !== 0) return Status.reserved_flag
  if (isZero128(ev, e + W.id)) return Status.id_must_not_be_zero
  if (isMax128(ev, e + W.id)) return Status.id_must_not_be_int_max

  const existing = accountIds.find(ev, e + W.id)
  if (existing >= 0) {
    ctx.resultHi = rowTimestampHi(accounts, existing)
    ctx.resultLo = rowTimestampLo(accounts, existing)
    return compareExisting(accounts.array(existing), accounts.offset(existing), ev, e)
  }

  if ((flags & limitFlags) === limitFlags) return Status.flags_are_mutually_exclusive
  if (!isZero128(ev, e + W.debits_pending)) return Status.debits_pending_must_be_zero
  if (!isZero128(ev, e + W.debits_posted)) return Status.debits_posted_must_be_zero
  if (!isZero128(ev, e + W.credits_pending)) return Status.credits_pending_must_be_zero
  if (!isZero128(ev, e + W.credits_posted)) return Status.credits_posted_must_be_zero
  if (ev[e + W.ledger] === 0) return Status.ledger_must_not_be_zero
  if ((codeFlags & 0xffff) === 0) return Status.code_must_not_be_zero

  let timestampHi = slotHi
  let timestampLo = slotLo
  if ((flags & AccountFlags.imported) !== 0) {
    timestampHi = ev[e + W.timestamp_hi]!
    timestampLo = ev[e + W.timestamp_lo]!
    if (notAfterNewest(accounts, timestampHi, timestampLo) || hasTimestamp(transfers, timestampHi, timestampLo)) {
      return Status.imported_event_timestamp_must_not_regress
    }
  }

  assert(!notAfterNewest(accounts, timestampHi, timestampLo), () => "account timestamps must increase")
  const row = accounts.append()
  const array = accounts.array(row)
  const offset = accounts.offset(row)
  copyWords(array, offset, ev, e, 32)
  array[offset + W.timestamp_hi] = timestampHi
  array[offset + W.timestamp_lo] = timestampLo
  accountIds.insert(array, offset + W.id, row)
  ctx.resultHi = timestampHi
  ctx.resultLo = timestampLo
  return Status.created
}

/** §13.1: the first field that differs from the stored account, or `exists`. */
function compareExisting(a: Uint32Array, o: number, ev: Uint32Array, e: number): number {
  if ((a[o + W.code_flags]! >>> 16) !== (ev[e + W.code_flags]! >>> 16)) return Status.exists_with_different_flags
  if (!equal128(a, o + W.user_data_128, ev, e + W.user_data_128)) return Status.exists_with_different_user_data_128
  if (!equal64(a, o + W.user_data_64, ev, e + W.user_data_64)) return Status.exists_with_different_user_data_64
  if (a[o + W.user_data_32] !== ev[e + W.user_data_32]) return Status.exists_with_different_user_data_32
  if (a[o + W.ledger] !== ev[e + W.ledger]) return Status.exists_with_different_ledger
  if ((a[o + W.code_flags]! & 0xffff) !== (ev[e + W.code_flags]! & 0xffff)) return Status.exists_with_different_code
  return Status.exists
}
