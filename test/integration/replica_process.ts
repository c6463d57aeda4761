/**
 * Runs `scarab` as a child process for integration tests: a temporary data file, a free port,
 * readiness from the replica's log line, and a kill that always happens (by PID).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const root = new URL("../../", import.meta.url).pathname
const node = process.execPath
const cli = join(root, "src/cli/main.ts")

export interface DataDirectory {
  readonly path: string
  remove(): void
}

export function temporaryDataFile(): DataDirectory {
  const directory = mkdtempSync(join(tmpdir(), "scarab-test-"))
  return { path: join(directory, "0_0.scarab"), remove: () => rmSync(directory, { recursive: true, force: true }) }
}

export function scarabSync(args: ReadonlyArray<string>): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(node, [cli, ...args], { encoding: "utf8", timeout: 60_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

export function format(path: string, cluster = 0n): void {
  const result = scarabSync(["format", `--cluster=${cluster}`, "--replica=0", "--replica-count=1", "--profile=test", path])
  if (result.status !== 0) throw new Error(`format failed: ${result.stderr}${result.stdout}`)
}

export { freePort } from "../../src/cli/free_port.ts"

export interface RunningReplica {
  readonly process: ChildProcess
  readonly port: number
  output(): string
  kill(signal?: NodeJS.Signals): Promise<void>
}

/** Starts `scarab start` and resolves once it serves, or rejects with its output. */
export async function startReplica(path: string, port: number): Promise<RunningReplica> {
  const child = spawn(node, [cli, "start", `--addresses=${port}`, path], { stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => (output += chunk))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await exited
  }
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => { void kill(); reject(new Error(`replica did not start in time:\n${output}`)) }, 30_000)
    const check = () => {
      if (output.includes("serving on port")) { clearTimeout(deadline); resolve() }
    }
    child.stdout!.on("data", check)
    child.stderr!.on("data", check)
    child.once("exit", (code) => { clearTimeout(deadline); reject(new Error(`replica exited with ${code}:\n${output}`)) })
  })
  return { process: child, port, output: () => output, kill }
}
