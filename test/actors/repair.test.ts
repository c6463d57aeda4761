/**
 * Repair of a backup's log in view 0 (issue 14; vsr.md §5.1-§5.4): the pure decisions (which
 * peer headers join the log, the per-peer request budget, the header ring), then the core: a
 * backup that missed prepares fetches the headers after its head and then the prepares, writes
 * and acknowledges them and commits; a forged header that does not chain is never taken; a
 * restarted backup keeps the journal's ops above commit_max in its log; a restarted primary of a
 * cluster refuses to start; a reply the client-replies zone lost is fetched from a peer.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { HeaderRing } from "../../src/actors/header_ring.ts"
import { RepairRequests, validHeaders } from "../../src/actors/repair.ts"
import { type Output, ReplicaCore, type ReplicaConfig } from "../../src/actors/replica_core.ts"
import { createLedger } from "../../src/ledger/ledger.ts"
import { buildMessage, setChecksum, u128ToBytes } from "../../src/protocol/build.ts"
import { checksumSize } from "../../src/protocol/checksum.ts"
import {
  Command, FrameLayout, GetPrepareLayout, headerSize, JoinViewLayout, PrepareLayout, PrepareOkLayout, readU64Number, releaseClientMin, releaseScarab, VsrOperation, zeroHeader
} from "../../src/protocol/header.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"
import { bodySizeMax } from "../../src/protocol/operation.ts"
import { registerRequestBody } from "../../src/protocol/register.ts"
import { Prng } from "../../src/prng.ts"
import { quickQuorum, startedCore, step } from "./core_harness.ts"

const cluster = 11n
const clusterBytes = u128ToBytes(cluster)
const configOf = (replica: number, replicaCount = 3): ReplicaConfig => ({
  cluster, replica, replicaCount, release: releaseScarab, releaseClientMin, batchSizeLimit: bodySizeMax, clientsMax: 8,
  storage: { journalSlotCount: 64, checkpointOps: 32, pipelineMax: 4 }
})
const now = { realtimeNs: 1_000_000_000_000n }
const root = rootPrepare(clusterBytes)
const register = (client: bigint) =>
  buildMessage({ ...zeroHeader(Command.request), cluster, release: releaseScarab, client, operation: VsrOperation.register }, registerRequestBody())
type Sent = Extract<Output, { _tag: "SendToReplica" }>
const sends = (outputs: ReadonlyArray<Output>): Array<Sent> => outputs.filter((output): output is Sent => output._tag === "SendToReplica")
const commandOf = (message: Uint8Array) => message[FrameLayout.command.offset]
const opOf = (message: Uint8Array) => readU64Number(message, PrepareLayout.op.offset)

/** A primary of three that committed `count` registers (backup 2 acknowledging at once), and the prepares it made, by op. */
function primaryWithOps(count: number) {
  const primary = startedCore(configOf(0), createLedger())
  const relay = quickQuorum(primary, now, (message) => commandOf(message) === Command.prepare)
  for (let client = 1; client <= count; client++) relay.drive(step(primary, now, { _tag: "Message", message: register(BigInt(client)) }))
  expect(primary.commitOp).toBe(count)
  const prepares = new Map(relay.toBackup.map((prepare) => [opOf(prepare), prepare]))
  expect([...prepares.keys()]).toEqual(Array.from({ length: count }, (_, i) => i + 1))
  return { primary, prepares }
}

const headersBody = (headers: ReadonlyArray<Uint8Array>) => {
  const body = new Uint8Array(headers.length * headerSize)
  headers.forEach((header, i) => body.set(header.subarray(0, headerSize), i * headerSize))
  return body
}

/** A header of `op` with a valid checksum whose parent is not the prepare before it. */
function forgedHeader(real: Uint8Array): Uint8Array {
  const forged = real.slice(0, headerSize)
  forged[PrepareLayout.parent.offset]! ^= 0xff
  setChecksum(forged)
  return forged
}

