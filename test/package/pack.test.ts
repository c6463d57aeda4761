/**
 * Scarab as an installed package (issue 19): packed as `npm pack` packs it, installed into a
 * fresh project as a user would install it, then used from there both as a library and as the
 * `scarab` binary.
 *
 * - The checkout's files (`git ls-files`: tracked and untracked, not the ignored ones such as
 *   data files or dist/) are copied to a temporary folder that borrows the checkout's
 *   node_modules, and packed there: `npm pack` runs the `prepare` script, which compiles src/
 *   to dist/; packing a copy leaves the checkout's own dist/ alone while other tests run in it.
 * - The tarball holds only what the package needs: compiled JavaScript and .d.ts, the binary's
 *   launcher, the native sources its install script builds, LICENSE, README, package.json. No
 *   tests, simulator, benchmarks, examples, TypeScript sources or data files.
 * - A fresh project installs it with npm (its cache, --prefer-offline): the install script
 *   builds the native addon there, and the project holds a single copy of `effect` (a peer
 *   dependency), shared by the program and Scarab.
 * - A program importing `Ledger`, `layerMemory` and `layerClient` from "scarab" type-checks
 *   (strict, without skipLibCheck: the shipped .d.ts files are checked too) and runs.
 * - The binary runs from the project: `npx scarab version` names package.json's version,
 *   `npx scarab format` creates a data file, `scarab start` serves it, and the same program
 *   creates its accounts and transfer on that replica through `layerClient`.
 *
 * Nothing here waits on time: each step waits for a process to exit or to print a line, and
 * only the test timeout bounds a hang. Every process started is stopped by its PID.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { releaseFormat, releaseScarab } from "../../src/protocol/header.ts"

const root = new URL("../../", import.meta.url).pathname
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  readonly version: string
  readonly devDependencies: Readonly<Record<string, string>>
}

/**
 * The environment of every child: the project's Node first on PATH (npm, its scripts and the
 * binary's `#!/usr/bin/env node` run on it), and none of the `npm_*` variables that `npm test`
 * sets for its own project (such as npm_config_local_prefix), so that npm in the fresh project
 * sees that project, with the user's npm configuration as anywhere else.
 */
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("npm_"))),
  PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}`
}

const children = new Set<ChildProcess>()

interface Finished {
  readonly status: number | null
  readonly output: string
}

/** Runs a command to its end; rejects, with its output, unless it exits 0. */
async function run(command: string, args: ReadonlyArray<string>, cwd: string): Promise<string> {
  const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] })
  children.add(child)
  let stdout = ""
  let output = ""
  child.stdout!.on("data", (chunk) => {
    stdout += chunk
    output += chunk
  })
  child.stderr!.on("data", (chunk) => (output += chunk))
  const finished = await new Promise<Finished>((resolve, reject) => {
    child.once("error", reject)
    child.once("close", (status) => resolve({ status, output }))
  })
  children.delete(child)
  if (finished.status !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${finished.status}:\n${finished.output}`)
  return stdout
}

/** The program a user of the package writes: an in-memory ledger, or with a port the replica there. */
const program = `import { Effect, Layer } from "effect"
import { Ledger, layerClient, layerMemory, type LedgerError } from "scarab"

const port = process.argv[2]
const layer: Layer.Layer<Ledger, LedgerError | Error> =
  port === undefined ? layerMemory() : layerClient({ cluster: 0n, addresses: [port] })

const program = Effect.gen(function* () {
  const ledger = yield* Ledger
  const accounts = yield* ledger.createAccounts([{ id: 1n, ledger: 700, code: 10 }, { id: 2n, ledger: 700, code: 10 }])
  const transfers = yield* ledger.createTransfers([{ id: 10n, debit_account_id: 1n, credit_account_id: 2n, amount: 500n, ledger: 700, code: 1 }])
  const [debit, credit] = yield* ledger.lookupAccounts([1n, 2n])
  return { accounts: accounts.map((r) => r.status), transfers: transfers.map((r) => r.status), debited: debit?.debits_posted, credited: credit?.credits_posted }
})

const result = await Effect.runPromise(program.pipe(Effect.provide(layer)))
console.log(JSON.stringify(result, (_, value) => typeof value === "bigint" ? value.toString() : value))
`
const programResult = { accounts: ["created", "created"], transfers: ["created"], debited: "500", credited: "500" }

const consumerConfig = {
  compilerOptions: {
    target: "es2023", module: "nodenext", moduleResolution: "nodenext", lib: ["es2023"], types: ["node"],
    strict: true, exactOptionalPropertyTypes: true, skipLibCheck: false, outDir: "out"
  },
  include: ["main.ts"]
}

