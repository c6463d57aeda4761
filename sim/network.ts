/**
 * The simulated network (simulation.md §2) and the MessageBus layer the replica runs on in the
 * simulator. One queue per directed path (client k → replica, replica → client k); every packet
 * has a ready time drawn from the path's own PRNG stream (so packets overtake each other), and
 * at delivery it may be lost, duplicated (re-queued for later) or have a byte flipped. Paths can
 * clog for a while. Nothing is delivered except by `step`, which the simulator's loop calls.
 *
 * Corruption exercises the production receive paths: bytes for the replica go through the same
 * `MessageFramer` the TCP bus uses, and bytes for a client through the one its transport uses
 * (sim/session_client.ts), so a flipped byte is rejected by the checksums and closes the
 * connection, exactly as in production.
 */
import { Effect, Layer, Queue } from "effect"
import { assert } from "../src/assert.ts"
import { ClientConnections } from "../src/actors/client_connections.ts"
import { type BusEvent, MessageBus, type MessageBusShape } from "../src/actors/message_bus.ts"
import { MessageFramer } from "../src/protocol/framing.ts"
import { messageSizeMax } from "../src/protocol/header.ts"
import { Random } from "./random.ts"
import { Trace, type TraceHash } from "./trace.ts"

export interface NetworkOptions {
  readonly delayMinMs: number
  readonly delayMeanMs: number
  readonly lossProbability: number
  readonly replayProbability: number
  readonly corruptProbability: number
  /** Packets queued per path at most; a full path drops a random queued packet. */
  readonly pathCapacity: number
  /** Per path per tick. */
  readonly clogProbability: number
  readonly clogDurationMeanMs: number
}

export const networkHealthy: NetworkOptions = {
  delayMinMs: 0, delayMeanMs: 1, lossProbability: 0, replayProbability: 0, corruptProbability: 0,
  pathCapacity: 64, clogProbability: 0, clogDurationMeanMs: 0
}

/** Bus events waiting for the replica; a delivery finding it full is dropped (a full receive buffer). */
const busEventsMax = 4096

interface Packet {
  readonly path: Path
  readonly connection: number
  readonly bytes: Uint8Array
  readonly ready: number
  readonly seq: number
}

interface Path {
  readonly name: string
  readonly toReplica: boolean
  readonly client: number
  readonly random: Random
  queued: number
  clogUntil: number
}

/** What a simulated client learns from the network. */
export interface ClientEndpoint {
  onMessage(connection: number, bytes: Uint8Array): void
  onClosed(connection: number): void
}

interface Connection {
  readonly id: number
  readonly client: number
  open: boolean
  readonly framer: MessageFramer
}

export class SimNetwork {
  options: NetworkOptions
  private readonly seed: bigint
  private readonly cluster: Uint8Array
  private readonly trace: TraceHash
  private readonly clients: Array<ClientEndpoint> = []
  private readonly paths = new Map<string, Path>()
  private packets: Array<Packet> = []
  private seq = 0
  private connectionNext = 1
  private readonly connections = new Map<number, Connection>()
  /** The bus of the replica process that is up, if any. */
  private bus: SimBus | undefined
  readonly stats = { delivered: 0, lost: 0, duplicated: 0, corrupted: 0, overflowed: 0, rejected: 0 }

  constructor(seed: bigint, cluster: Uint8Array, options: NetworkOptions, trace: TraceHash) {
    this.seed = seed
    this.cluster = cluster
    this.options = options
    this.trace = trace
  }

  addClient(endpoint: ClientEndpoint): number {
    this.clients.push(endpoint)
    return this.clients.length - 1
  }

  /** A new connection from client `client` to the replica (always succeeds; dead ones close on use). */
  connect(client: number): number {
    const id = this.connectionNext++
    this.connections.set(id, { id, client, open: this.bus !== undefined, framer: new MessageFramer(this.cluster) })
    return id
  }

  isOpen(connection: number): boolean {
    return this.connections.get(connection)?.open === true
  }

  /** A client sends a whole message. */
  sendToReplica(connection: number, bytes: Uint8Array, now: number): void {
    const c = this.connections.get(connection)
    assert(c !== undefined, () => "send on an unknown connection")
    this.enqueue(this.path(true, c.client), connection, bytes.slice(), now)
  }

