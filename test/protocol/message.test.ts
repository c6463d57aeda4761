/**
 * The receive pipeline (wire-protocol.md §2, §11, §12.1): every captured message passes it; any
 * corruption of any byte is caught by a checksum before anything else reads the message; the
 * checks run in the spec's order with the spec's consequence (close or drop); arbitrary input
 * never throws.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { buildMessage, sealMessage, sealReply, setChecksum, u128ToBytes } from "../../src/protocol/build.ts"
import {
  Command, decodeHeader, EvictionLayout, FrameLayout, headerSize, messageSizeMax, PingClientLayout, ReplyLayout,
  RequestLayout, VsrOperation, writeU32, zeroHeader
} from "../../src/protocol/header.ts"
import { decodeMessage, type Rejection, rejectionAction, validateMessage } from "../../src/protocol/message.ts"
import { loadWireVectors, sessionCluster } from "./wire_vectors.ts"

const vectors = loadWireVectors()
const clusterOf = (file: string): Uint8Array => u128ToBytes(file.startsWith("session/") ? sessionCluster : 0n)
const vector = (suffix: string) => vectors.find((v) => v.file.endsWith(suffix))!.bytes

/** A copy of `message` with `mutate` applied and both checksums (and a reply's context) redone. */
function resealed(message: Uint8Array, mutate: (bytes: Uint8Array) => void): Uint8Array {
  const bytes = message.slice()
  mutate(bytes)
  if (bytes[FrameLayout.command.offset] === Command.reply) sealReply(bytes)
  else sealMessage(bytes)
  return bytes
}

const tagOf = (rejection: Rejection | undefined) => rejection?._tag

describe("message: captured vectors", () => {
  it("every captured and crafted message passes the whole pipeline", () => {
    for (const { file, bytes } of vectors) {
      assert.isUndefined(validateMessage(bytes, clusterOf(file)), file)
      const decoded = decodeMessage(bytes, clusterOf(file))
      assert.strictEqual(decoded._tag, "Ok", file)
      if (decoded._tag === "Ok") assert.strictEqual(decoded.body.length, bytes.length - headerSize)
    }
  })

  it("another cluster id closes the connection", () => {
    const rejection = validateMessage(vector("03_c2s_request_create_accounts.bin"), u128ToBytes(0n))
    assert.strictEqual(tagOf(rejection), "WrongCluster")
    assert.strictEqual(rejectionAction(rejection!), "close")
  })

  it("a message must be exactly `size` bytes", () => {
    const bytes = vector("03_c2s_request_create_accounts.bin")
    const cluster = clusterOf("session/")
    assert.deepStrictEqual(validateMessage(bytes.subarray(0, 100), cluster), { _tag: "Truncated", length: 100 })
    assert.deepStrictEqual(validateMessage(bytes.subarray(0, 600), cluster), { _tag: "LengthMismatch", size: 640, length: 600 })
    const longer = new Uint8Array(700)
    longer.set(bytes)
    assert.deepStrictEqual(validateMessage(longer, cluster), { _tag: "LengthMismatch", size: 640, length: 700 })
  })
})

describe("message: checks in the spec's order", () => {
  const request = vector("03_c2s_request_create_accounts.bin")
  const cluster = clusterOf("session/")

  it("an unknown command with valid checksums is rejected, not thrown, and closes", () => {
    const bytes = resealed(request, (b) => { b[FrameLayout.command.offset] = 25 })
    assert.deepStrictEqual(validateMessage(bytes, cluster), { _tag: "UnknownCommand", command: 25 })
  })

  it("size out of 256..1 MiB is rejected right after the header checksum", () => {
    for (const size of [0, 255, messageSizeMax + 1, 0xffff_ffff]) {
      const bytes = request.slice()
      writeU32(bytes, FrameLayout.size.offset, size)
      // Only the header checksum is redone: the body checksum cannot cover a bogus size.
      setChecksum(bytes)
      assert.deepStrictEqual(validateMessage(bytes, cluster), { _tag: "SizeOutOfRange", size })
    }
  })

  it("the header checksum is checked before the command and the size", () => {
    const bytes = request.slice()
    bytes[FrameLayout.command.offset] = 99
    assert.strictEqual(tagOf(validateMessage(bytes, cluster)), "BadHeaderChecksum")
  })

  it("the body checksum is checked before the cluster", () => {
    const bytes = request.slice()
    bytes[headerSize + 5] ^= 1
    assert.strictEqual(tagOf(validateMessage(bytes, u128ToBytes(0n))), "BadBodyChecksum")
  })

  it("an invalid header is dropped, the connection kept", () => {
    const bytes = resealed(request, (b) => b.fill(0, RequestLayout.client.offset, RequestLayout.client.offset + 16))
    const rejection = validateMessage(bytes, cluster)
    assert.deepStrictEqual(rejection, { _tag: "InvalidHeader", command: Command.request, reason: "request: client == 0" })
    assert.strictEqual(rejectionAction(rejection!), "drop")
  })
})

