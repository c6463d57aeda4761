/**
 * The REPL's statement language, TigerBeetle's (src/repl/parser.zig): pure functions from text
 * to statements or to an error with its position, no I/O.
 *
 *   statement := operation [object {"," object}] ";"
 *   object    := key "=" value {key "=" value}
 *   value     := integer | flag {"|" flag}
 *
 * e.g. `create_accounts id=1 code=10 ledger=700 flags=linked|history, id=2 code=10 ledger=700;`.
 * Integers are decimal, or 0x / 0o / 0b with digits of that base; `_` may separate digits
 * (`1_000`); `-N` means the field's maximum minus N (`amount=-0` is the largest amount). Keys
 * are the record's fields (not `reserved`); each at most once per object. Creates and lookups
 * take any number of objects; the queries take exactly one filter. A statement ends at `;`:
 * `;` never occurs inside a statement, so input can be split on it before parsing.
 */
import { accountFieldKinds, transferFieldKinds, type FieldKind } from "../client/input_check.ts"
import type { AccountFilterInput, AccountInput, QueryFilterInput, TransferInput } from "../client/schema.ts"
import { AccountFilterFlags, AccountFlags, QueryFilterFlags, TransferFlags } from "../protocol/records.ts"

export const operations = [
  "create_accounts", "create_transfers", "lookup_accounts", "lookup_transfers",
  "get_account_transfers", "get_account_balances", "query_accounts", "query_transfers"
] as const
export type ReplOperation = (typeof operations)[number]

export type Statement =
  | { readonly kind: "empty" }
  | { readonly kind: "help" }
  | { readonly kind: "create_accounts"; readonly objects: ReadonlyArray<AccountInput> }
  | { readonly kind: "create_transfers"; readonly objects: ReadonlyArray<TransferInput> }
  | { readonly kind: "lookup_accounts" | "lookup_transfers"; readonly objects: ReadonlyArray<{ readonly id: bigint }> }
  | { readonly kind: "get_account_transfers" | "get_account_balances"; readonly objects: ReadonlyArray<AccountFilterInput> }
  | { readonly kind: "query_accounts" | "query_transfers"; readonly objects: ReadonlyArray<QueryFilterInput> }

/** A statement that cannot be parsed: why, and where (an offset into the statement's text). */
export interface ParseError {
  readonly kind: "error"
  readonly message: string
  readonly offset: number
}

/** The kinds a key's value can have: an unsigned integer of a width, or a set of named flags. */
type KeyKind = FieldKind | { readonly flags: Readonly<Record<string, number>> }

const filterKeys = {
  user_data_128: "u128", user_data_64: "u64", user_data_32: "u32", code: "u16", timestamp_min: "u64", timestamp_max: "u64", limit: "u32"
} as const

/** The keys of each operation's objects, in the record's field order. */
const keysOf: Record<ReplOperation, Readonly<Record<string, KeyKind>>> = {
  create_accounts: { ...withoutReserved(accountFieldKinds), flags: { flags: AccountFlags } },
  create_transfers: { ...transferFieldKinds, flags: { flags: TransferFlags } },
  lookup_accounts: { id: "u128" },
  lookup_transfers: { id: "u128" },
  get_account_transfers: { account_id: "u128", ...filterKeys, flags: { flags: AccountFilterFlags } },
  get_account_balances: { account_id: "u128", ...filterKeys, flags: { flags: AccountFilterFlags } },
  query_accounts: { ...filterKeys, ledger: "u32", flags: { flags: QueryFilterFlags } },
  query_transfers: { ...filterKeys, ledger: "u32", flags: { flags: QueryFilterFlags } }
}

const batchable: ReadonlySet<ReplOperation> = new Set(["create_accounts", "create_transfers", "lookup_accounts", "lookup_transfers"])

const maxOf: Record<FieldKind, bigint> = { u128: (1n << 128n) - 1n, u64: (1n << 64n) - 1n, u32: 0xffff_ffffn, u16: 0xffffn }

/** The keys an operation's objects accept, for error messages and completion. */
export const keysOfOperation = (operation: ReplOperation): ReadonlyArray<string> => Object.keys(keysOf[operation])

/** Parses one statement (without its `;`). */
export function parseStatement(text: string): Statement | ParseError {
  const scanner = new Scanner(text)
  scanner.skipSpace()
  const start = scanner.offset
  const word = scanner.identifier()
  if (word === "") {
    scanner.skipSpace()
    return scanner.atEnd() ? { kind: "empty" } : error(`expected an operation, such as create_accounts`, scanner.offset)
  }
  if (word === "help") {
    scanner.skipSpace()
    return scanner.atEnd() ? { kind: "help" } : error("help takes nothing after it", scanner.offset)
  }
  if (!(operations as ReadonlyArray<string>).includes(word)) {
    const hint = word === "exit" || word === "quit" ? " (press Ctrl+D to leave)" : ""
    return error(`unknown operation '${word}'${hint}; the operations are ${operations.join(", ")} and help`, start)
  }
  const operation = word as ReplOperation
  const objects = parseObjects(scanner, operation)
  if ("kind" in objects) return objects
  return { kind: operation, objects } as Statement
}

/**
 * Splits input at each `;`: the statements it completes (without their `;`) and the text after
 * the last `;`, still waiting for its end.
 */
export function splitStatements(input: string): { readonly statements: ReadonlyArray<string>; readonly rest: string } {
  const parts = input.split(";")
  return { statements: parts.slice(0, -1), rest: parts[parts.length - 1]! }
}

