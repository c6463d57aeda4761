/**
 * Assertion density (issue 13; style.md "Assert densely, on both sides"), over the replica core,
 * checkpoint, superblock and client session paths:
 *
 * - every function holds at least two `assert(…)` calls, its preconditions and postconditions,
 *   unless it is exempt (below);
 * - no assertion of a conjunction (`assert(a && b, …)`): two assertions, so that a failure says
 *   which condition broke (TigerBeetle's style). `||` (an implication) and `!(a && b)` are fine.
 *
 * What counts as a function here is a named one: a function declaration, a method, constructor
 * or accessor, or a function expression or arrow bound to a name (`const f = …`, also through
 * wrapping calls such as `Effect.fnUntraced(function* …)`, or an object property). Anonymous
 * callbacks inside it (the generator of an `Effect.gen`, a `forEach` body) are part of it: their
 * assertions count for it. Only `assert(…)` calls count (not `unreachable`, not `if … throw`).
 *
 * Exempt:
 * - one-liners: a body of one statement or a concise arrow (getters, delegations, a predicate
 *   such as `(g) => g.copies.size >= threshold`): there is nothing between a precondition and a
 *   postcondition to guard, and the function they delegate to asserts;
 * - the functions of `exempt` below, each with its reason. An entry that no longer names a
 *   function under two assertions fails the suite: the list only shrinks.
 *
 * The sources are parsed by the TypeScript compiler, as in the tidy test; the rule is checked on
 * a small tree that breaks it, so a rule that stops detecting anything fails the suite.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { type Node, type SourceFile, SyntaxKind } from "typescript/unstable/ast"
import { isBinaryExpression, isBlock, isCallExpression, isIdentifier, isParenthesizedExpression } from "typescript/unstable/ast/is"
import { parseSources } from "./parse_sources.ts"

/** A function with fewer assertions than this (and not exempt) is a violation. */
const assertionsMin = 2

/** The files held to the rule: the replica core and shell, the message bus, the journal, checkpoint, superblock and session paths. */
const files = [
  "src/actors/replica_core.ts",
  "src/actors/replica.ts",
  "src/actors/client_table.ts",
  "src/actors/pipeline.ts",
  "src/actors/backup_log.ts",
  "src/actors/header_ring.ts",
  "src/actors/journal_writes.ts",
  "src/actors/repair.ts",
  "src/actors/marzullo.ts",
  "src/actors/cluster_clock.ts",
  "src/actors/view_change.ts",
  "src/actors/log_chain.ts",
  "src/actors/exit_view_votes.ts",
  "src/protocol/view_change.ts",
  "src/actors/timeout.ts",
  "src/actors/client_connections.ts",
  "src/actors/quorum.ts",
  "src/actors/recovery.ts",
  "src/actors/stage_io.ts",
  "src/layers/network_tcp.ts",
  "src/layers/tcp_connection.ts",
  "src/layers/tcp_dialer.ts",
  "src/layers/tcp_peer.ts",
  "src/storage/checkpoint.ts",
  "src/storage/journal.ts",
  "src/storage/journal_recovery.ts",
  "src/storage/superblock.ts",
  "src/storage/superblock_quorum.ts",
  "src/client/session_core.ts",
  "src/client/session.ts"
] as const

/**
 * Functions of more than one statement that may hold fewer than two assertions, and why: small
 * plumbing whose every step is asserted where it is done. An entry that no longer matches fails
 * the suite (the list only shrinks).
 */