describe("message: header rules (§11, §12.1, vsr.md §2.3)", () => {
  const invalid = (suffix: string, mutate: (bytes: Uint8Array) => void, cluster = clusterOf("session/")) => {
    const rejection = validateMessage(resealed(vector(suffix), mutate), cluster)
    assert.strictEqual(rejection?._tag, "InvalidHeader", suffix)
    return rejection?._tag === "InvalidHeader" ? rejection.reason : ""
  }
  const set = (offset: number, value: number) => (b: Uint8Array) => { b[offset] = value }

  it("common frame: paddings, nonce, epoch, reserved_frame zero; protocol 0", () => {
    for (const offset of [16, 31, 48, 64, 79, 100, 103, 116, 127]) invalid("01_c2s_request_register.bin", set(offset, 1))
    assert.strictEqual(invalid("01_c2s_request_register.bin", set(FrameLayout.protocol.offset, 1)), "protocol != 0")
  })

  it("request: register and later requests", () => {
    const register = "01_c2s_request_register.bin"
    assert.strictEqual(invalid(register, set(RequestLayout.session.offset, 1)), "register: session != 0")
    assert.strictEqual(invalid(register, set(RequestLayout.parent.offset, 1)), "register: parent != 0")
    assert.strictEqual(invalid(register, set(RequestLayout.request.offset, 1)), "register: request != 0")
    assert.strictEqual(invalid(register, set(FrameLayout.replica.offset, 1)), "register: replica != 0")
    assert.strictEqual(invalid(register, (b) => b.fill(0, FrameLayout.release.offset, FrameLayout.release.offset + 4)), "request: release == 0")
    const later = "03_c2s_request_create_accounts.bin"
    assert.strictEqual(invalid(later, set(RequestLayout.session.offset, 0)), "request: session == 0")
    assert.strictEqual(invalid(later, set(RequestLayout.request.offset, 0)), "request: request == 0")
    assert.strictEqual(invalid(later, set(RequestLayout.operation.offset, 7)), "request: operation reserved for the protocol")
    assert.strictEqual(invalid(later, set(RequestLayout.operation.offset, VsrOperation.root)), "request: operation root")
    invalid(later, set(RequestLayout.previous_request_latency.offset - 1, 1))
    invalid(later, set(255, 1))
    invalid(later, set(RequestLayout.parent.offset + 16, 1))
  })

  it("reply: what the client checks", () => {
    const reply = "04_s2c_reply_create_accounts.bin"
    assert.strictEqual(invalid(reply, (b) => b.fill(0, ReplyLayout.timestamp.offset, ReplyLayout.timestamp.offset + 8)), "reply: timestamp == 0")
    assert.strictEqual(invalid(reply, set(ReplyLayout.commit.offset, 9)), "reply: op != commit")
    assert.strictEqual(invalid(reply, set(ReplyLayout.request.offset, 0)), "reply: request == 0")
    assert.strictEqual(invalid(reply, (b) => b.fill(0, ReplyLayout.client.offset, ReplyLayout.client.offset + 16)), "reply: client == 0")
    assert.strictEqual(invalid("02_s2c_reply_register.bin", set(ReplyLayout.request.offset, 1)), "reply register: request != 0")
  })

  it("ping_client, pong_client, eviction", () => {
    assert.strictEqual(invalid("23_c2s_ping_client.bin", set(FrameLayout.view.offset, 1)), "ping_client: view != 0")
    assert.strictEqual(
      invalid("23_c2s_ping_client.bin", (b) => b.fill(0, PingClientLayout.client.offset, PingClientLayout.client.offset + 16)),
      "ping_client: client == 0"
    )
    assert.strictEqual(invalid("24_s2c_pong_client.bin", (b) => b.fill(0, FrameLayout.release.offset, FrameLayout.release.offset + 4)), "pong_client: release == 0")
    const eviction = "a2_s2c_eviction_client_release_too_low.bin"
    assert.strictEqual(invalid(eviction, set(EvictionLayout.reason.offset, 0), u128ToBytes(0n)), "eviction: reason not in 1..8")
    assert.strictEqual(invalid(eviction, set(EvictionLayout.reason.offset, 9), u128ToBytes(0n)), "eviction: reason not in 1..8")
  })

  it("replica-to-replica commands: a well-formed header of each passes, a broken one does not", () => {
    const cluster = 7n
    const check = (command: Command, fields: Record<string, bigint | number>, body = new Uint8Array(0)) => {
      const message = buildMessage({ ...zeroHeader(command), cluster, ...fields } as never, body)
      return validateMessage(message, u128ToBytes(cluster))
    }
    assert.isUndefined(check(Command.commit, { commit: 5n, checkpoint_op: 5n, timestamp_monotonic: 1n }))
    assert.strictEqual(tagOf(check(Command.commit, { commit: 4n, checkpoint_op: 5n, timestamp_monotonic: 1n })), "InvalidHeader")
    assert.isUndefined(check(Command.prepare, { release: 1, client: 3n, op: 2n, commit: 1n, timestamp: 9n, request: 1, operation: 146 }))
    assert.strictEqual(tagOf(check(Command.prepare, { release: 1, client: 3n, op: 2n, commit: 2n, timestamp: 9n, request: 1, operation: 146 })), "InvalidHeader")
    assert.isUndefined(check(Command.prepare, { operation: VsrOperation.root }))
    assert.isUndefined(check(Command.prepare, { operation: VsrOperation.reserved, op: 17n }))
    assert.isUndefined(check(Command.prepare_ok, { client: 3n, op: 2n, timestamp: 9n, request: 1, operation: 146 }))
    assert.isUndefined(check(Command.ping, { release: 1, checkpoint_op: 31n, ping_timestamp_monotonic: 1n, release_count: 1 }, new Uint8Array(256)))
    assert.strictEqual(tagOf(check(Command.ping, { release: 1, checkpoint_op: 30n, ping_timestamp_monotonic: 1n, release_count: 1 }, new Uint8Array(256))), "InvalidHeader")
    assert.isUndefined(check(Command.pong, { release: 1, ping_timestamp_monotonic: 1n, pong_timestamp_wall: 2n }))
    assert.isUndefined(check(Command.exit_view, { view: 3 }))
    assert.isUndefined(check(Command.join_view, { view: 3, op: 5n, commit_min: 4n, checkpoint_op: 0n }, new Uint8Array(512)))
    assert.strictEqual(tagOf(check(Command.join_view, { view: 3, op: 3n, commit_min: 4n }, new Uint8Array(512))), "InvalidHeader")
    assert.isUndefined(check(Command.view, { view: 3, op: 5n, commit_max: 5n }, new Uint8Array(1024 + 256)))
    assert.strictEqual(tagOf(check(Command.view, { view: 3, op: 5n, commit_max: 5n }, new Uint8Array(1000))), "InvalidHeader")
    assert.isUndefined(check(Command.get_view, { nonce: 1n }))
    assert.strictEqual(tagOf(check(Command.get_view, {})), "InvalidHeader")
    assert.isUndefined(check(Command.get_headers, { op_min: 1n, op_max: 1n }))
    assert.strictEqual(tagOf(check(Command.get_headers, { op_min: 2n, op_max: 1n })), "InvalidHeader")
    assert.isUndefined(check(Command.get_prepare, { prepare_checksum: 5n, prepare_op: 1n }))
    assert.strictEqual(tagOf(check(Command.get_prepare, { view: 1, prepare_checksum: 5n })), "InvalidHeader")
    assert.isUndefined(check(Command.get_reply, { reply_client: 1n, reply_op: 1n }))
    assert.isUndefined(check(Command.headers, { view: 1 }, new Uint8Array(256)))
    assert.strictEqual(tagOf(check(Command.headers, { view: 1 })), "InvalidHeader")
    assert.isUndefined(check(Command.get_blocks, {}, new Uint8Array(64)))
    assert.strictEqual(tagOf(check(Command.get_blocks, {}, new Uint8Array(48))), "InvalidHeader")
    assert.isUndefined(check(Command.block, { release: 1, address: 1n, block_type: 5 }, new Uint8Array(100)))
    assert.strictEqual(tagOf(check(Command.block, { release: 1, address: 1n, block_type: 6 }, new Uint8Array(100))), "InvalidHeader")
    for (const command of [Command.reserved, Command.deprecated_12, Command.deprecated_21, Command.deprecated_22, Command.deprecated_23]) {
      assert.strictEqual(tagOf(check(command, {})), "InvalidHeader")
    }
  })
})