/** The statement's line holding `offset`, with a caret under it: for showing where a parse error is. */
export function pointAt(text: string, offset: number): ReadonlyArray<string> {
  const lineStart = text.lastIndexOf("\n", offset - 1) + 1
  const lineEnd = text.indexOf("\n", offset)
  const line = text.slice(lineStart, lineEnd < 0 ? text.length : lineEnd)
  return [line, `${" ".repeat(offset - lineStart)}^`]
}

// --- objects and values -----------------------------------------------------------------------

type ParsedObject = Record<string, bigint | number>

function parseObjects(scanner: Scanner, operation: ReplOperation): Array<ParsedObject> | ParseError {
  const keys = keysOf[operation]
  const objects: Array<ParsedObject> = []
  let object: ParsedObject = {}
  let first = true
  while (true) {
    scanner.skipSpace()
    if (scanner.atEnd()) break
    if (!first && scanner.peek() === ",") {
      const comma = scanner.offset
      scanner.advance()
      if (!batchable.has(operation)) return error(`${operation} takes one filter, not several`, comma)
      objects.push(object)
      object = {}
      scanner.skipSpace()
    }
    first = false
    const keyStart = scanner.offset
    const key = scanner.identifier()
    if (key === "") return error(scanner.atEnd() ? "expected a key after ',', as in id=1" : "expected a key, as in id=1", keyStart)
    if (key === "reserved") return error("'reserved' cannot be set", keyStart)
    const kind = keys[key]
    if (kind === undefined) return error(`unknown key '${key}' for ${operation}; its keys are ${Object.keys(keys).join(", ")}`, keyStart)
    if (key in object) return error(`'${key}' is given twice for one object; separate objects with ','`, keyStart)
    scanner.skipSpace()
    if (scanner.peek() !== "=") return error(`expected '=' after '${key}', as in ${key}=1`, scanner.offset)
    scanner.advance()
    scanner.skipSpace()
    const valueStart = scanner.offset
    const value = scanner.value()
    if (value === "") return error(`expected a value after '${key}='`, valueStart)
    const parsed = typeof kind === "string" ? parseInteger(value, kind, key) : parseFlags(value, kind.flags, operation)
    if (typeof parsed === "string") return error(parsed, valueStart)
    object[key] = typeof kind === "string" && (kind === "u32" || kind === "u16") ? Number(parsed) : parsed
  }
  if (Object.keys(object).length > 0) objects.push(object)
  return objects
}

/** An unsigned integer of `kind`, or why not. */
export function parseInteger(text: string, kind: FieldKind, key: string): bigint | string {
  const invalid = `invalid value '${text}' for ${key}: expected a ${kind} (decimal, 0x, 0o or 0b digits, or -N for the largest ${kind} minus N)`
  const negative = text.startsWith("-")
  const body = negative ? text.slice(1) : text
  const base = /^0[xX]/.test(body) ? 16 : /^0[oO]/.test(body) ? 8 : /^0[bB]/.test(body) ? 2 : 10
  const digits = base === 10 ? body : body.slice(2)
  const digit = { 2: "[01]", 8: "[0-7]", 10: "[0-9]", 16: "[0-9a-fA-F]" }[base]
  // Digits, with single underscores between them.
  if (!new RegExp(`^${digit}+(_${digit}+)*$`).test(digits)) return invalid
  const prefix = { 2: "0b", 8: "0o", 10: "", 16: "0x" }[base]
  const magnitude = BigInt(`${prefix}${digits.replaceAll("_", "")}`)
  const max = maxOf[kind]
  if (magnitude > max) return `${key}=${text} is too large for a ${kind} (at most ${max})`
  return negative ? max - magnitude : magnitude
}

/** Flag names joined by `|` (spaces allowed around it), or why not. */
function parseFlags(text: string, table: Readonly<Record<string, number>>, operation: ReplOperation): number | string {
  let flags = 0
  for (const part of text.split("|")) {
    const name = part.trim()
    if (name === "") return `expected a flag name on each side of '|'`
    const bit = Object.hasOwn(table, name) ? table[name] : undefined
    if (bit === undefined) return `unknown flag '${name}' for ${operation}; its flags are ${Object.keys(table).join(", ")}`
    if ((flags & bit) !== 0) return `flag '${name}' is given twice`
    flags |= bit
  }
  return flags
}

function withoutReserved(kinds: Readonly<Record<string, FieldKind>>): Record<string, FieldKind> {
  const { reserved: _, ...rest } = kinds
  return rest
}

const error = (message: string, offset: number): ParseError => ({ kind: "error", message, offset })

/** A cursor over a statement's text. */
class Scanner {
  offset = 0
  private readonly text: string

  constructor(text: string) {
    this.text = text
  }

  atEnd(): boolean {
    return this.offset >= this.text.length
  }

  peek(): string | undefined {
    return this.text[this.offset]
  }

  advance(): void {
    this.offset++
  }

  skipSpace(): void {
    while (!this.atEnd() && /\s/.test(this.text[this.offset]!)) this.offset++
  }

  /** Letters, digits and `_`, not starting with a digit; "" if there is none here. */
  identifier(): string {
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.offset))
    const word = match?.[0] ?? ""
    this.offset += word.length
    return word
  }

  /** Letters, digits, `_` and `-`, and `|` with optional spaces around it (flags). */
  value(): string {
    const match = /^[A-Za-z0-9_-]+(\s*\|\s*[A-Za-z0-9_-]*)*/.exec(this.text.slice(this.offset))
    const word = match?.[0] ?? ""
    this.offset += word.length
    return word
  }
}
