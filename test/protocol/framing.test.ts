/**
 * Framing a TCP stream (wire-protocol.md §2): the captured client and server streams split into
 * exactly the captured messages, however the bytes are chunked; whole messages inside a chunk
 * are not copied; nothing beyond one message is ever buffered; bad input ends the stream with a
 * typed reason and never throws.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { sealMessage, setChecksum, u128ToBytes } from "../../src/protocol/build.ts"
import { FrameLayout, headerSize, messageSizeMax, ReplyLayout, writeU32 } from "../../src/protocol/header.ts"
import { type FrameSink, MessageFramer } from "../../src/protocol/framing.ts"
import type { Rejection } from "../../src/protocol/message.ts"
import { loadWireVectors, readVectorFile, sessionCluster } from "./wire_vectors.ts"

const vectors = loadWireVectors()
const cluster = u128ToBytes(sessionCluster)
const streams = {
  c2s: { bytes: readVectorFile("session/stream_c2s.raw"), files: vectors.filter((v) => /^session\/\d+_c2s_/.test(v.file)) },
  s2c: { bytes: readVectorFile("session/stream_s2c.raw"), files: vectors.filter((v) => /^session\/\d+_s2c_/.test(v.file)) }
}

interface Collected {
  readonly messages: Array<Uint8Array>
  readonly dropped: Array<Rejection>
  readonly sink: FrameSink
}

function collector(): Collected {
  const messages: Array<Uint8Array> = []
  const dropped: Array<Rejection> = []
  return { messages, dropped, sink: { message: (m) => messages.push(m), dropped: (_, r) => dropped.push(r) } }
}

/** Feeds `stream` cut at `cuts` (sorted offsets) and returns what came out. */
function frame(stream: Uint8Array, cuts: ReadonlyArray<number>, framer = new MessageFramer(cluster)) {
  const out = collector()
  let start = 0
  let failure: Rejection | undefined
  for (const end of [...cuts, stream.length]) {
    failure = framer.feed(stream.subarray(start, end), out.sink)
    assert.isAtMost(framer.bufferedBytes, messageSizeMax)
    start = end
  }
  return { ...out, failure, framer }
}

describe("framing: captured streams", () => {
  for (const [name, { bytes, files }] of Object.entries(streams)) {
    it(`splits stream_${name}.raw into exactly the ${files.length} captured messages`, () => {
      assert.strictEqual(files.length, 13)
      const { messages, dropped, failure, framer } = frame(bytes, [])
      assert.isUndefined(failure)
      assert.deepStrictEqual(dropped, [])
      assert.deepStrictEqual(messages, files.map((f) => f.bytes))
      assert.strictEqual(framer.bufferedBytes, 0)
      // One chunk holding everything: every message is a view of it, no copy.
      for (const message of messages) assert.strictEqual(message.buffer, bytes.buffer)
    })

    it(`splits stream_${name}.raw fed one byte at a time`, () => {
      const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)
      const { messages, failure } = frame(bytes, cuts)
      assert.isUndefined(failure)
      assert.deepStrictEqual(messages, files.map((f) => f.bytes))
    })
  }

  it("any chunking of either stream yields the same messages", () => {
    fc.assert(
      fc.property(fc.constantFrom(streams.c2s, streams.s2c), fc.uniqueArray(fc.nat(6500), { maxLength: 40 }), ({ bytes, files }, offsets) => {
        const cuts = offsets.filter((o) => o > 0 && o < bytes.length).sort((a, b) => a - b)
        const { messages, failure, framer } = frame(bytes, cuts)
        assert.isUndefined(failure)
        assert.deepStrictEqual(messages, files.map((f) => f.bytes))
        assert.strictEqual(framer.bufferedBytes, 0)
      }),
      { numRuns: 300 }
    )
  })
})

