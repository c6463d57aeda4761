/**
 * The TCP MessageBus against raw `node:net` clients on 127.0.0.1: valid messages arrive once,
 * whole and in order however the stream is cut; `sendToClient` reaches a client on the connection
 * it last spoke on, and nothing when it has none; hostile input (garbage, truncation, bad
 * checksums, wrong cluster, sizes out of range, unknown commands) closes only the offending
 * connection, with one log line naming the reason and the address, never produces a `Message`,
 * and never disturbs a well-behaved client; the bounds (connections, events, send queue) hold
 * without losing or tearing messages; silent connections make room for new ones at the limit and
 * time out, clients that speak do not; a port in use is a typed error. The cluster side (replicas
 * dialing, identifying and reaching each other) is in test/layers/network_tcp_cluster.test.ts.
 */
import * as net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Queue } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import { MessageBus, type MessageBusShape } from "../../src/actors/message_bus.ts"
import { layerMessageBusTcp, makeTcpBus, MessageBusListenError, type TcpBusShape } from "../../src/layers/network_tcp.ts"
import { sealMessage, setChecksum, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import { FrameLayout, headerSize, messageSizeMax, PingClientLayout, RequestLayout, writeU32 } from "../../src/protocol/header.ts"
import { loadWireVectors, readVectorFile, sessionCluster } from "../protocol/wire_vectors.ts"
import { awaitClosed, type Client, connect, livenessMs, nextEvent, startBus, waitUntil } from "../layers/tcp_kit.ts"

const vectors = loadWireVectors()
const c2s = vectors.filter((v) => /^session\/\d+_c2s_/.test(v.file)).map((v) => v.bytes)
const register = readVectorFile("session/01_c2s_request_register.bin")
const createAccounts = readVectorFile("session/03_c2s_request_create_accounts.bin")
const replyRegister = readVectorFile("session/02_s2c_reply_register.bin")
const ping = readVectorFile("session/23_c2s_ping_client.bin")
const streamC2s = readVectorFile("session/stream_c2s.raw")
/** The session's client: every request and ping of the vectors names it. */
const sessionClient = u128FromBytes(register, RequestLayout.client.offset)

// --- helpers ------------------------------------------------------------------------------------

/** A client speaks (a register request, or `message`), and we read its event: the bus now reaches it on this connection. */
const identify = Effect.fnUntraced(function* (bus: MessageBusShape, client: Client, message: Uint8Array = register) {
  yield* client.write(message)
  const event = yield* nextEvent(bus)
  assert.strictEqual(event._tag, "Message")
  assert.deepStrictEqual(event.message, message)
})

/** A copy of a request or ping_client naming `client` instead, sealed again. */
const withClient = (message: Uint8Array, client: bigint): Uint8Array => mutated(message, (m) => {
  const offset = m[FrameLayout.command.offset] === 5 ? RequestLayout.client.offset : PingClientLayout.client.offset
  m.set(u128ToBytes(client), offset)
  sealMessage(m)
})

/** A copy of `message` with `mutate` applied to the copy (no resealing). */
const mutated = (message: Uint8Array, mutate: (copy: Uint8Array) => void): Uint8Array => {
  const copy = message.slice()
  mutate(copy)
  return copy
}

/** A request with a body of `bodySize` bytes, every body byte `fill`, sealed. */
const requestWithBody = (bodySize: number, fill: number): Uint8Array => {
  const message = new Uint8Array(headerSize + bodySize)
  message.set(createAccounts.subarray(0, headerSize))
  message.fill(fill, headerSize)
  writeU32(message, FrameLayout.size.offset, message.length)
  sealMessage(message)
  return message
}

// --- normal operation ---------------------------------------------------------------------------

describe("MessageBus over TCP: normal operation", () => {
  it.live("a valid message arrives as one Message event, byte for byte", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus()
      assert.isAbove(bus.port, 0)
      const client = yield* connect(bus.port)
      yield* client.write(createAccounts)
      const event = yield* nextEvent(bus)
      assert.strictEqual(event._tag, "Message")
      if (event._tag !== "Message") return
      assert.strictEqual(Object.getPrototypeOf(event.message), Uint8Array.prototype)
      assert.deepStrictEqual(event.message, createAccounts)
      assert.strictEqual(yield* Queue.size(bus.events), 0)
    }))

  it.live("a message cut into random chunks arrives once, whole", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus()
      const cutsList = fc.sample(fc.uniqueArray(fc.integer({ min: 1, max: createAccounts.length - 1 }), { maxLength: 6 }), {
        numRuns: 8,
        seed: 4
      })
      for (const cuts of cutsList) {
        const client = yield* connect(bus.port)
        let start = 0
        for (const end of [...cuts.sort((a, b) => a - b), createAccounts.length]) {
          yield* client.write(createAccounts.subarray(start, end))
          yield* Effect.sleep("2 millis") // separate reads on the server, most of the time
          start = end
        }
        const event = yield* nextEvent(bus)
        assert.deepStrictEqual(event.message, createAccounts)
        client.socket.destroy()
      }
      assert.strictEqual(yield* Queue.size(bus.events), 0)
    }))

  it.live("several messages in one chunk arrive in order", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus()
      const client = yield* connect(bus.port)
      yield* client.write(streamC2s)
      const messages: Array<Uint8Array> = []
      while (messages.length < c2s.length) messages.push((yield* nextEvent(bus)).message)
      assert.deepStrictEqual(messages, c2s)
    }))

  it.live("sendToClient delivers exactly the bytes; the caller may reuse its buffer at once", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus({ sendQueueMax: 16 })
      const client = yield* connect(bus.port)
      yield* identify(bus, client)
      // 12 MiB to a client that is not reading is more than the kernel's socket buffers take, so
      // later messages wait in Node's buffer and in the send queue: without copies, they would be
      // written later from the caller's (since overwritten) buffers.
      const messages = [...Array.from({ length: 12 }, (_, i) => requestWithBody(messageSizeMax - headerSize, i)), replyRegister]
      client.socket.pause()
      const buffer = new Uint8Array(messageSizeMax)
      for (const message of messages) {
        buffer.set(message)
        yield* bus.sendToClient(sessionClient, buffer.subarray(0, message.length))
        buffer.fill(0xee)
      }
      yield* Effect.sleep("20 millis")
      client.socket.resume()
      const expected = Buffer.concat(messages)
      yield* waitUntil(() => client.received().length >= expected.length, "every message")
      assert.isTrue(Buffer.from(client.received()).equals(expected))
      // A send to a client that never spoke is dropped without a fuss.
      yield* bus.sendToClient(sessionClient + 1n, replyRegister)
    }))

  it.live("a client is reached on the connection it last spoke on; with none open, its messages are dropped", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus()
      const other = sessionClient + 1n
      const first = yield* connect(bus.port)
      const second = yield* connect(bus.port)
      const bystander = yield* connect(bus.port)
      yield* identify(bus, first)
      yield* identify(bus, bystander, withClient(register, other))
      // The client speaks again on a second connection (a ping): replies follow it there.
      yield* identify(bus, second, ping)
      yield* bus.sendToClient(sessionClient, replyRegister)
      yield* waitUntil(() => second.received().length === replyRegister.length, "the reply on the second connection")
      assert.deepStrictEqual(second.received(), replyRegister)
      // The second connection closes: the client has no connection the bus knows to be its own.
      second.socket.destroy()
      yield* waitUntil(() => bus.openConnections() === 2, "the bus to see the disconnect")
      const dropped = requestWithBody(headerSize, 0x11)
      yield* bus.sendToClient(sessionClient, dropped)
      // It speaks on the first again: reached there, and what was sent meanwhile never arrives
      // (it would come first: one socket keeps order).
      yield* identify(bus, first, createAccounts)
      yield* bus.sendToClient(sessionClient, replyRegister)
      yield* waitUntil(() => first.received().length >= replyRegister.length, "the reply on the first connection")
      assert.deepStrictEqual(first.received(), replyRegister)
      // Another client's messages go to its own connection only.
      yield* bus.sendToClient(other, replyRegister)
      yield* waitUntil(() => bystander.received().length === replyRegister.length, "the other client's reply")
      assert.strictEqual(first.received().length, replyRegister.length)
    }))

  it.live("closing the bus closes the listener and every connection", () =>
    Effect.gen(function* () {
      const clients = yield* Effect.scoped(Effect.gen(function* () {
        const { bus } = yield* startBus()
        const one = yield* connect(bus.port)
        const two = yield* connect(bus.port)
        yield* identify(bus, one)
        return { one, two, port: bus.port }
      }))
      yield* awaitClosed(clients.one)
      yield* awaitClosed(clients.two)
      const refused = yield* Effect.callback<string>((resume) => {
        const socket = net.connect({ host: "127.0.0.1", port: clients.port })
        socket.on("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code ?? "?")))
        socket.on("connect", () => { socket.destroy(); resume(Effect.succeed("connected")) })
      })
      assert.strictEqual(refused, "ECONNREFUSED")
    }))
})

