/**
 * Network partitions (simulation.md §2; issue 15): a cluster's links are cut for a while, then
 * heal, then after a calm spell another partition starts. Every draw comes from the run's own
 * `partitions` stream (sim/random.ts), so the draws of every other stream stay those of runs
 * without partitions, and a replica of one is never partitioned (its runs are unchanged).
 *
 * Kinds (one partition at a time):
 * - `symmetric`: the replicas split into two groups that cannot talk either way (a random group
 *   size, or each replica tossing a coin, at least one on each side);
 * - `asymmetric`: the same split, one way: group A's messages to group B are lost, B's to A pass
 *   (A can send but not hear, the classic half-open link);
 * - `isolating`: one replica (two times in three the current primary, as the replicas report it)
 *   cut from every other replica, both ways, or only its sends, or only what it hears;
 * - `client`: one client cut from some replicas (often the primary): its requests, the replies,
 *   or both directions are lost.
 *
 * Each lasts an exponentially drawn time (capped at `durationTicksMax`: a backup cut off for
 * longer than the journal holds would need state sync, which the replica does not have yet), the
 * calm between two likewise. The simulator stops them when faults stop (liveness mode), so that
 * the cluster can converge.
 */
import { assert } from "../src/assert.ts"
import type { Process, SimNetwork } from "./network.ts"
import { Random } from "./random.ts"
import { Trace, type TraceHash } from "./trace.ts"

export type PartitionKind = "symmetric" | "asymmetric" | "isolating" | "client"
const kindCodes: Readonly<Record<PartitionKind, number>> = { symmetric: 1, asymmetric: 2, isolating: 3, client: 4 }

/** A partition's longest spell (10 s): see the header. */
export const durationTicksMax = 1000

/** What one partition cuts. */
export interface Partition {
  readonly kind: PartitionKind
  /** `replicas[source][target]`: the link from replica `source` to replica `target` is cut. */
  readonly replicas: ReadonlyArray<ReadonlyArray<boolean>>
  /** A client partition: the client slot, the replicas it is cut from, and which directions are lost. */
  readonly client: { readonly index: number; readonly from: ReadonlyArray<boolean>; readonly requests: boolean; readonly replies: boolean } | undefined
}

export interface PartitionsOptions {
  readonly seed: bigint
  readonly replicaCount: number
  readonly clientCount: number
  readonly network: SimNetwork
  readonly trace: TraceHash
  /** The primary the replicas report now (the one an isolating partition prefers). */
  readonly primary: () => number
  readonly log: (line: string) => void
}

export class Partitions {
  /** Partitions started, by kind (the run's stats). */
  readonly stats = { partitionsSymmetric: 0, partitionsAsymmetric: 0, partitionsIsolating: 0, partitionsClient: 0 }
  private readonly options: PartitionsOptions
  private readonly random: Random
  /** Whether this run has partitions at all, and its mean spells (ticks). */
  private readonly enabled: boolean
  private readonly calmMeanTicks: number
  private readonly durationMeanTicks: number
  private state: { readonly _tag: "calm"; readonly until: number } | { readonly _tag: "cut"; readonly until: number; readonly partition: Partition }
  private stopped = false

  constructor(options: PartitionsOptions) {
    assert(options.replicaCount >= 1, () => "a cluster has a replica")
    assert(options.clientCount >= 1, () => "a run has a client")
    this.options = options
    this.random = Random.stream(options.seed, "partitions")
    this.enabled = options.replicaCount > 1 && !this.random.chance(0.2)
    this.calmMeanTicks = this.random.between(200, 2000)
    this.durationMeanTicks = this.random.between(50, 500)
    this.state = { _tag: "calm", until: this.calmTicks() }
  }

  /** The partition in force, if any. */
  get current(): Partition | undefined {
    return this.state._tag === "cut" ? this.state.partition : undefined
  }

  /** Per tick of the safety phase: the partition in force heals when due, or one starts. */
  tick(tick: number): void {
    if (!this.enabled || this.stopped || tick < this.state.until) return
    if (this.state._tag === "cut") {
      this.heal(tick)
      this.state = { _tag: "calm", until: tick + this.calmTicks() }
      return
    }
    const partition = this.draw()
    const duration = Math.min(durationTicksMax, Math.max(1, Math.round(this.random.exponential(1, this.durationMeanTicks))))
    this.state = { _tag: "cut", until: tick + duration, partition }
    this.options.network.partition((source, target) => cuts(partition, source, target))
    this.count(partition.kind)
    this.options.trace.add(Trace.partition, tick, kindCodes[partition.kind], replicaMask(partition), clientWord(partition))
    this.options.log(`partition (${partition.kind}) for ${duration} ticks: ${describe(partition)}`)
    assert(this.options.network.partitioned, () => "the network cuts the partition's links")
  }

  /** Faults stop (liveness mode): the partition in force heals, and no other starts. */
  stop(tick: number): void {
    this.stopped = true
    if (this.state._tag === "cut") this.heal(tick)
    this.state = { _tag: "calm", until: Number.MAX_SAFE_INTEGER }
    assert(!this.options.network.partitioned, () => "no link stays cut once faults stop")
  }

  private heal(tick: number): void {
    assert(this.state._tag === "cut", () => "only a partition heals")
    this.options.network.heal()
    this.options.trace.add(Trace.partitionHeal, tick)
    this.options.log(`partition healed`)
  }

