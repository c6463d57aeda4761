/**
 * How the REPL shows results: one aligned table per statement, pure functions from records to
 * lines. Tables keep the columns a reader looks for (ids, balances or amount, ledger, code,
 * flags by name, timestamp) and add the others (user data, pending id, timeout) only when some
 * row has a value there, so that a lookup fits a terminal.
 */
import type { Account, AccountBalance, CreateAccountResult, CreateTransferResult, Transfer } from "../client/schema.ts"
import { AccountFlags, TransferFlags } from "../protocol/records.ts"

interface Column<R> {
  readonly name: string
  readonly value: (row: R) => bigint | number | string
  /** Shown only when some row has a non-zero value. */
  readonly optional?: boolean
}

/** The results of a create: one row per event, with the id it was about. */
export function createResultsTable(ids: ReadonlyArray<bigint>, results: ReadonlyArray<CreateAccountResult | CreateTransferResult>): Array<string> {
  return table(results.map((result, i) => ({ result, id: ids[i]! })), [
    { name: "id", value: (row) => row.id },
    { name: "result", value: (row) => row.result.status },
    { name: "timestamp", value: (row) => row.result.timestamp }
  ])
}

export function accountsTable(accounts: ReadonlyArray<Account>): Array<string> {
  return table(accounts, [
    { name: "id", value: (a) => a.id },
    { name: "ledger", value: (a) => a.ledger },
    { name: "code", value: (a) => a.code },
    { name: "flags", value: (a) => flagNames(a.flags, AccountFlags) },
    { name: "debits_pending", value: (a) => a.debits_pending },
    { name: "debits_posted", value: (a) => a.debits_posted },
    { name: "credits_pending", value: (a) => a.credits_pending },
    { name: "credits_posted", value: (a) => a.credits_posted },
    { name: "user_data_128", value: (a) => a.user_data_128, optional: true },
    { name: "user_data_64", value: (a) => a.user_data_64, optional: true },
    { name: "user_data_32", value: (a) => a.user_data_32, optional: true },
    { name: "timestamp", value: (a) => a.timestamp }
  ])
}

export function transfersTable(transfers: ReadonlyArray<Transfer>): Array<string> {
  return table(transfers, [
    { name: "id", value: (t) => t.id },
    { name: "debit_account_id", value: (t) => t.debit_account_id },
    { name: "credit_account_id", value: (t) => t.credit_account_id },
    { name: "amount", value: (t) => t.amount },
    { name: "pending_id", value: (t) => t.pending_id, optional: true },
    { name: "ledger", value: (t) => t.ledger },
    { name: "code", value: (t) => t.code },
    { name: "flags", value: (t) => flagNames(t.flags, TransferFlags) },
    { name: "timeout", value: (t) => t.timeout, optional: true },
    { name: "user_data_128", value: (t) => t.user_data_128, optional: true },
    { name: "user_data_64", value: (t) => t.user_data_64, optional: true },
    { name: "user_data_32", value: (t) => t.user_data_32, optional: true },
    { name: "timestamp", value: (t) => t.timestamp }
  ])
}

export function balancesTable(balances: ReadonlyArray<AccountBalance>): Array<string> {
  return table(balances, [
    { name: "timestamp", value: (b) => b.timestamp },
    { name: "debits_pending", value: (b) => b.debits_pending },
    { name: "debits_posted", value: (b) => b.debits_posted },
    { name: "credits_pending", value: (b) => b.credits_pending },
    { name: "credits_posted", value: (b) => b.credits_posted }
  ])
}

/** `linked|history`, or `-` for none; unknown bits as a number, so nothing is hidden. */
export function flagNames(flags: number, table: Readonly<Record<string, number>>): string {
  const names = Object.entries(table).filter(([, bit]) => (flags & bit) !== 0).map(([name]) => name)
  const known = Object.values(table).reduce((all, bit) => all | bit, 0)
  if ((flags & ~known) !== 0) names.push(`0x${(flags & ~known).toString(16)}`)
  return names.length === 0 ? "-" : names.join("|")
}

/** Aligned columns: left-aligned text, right-aligned numbers; a header and a rule. */
export function table<R>(rows: ReadonlyArray<R>, columns: ReadonlyArray<Column<R>>): Array<string> {
  const shown = columns.filter((column) => column.optional !== true || rows.some((row) => !isZero(column.value(row))))
  const cells = rows.map((row) => shown.map((column) => String(column.value(row))))
  const widths = shown.map((column, i) => Math.max(column.name.length, ...cells.map((line) => line[i]!.length)))
  const numeric = shown.map((column) => rows.every((row) => typeof column.value(row) !== "string"))
  const line = (values: ReadonlyArray<string>) =>
    values.map((value, i) => numeric[i] ? value.padStart(widths[i]!) : value.padEnd(widths[i]!)).join("  ").trimEnd()
  return [line(shown.map((column) => column.name)), line(widths.map((width) => "-".repeat(width))), ...cells.map(line)]
}

const isZero = (value: bigint | number | string): boolean => value === 0 || value === 0n || value === ""
