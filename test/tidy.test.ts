/**
 * The house rules a reviewer should not have to check by eye (issue 13; docs/decisions.md,
 * "Layering, and the tidy test"):
 *
 * - Imports point down the architecture. Within src/, protocol < ledger < storage < actors <
 *   layers < client < cli; src/assert.ts, src/slab.ts, src/native.ts and src/prng.ts are shared
 *   utilities below all of them (importing nothing from the folders); src/index.ts is the package root
 *   above all of them. Type-only imports count: a type from an upper folder is a dependency on
 *   it all the same.
 * - No import cycle among src/ modules. `import type` is ignored here: Node's type stripping
 *   erases it, so it cannot make a module run before one it needs (the hazard a cycle creates),
 *   and across folders the layering rule already forbids it. `import { type X }` is not erased
 *   (verbatimModuleSyntax keeps it as `import {}`) and counts.
 * - No function in src/ over 100 lines, counted from its first token (modifiers included) to its
 *   closing brace: declarations, expressions, arrows, methods, accessors and constructors, so
 *   also the generators passed to Effect.gen and Effect.fnUntraced.
 * - No `as` cast of an Effect generator to an Effect signature (`Effect.fnUntraced(function* …)
 *   as (x: X) => Effect.Effect<…>`): it silences the compiler where the generator's own return
 *   annotation (`Effect.fn.Return<A, E>`) would check it.
 *
 * The sources are parsed by the TypeScript compiler itself: TypeScript 7 has no in-process
 * parser, so `typescript/unstable/sync` runs the pinned compiler binary as a child process and
 * hands back its syntax trees (an upgrade that changes this API fails here, loudly). Each rule
 * is a plain function over the facts extracted from the trees, checked below on a small tree
 * that breaks every rule, so a rule that stops detecting anything fails the suite.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { type Node, type SourceFile, SyntaxKind } from "typescript/unstable/ast"
import { isAsExpression, isCallExpression, isExportDeclaration, isFunctionTypeNode, isImportDeclaration, isStringLiteral } from "typescript/unstable/ast/is"
import { parseSources } from "./parse_sources.ts"

/** A function longer than this many lines is a violation. */
const functionLinesMax = 100

const rules = ["layering", "cycle", "function length", "effect cast"] as const
type Rule = (typeof rules)[number]

/**
 * Known violations that may stay for now, by file and rule (not by line, so edits to the file do
 * not invalidate the entry). An entry that no longer matches a violation fails the suite: the
 * list only shrinks.
 */
const allowed: ReadonlyArray<{ readonly file: string; readonly rule: Rule }> = [
]

