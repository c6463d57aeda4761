/**
 * Building messages byte-exactly (wire-protocol.md §6.3, §6.4, §13): from each captured request
 * and the few values the server chose (view, replica, op, timestamp, body), the reply builder
 * reproduces every crafted reply of ../shared/vectors byte for byte, context included; likewise
 * the pong and the three evictions. The hash chains hold across the captured session.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import {
  buildEviction, buildMessage, buildPongClient, buildPrepareOk, buildReply, buildReplyInto, prepareFollows, prepareFromRequest,
  requestContinuesReply, resendReplyInView, u128FromBytes, u128ToBytes
} from "../../src/protocol/build.ts"
import {
  Command, decodeHeader, EvictionReason, FrameLayout, headerSize, type HeaderOf, type PrepareHeader, releaseScarab,
  type ReplyHeader, type RequestHeader, zeroHeader
} from "../../src/protocol/header.ts"

type PrepareOkHeader = HeaderOf<typeof Command.prepare_ok>
import { rootPrepare } from "../../src/protocol/header_rules.ts"
import { validateMessage } from "../../src/protocol/message.ts"
import { loadWireVectors, sessionCluster } from "./wire_vectors.ts"

const vectors = loadWireVectors()
const bytesOf = (suffix: string) => vectors.find((v) => v.file.endsWith(suffix))!.bytes
const sessionFiles = vectors.filter((v) => v.file.startsWith("session/") && v.file.endsWith(".bin"))

/** Each crafted reply with the request it answers: the message just before it in its run. */
const replyPairs = vectors.flatMap((vector, index) =>
  vector.header.command === String(Command.reply) ? [{ request: vectors[index - 1], reply: vector }] : []
)

describe("build: the crafted replies, byte for byte", () => {
  it("reproduces every reply of the vectors from its request", () => {
    assert.strictEqual(replyPairs.length, 14)
    for (const { request, reply } of replyPairs) {
      assert.strictEqual(request.header.command, String(Command.request), reply.file)
      const listed = decodeHeader(reply.bytes) as ReplyHeader
      const built = buildReply(request.bytes, reply.bytes.subarray(headerSize), {
        view: listed.view, replica: listed.replica, op: listed.op, timestamp: listed.timestamp
      })
      assert.deepStrictEqual(built, reply.bytes, reply.file)
    }
  })

  it("builds into a caller's buffer whose body is already in place", () => {
    const { request, reply } = replyPairs[3]
    const target = new Uint8Array(4096).fill(0xee)
    target.set(reply.bytes.subarray(headerSize), headerSize)
    const listed = decodeHeader(reply.bytes) as ReplyHeader
    const built = buildReplyInto(target, request.bytes, reply.bytes.length - headerSize, listed)
    assert.deepStrictEqual(built, reply.bytes)
    assert.strictEqual(built.buffer, target.buffer)
  })

  it("reproduces the pong_client from the captured ping", () => {
    const pong = buildPongClient(bytesOf("23_c2s_ping_client.bin"), { view: 0, release: releaseScarab, replica: 0 })
    assert.deepStrictEqual(pong, bytesOf("24_s2c_pong_client.bin"))
  })

  it("reproduces the three evictions from the requests they answer", () => {
    const fields = { view: 0, release: releaseScarab, replica: 0 }
    assert.deepStrictEqual(buildEviction(bytesOf("a1_c2s_request_register.bin"), EvictionReason.client_release_too_low, fields), bytesOf("a2_s2c_eviction_client_release_too_low.bin"))
    assert.deepStrictEqual(buildEviction(bytesOf("b3_c2s_request_create_accounts.bin"), EvictionReason.no_session, fields), bytesOf("b4_s2c_eviction_no_session.bin"))
    assert.deepStrictEqual(buildEviction(bytesOf("c3_c2s_request_create_accounts.bin"), EvictionReason.client_release_too_high, fields), bytesOf("c4_s2c_eviction_client_release_too_high.bin"))
  })

  it("reproduces every vector from its decoded header and body (cold path; replies recompute context)", () => {
    for (const vector of vectors) {
      const header = { ...decodeHeader(vector.bytes), checksum: 0n, checksum_body: 0n }
      if (header.command === Command.reply) header.context = 0n
      assert.deepStrictEqual(buildMessage(header, vector.bytes.subarray(headerSize)), vector.bytes, vector.file)
    }
  })

  it("refuses to build what the client would reject", () => {
    const request = bytesOf("03_c2s_request_create_accounts.bin")
    assert.throws(() => buildReply(request, new Uint8Array(0), { view: 0, replica: 0, op: 0n, timestamp: 1n }))
    assert.throws(() => buildReply(request, new Uint8Array(0), { view: 0, replica: 0, op: 1n, timestamp: 0n }))
    assert.throws(() => buildPongClient(bytesOf("23_c2s_ping_client.bin"), { view: 0, release: releaseScarab, replica: 6 }))
    assert.throws(() => buildEviction(request, EvictionReason.reserved, { view: 0, release: releaseScarab, replica: 0 }))
    assert.throws(() => buildPongClient(request, { view: 0, release: releaseScarab, replica: 0 }))
  })
})