// --- hostile input ------------------------------------------------------------------------------

interface Hostile {
  readonly name: string
  readonly bytes: Uint8Array
  /** The words the bus's log line must contain. */
  readonly reason: string
}

const wrongCluster = mutated(register, (m) => {
  m.set(u128ToBytes(sessionCluster + 1n), FrameLayout.cluster.offset)
  sealMessage(m)
})
const withSize = (size: number) => mutated(register, (m) => {
  writeU32(m, FrameLayout.size.offset, size)
  setChecksum(m)
})

const hostiles: ReadonlyArray<Hostile> = [
  { name: "a bad header checksum", bytes: mutated(register, (m) => { m[FrameLayout.view.offset] ^= 1 }), reason: "bad header checksum" },
  { name: "a bad body checksum (valid header, corrupt body)", bytes: mutated(createAccounts, (m) => { m[headerSize + 17] ^= 0x40 }), reason: "bad body checksum" },
  { name: "a wrong cluster", bytes: wrongCluster, reason: "wrong cluster" },
  { name: "a size above 1 MiB", bytes: withSize(messageSizeMax + 1), reason: `size ${messageSizeMax + 1}` },
  { name: "a size below 256", bytes: withSize(100), reason: "size 100" },
  { name: "an unknown command", bytes: mutated(register, (m) => { m[FrameLayout.command.offset] = 99; setChecksum(m) }), reason: "unknown command 99" },
  { name: "a valid message followed by garbage", bytes: new Uint8Array([...register, ...new Uint8Array(300).fill(7)]), reason: "bad header checksum" }
]

