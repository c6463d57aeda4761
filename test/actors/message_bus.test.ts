/**
 * The TCP MessageBus against raw `node:net` clients on 127.0.0.1: valid messages arrive once,
 * whole and in order however the stream is cut; `send` and `close` reach the client; hostile
 * input (garbage, truncation, bad checksums, wrong cluster, sizes out of range, unknown commands)
 * closes only the offending connection, with one log line naming the reason and the address,
 * never produces a `Message`, and never disturbs a well-behaved client; the bounds (connections,
 * events, send queue) hold without losing or tearing messages; silent connections make room for
 * new ones at the limit and time out, clients that speak do not; a port in use is a typed error.
 */
import * as net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Deferred, Effect, Exit, Logger, Queue, type Scope } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import { type BusEvent, MessageBus, type MessageBusShape } from "../../src/actors/message_bus.ts"
import { layerMessageBusTcp, makeTcpBus, MessageBusListenError, type TcpBusOptions } from "../../src/layers/network_tcp.ts"
import { sealMessage, setChecksum, u128ToBytes } from "../../src/protocol/build.ts"
import { FrameLayout, headerSize, messageSizeMax, writeU32 } from "../../src/protocol/header.ts"
import { loadWireVectors, readVectorFile, sessionCluster } from "../protocol/wire_vectors.ts"

const vectors = loadWireVectors()
const c2s = vectors.filter((v) => /^session\/\d+_c2s_/.test(v.file)).map((v) => v.bytes)
const register = readVectorFile("session/01_c2s_request_register.bin")
const createAccounts = readVectorFile("session/03_c2s_request_create_accounts.bin")
const replyRegister = readVectorFile("session/02_s2c_reply_register.bin")
const ping = readVectorFile("session/23_c2s_ping_client.bin")
const streamC2s = readVectorFile("session/stream_c2s.raw")

// --- helpers ------------------------------------------------------------------------------------

/**
 * How long a live test waits for one thing the bus must do (an event, a close, a log line): a
 * bound for a bus that never does it, far beyond what a loaded machine takes.
 */
const livenessMs = 60_000

/**
 * A clock at which no time passes, for the bus in the live tests: what they check must not
 * depend on how fast the machine runs them, and the bus reads its clock for its deadlines
 * (a silent connection is closed after 45 s) and for its one-line-a-second warnings. With time
 * stopped its sweep never runs and every warning falls in one second; the tests of the deadlines
 * run the bus on TestClock instead.
 */
const stoppedClock: Clock.Clock = {
  currentTimeMillisUnsafe: () => 0,
  currentTimeMillis: Effect.succeed(0),
  currentTimeNanosUnsafe: () => 0n,
  currentTimeNanos: Effect.succeed(0n),
  monotonicTimeNanosUnsafe: () => 0n,
  monotonicTimeNanos: Effect.succeed(0n),
  sleep: () => Effect.never
}

/**
 * A bus on 127.0.0.1 with a free port for the test's scope, and the warning lines it logged. The
 * bus's time is `stoppedClock`, or with "test clock" the test's own (TestClock under `it.effect`).
 */
const startBus = (options: Partial<TcpBusOptions> = {}, time: "stopped" | "test clock" = "stopped") =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    const logger = Logger.make<unknown, void>(({ message }) => {
      lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    })
    const make = makeTcpBus({ host: "127.0.0.1", port: 0, cluster: sessionCluster, ...options })
    const bus = yield* (time === "stopped" ? Effect.provideService(make, Clock.Clock, stoppedClock) : make).pipe(
      Effect.provide(Logger.layer([logger]))
    )
    return { bus, lines }
  })

interface Client {
  readonly socket: net.Socket
  readonly received: () => Uint8Array
  /** Resolves when the socket is closed (by either side). */
  readonly closed: Deferred.Deferred<void>
  readonly write: (bytes: Uint8Array) => Effect.Effect<void>
  /** Our local port: the bus names us by it in its log lines. */
  readonly localPort: number
}