describe("the packed package, installed into a fresh project", () => {
  let work = ""
  let consumer = ""
  let files: ReadonlyArray<string> = []

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "scarab-pack-"))
    const copy = join(work, "checkout")
    const listed = await run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], root)
    for (const file of listed.split("\0")) {
      // A tracked file deleted in the work tree is listed but not packed.
      if (file !== "" && existsSync(join(root, file))) cpSync(join(root, file), join(copy, file))
    }
    symlinkSync(join(root, "node_modules"), join(copy, "node_modules"))
    const packed = JSON.parse(await run("npm", ["pack", "--json", "--pack-destination", work], copy)) as ReadonlyArray<{
      readonly filename: string
      readonly files: ReadonlyArray<{ readonly path: string }>
    }>
    expect(packed.length).toBe(1)
    files = packed[0]!.files.map((file) => file.path)

    consumer = join(work, "consumer")
    mkdirSync(consumer)
    writeFileSync(join(consumer, "package.json"), JSON.stringify({
      name: "consumer", private: true, type: "module",
      dependencies: { scarab: `file:${join(work, packed[0]!.filename)}`, "@types/node": manifest.devDependencies["@types/node"] }
    }, null, 2))
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], consumer)
    writeFileSync(join(consumer, "main.ts"), program)
    writeFileSync(join(consumer, "tsconfig.json"), JSON.stringify(consumerConfig, null, 2))
  })

  afterAll(() => {
    for (const child of children) child.kill("SIGKILL")
    if (work !== "") rmSync(work, { recursive: true, force: true })
  })

  it("the tarball holds dist/, the binary, the native sources, LICENSE and README, and nothing else", () => {
    const rootFiles = ["LICENSE", "README.md", "package.json", "binding.gyp"]
    const strays = files.filter((file) => !rootFiles.includes(file) && !/^(dist|bin|native)\//.test(file))
    expect(strays).toEqual([])
    for (const file of [...rootFiles, "bin/scarab.js", "dist/index.js", "dist/index.d.ts", "dist/cli/main.js", "native/build.mjs"]) {
      expect(files).toContain(file)
    }
    // What the install script compiles: every source binding.gyp names, and the header they share.
    const gyp = JSON.parse(readFileSync(join(root, "binding.gyp"), "utf8")) as { targets: ReadonlyArray<{ sources: ReadonlyArray<string> }> }
    for (const source of [...gyp.targets.flatMap((target) => target.sources), "native/scarab.h"]) expect(files).toContain(source)
    expect(files.filter((file) => /\.ts$/.test(file) && !file.endsWith(".d.ts"))).toEqual([])
    expect(files.filter((file) => /(^|\/)(test|sim|bench|examples|src)\/|\.test\.|\.(data|scarab|tgz)$/.test(file))).toEqual([])
  })

  it("installs with its native addon built, and one copy of effect shared with the project", () => {
    expect(existsSync(join(consumer, "node_modules/scarab/build/Release/scarab.node"))).toBe(true)
    expect(existsSync(join(consumer, "node_modules/effect/package.json"))).toBe(true)
    expect(existsSync(join(consumer, "node_modules/scarab/node_modules/effect"))).toBe(false)
  })

  it("a program importing Ledger, layerMemory and layerClient from \"scarab\" type-checks and runs", async () => {
    await run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", consumer], consumer)
    const output = await run(process.execPath, ["out/main.js"], consumer)
    expect(JSON.parse(output)).toEqual(programResult)
  })

  it("its binary prints the version, formats a data file and serves it to the program through layerClient", async () => {
    const version = await run("npx", ["scarab", "version", "--verbose"], consumer)
    expect(version.split("\n")[0]).toBe(`Scarab version ${manifest.version} (TigerBeetle ${releaseFormat(releaseScarab)} wire protocol)`)
    expect(version).toMatch(/^native_addon=on /m)
    const data = join(consumer, "0_0.scarab")
    await run("npx", ["scarab", "format", "--cluster=0", "--replica=0", "--replica-count=1", "--profile=test", data], consumer)
    expect(existsSync(data)).toBe(true)

    // Started without npx so that its PID is the replica's own; port 0: the kernel picks a free port.
    const replica = spawn(join(consumer, "node_modules/.bin/scarab"), ["start", "--addresses=0", data], { cwd: consumer, env, stdio: ["ignore", "pipe", "pipe"] })
    children.add(replica)
    const closed = new Promise<void>((resolve) => replica.once("close", () => resolve()))
    try {
      const port = await new Promise<string>((resolve, reject) => {
        let log = ""
        const check = (chunk: Buffer) => {
          log += chunk.toString()
          const serving = /serving on port (\d+)/.exec(log)
          if (serving !== null) resolve(serving[1]!)
        }
        replica.stdout!.on("data", check)
        replica.stderr!.on("data", check)
        void closed.then(() => reject(new Error(`scarab start exited before serving:\n${log}`)))
      })
      const output = await run(process.execPath, ["out/main.js", port], consumer)
      expect(JSON.parse(output)).toEqual(programResult)
    } finally {
      replica.kill("SIGKILL")
      await closed
      children.delete(replica)
    }
  })
})