describe("a backup fills the gap below its head only with headers that connect down to it", () => {
  const { prepares } = primaryWithOps(12)
  const chain = [root, ...Array.from({ length: 12 }, (_, i) => prepares.get(i + 1)!)]

  it("takes, in any order of arrival, the run connected down from the head, and never a forged header", () => {
    fc.assert(fc.property(fc.array(fc.boolean(), { minLength: 11, maxLength: 11 }), fc.integer({ min: 1, max: 11 }), fc.boolean(), fc.integer({ min: 0, max: 1000 }),
      (present, forgedOp, forge, shuffle) => {
        const backup = startedCore(configOf(1), createLedger())
        // The head arrives alone: ops 1..11 are a gap.
        step(backup, now, { _tag: "Message", message: prepares.get(12)! })
        const given = chain.slice(1, 12).filter((_, i) => present[i])
        if (forge) given.push(forgedHeader(chain[forgedOp]!))
        const order = new Prng(shuffle)
        for (let i = given.length - 1; i > 0; i--) {
          const j = order.below(i + 1)
          ;[given[i], given[j]] = [given[j]!, given[i]!]
        }
        const outputs = step(backup, now, { _tag: "Message", message: buildMessage({ ...zeroHeader(Command.headers), cluster, replica: 0 }, headersBody(given)) })
        // Every prepare asked for is the real chain's, connected down from op 12.
        const asked = sends(outputs).filter((send) => commandOf(send.message) === Command.get_prepare)
          .map((send) => readU64Number(send.message, GetPrepareLayout.prepare_op.offset))
        for (const send of sends(outputs).filter((s) => commandOf(s.message) === Command.get_prepare)) {
          const op = readU64Number(send.message, GetPrepareLayout.prepare_op.offset)
          expect(Buffer.from(send.message.subarray(GetPrepareLayout.prepare_checksum.offset, GetPrepareLayout.prepare_checksum.offset + 16))
            .equals(Buffer.from(chain[op]!.subarray(0, 16)))).toBe(true)
        }
        // With no forgery to shadow a real header: the run reaches down as far as the headers given do.
        if (!forge) {
          let reach = 11
          while (reach >= 1 && present[reach - 1]) reach--
          const filled = 11 - reach
          // The first prepares asked for are the oldest filled (within the per-peer budget of 2 × 2 peers).
          expect(asked.length).toBe(Math.min(filled, 4))
          if (filled > 0) expect(Math.min(...asked)).toBe(reach + 1)
        }
      }), { numRuns: 200 })
  })

  it("mutant: a header that does not connect is refused, however valid its checksum; so are a bad checksum and another cluster", () => {
    const headers = (list: ReadonlyArray<Uint8Array>) => buildMessage({ ...zeroHeader(Command.headers), cluster, replica: 0 }, headersBody(list))
    const backupWith = () => {
      const backup = startedCore(configOf(1), createLedger())
      step(backup, now, { _tag: "Message", message: prepares.get(3)! })
      return backup
    }
    const asked = (outputs: ReadonlyArray<Output>) => sends(outputs).filter((send) => commandOf(send.message) === Command.get_prepare).length
    expect(asked(step(backupWith(), now, { _tag: "Message", message: headers([forgedHeader(chain[2]!)]) }))).toBe(0)
    const damaged = chain[2]!.slice(0, headerSize)
    damaged[PrepareLayout.timestamp.offset]! ^= 1
    expect(asked(step(backupWith(), now, { _tag: "Message", message: headers([damaged]) }))).toBe(0)
    expect(validHeaders(headersBody([chain[2]!]), u128ToBytes(cluster + 1n))).toEqual([])
    // The real header of op 2 connects to op 3: taken, and its prepare asked for.
    expect(asked(step(backupWith(), now, { _tag: "Message", message: headers([chain[2]!]) }))).toBe(1)
  })
})

