/**
 * The client session's pure core (src/client/session_core.ts), driven directly: inputs in,
 * outputs out, no Effect, no transport, no clock. Registration, request numbering and the hash
 * chain, which calls go into a request (merging, order, the size budgets), every reply-acceptance
 * rule of wire-protocol.md §11 (one test per rule: the reply that breaks it is dropped, and the
 * same reply unbroken is then accepted, so each test can tell), eviction and halt, the view and
 * the target replicas, retransmission and its schedule.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { operationShape } from "../../src/protocol/body.ts"
import {
  buildEviction, buildMessage, buildPongClient, buildReply, sealMessage, sealReply, u128FromBytes, u128ToBytes
} from "../../src/protocol/build.ts"
import {
  Command, EvictionLayout, EvictionReason, FrameLayout, headerSize, PingClientLayout, readU32, releaseScarab, ReplyLayout, RequestLayout, u128Equal,
  VsrOperation, writeU32, zeroHeader
} from "../../src/protocol/header.ts"
import { decodeMultiBatch, encodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { bodySizeMax, eventSize, Operation, resultSize, type ClientOperation } from "../../src/protocol/operation.ts"
import { batchSizeLimitMin, registerResultBody } from "../../src/protocol/register.ts"
import {
  hedgeReplica, retryJitterTicksMax, retryWaitMs, SessionCore, type SessionCall, type SessionOutput
} from "../../src/client/session_core.ts"

const cluster = 0x0c1a55n
const clientId = 0xc11e47n
const sessionNumber = 5n

interface TestCall extends SessionCall {
  readonly name: string
}
type Output = SessionOutput<TestCall>

/** A call of `events` events (or one query filter with `limit`), its first byte marked so its batch can be recognised. */
const call = (name: string, operation: ClientOperation, events = 1, limit = 1): TestCall => {
  const body = new Uint8Array(events * eventSize(operation))
  if (body.length > 0) body[0] = name.charCodeAt(0)
  const { limitOffset } = operationShape(operation)
  if (limitOffset !== undefined) writeU32(body, limitOffset, limit)
  return { _tag: "Call", name, operation, body, abandoned: false }
}

const newCore = (replicaCount = 1) => new SessionCore<TestCall>({ cluster, clientId, replicaCount })
const tags = (outputs: ReadonlyArray<Output>) => outputs.map((output) => output._tag)
const transmitted = (outputs: ReadonlyArray<Output>): Array<Extract<Output, { _tag: "Transmit" }>> =>
  outputs.filter((output) => output._tag === "Transmit")
/** The one request a step sent. */
const sentRequest = (outputs: ReadonlyArray<Output>): Uint8Array => {
  const sends = transmitted(outputs)
  assert.strictEqual(sends.length, 1, `one transmission, not ${tags(outputs).join(", ")}`)
  return sends[0]!.message
}

const requestNumber = (message: Uint8Array) => readU32(message, RequestLayout.request.offset)
const replyFields = (view = 0, op = 10n) => ({ view, replica: 0, op, timestamp: 1n })

function registerReply(request: Uint8Array, limit = bodySizeMax, view = 0): Uint8Array {
  return buildReply(request, registerResultBody(limit), replyFields(view, sessionNumber))
}

/** The reply to `request` holding one result batch per batch of the request (or `batches` given). */
function replyTo(request: Uint8Array, view = 0, batches?: ReadonlyArray<Uint8Array>): Uint8Array {
  const operation = request[RequestLayout.operation.offset] as ClientOperation
  const requested = decodeMultiBatch(request.subarray(headerSize), eventSize(operation)) as Array<Uint8Array>
  const results = batches ?? requested.map((_, i) => new Uint8Array(resultSize(operation)).fill(i + 1))
  return buildReply(request, encodeMultiBatch(results, resultSize(operation)), replyFields(view, 10n + BigInt(requestNumber(request))))
}

/** A copy of `reply` changed by `edit`, resealed (the transport verified the checksums; the core checks the rest). */
function broken(reply: Uint8Array, edit: (copy: Uint8Array) => void): Uint8Array {
  const copy = reply.slice()
  edit(copy)
  sealReply(copy)
  return copy
}

