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

/**
 * Liveness bounds for a child process: how long a replica may take to serve, or a short command
 * to finish. Only a hang should reach them: on a loaded machine a start that takes 2 s idle can
 * take 20 s and more, and a test must not fail for being on a slow machine.
 */
export const startMs = 180_000
/** A child's whole run (a client's test suite, a benchmark): below the test timeout, so a hung child is killed and its output shown. */
export const childRunMs = 540_000

export function scarabSync(args: ReadonlyArray<string>): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(node, [cli, ...args], { encoding: "utf8", timeout: startMs })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

export function format(path: string, cluster = 0n): void {
  const result = scarabSync(["format", `--cluster=${cluster}`, "--replica=0", "--replica-count=1", "--profile=test", path])
  if (result.status !== 0) throw new Error(`format failed: ${result.stderr}${result.stdout}`)
}

export interface RunningReplica {
  readonly process: ChildProcess
  readonly port: number
  /** Its stdout and stderr so far, as they arrived (two pipes: lines written to both may arrive in either order). */
  output(): string
  /** Its stderr alone, in the order written (warnings, errors and the line it exits with). */
  errors(): string
  /**
   * Resolves with its exit code once it has exited and its output is all read: Node emits "exit"
   * possibly before the last output arrives, so output read at "exit" may lack its last lines.
   */
  readonly closed: Promise<number | null>
  kill(signal?: NodeJS.Signals): Promise<void>
}

/**
 * Starts `scarab start` (with `flags`) and resolves once it serves, or rejects with its output.
 * Without `port` it listens on port 0 and the kernel picks a free one, read from its "serving on
 * port" line: a port chosen here and bound later by the child could be taken meanwhile by another
 * process. A restart passes the port it served on before (its clients know that address).
 */
export async function startReplica(path: string, port = 0, flags: ReadonlyArray<string> = []): Promise<RunningReplica> {
  const child = spawn(node, [cli, "start", `--addresses=${port}`, ...flags, path], { stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  let errors = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => {
    output += chunk
    errors += chunk
  })
  const closed = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)))
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await closed
  }
  const served = await new Promise<number>((resolve, reject) => {
    const deadline = setTimeout(() => { void kill(); reject(new Error(`replica did not start within ${startMs} ms:\n${output}`)) }, startMs)
    const check = () => {
      const serving = /serving on port (\d+)/.exec(output)
      if (serving !== null) { clearTimeout(deadline); resolve(Number(serving[1])) }
    }
    child.stdout!.on("data", check)
    child.stderr!.on("data", check)
    void closed.then((code) => { clearTimeout(deadline); reject(new Error(`replica exited with ${code}:\n${output}`)) })
  })
  if (port !== 0 && served !== port) throw new Error(`replica asked for port ${port} serves on ${served}`)
  return { process: child, port: served, output: () => output, errors: () => errors, closed, kill }
}
