// Builds the native addon during `npm install` (the package's `install` script) with node-gyp,
// against the Node headers that the pinned `node` package ships, so nothing is downloaded.
// SCARAB_NATIVE=skip skips the build; Scarab then runs on its TypeScript checksum and the
// thread-pool storage layer without Direct I/O alignment guarantees (see docs/decisions.md).
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, realpathSync } from "node:fs"
import path from "node:path"

if (process.env.SCARAB_NATIVE === "skip") {
  console.log("scarab: SCARAB_NATIVE=skip, not building the native addon")
  process.exit(0)
}

const root = path.resolve(import.meta.dirname, "..")
const hasHeaders = (dir) => existsSync(path.join(dir, "include", "node", "node_api.h"))

// The `node` npm package installs the real binary and headers as node_modules/node/node_modules/node-<os>-<arch>.
const candidates = []
const pinned = path.join(root, "node_modules", "node", "node_modules")
if (existsSync(pinned)) for (const name of readdirSync(pinned)) if (name.startsWith("node-")) candidates.push(path.join(pinned, name))
candidates.push(path.resolve(path.dirname(realpathSync(process.execPath)), ".."))
const nodedir = candidates.find(hasHeaders)

// npm tells its lifecycle scripts where its bundled node-gyp is; run directly, ask npm.
const globalRoot = () => spawnSync("npm", ["root", "-g"], { encoding: "utf8" }).stdout?.trim() ?? ""
const gyp = process.env.npm_config_node_gyp ?? path.join(globalRoot(), "npm", "node_modules", "node-gyp", "bin", "node-gyp.js")
const args = [gyp, "rebuild", ...(nodedir ? [`--nodedir=${nodedir}`] : [])]
if (!nodedir) console.warn("scarab: no local Node headers found; node-gyp may download them")
console.log(`scarab: building the native addon (node-gyp, headers from ${nodedir ?? "node-gyp's cache"})`)
const result = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" })
if (result.status !== 0) {
  console.error("scarab: the native addon failed to build; set SCARAB_NATIVE=skip to install without it")
  process.exit(result.status ?? 1)
}