const exempt: ReadonlyArray<{ readonly file: string; readonly name: string; readonly why: string }> = [
  {
    file: "src/storage/superblock_quorum.ts", name: "compareBytes",
    why: "a byte-order comparator for a deterministic sort: its one precondition (equal lengths) is asserted; its result is any order"
  },
  {
    file: "src/client/session.ts", name: "makeSession.pinger",
    why: "a timer loop: sleeps, then hands SessionCore.ping's message (asserted there) to every replica"
  },
  {
    file: "src/client/session.ts", name: "Inbox.post",
    why: "two statements, per message: a push and a ring of a dropping doorbell (whose refused offer is expected)"
  },
  {
    file: "src/client/session.ts", name: "Inbox.take",
    why: "hands over the array; its one invariant (bytes counted only with calls posted) is asserted; it may be empty"
  },
  {
    file: "src/client/session.ts", name: "makeSteps.takeInbox",
    why: "two calls: SessionCore.apply and perform, each asserting its own pre- and postconditions"
  },
  {
    file: "src/client/session.ts", name: "makeSteps.register",
    why: "two calls: SessionCore.start and perform, each asserting its own pre- and postconditions"
  },
  {
    file: "src/client/session.ts", name: "makeSteps.burstStep",
    why: "a counter and a delegation to takeInbox"
  },
  {
    file: "src/client/session.ts", name: "makeCall.enqueue",
    why: "per call: answers it with the session's stop, or posts it (Inbox.postCall asserts the post)"
  },
  {
    file: "src/client/session.ts", name: "makeCall.awaitCallWithdrawable",
    why: "enqueue, and a withdrawal asserted to run once"
  }
]

describe("assertion density: the replica core, checkpoint, superblock and session paths", () => {
  const root = resolve(import.meta.dirname, "..")
  const sources = parseSourcesOf(root, files)
  const units = sources.flatMap(unitsOf)
  const sparse = units.filter((unit) => !unit.oneLiner && unit.assertions < assertionsMin)
  const conjunctions = sources.flatMap((source) => source.conjunctions)

  it(`every function of more than one statement holds at least ${assertionsMin} assertions, or is exempt`, () => {
    const found = sparse.filter((unit) => !isExempt(unit))
    assert.strictEqual(found.length, 0, `\n${found.map(describeUnit).join("\n")}\n`)
  })

  it("no assertion of a conjunction: one assertion per condition", () => {
    assert.deepStrictEqual(conjunctions, [])
  })

  it("every exemption still names a function under the minimum (fixed ones are removed from the list)", () => {
    const stale = exempt.filter((entry) => !sparse.some((unit) => unit.file === entry.file && unit.name === entry.name))
    assert.deepStrictEqual(stale, [])
  })

  it("the parse saw every file and its functions", () => {
    assert.deepStrictEqual(sources.map((source) => source.file), [...files])
    for (const source of sources) assert.isAbove(source.units.length, 0, source.file)
    assert.isAbove(units.reduce((n, unit) => n + unit.assertions, 0), 200)
  })

  if (process.env["ASSERTION_DENSITY_REPORT"] !== undefined) {
    it("report (ASSERTION_DENSITY_REPORT set): assertions per function and per file", () => {
      for (const source of sources) {
        const total = source.units.reduce((n, unit) => n + unit.assertions, 0)
        console.log(`${source.file}: ${total} assertions in ${source.units.length} functions`)
        for (const unit of source.units) console.log(`  ${describeUnit(unit)}${unit.oneLiner ? " (one-liner)" : ""}`)
      }
    })
  }
})