describe("RepairRequests: a budget per peer, never ourselves, requests expire", () => {
  it("holds under any sequence of asks, arrivals and expiries", () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 20 })), { maxLength: 200 }), fc.integer(), (actions, seed) => {
      const requests = new RepairRequests(4, 2, 20)
      const prng = new Prng(seed)
      const asked = new Map<number, { peer: number; tick: number }>()
      let tick = 0
      for (const [action, op] of actions) {
        tick += 1
        if (action === 0 && !requests.has(op)) {
          const peer = requests.ask(op, 1, tick, prng)
          const perPeer = (p: number) => [...asked.values()].filter((request) => request.peer === p).length
          if (peer === undefined) {
            expect([0, 2, 3].every((p) => perPeer(p) === 2)).toBe(true)
          } else {
            expect(peer).not.toBe(1)
            asked.set(op, { peer, tick })
            expect(perPeer(peer)).toBeLessThanOrEqual(2)
          }
        } else if (action === 1) {
          requests.done(op)
          asked.delete(op)
        } else {
          requests.expire(tick)
          for (const [key, request] of asked) if (tick - request.tick >= 20) asked.delete(key)
        }
        expect(requests.size).toBe(asked.size)
      }
    }))
  })
})

describe("HeaderRing", () => {
  it("keeps one header per slot, answers only for the op a slot holds, and lists the newest first", () => {
    const { prepares } = primaryWithOps(10)
    const ring = new HeaderRing(4)
    for (let op = 1; op <= 10; op++) ring.set(prepares.get(op)!)
    expect(ring.get(6)).toBeUndefined() // overwritten by op 10 (slot 2)
    expect(opOf(ring.get(7)!)).toBe(7)
    expect(ring.newest(1, 10, 64).map(opOf)).toEqual([10, 9, 8, 7])
    expect(ring.newest(1, 9, 2).map(opOf)).toEqual([9, 8])
  })
})