/** The well-behaved client beside the hostile ones: another client than the session's, which a hostile peer may send. */
const goodClient = sessionClient + 7n
const goodRegister = withClient(register, goodClient)
const goodCreate = withClient(createAccounts, goodClient)

/**
 * Runs `attack` on a fresh connection (which must end with the connection closed) while a
 * well-behaved client, connected before and after, keeps getting its messages through and its
 * replies back. Returns the messages the attacker's connection delivered, if any.
 */
const besiege = Effect.fnUntraced(function* (bus: MessageBusShape, attack: (hostile: Client) => Effect.Effect<void>) {
  const good = yield* connect(bus.port)
  yield* identify(bus, good, goodRegister)
  const hostile = yield* connect(bus.port)
  yield* attack(hostile)
  // The attacker's messages were all handed on before its connection closed; the good client's come after.
  yield* good.write(goodCreate)
  const hostileMessages: Array<Uint8Array> = []
  for (let event = yield* nextEvent(bus); !equalBytes(event.message, goodCreate); event = yield* nextEvent(bus)) {
    hostileMessages.push(event.message)
  }
  yield* bus.sendToClient(goodClient, replyRegister)
  yield* waitUntil(() => good.received().length === replyRegister.length, "the good client's reply")
  assert.isFalse(good.socket.destroyed)
  good.socket.destroy()
  return { hostile, hostileMessages }
})

const equalBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(b)

