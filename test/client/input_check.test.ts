/**
 * The fast input check (src/client/input_check.ts) must never accept what the Schema classes
 * reject, must accept every well-formed record, and what it accepts must encode to the same
 * bytes as the Schema's decoding of it. Inputs are drawn field by field from values at and
 * beyond each width's bounds, of the wrong type, explicitly undefined, or absent.
 */
import { assert, describe, it } from "@effect/vitest"
import { Exit, Schema } from "effect"
import fc from "fast-check"
import {
  accountFieldKinds, accountSlots, allIdsValid, encodeChecked, transferFieldKinds, transferSlots, type FieldKind, type FieldKinds
} from "../../src/client/input_check.ts"
import { Account, Transfer, U128 } from "../../src/client/schema.ts"
import { encodeAccount, encodeTransfer } from "../../src/protocol/records.ts"

const absent = Symbol("absent")
const valuesOf: Record<FieldKind, ReadonlyArray<unknown>> = {
  u128: [0n, 1n, (1n << 128n) - 1n, 1n << 128n, -1n, 5, "7", undefined, null],
  u64: [0n, (1n << 64n) - 1n, 1n << 64n, -1n, 3, undefined],
  u32: [0, 1, 2 ** 32 - 1, 2 ** 32, -1, 1.5, Number.NaN, 3n, "1", undefined],
  u16: [0, 65535, 65536, -1, 0.5, Number.POSITIVE_INFINITY, 2n, undefined]
}

/** Mostly well-formed fields, so that about half the records are accepted and the rest break one or two fields. */
const recordOf = (kinds: FieldKinds) => fc.record(Object.fromEntries(Object.entries(kinds).map(([name, kind]) =>
  [name, fc.oneof({ arbitrary: fc.constantFrom<unknown>(absent, ...valuesOf[kind].slice(0, 2)), weight: 24 },
    { arbitrary: fc.constantFrom<unknown>(absent, ...valuesOf[kind]), weight: 1 })])))
  .map((fields) => Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== absent)))

const validRecordOf = (kinds: FieldKinds) => fc.record(Object.fromEntries(Object.entries(kinds).map(([name, kind]) =>
  [name, kind === "u128" ? fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }) : kind === "u64" ? fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })
    : fc.integer({ min: 0, max: kind === "u32" ? 2 ** 32 - 1 : 65535 })])))

const cases = [
  { name: "Account", kinds: accountFieldKinds, slots: accountSlots, schema: Account, encode: (v: any) => encodeAccount(v) },
  { name: "Transfer", kinds: transferFieldKinds, slots: transferSlots, schema: Transfer, encode: (v: any) => encodeTransfer(v) }
] as const

describe("fast input check agrees with the Schema classes", () => {
  for (const { name, kinds, slots, schema, encode } of cases) {
    it(`${name}: the field table names exactly the Schema's fields`, () => {
      assert.deepStrictEqual(Object.keys(kinds).sort(), Object.keys(schema.fields).sort())
    })

    it(`${name}: accepted implies decoded by the Schema, and encoded to the bytes of the Schema's decoding`, () => {
      let acceptedCount = 0
      let rejectedCount = 0
      fc.assert(fc.property(recordOf(kinds), (record) => {
        const decoded = Schema.decodeUnknownExit(schema as any)(record)
        const encoded = encodeChecked([record], slots, 128, "id")
        if (encoded !== undefined) acceptedCount++
        else rejectedCount++
        if (encoded !== undefined) {
          assert.isTrue(Exit.isSuccess(decoded), `fast check accepted what the Schema rejects: ${String(Object.entries(record))}`)
          if (Exit.isSuccess(decoded)) assert.deepStrictEqual(encoded, encode(decoded.value))
        }
      }), { numRuns: 2000 })
      assert.isAbove(acceptedCount, 200)
      assert.isAbove(rejectedCount, 200)
    })

    it(`${name}: every well-formed record is accepted`, () => {
      fc.assert(fc.property(validRecordOf(kinds), (record) => {
        assert.isTrue(Exit.isSuccess(Schema.decodeUnknownExit(schema as any)(record)))
        const encoded = encodeChecked([record], slots, 128, "id")
        assert.isDefined(encoded)
        assert.deepStrictEqual(encoded, encode(record))
      }), { numRuns: 300 })
    })
  }

  it("a batch is refused whole when one record is not accepted, and records land at their own offsets", () => {
    const good = { id: 7n, amount: (1n << 100n) + 5n, user_data_128: (1n << 128n) - 1n, ledger: 1, code: 2 }
    assert.isUndefined(encodeChecked([good, { ...good, code: -1 }], transferSlots, 128, "id"))
    assert.isUndefined(encodeChecked([good, null], transferSlots, 128, "id"))
    const two = encodeChecked([good, { ...good, id: 8n }], transferSlots, 128, "id")!
    assert.deepStrictEqual(two.subarray(128), encodeTransfer({ ...Schema.decodeUnknownSync(Transfer)(good), id: 8n }))
  })

  it("ids: accepted exactly when the Schema accepts", () => {
    for (const id of valuesOf.u128) {
      assert.strictEqual(allIdsValid([id]), Exit.isSuccess(Schema.decodeUnknownExit(U128)(id)), String(id))
    }
  })
})
