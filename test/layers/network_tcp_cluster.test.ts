/**
 * The TCP MessageBus as a cluster's (issue 13, "Message bus"): TCP buses in this process on
 * ephemeral ports, and raw sockets posing as replicas.
 *
 * - Two and three buses form a cluster: the lower index of each pair dials, `sendToReplica`
 *   arrives verified as `events` in both directions (the dialed side once the dialer has spoken,
 *   which is how it learns who called: the bus introduces itself with nothing of its own).
 * - A peer bus stopped and started again on its port is dialed again and reachable.
 * - A peer that never reads (its socket's buffers full) fills only its own bounded queue: messages
 *   to another replica and to a client still arrive.
 * - A connection claiming our own index, an index outside the cluster, or a second identity is
 *   closed with one warning naming the claim; the others are not disturbed.
 * - The pure parts: the peer transitions (tcp_peer.ts) and the dial delays (tcp_dialer.ts).
 *
 * No test waits a fixed time: each waits for the event it needs, within the liveness bound.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import fc from "fast-check"
import type { ReplicaAddress, TcpBusShape } from "../../src/layers/network_tcp.ts"
import { connectDelayMs } from "../../src/layers/tcp_dialer.ts"
import { peerAfter, peerUnknown } from "../../src/layers/tcp_peer.ts"
import { buildMessage, sealMessage, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import { Command, headerSize, messageSizeMax, PingClientLayout, RequestLayout, zeroHeader } from "../../src/protocol/header.ts"
import { readVectorFile, sessionCluster } from "../protocol/wire_vectors.ts"
import { awaitClosed, connect, nextEvent, startBus, waitUntil } from "./tcp_kit.ts"

const register = readVectorFile("session/01_c2s_request_register.bin")
const replyRegister = readVectorFile("session/02_s2c_reply_register.bin")
const pingClient = readVectorFile("session/23_c2s_ping_client.bin")
const sessionClient = u128FromBytes(register, RequestLayout.client.offset)

/** A `commit` from replica `replica`, told apart from others by its `commit` number `tag`. */
const commitFrom = (replica: number, tag: number): Uint8Array =>
  buildMessage({ ...zeroHeader(Command.commit), cluster: sessionCluster, replica, commit: BigInt(tag), timestamp_monotonic: 1n }, new Uint8Array(0))

/** A `headers` message from replica `replica` of the largest size (1 MiB): a few fill a socket's buffers. */
const largeFrom = (replica: number): Uint8Array =>
  buildMessage({ ...zeroHeader(Command.headers), cluster: sessionCluster, replica },
    new Uint8Array(Math.floor((messageSizeMax - headerSize) / headerSize) * headerSize).fill(0x3c))

/** The addresses of a cluster of `count`: `ports[i]` where known (the replicas we dial), a placeholder elsewhere. */
const addresses = (count: number, ports: Readonly<Record<number, number>>): ReadonlyArray<ReplicaAddress> =>
  Array.from({ length: count }, (_, i) => ({ host: "127.0.0.1", port: ports[i] ?? 0 }))

/** Waits until `from` has an established connection to replica `to`. */
const awaitLink = (from: TcpBusShape, to: number) => waitUntil(() => from.replicaLink(to).connected, `a connection to replica ${to}`)

/** `message` sent from `from` to replica `to` arrives at `target`, byte for byte. */
const reaches = Effect.fnUntraced(function* (from: TcpBusShape, to: number, target: TcpBusShape, message: Uint8Array) {
  yield* from.sendToReplica(to, message)
  const event = yield* nextEvent(target)
  assert.deepStrictEqual(event.message, message)
})