describe("tidy: the house rules over src/", () => {
  const root = resolve(import.meta.dirname, "..")
  const files = readdirSync(join(root, "src"), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts")).map((file) => `src/${file}`).sort()
  const sources = parseSourcesOf(root, files)
  const violations = [...layeringViolations(sources), ...cycleViolations(sources), ...longFunctions(sources), ...effectCasts(sources)]

  for (const rule of rules) {
    it(`no ${rule} violation outside the allowlist`, () => {
      const found = violations.filter((v) => v.rule === rule && !isAllowed(v))
      assert.strictEqual(found.length, 0, `\n${found.map(describeViolation).join("\n")}\n`)
    })
  }

  it("every allowlist entry still matches a violation (fixed ones are removed from the list)", () => {
    const stale = allowed.filter((entry) => !violations.some((v) => v.rule === entry.rule && v.file === entry.file))
    assert.deepStrictEqual(stale, [])
  })

  it("the parse saw the whole tree: every module, its imports and its functions", () => {
    assert.strictEqual(sources.length, files.length)
    const index = sources.find((source) => source.file === "src/index.ts")
    assert.isAbove(index?.imports.length ?? 0, 5)
    assert.isAbove(sources.reduce((n, source) => n + source.functions.length, 0), 1000)
  })
})

describe("tidy: each rule finds its violation", () => {
  const longLines = [
    "export function long() {", ...lines(functionLinesMax - 1, "  console.log(0)"), "}",
    "export const arrowAtTheLimit = () => {", ...lines(functionLinesMax - 2, "  console.log(0)"), "}",
    "export const longGenerator = Effect.gen(function* () {", ...lines(functionLinesMax, "  yield* log"), "})",
    "class C {", "  method() {", ...lines(functionLinesMax, "    console.log(0)"), "  }", "}"
  ]
  const lineOf = (text: string) => longLines.indexOf(text) + 1
  // A tree that breaks every rule, parsed the same way as src/.
  const fixture: Record<string, string> = {
    "src/protocol/low.ts": `import { high } from "../layers/high.ts"\nexport const low = () => high\n`,
    "src/protocol/types.ts": `import type { High } from "../layers/high.ts"\nexport type Low = High\n`,
    "src/layers/high.ts": `import type { low } from "../protocol/low.ts"\nexport const high = 1\nexport type High = typeof low\n`,
    "src/ledger/a.ts": `import { b } from "./b.ts"\nexport const a = () => b\n`,
    "src/ledger/b.ts": `import { a } from "./a.ts"\nexport const b = () => a\n`,
    "src/ledger/c.ts": `import type { d } from "./d.ts"\nexport const c = 1\nexport type D = typeof d\n`,
    "src/ledger/d.ts": `import { c } from "./c.ts"\nexport const d = c\n`,
    "src/ledger/e.ts": `import { type f } from "./f.ts"\nexport const e = 1\nexport type F = typeof f\n`,
    "src/ledger/f.ts": `import { e } from "./e.ts"\nexport const f = e\n`,
    "src/ledger/long.ts": longLines.join("\n"),
    "src/storage/cast.ts": [
      `import { Effect } from "effect"`,
      `export const read = Effect.fnUntraced(function* (n: number) {`, `  return n`, `}) as (n: number) => Effect.Effect<number>`,
      `export const traced = Effect.fn("traced")(function* () { return 1 }) as unknown as Effect.Effect<number>`,
      `export const fine = 1 as number`
    ].join("\n"),
    "src/index.ts": `export * from "./layers/high.ts"\nexport { long } from "./ledger/long.ts"\n`,
    "src/assert.ts": `export { high } from "./layers/high.ts"\n`,
    "src/extra/stray.ts": `export const stray = 1\n`
  }
  const directory = mkdtempSync(join(tmpdir(), "scarab-tidy-"))
  for (const [file, text] of Object.entries(fixture)) {
    mkdirSync(dirname(join(directory, file)), { recursive: true })
    writeFileSync(join(directory, file), text)
  }
  const sources = parseSourcesOf(directory, Object.keys(fixture))
  rmSync(directory, { recursive: true })

  it("an upward import, also a type-only one, one from a shared utility and a folder outside the architecture; the package root may import anything", () => {
    assert.deepStrictEqual(layeringViolations(sources).map(describeViolation), [
      "src/protocol/low.ts:1 layering: protocol imports src/layers/high.ts (layers)",
      "src/protocol/types.ts:1 layering: protocol imports src/layers/high.ts (layers)",
      "src/assert.ts:1 layering: a shared utility imports src/layers/high.ts (layers)",
      "src/extra/stray.ts:1 layering: outside the architecture's folders (add its folder to folderRanks, or it to sharedUtilities)"
    ])
  })

  it("a cycle of value imports (`import { type X }` is one), not one closed by `import type`", () => {
    assert.deepStrictEqual(cycleViolations(sources).map(describeViolation), [
      "src/ledger/a.ts:1 cycle: src/ledger/a.ts → src/ledger/b.ts → src/ledger/a.ts",
      "src/ledger/e.ts:1 cycle: src/ledger/e.ts → src/ledger/f.ts → src/ledger/e.ts"
    ])
  })

  it("functions over the limit, whatever their form; one at the limit passes", () => {
    assert.deepStrictEqual(longFunctions(sources).map(describeViolation), [
      `src/ledger/long.ts:${lineOf("export function long() {")} function length: long is ${functionLinesMax + 1} lines (max ${functionLinesMax})`,
      `src/ledger/long.ts:${lineOf("export const longGenerator = Effect.gen(function* () {")} function length: function* is ${functionLinesMax + 2} lines (max ${functionLinesMax})`,
      `src/ledger/long.ts:${lineOf("  method() {")} function length: method is ${functionLinesMax + 2} lines (max ${functionLinesMax})`
    ])
  })

  it("an Effect generator cast to a signature, traced or not; not other casts", () => {
    assert.deepStrictEqual(effectCasts(sources).map(describeViolation), [
      "src/storage/cast.ts:4 effect cast: as (n: number) => Effect.Effect<number>",
      "src/storage/cast.ts:5 effect cast: as unknown"
    ])
  })
})

function lines(count: number, text: string): Array<string> {
  return Array.from({ length: count }, () => text)
}

// --- Facts ---------------------------------------------------------------------------------------

interface Import {
  /** Repository-relative path of the imported module (relative specifiers only). */
  readonly target: string
  /** `import type` / `export type`: erased when Node strips the types. */
  readonly typeOnly: boolean
  readonly line: number
}

interface FunctionSpan {
  readonly name: string
  readonly line: number
  readonly lines: number
}

interface Source {
  readonly file: string
  readonly imports: ReadonlyArray<Import>
  readonly functions: ReadonlyArray<FunctionSpan>
  readonly casts: ReadonlyArray<{ readonly line: number; readonly text: string }>
}

interface Violation {
  readonly rule: Rule
  readonly file: string
  readonly line: number
  readonly message: string
}

function parseSourcesOf(root: string, files: ReadonlyArray<string>): ReadonlyArray<Source> {
  return parseSources(root, files, factsOf)
}

function factsOf(file: string, sourceFile: SourceFile): Source {
  const imports: Array<Import> = []
  const functions: Array<FunctionSpan> = []
  const casts: Array<{ line: number; text: string }> = []
  const lineOf = (position: number) => sourceFile.getLineAndCharacterOfPosition(position).line + 1
  const visit = (node: Node): void => {
    if ((isImportDeclaration(node) || isExportDeclaration(node)) && node.moduleSpecifier !== undefined && isStringLiteral(node.moduleSpecifier)) {
      const specifier = node.moduleSpecifier.text
      const typeOnly = isImportDeclaration(node) ? node.importClause?.phaseModifier === SyntaxKind.TypeKeyword : node.isTypeOnly
      if (specifier.startsWith(".")) imports.push({ target: join(dirname(file), specifier), typeOnly, line: lineOf(node.getStart(sourceFile)) })
    }
    if (functionKinds.has(node.kind) && (node as { body?: Node }).body !== undefined) {
      const line = lineOf(node.getStart(sourceFile))
      functions.push({ name: functionName(node, sourceFile), line, lines: lineOf(node.end) - line + 1 })
    }
    if (isAsExpression(node) && isEffectCast(node.expression, node.type, sourceFile)) {
      casts.push({ line: lineOf(node.type.getStart(sourceFile)), text: `as ${node.type.getText(sourceFile).replace(/\s+/g, " ")}` })
    }
    node.forEachChild(visit)
  }
  visit(sourceFile)
  return { file, imports, functions, casts }
}

const functionKinds: ReadonlySet<SyntaxKind> = new Set([
  SyntaxKind.FunctionDeclaration, SyntaxKind.FunctionExpression, SyntaxKind.ArrowFunction, SyntaxKind.MethodDeclaration,
  SyntaxKind.Constructor, SyntaxKind.GetAccessor, SyntaxKind.SetAccessor
])

/** The declared name where there is one; for expressions, the kind (`function*`, `arrow`). */
function functionName(node: Node, sourceFile: SourceFile): string {
  const name = (node as { name?: Node }).name
  if (name !== undefined) return name.getText(sourceFile)
  if (node.kind === SyntaxKind.Constructor) return "constructor"
  if (node.kind === SyntaxKind.ArrowFunction) return "arrow"
  return (node as { asteriskToken?: Node }).asteriskToken === undefined ? "function" : "function*"
}

/**
 * An Effect generator cast to a signature: the operand is a call of `Effect.gen`, `Effect.fn` or
 * `Effect.fnUntraced` (curried or not), or the target is a function type returning an Effect.
 */
function isEffectCast(expression: Node, type: Node, sourceFile: SourceFile): boolean {
  let callee = expression
  while (isCallExpression(callee)) callee = callee.expression
  const calleeText = callee === expression ? "" : callee.getText(sourceFile)
  if (/^Effect\.(gen|fn|fnUntraced)$/.test(calleeText)) return true
  return isFunctionTypeNode(type) && type.type !== undefined && /^Effect(\.Effect)?</.test(type.type.getText(sourceFile))
}

// --- Rules ---------------------------------------------------------------------------------------

/** Architecture ranks of src/'s folders, lowest first. */
const folderRanks: Readonly<Record<string, number>> = { protocol: 0, ledger: 1, storage: 2, actors: 3, layers: 4, client: 5, cli: 6 }
/** Leaves anyone may import: assertions, the slab allocator, the native addon's loader (the protocol's checksum and the disk layers both call the addon). */
const sharedUtilities: ReadonlySet<string> = new Set(["src/assert.ts", "src/slab.ts", "src/native.ts", "src/prng.ts"])
const packageRoot = "src/index.ts"

/** Where a module of src/ sits: a folder's rank, shared (below all) or the root (above all). */
function placeOf(file: string): { readonly rank: number; readonly name: string } | undefined {
  if (sharedUtilities.has(file)) return { rank: -1, name: "a shared utility" }
  if (file === packageRoot) return { rank: Number.POSITIVE_INFINITY, name: "the package root" }
  const folder = file.split("/")[1]!
  const rank = folderRanks[folder]
  return rank === undefined ? undefined : { rank, name: folder }
}

function layeringViolations(sources: ReadonlyArray<Source>): Array<Violation> {
  const violations: Array<Violation> = []
  for (const source of sources) {
    const from = placeOf(source.file)
    if (from === undefined) {
      const message = "outside the architecture's folders (add its folder to folderRanks, or it to sharedUtilities)"
      violations.push({ rule: "layering", file: source.file, line: 1, message })
      continue
    }
    for (const edge of source.imports) {
      const to = placeOf(edge.target)
      // Down, or within its own folder (each folder has its own rank): allowed.
      if (to !== undefined && to.rank <= from.rank) continue
      const where = edge.target.startsWith("src/") ? to?.name ?? "outside the architecture" : "outside src/"
      violations.push({ rule: "layering", file: source.file, line: edge.line, message: `${from.name} imports ${edge.target} (${where})` })
    }
  }
  return violations
}

/** Each strongly connected component of the value-import graph with more than one module is a cycle. */
function cycleViolations(sources: ReadonlyArray<Source>): Array<Violation> {
  const edges = new Map(sources.map((source) => [source.file, source.imports.filter((edge) => !edge.typeOnly)]))
  return stronglyConnected([...edges.keys()], (file) => (edges.get(file) ?? []).map((edge) => edge.target))
    .filter((component) => component.length > 1 || (edges.get(component[0]!) ?? []).some((edge) => edge.target === component[0]))
    .map((component) => {
      const members = new Set(component)
      const first = [...component].sort()[0]!
      const path = cyclePath(first, (file) => (edges.get(file) ?? []).map((edge) => edge.target).filter((target) => members.has(target)))
      const line = edges.get(first)!.find((edge) => edge.target === path[1])!.line
      return { rule: "cycle" as const, file: first, line, message: path.join(" → ") }
    })
}

function longFunctions(sources: ReadonlyArray<Source>): Array<Violation> {
  return sources.flatMap((source) => source.functions.filter((fn) => fn.lines > functionLinesMax).map((fn) => ({
    rule: "function length" as const, file: source.file, line: fn.line,
    message: `${fn.name} is ${fn.lines} lines (max ${functionLinesMax})`
  })))
}

function effectCasts(sources: ReadonlyArray<Source>): Array<Violation> {
  return sources.flatMap((source) => source.casts.map((cast) => ({ rule: "effect cast" as const, file: source.file, line: cast.line, message: cast.text })))
}

function isAllowed(violation: Violation): boolean {
  return allowed.some((entry) => entry.rule === violation.rule && entry.file === violation.file)
}

function describeViolation(violation: Violation): string {
  return `${violation.file}:${violation.line} ${violation.rule}: ${violation.message}`
}

// --- Graphs --------------------------------------------------------------------------------------

/** Tarjan's algorithm: the strongly connected components of a directed graph. */
function stronglyConnected(nodes: ReadonlyArray<string>, next: (node: string) => ReadonlyArray<string>): Array<Array<string>> {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: Array<string> = []
  const onStack = new Set<string>()
  const components: Array<Array<string>> = []
  const visit = (node: string): void => {
    index.set(node, index.size)
    low.set(node, index.get(node)!)
    stack.push(node)
    onStack.add(node)
    for (const successor of next(node)) {
      if (!index.has(successor)) {
        visit(successor)
        low.set(node, Math.min(low.get(node)!, low.get(successor)!))
      } else if (onStack.has(successor)) low.set(node, Math.min(low.get(node)!, index.get(successor)!))
    }
    if (low.get(node) !== index.get(node)) return
    const component: Array<string> = []
    let member: string
    do {
      member = stack.pop()!
      onStack.delete(member)
      component.push(member)
    } while (member !== node)
    components.push(component)
  }
  for (const node of nodes) if (!index.has(node)) visit(node)
  return components
}

/** A shortest path from `start` back to itself (breadth first), as the list of modules it passes. */
function cyclePath(start: string, next: (node: string) => ReadonlyArray<string>): Array<string> {
  const parent = new Map<string, string>()
  const queue = [start]
  for (let head = 0; head < queue.length; head++) {
    for (const successor of next(queue[head]!)) {
      if (successor === start) {
        const path = [start]
        for (let node = queue[head]!; node !== start; node = parent.get(node)!) path.splice(1, 0, node)
        path.push(start)
        return path
      }
      if (!parent.has(successor)) {
        parent.set(successor, queue[head]!)
        queue.push(successor)
      }
    }
  }
  throw new Error(`${start} is on no cycle`)
}