describe("build: hash chains", () => {
  it("every request of the session continues the reply before it (parent = context)", () => {
    const session = sessionFiles.filter((v) => v.header.command === String(Command.request) || v.header.command === String(Command.reply))
    let chained = 0
    for (let i = 2; i < session.length; i += 2) {
      assert.isTrue(requestContinuesReply(session[i].bytes, session[i - 1].bytes), session[i].file)
      assert.isFalse(requestContinuesReply(session[i].bytes, session[i + 1]?.bytes ?? session[1].bytes), session[i].file)
      chained++
    }
    assert.strictEqual(chained, 11)
  })

  it("a reply re-sent in a newer view keeps its context and stays valid", () => {
    const reply = bytesOf("04_s2c_reply_create_accounts.bin").slice()
    const before = decodeHeader(reply) as ReplyHeader
    resendReplyInView(reply, 3)
    const after = decodeHeader(reply) as ReplyHeader
    assert.strictEqual(after.view, 3)
    assert.strictEqual(after.context, before.context)
    assert.notStrictEqual(after.checksum, before.checksum)
    assert.isUndefined(validateMessage(reply, u128ToBytes(sessionCluster)))
    assert.throws(() => resendReplyInView(reply, 2))
  })

  it("turns requests into a valid hash-chained log of prepares, each acknowledged by a valid prepare_ok", () => {
    const cluster = u128ToBytes(sessionCluster)
    let previous = rootPrepare(cluster)
    assert.isUndefined(validateMessage(previous, cluster))
    const requests = sessionFiles.filter((v) => v.header.command === String(Command.request))
    requests.forEach(({ bytes }, index) => {
      const request = decodeHeader(bytes) as RequestHeader
      const message = bytes.slice()
      const op = BigInt(index + 1)
      prepareFromRequest(message, {
        view: 2, replica: 1, parent: previous, parentOffset: FrameLayout.checksum.offset, checkpointId: new Uint8Array(16),
        op, commit: op - 1n, timestamp: 1000n + op
      }, false)
      assert.isUndefined(validateMessage(message, cluster))
      assert.isTrue(prepareFollows(message, previous))
      const prepare = decodeHeader(message) as PrepareHeader
      assert.strictEqual(prepare.request_checksum, request.checksum)
      assert.deepStrictEqual(
        [prepare.client, prepare.request, prepare.operation, prepare.release, prepare.op, prepare.view, prepare.replica, prepare.checksum_body],
        [request.client, request.request, request.operation, request.release, op, 2, 1, request.checksum_body]
      )
      assert.deepStrictEqual(message.subarray(headerSize), bytes.subarray(headerSize))
      const ok = buildPrepareOk(message, { view: 3, replica: 2, commitMin: op - 1n })
      assert.isUndefined(validateMessage(ok, cluster))
      const ack = decodeHeader(ok) as PrepareOkHeader
      assert.deepStrictEqual(
        [ack.parent, ack.prepare_checksum, ack.checkpoint_id, ack.client, ack.op, ack.commit_min, ack.timestamp, ack.request, ack.operation, ack.view, ack.replica, ack.release],
        [prepare.parent, prepare.checksum, prepare.checkpoint_id, prepare.client, op, op - 1n, prepare.timestamp, prepare.request, prepare.operation, 3, 2, 0]
      )
      previous = message
    })
  })

  it("the root prepare_ok names the root prepare of its own cluster", () => {
    const cluster = u128ToBytes(5n)
    const root = rootPrepare(cluster)
    assert.deepStrictEqual(decodeHeader(root), { ...zeroHeader(Command.prepare), cluster: 5n, size: 256, operation: 1, checksum: u128FromBytes(root, 0), checksum_body: 0x49f174618255402de6e7e3c40d60cc83n })
    const ok = (checksum: bigint) =>
      validateMessage(buildMessage({ ...zeroHeader(Command.prepare_ok), cluster: 5n, operation: 1, prepare_checksum: checksum }, new Uint8Array(0)), cluster)
    assert.isUndefined(ok(u128FromBytes(root, 0)))
    assert.strictEqual(ok(1n)?._tag, "InvalidHeader")
  })
})

describe("build: properties", () => {
  it("any reply the builder makes passes the pipeline and echoes the request", () => {
    const request = bytesOf("11_c2s_request_lookup_accounts.bin")
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 1024 }),
        fc.nat(0xffff_ffff),
        fc.nat(255),
        fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
        (body, view, replica, op, timestamp) => {
          const reply = buildReply(request, body, { view, replica, op, timestamp })
          assert.isUndefined(validateMessage(reply, u128ToBytes(sessionCluster)))
          const header = decodeHeader(reply) as ReplyHeader
          assert.deepStrictEqual([header.op, header.commit, header.timestamp, header.view], [op, op, timestamp, view])
        }
      ),
      { numRuns: 200 }
    )
  })
})
