/**
 * The header layouts are pinned by the golden bytes of ../shared/vectors: every captured and
 * crafted message decodes to the field values index.json lists, with every other byte zero, and
 * re-encodes to the identical 256 bytes. Offsets, enum values and releases are pinned against
 * the numbers of wire-protocol.md; encode/decode round-trips for every command.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import {
  type AnyHeader, Command, commandLayouts, commandName, decodeHeader, encodeHeader, EvictionLayout, EvictionReason,
  FrameLayout, type Field, headerSize, isCommand, PingClientLayout, PongClientLayout, readU64Number, release,
  releaseClientMin, releaseFormat, releaseScarab, ReplyLayout, RequestLayout, zeroHeader, zeroRangesOf
} from "../../src/protocol/header.ts"
import { loadWireVectors } from "./wire_vectors.ts"

const vectors = loadWireVectors()
const commands = Object.values(Command)

describe("header: captured vectors", () => {
  it("decodes every field of every vector to the value index.json lists; every other byte is zero", () => {
    assert.isAtLeast(vectors.length, 37)
    for (const vector of vectors) {
      const decoded = decodeHeader(vector.bytes) as unknown as Record<string, bigint | number>
      const names = new Set(Object.keys(decoded))
      for (const [name, listed] of Object.entries(vector.header)) {
        if (name === "command_name" || name === "operation_name") continue
        if (names.has(name)) {
          assert.strictEqual(BigInt(decoded[name]), BigInt(listed), `${vector.file}: ${name}`)
          names.delete(name)
        } else {
          // A padding or reserved field: index.json prints it as a number or as hex bytes.
          assert.match(listed, /^(0x)?0+$/, `${vector.file}: ${name} is not a named field, so it must be zero`)
        }
      }
      assert.deepStrictEqual([...names], [], `${vector.file}: fields index.json does not list`)
    }
  })

  it("re-encodes every vector's header to the captured 256 bytes", () => {
    for (const vector of vectors) {
      const encoded = encodeHeader(decodeHeader(vector.bytes))
      assert.deepStrictEqual(encoded, vector.bytes.subarray(0, headerSize), vector.file)
    }
  })

  it("reads u64 counters without bigint on the hot path", () => {
    const reply = vectors.find((vector) => vector.file.endsWith("26_s2c_reply_lookup_accounts.bin"))!
    assert.strictEqual(readU64Number(reply.bytes, ReplyLayout.op.offset), 12)
    const huge = new Uint8Array(8).fill(0xff)
    assert.throws(() => readU64Number(huge, 0))
  })
})

describe("header: layouts and wire values", () => {
  it("pins the offsets of the frame and of the client-facing commands (wire-protocol.md §3, §5)", () => {
    const offsets = (layout: Readonly<Record<string, Field>>) =>
      Object.fromEntries(Object.entries(layout).map(([name, field]) => [name, [field.offset, field.size]]))
    assert.deepStrictEqual(offsets(FrameLayout), {
      checksum: [0, 16], checksum_body: [32, 16], cluster: [80, 16], size: [96, 4], view: [104, 4],
      release: [108, 4], protocol: [112, 2], command: [114, 1], replica: [115, 1]
    })
    assert.deepStrictEqual(offsets(RequestLayout), {
      parent: [128, 16], client: [160, 16], session: [176, 8], timestamp: [184, 8], request: [192, 4],
      operation: [196, 1], previous_request_latency: [200, 4]
    })
    assert.deepStrictEqual(offsets(ReplyLayout), {
      request_checksum: [128, 16], context: [160, 16], client: [192, 16], op: [208, 8], commit: [216, 8],
      timestamp: [224, 8], request: [232, 4], operation: [236, 1]
    })
    assert.deepStrictEqual(offsets(PingClientLayout), { client: [128, 16], ping_timestamp_monotonic: [144, 8], session: [152, 8] })
    assert.deepStrictEqual(offsets(PongClientLayout), { ping_timestamp_monotonic: [128, 8] })
    assert.deepStrictEqual(offsets(EvictionLayout), { client: [128, 16], reason: [255, 1] })
  })

  it("covers all 256 bytes of every command: named fields plus zero ranges, no overlap", () => {
    for (const command of commands) {
      const covered = new Uint8Array(headerSize)
      const layout: Readonly<Record<string, Field>> = { ...FrameLayout, ...commandLayouts[command] }
      for (const { offset, size } of Object.values(layout)) for (let i = offset; i < offset + size; i++) covered[i]++
      for (const [start, end] of zeroRangesOf(command)) for (let i = start; i < end; i++) covered[i]++
      assert.isTrue(covered.every((count) => count === 1), commandName(command))
    }
  })

  it("pins the zero ranges of request and reply (paddings and reserved, §5.1, §5.2)", () => {
    assert.deepStrictEqual(zeroRangesOf(Command.request), [[16, 32], [48, 80], [100, 104], [116, 128], [144, 160], [197, 200], [204, 256]])
    assert.deepStrictEqual(zeroRangesOf(Command.reply), [[16, 32], [48, 80], [100, 104], [116, 128], [144, 160], [176, 192], [237, 256]])
  })

  it("has TigerBeetle's command codes, eviction reasons and releases", () => {
    assert.strictEqual(commands.length, 25)
    commands.forEach((code, index) => assert.strictEqual(code, index))
    assert.deepStrictEqual([Command.ping_client, Command.pong_client, Command.request, Command.reply, Command.eviction, Command.view], [3, 4, 5, 8, 18, 24])
    assert.isFalse(isCommand(25))
    assert.isFalse(isCommand(255))
    assert.deepStrictEqual(Object.values(EvictionReason), [0, 1, 2, 3, 4, 5, 6, 7, 8])
    assert.strictEqual(releaseScarab, 4361)
    assert.strictEqual(releaseClientMin, 4100)
    assert.strictEqual(release(65535, 0, 0), 0xffff0000)
    assert.strictEqual(releaseFormat(4361), "0.17.9")
    assert.strictEqual(releaseFormat(0xffff0000), "65535.0.0")
  })
})

/** An arbitrary header of `command` with every named field random. */
const headerArbitrary = (command: Command): fc.Arbitrary<AnyHeader> => {
  const layout: Readonly<Record<string, Field>> = { ...FrameLayout, ...commandLayouts[command] }
  const fields: Record<string, fc.Arbitrary<unknown>> = {}
  for (const [name, { kind, size }] of Object.entries(layout)) {
    fields[name] =
      kind === "u8" ? fc.nat(0xff)
        : kind === "u16" ? fc.nat(0xffff)
          : kind === "u32" ? fc.nat(0xffff_ffff)
            : kind === "u64" ? fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })
              : kind === "u128" ? fc.bigInt({ min: 0n, max: (1n << 128n) - 1n })
                : fc.uint8Array({ minLength: size, maxLength: size })
  }
  fields.command = fc.constant(command)
  return fc.record(fields) as unknown as fc.Arbitrary<AnyHeader>
}