  /**
   * Packets to the replica are held while it is paused (its process does not run, simulation.md
   * §5); they wait in the network like packets on a clogged path.
   */
  replicaPaused = false

  /** The ready time of the next packet `step(now)` would deliver, or undefined. */
  nextReady(now: number): number | undefined {
    let best: number | undefined
    for (const packet of this.packets) {
      if (packet.ready > now || packet.path.clogUntil > now || (this.replicaPaused && packet.path.toReplica)) continue
      if (best === undefined || packet.ready < best) best = packet.ready
    }
    return best
  }

  /** Every packet due by `now` on an unclogged path is delivered by repeated `step`s, earliest first. */
  step(now: number): boolean {
    let best: Packet | undefined
    let bestIndex = -1
    for (let i = 0; i < this.packets.length; i++) {
      const packet = this.packets[i]!
      if (packet.ready > now || packet.path.clogUntil > now || (this.replicaPaused && packet.path.toReplica)) continue
      if (best === undefined || packet.ready < best.ready || (packet.ready === best.ready && packet.seq < best.seq)) {
        best = packet
        bestIndex = i
      }
    }
    if (best === undefined) return false
    this.packets.splice(bestIndex, 1)
    best.path.queued--
    this.deliver(best, now)
    return true
  }

  /** Liveness mode: unclogs every path. */
  unclog(): void {
    for (const path of this.paths.values()) path.clogUntil = 0
  }

  /** Per tick: paths clog and unclog. */
  tick(now: number, tickMs: number): void {
    if (this.options.clogProbability === 0) return
    for (const path of this.paths.values()) {
      if (path.clogUntil <= now && path.random.chance(this.options.clogProbability)) {
        path.clogUntil = now + Math.max(tickMs, Math.round(path.random.exponential(0, this.options.clogDurationMeanMs)))
      }
    }
  }

  /** Packets in flight (for the liveness report). */
  get inFlight(): number {
    return this.packets.length
  }

  // --- the replica side ----------------------------------------------------------------------

  /** Binds a freshly started replica process's bus; connections made before it are dead. */
  attach(bus: SimBus): void {
    assert(this.bus === undefined, () => "two replica processes on one network")
    this.bus = bus
  }

  /** The replica process died: its connections are gone, and their clients learn it. */
  detach(now: number): void {
    const bus = this.bus
    if (bus === undefined) return
    bus.dead = true
    this.bus = undefined
    for (const c of this.connections.values()) {
      if (!c.open) continue
      c.open = false
      this.clients[c.client]!.onClosed(c.id)
    }
    this.trace.add(Trace.closed, now, 0)
  }

  /** The replica's `send`. */
  sendToClient(bus: SimBus, connection: number, message: Uint8Array, now: number): void {
    assert(message.length >= 256 && message.length <= messageSizeMax, () => "send: not one whole message")
    const c = this.connections.get(connection)
    if (bus.dead || c === undefined || !c.open) return
    this.enqueue(this.path(false, c.client), connection, message.slice(), now)
  }

  /** The bus closes a connection (its peer broke the framing): the bus forgets it, the client learns it. */
  closeConnection(bus: SimBus, connection: number): void {
    const c = this.connections.get(connection)
    if (bus.dead || c === undefined || !c.open) return
    c.open = false
    bus.closed(connection)
    this.clients[c.client]!.onClosed(connection)
  }

  /** A client closes its connection (its session ended, or it broke the framing): the bus forgets it. */
  closeFromClient(connection: number): void {
    const c = this.connections.get(connection)
    if (c === undefined || !c.open) return
    c.open = false
    this.bus?.closed(connection)
  }

