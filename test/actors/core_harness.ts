/**
 * A replica core as a fresh data file leaves it: restored from the root checkpoint (op 0, no
 * sessions), recovered with nothing to replay, serving. The core tests start from here, and
 * step it through `step`, which completes every prefetch the core asks for at once (the
 * in-memory ledger's prefetch is a capacity check the primary already made).
 */
import { type CheckpointPosition, type Input, type Now, type Output, ReplicaCore, type ReplicaConfig } from "../../src/actors/replica_core.ts"
import type { Ledger } from "../../src/ledger/ledger.ts"
import { buildPrepareOk, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import { Command, FrameLayout, ReplyLayout } from "../../src/protocol/header.ts"
import { checksumSize } from "../../src/protocol/checksum.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"

/** Monotonic time only moves forward, whatever real time the tests choose. */
let monotonicNs = 0n
const nowAt = (now: { readonly realtimeNs: bigint }): Now => ({ realtimeNs: now.realtimeNs, monotonicNs: ++monotonicNs })

/** One input, and `PrefetchDone` for every prefetch it (or what follows) asks for; all outputs in order. */
export function step(core: ReplicaCore, now: { readonly realtimeNs: bigint }, input: Input): Array<Output> {
  const outputs = core.step(nowAt(now), input)
  for (let i = 0; i < outputs.length && i < 10_000; i++) {
    const output = outputs[i]!
    if (output._tag === "Prefetch") outputs.push(...core.step(nowAt(now), { _tag: "PrefetchDone", op: output.op }))
  }
  return outputs
}

/** Completes the checkpoint the core asked for: its data, then its superblock, stored as `checkpoint`. */
export function storeCheckpoint(core: ReplicaCore, now: { readonly realtimeNs: bigint }, checkpoint: CheckpointPosition): Array<Output> {
  const data = step(core, now, { _tag: "CheckpointDataDone", op: checkpoint.op })
  const superblock = data.find((output) => output._tag === "CheckpointSuperblock")
  if (superblock?._tag !== "CheckpointSuperblock" || superblock.op !== checkpoint.op) throw new Error("the core did not ask for the superblock")
  return [...data, ...step(core, now, { _tag: "CheckpointDone", checkpoint })]
}

export function startedCore(config: ReplicaConfig, ledger: Ledger, now: { readonly realtimeNs: bigint } = { realtimeNs: 0n }): ReplicaCore {
  const core = new ReplicaCore(config, ledger)
  const zero = new Uint8Array(checksumSize)
  const header = rootPrepare(u128ToBytes(config.cluster))
  step(core, now, { _tag: "Open" })
  step(core, now, { _tag: "Restore", restored: { header, checkpoint: { op: 0, id: zero, parentId: zero }, sessions: [], commitMax: 0, repliesLost: [] } })
  step(core, now, { _tag: "JournalRecovered", ops: [] })
  if (core.status !== "normal") throw new Error("the core did not start")
  return core
}

/**
 * Drives the primary of three whose backup 2 acknowledges every prepare at once, so it commits
 * without backup 1; what it sends backup 1 (the messages `keep` picks) waits in `toBackup` for the
 * test to deliver. `context` is the latest reply's, for the client's next request.
 */
export function quickQuorum(primary: ReplicaCore, now: { readonly realtimeNs: bigint }, keep: (message: Uint8Array) => boolean) {
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
