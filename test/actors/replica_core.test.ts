/**
 * The replica core against the captured session of tigerbeetle-node@0.17.9: feeding the client's
 * messages in order, with each journal write completing at once and the clock set so that every
 * commit gets the captured reply's timestamp, must reproduce the crafted replies.
 *
 * The crafted server's toy ledger stamped created objects differently from TigerBeetle (account 1
 * at T - 1000 instead of slot T - 1), so timestamps *inside result bodies* cannot match a correct
 * ledger. Everything else must: the register reply and the pong byte for byte, and for every
 * other reply the header (apart from the checksums that cover the body), every status, every
 * record field and the multi-batch trailer. Because reply bodies differ, each request's `parent`
 * is re-chained to the context of the reply this core actually sent (and the request resealed);
 * the reply must then name that resealed request.
 */
import { readdirSync, readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import type { Output, ReplicaCore } from "../../src/actors/replica_core.ts"
import { startedCore, step, storeCheckpoint } from "./core_harness.ts"
import { createLedger } from "../../src/ledger/ledger.ts"
import { bodySizeMax } from "../../src/protocol/operation.ts"
import { setChecksum } from "../../src/protocol/build.ts"
import { releaseClientMin, releaseScarab } from "../../src/protocol/header.ts"
import { vectorsDirectory } from "../protocol/checksum_vectors.ts"

const sessionDirectory = vectorsDirectory + "session/"
const files = readdirSync(sessionDirectory).filter((file) => file.endsWith(".bin")).sort()
const load = (file: string): Uint8Array => new Uint8Array(readFileSync(sessionDirectory + file))
const u64At = (bytes: Uint8Array, offset: number): bigint => new DataView(bytes.buffer, bytes.byteOffset + offset, 8).getBigUint64(0, true)

const config = {
  cluster: 0x0f0e0d0c0b0a09080706050403020100n, replica: 0, replicaCount: 1, release: releaseScarab, releaseClientMin,
  batchSizeLimit: bodySizeMax, clientsMax: 64, storage: { journalSlotCount: 1024, checkpointOps: 960, pipelineMax: 8 }
}

/** Runs one input and completes every journal write it asks for; returns what was sent. */
function run(core: ReplicaCore, realtimeNs: bigint, message: Uint8Array): Array<Uint8Array> {
  const sent: Array<Uint8Array> = []
  let pending: Array<Output> = step(core, { realtimeNs }, { _tag: "Message", message: message.slice() })
  for (let rounds = 0; pending.length > 0 && rounds < 16; rounds++) {
    const next: Array<Output> = []
    for (const output of pending) {
      if (output._tag === "SendToClient") sent.push(output.message)
      if (output._tag === "JournalWrite") next.push(...step(core, { realtimeNs }, { _tag: "JournalWriteDone", op: output.op }))
    }
    pending = next
  }
  return sent
}

describe("ReplicaCore, captured session", () => {
  it("answers every captured request with the captured reply", () => {
    const core = startedCore(config, createLedger())
    let compared = 0
    let context: Uint8Array | undefined
    for (let i = 0; i < files.length; i += 2) {
      const request = load(files[i]!)
      if (context !== undefined && request[114] === 5) {
        request.set(context, 128)
        setChecksum(request)
      }
      const expected = load(files[i + 1]!)
      expect(files[i + 1]).toMatch(/_s2c_/)
      // The clock reads what makes the commit's timestamp the captured one: the reply timestamp
      // minus the events the request creates (creates consume one nanosecond per event).
      const replyTimestamp = expected[114] === 8 ? u64At(expected, 224) : 0n
      const created = files[i]!.includes("create_") ? countEvents(request) : 0
      const sent = run(core, replyTimestamp - BigInt(created), request)
      expect(sent, files[i]).toHaveLength(1)
      const actual = sent[0]!
      const label = `${files[i]} → ${files[i + 1]}`
      if (/register|pong/.test(files[i + 1]!)) {
        expect(hex(actual), label).toBe(hex(expected))
      } else {
        expect(actual.length, label).toBe(expected.length)
        expect(hex(withoutBodyChecksums(actual)), label).toBe(hex(withoutBodyChecksums(expected)))
        expect(hex(maskTimestamps(actual)), label).toBe(hex(maskTimestamps(expected)))
        expect(hex(actual.subarray(128, 144)), label).toBe(hex(request.subarray(0, 16)))
      }
      if (actual[114] === 8) context = actual.slice(160, 176)
      compared++
    }
    expect(compared).toBe(13)
  })

  it("answers a retried request with the identical stored reply and executes it once", () => {
    const core = startedCore(config, createLedger())
    run(core, 1_700_000_000_000_001_000n, load("01_c2s_request_register.bin"))
    const request = load("03_c2s_request_create_accounts.bin")
    const first = run(core, 1_700_000_000_000_002_000n, request)
    const retry = run(core, 1_700_000_000_000_009_000n, request)
    expect(retry).toHaveLength(1)
    expect(retry[0]).toEqual(first[0])
    expect(core.commitOp).toBe(2)
  })
})

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")

/** The header without the checksums that cover the body or the re-chained request. */
function withoutBodyChecksums(reply: Uint8Array): Uint8Array {
  const header = reply.slice(0, 256)
  header.fill(0, 0, 16)
  header.fill(0, 32, 48)
  header.fill(0, 128, 144) // request_checksum: the resealed request's
  header.fill(0, 160, 176)
  return header
}

/** The reply body with the timestamp field of every result or record zeroed (trailer kept). */
function maskTimestamps(reply: Uint8Array): Uint8Array {
  const body = reply.slice(256)
  const operation = reply[236]!
  const [size, timestampOffset] = operation >= 146 ? [16, 0] : operation === 143 ? [128, 64] : [operation === 144 || operation === 145 || operation === 140 || operation === 141 || operation === 142 ? 128 : 0, 120]
  const batches = new DataView(body.buffer, body.length - 2, 2).getUint16(0, true)
  let records = 0
  for (let b = 0; b < batches; b++) records += new DataView(body.buffer, body.length - 4 - 2 * b, 2).getUint16(0, true)
  for (let r = 0; r < records; r++) body.fill(0, r * size + timestampOffset, r * size + timestampOffset + 8)
  return body
}

describe("ReplicaCore, evictions", () => {
  const evictionDirectory = vectorsDirectory + "eviction/"
  const loadEviction = (file: string): Uint8Array => new Uint8Array(readFileSync(evictionDirectory + file))

  it("evicts a client below the oldest supported release with the captured eviction", () => {
    // The captured client runs 0.17.9; a replica whose oldest supported client is newer evicts it.
    const core = startedCore({ ...config, cluster: 0n, releaseClientMin: releaseScarab + 1 }, createLedger())
    const sent = run(core, 1_700_000_000_000_001_000n, loadEviction("a1_c2s_request_register.bin"))
    expect(sent.map(hex)).toEqual([hex(loadEviction("a2_s2c_eviction_client_release_too_low.bin"))])
  })

  it("displaces the least recently committed session at clientsMax; its next request gets no_session", () => {
    const core = startedCore({ ...config, cluster: 0n, clientsMax: 1 }, createLedger())
    const registered = run(core, 1_700_000_000_000_001_000n, loadEviction("b1_c2s_request_register.bin"))
    expect(registered.map(hex)).toEqual([hex(loadEviction("b2_s2c_reply_register.bin"))])
    // Another client registers: with one session slot, client b's session is displaced.
    expect(run(core, 1_700_000_000_000_002_000n, loadEviction("c1_c2s_request_register.bin"))).toHaveLength(1)
    const evicted = run(core, 1_700_000_000_000_003_000n, loadEviction("b3_c2s_request_create_accounts.bin"))
    expect(evicted.map(hex)).toEqual([hex(loadEviction("b4_s2c_eviction_no_session.bin"))])
    expect(core.commitOp).toBe(2)
  })
})

describe("ReplicaCore, checkpoints", () => {
  /** Register, create_accounts (op 2), then a create_transfers request chained to the second reply. */
  function session(core: ReplicaCore) {
    expect(run(core, 1_700_000_000_000_001_000n, load("01_c2s_request_register.bin"))).toHaveLength(1)
    const outputs = step(core, { realtimeNs: 1_700_000_000_000_002_000n }, { _tag: "Message", message: load("03_c2s_request_create_accounts.bin") })
    const write = outputs.find((output) => output._tag === "JournalWrite")
    expect(write).toBeDefined()
    const committed = step(core, { realtimeNs: 1_700_000_000_000_002_000n }, { _tag: "JournalWriteDone", op: 2 })
    const reply = committed.find((output) => output._tag === "SendToClient")
    expect(reply?._tag).toBe("SendToClient")
    const next = load("05_c2s_request_create_transfers.bin")
    next.set((reply as Extract<Output, { _tag: "SendToClient" }>).message.subarray(160, 176), 128) // chain to the reply this core sent
    setChecksum(next)
    return { committed, next }
  }
  const position = (op: number) => ({ op, id: new Uint8Array(16).fill(op), parentId: new Uint8Array(16).fill(100 + op) })

  it("asks for a checkpoint right after committing a checkpoint op, and commits nothing more until it is stored", () => {
    const core = startedCore({ ...config, storage: { journalSlotCount: 8, checkpointOps: 3, pipelineMax: 8 } }, createLedger())
    const { committed, next } = session(core)
    const checkpoint = committed.find((output) => output._tag === "CheckpointData")
    expect(checkpoint).toMatchObject({ _tag: "CheckpointData", op: 2 })
    const asked = checkpoint as Extract<Output, { _tag: "CheckpointData" }>
    expect(u64At(asked.header, 224)).toBe(2n)
    expect(asked.sessions.map((entry) => entry.slot)).toEqual([0])
    // Op 3 is written while the checkpoint is stored, but does not commit before it is.
    const written = step(core, { realtimeNs: 1_700_000_000_000_003_000n }, { _tag: "Message", message: next })
    const prepare = written.find((output) => output._tag === "JournalWrite") as Extract<Output, { _tag: "JournalWrite" }>
    expect(prepare.op).toBe(3)
    // Prepared on top of the root checkpoint, beyond the next one: it carries the root's id (zero in this core).
    expect(Buffer.from(prepare.prepare.subarray(192, 208)).toString("hex")).toBe("00".repeat(16))
    expect(step(core, { realtimeNs: 1_700_000_000_000_003_000n }, { _tag: "JournalWriteDone", op: 3 }).some((o) => o._tag === "SendToClient")).toBe(false)
    expect(core.commitOp).toBe(2)
    const resumed = storeCheckpoint(core, { realtimeNs: 1_700_000_000_000_004_000n }, position(2))
    expect(resumed.some((o) => o._tag === "SendToClient")).toBe(true)
    expect(core.commitOp).toBe(3)
  })

  it("refuses to prepare past prepareMax while the next checkpoint is not stored, rather than overwriting history", () => {
    const core = startedCore({ ...config, storage: { journalSlotCount: 3, checkpointOps: 3, pipelineMax: 8 } }, createLedger())
    const { next } = session(core)
    const refused = step(core, { realtimeNs: 1_700_000_000_000_003_000n }, { _tag: "Message", message: next })
    expect(refused.map((output) => output._tag)).toEqual(["JournalFull"])
    storeCheckpoint(core, { realtimeNs: 1_700_000_000_000_004_000n }, position(2))
    const accepted = step(core, { realtimeNs: 1_700_000_000_000_005_000n }, { _tag: "Message", message: next })
    const prepare = accepted.find((output) => output._tag === "JournalWrite") as Extract<Output, { _tag: "JournalWrite" }>
    // Op 3 lies in (C_1, C_2] with C_1 = 2: it carries the id of C_0, the parent of checkpoint 2.
    expect([...prepare.prepare.subarray(192, 208)]).toEqual([...position(2).parentId])
    expect(core.commitOp).toBe(2)
  })
})

/** Events in a single-batch create request: (body - trailer) / 128, the trailer being one element. */
function countEvents(request: Uint8Array): number {
  const body = request.length - 256
  const batches = new DataView(request.buffer, request.byteOffset + request.length - 2, 2).getUint16(0, true)
  let events = 0
  for (let b = 0; b < batches; b++) events += new DataView(request.buffer, request.byteOffset + request.length - 4 - 2 * b, 2).getUint16(0, true)
  expect(body).toBeGreaterThan(events * 128)
  return events
}
