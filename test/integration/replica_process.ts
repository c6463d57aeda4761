/**
 * Runs `scarab` as a child process for integration tests: a temporary data file, a free port,
 * readiness from the replica's log line, and a kill that always happens (by PID); and a cluster
 * of such processes on this host.
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

export function scarabSync(args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(node, [cli, ...args], { encoding: "utf8", timeout: startMs, env })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** Formats `path` (test profile: a checkpoint every 32 ops) as replica `replica` of a cluster of `replicaCount`. */
export function format(path: string, cluster = 0n, replica = 0, replicaCount = 1): void {
  const result = scarabSync(["format", `--cluster=${cluster}`, `--replica=${replica}`, `--replica-count=${replicaCount}`, "--profile=test", path])
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
  /**
   * Resolves with what `find` returns once it returns something for the output so far, checked
   * at every chunk of output; rejects if the replica exits first, or after `timeoutMs`.
   */
  waitFor<T>(find: (output: string) => T | undefined, what: string, timeoutMs?: number): Promise<T>
}

/**
 * Starts `scarab start` (with `flags`) and resolves once it serves, or rejects with its output.
 * Without `port` it listens on port 0 and the kernel picks a free one, read from its "serving on
 * port" line: a port chosen here and bound later by the child could be taken meanwhile by another
 * process. A restart passes the port it served on before (its clients know that address).
 */
/** `port`: a number, or an address as `--addresses` takes it (such as `[::1]:0`). */
export function startReplica(path: string, port: number | string = 0, flags: ReadonlyArray<string> = []): Promise<RunningReplica> {
  return startReplicaOf(path, [port], 0, flags)
}

/**
 * Starts replica `replica` of a cluster whose replicas serve on `ports` (by index): the same list
 * on every replica, as `scarab start --addresses` wants, except that an entry may be 0 for a port
 * the kernel picks, where the replica does not dial it (its own, or a lower index's).
 */
export async function startReplicaOf(path: string, ports: ReadonlyArray<number | string>, replica: number, flags: ReadonlyArray<string> = []): Promise<RunningReplica> {
  if (!(replica >= 0 && replica < ports.length)) throw new Error(`replica ${replica} of ${ports.length}`)
  const port = ports[replica]!
  const child = spawn(node, [cli, "start", `--addresses=${ports.join(",")}`, ...flags, path], { stdio: ["ignore", "pipe", "pipe"] })
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
  if (typeof port === "number" && port !== 0 && served !== port) throw new Error(`replica asked for port ${port} serves on ${served}`)
  const waitFor = <T>(find: (output: string) => T | undefined, what: string, timeoutMs = startMs) => new Promise<T>((resolve, reject) => {
    const stop = () => {
      clearTimeout(deadline)
      child.stdout!.off("data", check)
      child.stderr!.off("data", check)
    }
    const deadline = setTimeout(() => { stop(); reject(new Error(`replica never logged ${what} within ${timeoutMs} ms:\n${output.slice(-8192)}`)) }, timeoutMs)
    // Listeners run in the order added: the output has this chunk when `check` runs.
    const check = () => {
      const found = find(output)
      if (found !== undefined) { stop(); resolve(found) }
    }
    child.stdout!.on("data", check)
    child.stderr!.on("data", check)
    void closed.then((code) => { stop(); reject(new Error(`replica exited with ${code} before it logged ${what}:\n${output.slice(-8192)}`)) })
    check()
  })
  return { process: child, port: served, output: () => output, errors: () => errors, closed, kill, waitFor }
}

/** A cluster's data files in one temporary directory, `0_<i>.scarab` by replica index. */
export interface ClusterFiles {
  readonly paths: ReadonlyArray<string>
  remove(): void
}

export function temporaryClusterFiles(replicaCount: number, cluster = 0n): ClusterFiles {
  const directory = mkdtempSync(join(tmpdir(), "scarab-cluster-"))
  const paths = Array.from({ length: replicaCount }, (_, i) => join(directory, `0_${i}.scarab`))
  try {
    paths.forEach((path, replica) => format(path, cluster, replica, replicaCount))
  } catch (error) {
    rmSync(directory, { recursive: true, force: true })
    throw error
  }
  return { paths, remove: () => rmSync(directory, { recursive: true, force: true }) }
}

export interface RunningCluster {
  /** The replica processes by index; `restart` replaces an entry. */
  readonly replicas: Array<RunningReplica>
  /** The port each replica serves on, by index: a client's replica_addresses. */
  readonly ports: ReadonlyArray<number>
  /** Starts replica `replica` again on its file and port (after a kill). */
  restart(replica: number): Promise<RunningReplica>
  /** Kills every replica still running (SIGKILL by default). */
  kill(signal?: NodeJS.Signals): Promise<void>
  /**
   * Resolves with what `find` returns once it returns something, checked at every chunk of any
   * replica's output (of the processes running when called); rejects after `timeoutMs`.
   */
  waitFor<T>(find: () => T | undefined, what: string, timeoutMs?: number): Promise<T>
}

/**
 * Starts a replica process on each of `files`, on ports the kernel picks: from the highest index
 * down, since a replica dials only the ones above it (the TCP bus's rule), so each is given the
 * ports of those. Resolves once all serve; if one fails to start, the ones started are killed.
 */
export async function startCluster(files: ClusterFiles): Promise<RunningCluster> {
  const ports = files.paths.map(() => 0)
  const replicas: Array<RunningReplica> = []
  try {
    for (let replica = files.paths.length - 1; replica >= 0; replica--) {
      const started = await startReplicaOf(files.paths[replica]!, ports, replica)
      ports[replica] = started.port
      replicas.unshift(started)
    }
  } catch (error) {
    for (const started of replicas) await started.kill()
    throw error
  }
  return {
    replicas,
    ports,
    restart: async (replica) => {
      const previous = replicas[replica]!
      if (previous.process.exitCode === null && previous.process.signalCode === null) throw new Error(`replica ${replica} is still running`)
      replicas[replica] = await startReplicaOf(files.paths[replica]!, ports, replica)
      return replicas[replica]
    },
    kill: async (signal) => { for (const replica of replicas) await replica.kill(signal) },
    waitFor: (find, what, timeoutMs = startMs) => {
      const streams = replicas.flatMap((replica) => [replica.process.stdout!, replica.process.stderr!])
      return new Promise((resolve, reject) => {
        const stop = () => {
          clearTimeout(deadline)
          for (const stream of streams) stream.off("data", check)
        }
        const outputs = () => replicas.map((replica, i) => `--- replica ${i} ---\n${replica.output().slice(-4096)}`).join("\n")
        const deadline = setTimeout(() => { stop(); reject(new Error(`the cluster never logged ${what} within ${timeoutMs} ms:\n${outputs()}`)) }, timeoutMs)
        const check = () => {
          const found = find()
          if (found !== undefined) { stop(); resolve(found) }
        }
        for (const stream of streams) stream.on("data", check)
        check()
      })
    }
  }
}

/**
 * Runs a `tigerbeetle-node` release's own test suite (`dist/test.js`) against the replicas at
 * `addresses` (comma-separated: the suite's TB_ADDRESS becomes its client's replica_addresses),
 * killing it after `childRunMs`. Resolves with its exit code and output, read to the end.
 */
export function runOfficialSuite(suite: string, addresses: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(node, [suite], { env: { ...process.env, TB_ADDRESS: addresses } })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), childRunMs)
    // "close", not "exit": the output (its PASSED lines) is all read by then.
    child.once("close", (code) => { clearTimeout(timer); resolve({ code, output }) })
  })
}