describe("MessageBus over TCP: hostile input", () => {
  for (const { name, bytes, reason } of hostiles) {
    it.live(`${name} closes that connection with one log line; other clients carry on`, () =>
      Effect.gen(function* () {
        const { bus, lines } = yield* startBus()
        const { hostile, hostileMessages } = yield* besiege(bus, (hostile) => Effect.gen(function* () {
          yield* hostile.write(bytes)
          yield* awaitClosed(hostile) // closed by the bus, not by us
        }))
        if (name.startsWith("a valid message")) assert.deepStrictEqual(hostileMessages, [register])
        else assert.deepStrictEqual(hostileMessages, [])
        yield* waitUntil(() => lines.length > 0, "the log line")
        assert.strictEqual(lines.length, 1)
        assert.include(lines[0], reason)
        assert.include(lines[0], `127.0.0.1:${hostile.localPort}`)
      }))
  }

  it.live("a header that breaks a per-command rule is dropped silently; the connection stays", () =>
    Effect.gen(function* () {
      const { bus, lines } = yield* startBus()
      // protocol = 1: checksums fine, cluster fine, header rules broken (wire-protocol.md §2 step 6).
      const invalid = mutated(register, (m) => { m[FrameLayout.protocol.offset] = 1; setChecksum(m) })
      const client = yield* connect(bus.port)
      yield* client.write(new Uint8Array([...invalid, ...createAccounts]))
      const event = yield* nextEvent(bus)
      assert.deepStrictEqual(event.message, createAccounts)
      assert.isFalse(client.socket.destroyed)
      assert.deepStrictEqual(lines, [])
    }))

  it.live("random garbage never yields a Message and never stops a good client", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus()
      const garbage = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { numRuns: 25, seed: 7 })
      for (const bytes of garbage) {
        const { hostileMessages } = yield* besiege(bus, (hostile) => Effect.gen(function* () {
          yield* hostile.write(bytes)
          // Fewer than 256 bytes wait for more; end the stream so that every case finishes.
          hostile.socket.end()
          yield* awaitClosed(hostile)
        }))
        assert.deepStrictEqual(hostileMessages, [])
      }
    }))

  it.live("many hostile connections at once, each cut into random chunks, beside a good session", () =>
    Effect.gen(function* () {
      const { bus, lines } = yield* startBus()
      const garbage = fc.sample(fc.uint8Array({ minLength: headerSize, maxLength: 2000 }), { numRuns: 12, seed: 11 })
      const attacks = [...hostiles.filter((h) => !h.name.startsWith("a valid")).map((h) => h.bytes), ...garbage]
      const good = yield* connect(bus.port)
      const hostile = yield* Effect.forEach(attacks, () => connect(bus.port))
      const cuts = fc.sample(fc.uniqueArray(fc.nat(2000), { maxLength: 5 }), { numRuns: attacks.length + 1, seed: 12 })
      const writeCut = (client: Client, bytes: Uint8Array, at: ReadonlyArray<number>) => Effect.gen(function* () {
        let start = 0
        for (const end of [...at.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]) {
          yield* client.write(bytes.subarray(start, end))
          yield* Effect.yieldNow
          start = end
        }
      })
      yield* Effect.forEach([good, ...hostile], (client, i) => writeCut(client, i === 0 ? streamC2s : attacks[i - 1], cuts[i]),
        { concurrency: "unbounded", discard: true })
      yield* Effect.forEach(hostile, awaitClosed, { discard: true })
      // Only the good client's messages come out, all of them, in order.
      const goodMessages: Array<Uint8Array> = []
      while (goodMessages.length < c2s.length) goodMessages.push((yield* nextEvent(bus)).message)
      assert.deepStrictEqual(goodMessages, c2s)
      assert.strictEqual(Queue.sizeUnsafe(bus.events), 0)
      assert.isFalse(good.socket.destroyed)
      yield* waitUntil(() => lines.length === attacks.length, "one log line per hostile connection")
    }))

  it.live("truncated frames then a disconnect: no Message", () =>
    Effect.gen(function* () {
      const { bus, lines } = yield* startBus()
      const cuts = [1, 100, headerSize - 1, headerSize, headerSize + 1, createAccounts.length - 1]
      for (const cut of cuts) {
        const { hostileMessages } = yield* besiege(bus, (hostile) => Effect.gen(function* () {
          yield* hostile.write(createAccounts.subarray(0, cut))
          hostile.socket.end()
          yield* awaitClosed(hostile)
        }))
        assert.deepStrictEqual(hostileMessages, [])
      }
      assert.deepStrictEqual(lines, []) // a peer going away is not a protocol violation
    }))
})

// --- bounds -------------------------------------------------------------------------------------