/** Starts `core` and answers its register; returns the register request. */
function register(core: SessionCore<TestCall>, limit = bodySizeMax): Uint8Array {
  core.start(1_000n)
  const request = sentRequest(core.takeOutputs())
  core.receive(registerReply(request, limit), 2_000n)
  expect(tags(core.takeOutputs())).toEqual(["TimerCancel"])
  return request
}

/** Applies `inputs` at `nowNs` and answers the step's outputs. */
const step = (core: SessionCore<TestCall>, inputs: Parameters<SessionCore<TestCall>["apply"]>[0], nowNs = 3_000n) => {
  core.apply(inputs, nowNs)
  return core.takeOutputs()
}

/** The names of the calls a request carries, from their batches' first bytes. */
const namesIn = (request: Uint8Array): Array<string> => {
  const operation = request[RequestLayout.operation.offset] as ClientOperation
  const batches = decodeMultiBatch(request.subarray(headerSize), eventSize(operation)) as Array<Uint8Array>
  return batches.map((batch) => String.fromCharCode(batch[0]!))
}

describe("session core: registration", () => {
  it("the register goes out first: request 0, session 0, parent 0, a zero RegisterRequest, its timer armed before it is sent", () => {
    const core = newCore()
    core.start(1_000n)
    const outputs = core.takeOutputs()
    expect(outputs.map((o) => o._tag === "TimerStart" ? `${o._tag} ${o.request}` : o._tag)).toEqual(["TimerStart 0", "Transmit"])
    const request = sentRequest(outputs)
    assert.strictEqual(request[FrameLayout.command.offset], Command.request)
    assert.strictEqual(request[RequestLayout.operation.offset], VsrOperation.register)
    assert.strictEqual(requestNumber(request), 0)
    assert.strictEqual(u128FromBytes(request, RequestLayout.client.offset), clientId)
    assert.strictEqual(u128FromBytes(request, FrameLayout.cluster.offset), cluster)
    assert.strictEqual(u128FromBytes(request, RequestLayout.parent.offset), 0n)
    assert.isTrue(request.subarray(RequestLayout.session.offset, RequestLayout.session.offset + 8).every((b) => b === 0))
    assert.strictEqual(request.length, headerSize + 256)
    assert.isTrue(request.subarray(headerSize).every((b) => b === 0))
    assert.strictEqual(core.inFlightRequest, 0)
    expect(() => core.start(1_000n)).toThrow(/registers once/)
  })

  it("calls made before the register reply wait; the reply names the session and the budget, and they go out after it", () => {
    const core = newCore()
    core.start(1_000n)
    const request = sentRequest(core.takeOutputs())
    expect(step(core, [call("a", Operation.create_accounts)])).toEqual([])
    assert.isFalse(core.readyToSend)
    core.apply([{ _tag: "Message", message: registerReply(request, batchSizeLimitMin) }], 2_000n)
    const outputs = core.takeOutputs()
    expect(tags(outputs)).toEqual(["TimerCancel", "TimerStart", "Transmit"])
    assert.strictEqual(core.session, sessionNumber)
    assert.strictEqual(core.batchSizeLimit, batchSizeLimitMin)
    const first = sentRequest(outputs)
    assert.strictEqual(requestNumber(first), 1)
    assert.strictEqual(u128FromBytes(first, RequestLayout.session.offset) & 0xffff_ffff_ffff_ffffn, sessionNumber)
    expect(namesIn(first)).toEqual(["a"])
  })
})