  private calmTicks(): number {
    return Math.max(1, Math.round(this.random.exponential(1, this.calmMeanTicks)))
  }

  private count(kind: PartitionKind): void {
    switch (kind) {
      case "symmetric": this.stats.partitionsSymmetric++; return
      case "asymmetric": this.stats.partitionsAsymmetric++; return
      case "isolating": this.stats.partitionsIsolating++; return
      case "client": this.stats.partitionsClient++; return
    }
  }

  /** The next partition: its kind, then what it cuts. */
  private draw(): Partition {
    const r = this.random
    const n = this.options.replicaCount
    const roll = r.below(100)
    const kind: PartitionKind = roll < 30 ? "symmetric" : roll < 55 ? "asymmetric" : roll < 80 ? "isolating" : "client"
    const replicas = Array.from({ length: n }, () => Array.from({ length: n }, () => false))
    if (kind === "client") return { kind, replicas, client: this.drawClient() }
    const groupA = kind === "isolating" ? this.isolated() : this.split()
    // An isolating partition cuts both ways, or only the replica's sends, or only what it hears.
    const direction = kind === "symmetric" ? "both" : kind === "asymmetric" ? "a_to_b" : r.pick(["both", "both", "both", "a_to_b", "b_to_a"] as const)
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        if (!groupA[a] || groupA[b]) continue
        if (direction !== "b_to_a") replicas[a]![b] = true
        if (direction !== "a_to_b") replicas[b]![a] = true
      }
    }
    assert(groupA.some((inA) => inA), () => "group A holds a replica")
    assert(groupA.some((inA) => !inA), () => "group B holds a replica")
    return { kind, replicas, client: undefined }
  }

  /** Two non-empty groups: a random size for A, or a coin per replica. */
  private split(): Array<boolean> {
    const r = this.random
    const n = this.options.replicaCount
    if (r.chance(0.5)) {
      const size = r.between(1, n - 1)
      const order = Array.from({ length: n }, (_, i) => i)
      for (let i = n - 1; i > 0; i--) {
        const j = r.below(i + 1)
        ;[order[i], order[j]] = [order[j]!, order[i]!]
      }
      const groupA = Array.from({ length: n }, () => false)
      for (const replica of order.slice(0, size)) groupA[replica] = true
      return groupA
    }
    for (;;) {
      const groupA = Array.from({ length: n }, () => r.chance(0.5))
      if (groupA.some((inA) => inA) && groupA.some((inA) => !inA)) return groupA
    }
  }

  /** Group A of an isolating partition: the current primary two times in three, else any replica. */
  private isolated(): Array<boolean> {
    const n = this.options.replicaCount
    const primary = this.options.primary()
    assert(primary >= 0 && primary < n, () => `primary ${primary} of ${n}`)
    const alone = this.random.below(3) < 2 ? primary : this.random.below(n)
    return Array.from({ length: n }, (_, i) => i === alone)
  }

  private drawClient(): Partition["client"] {
    const r = this.random
    const n = this.options.replicaCount
    const index = r.below(this.options.clientCount)
    const primary = this.options.primary()
    // Half the time the client is cut from the primary alone; otherwise from a random non-empty set.
    let from = Array.from({ length: n }, (_, i) => i === primary)
    if (r.chance(0.5)) {
      do from = Array.from({ length: n }, () => r.chance(0.5))
      while (!from.some((cut) => cut))
    }
    const roll = r.below(10)
    return { index, from, requests: roll < 8, replies: roll < 6 || roll >= 8 }
  }
}

/** Whether `partition` cuts the link from `source` to `target`. */
export function cuts(partition: Partition, source: Process, target: Process): boolean {
  if (source.kind === "replica" && target.kind === "replica") return partition.replicas[source.index]![target.index]!
  const client = partition.client
  if (client === undefined) return false
  if (source.kind === "client") return client.index === source.index && client.from[target.index]! && client.requests
  return client.index === target.index && client.from[source.index]! && client.replies
}

/** The replica links cut, one bit per (source, target): at most 36 bits for six replicas. */
function replicaMask(partition: Partition): number {
  let mask = 0
  partition.replicas.forEach((row, source) => row.forEach((cut, target) => {
    if (cut) mask += 2 ** (source * row.length + target)
  }))
  return mask
}

/** A client partition as one word: the client, the replicas cut (a bit each), requests and replies. */
function clientWord(partition: Partition): number {
  const client = partition.client
  if (client === undefined) return 0
  const from = client.from.reduce((bits, cut, replica) => bits | (cut ? 1 << replica : 0), 0)
  return (client.index << 10) | (from << 2) | (client.requests ? 2 : 0) | (client.replies ? 1 : 0)
}

function describe(partition: Partition): string {
  const client = partition.client
  if (client !== undefined) {
    const from = client.from.flatMap((cut, replica) => (cut ? [replica] : [])).join(",")
    return `client ${client.index} from replicas ${from} (${client.requests ? "requests" : ""}${client.requests && client.replies ? " and " : ""}${client.replies ? "replies" : ""} lost)`
  }
  const links: Array<string> = []
  partition.replicas.forEach((row, source) => row.forEach((cut, target) => {
    if (cut) links.push(`${source}->${target}`)
  }))
  return `links cut ${links.join(" ")}`
}
