/**
 * Assertions stay on in production: a broken invariant is a defect that must stop the process
 * before it corrupts money, not an error to handle. The message is built lazily so that hot-path
 * assertions cost one branch.
 */

export class AssertionError extends Error {
  override readonly name = "AssertionError"
}

export function assert(condition: boolean, message?: () => string): asserts condition {
  if (!condition) throw new AssertionError(message === undefined ? "assertion failed" : message())
}

export function unreachable(value: never): never {
  throw new AssertionError(`unreachable: ${String(value)}`)
}