describe("assertion density: the rule finds its violations", () => {
  const fixture = [
    `import { assert } from "../assert.ts"`,
    `export function bare(x: number) {`, `  const y = x + 1`, `  return y`, `}`,
    `export function once(x: number) {`, `  assert(x > 0)`, `  return x`, `}`,
    `export function twice(x: number) {`, `  assert(x > 0)`, `  assert(x < 9)`, `  return x`, `}`,
    `export const oneLiner = (x: number) => x + 1`,
    `export function oneStatement(x: number) {`, `  return x + 1`, `}`,
    `export const generator = Effect.fnUntraced(function* (x: number) {`, `  yield* log`, `  assert(x > 0)`, `  return x`, `})`,
    `export class C {`,
    `  get size() {`, `    return 1`, `  }`,
    `  method(x: number) {`, `    const f = (y: number) => y`, `    return Effect.gen(function* () {`, `      assert(x > 0)`, `      assert(f(x) > 0)`, `    })`, `  }`,
    `  other(x: number) {`, `    const inner = (y: number) => {`, `      assert(y > 0)`, `      return y`, `    }`, `    return inner(x)`, `  }`,
    `}`,
    `export function wrapped() {`, `  return Effect.gen(function* () {`, `    yield* a`, `    yield* b`, `  })`, `}`,
    `export const first = make({ value: () => 1 })`, `export const second = make({ value: () => 2 })`,
    `export const layer = Layer.effect(Tag, Effect.gen(function* () {`, `  yield* a`, `  assert(b)`, `  return f(() => {`, `    assert(c)`, `  })`, `}))`,
    `export function conjunctions(a: boolean, b: boolean) {`, `  assert(a && b, () => "both")`, `  assert((a && b), () => "both")`,
    `  assert(a || (a && b))`, `  assert(!(a && b))`, `}`
  ]
  const lineOf = (text: string) => fixture.indexOf(text) + 1
  const directory = mkdtempSync(join(tmpdir(), "scarab-density-"))
  const file = "src/actors/fixture.ts"
  mkdirSync(dirname(join(directory, file)), { recursive: true })
  writeFileSync(join(directory, file), fixture.join("\n"))
  const sources = parseSourcesOf(directory, [file])
  const units = sources.flatMap(unitsOf)
  rmSync(directory, { recursive: true })

  it("counts the assertions of each named function, anonymous callbacks included, nested named ones apart", () => {
    assert.deepStrictEqual(units.map((unit) => `${unit.name} ${unit.assertions}${unit.oneLiner ? " one-liner" : ""}`), [
      "bare 0", "once 1", "twice 2", "oneLiner 0 one-liner", "oneStatement 0 one-liner", "generator 1",
      "C.size 0 one-liner", "C.method 2", "C.method.f 0 one-liner", "C.other 0", "C.other.inner 1", "wrapped 0",
      "value 0 one-liner", "value#2 0 one-liner", "layer 2", "conjunctions 4"
    ])
  })

  it("flags the functions of more than one statement (a returned generator's included) under the minimum", () => {
    assert.deepStrictEqual(units.filter((unit) => !unit.oneLiner && unit.assertions < assertionsMin).map(describeUnit), [
      `${file}:${lineOf("export function bare(x: number) {")} bare: 0 assertions`,
      `${file}:${lineOf("export function once(x: number) {")} once: 1 assertion`,
      `${file}:${lineOf("export const generator = Effect.fnUntraced(function* (x: number) {")} generator: 1 assertion`,
      `${file}:${lineOf("  other(x: number) {")} C.other: 0 assertions`,
      `${file}:${lineOf("    const inner = (y: number) => {")} C.other.inner: 1 assertion`,
      `${file}:${lineOf("export function wrapped() {")} wrapped: 0 assertions`
    ])
  })

  it("flags an assertion of a conjunction, parenthesised or not; not a disjunction or a negation", () => {
    assert.deepStrictEqual(sources.flatMap((source) => source.conjunctions), [
      `${file}:${lineOf(`  assert(a && b, () => "both")`)} assert(a && b, () => "both")`,
      `${file}:${lineOf(`  assert((a && b), () => "both")`)} assert((a && b), () => "both")`
    ])
  })
})

// --- Facts ---------------------------------------------------------------------------------------

/** A named function and the assertions in it (its anonymous callbacks' included). */
interface Unit {
  readonly file: string
  /** Qualified by the class or function it is declared in: `ReplicaCore.step`, `makeOutputs.transmit`. */
  readonly name: string
  readonly line: number
  /**
   * At most one statement in all (its anonymous callbacks' included): a getter, a delegation, a
   * concise arrow. `return Effect.gen(function* () { … })` is not one.
   */
  oneLiner: boolean
  assertions: number
}

interface Source {
  readonly file: string
  readonly units: ReadonlyArray<Unit>
  /** Assertions of a conjunction, as `file:line text`. */
  readonly conjunctions: ReadonlyArray<string>
}

const functionKinds: ReadonlySet<SyntaxKind> = new Set([
  SyntaxKind.FunctionDeclaration, SyntaxKind.FunctionExpression, SyntaxKind.ArrowFunction, SyntaxKind.MethodDeclaration,
  SyntaxKind.Constructor, SyntaxKind.GetAccessor, SyntaxKind.SetAccessor
])

function parseSourcesOf(root: string, files: ReadonlyArray<string>): ReadonlyArray<Source> {
  return parseSources(root, files, (file, sourceFile) => ({ file, units: unitsIn(file, sourceFile), conjunctions: conjunctionsIn(file, sourceFile) }))
}