describe("a backup repairs its log from its peers", () => {
  it("fetches the headers of the gap below its head, then the prepares, writes and acknowledges them, and commits what the primary committed", () => {
    const { primary, prepares } = primaryWithOps(10)
    const backup = startedCore(configOf(1), createLedger())
    const written: Array<number> = []
    const oks: Array<number> = []
    let served = 0
    // Everything the backup sends goes to the primary (whichever peer it picked), and back.
    const deliver = (outputs: ReadonlyArray<Output>): void => {
      for (const output of outputs) {
        if (output._tag === "JournalWrite") {
          written.push(output.op)
          deliver(step(backup, now, { _tag: "JournalWriteDone", op: output.op }))
        }
        // Its cache holds 8 prepares: the rest are read back from its journal to commit.
        if (output._tag === "ReadPrepare") deliver(step(backup, now, { _tag: "PrepareRead", prepare: prepares.get(output.op)! }))
        if (output._tag !== "SendToReplica") continue
        if (commandOf(output.message) === Command.prepare_ok) {
          expect(output.replica).toBe(0)
          oks.push(readU64Number(output.message, PrepareOkLayout.op.offset))
          continue
        }
        for (const answer of step(primary, now, { _tag: "Message", message: output.message })) {
          if (answer._tag === "SendToReplica") deliver(step(backup, now, { _tag: "Message", message: answer.message }))
          // The primary's committed ops are no longer cached: its shell reads them from the journal.
          if (answer._tag === "ServePrepare") {
            served++
            expect(answer.replica).toBe(1)
            deliver(step(backup, now, { _tag: "Message", message: prepares.get(answer.op)! }))
          }
        }
      }
    }
    // Only op 10 reaches the backup: its head, with ops 1 to 9 a gap below it.
    const head = step(backup, now, { _tag: "Message", message: prepares.get(10)! })
    expect(head).toMatchObject([{ _tag: "JournalWrite", op: 10 }])
    deliver(head)
    for (let tick = 0; tick < 40 && backup.commitOp < 10; tick++) deliver(step(backup, now, { _tag: "Tick" }))
    expect(written.sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
    expect(oks.sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
    expect(served).toBeGreaterThan(0)
    // Op 10 carried commit 9; the primary's heartbeat says 10.
    for (let tick = 0; tick < 50; tick++) {
      for (const send of sends(step(primary, now, { _tag: "Tick" }))) if (send.replica === 1) deliver(step(backup, now, { _tag: "Message", message: send.message }))
    }
    expect(backup.commitOp).toBe(10)
  })

  it("mutant: a forged header that does not chain to the head is not taken, and no prepare is asked for it", () => {
    const { prepares } = primaryWithOps(3)
    const backup = startedCore(configOf(1), createLedger())
    step(backup, now, { _tag: "Message", message: prepares.get(3)! })
    const headers = buildMessage({ ...zeroHeader(Command.headers), cluster, replica: 2 }, headersBody([forgedHeader(prepares.get(1)!)]))
    expect(step(backup, now, { _tag: "Message", message: headers })).toEqual([])
    const asked: Array<Sent> = []
    for (let tick = 0; tick < 20; tick++) asked.push(...sends(step(backup, now, { _tag: "Tick" })))
    expect(asked.every((send) => commandOf(send.message) === Command.get_headers)).toBe(true)
    expect(asked.length).toBeGreaterThan(0)
  })

  it("a head below the cluster's commit fetches the prepare the heartbeat named, or beyond the journal's reach the prepare at its end", () => {
    const backup = startedCore(configOf(1), createLedger())
    const heartbeat = (commit: bigint) => buildMessage({
      ...zeroHeader(Command.commit), cluster, replica: 0, commit, commit_checksum: 0xabcdefn, timestamp_monotonic: 1_000_000n + commit
    }, new Uint8Array(0))
    const asked = () => {
      const found: Array<[number, string]> = []
      for (let tick = 0; tick < 20; tick++) {
        for (const send of sends(step(backup, now, { _tag: "Tick" }))) {
          if (commandOf(send.message) !== Command.get_prepare) continue
          found.push([readU64Number(send.message, GetPrepareLayout.prepare_op.offset), Buffer.from(send.message.subarray(128, 144)).toString("hex")])
        }
      }
      return found
    }
    step(backup, now, { _tag: "Message", message: heartbeat(10n) })
    expect(asked()[0]).toEqual([10, "efcdab" + "00".repeat(13)])
    // The test profile's journal reaches op 63 from checkpoint 0: beyond it, whichever prepare a peer holds at op 63.
    step(backup, now, { _tag: "Message", message: heartbeat(70n) })
    expect(asked()[0]).toEqual([63, "00".repeat(16)])
  })

  it("serves get_prepare from memory or the journal, and stays silent for an op it does not hold or another checksum", () => {
    const { primary, prepares } = primaryWithOps(3)
    const ask = (op: number, checksum: Uint8Array) =>
      buildMessage({ ...zeroHeader(Command.get_prepare), cluster, replica: 1, prepare_op: BigInt(op), prepare_checksum: BigInt(`0x${Buffer.from(checksum).reverse().toString("hex")}`) }, new Uint8Array(0))
    const answer = step(primary, now, { _tag: "Message", message: ask(2, prepares.get(2)!.subarray(0, checksumSize)) })
    expect(answer).toMatchObject([{ _tag: "ServePrepare", replica: 1, op: 2 }])
    expect(step(primary, now, { _tag: "Message", message: ask(2, prepares.get(1)!.subarray(0, checksumSize)) })).toEqual([])
    expect(step(primary, now, { _tag: "Message", message: ask(9, prepares.get(1)!.subarray(0, checksumSize)) })).toEqual([])
    // No checksum: the prepare our header names.
    const unnamed = ask(3, new Uint8Array(checksumSize))
    expect(readU64Number(unnamed, GetPrepareLayout.prepare_op.offset)).toBe(3)
    expect(step(primary, now, { _tag: "Message", message: unnamed })).toMatchObject([{ _tag: "ServePrepare", op: 3 }])
  })
})

describe("restarts in a cluster", () => {
  const restore = (core: ReplicaCore, sessions: ReadonlyArray<{ slot: number; client: bigint; session: bigint; reply: Uint8Array }> = [], repliesLost: ReadonlyArray<number> = []) => {
    const zero = new Uint8Array(checksumSize)
    step(core, now, { _tag: "Open" })
    return step(core, now, { _tag: "Restore", restored: { header: root, checkpoint: { op: 0, id: zero, parentId: zero }, sessions, commitMax: 0, repliesLost } })
  }
  const journalOps = (prepares: Map<number, Uint8Array>, count: number) =>
    Array.from({ length: count }, (_, i) => ({ op: i + 1, checksum: prepares.get(i + 1)!.subarray(0, checksumSize), header: prepares.get(i + 1)!.subarray(0, headerSize) }))

  it("a backup keeps its journal's ops above commit_max in its log, and acknowledges them again when the primary resends", () => {
    const { prepares } = primaryWithOps(4)
    const backup = new ReplicaCore(configOf(1), createLedger())
    restore(backup)
    expect(step(backup, now, { _tag: "JournalRecovered", ops: journalOps(prepares, 4) })).toEqual([{ _tag: "StatusChanged", status: "normal", view: 0, primary: 0 }])
    expect(backup.status).toBe("normal")
    expect(backup.commitOp).toBe(0)
    const again = sends(step(backup, now, { _tag: "Message", message: prepares.get(2)! }))
    expect(again.map((send) => [send.replica, commandOf(send.message), readU64Number(send.message, PrepareOkLayout.op.offset)])).toEqual([[0, Command.prepare_ok, 2]])
  })

  it("the restarted primary of a cluster that served starts a view change to the next view (what it had in flight is gone); a fresh one starts view 0", () => {
    const { prepares } = primaryWithOps(2)
    const restarted = new ReplicaCore(configOf(0), createLedger())
    restore(restarted)
    const outputs = step(restarted, now, { _tag: "JournalRecovered", ops: journalOps(prepares, 2) })
    expect(outputs.map((output) => output._tag)).toEqual(["PersistView", "StatusChanged"])
    expect(outputs[0]).toMatchObject({ view: 1, logView: 0, commitMax: 0 })
    expect(outputs[1]).toMatchObject({ status: "view_change", view: 1, primary: 1 })
    // Its join_view waits for view 1 to be durable, then goes to the primary of view 1 with its log.
    const joined = sends(step(restarted, now, { _tag: "ViewPersisted", view: 1, logView: 0 }))
    expect(joined.map((send) => [send.replica, commandOf(send.message), readU64Number(send.message, JoinViewLayout.op.offset)])).toEqual([[1, Command.join_view, 2]])
    expect(restarted.status).toBe("view_change")
    expect(startedCore(configOf(0), createLedger()).status).toBe("normal")
  })

  it("a backup whose client-replies zone lost a reply keeps the session and fetches the reply from a peer", () => {
    const { primary } = primaryWithOps(1)
    // The primary's session of client 1, its reply whole; the backup restored only its header.
    const served = sends(step(primary, now, { _tag: "Message", message: buildMessage({ ...zeroHeader(Command.get_reply), cluster, replica: 1, reply_client: 1n, reply_op: 1n }, new Uint8Array(0)) }))
    expect(served).toEqual([]) // the wrong checksum (zero): silence
    const reply = primaryReply(primary)
    const backup = new ReplicaCore(configOf(1), createLedger())
    restore(backup, [{ slot: 0, client: 1n, session: 1n, reply: reply.slice(0, headerSize) }], [0])
    // No SessionEnded in a cluster.
    expect(step(backup, now, { _tag: "JournalRecovered", ops: [] })).toEqual([{ _tag: "StatusChanged", status: "normal", view: 0, primary: 0 }])
    const asks: Array<Sent> = []
    for (let tick = 0; tick < 20; tick++) asks.push(...sends(step(backup, now, { _tag: "Tick" })).filter((send) => commandOf(send.message) === Command.get_reply))
    expect(asks.length).toBeGreaterThan(0)
    const answer = sends(step(primary, now, { _tag: "Message", message: asks[0]!.message }))
    expect(answer.map((send) => [send.replica, commandOf(send.message)])).toEqual([[1, Command.reply]])
    step(backup, now, { _tag: "Message", message: answer[0]!.message })
    const later: Array<Sent> = []
    for (let tick = 0; tick < 40; tick++) later.push(...sends(step(backup, now, { _tag: "Tick" })).filter((send) => commandOf(send.message) === Command.get_reply))
    expect(later).toEqual([])
  })
})

/** The reply the primary stored for client 1's register: what a retry of it gets. */
function primaryReply(primary: ReplicaCore): Uint8Array {
  const retry = step(primary, now, { _tag: "Message", message: register(1n) }).find((output) => output._tag === "SendToClient")
  expect(retry).toBeDefined()
  return (retry as Extract<Output, { _tag: "SendToClient" }>).message
}
