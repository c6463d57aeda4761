/**
 * The REPL's statement parser (src/cli/repl_parser.ts) as pure functions: every operation with
 * every key, the integer and flag syntax at and beyond each bound, each error with where it
 * points, statement splitting and completion; then properties: any record written as a
 * statement (in any base) parses back to itself, and no input makes the parser throw.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { accountFieldKinds, transferFieldKinds, type FieldKind } from "../../src/client/input_check.ts"
import { Account, Transfer } from "../../src/client/schema.ts"
import { complete } from "../../src/cli/repl.ts"
import {
  keysOfOperation, operations, parseInteger, parseStatement, pointAt, splitStatements, type ParseError, type Statement
} from "../../src/cli/repl_parser.ts"
import { AccountFilterFlags, AccountFlags, QueryFilterFlags, TransferFlags } from "../../src/protocol/records.ts"

const parsed = (text: string): Extract<Statement, { objects: unknown }> => {
  const statement = parseStatement(text)
  if (statement.kind === "error" || statement.kind === "empty" || statement.kind === "help") {
    throw new Error(`expected objects from '${text}', got ${JSON.stringify(statement)}`)
  }
  return statement
}
const failure = (text: string): ParseError => {
  const statement = parseStatement(text)
  if (statement.kind !== "error") throw new Error(`expected '${text}' to be refused, got ${JSON.stringify(statement, (_, v) => typeof v === "bigint" ? `${v}n` : v)}`)
  return statement
}

const maxOf: Record<FieldKind, bigint> = { u128: (1n << 128n) - 1n, u64: (1n << 64n) - 1n, u32: 0xffff_ffffn, u16: 0xffffn }
const flagTables = {
  create_accounts: AccountFlags, create_transfers: TransferFlags, lookup_accounts: undefined, lookup_transfers: undefined,
  get_account_transfers: AccountFilterFlags, get_account_balances: AccountFilterFlags, query_accounts: QueryFilterFlags, query_transfers: QueryFilterFlags
} as const
const kindOf = (operation: (typeof operations)[number], key: string): FieldKind => {
  if (operation === "create_accounts") return accountFieldKinds[key]!
  if (operation === "create_transfers") return transferFieldKinds[key]!
  return key.endsWith("_128") || key.endsWith("id") ? "u128" : key.endsWith("_64") || key.startsWith("timestamp") ? "u64"
    : key === "code" ? "u16" : "u32"
}

describe("REPL parser: operations and keys", () => {
  it("knows TigerBeetle's eight operations and their keys, without reserved", () => {
    expect(operations).toEqual(["create_accounts", "create_transfers", "lookup_accounts", "lookup_transfers",
      "get_account_transfers", "get_account_balances", "query_accounts", "query_transfers"])
    expect(keysOfOperation("create_accounts")).toEqual(Object.keys(accountFieldKinds).filter((key) => key !== "reserved"))
    expect(keysOfOperation("create_transfers")).toEqual(Object.keys(transferFieldKinds))
    expect(keysOfOperation("lookup_transfers")).toEqual(["id"])
    expect([...keysOfOperation("get_account_balances")].sort()).toEqual(
      ["account_id", "code", "flags", "limit", "timestamp_max", "timestamp_min", "user_data_128", "user_data_32", "user_data_64"])
    expect([...keysOfOperation("query_transfers")].sort()).toEqual(
      ["code", "flags", "ledger", "limit", "timestamp_max", "timestamp_min", "user_data_128", "user_data_32", "user_data_64"])
  })

  for (const operation of operations) {
    it(`${operation}: every key takes its largest value; narrow fields are numbers, wide ones bigints`, () => {
      for (const key of keysOfOperation(operation)) {
        if (key === "flags") continue
        const kind = kindOf(operation, key)
        const { objects } = parsed(`${operation} ${key}=${maxOf[kind]}`)
        const expected = kind === "u32" || kind === "u16" ? Number(maxOf[kind]) : maxOf[kind]
        expect(objects, `${operation} ${key}`).toEqual([{ [key]: expected }])
        expect(failure(`${operation} ${key}=${maxOf[kind] + 1n}`).message).toContain(`too large for a ${kind}`)
      }
    })

    const table = flagTables[operation]
    if (table !== undefined) {
      it(`${operation}: every flag by name, and all of them together`, () => {
        for (const [name, bit] of Object.entries(table)) expect(parsed(`${operation} flags=${name}`).objects).toEqual([{ flags: bit }])
        const all = Object.values(table).reduce((a, b) => a | b, 0)
        expect(parsed(`${operation} flags=${Object.keys(table).join(" | ")}`).objects).toEqual([{ flags: all }])
      })
    }
  }

  it("the statement of TigerBeetle's quick start", () => {
    expect(parsed("create_accounts id=1 code=10 ledger=700, id=2 code=10 ledger=700").objects)
      .toEqual([{ id: 1n, code: 10, ledger: 700 }, { id: 2n, code: 10, ledger: 700 }])
    expect(parsed("lookup_accounts id=1, id=2").objects).toEqual([{ id: 1n }, { id: 2n }])
    expect(parsed("create_transfers id=1 debit_account_id=1 credit_account_id=2 amount=10 ledger=700 code=10").objects)
      .toEqual([{ id: 1n, debit_account_id: 1n, credit_account_id: 2n, amount: 10n, ledger: 700, code: 10 }])
    expect(parsed("get_account_transfers account_id=1 flags=debits|credits").objects)
      .toEqual([{ account_id: 1n, flags: AccountFilterFlags.debits | AccountFilterFlags.credits }])
  })

  it("whitespace and newlines anywhere between tokens; empty statements; help", () => {
    expect(parsed("\n  create_accounts\n id = 1\tcode= 2 ledger =3 ,\n id=4 code=2 ledger=3 flags = linked |history \n").objects)
      .toEqual([{ id: 1n, code: 2, ledger: 3 }, { id: 4n, code: 2, ledger: 3, flags: AccountFlags.linked | AccountFlags.history }])
    expect(parseStatement("")).toEqual({ kind: "empty" })
    expect(parseStatement(" \n\t ")).toEqual({ kind: "empty" })
    expect(parseStatement(" help ")).toEqual({ kind: "help" })
    expect(parsed("query_accounts").objects).toEqual([])
    expect(parsed("create_transfers ").objects).toEqual([])
  })
})

describe("REPL parser: integers", () => {
  it.each([
    ["0", 0n], ["42", 42n], ["1_000", 1000n], ["0x1f", 31n], ["0XFF", 255n], ["0xa1a2a3a4_b1b2_c1c2_d1d2_e1e2e3e4e5e6", 0xa1a2a3a4b1b2c1c2d1d2e1e2e3e4e5e6n],
    ["0o17", 15n], ["0b1011", 11n], ["0b1_0", 2n], ["-0", (1n << 128n) - 1n], ["-1", (1n << 128n) - 2n], ["-0x10", (1n << 128n) - 17n],
    ["000", 0n], ["340282366920938463463374607431768211455", (1n << 128n) - 1n]
  ])("u128 %s is %s", (text, value) => {
    assert.strictEqual(parseInteger(text, "u128", "id"), value)
  })

  it("-N counts down from the field's own maximum", () => {
    assert.strictEqual(parseInteger("-0", "u16", "code"), 65535n)
    assert.strictEqual(parseInteger("-5", "u32", "ledger"), 0xffff_fffan)
    assert.strictEqual(parseInteger("-0", "u64", "user_data_64"), (1n << 64n) - 1n)
    expect(parseInteger("-65536", "u16", "code")).toContain("too large")
  })

  it.each(["", "-", "1__0", "_1", "1_", "0x", "0x_1", "0xg", "0o8", "0b2", "--1", "1-", "abc", "1e3", "0x1_"])("refuses %j", (text) => {
    const result = parseInteger(text, "u128", "id")
    assert.isString(result)
    expect(result).toContain(`invalid value '${text}' for id: expected a u128`)
  })
})

describe("REPL parser: errors say what and where", () => {
  const at = (text: string, message: RegExp | string, where: string) => {
    const error = failure(text)
    if (typeof message === "string") expect(error.message).toContain(message)
    else expect(error.message).toMatch(message)
    assert.strictEqual(error.offset, text.indexOf(where), `offset of '${where}' in '${text}'`)
  }

  it.each([
    ["create_account id=1", /^unknown operation 'create_account'; the operations are create_accounts, .* and help$/, "create_account"],
    ["  exit", "(press Ctrl+D to leave)", "exit"],
    ["create_accounts id=1 colour=3", "unknown key 'colour' for create_accounts; its keys are id, ", "colour"],
    ["create_accounts id=1 reserved=0", "'reserved' cannot be set", "reserved"],
    ["lookup_accounts account_id=1", "unknown key 'account_id' for lookup_accounts; its keys are id", "account_id"],
    ["create_accounts id=1 id=2", "'id' is given twice for one object; separate objects with ','", "id=2"],
    ["create_accounts id 1", "expected '=' after 'id', as in id=1", "1"],
    ["create_accounts id=", "expected a value after 'id='", ""],
    ["create_accounts id= ,", "expected a value after 'id='", ","],
    ["create_accounts id=1x2", "invalid value '1x2' for id", "1x2"],
    ["create_accounts id=1.5", "expected a key, as in id=1", ".5"],
    ["create_accounts id=1 code=70000", "code=70000 is too large for a u16 (at most 65535)", "70000"],
    ["create_accounts id=1 flags=linked|bogus", "unknown flag 'bogus' for create_accounts; its flags are linked, debits_must_not_exceed_credits", "linked"],
    ["create_accounts id=1 flags=linked|linked", "flag 'linked' is given twice", "linked"],
    ["create_accounts id=1 flags=linked|", "expected a flag name on each side of '|'", "linked"],
    ["create_accounts flags=1", "unknown flag '1'", "1"],
    ["create_transfers id=1 flags=history", "unknown flag 'history' for create_transfers", "history"],
    ["query_accounts flags=debits", "unknown flag 'debits' for query_accounts; its flags are reversed", "debits"],
    ["get_account_transfers account_id=1, account_id=2", "get_account_transfers takes one filter, not several", ","],
    ["query_transfers limit=1, limit=2", "query_transfers takes one filter, not several", ","],
    ["create_accounts id=1,", "expected a key after ','", ""],
    ["create_accounts id=1, , id=2", "expected a key, as in id=1", ", id=2"],
    ["lookup_accounts id=1 )", "expected a key, as in id=1", ")"],
    ["42", "expected an operation", "42"],
    ["help me", "help takes nothing after it", "me"]
  ])("%j", (text, message, where) => {
    // An empty `where` means the end of the statement.
    if (where === "") {
      const error = failure(text)
      expect(error.message).toContain(message as string)
      assert.strictEqual(error.offset, text.length)
    } else {
      at(text, message, where)
    }
  })

  it("the caret is shown under the offset, on the offending line of a multi-line statement", () => {
    const text = "create_accounts id=1\n  code=10 ledgr=700"
    const error = failure(text)
    expect(pointAt(text, error.offset)).toEqual(["  code=10 ledgr=700", "          ^"])
    expect(pointAt("abc", 0)).toEqual(["abc", "^"])
    expect(pointAt("abc", 3)).toEqual(["abc", "   ^"])
  })
})

describe("REPL input: statements end at ';'", () => {
  it("a line without ';' waits for the next; several statements on one line all run", () => {
    expect(splitStatements("lookup_accounts id=1")).toEqual({ statements: [], rest: "lookup_accounts id=1" })
    expect(splitStatements("lookup_accounts id=1\n, id=2;")).toEqual({ statements: ["lookup_accounts id=1\n, id=2"], rest: "" })
    expect(splitStatements("a; b;c")).toEqual({ statements: ["a", " b"], rest: "c" })
    expect(splitStatements(";;")).toEqual({ statements: ["", ""], rest: "" })
  })

  it("Tab completes operations, then the operation's keys, and nothing inside a value", () => {
    expect(complete("cre")).toEqual([["create_accounts ", "create_transfers "], "cre"])
    expect(complete("")[0]).toEqual([...operations, "help"].map((name) => `${name} `))
    expect(complete("lookup_accounts i")).toEqual([["id="], "i"])
    expect(complete("create_transfers id=1 deb")).toEqual([["debit_account_id="], "deb"])
    expect(complete("create_transfers id=1 amount=1")).toEqual([[], ""])
    expect(complete("lookup_accounts id=1; query_")).toEqual([["query_accounts ", "query_transfers "], "query_"])
    expect(complete("nonsense i")).toEqual([[], "i"])
  })
})

/** A record written as a statement, each integer in a base picked by `bases`. */
const statementOf = (operation: string, record: Record<string, unknown>, keys: ReadonlyArray<string>, table: Record<string, number>, base: number) =>
  `${operation} ${keys.map((key, i) => {
    const value = record[key] as bigint | number
    if (key === "flags") {
      const names = Object.entries(table).filter(([, bit]) => ((value as number) & bit) !== 0).map(([name]) => name)
      return names.length === 0 ? "" : `flags=${names.join("|")}`
    }
    const big = BigInt(value)
    const radix = [10, 16, 8, 2][(base + i) % 4]!
    const digits = big.toString(radix)
    return `${key}=${{ 10: "", 16: "0x", 8: "0o", 2: "0b" }[radix]}${digits}`
  }).join(" ")}`

