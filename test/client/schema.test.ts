/**
 * `trustedRecord` builds the records the Ledger service returns without running the Schema class
 * constructor (src/client/schema.ts). It must build exactly what the constructor builds, for
 * every record class and any valid fields: same prototype, same own properties in the same
 * order, equal under Effect's `Equal`, accepted by the class's own Schema, printed the same.
 */
import { assert, describe, it } from "@effect/vitest"
import { Equal, Schema } from "effect"
import { Account, AccountBalance, CreateAccountResult, createResultMaker, CreateTransferResult, Transfer, trustedRecord } from "../../src/client/schema.ts"

const classes = [Account, Transfer, AccountBalance, CreateAccountResult, CreateTransferResult] as const

describe("trustedRecord", () => {
  for (const recordClass of classes) {
    it.prop(`${recordClass.identifier}: the same instance as the constructor's`, [recordClass as Schema.Schema<object>], ([generated]) => {
      const fields = { ...generated }
      const constructed = new (recordClass as unknown as new (fields: object) => object)(fields)
      const trusted = trustedRecord(recordClass as { prototype: object }, fields)
      assert.strictEqual(Object.getPrototypeOf(trusted), recordClass.prototype)
      assert.deepStrictEqual(Reflect.ownKeys(trusted), Reflect.ownKeys(constructed))
      assert.deepStrictEqual(trusted, constructed)
      assert.isTrue(Equal.equals(trusted, constructed))
      assert.isTrue(Schema.is(recordClass as Schema.Schema<object>)(trusted))
      assert.strictEqual(String(trusted), String(constructed))
    }, { arbitrary: { runs: 50 } })
  }
})

describe("createResultMaker", () => {
  for (const recordClass of [CreateAccountResult, CreateTransferResult] as const) {
    it.prop(`${recordClass.identifier}: the same instance as the constructor's`, [recordClass as Schema.Schema<CreateAccountResult>], ([generated]) => {
      const constructed = new (recordClass as unknown as new (fields: object) => object)({ ...generated })
      const made = createResultMaker(recordClass as typeof CreateAccountResult)(generated.timestamp, generated.status, generated.statusCode)
      assert.strictEqual(Object.getPrototypeOf(made), recordClass.prototype)
      assert.deepStrictEqual(Reflect.ownKeys(made), Reflect.ownKeys(constructed))
      assert.deepStrictEqual(made, constructed)
      assert.isTrue(Equal.equals(made, constructed))
      assert.isTrue(Schema.is(recordClass as Schema.Schema<object>)(made))
      assert.strictEqual(String(made), String(constructed))
    }, { arbitrary: { runs: 50 } })
  }
})
