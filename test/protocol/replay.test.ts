/**
 * The protocol layer end to end on the captured session: the client's byte stream is framed,
 * every message validated and admitted as a primary would (no eviction), and each answer built
 * with the protocol's builders, from the request plus the values the crafted server chose (op,
 * timestamp, result body). Concatenated, the answers are the captured server stream, byte for
 * byte. (The result bodies come from the vectors: executing requests is the ledger's job.)
 */
import { assert, describe, it } from "@effect/vitest"
import { requestEvictionReason } from "../../src/protocol/body.ts"
import { buildPongClient, buildReply, requestContinuesReply, u128ToBytes } from "../../src/protocol/build.ts"
import { MessageFramer } from "../../src/protocol/framing.ts"
import {
  Command, FrameLayout, headerSize, readU64Number, releaseClientMin, releaseScarab, ReplyLayout
} from "../../src/protocol/header.ts"
import { batchSizeLimitMax } from "../../src/protocol/register.ts"
import { loadWireVectors, readVectorFile, sessionCluster } from "./wire_vectors.ts"

describe("replay of the captured session", () => {
  it("client stream in, the captured server stream out", () => {
    const crafted = loadWireVectors().filter((v) => /^session\/\d+_s2c_/.test(v.file)).map((v) => v.bytes)
    const limits = { release: releaseScarab, releaseClientMin, batchSizeLimit: batchSizeLimitMax }
    const answers: Array<Uint8Array> = []
    let latestReply: Uint8Array | undefined
    const framer = new MessageFramer(u128ToBytes(sessionCluster))
    const failure = framer.feed(readVectorFile("session/stream_c2s.raw"), {
      dropped: (_, rejection) => assert.fail(`dropped: ${rejection._tag}`),
      message: (message) => {
        const answer = crafted[answers.length]
        if (message[FrameLayout.command.offset] === Command.ping_client) {
          answers.push(buildPongClient(message, { view: 0, release: releaseScarab, replica: 0 }))
          return
        }
        assert.strictEqual(message[FrameLayout.command.offset], Command.request)
        assert.isUndefined(requestEvictionReason(message, limits))
        if (latestReply !== undefined) assert.isTrue(requestContinuesReply(message, latestReply))
        const view = new DataView(answer.buffer, answer.byteOffset)
        latestReply = buildReply(message, answer.subarray(headerSize), {
          view: 0,
          replica: 0,
          op: BigInt(readU64Number(answer, ReplyLayout.op.offset)),
          timestamp: view.getBigUint64(ReplyLayout.timestamp.offset, true)
        })
        answers.push(latestReply)
      }
    })
    assert.isUndefined(failure)
    assert.strictEqual(answers.length, 13)
    assert.deepStrictEqual(Buffer.concat(answers), Buffer.from(readVectorFile("session/stream_s2c.raw")))
  })
})
