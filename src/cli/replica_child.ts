/**
 * A Scarab replica as a child process, for the benchmarks: format a data file, start `scarab
 * start` on it and wait until it serves, stop it; or a cluster of them on this host. Each
 * benchmark measures a replica in its own process, as a deployment would run it, so the load
 * generator never shares its event loop.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { assert } from "../assert.ts"

// The sources run main.ts; the package's compiled dist/ has main.js beside this module instead.
const cli = new URL(import.meta.url.endsWith(".ts") ? "./main.ts" : "./main.js", import.meta.url).pathname
/** A bound for a replica that never serves (or never logs a line awaited): the tests run these tools on loaded machines. */
const startTimeoutMs = 300_000

/** Formats `path` as replica `replica` of a cluster 0 of `replicaCount` (default: replica 0 of one). */
export function formatDataFile(path: string, profile: "production" | "test" = "production", replica = 0, replicaCount = 1): void {
  assert(replica >= 0 && replica < replicaCount, () => `replica ${replica} of ${replicaCount}`)
  const result = spawnSync(process.execPath,
    [cli, "format", "--cluster=0", `--replica=${replica}`, `--replica-count=${replicaCount}`, `--profile=${profile}`, path],
    { encoding: "utf8", timeout: 120_000 })
  if (result.status !== 0) throw new Error(`format failed: ${result.stderr}${result.stdout}`)
}

/** A replica child process whose log (its last MiB) is kept for the figures it prints. */
export interface ReplicaProcess {
  readonly child: ChildProcess
  /** The port it serves on (the one the kernel picked, when started on port 0). */
  readonly port: number
  readonly exited: Promise<void>
  log(): string
  /** Resolves with the match once the log matches `pattern` (60 s at most). */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>
}

const logBytesMax = 1 << 20

/**
 * Starts `scarab start` on `path` and resolves once it serves on `port`; on port 0 (the default)
 * the kernel picks a free port, which the replica names as it starts serving, so no other process
 * can take the port between its choice and its use. With `cpuProfileDirectory`, the replica runs
 * with `--cpu-prof` and writes its profile there on exit.
 */
export function startReplica(path: string, port = 0, cpuProfileDirectory?: string): Promise<ReplicaProcess> {
  return startReplicaOf(path, [port], 0, cpuProfileDirectory)
}

/**
 * Starts replica `replica` of a cluster whose replicas' ports are `ports` (by index), on
 * `ports[replica]`, 0 for one the kernel picks. A replica dials only the replicas above it (the
 * TCP bus's rule), so only their ports must be known: `startCluster` starts them from the top.
 */
export async function startReplicaOf(path: string, ports: ReadonlyArray<number>, replica: number, cpuProfileDirectory?: string): Promise<ReplicaProcess> {
  assert(replica >= 0 && replica < ports.length, () => `replica ${replica} of ${ports.length}`)
  assert(ports.slice(replica + 1).every((port) => port > 0), () => "the ports of the replicas above are known")
  const port = ports[replica]!
  const flags = cpuProfileDirectory === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${cpuProfileDirectory}`]
  // The replica's memory in transparent huge pages, as `npm start` runs it (see docs/decisions.md).
  const env = { ...process.env, GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? "glibc.malloc.hugetlb=1" }
  const child = spawn(process.execPath, [...flags, cli, "start", `--addresses=${ports.join(",")}`, path], { stdio: ["ignore", "pipe", "pipe"], env })
  let output = ""
  let served = port
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the replica did not start in ${startTimeoutMs} ms:\n${output}`)), startTimeoutMs)
      const onOutput = (chunk: Buffer) => {
        output += chunk
        const serving = /serving on port (\d+)/.exec(output)
        if (serving !== null) {
          served = Number(serving[1])
          clearTimeout(timer)
          resolve()
        }
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
  const waiters = new Set<() => void>()
  child.stdout!.on("data", (chunk: Buffer) => {
    output = (output + chunk).slice(-logBytesMax)
    for (const waiter of waiters) waiter()
  })
  child.stderr!.on("data", (chunk: Buffer) => process.stderr.write(`replica${ports.length === 1 ? "" : ` ${replica}`}: ${chunk}`))
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once("exit", () => resolve())
  })
  const waitFor = (pattern: RegExp) => new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`the replica never logged ${pattern}`)) }, startTimeoutMs)
    const check = () => {
      const match = pattern.exec(output)
      if (match === null) return
      clearTimeout(timer)
      waiters.delete(check)
      resolve(match)
    }
    waiters.add(check)
    check()
  })
  return { child, port: served, exited, log: () => output, waitFor }
}

/** SIGTERM (so that a CPU profile gets written), then SIGKILL if it lingers. */
export async function stopReplica(replica: ChildProcess | ReplicaProcess): Promise<void> {
  const child = "child" in replica ? replica.child : replica
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
  await exited
  clearTimeout(timer)
}

/**
 * Starts a cluster's replicas, one process each, on ports the kernel picks: from the highest
 * index down, so that every replica knows the ports of the ones it dials. Resolves with them by
 * index once all serve; if one fails to start, the ones started are stopped.
 */
export async function startCluster(paths: ReadonlyArray<string>, cpuProfileDirectory?: string): Promise<Array<ReplicaProcess>> {
  assert(paths.length >= 1, () => "a cluster has a replica")
  const ports = paths.map(() => 0)
  const replicas: Array<ReplicaProcess> = []
  try {
    for (let replica = paths.length - 1; replica >= 0; replica--) {
      const started = await startReplicaOf(paths[replica]!, ports, replica, cpuProfileDirectory)
      ports[replica] = started.port
      replicas.unshift(started)
    }
  } catch (error) {
    for (const started of replicas) await stopReplica(started)
    throw error
  }
  assert(replicas.length === paths.length && ports.every((port) => port > 0), () => "every replica serves")
  return replicas
}

/**
 * The index of a cluster's primary once every replica is normal in the same view (its log says
 * so: `replica <i>: normal view=<v> primary=<p>`) and has stayed so for 3 s: twice the time
 * backups wait for a primary before they vote it out. A fresh cluster started from its highest
 * index down often elects replica 1 just after replica 0 started (docs/decisions.md).
 */
export async function clusterPrimary(replicas: ReadonlyArray<ReplicaProcess>): Promise<number> {
  assert(replicas.length >= 1, () => "a cluster has a replica")
  const deadline = Date.now() + startTimeoutMs
  let agreed: { readonly primary: number; readonly lines: string; readonly since: number } | undefined
  for (;;) {
    const views = replicas.map((replica) => [...replica.log().matchAll(/replica \d+: (normal|view change|recovering head) view=(\d+) primary=(\d+)/g)].at(-1))
    const first = views[0]
    const lines = views.map((line) => line?.[0]).join("\n")
    if (first !== undefined && views.every((line) => line !== undefined && line[1] === "normal" && line[2] === first[2])) {
      if (agreed?.lines !== lines) agreed = { primary: Number(first[3]), lines, since: Date.now() }
      if (Date.now() - agreed.since >= stableMs) {
        assert(agreed.primary < replicas.length, () => `primary ${agreed!.primary} is one of the ${replicas.length}`)
        return agreed.primary
      }
    } else {
      agreed = undefined
    }
    if (Date.now() > deadline) throw new Error(`the cluster elected no primary in ${startTimeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

const stableMs = 3000