/** A raw TCP client, destroyed when the test's scope closes. */
const connect = (port: number): Effect.Effect<Client, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const closed = yield* Deferred.make<void>()
      const socket = yield* Effect.callback<net.Socket>((resume) => {
        const socket = net.connect({ host: "127.0.0.1", port, noDelay: true }, () => resume(Effect.succeed(socket)))
      })
      const chunks: Array<Buffer> = []
      socket.on("data", (chunk: Buffer) => chunks.push(chunk))
      socket.on("error", () => {})
      socket.on("close", () => Deferred.doneUnsafe(closed, Exit.void))
      return {
        socket,
        closed,
        localPort: socket.localPort!,
        received: () => new Uint8Array(Buffer.concat(chunks)),
        write: (bytes: Uint8Array) => Effect.callback<void>((resume) => {
          socket.write(bytes, () => resume(Effect.void))
        })
      } satisfies Client
    }),
    (client) => Effect.sync(() => client.socket.destroy())
  )

const nextEvent = (bus: MessageBusShape) =>
  Queue.take(bus.events).pipe(
    Effect.timeoutOrElse({ duration: livenessMs, orElse: () => Effect.die(new Error(`no bus event within ${livenessMs} ms`)) })
  )

/** The connection id a client gets: it sends a valid message and we read the event. */
const identify = Effect.fnUntraced(function* (bus: MessageBusShape, client: Client) {
  yield* client.write(register)
  const event = yield* nextEvent(bus)
  assert.strictEqual(event._tag, "Message")
  assert.deepStrictEqual(event._tag === "Message" ? event.message : undefined, register)
  return event.connection
})

/** Polls `condition` (something the test cannot await, such as a socket's buffer or a log line) until it holds. */
const waitUntil = Effect.fnUntraced(function* (condition: () => boolean, what: string) {
  const pollMs = 10
  for (let i = 0; i < livenessMs / pollMs; i++) {
    if (condition()) return
    yield* Effect.sleep(pollMs)
  }
  assert.fail(`timed out waiting for ${what}`)
})

