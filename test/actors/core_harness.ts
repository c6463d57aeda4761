/**
 * A replica core as a fresh data file leaves it: restored from the root checkpoint (op 0, no
 * sessions), recovered with nothing to replay, serving. The core tests start from here.
 */
import { type Now, ReplicaCore, type ReplicaConfig } from "../../src/actors/replica_core.ts"
import type { Ledger } from "../../src/ledger/ledger.ts"
import { u128ToBytes } from "../../src/protocol/build.ts"
import { checksumSize } from "../../src/protocol/checksum.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"

export function startedCore(config: ReplicaConfig, ledger: Ledger, now: Now = { realtimeNs: 0n }): ReplicaCore {
  const core = new ReplicaCore(config, ledger)
  const zero = new Uint8Array(checksumSize)
  const header = rootPrepare(u128ToBytes(config.cluster))
  core.step(now, { _tag: "Restore", restored: { header, checkpoint: { op: 0, id: zero, parentId: zero }, sessions: [] } })
  core.step(now, { _tag: "RecoveryDone", repliesLost: [] })
  if (core.status !== "normal") throw new Error("the core did not start")
  return core
}