describe("header: properties", () => {
  it("decode(encode(h)) = h for every command and any field values", () => {
    fc.assert(
      fc.property(fc.constantFrom(...commands).chain(headerArbitrary), (header) => {
        const bytes = encodeHeader(header)
        assert.deepStrictEqual(decodeHeader(bytes), header)
        for (const [start, end] of zeroRangesOf(header.command)) assert.isTrue(bytes.subarray(start, end).every((b) => b === 0))
      }),
      { numRuns: 500 }
    )
  })

  it("encode(decode(b)) = b for any 256 bytes whose zero ranges are zero", () => {
    fc.assert(
      fc.property(fc.constantFrom(...commands), fc.uint8Array({ minLength: headerSize, maxLength: headerSize }), (command, random) => {
        const bytes = random.slice()
        bytes[FrameLayout.command.offset] = command
        for (const [start, end] of zeroRangesOf(command)) bytes.fill(0, start, end)
        assert.deepStrictEqual(encodeHeader(decodeHeader(bytes)), bytes)
      }),
      { numRuns: 300 }
    )
  })

  it("refuses to encode a value that does not fit its field", () => {
    const header = zeroHeader(Command.request)
    assert.throws(() => encodeHeader({ ...header, request: 2 ** 32 }))
    assert.throws(() => encodeHeader({ ...header, session: 1n << 64n }))
    assert.throws(() => encodeHeader({ ...header, client: -1n }))
    assert.throws(() => decodeHeader(new Uint8Array(255)))
  })
})
