// Builds the native addon during `npm install` (the package's `install` script) with node-gyp,
// against Node headers already on the machine (below), so nothing is downloaded: in a checkout,
// and in a project that installs the packed Scarab, whose install runs this same script.
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

// The `node` npm package installs the real binary and headers as node_modules/node/node_modules/node-<os>-<arch>
// (a later `npm install` may remove that folder, leaving only bin/node). Searched: the pinned
// Node of this checkout; then the Node running this script, an official install (bin/node beside
// include/node) or the `node` package (as where Scarab is installed into a project that runs npm on
// a pinned Node); last, a system Node's (/usr/local, /usr). Node-API is ABI-stable, so the headers of
// any Node with NAPI_VERSION 8 build an addon that loads in every later Node.
const candidates = []
const packaged = (modules) => existsSync(modules) ? readdirSync(modules).filter((name) => name.startsWith("node-")).map((name) => path.join(modules, name)) : []
candidates.push(...packaged(path.join(root, "node_modules", "node", "node_modules")))
const running = path.resolve(path.dirname(realpathSync(process.execPath)), "..")
candidates.push(running, ...packaged(path.join(running, "node_modules")), "/usr/local", "/usr")
const nodedir = candidates.find(hasHeaders)

// npm tells its lifecycle scripts where its bundled node-gyp is; run directly, ask npm.
const globalRoot = () => spawnSync("npm", ["root", "-g"], { encoding: "utf8" }).stdout?.trim() ?? ""
const gyp = process.env.npm_config_node_gyp ?? path.join(globalRoot(), "npm", "node_modules", "node-gyp", "bin", "node-gyp.js")
const args = [gyp, "rebuild", ...(nodedir ? [`--nodedir=${nodedir}`] : [])]
// Without headers found here, node-gyp takes npm's `nodedir` setting, or downloads them into its cache.
const configured = process.env.npm_config_nodedir
if (!nodedir && !configured) console.warn("scarab: no local Node headers found; node-gyp may download them")
console.log(`scarab: building the native addon (node-gyp, headers from ${nodedir ?? (configured ? `npm's nodedir ${configured}` : "node-gyp's cache")})`)
const result = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" })
if (result.status !== 0) {
  console.error("scarab: the native addon failed to build; set SCARAB_NATIVE=skip to install without it")
  process.exit(result.status ?? 1)
}