describe("MessageBus over TCP: a cluster", () => {
  it.live("three buses: each lower replica dials each higher one, and messages flow both ways", () =>
    Effect.gen(function* () {
      // The highest starts first (it dials nobody), so each bus knows the ports it dials.
      const two = (yield* startBus({ replica: 2, replicaAddresses: addresses(3, {}) })).bus
      const one = (yield* startBus({ replica: 1, replicaAddresses: addresses(3, { 2: two.port }) })).bus
      const zero = (yield* startBus({ replica: 0, replicaAddresses: addresses(3, { 1: one.port, 2: two.port }) })).bus
      const buses = [zero, one, two]
      for (const [lower, higher] of [[0, 1], [0, 2], [1, 2]] as const) {
        yield* awaitLink(buses[lower], higher)
        // The dialed replica does not know who called until the dialer speaks: sends to it are dropped.
        assert.isFalse(buses[higher].replicaLink(lower).connected)
        yield* reaches(buses[lower], higher, buses[higher], commitFrom(lower, 10 * lower + higher))
        assert.isTrue(buses[higher].replicaLink(lower).connected)
        yield* reaches(buses[higher], lower, buses[lower], commitFrom(higher, 10 * higher + lower))
      }
      // One connection per pair: every bus has accepted exactly its lower replicas.
      assert.deepStrictEqual(buses.map((bus) => bus.openConnections()), [0, 1, 2])
    }))

  it.live("a peer stopped and started again on its port is dialed again and reachable both ways", () =>
    Effect.gen(function* () {
      const firstScope = yield* Scope.make()
      const first = (yield* Scope.provide(firstScope)(startBus({ replica: 1, replicaAddresses: addresses(2, {}) }))).bus
      const port = first.port
      const zero = (yield* startBus({ replica: 0, replicaAddresses: addresses(2, { 1: port }), connectDelayMaxMs: 200 })).bus
      yield* awaitLink(zero, 1)
      yield* reaches(zero, 1, first, commitFrom(0, 1))
      yield* reaches(first, 0, zero, commitFrom(1, 2))
      yield* Scope.close(firstScope, Exit.void)
      yield* waitUntil(() => !zero.replicaLink(1).connected, "the dialer to see its peer gone")
      yield* zero.sendToReplica(1, commitFrom(0, 3)) // dropped: nobody to send it to
      // Started again on the same port: the dialer's next attempt finds it.
      const second = (yield* startBus({ replica: 1, replicaAddresses: addresses(2, {}), port })).bus
      yield* awaitLink(zero, 1)
      yield* reaches(zero, 1, second, commitFrom(0, 4))
      yield* reaches(second, 0, zero, commitFrom(1, 5))
    }))

  it.live("a peer that never reads fills only its own bounded queue; other replicas and clients are still reached", () =>
    Effect.gen(function* () {
      const replicaSendQueueMax = 4
      const two = (yield* startBus({ replica: 2, replicaAddresses: addresses(3, {}) })).bus
      const one = (yield* startBus({ replica: 1, replicaAddresses: addresses(3, { 2: two.port }), replicaSendQueueMax })).bus
      // A raw socket poses as replica 0 (which dials replica 1), then never reads again.
      const stalled = yield* connect(one.port)
      stalled.socket.pause()
      yield* stalled.write(commitFrom(0, 1))
      assert.deepStrictEqual((yield* nextEvent(one)).message, commitFrom(0, 1))
      assert.isTrue(one.replicaLink(0).connected)
      const client = yield* connect(one.port)
      yield* client.write(register)
      assert.deepStrictEqual((yield* nextEvent(one)).message, register)
      yield* awaitLink(one, 2)
      // Flood replica 0 until its socket takes no more and its queue is full (the kernel's buffers
      // take a few MiB first), then some more: the queue never grows past its bound.
      const large = largeFrom(1)
      for (let i = 0; i < 256 && one.replicaLink(0).queued < replicaSendQueueMax; i++) yield* one.sendToReplica(0, large)
      assert.strictEqual(one.replicaLink(0).queued, replicaSendQueueMax, "the stalled peer's queue filled")
      for (let i = 0; i < 16; i++) yield* one.sendToReplica(0, large)
      const link = one.replicaLink(0)
      assert.strictEqual(link.queued, replicaSendQueueMax)
      // The queue, one message Node took whole, and at most its 16 KiB write buffer besides.
      assert.isAtMost(link.heldBytes, (replicaSendQueueMax + 1) * messageSizeMax + 16 * 1024)
      // Replica 2 and the client are reached all the same.
      yield* reaches(one, 2, two, commitFrom(1, 2))
      yield* one.sendToClient(sessionClient, replyRegister)
      yield* waitUntil(() => client.received().length === replyRegister.length, "the client's reply")
      assert.deepStrictEqual(client.received(), replyRegister)
      assert.isFalse(stalled.socket.destroyed)
      // Still bounded (the kernel may by now take a little more from it: TCP buffers grow with time).
      assert.isAtMost(one.replicaLink(0).queued, replicaSendQueueMax)
    }))

  it.live("a connection claiming our index, an index outside the cluster, or a second identity is closed with a warning", () =>
    Effect.gen(function* () {
      const { bus, lines } = yield* startBus({ replica: 2, replicaAddresses: addresses(3, {}) })
      const good = yield* connect(bus.port)
      yield* good.write(register)
      assert.deepStrictEqual((yield* nextEvent(bus)).message, register)
      const cases: ReadonlyArray<{ readonly messages: ReadonlyArray<Uint8Array>; readonly words: string }> = [
        { messages: [commitFrom(2, 1)], words: "claims to be replica 2, which is this replica" },
        { messages: [commitFrom(3, 1)], words: "claims to be replica 3, but the cluster has 3" },
        { messages: [commitFrom(255, 1)], words: "claims to be replica 255" },
        { messages: [withClientId(pingClient, 99n), commitFrom(0, 1)], words: "spoke as client 99, now as replica 0" },
        { messages: [commitFrom(0, 2), commitFrom(1, 2)], words: "spoke as replica 0, now as replica 1" },
        { messages: [commitFrom(1, 3), withClientId(pingClient, 98n)], words: "spoke as replica 1, now as client 98" }
      ]
      for (const [i, { messages, words }] of cases.entries()) {
        const claimant = yield* connect(bus.port)
        yield* claimant.write(Buffer.concat(messages))
        yield* awaitClosed(claimant)
        // The messages before the broken claim were heard; the broken one was not.
        for (const message of messages.slice(0, -1)) assert.deepStrictEqual((yield* nextEvent(bus)).message, message)
        yield* waitUntil(() => lines.length === i + 1, "the claim's warning")
        assert.include(lines[i], words)
        assert.include(lines[i], `127.0.0.1:${claimant.localPort}`)
      }
      // The client is not disturbed, and a replica's index stays free for a sound claim.
      yield* good.write(register)
      assert.deepStrictEqual((yield* nextEvent(bus)).message, register)
      const zero = yield* connect(bus.port)
      yield* zero.write(commitFrom(0, 9))
      assert.deepStrictEqual((yield* nextEvent(bus)).message, commitFrom(0, 9))
      assert.isTrue(bus.replicaLink(0).connected)
      assert.isFalse(good.socket.destroyed)
    }))
})

