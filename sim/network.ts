/**
 * The simulated network (simulation.md §2) and the MessageBus layer each replica process runs on
 * in the simulator. One queue per directed path between two processes (client k → replica i,
 * replica i → client k, replica i → replica j); every packet has a ready time drawn from the
 * path's own PRNG stream (so packets overtake each other), and at delivery it may be lost,
 * duplicated (re-queued for later) or have a byte flipped. Paths can clog for a while, and a
 * partition (sim/partitions.ts decides which, and when) cuts links: a packet on a cut link is lost
 * at delivery, as on a cable pulled out. Nothing is delivered except by `step`, which the
 * simulator's loop calls.
 *
 * Corruption exercises the production receive paths: bytes for the replica go through the same
 * `MessageFramer` the TCP bus uses, and bytes for a client through the one its transport uses
 * (sim/session_client.ts), so a flipped byte is rejected by the checksums and closes the
 * connection, exactly as in production. Bytes from one replica to another are framed the same
 * way by the target's side of their link.
 */
import { Effect, Layer, Queue } from "effect"
import { assert } from "../src/assert.ts"
import { ClientConnections } from "../src/actors/client_connections.ts"
import { type BusEvent, MessageBus, type MessageBusShape } from "../src/actors/message_bus.ts"
import { MessageFramer } from "../src/protocol/framing.ts"
import { messageSizeMax } from "../src/protocol/header.ts"
import { Random } from "./random.ts"
import { atReplica, Trace, type TraceHash } from "./trace.ts"

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

/** A process of the simulated cluster: a client or a replica, by index. */
export interface Process {
  readonly kind: "client" | "replica"
  readonly index: number
}

interface Packet {
  readonly path: Path
  /** The client connection it travels on (client ↔ replica); 0 between replicas, whose buses keep their own connections. */
  readonly connection: number
  readonly bytes: Uint8Array
  readonly ready: number
  readonly seq: number
}

/** One direction between two processes, with its own PRNG stream, queue count and clog. */
interface Path {
  readonly name: string
  readonly source: Process
  readonly target: Process
  readonly random: Random
  queued: number
  clogUntil: number
}

/** What a simulated client learns from the network. */
export interface ClientEndpoint {
  onMessage(connection: number, bytes: Uint8Array): void
  onClosed(connection: number): void
}

/** A client's connection to one replica; the replica's side frames what the client sends. */
interface Connection {
  readonly id: number
  readonly client: number
  readonly replica: number
  open: boolean
  readonly framer: MessageFramer
}

/**
 * The processes are clients 0..k-1 and replicas 0..n-1; every pair that can talk has a path each
 * way (client → replica, replica → client, replica → replica). A path comes into being with its
 * first packet: its PRNG stream is named for its two ends, so the order in which paths appear
 * changes no draw, and a path that never carries a packet draws nothing (not even clogs).
 */
export class SimNetwork {
  options: NetworkOptions
  readonly replicaCount: number
  private readonly seed: bigint
  private readonly cluster: Uint8Array
  private readonly trace: TraceHash
  private readonly clients: Array<ClientEndpoint> = []
  private readonly paths = new Map<string, Path>()
  private packets: Array<Packet> = []
  private seq = 0
  private connectionNext = 1
  private readonly connections = new Map<number, Connection>()
  /** The bus of each replica process that is up. */
  private readonly buses: Array<SimBus | undefined>
  /**
   * Packets to a paused replica are held (its process does not run, simulation.md §5): they wait
   * in the network like packets on a clogged path.
   */
  private readonly paused: Array<boolean>
  /**
   * `links[target][source]`: the target's framer for the bytes replica `source` sends it, as its
   * bus would frame a connection's. A restarted target, or one that rejected the stream, starts
   * a fresh one (the buses reconnect).
   */
  private readonly links: Array<Array<MessageFramer>>
  readonly stats = { delivered: 0, lost: 0, duplicated: 0, corrupted: 0, overflowed: 0, rejected: 0, partitioned: 0 }
  /** The links a partition cuts now (none: every link works): whether a packet from `source` to `target` is lost. */
  private cut: ((source: Process, target: Process) => boolean) | undefined = undefined

  constructor(seed: bigint, cluster: Uint8Array, replicaCount: number, options: NetworkOptions, trace: TraceHash) {
    assert(Number.isSafeInteger(replicaCount) && replicaCount >= 1, () => "a cluster has at least one replica")
    this.seed = seed
    this.cluster = cluster
    this.replicaCount = replicaCount
    this.options = options
    this.trace = trace
    this.buses = Array.from({ length: replicaCount }, () => undefined)
    this.paused = Array.from({ length: replicaCount }, () => false)
    this.links = Array.from({ length: replicaCount }, () => this.framers())
  }

  addClient(endpoint: ClientEndpoint): number {
    this.clients.push(endpoint)
    return this.clients.length - 1
  }

