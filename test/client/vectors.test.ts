/**
 * The session against the captured `tigerbeetle-node@0.17.9` session (test/vectors/session): the
 * same calls must produce the same requests, byte for byte except the fields that name this
 * client (its random id, hence the checksums and the parent chain), and the crafted replies the
 * official client accepted, re-addressed to this client, must give the same results. Files 07
 * and 09 show the official batching of three calls: the first goes out alone, and the other two,
 * made while it is in flight, are merged into one request.
 */
import { readFileSync } from "node:fs"
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { makeSession, type TransportFactory } from "../../src/client/session.ts"
import { sealMessage, sealReply } from "../../src/protocol/build.ts"
import { Command, EvictionLayout, FrameLayout, readU32, ReplyLayout, RequestLayout, u128Equal } from "../../src/protocol/header.ts"
import { decodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { eventSize, resultSize, type ClientOperation } from "../../src/protocol/operation.ts"

const directory = new URL("../vectors/session/", import.meta.url)
const vector = (name: string) => new Uint8Array(readFileSync(new URL(name, directory)))
const cluster = 0x0f0e0d0c0b0a09080706050403020100n
const replyBytes = (reply: Uint8Array) => reply

const pairs = [
  ["01_c2s_request_register.bin", "02_s2c_reply_register.bin"],
  ["03_c2s_request_create_accounts.bin", "04_s2c_reply_create_accounts.bin"],
  ["05_c2s_request_create_transfers.bin", "06_s2c_reply_create_transfers.bin"],
  ["07_c2s_request_create_accounts.bin", "08_s2c_reply_create_accounts.bin"],
  ["09_c2s_request_create_accounts_2_batches.bin", "10_s2c_reply_create_accounts_2_batches.bin"],
  ["11_c2s_request_lookup_accounts.bin", "12_s2c_reply_lookup_accounts.bin"],
  ["13_c2s_request_lookup_transfers.bin", "14_s2c_reply_lookup_transfers.bin"],
  ["15_c2s_request_get_account_transfers.bin", "16_s2c_reply_get_account_transfers.bin"],
  ["17_c2s_request_get_account_balances.bin", "18_s2c_reply_get_account_balances.bin"],
  ["19_c2s_request_query_accounts.bin", "20_s2c_reply_query_accounts.bin"],
  ["21_c2s_request_query_transfers.bin", "22_s2c_reply_query_transfers.bin"],
  ["25_c2s_request_lookup_accounts.bin", "26_s2c_reply_lookup_accounts.bin"]
].map(([request, reply]) => ({ request: vector(request!), reply: vector(reply!) }))

/** Header bytes that depend on the client id (checksum, parent, client) or on timing (previous_request_latency). */
const clientDependent: ReadonlyArray<readonly [number, number]> = [
  [RequestLayout.previous_request_latency.offset, RequestLayout.previous_request_latency.offset + 4],
  [FrameLayout.checksum.offset, FrameLayout.checksum.offset + 16],
  [RequestLayout.parent.offset, RequestLayout.parent.offset + 16],
  [RequestLayout.client.offset, RequestLayout.client.offset + 16]
]
const masked = (message: Uint8Array) => {
  const copy = message.slice()
  for (const [start, end] of clientDependent) copy.fill(0, start, end)
  return copy
}

const operationOf = (message: Uint8Array) => message[RequestLayout.operation.offset]! as ClientOperation
const batchesOf = (message: Uint8Array, size: number) => {
  const batches = decodeMultiBatch(message.subarray(256), size)
  assert.isTrue(Array.isArray(batches))
  return batches as Array<Uint8Array>
}

describe("client session against the captured tigerbeetle-node session", () => {
  it.effect("same calls, same requests; re-addressed captured replies, same results", () => Effect.gen(function* () {
    const sent: Array<Uint8Array> = []
    const replies: Array<Uint8Array> = []
    let clientId = 0n
    /** Plays the captured server: answers each request with its captured reply, re-addressed. */
    const server: TransportFactory = (deliver) => Effect.succeed({
      replicaCount: 1,
      send: (_replica: number, message: Uint8Array) => Effect.sync(() => {
        if (message[FrameLayout.command.offset] !== Command.request) return
        sent.push(message)
        const pair = pairs[readU32(message, RequestLayout.request.offset)]!
        const reply = pair.reply.slice()
        reply.set(message.subarray(RequestLayout.client.offset, RequestLayout.client.offset + 16), ReplyLayout.client.offset)
        reply.set(message.subarray(FrameLayout.checksum.offset, 16), ReplyLayout.request_checksum.offset)
        sealReply(reply)
        replies.push(reply)
        setImmediate(() => deliver(reply))
      })
    })
    const session = yield* makeSession({ cluster, transport: server })
    clientId = session.clientId
    const call = (message: Uint8Array, index: number) =>
      session.call(operationOf(message), batchesOf(message, eventSize(operationOf(message)))[index]!, replyBytes)

    const results: Array<[number, number, Uint8Array]> = [] // pair, batch, result
    for (let p = 1; p < pairs.length; p++) {
      const { request } = pairs[p]!
      if (p === 3) {
        // Files 07 and 09: one call, and two more made once it is in flight (the session's actor
        // sends it within a few scheduler turns; the captured server answers a macrotask later).
        const later = pairs[4]!.request
        const first = yield* Effect.forkChild(call(request, 0), { startImmediately: true })
        for (let turn = 0; turn < 10 && sent.length < 4; turn++) yield* Effect.yieldNow
        assert.strictEqual(sent.length, 4, "the first call went out alone")
        const fibers = [
          first,
          yield* Effect.forkChild(call(later, 0), { startImmediately: true }),
          yield* Effect.forkChild(call(later, 1), { startImmediately: true })
        ]
        const [a, b, c] = yield* Fiber.joinAll(fibers)
        results.push([3, 0, a!], [4, 0, b!], [4, 1, c!])
        p = 4
        continue
      }
      results.push([p, 0, yield* call(request, 0)])
    }

    expect(sent.length).toBe(pairs.length)
    sent.forEach((message, i) => {
      expect(masked(message), `request ${i}`).toEqual(masked(pairs[i]!.request))
      assert.strictEqual(readU32(message, RequestLayout.request.offset), i)
      if (i > 0) assert.isTrue(u128Equal(message, RequestLayout.parent.offset, replies[i - 1]!, ReplyLayout.context.offset), `parent of ${i}`)
    })
    assert.notStrictEqual(clientId, 0n)
    expect(results.length).toBe(pairs.length) // 12 calls after the register, in 11 requests
    for (const [p, batch, result] of results) {
      const reply = pairs[p]!.reply
      const operation = reply[ReplyLayout.operation.offset]! as ClientOperation
      expect(result, `reply ${p} batch ${batch}`).toEqual(batchesOf(reply, resultSize(operation))[batch])
    }
  }))

  for (const [run, reason] of [["b", "no_session"], ["c", "client_release_too_high"]] as const) {
    it.effect(`the captured eviction run ${run}: the in-flight call and later calls fail with ClientEvicted (${reason})`, () => Effect.gen(function* () {
      const files = new URL("../vectors/eviction/", import.meta.url)
      const read = (name: string) => new Uint8Array(readFileSync(new URL(name, files)))
      const [request1, registerReply, request2, eviction] = (run === "b"
        ? ["b1_c2s_request_register.bin", "b2_s2c_reply_register.bin", "b3_c2s_request_create_accounts.bin", "b4_s2c_eviction_no_session.bin"]
        : ["c1_c2s_request_register.bin", "c2_s2c_reply_register.bin", "c3_c2s_request_create_accounts.bin", "c4_s2c_eviction_client_release_too_high.bin"]).map(read)
      const server: TransportFactory = (deliver) => Effect.succeed({
        replicaCount: 1,
        send: (_replica: number, message: Uint8Array) => Effect.sync(() => {
          if (message[FrameLayout.command.offset] !== Command.request) return
          const client = message.subarray(RequestLayout.client.offset, RequestLayout.client.offset + 16)
          let answer: Uint8Array
          if (readU32(message, RequestLayout.request.offset) === 0) {
            expect(masked(message)).toEqual(masked(request1!))
            answer = registerReply!.slice()
            answer.set(client, ReplyLayout.client.offset)
            answer.set(message.subarray(0, 16), ReplyLayout.request_checksum.offset)
            sealReply(answer)
          } else {
            expect(masked(message)).toEqual(masked(request2!))
            answer = eviction!.slice()
            answer.set(client, EvictionLayout.client.offset)
            sealMessage(answer)
          }
          setImmediate(() => deliver(answer))
        })
      })
      const session = yield* makeSession({ cluster: 0n, transport: server })
      const body = batchesOf(request2!, 128)[0]!
      const error = yield* Effect.flip(session.call(operationOf(request2!), body, replyBytes))
      expect([error._tag, error._tag === "ClientEvicted" ? error.reason : ""]).toEqual(["ClientEvicted", reason])
      const later = yield* Effect.flip(session.call(operationOf(request2!), body, replyBytes))
      expect(later._tag).toBe("ClientEvicted")
    }))
  }
})