describe("MessageBus over TCP: bounds", () => {
  it.live("connectionsMax: the connection beyond the limit is refused and logged, the others work", () =>
    Effect.gen(function* () {
      // Time stands still for the bus, so "within a second" holds however slowly the test runs.
      const { bus, lines } = yield* startBus({ connectionsMax: 2 })
      const one = yield* connect(bus.port)
      const two = yield* connect(bus.port)
      yield* identify(bus, one)
      yield* identify(bus, two)
      const three = yield* connect(bus.port)
      yield* awaitClosed(three)
      yield* waitUntil(() => lines.length > 0, "the refusal's log line")
      assert.include(lines[0], "refused")
      assert.include(lines[0], `127.0.0.1:${three.localPort}`)
      // More refusals within a second share that one line.
      for (let i = 0; i < 3; i++) yield* awaitClosed(yield* connect(bus.port))
      yield* Effect.sleep("20 millis")
      assert.strictEqual(lines.length, 1)
      // A slot freed by a disconnect is available again.
      one.socket.destroy()
      yield* waitUntil(() => bus.openConnections() === 1, "the bus to see the disconnect")
      const four = yield* connect(bus.port)
      yield* identify(bus, four)
      assert.isFalse(four.socket.destroyed)
    }))

  it.live("a full events queue stops reading (TCP backpressure) and loses nothing", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus({ eventsMax: 2 })
      const messages = Array.from({ length: 24 }, (_, i) => requestWithBody(messageSizeMax - headerSize - i, i))
      const client = yield* connect(bus.port)
      for (const message of messages) client.socket.write(message)
      // Nobody takes: the queue fills, the bus pauses the socket, the client's writes back up.
      yield* waitUntil(() => Queue.sizeUnsafe(bus.events) === 2, "a full queue")
      yield* Effect.sleep("200 millis")
      assert.strictEqual(Queue.sizeUnsafe(bus.events), 2)
      assert.isAbove(client.socket.writableLength, 0, "the client's bytes are held back by TCP")
      const received: Array<Uint8Array> = []
      while (received.length < messages.length) received.push((yield* nextEvent(bus)).message)
      assert.strictEqual(received.length, messages.length)
      for (let i = 0; i < messages.length; i++) assert.isTrue(Buffer.from(received[i]).equals(messages[i]), `message ${i}`)
      assert.strictEqual(client.socket.writableLength, 0)
    }))

  it.live("under backpressure a connection that closes loses none of the messages it sent", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus({ eventsMax: 2 })
      const client = yield* connect(bus.port)
      const stream = Buffer.concat(Array.from({ length: 10 }, () => register))
      yield* client.write(stream)
      client.socket.end()
      yield* awaitClosed(client)
      assert.strictEqual(Queue.sizeUnsafe(bus.events), 2)
      const messages: Array<Uint8Array> = []
      while (messages.length < 10) messages.push((yield* nextEvent(bus)).message)
      assert.deepStrictEqual(messages, Array.from({ length: 10 }, () => register))
      assert.strictEqual(Queue.sizeUnsafe(bus.events), 0)
    }))

  it.live("a client that does not read: the send queue bound drops whole messages, never tears one", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus({ sendQueueMax: 2 })
      const client = yield* connect(bus.port)
      yield* identify(bus, client)
      client.socket.pause()
      const message = requestWithBody(messageSizeMax - headerSize, 0x5a)
      for (let i = 0; i < 40; i++) yield* bus.sendToClient(sessionClient, message)
      client.socket.resume()
      // A small marker after the flood, sent again until one arrives (the queue may be full at
      // first): once it is in, everything the bus kept of the flood is in before it.
      const marker = replyRegister
      const endsWithMarker = () => {
        const bytes = client.received()
        return bytes.length >= marker.length && equalBytes(bytes.subarray(bytes.length - marker.length), marker)
      }
      for (let i = 0; i < livenessMs / 10 && !endsWithMarker(); i++) {
        yield* bus.sendToClient(sessionClient, marker)
        yield* Effect.sleep(10)
      }
      assert.isTrue(endsWithMarker(), "a marker arrived")
      const bytes = client.received()
      const count = Math.floor(bytes.length / message.length)
      assert.isAtLeast(count, 1)
      assert.isBelow(count, 40, "some messages were dropped")
      for (let i = 0; i < count; i++) assert.isTrue(equalBytes(bytes.subarray(i * message.length, (i + 1) * message.length), message))
      // What follows the flood is whole markers, nothing torn.
      const rest = bytes.subarray(count * message.length)
      assert.strictEqual(rest.length % marker.length, 0)
      for (let at = 0; at < rest.length; at += marker.length) assert.isTrue(equalBytes(rest.subarray(at, at + marker.length), marker))
    }))

  it.live("a port in use fails the layer with a typed error naming the address", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus()
      const exit = yield* Effect.exit(Effect.scoped(makeTcpBus({ host: "127.0.0.1", port: bus.port, cluster: sessionCluster })))
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      assert.instanceOf(error, MessageBusListenError)
      if (!(error instanceof MessageBusListenError)) return
      assert.strictEqual(error._tag, "MessageBusListenError")
      assert.strictEqual(error.code, "EADDRINUSE")
      assert.strictEqual(error.port, bus.port)
      assert.include(error.message, `127.0.0.1:${bus.port}`)
      assert.include(error.message, "address already in use")
      // An invalid port is refused the same way, not thrown.
      const badPort = yield* Effect.flip(Effect.scoped(makeTcpBus({ host: "127.0.0.1", port: 70000, cluster: sessionCluster })))
      assert.strictEqual(badPort._tag, "MessageBusListenError")
      assert.strictEqual(badPort.code, "ERR_SOCKET_BAD_PORT")
      assert.include(badPort.message, "127.0.0.1:70000")
      // The layer form fails the same way.
      const layerExit = yield* Effect.exit(Effect.scoped(Effect.asVoid(Effect.provide(Effect.gen(function* () { return yield* MessageBus }),
        layerMessageBusTcp({ host: "127.0.0.1", port: bus.port, cluster: sessionCluster })))))
      assert.isTrue(Exit.isFailure(layerExit))
    }))
})


