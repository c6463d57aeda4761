/**
 * Parses TypeScript files with the TypeScript 7 compiler for the source-checking tests (tidy,
 * assertion density): a throwaway project with no lib and no module resolution, so the files
 * are only parsed, never checked, and `of` reads what it needs from each syntax tree.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert } from "@effect/vitest"
import type { SourceFile } from "typescript/unstable/ast"
import { API } from "typescript/unstable/sync"

export function parseSources<A>(root: string, files: ReadonlyArray<string>, of: (file: string, sourceFile: SourceFile) => A): ReadonlyArray<A> {
  const directory = mkdtempSync(join(tmpdir(), "scarab-parse-"))
  const config = join(directory, "tsconfig.json")
  writeFileSync(config, JSON.stringify({
    compilerOptions: { noLib: true, noResolve: true, types: [], noEmit: true, allowImportingTsExtensions: true, module: "nodenext", target: "es2023" },
    files: files.map((file) => join(root, file))
  }))
  const api = new API({ cwd: directory })
  try {
    const program = api.updateSnapshot({ openProjects: [config] }).getProjects()[0]!.program
    return files.map((file) => {
      const sourceFile = program.getSourceFile(join(root, file))
      assert.isDefined(sourceFile, `${file} parsed`)
      return of(file, sourceFile!)
    })
  } finally {
    api.close()
    rmSync(directory, { recursive: true })
  }
}