function unitsOf(source: Source): ReadonlyArray<Unit> {
  return source.units
}

/** The named functions of a file, in source order, each with its assertions and statements counted. */
function unitsIn(file: string, sourceFile: SourceFile): Array<Unit> {
  const units: Array<Unit> = []
  const counted: Array<{ unit: Unit; statements: number }> = []
  const seen = new Map<string, number>()
  const visit = (node: Node, unit: { unit: Unit; statements: number } | undefined, scope: string): void => {
    if (functionKinds.has(node.kind) && (node as { body?: Node }).body !== undefined) {
      const name = unitName(node, sourceFile)
      if (name !== undefined) {
        const qualified = scope === "" ? name : `${scope}.${name}`
        // Two functions of one name in one scope (rare) are told apart by their order.
        const ordinal = (seen.get(qualified) ?? 0) + 1
        seen.set(qualified, ordinal)
        const named: Unit = {
          file, name: ordinal === 1 ? qualified : `${qualified}#${ordinal}`,
          line: sourceFile.getLineAndCharacterOfPosition(node.getStart(sourceFile)).line + 1, oneLiner: false, assertions: 0
        }
        const entry = { unit: named, statements: 0 }
        units.push(named)
        counted.push(entry)
        node.forEachChild((child) => visit(child, entry, qualified))
        return
      }
    }
    if (unit !== undefined && isBlock(node)) unit.statements += node.statements.length
    if (unit !== undefined && isCallExpression(node) && isIdentifier(node.expression) && node.expression.text === "assert") unit.unit.assertions++
    const className = node.kind === SyntaxKind.ClassDeclaration ? (node as { name?: Node }).name?.getText(sourceFile) : undefined
    node.forEachChild((child) => visit(child, unit, className ?? scope))
  }
  visit(sourceFile, undefined, "")
  for (const { unit, statements } of counted) unit.oneLiner = statements <= 1
  return units
}

/**
 * The name a function is known by, or undefined for an anonymous callback: declarations, methods
 * and accessors by their own name; a function expression or arrow by the variable or property it
 * is bound to, directly or as an argument of the calls that wrap it (`Effect.fnUntraced(…)`,
 * `Layer.effect(Tag, Effect.gen(…))`).
 */
function unitName(node: Node, sourceFile: SourceFile): string | undefined {
  if (node.kind === SyntaxKind.Constructor) return "constructor"
  if (node.kind !== SyntaxKind.FunctionExpression && node.kind !== SyntaxKind.ArrowFunction) {
    return (node as { name?: Node }).name?.getText(sourceFile)
  }
  let holder = node.parent
  let argument: Node = node
  while (isCallExpression(holder) && holder.arguments.includes(argument as never)) {
    argument = holder
    holder = holder.parent
  }
  if (holder.kind === SyntaxKind.VariableDeclaration || holder.kind === SyntaxKind.PropertyAssignment) {
    return (holder as unknown as { name: Node }).name.getText(sourceFile)
  }
  return undefined
}

/** The `assert(a && b, …)` calls of a file (parentheses around the condition do not hide one). */
function conjunctionsIn(file: string, sourceFile: SourceFile): Array<string> {
  const found: Array<string> = []
  const visit = (node: Node): void => {
    if (isCallExpression(node) && isIdentifier(node.expression) && node.expression.text === "assert" && node.arguments.length > 0) {
      let condition: Node = node.arguments[0]!
      while (isParenthesizedExpression(condition)) condition = condition.expression
      if (isBinaryExpression(condition) && condition.operatorToken.kind === SyntaxKind.AmpersandAmpersandToken) {
        const line = sourceFile.getLineAndCharacterOfPosition(node.getStart(sourceFile)).line + 1
        found.push(`${file}:${line} ${node.getText(sourceFile).replace(/\s+/g, " ")}`)
      }
    }
    node.forEachChild(visit)
  }
  visit(sourceFile)
  return found
}

function isExempt(unit: Unit): boolean {
  return exempt.some((entry) => entry.file === unit.file && entry.name === unit.name)
}

function describeUnit(unit: Unit): string {
  return `${unit.file}:${unit.line} ${unit.name}: ${unit.assertions} assertion${unit.assertions === 1 ? "" : "s"}`
}
