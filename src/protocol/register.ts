/**
 * The bodies of `register` (wire-protocol.md §9.2, §10.1): a client opens its session with a
 * 256-byte RegisterRequest whose `batch_size_limit` is 0; the primary writes its own limit into
 * that body before it prepares the op, and the reply carries a 64-byte RegisterResult with the
 * same limit, which the client then uses as its per-request body budget.
 */
import { assert } from "../assert.ts"
import { headerSize, readU32, registerRequestSize, registerResultSize, writeU32 } from "./header.ts"
import { bodySizeMax } from "./operation.ts"

/** The smallest limit a replica may be configured with (a 4 KiB request size limit). */
export const batchSizeLimitMin = 4096 - headerSize
/** The largest, and the default: a whole 1 MiB message. */
export const batchSizeLimitMax = bodySizeMax

/** The `batch_size_limit` field of both bodies, at offset 0. */
const batchSizeLimitOffset = 0

/** The RegisterRequest body a client sends: all zero. */
export const registerRequestBody = (): Uint8Array => new Uint8Array(registerRequestSize)

/** `batch_size_limit` of a RegisterRequest (0 from a client, the primary's limit in a prepare). */
export function registerRequestBatchSizeLimit(body: Uint8Array): number {
  assert(body.length === registerRequestSize, () => `a RegisterRequest is ${registerRequestSize} bytes`)
  return readU32(body, batchSizeLimitOffset)
}

/**
 * The primary's step before preparing a register (vsr.md §3.3 step 2): the body now says which
 * limit the session was opened with. The caller recomputes `checksum_body`.
 */
export function setRegisterRequestBatchSizeLimit(body: Uint8Array, batchSizeLimit: number): void {
  assert(body.length === registerRequestSize, () => `a RegisterRequest is ${registerRequestSize} bytes`)
  assertBatchSizeLimit(batchSizeLimit)
  writeU32(body, batchSizeLimitOffset, batchSizeLimit)
}

/** The RegisterResult body of a register reply. */
export function registerResultBody(batchSizeLimit: number, target: Uint8Array = new Uint8Array(registerResultSize)): Uint8Array {
  assert(target.length === registerResultSize, () => `a RegisterResult is ${registerResultSize} bytes`)
  assertBatchSizeLimit(batchSizeLimit)
  target.fill(0)
  writeU32(target, batchSizeLimitOffset, batchSizeLimit)
  return target
}

/**
 * `batch_size_limit` of a RegisterResult, or `undefined` if the client would abort on it
 * (§11 row 17: `0 < limit <= 1 048 320`) or its reserved bytes are not zero.
 */
export function registerResultBatchSizeLimit(body: Uint8Array): number | undefined {
  if (body.length !== registerResultSize) return undefined
  for (let i = batchSizeLimitOffset + 4; i < registerResultSize; i++) if (body[i] !== 0) return undefined
  const limit = readU32(body, batchSizeLimitOffset)
  return limit > 0 && limit <= batchSizeLimitMax ? limit : undefined
}

function assertBatchSizeLimit(batchSizeLimit: number): void {
  assert(
    Number.isInteger(batchSizeLimit) && batchSizeLimit >= batchSizeLimitMin && batchSizeLimit <= batchSizeLimitMax,
    () => `batch_size_limit ${batchSizeLimit} outside ${batchSizeLimitMin}..${batchSizeLimitMax}`
  )
}