const awaitClosed = (client: Client) =>
  Deferred.await(client.closed).pipe(
    Effect.timeoutOrElse({ duration: livenessMs, orElse: () => Effect.die(new Error("the bus did not close the connection")) })
  )

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
        assert.deepStrictEqual(event._tag === "Message" ? event.message : undefined, createAccounts)
        client.socket.destroy()
        assert.strictEqual((yield* nextEvent(bus))._tag, "Closed")
      }
      assert.strictEqual(yield* Queue.size(bus.events), 0)
    }))

  it.live("several messages in one chunk arrive in order", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus()
      const client = yield* connect(bus.port)
      yield* client.write(streamC2s)
      const events: Array<BusEvent> = []
      while (events.length < c2s.length) events.push(yield* nextEvent(bus))
      assert.deepStrictEqual(events.map((e) => e._tag === "Message" ? e.message : e._tag), c2s)
      assert.isTrue(events.every((e) => e.connection === events[0].connection))
    }))

  it.live("send delivers exactly the bytes; the caller may reuse its buffer at once", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus({ sendQueueMax: 16 })
      const client = yield* connect(bus.port)
      const connection = yield* identify(bus, client)
      // 12 MiB to a client that is not reading is more than the kernel's socket buffers take, so
      // later messages wait in Node's buffer and in the send queue: without copies, they would be
      // written later from the caller's (since overwritten) buffers.
      const messages = [...Array.from({ length: 12 }, (_, i) => requestWithBody(messageSizeMax - headerSize, i)), replyRegister]
      client.socket.pause()
      const buffer = new Uint8Array(messageSizeMax)
      for (const message of messages) {
        buffer.set(message)
        yield* bus.send(connection, buffer.subarray(0, message.length))
        buffer.fill(0xee)
      }
      yield* Effect.sleep("20 millis")
      client.socket.resume()
      const expected = Buffer.concat(messages)
      yield* waitUntil(() => client.received().length >= expected.length, "every message")
      assert.isTrue(Buffer.from(client.received()).equals(expected))
      // A send to an unknown connection is dropped without a fuss.
      yield* bus.send(connection + 1000, replyRegister)
    }))

  it.live("close writes what is queued, closes the connection, and Closed follows", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus()
      const client = yield* connect(bus.port)
      const connection = yield* identify(bus, client)
      yield* bus.send(connection, replyRegister)
      yield* bus.close(connection)
      yield* bus.close(connection) // idempotent
      const closed = yield* nextEvent(bus)
      assert.deepStrictEqual(closed, { _tag: "Closed", connection })
      yield* awaitClosed(client)
      assert.deepStrictEqual(client.received(), replyRegister)
      yield* bus.send(connection, replyRegister) // dropped: the connection is gone
    }))

  it.live("a client disconnect produces Closed; connection ids increase and are not reused", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus()
      const first = yield* connect(bus.port)
      const a = yield* identify(bus, first)
      first.socket.end()
      assert.deepStrictEqual(yield* nextEvent(bus), { _tag: "Closed", connection: a })
      const second = yield* connect(bus.port)
      const b = yield* identify(bus, second)
      assert.isAbove(b, a)
      second.socket.destroy()
      assert.deepStrictEqual(yield* nextEvent(bus), { _tag: "Closed", connection: b })
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

/**
 * Runs `attack` on a fresh connection while a well-behaved client, connected before and after,
 * keeps getting its messages through and its replies back. Returns the events of the attacker's
 * connection (its `Message`s, if any, and its `Closed`).
 */
const besiege = Effect.fnUntraced(function* (bus: MessageBusShape, attack: (hostile: Client) => Effect.Effect<void>) {
  const good = yield* connect(bus.port)
  const goodId = yield* identify(bus, good)
  const hostile = yield* connect(bus.port)
  yield* attack(hostile)
  yield* good.write(createAccounts)
  const hostileEvents: Array<BusEvent> = []
  let goodMessages = 0
  while (!hostileEvents.some((e) => e._tag === "Closed")) {
    const event = yield* nextEvent(bus)
    if (event.connection === goodId) {
      assert.deepStrictEqual(event._tag === "Message" ? event.message : undefined, createAccounts)
      goodMessages++
    } else {
      hostileEvents.push(event)
    }
  }
  if (goodMessages === 0) {
    const event = yield* nextEvent(bus)
    assert.deepStrictEqual(event, { _tag: "Message", connection: goodId, message: createAccounts })
  }
  yield* bus.send(goodId, replyRegister)
  yield* waitUntil(() => good.received().length === replyRegister.length, "the good client's reply")
  assert.isFalse(good.socket.destroyed)
  good.socket.destroy()
  assert.deepStrictEqual(yield* nextEvent(bus), { _tag: "Closed", connection: goodId })
  return { hostile, hostileEvents }
})

describe("MessageBus over TCP: hostile input", () => {
  for (const { name, bytes, reason } of hostiles) {
    it.live(`${name} closes that connection with one log line; other clients carry on`, () =>
      Effect.gen(function* () {
        const { bus, lines } = yield* startBus()
        const { hostile, hostileEvents } = yield* besiege(bus, (hostile) => Effect.gen(function* () {
          yield* hostile.write(bytes)
          yield* awaitClosed(hostile) // closed by the bus, not by us
        }))
        const messages = hostileEvents.filter((e) => e._tag === "Message")
        if (name.startsWith("a valid message")) assert.deepStrictEqual(messages.map((e) => e.message), [register])
        else assert.deepStrictEqual(messages, [])
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
      assert.strictEqual(event._tag, "Message")
      assert.deepStrictEqual(event._tag === "Message" ? event.message : undefined, createAccounts)
      assert.isFalse(client.socket.destroyed)
      assert.deepStrictEqual(lines, [])
    }))

  it.live("random garbage never yields a Message and never stops a good client", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus()
      const garbage = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { numRuns: 25, seed: 7 })
      for (const bytes of garbage) {
        const { hostileEvents } = yield* besiege(bus, (hostile) => Effect.gen(function* () {
          yield* hostile.write(bytes)
          // Fewer than 256 bytes wait for more; end the stream so that every case finishes.
          hostile.socket.end()
          yield* awaitClosed(hostile)
        }))
        assert.deepStrictEqual(hostileEvents.map((e) => e._tag), ["Closed"])
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
      const goodMessages: Array<Uint8Array> = []
      const closed = new Set<number>()
      let goodId: number | undefined
      while (goodMessages.length < c2s.length || closed.size < attacks.length) {
        const event = yield* nextEvent(bus)
        if (event._tag === "Message") {
          goodId ??= event.connection
          assert.strictEqual(event.connection, goodId, "only the good client's messages come out")
          goodMessages.push(event.message)
        } else {
          assert.notStrictEqual(event.connection, goodId)
          closed.add(event.connection)
        }
      }
      assert.deepStrictEqual(goodMessages, c2s)
      assert.isFalse(good.socket.destroyed)
      yield* waitUntil(() => lines.length === attacks.length, "one log line per hostile connection")
    }))

  it.live("truncated frames then a disconnect: no Message, one Closed", () =>
    Effect.gen(function* () {
      const { bus, lines } = yield* startBus()
      const cuts = [1, 100, headerSize - 1, headerSize, headerSize + 1, createAccounts.length - 1]
      for (const cut of cuts) {
        const { hostileEvents } = yield* besiege(bus, (hostile) => Effect.gen(function* () {
          yield* hostile.write(createAccounts.subarray(0, cut))
          hostile.socket.end()
          yield* awaitClosed(hostile)
        }))
        assert.deepStrictEqual(hostileEvents.map((e) => e._tag), ["Closed"])
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
      const oneId = yield* identify(bus, one)
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
      assert.deepStrictEqual(yield* nextEvent(bus), { _tag: "Closed", connection: oneId })
      const four = yield* connect(bus.port)
      const fourId = yield* identify(bus, four)
      assert.isAbove(fourId, oneId)
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
      while (received.length < messages.length) {
        const event = yield* nextEvent(bus)
        assert.strictEqual(event._tag, "Message")
        if (event._tag === "Message") received.push(event.message)
      }
      assert.strictEqual(received.length, messages.length)
      for (let i = 0; i < messages.length; i++) assert.isTrue(Buffer.from(received[i]).equals(messages[i]), `message ${i}`)
      assert.strictEqual(client.socket.writableLength, 0)
    }))

  it.live("under backpressure a disconnect's Closed still comes after that connection's messages", () =>
    Effect.gen(function* () {
      const { bus } = yield* startBus({ eventsMax: 2 })
      const client = yield* connect(bus.port)
      const stream = Buffer.concat(Array.from({ length: 10 }, () => register))
      yield* client.write(stream)
      client.socket.end()
      yield* awaitClosed(client)
      yield* Effect.sleep("50 millis")
      assert.strictEqual(Queue.sizeUnsafe(bus.events), 2)
      const tags: Array<string> = []
      while (tags.length < 11) tags.push((yield* nextEvent(bus))._tag)
      assert.deepStrictEqual(tags, [...Array.from({ length: 10 }, () => "Message"), "Closed"])
    }))

  it.live("a client that does not read: the send queue bound drops whole messages, never tears one", () =>
    Effect.gen(function* () {
      // A linger longer than any test: the client resumes reading after a pause of its own, and a
      // bus that destroyed the socket first (1 s by default) would cut a message in the kernel's buffers.
      const { bus } = yield* startBus({ sendQueueMax: 2, closeLingerMs: 10 * livenessMs })
      const client = yield* connect(bus.port)
      const connection = yield* identify(bus, client)
      client.socket.pause()
      const message = requestWithBody(messageSizeMax - headerSize, 0x5a)
      for (let i = 0; i < 40; i++) yield* bus.send(connection, message)
      // close writes out what was kept, then ends the stream: everything the bus kept is received.
      yield* bus.close(connection)
      yield* Effect.sleep("50 millis")
      client.socket.resume()
      yield* awaitClosed(client)
      const bytes = client.received()
      assert.strictEqual(bytes.length % message.length, 0)
      const count = bytes.length / message.length
      assert.isAtLeast(count, 1)
      assert.isBelow(count, 40, "some messages were dropped")
      for (let i = 0; i < count; i++) assert.isTrue(Buffer.from(bytes.subarray(i * message.length, (i + 1) * message.length)).equals(message))
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
 * virtual time moves by `stepMs`. Repeats until a `Closed` event appears or `untilMs` have passed;
 * the sweep runs inside `adjust`, so its `Closed` is already queued when `adjust` returns. Returns
 * the closed connection and the virtual time it took.
 */
const stepUntilClosed = Effect.fnUntraced(function* (bus: MessageBusShape, stepMs: number, untilMs: number,
  speaker?: { readonly client: Client; readonly id: number }) {
  for (let elapsedMs = 0; elapsedMs < untilMs;) {
    if (speaker !== undefined) {
      yield* speaker.client.write(ping)
      const event = yield* Queue.take(bus.events)
      assert.deepStrictEqual(event, { _tag: "Message", connection: speaker.id, message: ping })
    }
    yield* TestClock.adjust(stepMs)
    elapsedMs += stepMs
    const queued = yield* Queue.clear(bus.events)
    if (queued.length === 0) continue
    assert.strictEqual(queued.length, 1)
    assert.strictEqual(queued[0]._tag, "Closed")
    return { connection: queued[0].connection, elapsedMs }
  }
  return undefined
})

describe("MessageBus over TCP: silent connections", () => {
  it.live("at the limit a newcomer evicts the oldest silent connection; one that has spoken is never evicted", () =>
    Effect.gen(function* () {
      const { bus, lines } = yield* startBus({ connectionsMax: 3 })
      const talker = yield* connect(bus.port)
      const talkerId = yield* identify(bus, talker)
      // The kernel's accept queue is first in, first out: the bus accepts these in this order.
      const oldest = yield* connect(bus.port)
      const younger = yield* connect(bus.port)
      const newcomer = yield* connect(bus.port)
      yield* awaitClosed(oldest)
      const evicted = yield* nextEvent(bus)
      assert.strictEqual(evicted._tag, "Closed")
      const newcomerId = yield* identify(bus, newcomer)
      assert.isAbove(newcomerId, evicted.connection)
      const youngerId = yield* identify(bus, younger) // still open: it speaks and is heard
      assert.isBelow(youngerId, newcomerId)
      // All three have spoken: one more is refused, and none of them is closed for it.
      yield* awaitClosed(yield* connect(bus.port))
      for (const [client, id] of [[talker, talkerId], [younger, youngerId], [newcomer, newcomerId]] as const) {
        yield* client.write(createAccounts)
        assert.deepStrictEqual(yield* nextEvent(bus), { _tag: "Message", connection: id, message: createAccounts })
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
      const closed: Array<BusEvent> = []
      for (let event = yield* nextEvent(bus); ; event = yield* nextEvent(bus)) {
        if (event._tag === "Message") {
          assert.deepStrictEqual(event.message, register)
          break
        }
        closed.push(event)
        if (closed.length === 200 - connectionsMax + 1) yield* client.write(register)
      }
      assert.strictEqual(closed.length, 200 - connectionsMax + 1)
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
      yield* talker.write(register)
      const first = yield* Queue.take(bus.events)
      assert.strictEqual(first._tag, "Message")
      const speaker = { client: talker, id: first.connection }
      const closing = yield* stepUntilClosed(bus, sweepMs / 2, 10 * handshakeTimeoutMs, speaker)
      assert.isDefined(closing)
      assert.notStrictEqual(closing!.connection, speaker.id)
      assert.isAtLeast(closing!.elapsedMs, handshakeTimeoutMs)
      assert.isAtMost(closing!.elapsedMs, handshakeTimeoutMs + 2 * sweepMs)
      yield* Deferred.await(silent.closed)
      // The talker keeps speaking for many idle deadlines and stays open.
      assert.isUndefined(yield* stepUntilClosed(bus, sweepMs / 2, 5 * idleTimeoutMs, speaker))
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
      const talkerId = yield* identifyUnder(bus, talker)
      // It spoke at time 0; from now on it says nothing.
      const closing = yield* stepUntilClosed(bus, sweepMs / 2, 10 * idleTimeoutMs)
      assert.deepStrictEqual(closing?.connection, talkerId)
      assert.isAtLeast(closing!.elapsedMs, idleTimeoutMs)
      assert.isAtMost(closing!.elapsedMs, idleTimeoutMs + 2 * sweepMs)
      yield* Deferred.await(talker.closed)
      yield* yieldUntil(() => lines.length === 1, "the timeout's log line")
      assert.include(lines[0], "idleTimeoutMs")
      assert.include(lines[0], `127.0.0.1:${talker.localPort}`)
    }))
})

/** `identify` without its 3 s timeout, which under TestClock would be virtual time. */
const identifyUnder = Effect.fnUntraced(function* (bus: MessageBusShape, client: Client) {
  yield* client.write(register)
  const event = yield* Queue.take(bus.events)
  assert.deepStrictEqual(event._tag === "Message" ? event.message : undefined, register)
  return event.connection
})