describe("session core: numbering and the hash chain", () => {
  it("requests 1, 2, 3: each parent is the previous reply's context, each carries the previous request's latency", () => {
    const core = newCore()
    const registerRequest = register(core)
    let previousReply = registerReply(registerRequest)
    let nowNs = 10_000_000n
    for (let i = 1; i <= 3; i++) {
      const request = sentRequest(step(core, [call(String.fromCharCode(96 + i), Operation.lookup_accounts)], nowNs))
      assert.strictEqual(requestNumber(request), i)
      assert.isTrue(u128Equal(request, RequestLayout.parent.offset, previousReply, ReplyLayout.context.offset), `parent of ${i}`)
      // Request 1 follows the register, answered 1000 ns after it was sent; then each reply comes 7 µs after its request.
      assert.strictEqual(readU32(request, RequestLayout.previous_request_latency.offset), i === 1 ? 1 : 7)
      previousReply = replyTo(request)
      core.receive(previousReply, nowNs + 7_000n)
      expect(tags(core.takeOutputs())).toEqual(["TimerCancel"])
      assert.strictEqual(core.takeAnswered()?.calls.length, 1)
      nowNs += 1_000_000n
    }
    expect(core.stats).toEqual({ requests: 4, retransmissions: 0, calls: 3 })
  })

  it("a latency beyond a u32 of µs is sent as the u32 maximum, and one from a clock that stepped back as 0", () => {
    const core = newCore()
    register(core)
    const request = sentRequest(step(core, [call("a", Operation.lookup_accounts)], 0n))
    core.receive(replyTo(request), 5_000_000_000_000_000n)
    core.takeOutputs()
    const next = sentRequest(step(core, [call("b", Operation.lookup_accounts)], 6_000_000_000_000_000n))
    assert.strictEqual(readU32(next, RequestLayout.previous_request_latency.offset), 0xffff_ffff)
    core.receive(replyTo(next), 5_000_000_000_000_000n)
    core.takeOutputs()
    const after = sentRequest(step(core, [call("c", Operation.lookup_accounts)]))
    assert.strictEqual(readU32(after, RequestLayout.previous_request_latency.offset), 0)
  })

  it("one request in flight: calls made meanwhile wait for its reply, and then go out together", () => {
    const core = newCore()
    register(core)
    const first = sentRequest(step(core, [call("a", Operation.create_transfers)]))
    expect(step(core, [call("b", Operation.create_transfers)])).toEqual([])
    expect(step(core, [call("c", Operation.create_transfers)])).toEqual([])
    const outputs = step(core, [{ _tag: "Message", message: replyTo(first) }])
    expect(tags(outputs)).toEqual(["TimerCancel", "TimerStart", "Transmit"])
    expect(namesIn(sentRequest(outputs))).toEqual(["b", "c"])
  })
})

describe("session core: which calls go into a request", () => {
  it("the oldest call's operation, with every queued call of it in call order; the other operation's calls go next", () => {
    const core = newCore()
    register(core)
    const first = sentRequest(step(core, [
      call("a", Operation.create_accounts), call("b", Operation.create_transfers), call("c", Operation.create_accounts, 3),
      call("d", Operation.create_transfers), call("e", Operation.create_accounts)
    ]))
    assert.strictEqual(first[RequestLayout.operation.offset], Operation.create_accounts)
    expect(namesIn(first)).toEqual(["a", "c", "e"])
    const second = sentRequest(step(core, [{ _tag: "Message", message: replyTo(first) }]))
    assert.strictEqual(second[RequestLayout.operation.offset], Operation.create_transfers)
    expect(namesIn(second)).toEqual(["b", "d"])
    // Each caller gets the result batch of its own batch.
    const answered = core.takeAnswered()!
    expect(answered.calls.map((c) => c.name)).toEqual(["a", "c", "e"])
    expect(answered.results.map((r) => r[0])).toEqual([1, 2, 3])
  })

  it("the body budget: the first call that does not fit closes the request, so a later one that would fit waits too", () => {
    const core = newCore()
    register(core, batchSizeLimitMin) // 3840 bytes: 29 events of 128 bytes and a 128-byte trailer
    const first = sentRequest(step(core, [
      call("a", Operation.create_transfers, 20), call("b", Operation.create_transfers, 10), call("c", Operation.create_transfers, 1)
    ]))
    expect(namesIn(first)).toEqual(["a"])
    assert.isAtMost(first.length - headerSize, batchSizeLimitMin)
    expect(namesIn(sentRequest(step(core, [{ _tag: "Message", message: replyTo(first) }])))).toEqual(["b", "c"])
  })

  it("the reply bound: queries whose results together exceed 1 MiB go in separate requests", () => {
    const core = newCore()
    register(core)
    const big = [call("a", Operation.get_account_transfers, 1, 8189), call("b", Operation.get_account_transfers, 1, 8189)]
    const first = sentRequest(step(core, big))
    expect(namesIn(first)).toEqual(["a"])
    const second = sentRequest(step(core, [{ _tag: "Message", message: replyTo(first) }]))
    expect(namesIn(second)).toEqual(["b"])
    // The same queries with small limits share one request.
    core.receive(replyTo(second), 4_000n)
    core.takeOutputs()
    const small = [call("c", Operation.get_account_transfers, 1, 10), call("d", Operation.get_account_transfers, 1, 10)]
    expect(namesIn(sentRequest(step(core, small)))).toEqual(["c", "d"])
  })

  it("a call too large for the server's budget even alone is refused with TooMuchData; the others go out", () => {
    const core = newCore()
    register(core, batchSizeLimitMin)
    const tooLarge = call("a", Operation.create_transfers, 30)
    const outputs = step(core, [tooLarge, call("b", Operation.create_transfers, 2)])
    expect(tags(outputs)).toEqual(["Refuse", "TimerStart", "Transmit"])
    const refused = outputs[0] as Extract<Output, { _tag: "Refuse" }>
    assert.strictEqual(refused.call, tooLarge)
    expect([refused.error._tag, refused.error.count, refused.error.max]).toEqual(["TooMuchData", 30, 29])
    expect(namesIn(sentRequest(outputs))).toEqual(["b"])
  })

  it("a call whose deadline passed while it was queued is not sent", () => {
    const core = newCore()
    register(core)
    const first = sentRequest(step(core, [call("a", Operation.lookup_accounts)]))
    const abandoned = call("b", Operation.lookup_accounts)
    expect(step(core, [abandoned, call("c", Operation.lookup_accounts)])).toEqual([])
    abandoned.abandoned = true
    expect(namesIn(sentRequest(step(core, [{ _tag: "Message", message: replyTo(first) }])))).toEqual(["c"])
    assert.notInclude(core.held(), abandoned)
  })
})

