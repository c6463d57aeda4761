/**
 * The simulated network between replica processes (issue 13, "Simulator"): a replica's
 * `sendToReplica` travels the replica → replica path and arrives in the target's bus framed and
 * verified as a client's bytes would be; a corrupted packet is rejected and the link recovers;
 * a paused target holds its packets until it resumes; a down target loses them; a partition
 * loses what crosses the links it cuts, in the directions it cuts.
 */
import { Effect, Option, Queue } from "effect"
import { describe, expect, it } from "vitest"
import type { BusEvent } from "../../src/actors/message_bus.ts"
import { buildMessage, u128ToBytes } from "../../src/protocol/build.ts"
import { Command, PrepareLayout, readU64, zeroHeader } from "../../src/protocol/header.ts"
import { validateMessage } from "../../src/protocol/message.ts"
import { networkHealthy, SimBus, SimNetwork } from "../../sim/network.ts"
import { TraceHash } from "../../sim/trace.ts"

const cluster = 7n
const clusterBytes = u128ToBytes(cluster)
const now = 1000

/** A valid message (a bodiless prepare: the bus verifies, it does not interpret), told apart by its op. */
function message(op: bigint): Uint8Array {
  const header = zeroHeader(Command.prepare)
  header.cluster = cluster
  header.op = op
  const bytes = buildMessage(header, new Uint8Array(0))
  expect(validateMessage(bytes, clusterBytes)).toBeUndefined()
  return bytes
}

/** A network of two replica processes; `start(i)` brings replica i's process up with a bus. */
function cluster2(options = networkHealthy) {
  const network = new SimNetwork(1n, clusterBytes, 2, options, new TraceHash())
  const start = (index: number) => {
    const events = Effect.runSync(Queue.bounded<BusEvent>(16))
    const bus = new SimBus(network, index, events, () => now)
    network.attach(bus)
    return { bus, events, send: (target: number, bytes: Uint8Array) => Effect.runSync(bus.shape().sendToReplica(target, bytes)) }
  }
  return { network, start }
}

const opOf = (bytes: Uint8Array): number => Number(readU64(bytes, PrepareLayout.op.offset))

const received = (events: Queue.Queue<BusEvent>): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (;;) {
    const next = Effect.runSync(Queue.poll(events))
    if (Option.isNone(next)) return out
    out.push(next.value.message)
  }
}

const deliverAll = (network: SimNetwork, at = now + 10_000): number => {
  let steps = 0
  while (network.step(at)) steps++
  return steps
}

describe("simulated network between replicas", () => {
  it("delivers sendToReplica into the target's bus, byte for byte, and to no other", () => {
    const { network, start } = cluster2()
    const [a, b] = [start(0), start(1)]
    const sent = message(1n)
    a.send(1, sent)
    b.send(0, message(2n))
    expect(deliverAll(network)).toBe(2)
    expect(received(b.events)).toEqual([sent])
    expect(received(a.events).map((m) => opOf(m))).toEqual([2])
    expect(network.stats.delivered).toBe(2)
    expect(network.stats.rejected).toBe(0)
  })

  it("rejects a corrupted packet in the target's framer (nothing arrives), and the link carries the next one", () => {
    const { network, start } = cluster2({ ...networkHealthy, corruptProbability: 1 })
    const [a, b] = [start(0), start(1)]
    a.send(1, message(1n))
    deliverAll(network)
    expect(network.stats.corrupted).toBe(1)
    expect(network.stats.rejected).toBe(1)
    expect(received(b.events)).toEqual([])
    // The rejection ended that stream; the buses connect again, so a clean packet gets through.
    network.options = networkHealthy
    const clean = message(2n)
    a.send(1, clean)
    deliverAll(network)
    expect(received(b.events)).toEqual([clean])
  })

  it("holds packets for a paused target until it resumes, then delivers them", () => {
    const { network, start } = cluster2()
    const [a, b] = [start(0), start(1)]
    network.setPaused(1, true)
    a.send(1, message(1n))
    expect(network.nextReady(now + 10_000)).toBeUndefined()
    expect(deliverAll(network)).toBe(0)
    expect(network.inFlight).toBe(1)
    // Packets the other way are not held: only the paused process stops reading.
    b.send(0, message(2n))
    expect(deliverAll(network)).toBe(1)
    network.setPaused(1, false)
    expect(deliverAll(network)).toBe(1)
    expect(received(b.events).map((m) => opOf(m))).toEqual([1])
  })

  it("loses packets to a down target; its next process gets what is sent after it starts", () => {
    const { network, start } = cluster2()
    const a = start(0)
    const old = start(1)
    network.detach(1, now)
    expect(old.bus.dead).toBe(true)
    a.send(1, message(1n))
    expect(deliverAll(network)).toBe(1)
    expect(network.stats.delivered).toBe(0)
    const fresh = start(1)
    a.send(1, message(2n))
    deliverAll(network)
    expect(received(fresh.events).map((m) => opOf(m))).toEqual([2])
    expect(received(old.events)).toEqual([])
  })

  it("a partition loses packets on the links it cuts at delivery, one way only if it says so; healed, the links carry again", () => {
    const { network, start } = cluster2()
    const [a, b] = [start(0), start(1)]
    // Replica 0 can send to 1 but hears nothing from it (the half-open link).
    network.partition((source, target) => source.kind === "replica" && source.index === 1 && target.index === 0)
    expect(network.partitioned).toBe(true)
    a.send(1, message(1n))
    b.send(0, message(2n))
    expect(deliverAll(network)).toBe(2)
    expect(received(b.events).map((m) => opOf(m))).toEqual([1])
    expect(received(a.events)).toEqual([])
    expect(network.stats.partitioned).toBe(1)
    // Packets queued while the link was cut and delivered after it heals get through.
    b.send(0, message(3n))
    network.heal()
    expect(network.partitioned).toBe(false)
    deliverAll(network)
    expect(received(a.events).map((m) => opOf(m))).toEqual([3])
    expect(() => {
      network.partition(() => true)
      network.partition(() => true)
    }).toThrow(/one partition at a time/)
  })

  it("refuses a send to itself or to a replica outside the cluster (defects)", () => {
    const { start } = cluster2()
    const a = start(0)
    expect(() => a.send(0, message(1n))).toThrow(/sends to itself/)
    expect(() => a.send(2, message(1n))).toThrow(/no replica 2/)
  })
})
