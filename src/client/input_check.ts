/**
 * The fast path of input validation: a plain loop over field kinds that accepts exactly the
 * well-formed inputs a caller usually sends (every field absent or a valid value) and encodes
 * them as it checks them, so that a record costs a fraction of a microsecond instead of a Schema
 * decode's several.
 *
 * It never decides a rejection. Anything it does not accept goes through the Schema decode
 * (schema.ts), which either accepts it too or produces the error naming the field. The tables
 * below mirror the Schema classes; test/client/input_check.test.ts holds them to agreeing.
 */
import { assert } from "../assert.ts"
import { Slab } from "../slab.ts"
import { AccountLayout, bufferView, TransferLayout, u128Max, u64Max } from "../protocol/records.ts"

export type FieldKind = "u128" | "u64" | "u32" | "u16"

export type FieldKinds = Readonly<Record<string, FieldKind>>

export const accountFieldKinds: FieldKinds = {
  id: "u128", debits_pending: "u128", debits_posted: "u128", credits_pending: "u128", credits_posted: "u128",
  user_data_128: "u128", user_data_64: "u64", user_data_32: "u32", reserved: "u32", ledger: "u32", code: "u16",
  flags: "u16", timestamp: "u64"
}

export const transferFieldKinds: FieldKinds = {
  id: "u128", debit_account_id: "u128", credit_account_id: "u128", amount: "u128", pending_id: "u128",
  user_data_128: "u128", user_data_64: "u64", user_data_32: "u32", timeout: "u32", ledger: "u32", code: "u16",
  flags: "u16", timestamp: "u64"
}

/** Whether `value` is a valid value of `kind`. */
export function validOfKind(value: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case "u128":
      return typeof value === "bigint" && value >= 0n && value <= u128Max
    case "u64":
      return typeof value === "bigint" && value >= 0n && value <= u64Max
    case "u32":
      return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff
    case "u16":
      return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 0xffff
  }
}

/** Where each field of a record lives: its byte offset in the 128-byte wire record, and its kind. */
export interface FieldSlot {
  readonly name: string
  readonly offset: number
  readonly kind: FieldKind
}

export const accountSlots: ReadonlyArray<FieldSlot> = slotsOf(accountFieldKinds, AccountLayout)
export const transferSlots: ReadonlyArray<FieldSlot> = slotsOf(transferFieldKinds, TransferLayout)

/**
 * Checks and encodes in one pass: the batch of `records` as back-to-back `size`-byte wire
 * records, or undefined as soon as one record is not an object, lacks `required`, or has a field
 * that is neither absent (undefined reads as absent, as in the Schema) nor a valid value. Absent
 * fields stay zero. One DataView for the whole batch and no object per record: this is the
 * path every well-formed call takes, so it must cost little more than the copy.
 */
export function encodeChecked(records: ReadonlyArray<unknown>, slots: ReadonlyArray<FieldSlot>, size: number, required: string): Uint8Array | undefined {
  const bytes = bodies.take(records.length * size)
  // Written through one view of the slab, so a small call allocates no view.
  const view = bufferView(bytes)
  const start = bytes.byteOffset
  for (let index = 0; index < records.length; index++) {
    const record = records[index]
    if (typeof record !== "object" || record === null) return undefined
    const fields = record as Record<string, unknown>
    const base = start + index * size
    for (const slot of slots) {
      const value = fields[slot.name]
      if (value === undefined) {
        if (slot.name === required) return undefined
        continue
      }
      if (!writeOfKind(view, base + slot.offset, value, slot.kind)) return undefined
    }
  }
  return bytes
}

/** Whether every id is a u128. */
export function allIdsValid(ids: ReadonlyArray<unknown>): boolean {
  for (const id of ids) if (!validOfKind(id, "u128")) return false
  return true
}

/** One-event bodies under fan-in are many and small: carved out of shared slabs. */
const bodies = new Slab(256 * 1024, 4096)

/** Writes `value` at `offset` if it is a valid value of `kind` (the bytes there are zero), and says whether it was. */
function writeOfKind(view: DataView, offset: number, value: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case "u128":
      if (typeof value !== "bigint" || value < 0n || value > u128Max) return false
      if (value <= u64Max) {
        view.setBigUint64(offset, value, true)
      } else {
        view.setBigUint64(offset, BigInt.asUintN(64, value), true)
        view.setBigUint64(offset + 8, value >> 64n, true)
      }
      return true
    case "u64":
      if (typeof value !== "bigint" || value < 0n || value > u64Max) return false
      view.setBigUint64(offset, value, true)
      return true
    case "u32":
      // `>>> 0` maps exactly the integers 0..2^32-1 to themselves (NaN, fractions and negatives change).
      if (typeof value !== "number" || value >>> 0 !== value) return false
      view.setUint32(offset, value, true)
      return true
    case "u16":
      if (typeof value !== "number" || (value & 0xffff) !== value) return false
      view.setUint16(offset, value, true)
      return true
  }
}

function slotsOf(kinds: FieldKinds, layout: Readonly<Record<string, number>>): ReadonlyArray<FieldSlot> {
  return Object.entries(kinds).map(([name, kind]) => {
    const offset = layout[name]
    assert(offset !== undefined, () => `field ${name} has no offset in the record layout`)
    return { name, offset, kind }
  })
}
