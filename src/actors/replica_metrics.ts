/**
 * The replica's figures (issue 19, Operations → Metrics), kept with Effect's `Metric` module in
 * the registry of the replica's context: requests received, prepares, commits by operation, batch
 * sizes of creates, commit latency, checkpoint and journal write timings, client sessions, the view and the
 * status, and what the shell counts besides (messages, refusals). The shell (replica.ts) feeds
 * every core input and output through `ReplicaFigures`; exporting them (Prometheus over HTTP,
 * statsd over UDP) is the business of src/layers/metrics.ts, and happens only when asked for: in
 * the simulator and the tests the figures are kept and never read.
 *
 * Updates are per message or per batch, never per event: a commit adds its event count to a
 * histogram once. Each update is a `Map` lookup in the registry and an addition (`updateUnsafe`),
 * with the context built once when the replica starts.
 */
import { Context, Metric } from "effect"
import { assert } from "../assert.ts"
import { u128FromBytes } from "../protocol/build.ts"
import { Command, FrameLayout, RequestLayout } from "../protocol/header.ts"
import { Operation } from "../protocol/operation.ts"
import type { Input, Now, Output, Status } from "./replica_core.ts"

/** Latency buckets, in seconds: 0.5 ms to 10 s. */
const secondsBoundaries: ReadonlyArray<number> = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]
/** Events per commit: powers of two up to a full batch (8189 events). */
const eventsBoundaries: ReadonlyArray<number> = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
/** The status gauge's values (a gauge holds a number): what `scarab_status` means. */
export const statusCodes: Readonly<Record<Exclude<Status, "recovering">, number>> = { normal: 0, view_change: 1, recovering_head: 2 }

const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })
const gauge = (name: string, description: string) => Metric.gauge(name, { description })
const histogram = (name: string, description: string, boundaries: ReadonlyArray<number>) => Metric.histogram(name, { description, boundaries })

/** Every figure, by the name it is exported under (Prometheus conventions: counters end in `_total`, times in seconds). */
export const replicaMetrics = {
  requestsReceived: counter("scarab_requests_received_total", "Client requests received (retries included)."),
  messagesReceived: counter("scarab_messages_received_total", "Messages received from clients and replicas."),
  prepares: counter("scarab_prepares_total", "Prepares written to the journal."),
  commitEvents: histogram("scarab_commit_events", "Events per committed create batch (accounts or transfers).", eventsBoundaries),
  commitLatency: histogram("scarab_commit_latency_seconds", "On the primary: from a client's request to its reply.", secondsBoundaries),
  checkpointDuration: histogram("scarab_checkpoint_duration_seconds", "From a checkpoint's data write to its durable superblock.", secondsBoundaries),
  journalWrite: histogram("scarab_journal_write_seconds", "One prepare's journal write, from submission to completion.", secondsBoundaries),
  clientMessagesSent: counter("scarab_client_messages_sent_total", "Replies, pongs and evictions sent to clients."),
  replicaMessagesSent: counter("scarab_replica_messages_sent_total", "Messages sent to the other replicas."),
  viewChanges: counter("scarab_view_changes_total", "View changes this replica took part in."),
  journalFull: counter("scarab_journal_full_total", "Requests that waited because the journal held no more ops."),
  storeFull: counter("scarab_store_full_total", "Requests refused because the ledger held no more accounts or transfers."),
  view: gauge("scarab_view", "The replica's current view."),
  status: gauge("scarab_status", "The replica's status: 0 normal, 1 view change, 2 recovering head."),
  clientSessions: gauge("scarab_client_sessions", "Client sessions the replica keeps."),
  commitOp: gauge("scarab_commit_op", "The newest committed op."),
  checkpointOp: gauge("scarab_checkpoint_op", "The op of the durable checkpoint.")
} as const

/** What the shell reports, as it happens; each call updates a few figures in place. */
export interface ReplicaFigures {
  input(now: Now, input: Input): void
  output(now: Now, output: Output): void
  journalWritten(seconds: number): void
  /** The figures read off the core (sampled once a second, and at start). */
  sample(core: { readonly status: Status; readonly currentView: number; readonly sessionCount: number; readonly commitOp: number }, checkpointOp: number): void
}

/**
 * The figures of replica `replica` of `cluster`, kept in the registry of `context`, each series
 * labelled with the cluster and the replica (so that the simulator's replicas keep theirs apart).
 * `clientsMax` bounds the requests whose latency is being timed.
 */