  private deliver(packet: Packet, now: number): void {
    const { path } = packet
    const c = this.connections.get(packet.connection)!
    if (path.random.chance(this.options.lossProbability)) {
      this.stats.lost++
      this.trace.add(Trace.drop, now, packet.seq)
      return
    }
    if (path.random.chance(this.options.replayProbability)) {
      this.stats.duplicated++
      this.trace.add(Trace.duplicate, now, packet.seq)
      this.enqueue(path, packet.connection, packet.bytes.slice(), now)
    }
    let bytes = packet.bytes
    if (path.random.chance(this.options.corruptProbability)) {
      bytes = bytes.slice()
      bytes[path.random.below(bytes.length)]! ^= 1 << path.random.below(8)
      this.stats.corrupted++
      this.trace.add(Trace.corrupt, now, packet.seq)
    }
    if (!c.open) return
    this.stats.delivered++
    if (path.toReplica) {
      const bus = this.bus
      if (bus === undefined) return
      this.trace.addBytes(Trace.deliverToReplica, bytes, 0, 16)
      const rejection = c.framer.feed(bytes, {
        message: (message) => bus.receive(c.id, message),
        dropped: () => {
          this.stats.rejected++
        }
      })
      if (rejection !== undefined) {
        // The production rule (message_bus.ts): a peer that breaks the framing is disconnected.
        this.stats.rejected++
        this.closeConnection(bus, c.id)
      }
    } else {
      this.trace.addBytes(Trace.deliverToClient, bytes, 0, 16)
      this.clients[c.client]!.onMessage(c.id, bytes)
    }
  }

  private enqueue(path: Path, connection: number, bytes: Uint8Array, now: number): void {
    if (path.queued >= this.options.pathCapacity) {
      // A full path drops a random queued packet to make room (simulation.md §2).
      const queued = this.packets.flatMap((p, i) => (p.path === path ? [i] : []))
      this.packets.splice(queued[path.random.below(queued.length)]!, 1)
      path.queued--
      this.stats.overflowed++
    }
    const delay = Math.round(path.random.exponential(this.options.delayMinMs, Math.max(this.options.delayMinMs, this.options.delayMeanMs)))
    this.packets.push({ path, connection, bytes, ready: now + delay, seq: this.seq++ })
    path.queued++
  }

  private path(toReplica: boolean, client: number): Path {
    const name = toReplica ? `network client ${client} -> replica 0` : `network replica 0 -> client ${client}`
    let path = this.paths.get(name)
    if (path === undefined) {
      path = { name, toReplica, client, random: Random.stream(this.seed, name), queued: 0, clogUntil: 0 }
      this.paths.set(name, path)
    }
    return path
  }
}

/** One replica process's view of the network: the MessageBus it is given. */
export class SimBus {
  dead = false
  /** What the simulator does to each message the replica sends (identity, except for mutants). */
  transform: (message: Uint8Array) => Uint8Array | undefined = (message) => message
  /** Sees every message the live replica sends, before any mutant transforms it. */
  observe: (message: Uint8Array) => void = () => {}
  private readonly events: Queue.Queue<BusEvent>
  private readonly clients = new ClientConnections()
  private readonly network: SimNetwork
  private readonly nowMs: () => number

  constructor(network: SimNetwork, events: Queue.Queue<BusEvent>, nowMs: () => number) {
    this.network = network
    this.events = events
    this.nowMs = nowMs
  }

  /** A verified message on `connection`: the client it names is reached there from now on. */
  receive(connection: number, message: Uint8Array): void {
    if (this.dead) return
    this.clients.learn(connection, message)
    // A full queue drops it, as a full receive buffer would: the client resends.
    Queue.offerUnsafe(this.events, { _tag: "Message", message })
  }

  closed(connection: number): void {
    this.clients.forget(connection)
  }

  shape(): MessageBusShape {
    return {
      events: this.events,
      sendToClient: (client, message) => Effect.sync(() => {
        const connection = this.clients.connectionOf(client)
        if (this.dead || connection === undefined) return
        this.observe(message)
        const sent = this.transform(message)
        if (sent !== undefined) this.network.sendToClient(this, connection, sent, this.nowMs())
      }),
      sendToReplica: (replica) => Effect.sync(() => assert(false, () => `the simulated network runs one replica: no replica ${replica} to reach`)),
      port: 0
    }
  }

  /** A MessageBus layer for one replica process over `network`. */
  static layer(network: SimNetwork, nowMs: () => number, onBus: (bus: SimBus) => void): Layer.Layer<MessageBus> {
    return Layer.effect(MessageBus, Effect.gen(function* () {
      const events = yield* Queue.bounded<BusEvent>(busEventsMax)
      const bus = new SimBus(network, events, nowMs)
      network.attach(bus)
      onBus(bus)
      return MessageBus.of(bus.shape())
    }))
  }
}
