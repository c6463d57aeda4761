/**
 * Hostile input against a replica process (issue 4, wire-protocol.md §2 and §12.2): while a
 * well-behaved `tigerbeetle-node@0.17.9` client keeps creating and looking up transfers, raw
 * sockets send random bytes, truncated frames, bad checksums, oversized sizes, unknown commands,
 * the wrong cluster, and requests with valid checksums but bodies, operations or releases the
 * primary must answer with an eviction. The replica stays up, closes or evicts exactly as the
 * spec says, every call of the good client succeeds, and the final balances are exactly what the
 * good client created: nothing lost, nothing applied twice, nothing from the attackers applied.
 *
 * The run is bounded by what happens, not by time: every attacker sends every kind of hostile
 * input `cycles` times (in a shuffled order each time) while the good client goes on, for at least
 * `goodRoundsMin` and at most `goodRoundsMax` rounds (so that the test profile's 256-op journal is
 * never reached). It is seeded: a failure names its seed.
 */
import { createRequire } from "node:module"
import { connect, type Socket } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { buildMessage, setChecksum } from "../../src/protocol/build.ts"
import { Command, EvictionReason, FrameLayout, headerSize, messageSizeMax, releaseScarab, writeU32, zeroHeader } from "../../src/protocol/header.ts"
import { encodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { Operation } from "../../src/protocol/operation.ts"
import { format, type DataDirectory, type RunningReplica, startReplica, temporaryDataFile } from "./replica_process.ts"

const require = createRequire(import.meta.url)
type TigerBeetle = typeof import("tigerbeetle-node")
const tb: TigerBeetle = require("tigerbeetle-node")

/** Two ops per round (create, lookup): 2 + 2·100 ops, several checkpoints of the test profile. */
const goodRoundsMax = 100
const goodRoundsMin = 20
const attackers = 3
/** How many times each attacker sends each kind of hostile input. */
const cycles = 2
/**
 * How long an attacker waits for the replica's answer (a close, an eviction, a pong): a bound for
 * a replica that never answers, far beyond what a loaded machine takes. Silence, where it is the
 * right answer, is watched for `silenceMs` only: a late wrong answer could then go unseen, a
 * right one is never failed.
 */
const replyMs = 120_000
const silenceMs = 30
const accountCount = 4

let replica: RunningReplica | undefined
let data: DataDirectory | undefined

afterEach(async () => {
  await replica?.kill()
  replica = undefined
  data?.remove()
  data = undefined
})

type Kind =
  | "random_bytes" | "truncated" | "bad_header_checksum" | "bad_body_checksum" | "oversized" | "unknown_command"
  | "wrong_cluster" | "invalid_body" | "unknown_operation" | "release_too_low" | "register_without_body" | "no_session" | "ping"
  | "ping_no_session" | "invalid_header_then_ping" | "release_too_high"
const kinds: ReadonlyArray<Kind> = [
  "random_bytes", "truncated", "bad_header_checksum", "bad_body_checksum", "oversized", "unknown_command",
  "wrong_cluster", "invalid_body", "unknown_operation", "release_too_low", "register_without_body", "no_session", "ping",
  "ping_no_session", "invalid_header_then_ping", "release_too_high"
]

/** What the replica must do with one hostile message. */
type Expectation = { readonly _tag: "close" } | { readonly _tag: "evict"; readonly reason: number } | { readonly _tag: "pong" } | { readonly _tag: "nothing" }

describe("hostile input against a replica process", () => {
  it("survives garbage on its port while a good client's every call succeeds, and loses nothing", async () => {
    const seed = Number(process.env.SCARAB_FUZZ_SEED ?? Date.now() % 0x7fffffff)
    const random = prng(seed)
    data = temporaryDataFile()
    format(data.path)
    replica = await startReplica(data.path)
    const port = replica.port
    const client = tb.createClient({ cluster_id: 0n, replica_addresses: [String(port)] })
    const seen = new Map<Kind, number>()
    const failures: Array<string> = []
    try {
      const ids = Array.from({ length: accountCount }, (_, i) => BigInt(i + 1))
      const accounts = await client.createAccounts(ids.map((id) => account(id)))
      expect(accounts.map((r) => r.status)).toEqual(ids.map(() => tb.CreateAccountStatus.created))

      let done = false
      let covered = 0
      const attack = async (worker: number) => {
        const local = prng(seed + worker + 1)
        // Every kind, `cycles` times; then on while the good client runs.
        for (let cycle = 0; cycle < cycles || !done; cycle++) {
          for (const kind of shuffled(kinds, local)) {
            if (cycle >= cycles && done) break
            seen.set(kind, (seen.get(kind) ?? 0) + 1)
            const failure = await hostileExchange(port, kind, local)
            if (failure !== undefined) failures.push(`${kind}: ${failure}`)
          }
          if (cycle === cycles - 1) covered++
        }
      }
      let rounds = 0
      const expected = new Map<bigint, { debits: bigint; credits: bigint }>(ids.map((id) => [id, { debits: 0n, credits: 0n }]))
      const good = async () => {
        let nextId = 1_000_000n
        for (let round = 0; round < goodRoundsMax && (round < goodRoundsMin || covered < attackers); round++, rounds++) {
          const batch = Array.from({ length: 1 + Math.floor(random() * 200) }, () => {
            const debit = ids[Math.floor(random() * accountCount)]!
            let credit = ids[Math.floor(random() * accountCount)]!
            if (credit === debit) credit = ids[(Number(debit) % accountCount)]!
            return transfer(nextId++, debit, credit, BigInt(1 + Math.floor(random() * 1000)))
          })
          const results = await client.createTransfers(batch)
          expect(results.map((r) => r.status), `round ${round}, seed ${seed}`).toEqual(batch.map(() => tb.CreateTransferStatus.created))
          for (const t of batch) {
            expected.get(t.debit_account_id)!.debits += t.amount
            expected.get(t.credit_account_id)!.credits += t.amount
          }
          const found = await client.lookupTransfers(batch.map((t) => t.id))
          expect(found.map((t) => [t.id, t.amount]), `round ${round}, seed ${seed}`).toEqual(batch.map((t) => [t.id, t.amount]))
        }
      }
      try {
        await Promise.all([good().finally(() => (done = true)), ...Array.from({ length: attackers }, (_, worker) => attack(worker))])
      } finally {
        done = true
      }

      expect(failures, `seed ${seed}`).toEqual([])
      expect(replica.process.exitCode, replica.output()).toBeNull()
      expect(replica.process.signalCode).toBeNull()
      const final = await client.lookupAccounts(ids)
      expect(final.map((a) => [a.id, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending]), `seed ${seed}`)
        .toEqual(ids.map((id) => [id, expected.get(id)!.debits, expected.get(id)!.credits, 0n, 0n]))
      console.info(`seed ${seed}: ${rounds} good rounds; hostile inputs ${JSON.stringify(Object.fromEntries(seen))}`)
      // Every kind of hostile input was tried during the run, by every attacker, `cycles` times.
      expect([...seen.keys()].sort(), `seed ${seed}`).toEqual([...kinds].sort())
      for (const kind of kinds) expect(seen.get(kind), `${kind}, seed ${seed}`).toBeGreaterThanOrEqual(attackers * cycles)
    } finally {
      client.destroy()
    }
  })
})

// --- hostile exchanges -------------------------------------------------------------------------

/** Opens a socket, sends one hostile input of `kind`, checks the replica's answer; a failure message or undefined. */
async function hostileExchange(port: number, kind: Kind, random: () => number): Promise<string | undefined> {
  const { bytes, expectation } = hostileInput(kind, random)
  const socket = await openSocket(port)
  try {
    const outcome = observe(socket, expectation._tag === "nothing" ? silenceMs : replyMs)
    // Randomly chunked: framing must not depend on how the bytes arrive.
    for (let offset = 0; offset < bytes.length;) {
      const chunk = Math.min(bytes.length - offset, 1 + Math.floor(random() * 70_000))
      socket.write(bytes.subarray(offset, offset + chunk))
      offset += chunk
    }
    const result = await outcome
    switch (expectation._tag) {
      case "nothing":
        return result._tag === "message" ? `unexpected message, command ${result.message[114]}` : undefined
      case "close":
        return result._tag === "closed" ? undefined : `expected the connection closed, got ${describe_(result)}`
      case "evict":
        if (result._tag !== "message" || result.message[114] !== Command.eviction) return `expected an eviction, got ${describe_(result)}`
        return result.message[255] === expectation.reason ? undefined : `eviction reason ${result.message[255]}, expected ${expectation.reason}`
      case "pong":
        return result._tag === "message" && result.message[114] === Command.pong_client ? undefined : `expected a pong, got ${describe_(result)}`
    }
  } finally {
    socket.destroy()
  }
}

function hostileInput(kind: Kind, random: () => number): { bytes: Uint8Array; expectation: Expectation } {
  const clientId = 1n + BigInt(Math.floor(random() * 2 ** 52)) * 2n ** 64n
  switch (kind) {
    case "random_bytes": {
      // Fewer than 256 bytes leave the replica waiting for the rest of a header; more almost surely fail the header checksum.
      const bytes = randomBytes(1 + Math.floor(random() * 8192), random)
      return { bytes, expectation: bytes.length < headerSize ? { _tag: "nothing" } : { _tag: "close" } }
    }
    case "truncated": {
      const whole = request(clientId, Operation.create_transfers, 1n, 1, encodeMultiBatch([randomBytes(128 * 10, random)], 128))
      return { bytes: whole.subarray(0, Math.floor(random() * whole.length)), expectation: { _tag: "nothing" } }
    }
    case "bad_header_checksum": {
      const message = request(clientId, Operation.lookup_accounts, 1n, 1, encodeMultiBatch([new Uint8Array(16)], 16))
      message[16 + Math.floor(random() * (headerSize - 16))]! ^= 1 << Math.floor(random() * 8)
      return { bytes: message, expectation: { _tag: "close" } }
    }
    case "bad_body_checksum": {
      const message = request(clientId, Operation.lookup_accounts, 1n, 1, encodeMultiBatch([new Uint8Array(16 * 8)], 16))
      message[headerSize + Math.floor(random() * (message.length - headerSize))]! ^= 1 << Math.floor(random() * 8)
      return { bytes: message, expectation: { _tag: "close" } }
    }
    case "oversized": {
      // A valid header checksum over a size beyond 1 MiB (or below 256): closed before any body is awaited.
      const message = request(clientId, Operation.lookup_accounts, 1n, 1, encodeMultiBatch([new Uint8Array(16)], 16)).slice(0, headerSize)
      writeU32(message, FrameLayout.size.offset, random() < 0.8 ? messageSizeMax + 1 + Math.floor(random() * 2 ** 30) : Math.floor(random() * headerSize))
      setChecksum(message)
      return { bytes: message, expectation: { _tag: "close" } }
    }
    case "unknown_command": {
      const message = request(clientId, Operation.lookup_accounts, 1n, 1, encodeMultiBatch([new Uint8Array(16)], 16))
      message[FrameLayout.command.offset] = 25 + Math.floor(random() * 231)
      setChecksum(message)
      return { bytes: message, expectation: { _tag: "close" } }
    }
    case "wrong_cluster":
      return { bytes: request(clientId, Operation.lookup_accounts, 1n, 1, encodeMultiBatch([new Uint8Array(16)], 16), 7n), expectation: { _tag: "close" } }
    case "invalid_body": {
      // Valid checksums, a body that is no multi-batch encoding of transfers (§10.3): evicted.
      const size = 1 + Math.floor(random() * 4000)
      const body = randomBytes(size, random)
      body[size - 1] = 0 // k = 0 (even length) or an odd length: never a valid trailer
      if (size >= 2) body[size - 2] = 0
      return { bytes: request(clientId, Operation.create_transfers, 1n, 1, body), expectation: { _tag: "evict", reason: EvictionReason.invalid_request_body } }
    }
    case "unknown_operation":
      return { bytes: request(clientId, 148 + Math.floor(random() * 100), 1n, 1, new Uint8Array(0)), expectation: { _tag: "evict", reason: EvictionReason.invalid_request_operation } }
    case "release_too_low":
      return { bytes: request(clientId, Operation.lookup_accounts, 1n, 1, encodeMultiBatch([new Uint8Array(16)], 16), 0n, 1), expectation: { _tag: "evict", reason: EvictionReason.client_release_too_low } }
    case "release_too_high":
      return { bytes: request(clientId, Operation.lookup_accounts, 1n, 1, encodeMultiBatch([new Uint8Array(16)], 16), 0n, releaseScarab + 1 + Math.floor(random() * 1000)), expectation: { _tag: "evict", reason: EvictionReason.client_release_too_high } }
    case "register_without_body":
      return { bytes: request(clientId, 2, 0n, 0, new Uint8Array(0)), expectation: { _tag: "evict", reason: EvictionReason.invalid_request_body_size } }
    case "no_session":
      // A well-formed request from a client that never registered.
      return { bytes: request(clientId, Operation.lookup_accounts, 1n + BigInt(Math.floor(random() * 1000)), 1, encodeMultiBatch([new Uint8Array(16)], 16)), expectation: { _tag: "evict", reason: EvictionReason.no_session } }
    case "ping":
      return { bytes: ping(clientId, 0n, random), expectation: { _tag: "pong" } }
    case "ping_no_session":
      // A ping naming session 1 (committed long ago) from a client the replica has no session for (§9.7).
      return { bytes: ping(clientId, 1n, random), expectation: { _tag: "evict", reason: EvictionReason.no_session } }
    case "invalid_header_then_ping": {
      // A request whose header breaks a validity rule (§12.1: here a non-zero timestamp, or client 0)
      // is dropped silently and the connection stays open: the ping behind it is answered.
      const header = zeroHeader(Command.request)
      header.release = releaseScarab
      header.client = random() < 0.5 ? 0n : clientId
      header.timestamp = header.client === 0n ? 0n : 1n + BigInt(Math.floor(random() * 1e9))
      header.session = 1n
      header.request = 1
      header.operation = Operation.lookup_accounts
      const invalid = buildMessage(header, encodeMultiBatch([new Uint8Array(16)], 16))
      const bytes = new Uint8Array(invalid.length + headerSize)
      bytes.set(invalid)
      bytes.set(ping(clientId, 0n, random), invalid.length)
      return { bytes, expectation: { _tag: "pong" } }
    }
  }
}

function ping(client: bigint, session: bigint, random: () => number): Uint8Array {
  const header = zeroHeader(Command.ping_client)
  header.release = releaseScarab
  header.client = client
  header.session = session
  header.ping_timestamp_monotonic = BigInt(1 + Math.floor(random() * 1e9))
  return buildMessage(header, new Uint8Array(0))
}

function request(client: bigint, operation: number, session: bigint, number: number, body: Uint8Array, cluster = 0n, release = releaseScarab): Uint8Array {
  const header = zeroHeader(Command.request)
  header.cluster = cluster
  header.release = release
  header.client = client
  header.session = session
  header.request = number
  header.operation = operation
  return buildMessage(header, body)
}

type Observed = { readonly _tag: "message"; readonly message: Buffer } | { readonly _tag: "closed" } | { readonly _tag: "silent" }

const describe_ = (observed: Observed): string =>
  observed._tag === "message" ? `a message with command ${observed.message[114]}` : observed._tag

/** The first whole message the replica sends, or its closing the connection, or silence until `timeoutMs`. */
function observe(socket: Socket, timeoutMs: number): Promise<Observed> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0)
    const finish = (observed: Observed) => {
      clearTimeout(timer)
      socket.removeAllListeners("data")
      socket.removeAllListeners("close")
      socket.removeAllListeners("end")
      resolve(observed)
    }
    const timer = setTimeout(() => finish({ _tag: "silent" }), timeoutMs)
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      if (buffered.length >= headerSize && buffered.length >= buffered.readUInt32LE(96)) finish({ _tag: "message", message: buffered })
    })
    socket.once("end", () => finish({ _tag: "closed" }))
    socket.once("close", () => finish({ _tag: "closed" }))
  })
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => resolve(socket))
    socket.once("error", reject)
    // A reset after the replica closes is expected; it must not become an unhandled error.
    socket.on("error", () => {})
  })
}

/** A copy of `items` in a random order (Fisher-Yates). */
function shuffled<T>(items: ReadonlyArray<T>, random: () => number): Array<T> {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j]!, copy[i]!]
  }
  return copy
}

function randomBytes(length: number, random: () => number): Uint8Array {
  const bytes = new Uint8Array(length)
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256)
  return bytes
}

/** mulberry32: a small seeded generator, so that a failing run can be repeated. */
function prng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function account(id: bigint): import("tigerbeetle-node").Account {
  return {
    id, debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n, user_data_128: 0n, user_data_64: 0n,
    user_data_32: 0, reserved: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n
  }
}

function transfer(id: bigint, debit: bigint, credit: bigint, amount: bigint): import("tigerbeetle-node").Transfer {
  return {
    id, debit_account_id: debit, credit_account_id: credit, amount, pending_id: 0n, user_data_128: 0n, user_data_64: 0n,
    user_data_32: 0, timeout: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n
  }
}
