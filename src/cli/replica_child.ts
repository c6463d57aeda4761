/**
 * A Scarab replica as a child process, for the benchmarks: format a data file, start `scarab
 * start` on it and wait until it serves, stop it. Each benchmark measures a replica in its own
 * process, as a deployment would run it, so the load generator never shares its event loop.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"

const cli = new URL("./main.ts", import.meta.url).pathname
const startTimeoutMs = 60_000

/** Formats `path` as replica 0 of a one-replica cluster 0. */
export function formatDataFile(path: string, profile: "production" | "test" = "production"): void {
  const result = spawnSync(process.execPath, [cli, "format", "--cluster=0", "--replica=0", "--replica-count=1", `--profile=${profile}`, path],
    { encoding: "utf8", timeout: 120_000 })
  if (result.status !== 0) throw new Error(`format failed: ${result.stderr}${result.stdout}`)
}

/**
 * Starts `scarab start` on `path` and resolves once it serves on `port`. With
 * `cpuProfileDirectory`, the replica runs with `--cpu-prof` and writes its profile there on exit.
 */
export async function startReplica(path: string, port: number, cpuProfileDirectory?: string): Promise<ChildProcess> {
  const flags = cpuProfileDirectory === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${cpuProfileDirectory}`]
  // The replica's memory in transparent huge pages, as `npm start` runs it (see docs/decisions.md).
  const env = { ...process.env, GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? "glibc.malloc.hugetlb=1" }
  const child = spawn(process.execPath, [...flags, cli, "start", `--addresses=${port}`, path], { stdio: ["ignore", "pipe", "pipe"], env })
  let output = ""
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the replica did not start in ${startTimeoutMs} ms:\n${output}`)), startTimeoutMs)
      const onOutput = (chunk: Buffer) => {
        output += chunk
        if (output.includes("serving on port")) { clearTimeout(timer); resolve() }
      }
      child.stdout!.on("data", onOutput)
      child.stderr!.on("data", onOutput)
      child.once("exit", (code, signal) => { clearTimeout(timer); reject(new Error(`the replica exited (${code ?? signal}):\n${output}`)) })
    })
  } catch (error) {
    await stopReplica(child)
    throw error
  }
  // Keep draining its output so that a full pipe never blocks it; show errors it logs.
  child.stdout!.removeAllListeners("data")
  child.stderr!.removeAllListeners("data")
  child.stdout!.on("data", () => {})
  child.stderr!.on("data", (chunk: Buffer) => process.stderr.write(`replica: ${chunk}`))
  return child
}

/** SIGTERM (so that a CPU profile gets written), then SIGKILL if it lingers. */
export async function stopReplica(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
  await exited
  clearTimeout(timer)
}