describe("session core: reply acceptance (§11), one rule each", () => {
  /** A core with request 1 (two lookups) in flight, and that request. */
  const inFlight = () => {
    const core = newCore()
    register(core)
    const request = sentRequest(step(core, [call("a", Operation.lookup_accounts), call("b", Operation.lookup_accounts)]))
    return { core, request }
  }
  /** `bad` is dropped (with a debug line or silently), then `good` is accepted: the rule alone made the difference. */
  const dropsThenAccepts = (bad: Uint8Array, good: Uint8Array, dropLine: RegExp | undefined, setup = inFlight()) => {
    const { core } = setup
    core.receive(bad, 4_000n)
    const outputs = core.takeOutputs()
    if (dropLine === undefined) expect(outputs).toEqual([])
    else {
      expect(tags(outputs)).toEqual(["Drop"])
      expect((outputs[0] as Extract<Output, { _tag: "Drop" }>).why).toMatch(dropLine)
    }
    assert.strictEqual(core.inFlightRequest, setup.request === undefined ? 0 : requestNumber(setup.request))
    assert.isUndefined(core.takeAnswered())
    core.receive(good, 5_000n)
    expect(tags(core.takeOutputs())).toEqual(["TimerCancel"])
    assert.isUndefined(core.inFlightRequest)
  }

  it("release: a reply of another release is dropped", () => {
    const setup = inFlight()
    const good = replyTo(setup.request)
    dropsThenAccepts(broken(good, (r) => writeU32(r, FrameLayout.release.offset, releaseScarab + 1)), good, /another release/, setup)
  })

  it("client: a reply for another client is dropped silently", () => {
    const setup = inFlight()
    const good = replyTo(setup.request)
    dropsThenAccepts(broken(good, (r) => u128ToBytes(clientId + 1n, r, ReplyLayout.client.offset)), good, undefined, setup)
  })

  it("request number: a late duplicate of an earlier request's reply is dropped silently", () => {
    const core = newCore()
    register(core)
    const first = sentRequest(step(core, [call("a", Operation.lookup_accounts)]))
    const firstReply = replyTo(first)
    const second = sentRequest(step(core, [{ _tag: "Message", message: firstReply }, call("b", Operation.lookup_accounts)]))
    core.takeAnswered()
    dropsThenAccepts(firstReply, replyTo(second), undefined, { core, request: second })
  })

  it("request checksum: a reply naming another request's checksum is dropped", () => {
    const setup = inFlight()
    const good = replyTo(setup.request)
    dropsThenAccepts(broken(good, (r) => { r[ReplyLayout.request_checksum.offset]! ^= 1 }), good, /another request's checksum/, setup)
  })

  it("operation: a reply with another operation is dropped", () => {
    const setup = inFlight()
    const good = replyTo(setup.request)
    dropsThenAccepts(broken(good, (r) => { r[ReplyLayout.operation.offset] = Operation.lookup_transfers }), good, /another operation/, setup)
  })

  it("result batches: a reply whose body is not a multi-batch body is dropped", () => {
    const setup = inFlight()
    const good = replyTo(setup.request)
    // The trailer's batch count (the body's last u16) set to 0xFFFF: not a valid count.
    dropsThenAccepts(broken(good, (r) => r.fill(0xff, r.length - 2)), good, /result batches/, setup)
  })

  it("result batches: a reply holding another number of batches than the request's calls is dropped", () => {
    const setup = inFlight()
    const bad = replyTo(setup.request, 0, [new Uint8Array(128)])
    dropsThenAccepts(bad, replyTo(setup.request), /does not hold 2 result batches/, setup)
  })

  it("register: a reply without a session number (commit 0) is dropped", () => {
    const core = newCore()
    core.start(0n)
    const request = sentRequest(core.takeOutputs())
    const bad = broken(registerReply(request), (r) => r.fill(0, ReplyLayout.commit.offset, ReplyLayout.commit.offset + 8))
    dropsThenAccepts(bad, registerReply(request), /invalid register reply/, { core, request })
    assert.strictEqual(core.session, sessionNumber)
  })

  it("register: a RegisterResult whose batch_size_limit is 0 is dropped", () => {
    const core = newCore()
    core.start(0n)
    const request = sentRequest(core.takeOutputs())
    const bad = buildReply(request, new Uint8Array(64), replyFields(0, sessionNumber))
    dropsThenAccepts(bad, registerReply(request), /invalid register reply/, { core, request })
    assert.strictEqual(core.batchSizeLimit, bodySizeMax)
  })

  it("nothing in flight: a reply is ignored", () => {
    const core = newCore()
    register(core)
    const request = sentRequest(step(core, [call("a", Operation.lookup_accounts)]))
    const reply = replyTo(request)
    core.receive(reply, 4_000n)
    core.takeOutputs()
    core.takeAnswered()
    core.receive(reply, 5_000n)
    expect(core.takeOutputs()).toEqual([])
    assert.isUndefined(core.takeAnswered())
    expect(core.stats).toEqual({ requests: 2, retransmissions: 0, calls: 1 })
  })
})

describe("session core: eviction and halt", () => {
  const evictionOf = (request: Uint8Array, reason: EvictionReason, view = 0) =>
    buildEviction(request, reason, { view, release: releaseScarab, replica: 0 })

  it("an eviction for this client stops the session: the call in flight and the queued ones fail, and every later one", () => {
    const core = newCore()
    register(core)
    const inFlightCall = call("a", Operation.lookup_accounts)
    const request = sentRequest(step(core, [inFlightCall]))
    const queued = call("b", Operation.create_accounts)
    const outputs = step(core, [queued, { _tag: "Message", message: evictionOf(request, EvictionReason.client_release_too_high) }])
    expect(tags(outputs)).toEqual(["TimerCancel", "Stopped"])
    const stopped = outputs[1] as Extract<Output, { _tag: "Stopped" }>
    expect(stopped.calls).toEqual([inFlightCall, queued])
    assert.strictEqual(stopped.stop, core.stopped)
    expect(stopped.stop._tag === "Evicted" ? [stopped.stop.error._tag, stopped.stop.error.reason] : []).toEqual(["ClientEvicted", "client_release_too_high"])
    assert.isFalse(core.readyToSend)
    const later = call("c", Operation.lookup_accounts)
    expect(step(core, [later])).toEqual([{ _tag: "Stopped", stop: core.stopped, calls: [later] }])
    // A second eviction, a reply and a timeout change nothing now.
    expect(step(core, [{ _tag: "Message", message: evictionOf(request, EvictionReason.no_session) }, { _tag: "Timeout", request: 1 }])).toEqual([])
    expect(core.held()).toEqual([])
  })

  it("an eviction for another client, or from a view older than ours, is ignored", () => {
    const core = newCore()
    register(core)
    const request = sentRequest(step(core, [call("a", Operation.lookup_accounts)]))
    const forOther = evictionOf(request, EvictionReason.no_session, 3)
    u128ToBytes(clientId + 1n, forOther, EvictionLayout.client.offset)
    sealMessage(forOther)
    core.receive(forOther, 0n)
    core.receive(pongIn(3), 0n)
    core.receive(evictionOf(request, EvictionReason.no_session, 2), 0n)
    expect(core.takeOutputs()).toEqual([])
    assert.isUndefined(core.stopped)
    core.receive(evictionOf(request, EvictionReason.no_session, 3), 0n)
    expect(tags(core.takeOutputs())).toEqual(["TimerCancel", "Stopped"])
    assert.strictEqual(core.view, 3, "an eviction does not change the view")
  })

  it("halt: the calls held die with the replica's defect, and every later one; an earlier eviction stands", () => {
    const core = newCore()
    register(core)
    const a = call("a", Operation.lookup_accounts)
    sentRequest(step(core, [a]))
    const b = call("b", Operation.lookup_accounts)
    const defect = new Error("replica stopped")
    const outputs = step(core, [b, { _tag: "Halt", defect }])
    expect(outputs).toEqual([{ _tag: "TimerCancel", request: 1 }, { _tag: "Stopped", stop: { _tag: "Halted", defect }, calls: [a, b] }])
    const c = call("c", Operation.lookup_accounts)
    expect(step(core, [c, { _tag: "Halt", defect: "again" }])).toEqual([{ _tag: "Stopped", stop: { _tag: "Halted", defect }, calls: [c] }])

    const evicted = newCore()
    register(evicted)
    const request = sentRequest(step(evicted, [call("d", Operation.lookup_accounts)]))
    step(evicted, [{ _tag: "Message", message: evictionOf(request, EvictionReason.no_session) }])
    expect(step(evicted, [{ _tag: "Halt", defect }])).toEqual([])
    assert.strictEqual(evicted.stopped?._tag, "Evicted")
  })

  it("halt before the register reply: the register's timer is cancelled and nothing more is sent", () => {
    const core = newCore()
    core.start(0n)
    core.takeOutputs()
    expect(step(core, [{ _tag: "Halt", defect: "gone" }])).toEqual([{ _tag: "TimerCancel", request: 0 }])
    expect(step(core, [{ _tag: "Timeout", request: 0 }])).toEqual([])
  })
})

/** A pong in `view` to a ping of this client. */
function pongIn(view: number, replica = 0): Uint8Array {
  const header = zeroHeader(Command.ping_client)
  header.cluster = cluster
  header.release = releaseScarab
  header.client = clientId
  const ping = buildMessage(header, new Uint8Array(0))
  return buildPongClient(ping, { view, release: releaseScarab, replica })
}

describe("session core: the view and the target replicas (§9.5)", () => {
  it("requests go to the primary of the largest view seen in pongs and accepted replies; a lower view lowers nothing", () => {
    const core = newCore(3)
    core.start(0n)
    const registerRequest = sentRequest(core.takeOutputs())
    core.receive(registerReply(registerRequest, bodySizeMax, 1), 0n)
    core.takeOutputs()
    assert.strictEqual(core.primary, 1)
    const first = step(core, [call("a", Operation.lookup_accounts)])
    assert.strictEqual(transmitted(first)[0]!.primary, 1)
    assert.strictEqual(readU32(sentRequest(first), FrameLayout.view.offset), 1, "the request carries the view it was first sent in")
    core.receive(pongIn(5, 2), 0n)
    core.receive(pongIn(4, 1), 0n)
    assert.strictEqual(core.view, 5)
    // A retransmission is the same bytes (view 1 inside) sent to the current primary.
    const retry = step(core, [{ _tag: "Timeout", request: 1 }])
    expect(retry).toEqual([{ _tag: "Transmit", primary: 2, message: sentRequest(first) }])
    core.receive(replyTo(sentRequest(first), 7), 0n)
    expect(tags(core.takeOutputs())).toEqual(["TimerCancel"])
    assert.strictEqual(core.view, 7)
    const second = step(core, [call("b", Operation.lookup_accounts)])
    expect([transmitted(second)[0]!.primary, readU32(sentRequest(second), FrameLayout.view.offset)]).toEqual([1, 7])
  })

  it("a rejected reply does not raise the view", () => {
    const core = newCore(3)
    register(core)
    const request = sentRequest(step(core, [call("a", Operation.lookup_accounts)]))
    core.receive(broken(replyTo(request, 4), (r) => { r[ReplyLayout.operation.offset] = Operation.lookup_transfers }), 0n)
    assert.strictEqual(core.view, 0)
  })

  it("hedging: the other replica is never the primary, and the offsets 1 … n−1 reach every other replica once", () => {
    for (let replicaCount = 2; replicaCount <= 6; replicaCount++) {
      for (let primary = 0; primary < replicaCount; primary++) {
        const others = Array.from({ length: replicaCount - 1 }, (_, i) => hedgeReplica(primary, replicaCount, i + 1))
        expect(new Set(others).size).toBe(replicaCount - 1)
        assert.notInclude(others, primary)
      }
    }
    expect(() => hedgeReplica(0, 3, 0)).toThrow(/hedge offset/)
    expect(() => hedgeReplica(0, 1, 1)).toThrow()
  })
})

describe("session core: retransmission (§9.6)", () => {
  it("a timeout of the request in flight re-sends its identical bytes; a timeout of an answered request does nothing", () => {
    const core = newCore()
    register(core)
    const request = sentRequest(step(core, [call("a", Operation.create_accounts)]))
    const copy = request.slice()
    for (let i = 0; i < 3; i++) expect(step(core, [{ _tag: "Timeout", request: 1 }])).toEqual([{ _tag: "Transmit", primary: 0, message: request }])
    expect(request).toEqual(copy)
    assert.strictEqual(core.stats.retransmissions, 3)
    expect(step(core, [{ _tag: "Timeout", request: 0 }])).toEqual([]) // the register's stale timeout
    core.receive(replyTo(request), 0n)
    core.takeOutputs()
    expect(step(core, [{ _tag: "Timeout", request: 1 }])).toEqual([])
    expect(() => core.timeout(2)).toThrow(/never sent/)
    expect(core.stats).toEqual({ requests: 2, retransmissions: 3, calls: 1 })
  })

  it("the schedule: 2·rtt + 1 + jitter ticks, the jitter drawn from 0 … min(999, 2^attempt)", () => {
    expect([0, 1, 2, 9, 10, 255].map(retryJitterTicksMax)).toEqual([1, 2, 4, 512, 999, 999])
    expect([0, 1, 999].map(retryWaitMs)).toEqual([610, 620, 10_600])
    expect(() => retryWaitMs(1000)).toThrow()
    expect(() => retryJitterTicksMax(256)).toThrow()
  })
})

describe("session core: pings and what it holds", () => {
  it("a ping carries the client, the session and the timestamp, and is a bare header", () => {
    const core = newCore()
    const before = core.ping(42n)
    register(core)
    const ping = core.ping(77n)
    assert.strictEqual(ping[FrameLayout.command.offset], Command.ping_client)
    assert.strictEqual(ping.length, headerSize)
    assert.strictEqual(u128FromBytes(ping, PingClientLayout.client.offset), clientId)
    assert.strictEqual(ping[PingClientLayout.session.offset], Number(sessionNumber))
    assert.strictEqual(before[PingClientLayout.session.offset], 0)
    assert.strictEqual(ping[PingClientLayout.ping_timestamp_monotonic.offset], 77)
  })

  it("held: the calls in flight, queued, answered and not yet resumed, and refused in outputs not yet taken", () => {
    const core = newCore()
    register(core, batchSizeLimitMin)
    const a = call("a", Operation.lookup_accounts)
    const request = sentRequest(step(core, [a]))
    const b = call("b", Operation.lookup_accounts)
    const tooLarge = call("c", Operation.create_transfers, 30)
    core.apply([tooLarge, b, { _tag: "Message", message: replyTo(request) }], 0n)
    expect(core.held().map((c) => c.name).sort()).toEqual(["a", "b", "c"])
    core.takeOutputs()
    core.takeAnswered()
    expect(core.held().map((c) => c.name)).toEqual(["b"])
  })
})