export function replicaFigures(parent: Context.Context<never>, cluster: bigint, replica: number, clientsMax: number): ReplicaFigures {
  assert(replica >= 0, () => "a replica index")
  assert(clientsMax > 0, () => "a replica keeps client sessions")
  const context = Context.add(parent, Metric.CurrentMetricAttributes, { cluster: String(cluster), replica: String(replica) })
  const m = replicaMetrics
  const commits = commitCounters()
  /** Request arrival (monotonic ns) by client, until its reply: one request per client is in flight. */
  const requestStarted = new Map<bigint, bigint>()
  let checkpointStarted: bigint | undefined
  const add = (metric: Metric.Metric<number, unknown>, value: number) => metric.updateUnsafe(value, context)
  const seconds = (from: bigint, to: bigint) => Number(to - from) / 1e9
  // Reading a figure registers its series: every one is exported from the start, at zero.
  for (const metric of Object.values(m)) metric.valueUnsafe(context)
  return {
    input(now, input) {
      if (input._tag === "CheckpointDone" && checkpointStarted !== undefined) {
        add(m.checkpointDuration, seconds(checkpointStarted, now.monotonicNs))
        add(m.checkpointOp, input.checkpoint.op)
        checkpointStarted = undefined
      }
      if (input._tag !== "Message") return
      add(m.messagesReceived, 1)
      const message = input.message
      if (message[FrameLayout.command.offset] !== Command.request) return
      add(m.requestsReceived, 1)
      const client = u128FromBytes(message, RequestLayout.client.offset)
      // A retry keeps the first arrival: the latency a client sees runs from its first send.
      if (requestStarted.has(client)) return
      // Backups never reply: forget what a view change left behind rather than grow without bound.
      if (requestStarted.size >= 2 * clientsMax) requestStarted.clear()
      requestStarted.set(client, now.monotonicNs)
    },
    output(now, output) {
      switch (output._tag) {
        case "SendToClient": {
          add(m.clientMessagesSent, 1)
          const command = output.message[FrameLayout.command.offset]
          if (command !== Command.reply && command !== Command.eviction) return
          const started = requestStarted.get(output.client)
          if (started === undefined) return
          requestStarted.delete(output.client)
          if (command === Command.reply) add(m.commitLatency, seconds(started, now.monotonicNs))
          return
        }
        case "SendToReplica": return add(m.replicaMessagesSent, 1)
        case "JournalWrite": return add(m.prepares, 1)
        case "Prefetch":
          // The count of a create's events (reads have none to make resident).
          if (output.eventCount > 0) add(m.commitEvents, output.eventCount)
          return
        case "Committed":
          add(commits(output.operation), 1)
          return add(m.commitOp, output.op)
        case "CheckpointData":
          checkpointStarted = now.monotonicNs
          return
        case "StatusChanged":
          if (output.status === "view_change") add(m.viewChanges, 1)
          add(m.status, statusCodes[output.status])
          return add(m.view, output.view)
        case "JournalFull": return add(m.journalFull, 1)
        case "StoreFull": return add(m.storeFull, 1)
        default:
      }
    },
    journalWritten(elapsed) {
      assert(elapsed >= 0, () => "a write takes no negative time")
      add(m.journalWrite, elapsed)
    },
    sample(core, checkpointOp) {
      assert(core.status !== "recovering", () => "a serving replica is sampled")
      add(m.status, statusCodes[core.status])
      add(m.view, core.currentView)
      add(m.clientSessions, core.sessionCount)
      add(m.commitOp, core.commitOp)
      add(m.checkpointOp, checkpointOp)
    }
  }
}

/** `scarab_commits_total{operation=…}`: one counter per operation, made the first time it commits. */
function commitCounters(): (operation: number) => Metric.Counter<number> {
  const names = new Map<number, string>(Object.entries(Operation).map(([name, code]) => [code, name]))
  const counters: Array<Metric.Counter<number> | undefined> = new Array(256).fill(undefined)
  return (operation) => {
    assert(operation >= 0 && operation < counters.length, () => `operation ${operation} is a u8`)
    const made = counters[operation]
    if (made !== undefined) return made
    const created = Metric.counter("scarab_commits_total", {
      description: "Ops committed, by operation.", incremental: true, attributes: { operation: names.get(operation) ?? `operation_${operation}` }
    })
    counters[operation] = created
    return created
  }
}
