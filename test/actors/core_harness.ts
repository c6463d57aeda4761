/**
 * A replica core as a fresh data file leaves it: restored from the root checkpoint (op 0, no
 * sessions), recovered with nothing to replay, serving; a cluster's core with cluster time
 * (a peer's clock sampled, the 2 s window agreed). The core tests start from here, and step it
 * through `step`, which completes every prefetch the core asks for at once (the in-memory
 * ledger's prefetch is a capacity check the primary already made).
 *
 * Time: each step is one nanosecond of monotonic time after the last, at the wall-clock time the
 * test names; a test that needs both clocks exactly names `monotonicNs` too.
 */
import { type CheckpointPosition, type Input, type Now, type Output, ReplicaCore, type ReplicaConfig } from "../../src/actors/replica_core.ts"
import type { Ledger } from "../../src/ledger/ledger.ts"
import { windowMinNs as windowMinNumber } from "../../src/actors/cluster_clock.ts"
import { buildMessage, buildPrepareOk, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import { Command, FrameLayout, ReplyLayout, zeroHeader } from "../../src/protocol/header.ts"
import { checksumSize } from "../../src/protocol/checksum.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"

/** The time a test gives a step: the wall clock, and the monotonic clock if the test sets it. */
export interface TestNow {
  readonly realtimeNs: bigint
  readonly monotonicNs?: bigint
}

const windowMinNs = BigInt(windowMinNumber)

/** Monotonic time only moves forward, whatever real time the tests choose. */
let monotonicNs = 0n
const nowAt = (now: TestNow): Now => {
  monotonicNs = now.monotonicNs !== undefined && now.monotonicNs > monotonicNs ? now.monotonicNs : monotonicNs + 1n
  return { realtimeNs: now.realtimeNs, monotonicNs: now.monotonicNs ?? monotonicNs }
}

/** One input, and `PrefetchDone` for every prefetch it (or what follows) asks for; all outputs in order. */
export function step(core: ReplicaCore, now: TestNow, input: Input): Array<Output> {
  const outputs = core.step(nowAt(now), input)
  for (let i = 0; i < outputs.length && i < 10_000; i++) {
    const output = outputs[i]!
    if (output._tag === "Prefetch") outputs.push(...core.step(nowAt(now), { _tag: "PrefetchDone", op: output.op }))
  }
  return outputs
}

/** Completes the checkpoint the core asked for: its data, then its superblock, stored as `checkpoint`. */
export function storeCheckpoint(core: ReplicaCore, now: TestNow, checkpoint: CheckpointPosition): Array<Output> {
  const data = step(core, now, { _tag: "CheckpointDataDone", op: checkpoint.op })
  const superblock = data.find((output) => output._tag === "CheckpointSuperblock")
  if (superblock?._tag !== "CheckpointSuperblock" || superblock.op !== checkpoint.op) throw new Error("the core did not ask for the superblock")
  return [...data, ...step(core, now, { _tag: "CheckpointDone", checkpoint })]
}

export function startedCore(config: ReplicaConfig, ledger: Ledger, now: TestNow = { realtimeNs: 0n }): ReplicaCore {
  const core = new ReplicaCore(config, ledger)
  const zero = new Uint8Array(checksumSize)
  const header = rootPrepare(u128ToBytes(config.cluster))
  step(core, now, { _tag: "Open" })
  step(core, now, { _tag: "Restore", restored: { header, checkpoint: { op: 0, id: zero, parentId: zero }, sessions: [], commitMax: 0, repliesLost: [] } })
  const outputs = step(core, now, { _tag: "JournalRecovered", ops: [] })
  if (core.status !== "normal") throw new Error("the core did not start")
  // The fresh primary of a cluster records that it served before it prepares anything.
  const persist = outputs.find((output) => output._tag === "PersistView")
  if (persist?._tag === "PersistView") step(core, now, { _tag: "ViewPersisted", view: persist.view, logView: persist.logView })
  if (config.replicaCount > 1) synchronizeClock(core, now)
  return core
}

/**
 * Gives a cluster's core cluster time (vsr.md §8): its first tick opens a sampling window, every
 * peer's pong says its clock reads ours, and 2 s later (monotonic) the window agrees. Cluster time
 * then runs on from the wall-clock time `now` names, with the monotonic clock.
 */
export function synchronizeClock(core: ReplicaCore, now: TestNow): void {
  step(core, now, { _tag: "Tick" })
  const m0 = now.monotonicNs ?? monotonicNs
  for (let peer = 0; peer < core.config.replicaCount; peer++) {
    if (peer === core.config.replica) continue
    const pong = buildMessage({
      ...zeroHeader(Command.pong), cluster: core.config.cluster, replica: peer, ping_timestamp_monotonic: m0, pong_timestamp_wall: now.realtimeNs > 0n ? now.realtimeNs : 1n
    }, new Uint8Array(0))
    step(core, now, { _tag: "Message", message: pong })
  }
  const later = { realtimeNs: now.realtimeNs + windowMinNs, monotonicNs: (now.monotonicNs ?? monotonicNs) + windowMinNs }
  step(core, later, { _tag: "Tick" })
  if (!core.clockSynchronized) throw new Error("the core has no cluster time")
}

/**
 * Drives the primary of three whose backup 2 acknowledges every prepare at once, so it commits
 * without backup 1; what it sends backup 1 (the messages `keep` picks) waits in `toBackup` for the
 * test to deliver. `context` is the latest reply's, for the client's next request.
 */
export function quickQuorum(primary: ReplicaCore, now: TestNow, keep: (message: Uint8Array) => boolean) {
  const relay = {
    toBackup: [] as Array<Uint8Array>,
    context: 0n,
    drive: (outputs: ReadonlyArray<Output>): void => {
      for (const output of outputs) {
        if (output._tag === "SendToClient") relay.context = u128FromBytes(output.message, ReplyLayout.context.offset)
        if (output._tag === "SendToReplica" && output.replica === 1 && keep(output.message)) relay.toBackup.push(output.message)
        if (output._tag === "SendToReplica" && output.replica === 2 && output.message[FrameLayout.command.offset] === Command.prepare) {
          relay.drive(step(primary, now, { _tag: "Message", message: buildPrepareOk(output.message, { view: 0, replica: 2, commitMin: 0n }) }))
        }
        if (output._tag === "JournalWrite") relay.drive(step(primary, now, { _tag: "JournalWriteDone", op: output.op }))
        if (output._tag === "CheckpointData") relay.drive(storeCheckpoint(primary, now, { op: output.op, id: new Uint8Array(16).fill(7), parentId: new Uint8Array(16) }))
      }
    }
  }
  return relay
}
