// Compiles src/ to dist/: the JavaScript and .d.ts files the package ships (its `exports` and
// `bin` point there), because Node refuses to strip types from .ts files inside node_modules.
// Runs as the `prepare` script, so on `npm install` / `npm ci` of a checkout and on `npm pack`.
// Development never reads dist/: tests, `npm start` and `npx scarab` in a checkout run the .ts
// sources (bin/scarab.js picks them when src/ is present).
//
// tsc writes into a fresh directory outside the tree, which then replaces dist/ whole: files
// of deleted sources never linger into a tarball, and a concurrent reader of dist/ (another
// `npm pack` in the same checkout) sees the old tree or the new one for all but a moment.
import { spawnSync } from "node:child_process"
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const dist = path.join(root, "dist")
const typescript = path.join(root, "node_modules", "typescript")
const tsc = path.join(typescript, JSON.parse(readFileSync(path.join(typescript, "package.json"), "utf8")).bin.tsc)

const staging = mkdtempSync(path.join(tmpdir(), "scarab-build-"))
try {
  const result = spawnSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.build.json"), "--outDir", staging], { stdio: "inherit" })
  if (result.status !== 0) {
    console.error(`scarab: compiling src/ to dist/ failed (tsc exit ${result.status ?? result.signal})`)
    process.exit(result.status ?? 1)
  }
  // Copy beside dist/ (the same file system), then swap: a rename cannot cross from tmpdir.
  const next = `${dist}.${process.pid}.next`
  const previous = `${dist}.${process.pid}.previous`
  cpSync(staging, next, { recursive: true })
  // Another build may put its dist/ in place between our two renames: then move that one aside too.
  for (let attempt = 1; ; attempt++) {
    rmSync(previous, { recursive: true, force: true })
    try {
      renameSync(dist, previous)
    } catch (error) {
      if (error.code !== "ENOENT") throw error
    }
    try {
      renameSync(next, dist)
      break
    } catch (error) {
      if ((error.code !== "ENOTEMPTY" && error.code !== "EEXIST") || attempt === 10) throw error
    }
  }
  rmSync(previous, { recursive: true, force: true })
} finally {
  rmSync(staging, { recursive: true, force: true })
}