// --- silent connections -------------------------------------------------------------------------

/** Under TestClock: yields to the other fibers (the log writer) until `condition` holds; no clock involved. */
const yieldUntil = Effect.fnUntraced(function* (condition: () => boolean, what: string) {
  for (let i = 0; i < 10_000; i++) {
    if (condition()) return
    yield* Effect.yieldNow
  }
  assert.fail(`${what} never happened`)
})

/**
 * Under TestClock: `speaker` (if any) sends a ping, which the test takes from `events`; then
 * virtual time moves by `stepMs`. Repeats until the bus has closed a connection or `untilMs` have
 * passed; the sweep runs inside `adjust` and frees the slot at once, so the count of open
 * connections has dropped when `adjust` returns. Returns the virtual time it took.
 */
const stepUntilClosed = Effect.fnUntraced(function* (bus: TcpBusShape, stepMs: number, untilMs: number, speaker?: Client) {
  const open = bus.openConnections()
  for (let elapsedMs = 0; elapsedMs < untilMs;) {
    if (speaker !== undefined) {
      yield* speaker.write(ping)
      const event = yield* Queue.take(bus.events)
      assert.deepStrictEqual(event, { _tag: "Message", message: ping })
    }
    yield* TestClock.adjust(stepMs)
    elapsedMs += stepMs
    assert.strictEqual(Queue.sizeUnsafe(bus.events), 0)
    if (bus.openConnections() === open) continue
    assert.strictEqual(bus.openConnections(), open - 1)
    return { elapsedMs }
  }
  return undefined
})

