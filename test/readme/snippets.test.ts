/**
 * The README's TypeScript examples run as shown: every ```ts block is extracted (named by its
 * `// file:` line), its `"scarab"` imports pointed at src/index.ts, type-checked with the
 * project's compiler options, and run: a program on the project's Node (the `layerClient` one
 * against a replica process started for it, its address swapped in), a `.test.ts` block under
 * vitest. Each must exit 0 and print what its `console.log(...) // expected` comments say, so a
 * block that refers to an undefined `program` or prints nothing fails. A block that is
 * deliberately a fragment is marked `<!-- snippet: fragment -->` on the line before its fence,
 * and only such blocks are skipped.
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { childRunMs, startMs, startReplica, temporaryDataFile, type RunningReplica } from "../integration/replica_process.ts"

const root = new URL("../../", import.meta.url).pathname
const fragmentMarker = "<!-- snippet: fragment -->"

interface Snippet {
  readonly name: string
  readonly code: string
  readonly line: number
}

/** The README's ```ts blocks that are not marked as fragments, named by their `// file:` line. */
function readmeSnippets(markdown: string): ReadonlyArray<Snippet> {
  const lines = markdown.split("\n")
  const snippets: Array<Snippet> = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```ts") continue
    const end = lines.indexOf("```", i + 1)
    expect(end, `README.md:${i + 1}: an unclosed ts block`).toBeGreaterThan(i)
    const code = lines.slice(i + 1, end).join("\n")
    const named = /^\/\/ file: (\S+\.ts)/.exec(lines[i + 1] ?? "")
    if (lines[i - 1] !== fragmentMarker) snippets.push({ name: named?.[1] ?? `snippet_line_${i + 1}.ts`, code, line: i + 1 })
    i = end
  }
  return snippets
}

/** The `console.log(...) // expected` comments of a block: what its run must print. */
function expectedOutput(code: string): ReadonlyArray<string> {
  return [...code.matchAll(/console\.log\(.*\)\s*\/\/ (.+)$/gm)].map((match) => match[1]!.trim())
}

const snippets = readmeSnippets(readFileSync(join(root, "README.md"), "utf8"))
// A temporary folder whose node_modules is the project's, so that `effect` and `@effect/vitest` resolve (Node strips types only outside node_modules).
const directory = mkdtempSync(join(tmpdir(), "scarab-readme-"))
symlinkSync(join(root, "node_modules"), join(directory, "node_modules"))
writeFileSync(join(directory, "package.json"), JSON.stringify({ type: "module", private: true }))
let replica: RunningReplica | undefined
const data = temporaryDataFile()
afterAll(async () => {
  await replica?.kill()
  data.remove()
  rmSync(directory, { recursive: true, force: true })
})

/** Writes the block as its file, importing the package root from this checkout. */
function writeSnippet(snippet: Snippet, replace: (code: string) => string = (code) => code): string {
  const path = join(directory, snippet.name)
  mkdirSync(join(path, ".."), { recursive: true })
  writeFileSync(path, replace(snippet.code.replaceAll(`from "scarab"`, `from ${JSON.stringify(join(root, "src/index.ts"))}`)))
  return path
}

function run(args: ReadonlyArray<string>, cwd: string) {
  const result = spawnSync(process.execPath, args, { cwd, encoding: "utf8", timeout: childRunMs })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

describe("README.md's TypeScript snippets", () => {
  it("has the blocks this test knows how to run, and none marked as a fragment without a reason to be", () => {
    expect(snippets.map((snippet) => snippet.name)).toEqual(["wallet.ts", "bulk.ts", "test/wallet.test.ts", "client.ts", "embedded.ts"])
  })

  it("type-check with the project's compiler options", () => {
    const paths = snippets.map((snippet) => writeSnippet(snippet))
    const tsconfig = join(directory, "tsconfig.json")
    writeFileSync(tsconfig, JSON.stringify({ extends: join(root, "tsconfig.json"), include: paths, compilerOptions: { noUnusedLocals: true } }))
    const result = run([join(root, "node_modules/typescript/bin/tsc"), "-p", tsconfig], directory)
    expect(result.output).toBe("")
    expect(result.status).toBe(0)
  }, childRunMs)

  for (const snippet of snippets) {
    it(`${snippet.name} (README.md:${snippet.line}) runs and prints what it says`, async () => {
      let path: string
      if (snippet.code.includes("layerClient(")) {
        replica ??= await startReplica(data.path, 0, ["--format-if-missing", "--cluster=0"])
        const port = replica.port
        path = writeSnippet(snippet, (code) => code.replace(`addresses: ["3000"]`, `addresses: ["${port}"]`))
      } else {
        path = writeSnippet(snippet)
      }
      const result = snippet.name.endsWith(".test.ts")
        ? run([join(root, "node_modules/vitest/vitest.mjs"), "run", "--root", directory, path], directory)
        : run([path], directory)
      expect(result.status, result.output).toBe(0)
      if (!snippet.name.endsWith(".test.ts")) expect(result.output.trim(), "prints nothing").not.toBe("")
      for (const expected of expectedOutput(snippet.code)) expect(result.output).toContain(expected)
    }, startMs + childRunMs)
  }
})