  /** A new connection from client `client` to replica `replica` (always succeeds; dead ones close on use). */
  connect(client: number, replica = 0): number {
    this.assertReplica(replica)
    const id = this.connectionNext++
    this.connections.set(id, { id, client, replica, open: this.buses[replica] !== undefined, framer: new MessageFramer(this.cluster) })
    return id
  }

  isOpen(connection: number): boolean {
    return this.connections.get(connection)?.open === true
  }

  /** A client sends a whole message on its connection. */
  sendToReplica(connection: number, bytes: Uint8Array, now: number): void {
    const c = this.connections.get(connection)
    assert(c !== undefined, () => "send on an unknown connection")
    this.enqueue(this.path(client(c.client), replica(c.replica)), connection, bytes.slice(), now)
  }

  /** Replica `index` pauses or resumes: packets to it wait meanwhile. */
  setPaused(index: number, paused: boolean): void {
    this.assertReplica(index)
    this.paused[index] = paused
  }

  /** The ready time of the next packet `step(now)` would deliver, or undefined. */
  nextReady(now: number): number | undefined {
    let best: number | undefined
    for (const packet of this.packets) {
      if (!this.deliverable(packet, now)) continue
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
      if (!this.deliverable(packet, now)) continue
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

  /** A partition starts: from now on, a packet from `source` to `target` is lost at delivery when `cut` says so. */
  partition(cut: (source: Process, target: Process) => boolean): void {
    assert(this.cut === undefined, () => "one partition at a time: the previous one heals first")
    this.cut = cut
  }

  /** The partition heals: every link works again (packets it already cut stay lost). */
  heal(): void {
    this.cut = undefined
  }

  get partitioned(): boolean {
    return this.cut !== undefined
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

  /** Binds a freshly started replica process's bus; connections made to it before are dead. */
  attach(bus: SimBus): void {
    this.assertReplica(bus.replica)
    assert(this.buses[bus.replica] === undefined, () => `two processes of replica ${bus.replica} on one network`)
    this.buses[bus.replica] = bus
    this.links[bus.replica] = this.framers()
  }

  /**
   * Replica `index`'s process died: its client connections are gone, and their clients learn
   * it. What it sent to other replicas stays in the network (simulation.md §5).
   */
  detach(index: number, now: number): void {
    this.assertReplica(index)
    const bus = this.buses[index]
    if (bus === undefined) return
    bus.dead = true
    this.buses[index] = undefined
    for (const c of this.connections.values()) {
      if (!c.open || c.replica !== index) continue
      c.open = false
      this.clients[c.client]!.onClosed(c.id)
    }
    this.trace.add(Trace.closed, now, index)
  }

  /** A replica's `sendToClient`, on the connection its bus chose. */
  sendToClient(bus: SimBus, connection: number, message: Uint8Array, now: number): void {
    assertWhole(message)
    const c = this.connections.get(connection)
    if (bus.dead || c === undefined || !c.open) return
    assert(c.replica === bus.replica, () => "a replica sends on its own connections")
    this.enqueue(this.path(replica(c.replica), client(c.client)), connection, message.slice(), now)
  }

  /** A replica's `sendToReplica`: on the path to `target`, whatever state the target is in. */
  sendBetweenReplicas(bus: SimBus, target: number, message: Uint8Array, now: number): void {
    assertWhole(message)
    this.assertReplica(target)
    assert(target !== bus.replica, () => `replica ${target} sends to itself`)
    if (bus.dead) return
    this.enqueue(this.path(replica(bus.replica), replica(target)), 0, message.slice(), now)
  }

  /** The bus closes a connection (its peer broke the framing): the bus forgets it, the client learns it. */
  closeConnection(bus: SimBus, connection: number): void {
    const c = this.connections.get(connection)
    if (bus.dead || c === undefined || !c.open) return
    assert(c.replica === bus.replica, () => "a replica closes its own connections")
    c.open = false
    bus.closed(connection)
    this.clients[c.client]!.onClosed(connection)
  }

  /** A client closes its connection (its session ended, or it broke the framing): the bus forgets it. */
  closeFromClient(connection: number): void {
    const c = this.connections.get(connection)
    if (c === undefined || !c.open) return
    c.open = false
    this.buses[c.replica]?.closed(connection)
  }

  private deliverable(packet: Packet, now: number): boolean {
    const { path } = packet
    return packet.ready <= now && path.clogUntil <= now && !(path.target.kind === "replica" && this.paused[path.target.index]!)
  }

  /** A cut link loses the packet; then loss, duplication and corruption, drawn from the path's stream in that order; then the target gets the bytes. */
  private deliver(packet: Packet, now: number): void {
    const { path } = packet
    // Before the path's own draws: a run without partitions draws as it always did.
    if (this.cut !== undefined && this.cut(path.source, path.target)) {
      this.stats.partitioned++
      this.trace.add(Trace.partitionDrop, now, packet.seq)
      return
    }
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
    if (path.source.kind === "replica" && path.target.kind === "replica") return this.deliverBetweenReplicas(path, bytes)
    const c = this.connections.get(packet.connection)!
    if (!c.open) return
    this.stats.delivered++
    if (path.target.kind === "client") {
      this.trace.addBytes(Trace.deliverToClient, bytes, 0, 16)
      this.clients[c.client]!.onMessage(c.id, bytes)
      return
    }
    const bus = this.buses[c.replica]
    if (bus === undefined) return
    this.trace.addBytes(atReplica(Trace.deliverToReplica, c.replica), bytes, 0, 16)
    // The production rule (message_bus.ts): a peer that breaks the framing is disconnected.
    if (!this.frame(c.framer, bytes, (message) => bus.receive(c.id, message))) this.closeConnection(bus, c.id)
  }

  /** A down target loses the packet (no process reads its socket); a live one frames and verifies it as a client's. */
  private deliverBetweenReplicas(path: Path, bytes: Uint8Array): void {
    const target = path.target.index
    const bus = this.buses[target]
    if (bus === undefined) return
    this.stats.delivered++
    this.trace.addBytes(atReplica(Trace.deliverBetweenReplicas, target), bytes, 0, 16)
    // The bus drops the connection that broke the framing, and the peers connect again: a fresh stream.
    if (!this.frame(this.links[target]![path.source.index]!, bytes, (message) => bus.receiveFromReplica(message))) {
      this.links[target]![path.source.index] = new MessageFramer(this.cluster)
    }
  }

  /** Feeds `bytes` to a receiving framer; false if it rejected the stream (a message with a bad header is only dropped). */
  private frame(framer: MessageFramer, bytes: Uint8Array, receive: (message: Uint8Array) => void): boolean {
    const rejection = framer.feed(bytes, {
      message: receive,
      dropped: () => {
        this.stats.rejected++
      }
    })
    if (rejection !== undefined) this.stats.rejected++
    return rejection === undefined
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

  /** The path from `source` to `target`; its name (and so its stream) is `network client 3 -> replica 0` and the like. */
  private path(source: Process, target: Process): Path {
    assert(source.kind === "replica" || target.kind === "replica", () => "clients talk only to replicas")
    const name = `network ${source.kind} ${source.index} -> ${target.kind} ${target.index}`
    let path = this.paths.get(name)
    if (path === undefined) {
      path = { name, source, target, random: Random.stream(this.seed, name), queued: 0, clogUntil: 0 }
      this.paths.set(name, path)
    }
    return path
  }

  private framers(): Array<MessageFramer> {
    return Array.from({ length: this.replicaCount }, () => new MessageFramer(this.cluster))
  }

  private assertReplica(index: number): void {
    assert(Number.isSafeInteger(index) && index >= 0 && index < this.replicaCount, () => `no replica ${index} in a cluster of ${this.replicaCount}`)
  }
}

const client = (index: number): Process => ({ kind: "client", index })
const replica = (index: number): Process => ({ kind: "replica", index })

function assertWhole(message: Uint8Array): void {
  assert(message.length >= 256 && message.length <= messageSizeMax, () => "send: not one whole message")
}

/** One replica process's view of the network: the MessageBus it is given. */
export class SimBus {
  dead = false
  /** What the simulator does to each message the replica sends (identity, except for mutants). */
  transform: (message: Uint8Array) => Uint8Array | undefined = (message) => message
  /** Sees every message the live replica sends (to a client, or to another replica), before any mutant transforms it. */
  observe: (message: Uint8Array, toReplica: boolean) => void = () => {}
  readonly replica: number
  private readonly events: Queue.Queue<BusEvent>
  private readonly clients = new ClientConnections()
  private readonly network: SimNetwork
  private readonly nowMs: () => number

  constructor(network: SimNetwork, replica: number, events: Queue.Queue<BusEvent>, nowMs: () => number) {
    this.network = network
    this.replica = replica
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

  /** A verified message from another replica (a full queue drops it: the protocol resends). */
  receiveFromReplica(message: Uint8Array): void {
    if (this.dead) return
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
        const sent = this.outgoing(message, false)
        if (sent !== undefined) this.network.sendToClient(this, connection, sent, this.nowMs())
      }),
      sendToReplica: (replica, message) => Effect.sync(() => {
        if (this.dead) return
        const sent = this.outgoing(message, true)
        if (sent !== undefined) this.network.sendBetweenReplicas(this, replica, sent, this.nowMs())
      }),
      port: 0
    }
  }

  /** A MessageBus layer for replica `replica`'s process over `network`. */
  static layer(network: SimNetwork, replica: number, nowMs: () => number, onBus: (bus: SimBus) => void): Layer.Layer<MessageBus> {
    return Layer.effect(MessageBus, Effect.gen(function* () {
      const events = yield* Queue.bounded<BusEvent>(busEventsMax)
      const bus = new SimBus(network, replica, events, nowMs)
      network.attach(bus)
      onBus(bus)
      return MessageBus.of(bus.shape())
    }))
  }

  private outgoing(message: Uint8Array, toReplica: boolean): Uint8Array | undefined {
    this.observe(message, toReplica)
    return this.transform(message)
  }
}