describe("MessageBus over TCP: silent connections", () => {
  it.live("at the limit a newcomer evicts the oldest silent connection; one that has spoken is never evicted", () =>
    Effect.gen(function* () {
      const { bus, lines } = yield* startBus({ connectionsMax: 3 })
      const talker = yield* connect(bus.port)
      yield* identify(bus, talker)
      // The kernel's accept queue is first in, first out: the bus accepts these in this order.
      const oldest = yield* connect(bus.port)
      const younger = yield* connect(bus.port)
      const newcomer = yield* connect(bus.port)
      yield* awaitClosed(oldest)
      assert.strictEqual(Queue.sizeUnsafe(bus.events), 0)
      yield* identify(bus, newcomer)
      yield* identify(bus, younger) // still open: it speaks and is heard
      // All three have spoken: one more is refused, and none of them is closed for it.
      yield* awaitClosed(yield* connect(bus.port))
      for (const client of [talker, younger, newcomer]) {
        yield* client.write(createAccounts)
        assert.deepStrictEqual(yield* nextEvent(bus), { _tag: "Message", message: createAccounts })
        assert.isFalse(client.socket.destroyed)
      }
      yield* waitUntil(() => lines.length === 2, "the eviction's and the refusal's log lines")
      assert.include(lines[0], "to make room")
      assert.include(lines[0], `127.0.0.1:${oldest.localPort}`)
      assert.include(lines[1], "refused")
    }))

  it.live("200 silent connections against a limit of 8: the newest 8 stay, a client that speaks is heard", () =>
    Effect.gen(function* () {
      const connectionsMax = 8
      // Time stands still for the bus: its evictions all fall within one second, however slowly they come.
      const { bus, lines } = yield* startBus({ connectionsMax })
      const silent = yield* Effect.forEach(Array.from({ length: 200 }), () => connect(bus.port))
      yield* Effect.forEach(silent.slice(0, 200 - connectionsMax), awaitClosed, { discard: true })
      const client = yield* connect(bus.port)
      yield* awaitClosed(silent[200 - connectionsMax])
      yield* identify(bus, client)
      assert.strictEqual(bus.openConnections(), connectionsMax)
      assert.isTrue(silent.slice(200 - connectionsMax + 1).every((socket) => !socket.socket.destroyed))
      // One line a second, not one per eviction: with no time passing, one line for them all.
      yield* waitUntil(() => lines.length > 0, "the eviction's log line")
      assert.strictEqual(lines.length, 1)
      assert.match(lines[0], /to make room/)
    }))

  it.effect("a connection silent since it was accepted is closed after handshakeTimeoutMs, not before; a speaking one stays", () =>
    Effect.gen(function* () {
      const handshakeTimeoutMs = 1000
      const idleTimeoutMs = 2000
      const sweepMs = handshakeTimeoutMs / 4
      const { bus, lines } = yield* startBus({ handshakeTimeoutMs, idleTimeoutMs }, "test clock")
      // Accepted in this order (first in, first out), so both are accepted once the talker's message is in.
      const silent = yield* connect(bus.port)
      const talker = yield* connect(bus.port)
      yield* identifyUnder(bus, talker)
      const closing = yield* stepUntilClosed(bus, sweepMs / 2, 10 * handshakeTimeoutMs, talker)
      assert.isDefined(closing)
      assert.isAtLeast(closing!.elapsedMs, handshakeTimeoutMs)
      assert.isAtMost(closing!.elapsedMs, handshakeTimeoutMs + 2 * sweepMs)
      yield* Deferred.await(silent.closed)
      // The talker keeps speaking for many idle deadlines and stays open.
      assert.isUndefined(yield* stepUntilClosed(bus, sweepMs / 2, 5 * idleTimeoutMs, talker))
      assert.isFalse(talker.socket.destroyed)
      yield* yieldUntil(() => lines.length === 1, "the timeout's log line")
      assert.include(lines[0], "handshakeTimeoutMs")
      assert.include(lines[0], `127.0.0.1:${silent.localPort}`)
    }))

  it.effect("a connection that has spoken, then falls silent, is closed after idleTimeoutMs, not before", () =>
    Effect.gen(function* () {
      const handshakeTimeoutMs = 1000
      const idleTimeoutMs = 3000
      const sweepMs = handshakeTimeoutMs / 4
      const { bus, lines } = yield* startBus({ handshakeTimeoutMs, idleTimeoutMs }, "test clock")
      const talker = yield* connect(bus.port)
      yield* identifyUnder(bus, talker)
      // It spoke at time 0; from now on it says nothing.
      const closing = yield* stepUntilClosed(bus, sweepMs / 2, 10 * idleTimeoutMs)
      assert.isDefined(closing)
      assert.isAtLeast(closing!.elapsedMs, idleTimeoutMs)
      assert.isAtMost(closing!.elapsedMs, idleTimeoutMs + 2 * sweepMs)
      yield* Deferred.await(talker.closed)
      yield* yieldUntil(() => lines.length === 1, "the timeout's log line")
      assert.include(lines[0], "idleTimeoutMs")
      assert.include(lines[0], `127.0.0.1:${talker.localPort}`)
    }))
})

/** `identify` without its timeout, which under TestClock would be virtual time. */
const identifyUnder = Effect.fnUntraced(function* (bus: MessageBusShape, client: Client) {
  yield* client.write(register)
  const event = yield* Queue.take(bus.events)
  assert.deepStrictEqual(event.message, register)
})