describe("message: properties", () => {
  const arbitraryVector = fc.constantFrom(...vectors)

  it("corrupting any byte of any message is caught by the checksum that covers it", () => {
    fc.assert(
      fc.property(arbitraryVector, fc.nat(), fc.integer({ min: 1, max: 255 }), ({ file, bytes }, at, flip) => {
        const index = at % bytes.length
        const corrupt = bytes.slice()
        corrupt[index] ^= flip
        const expected = index < headerSize ? "BadHeaderChecksum" : "BadBodyChecksum"
        assert.strictEqual(tagOf(validateMessage(corrupt, clusterOf(file))), expected, `${file} byte ${index}`)
      }),
      { numRuns: 2000 }
    )
  })

  it("arbitrary bytes never throw: they yield a typed rejection", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes, cluster) => {
        const rejection = validateMessage(bytes, cluster)
        assert.isDefined(rejection)
      }),
      { numRuns: 1000 }
    )
  })

  it("arbitrary headers with valid checksums never throw: valid or a typed rejection", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: headerSize, maxLength: headerSize + 64 }), fc.nat(26), (random, command) => {
        const bytes = random.slice()
        bytes[FrameLayout.command.offset] = command
        writeU32(bytes, FrameLayout.size.offset, bytes.length)
        setChecksum(bytes)
        const rejection = validateMessage(bytes, bytes.slice(FrameLayout.cluster.offset, FrameLayout.cluster.offset + 16))
        if (command > 24) assert.strictEqual(tagOf(rejection), "UnknownCommand")
        else assert.notStrictEqual(tagOf(rejection), "BadHeaderChecksum")
        if (rejection === undefined) assert.strictEqual(decodeHeader(bytes).command, command)
      }),
      { numRuns: 1000 }
    )
  })
})
