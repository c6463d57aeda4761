/**
 * Request bodies as the primary judges them (wire-protocol.md §10.1, §10.3, §12.2): the size
 * limits of the spec's table, every captured request accepted, each malformed shape rejected
 * with the right reason, the eviction checks in TigerBeetle's order, and the register bodies of
 * the vectors reproduced.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import {
  eventMax, isKnownOperation, requestBodyInvalid, requestEvictionReason, resultMax
} from "../../src/protocol/body.ts"
import { buildMessage } from "../../src/protocol/build.ts"
import {
  Command, EvictionReason, headerSize, releaseClientMin, releaseScarab, type RequestHeader, VsrOperation, zeroHeader
} from "../../src/protocol/header.ts"
import { DeprecatedOperation } from "../../src/protocol/deprecated.ts"
import { encodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { Operation } from "../../src/protocol/operation.ts"
import { accountFilter, encodeAccountFilter, encodeQueryFilter, queryFilter } from "../../src/protocol/records.ts"
import {
  batchSizeLimitMax, batchSizeLimitMin, registerRequestBatchSizeLimit, registerResultBatchSizeLimit, registerResultBody,
  setRegisterRequestBatchSizeLimit
} from "../../src/protocol/register.ts"
import { loadWireVectors } from "./wire_vectors.ts"

const vectors = loadWireVectors()
const limits = { release: releaseScarab, releaseClientMin, batchSizeLimit: batchSizeLimitMax }

const request = (operation: number, body: Uint8Array, fields: Partial<RequestHeader> = {}): Uint8Array =>
  buildMessage({ ...zeroHeader(Command.request), cluster: 1n, release: releaseScarab, client: 9n, session: 1n, request: 1, operation, ...fields }, body)

describe("body: limits of §10.3", () => {
  it("matches the spec's table for both request budgets", () => {
    const O = Operation
    const D = DeprecatedOperation
    const table: Array<[number, number, number, number]> = [
      // operation, events per batch at B = 1 048 320, at B = 3 840, results per batch
      [O.create_accounts, 8189, 29, 8189],
      [O.create_transfers, 8189, 29, 8189],
      [O.lookup_accounts, 8189, 239, 8189],
      [O.lookup_transfers, 8189, 239, 8189],
      [D.create_accounts_sparse, 8189, 29, 8189],
      [D.create_accounts_unbatched, 8190, 30, 8190],
      [D.lookup_accounts_unbatched, 8190, 240, 8190]
    ]
    for (const [operation, large, small, results] of table) {
      assert.deepStrictEqual([eventMax(operation, batchSizeLimitMax), eventMax(operation, batchSizeLimitMin), resultMax(operation)], [large, small, results], String(operation))
    }
    for (const operation of [O.get_account_transfers, O.get_account_balances, O.query_accounts, O.query_transfers]) assert.strictEqual(resultMax(operation), 8189)
    assert.strictEqual(resultMax(D.get_change_events), 2730)
    assert.strictEqual(resultMax(D.query_accounts_unbatched), 8190)
  })

  it("knows the operations TigerBeetle knows", () => {
    for (let operation = 0; operation < 256; operation++) {
      assert.strictEqual(isKnownOperation(operation), operation <= 6 || (operation >= 128 && operation <= 147), String(operation))
    }
  })
})

describe("body: validation", () => {
  it("accepts every captured request", () => {
    for (const { file, bytes } of vectors.filter((v) => v.header.command === String(Command.request))) {
      assert.isUndefined(requestEvictionReason(bytes, limits), file)
      assert.isUndefined(requestEvictionReason(bytes, { ...limits, batchSizeLimit: batchSizeLimitMin }), file)
    }
  })

  it("rejects each malformed shape with its reason", () => {
    const B = batchSizeLimitMax
    const filters = (count: number, limit = 10) => encodeMultiBatch([new Uint8Array(count * 128).map((_, i) => (i % 128 === 120 ? limit : 0))], 128)
    assert.strictEqual(requestBodyInvalid(Operation.get_account_transfers, filters(0), B), "batch_not_one_filter")
    assert.strictEqual(requestBodyInvalid(Operation.get_account_transfers, filters(2), B), "batch_not_one_filter")
    assert.isUndefined(requestBodyInvalid(Operation.get_account_transfers, filters(1), B))
    assert.strictEqual(requestBodyInvalid(Operation.create_accounts, new Uint8Array(128), B), "multi_batch_invalid")
    assert.strictEqual(requestBodyInvalid(Operation.lookup_accounts, encodeMultiBatch([new Uint8Array(8190 * 16)], 16), B), "batch_too_many_events")
    assert.isUndefined(requestBodyInvalid(Operation.lookup_accounts, encodeMultiBatch([new Uint8Array(8189 * 16)], 16), B))
    assert.strictEqual(requestBodyInvalid(DeprecatedOperation.lookup_accounts_unbatched, new Uint8Array(17), B), "batch_not_whole_events")
    assert.strictEqual(requestBodyInvalid(Operation.pulse, new Uint8Array(1), B), "pulse_body_not_empty")
    assert.isUndefined(requestBodyInvalid(Operation.pulse, new Uint8Array(0), B))
    assert.isUndefined(requestBodyInvalid(Operation.create_accounts, encodeMultiBatch([new Uint8Array(0)], 128), B))
  })

  it("rejects a request whose worst-case reply would not fit 1 MiB", () => {
    const B = batchSizeLimitMax
    const lookups = encodeMultiBatch([new Uint8Array(8189 * 16), new Uint8Array(16)], 16)
    assert.strictEqual(requestBodyInvalid(Operation.lookup_accounts, lookups, B), "reply_too_large")
    const filter = encodeQueryFilter(queryFilter({ limit: 8189 }))
    assert.isUndefined(requestBodyInvalid(Operation.query_accounts, encodeMultiBatch([filter], 64), B))
    assert.strictEqual(requestBodyInvalid(Operation.query_accounts, encodeMultiBatch([filter, filter], 64), B), "reply_too_large")
    // A limit beyond result_max counts as result_max (pre-0.17 clients capped it silently).
    const huge = encodeAccountFilter(accountFilter({ account_id: 1n, limit: 0xffff_ffff }))
    assert.isUndefined(requestBodyInvalid(Operation.get_account_balances, encodeMultiBatch([huge], 128), B))
  })

  it("arbitrary bodies never throw", () => {
    fc.assert(
      fc.property(fc.integer({ min: 128, max: 147 }), fc.uint8Array({ maxLength: 1200 }), (operation, body) => {
        const invalid = requestBodyInvalid(operation, body, batchSizeLimitMax)
        assert.isTrue(invalid === undefined || typeof invalid === "string")
      }),
      { numRuns: 1000 }
    )
  })
})

describe("body: the primary's eviction checks (§12.2 items 3–8, in order)", () => {
  const accounts = (count: number) => encodeMultiBatch([new Uint8Array(count * 128)], 128)

  it("evicts with the reason TigerBeetle gives", () => {
    const small = { ...limits, batchSizeLimit: batchSizeLimitMin }
    assert.strictEqual(requestEvictionReason(request(146, accounts(1), { release: releaseClientMin - 1 }), limits), EvictionReason.client_release_too_low)
    assert.isUndefined(requestEvictionReason(request(146, accounts(1), { release: releaseClientMin }), limits))
    assert.strictEqual(requestEvictionReason(request(146, accounts(1), { release: releaseScarab + 1 }), limits), EvictionReason.client_release_too_high)
    assert.isUndefined(requestEvictionReason(request(146, accounts(29)), small))
    assert.strictEqual(requestEvictionReason(request(146, accounts(30)), small), EvictionReason.invalid_request_body_size)
    assert.strictEqual(requestEvictionReason(request(148, new Uint8Array(0)), limits), EvictionReason.invalid_request_operation)
    assert.strictEqual(requestEvictionReason(request(146, new Uint8Array(128)), limits), EvictionReason.invalid_request_body)
    const bodyless = request(VsrOperation.register, new Uint8Array(0), { session: 0n, request: 0 })
    assert.strictEqual(requestEvictionReason(bodyless, limits), EvictionReason.invalid_request_body_size)
    // Release comes first: an old client without a register body hears that it is too old.
    assert.strictEqual(requestEvictionReason(request(VsrOperation.register, new Uint8Array(0), { release: 1, session: 0n, request: 0 }), limits), EvictionReason.client_release_too_low)
  })

  it("evicts every operation a client may not send, whatever its body, so none reaches the journal", () => {
    const refused = [VsrOperation.reconfigure, VsrOperation.pulse, VsrOperation.upgrade, VsrOperation.noop, Operation.pulse, DeprecatedOperation.get_change_events]
    for (const operation of refused) {
      for (const body of [new Uint8Array(0), new Uint8Array(64), accounts(1)]) {
        assert.strictEqual(requestEvictionReason(request(operation, body), limits), EvictionReason.invalid_request_operation, String(operation))
      }
    }
    for (let operation = 148; operation < 256; operation++) {
      assert.strictEqual(requestEvictionReason(request(operation, new Uint8Array(0)), limits), EvictionReason.invalid_request_operation)
    }
    // The operations a client may send pass this check (with a valid body).
    assert.isUndefined(requestEvictionReason(request(DeprecatedOperation.create_accounts_unbatched, new Uint8Array(8190 * 128)), limits))
    assert.isUndefined(requestEvictionReason(request(DeprecatedOperation.create_transfers_sparse, accounts(3)), limits))
    assert.isUndefined(requestEvictionReason(request(DeprecatedOperation.lookup_transfers_unbatched, new Uint8Array(32)), limits))
  })
})

describe("register bodies (§10.1)", () => {
  const body = (suffix: string) => vectors.find((v) => v.file.endsWith(suffix))!.bytes.subarray(headerSize)

  it("reads and reproduces the vectors' bodies", () => {
    for (const vector of vectors) {
      if (vector.registerRequestBatchSizeLimit !== undefined) {
        assert.strictEqual(registerRequestBatchSizeLimit(vector.bytes.subarray(headerSize)), vector.registerRequestBatchSizeLimit, vector.file)
      }
      if (vector.registerResultBatchSizeLimit !== undefined) {
        const result = vector.bytes.subarray(headerSize)
        assert.strictEqual(registerResultBatchSizeLimit(result), vector.registerResultBatchSizeLimit, vector.file)
        assert.deepStrictEqual(registerResultBody(vector.registerResultBatchSizeLimit), result, vector.file)
      }
    }
    assert.deepStrictEqual(registerResultBody(1048320), body("02_s2c_reply_register.bin"))
  })

  it("the primary writes its limit into the register body", () => {
    const copy = body("01_c2s_request_register.bin").slice()
    setRegisterRequestBatchSizeLimit(copy, 3840)
    assert.strictEqual(registerRequestBatchSizeLimit(copy), 3840)
    assert.throws(() => setRegisterRequestBatchSizeLimit(copy, 3839))
    assert.throws(() => registerResultBody(batchSizeLimitMax + 1))
  })

  it("refuses a RegisterResult the client would abort on", () => {
    assert.isUndefined(registerResultBatchSizeLimit(new Uint8Array(64)))
    const tooLarge = registerResultBody(batchSizeLimitMax)
    tooLarge[2] = 0x10
    assert.isUndefined(registerResultBatchSizeLimit(tooLarge))
    const reserved = registerResultBody(batchSizeLimitMax)
    reserved[63] = 1
    assert.isUndefined(registerResultBatchSizeLimit(reserved))
    assert.isUndefined(registerResultBatchSizeLimit(new Uint8Array(63)))
  })
})
