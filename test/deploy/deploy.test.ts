/**
 * The deployment files, as far as this machine can run them (it has no Docker daemon, and
 * systemd does not run here): the Dockerfile copies only files that exist and that .dockerignore
 * lets through, covering everything `npm pack` and the native build read; the command the image
 * runs starts a replica that serves and stops cleanly on SIGTERM (its /data swapped for a
 * temporary folder, its port for one the kernel picks); the systemd unit passes
 * `systemd-analyze verify` (where installed) and its ExecStart is a valid `scarab start`.
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { commandNamed } from "../../src/cli/usage.ts"
import { startMs } from "../integration/replica_process.ts"

const root = new URL("../../", import.meta.url).pathname
const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8")
const unit = readFileSync(join(root, "deploy/scarab@.service"), "utf8")
const cli = join(root, "src/cli/main.ts")

let directory: string | undefined
afterEach(() => {
  if (directory !== undefined) rmSync(directory, { recursive: true, force: true })
  directory = undefined
})

/** The sources of the Dockerfile's COPY lines that read the build context (not `--from=`). */
function copiedSources(): ReadonlyArray<string> {
  return dockerfile.split("\n").filter((line) => line.startsWith("COPY ") && !line.startsWith("COPY --from"))
    .flatMap((line) => line.slice("COPY ".length).trim().split(/\s+/).slice(0, -1))
}

/** The image's CMD as an argument list. */
function imageCommand(): ReadonlyArray<string> {
  const line = dockerfile.split("\n").find((text) => text.startsWith("CMD "))
  expect(line).toBeDefined()
  return JSON.parse(line!.slice("CMD ".length)) as ReadonlyArray<string>
}

/** Runs `scarab <args>` until it logs that it serves, then sends SIGTERM; resolves with its exit code and output. */
function serveThenStop(args: ReadonlyArray<string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    const deadline = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`no 'serving on port' within ${startMs} ms:\n${output}`)) }, startMs)
    const check = (chunk: Buffer) => {
      output += chunk
      if (/serving on port \d+/.test(output)) child.kill("SIGTERM")
    }
    child.stdout.on("data", check)
    child.stderr.on("data", check)
    child.once("close", (code) => { clearTimeout(deadline); resolve({ code, output }) })
  })
}

describe("Dockerfile", () => {
  it("copies files that exist and that .dockerignore does not exclude, covering what the package build reads", () => {
    const ignored = readFileSync(join(root, ".dockerignore"), "utf8").split("\n").filter((line) => line !== "")
    const sources = copiedSources()
    for (const source of sources) {
      expect(existsSync(join(root, source)), source).toBe(true)
      expect(ignored.filter((pattern) => pattern === source || pattern === source.split("/")[0]), source).toEqual([])
    }
    const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { files: ReadonlyArray<string> }
    // The package's files are built from these (dist/ from src/ by scripts/build.mjs with tsconfig.build.json).
    const needed = [...manifest.files.filter((file) => file !== "dist/"), "package.json", "package-lock.json", "src", "scripts", "tsconfig.json", "tsconfig.build.json"]
    for (const file of needed) expect(sources.map((source) => source.replace(/\/$/, "")), file).toContain(file.replace(/\/$/, ""))
  })

  it("runs a command that starts a replica on /data, formatting it when missing, and stops on SIGTERM with exit 0", async () => {
    directory = mkdtempSync(join(tmpdir(), "scarab-docker-"))
    const args = imageCommand().map((arg) => arg.replace("/data/", `${directory}/`).replace("0.0.0.0:3000", "127.0.0.1:0"))
    expect(args).not.toEqual(imageCommand())
    const { code, output } = await serveThenStop(args)
    expect(output).toContain(`formatted replica 0 of cluster 0`)
    expect(output).toContain("stopping on a signal")
    expect(code, output).toBe(0)
  }, 2 * startMs)
})

describe("deploy/scarab@.service", () => {
  const execStart = unit.split("\n").find((line) => line.startsWith("ExecStart="))!.slice("ExecStart=".length).split(" ")

  it("runs `scarab start` with options the command accepts", () => {
    expect(execStart[0]).toMatch(/\/scarab$/)
    expect(execStart[1]).toBe("start")
    const accepted = commandNamed("start")!.options.map((option) => option.name)
    for (const flag of execStart.slice(2).filter((arg) => arg.startsWith("--"))) {
      expect(accepted).toContain(/^--([a-z-]+)/.exec(flag)![1])
    }
    expect(execStart.at(-1)).toMatch(/^\/var\/lib\/scarab\/0_%i\.scarab$/)
  })

  it.skipIf(spawnSync("systemd-analyze", ["--version"]).status !== 0)("passes systemd-analyze verify (ExecStart pointed at this checkout's binary)", () => {
    directory = mkdtempSync(join(tmpdir(), "scarab-unit-"))
    const path = join(directory, "scarab@0.service")
    writeFileSync(path, unit.replaceAll(execStart[0]!, join(root, "bin/scarab.js")))
    const result = spawnSync("systemd-analyze", ["verify", path], { encoding: "utf8" })
    expect(`${result.stdout}${result.stderr}`).toBe("")
    expect(result.status).toBe(0)
  })
})
