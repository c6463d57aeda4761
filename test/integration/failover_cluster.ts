/**
 * What the failover tests (issue 15: failover.test.ts with the official client,
 * client_failover.test.ts with layerClient) read from a cluster of `scarab start` processes:
 * who leads, from the line each replica logs on every change of status or view
 * (`replica <i>: normal view=<v> primary=<p>`, also `view change` and `recovering head`); the
 * checkpoints each replica logs; and conditions polled with a generous deadline, since on a
 * loaded 2-core machine a view change that takes 2 s idle can take many times that. Times are
 * measured here to be printed, never asserted.
 */
import type { RunningCluster } from "./replica_process.ts"

/** How long a condition may take to hold before a test fails: only a hang should reach it. */
export const deadlineMs = 60_000

export type Status = "normal" | "view change" | "recovering head"

export interface StatusLine {
  readonly status: Status
  readonly view: number
  readonly primary: number
}

/** Replica `replica`'s status lines in `output`, in the order logged. */
export function statusLines(output: string, replica: number): Array<StatusLine> {
  const pattern = new RegExp(`replica ${replica}: (normal|view change|recovering head) view=(\\d+) primary=(\\d+)\\b`, "g")
  return [...output.matchAll(pattern)].map((match) => ({ status: match[1] as Status, view: Number(match[2]), primary: Number(match[3]) }))
}

export interface Leader {
  readonly view: number
  readonly primary: number
}

/**
 * The view the replicas `members` are all normal in (by their latest status lines), and its
 * primary, if they agree and the primary is one of them; undefined while they do not.
 */
export function settledView(cluster: RunningCluster, members: ReadonlyArray<number>): Leader | undefined {
  const latest = members.map((i) => statusLines(cluster.replicas[i]!.output(), i).at(-1))
  const first = latest[0]
  if (first === undefined || first.status !== "normal" || !members.includes(first.primary)) return undefined
  return latest.every((line) => line?.status === "normal" && line.view === first.view) ? { view: first.view, primary: first.primary } : undefined
}

/** Waits until `members` (by default every replica) are normal in one view whose primary is one of them. */
export function settled(cluster: RunningCluster, members: ReadonlyArray<number> = cluster.replicas.map((_, i) => i)): Promise<Leader> {
  return cluster.waitFor(() => settledView(cluster, members), `replicas ${members.join(", ")} normal in one view`, deadlineMs)
}

/**
 * The first replica other than `excluded` that has logged itself normal primary of a view after
 * `view`: the new primary once it serves.
 */
export function newPrimary(cluster: RunningCluster, view: number, excluded: number): Leader | undefined {
  for (const [i, replica] of cluster.replicas.entries()) {
    if (i === excluded) continue
    const line = statusLines(replica.output(), i).find((line) => line.status === "normal" && line.view > view && line.primary === i)
    if (line !== undefined) return { view: line.view, primary: i }
  }
  return undefined
}

/**
 * Waits until a replica other than `excluded` logs a status in a view after `view` (it started a
 * view change, or heard of a later view) and resolves with the time it was seen. No reply from
 * a new primary can precede that line: replies seen after it are the new primary's, not the old
 * one's last, still in flight when it was stopped.
 */
export async function awaitViewLeft(cluster: RunningCluster, view: number, excluded: number): Promise<number> {
  await cluster.waitFor(() => cluster.replicas.some((replica, i) => i !== excluded && statusLines(replica.output(), i).some((line) => line.view > view)) || undefined,
    `a replica other than ${excluded} in a view after ${view}`, deadlineMs)
  return performance.now()
}

/** Waits for `newPrimary` and resolves with it and the time (performance.now()) it was seen: at the chunk of output that held its line. */
export async function awaitNewPrimary(cluster: RunningCluster, view: number, excluded: number): Promise<Leader & { readonly seenMs: number }> {
  const leader = await cluster.waitFor(() => newPrimary(cluster, view, excluded), `a new primary of a view after ${view} (not replica ${excluded})`, deadlineMs)
  return { ...leader, seenMs: performance.now() }
}

/**
 * The checkpoints replica `replica` logged, by op (`replica <i>: checkpoint op=<op> id=<hex>`);
 * the first id at each op (a restart replaying past it logs it again, with the same id).
 */
export function checkpointsOf(output: string, replica: number): Map<number, string> {
  const checkpoints = new Map<number, string>()
  for (const match of output.matchAll(new RegExp(`replica ${replica}: checkpoint op=(\\d+) id=([0-9a-f]{32})\\b`, "g"))) {
    const op = Number(match[1])
    if (!checkpoints.has(op)) checkpoints.set(op, match[2]!)
  }
  return checkpoints
}

/** The highest op replica `replica` logged a checkpoint at, or -1. */
export function newestCheckpoint(output: string, replica: number): number {
  return Math.max(-1, ...checkpointsOf(output, replica).keys())
}

/** Polls `find` every 25 ms until it returns something; fails naming `what` after `ms`. */
export async function until<T>(find: () => T | undefined, what: string, ms = deadlineMs): Promise<T> {
  const started = performance.now()
  for (;;) {
    const found = find()
    if (found !== undefined) return found
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** `promise`, or a failure naming `what` once `ms` have passed (clients retry forever). */
export function within<T>(promise: Promise<T>, what: string, ms = deadlineMs): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`not done within ${ms} ms: ${what}`)), ms) })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/** Every replica's recent output, for a failure message. */
export function outputs(cluster: RunningCluster): string {
  return cluster.replicas.map((replica, i) => `--- replica ${i} ---\n${replica.output().slice(-6000)}`).join("\n")
}

/** One line of measurements in the test output, for people and scripts to read: `FAILOVER {json}`. */
export function printFailover(fields: Record<string, string | number>): void {
  console.log(`FAILOVER ${JSON.stringify(fields)}`)
}
