/**
 * The REPL's tables (src/cli/repl_output.ts): columns a reader needs are always there, the
 * rarely used ones only when some row has a value, numbers right-aligned, flags by name.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Account, Transfer } from "../../src/client/schema.ts"
import { accountsTable, flagNames, table, transfersTable } from "../../src/cli/repl_output.ts"
import { AccountFlags, TransferFlags } from "../../src/protocol/records.ts"

describe("REPL output", () => {
  it("flags by name, joined with |; none is '-'; unknown bits are shown as a number", () => {
    assert.strictEqual(flagNames(0, AccountFlags), "-")
    assert.strictEqual(flagNames(AccountFlags.linked | AccountFlags.history, AccountFlags), "linked|history")
    assert.strictEqual(flagNames(TransferFlags.pending | 0x8000, TransferFlags), "pending|0x8000")
  })

  it("aligns columns: text left, numbers right, under a header and a rule", () => {
    expect(table([{ name: "a", n: 5 }, { name: "bbb", n: 1234 }], [
      { name: "name", value: (r) => r.name }, { name: "n", value: (r) => r.n }
    ])).toEqual(["name     n", "----  ----", "a        5", "bbb   1234"])
  })

  it("account tables show balances always and user data only when set", () => {
    const plain = new Account({ id: 1n, ledger: 700, code: 10 })
    expect(accountsTable([plain])[0]).toBe(
      "id  ledger  code  flags  debits_pending  debits_posted  credits_pending  credits_posted  timestamp")
    const tagged = new Account({ id: 2n, ledger: 700, code: 10, user_data_64: 9n, flags: AccountFlags.history })
    const lines = accountsTable([plain, tagged])
    expect(lines[0]).toContain("credits_posted  user_data_64  timestamp")
    expect(lines[0]).not.toContain("user_data_128")
    expect(lines[3]).toMatch(/^ 2 +700 +10 +history +0 +0 +0 +0 +9 +0$/)
  })

  it("transfer tables add pending_id and timeout for two-phase transfers", () => {
    const pending = new Transfer({ id: 5n, debit_account_id: 1n, credit_account_id: 2n, amount: 3n, ledger: 1, code: 1, flags: TransferFlags.pending, timeout: 60 })
    const post = new Transfer({ id: 6n, pending_id: 5n, amount: 3n, ledger: 1, code: 1, flags: TransferFlags.post_pending_transfer })
    expect(transfersTable([pending])[0]).not.toContain("pending_id")
    const [header, , first, second] = transfersTable([pending, post])
    expect(header).toBe("id  debit_account_id  credit_account_id  amount  pending_id  ledger  code  flags                  timeout  timestamp")
    expect(first).toMatch(/^ 5 +1 +2 +3 +0 +1 +1 +pending +60 +0$/)
    expect(second).toMatch(/^ 6 +0 +0 +3 +5 +1 +1 +post_pending_transfer +0 +0$/)
  })
})