const base = Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 3 })))
/** Flags as the parser can express them: combinations of named bits. */
const namedFlags = (table: Record<string, number>) => (flags: number) => flags & Object.values(table).reduce((a, b) => a | b, 0)

describe("REPL parser: properties", () => {
  it.prop("any account written as create_accounts parses back to its fields", [Account, base], ([account, b]) => {
    const keys = keysOfOperation("create_accounts")
    const record = { ...account, flags: namedFlags(AccountFlags)(account.flags) }
    const { objects } = parsed(statementOf("create_accounts", record, keys, AccountFlags, b))
    const expected = Object.fromEntries(keys.filter((key) => key !== "flags" || record.flags !== 0).map((key) => [key, record[key as keyof typeof record]]))
    expect(objects).toEqual([expected])
  }, { arbitrary: { runs: 200 } })

  it.prop("any two transfers written as create_transfers parse back to their fields", [Transfer, Transfer, base], ([first, second, b]) => {
    const keys = keysOfOperation("create_transfers")
    const records = [first, second].map((t) => ({ ...t, flags: namedFlags(TransferFlags)(t.flags) }))
    const text = records.map((r, i) => statementOf(i === 0 ? "create_transfers" : "", r, keys, TransferFlags, b).trimStart()).join(", ")
    const { objects } = parsed(text)
    expect(objects).toEqual(records.map((r) => Object.fromEntries(keys.filter((key) => key !== "flags" || r.flags !== 0).map((key) => [key, r[key as keyof typeof r]]))))
  }, { arbitrary: { runs: 200 } })

  const Noise = Schema.String.pipe(Schema.check(Schema.isMaxLength(80)))
  it.prop("no input makes the parser throw; errors point inside the statement", [Noise, Schema.Literals([...operations, "help", ""])], ([noise, operation]) => {
    for (const text of [noise, `${operation} ${noise}`, `${operation} id=${noise}`]) {
      const result = parseStatement(text)
      if (result.kind === "error") {
        assert.isAtLeast(result.offset, 0)
        assert.isAtMost(result.offset, text.length)
        assert.isAbove(result.message.length, 0)
      }
    }
  }, { arbitrary: { runs: 500 } })
})