describe("framing: hostile input", () => {
  const reply = streams.s2c.files[1].bytes

  it("a corrupted header ends the stream before its size is trusted", () => {
    const corrupt = reply.slice()
    writeU32(corrupt, FrameLayout.size.offset, messageSizeMax) // a lie the checksum exposes
    const { messages, failure, framer } = frame(new Uint8Array([...streams.s2c.files[0].bytes, ...corrupt]), [])
    assert.strictEqual(messages.length, 1)
    assert.deepStrictEqual(failure, { _tag: "BadHeaderChecksum" })
    assert.strictEqual(framer.bufferedBytes, 0)
    // Sticky: later bytes are not looked at, even valid ones.
    const later = collector()
    assert.deepStrictEqual(framer.feed(streams.s2c.files[2].bytes, later.sink), { _tag: "BadHeaderChecksum" })
    assert.strictEqual(later.messages.length, 0)
  })

  it("a corrupted body, another cluster or an unknown command close; an invalid header is dropped", () => {
    const badBody = reply.slice()
    badBody[headerSize] ^= 0x80
    assert.deepStrictEqual(frame(badBody, [300]).failure, { _tag: "BadBodyChecksum" })
    assert.deepStrictEqual(frame(reply, [], new MessageFramer(u128ToBytes(1n))).failure, { _tag: "WrongCluster" })
    const unknown = reply.slice()
    unknown[FrameLayout.command.offset] = 77
    setChecksum(unknown)
    assert.deepStrictEqual(frame(unknown, [10]).failure, { _tag: "UnknownCommand", command: 77 })
    const invalid = reply.slice()
    invalid.fill(0, ReplyLayout.timestamp.offset, ReplyLayout.timestamp.offset + 8)
    sealMessage(invalid) // context is not re-derived: the client never checks it
    const { messages, dropped, failure } = frame(new Uint8Array([...invalid, ...streams.s2c.files[2].bytes]), [])
    assert.isUndefined(failure)
    assert.deepStrictEqual(dropped.map((r) => r._tag), ["InvalidHeader"])
    assert.deepStrictEqual(messages, [streams.s2c.files[2].bytes])
  })

  it("a size beyond 1 MiB is refused as soon as the header is in, without buffering", () => {
    const header = reply.slice(0, headerSize)
    writeU32(header, FrameLayout.size.offset, messageSizeMax + 1)
    setChecksum(header)
    const { failure, framer } = frame(header, [100])
    assert.deepStrictEqual(failure, { _tag: "SizeOutOfRange", size: messageSizeMax + 1 })
    assert.strictEqual(framer.bufferedBytes, 0)
  })

  it("a maximal message arriving in pieces buffers exactly its size, once", () => {
    const message = new Uint8Array(messageSizeMax)
    message.set(reply.subarray(0, headerSize))
    writeU32(message, FrameLayout.size.offset, messageSizeMax)
    sealMessage(message)
    const out = collector()
    const framer = new MessageFramer(cluster)
    for (let offset = 0; offset < message.length; offset += 65536) {
      assert.isUndefined(framer.feed(message.subarray(offset, offset + 65536), out.sink))
      assert.isAtMost(framer.bufferedBytes, messageSizeMax)
    }
    assert.strictEqual(out.messages.length, 1)
    assert.strictEqual(out.messages[0].length, messageSizeMax)
    assert.strictEqual(framer.bufferedBytes, 0)
  })

  it("arbitrary bytes, in arbitrary chunks, never throw and never buffer more than one message", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 8 }), (chunks) => {
        const framer = new MessageFramer(cluster)
        const out = collector()
        for (const chunk of chunks) {
          const failure = framer.feed(chunk, out.sink)
          assert.isAtMost(framer.bufferedBytes, headerSize)
          if (failure !== undefined) assert.isString(failure._tag)
        }
      }),
      { numRuns: 500 }
    )
  })

  it("valid messages interleaved with garbage stop at the garbage", () => {
    fc.assert(
      fc.property(fc.nat(12), fc.uint8Array({ minLength: 256, maxLength: 400 }), (count, garbage) => {
        const files = streams.c2s.files.slice(0, count).map((f) => f.bytes)
        const stream = new Uint8Array([...files.flatMap((f) => [...f]), ...garbage])
        const { messages, failure } = frame(stream, [])
        assert.deepStrictEqual(messages, files)
        assert.isDefined(failure)
      }),
      { numRuns: 100 }
    )
  })
})
