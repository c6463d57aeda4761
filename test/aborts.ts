/** Shared by tests of assertions: `f` must stop with an AssertionError (a replica would stop), nothing else. */
import { assert } from "@effect/vitest"
import { AssertionError } from "../src/assert.ts"

export function assertAborts(f: () => unknown, message: string): void {
  try {
    f()
  } catch (error) {
    assert.instanceOf(error, AssertionError, message)
    return
  }
  assert.fail(`${message}: expected an assertion to stop it`)
}
