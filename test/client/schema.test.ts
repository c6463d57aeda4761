/**
 * `trustedRecord` builds the records the Ledger service returns without running the Schema class
 * constructor (src/client/schema.ts). It must build exactly what the constructor builds, for
 * every record class and any valid fields: same prototype, same own properties in the same
 * order, equal under Effect's `Equal`, accepted by the class's own Schema, printed the same.
 * `createResultMaker` must do the same for the two create result classes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Equal, Schema } from "effect"
import { Account, AccountBalance, CreateAccountResult, createResultMaker, CreateTransferResult, Transfer, trustedRecord } from "../../src/client/schema.ts"

const classes = [Account, Transfer, AccountBalance, CreateAccountResult, CreateTransferResult] as const

/** `built` is the instance the class constructor builds from `fields`. */
function assertConstructorsInstance(recordClass: { readonly prototype: object }, fields: object, built: object): void {
  const constructed = new (recordClass as unknown as new (fields: object) => object)({ ...fields })
  assert.strictEqual(Object.getPrototypeOf(built), recordClass.prototype)
  assert.deepStrictEqual(Reflect.ownKeys(built), Reflect.ownKeys(constructed))
  assert.deepStrictEqual(built, constructed)
  assert.isTrue(Equal.equals(built, constructed))
  assert.isTrue(Schema.is(recordClass as unknown as Schema.Schema<object>)(built))
  assert.strictEqual(String(built), String(constructed))
}

describe("trustedRecord", () => {
  for (const recordClass of classes) {
    it.prop(`${recordClass.identifier}: the same instance as the constructor's`, [recordClass as Schema.Schema<object>], ([generated]) => {
      const fields = { ...generated }
      assertConstructorsInstance(recordClass, fields, trustedRecord(recordClass as { prototype: object }, fields))
    }, { arbitrary: { runs: 50 } })
  }
})

describe("createResultMaker", () => {
  for (const recordClass of [CreateAccountResult, CreateTransferResult] as const) {
    it.prop(`${recordClass.identifier}: the same instance as the constructor's`, [recordClass as Schema.Schema<CreateAccountResult>], ([generated]) => {
      const made = createResultMaker(recordClass as typeof CreateAccountResult)(generated.timestamp, generated.status, generated.statusCode)
      assertConstructorsInstance(recordClass, generated, made)
    }, { arbitrary: { runs: 50 } })
  }
})