/** A copy of a ping_client naming `client`, sealed again. */
function withClientId(ping: Uint8Array, client: bigint): Uint8Array {
  const copy = ping.slice()
  copy.set(u128ToBytes(client), PingClientLayout.client.offset)
  sealMessage(copy)
  return copy
}

describe("MessageBus over TCP: the pure parts", () => {
  const seat = { replica: 1, replicaCount: 3 }

  it("peer transitions: a replica's claims, a client's, and forwarded requests", () => {
    const replicaZero = peerAfter(peerUnknown, commitFrom(0, 1), seat)
    assert.deepStrictEqual(replicaZero, { _tag: "Replica", replica: 0 })
    if (typeof replicaZero === "string") return
    // A replica forwards requests: it stays a replica, and its reply and prepare messages tell nothing.
    assert.strictEqual(peerAfter(replicaZero, register, seat), replicaZero)
    assert.strictEqual(peerAfter(replicaZero, replyRegister, seat), replicaZero)
    // Requests only make a client likely: it may still prove a replica; a ping makes it certain.
    const likely = peerAfter(peerUnknown, register, seat)
    assert.deepStrictEqual(likely, { _tag: "Client", client: sessionClient, certain: false })
    if (typeof likely === "string") return
    assert.deepStrictEqual(peerAfter(likely, commitFrom(2, 1), seat), { _tag: "Replica", replica: 2 })
    const certain = peerAfter(likely, pingClient, seat)
    assert.deepStrictEqual(certain, { _tag: "Client", client: sessionClient, certain: true })
    if (typeof certain === "string") return
    assert.strictEqual(peerAfter(certain, register, seat), certain)
    assert.isString(peerAfter(certain, commitFrom(2, 1), seat))
    assert.isString(peerAfter(certain, withClientId(pingClient, 5n), seat))
    assert.isString(peerAfter(peerUnknown, commitFrom(1, 1), seat))
    assert.isString(peerAfter(peerUnknown, commitFrom(3, 1), seat))
  })

  it("dial delays stay within their bounds and grow with the attempts, for any draw", () => {
    fc.assert(fc.property(fc.nat(100), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempts, draw) => {
      const delay = connectDelayMs(attempts, 50, 1000, () => draw)
      assert.isAtLeast(delay, 50)
      assert.isAtMost(delay, Math.min(1000, 50 + 50 * 2 ** attempts))
    }))
    assert.strictEqual(connectDelayMs(0, 50, 1000, () => 0), 50)
    assert.strictEqual(connectDelayMs(40, 50, 1000, () => 0.999999), 1000)
  })
})

