/**
 * The MessageBus over TCP (`node:net`): one listening server, one `MessageFramer` per connection,
 * socket callbacks feeding the bounded `events` queue with `Queue.offerUnsafe`. Nothing here runs
 * an Effect per byte or a fiber per message or per connection: the only fibers are the layer's
 * three helpers, one that moves events past a full queue (and resumes reading), one that writes
 * log lines, one that sweeps silent connections.
 *
 * Peers (vsr.md §12.2, §12.6; TigerBeetle's src/message_bus.zig): the replica addresses clients
 * by id and replicas by index, never connections.
 * - A connection's peer is learned from the messages it delivers (tcp_peer.ts): a client from its
 *   requests and pings, a replica from the `replica` field of its replica-to-replica commands. A
 *   claim of our own index or of one outside the cluster, or a peer that changes, closes the
 *   connection with a warning.
 * - Clients: `ClientConnections` maps each client to the connection it last spoke on.
 * - Replicas (tcp_dialer.ts): of each pair, the replica with the lower index dials; so we dial the
 *   replicas above us (redialling with backoff and jitter whenever the connection is gone) and
 *   accept the ones below us. The bus sends nothing of its own to introduce itself, as
 *   TigerBeetle's: the dialer knows its peer from the start, and the dialed replica learns who
 *   called from the first replica-to-replica message (the replica pings its peers every few
 *   ticks). Until then its `sendToReplica` to the dialer is dropped, as for any peer not connected.
 *   The newest connection that proves to be replica r replaces the one before it.
 * - A cluster of one (the default: `replica` 0, one address) dials nobody and changes nothing.
 *
 * Bounds (vsr.md §12.5), all options with defaults below:
 * - `connectionsMax` (128) accepted connections (the ones we dial, at most `replicasMax` − 1, are
 *   apart). A connection is *silent* until it delivers its first valid message (one that reaches
 *   `events`). When one more arrives at the limit, the oldest silent connection is closed to make
 *   room, so silent sockets, however many, never lock out a client that speaks; only when none is
 *   silent is the newcomer destroyed at once. Both are warnings, at most one line a second each,
 *   counting the others.
 * - Deadlines, checked by one sweep every quarter of the shorter deadline (so a connection is
 *   closed between one and one and a half deadlines after it went quiet, never before): a silent
 *   connection is closed `handshakeTimeoutMs` (45 s) after it was accepted, one that has spoken
 *   after `idleTimeoutMs` (60 s) without a valid message. Both exceed the 30 s at which clients
 *   ping (TigerBeetle's and ours), so a live client is never closed: one that reconnects with
 *   nothing to send speaks with its next ping. While the bus is paused by backpressure no socket
 *   can deliver, so nobody's silence is counted. Connections we dial are not swept: the replica
 *   at the other end applies its own deadlines, and we dial again. Time is Effect's `Clock`.
 * - Receive: at most one message (≤ 1 MiB) assembled per connection, by the framer.
 * - `eventsMax` (256) events in the queue. When an event does not fit, it and every later one go to
 *   an ordered backlog and every socket is paused. A paused socket delivers no more data, so the
 *   backlog holds at most the rest of one read per connection (Node reads ≤ 64 KiB at a time); the
 *   kernel's receive window then pushes back on the peers. Reading resumes once the backlog is in
 *   the queue.
 * - Send (tcp_connection.ts): per connection, a send queue of `sendQueueMax` (2, the client figure
 *   of vsr.md §12.5: one reply and one pong or eviction) messages for a client or an unidentified
 *   peer, `replicaSendQueueMax` (4) for a replica; beyond it, and for a peer with no connection,
 *   a message is dropped (the protocol retries). A peer that does not read fills only its own
 *   queue: sends to the others go on.
 *
 * What closes a connection (one log line at warning level with the reason and the remote address):
 * a bad header or body checksum, an unknown command, a size outside 256..1 MiB, a wrong cluster
 * (wire-protocol.md §2 steps 1–5), a peer claim that cannot hold (above). A message with an
 * invalid header (§2 step 6) is dropped, logged at debug level only, and the connection stays.
 * Peer disconnects, socket errors, dials and drops on a full send queue are logged at debug level.
 */
import * as net from "node:net"
import { Clock, Effect, Latch, Layer, Queue, Random, Schema, type Scope } from "effect"
import { type BusEvent, MessageBus, type MessageBusShape } from "../actors/message_bus.ts"
import { assert } from "../assert.ts"
import { ClientConnections } from "../actors/client_connections.ts"
import { u128ToBytes } from "../protocol/build.ts"
import { replicasMax } from "../protocol/header.ts"
import { assertWholeMessage, Connection, describeRejection, FloodLog, formatAddress } from "./tcp_connection.ts"
import { connectDelayMaxMsDefault, connectDelayMinMsDefault, Dialer } from "./tcp_dialer.ts"
import { type ClusterSeat, describePeer, type Peer, peerAfter } from "./tcp_peer.ts"

export interface ReplicaAddress {
  readonly host: string
  readonly port: number
}

export interface TcpBusOptions {
  /** Where to listen (this replica's own address). */
  readonly host: string
  /** 0 picks a free port (tests); the bus reports it as `port`. */
  readonly port: number
  readonly cluster: bigint
  /** This replica's index in the cluster (default 0). */
  readonly replica?: number | undefined
  /**
   * Every replica's address, by index (default: a cluster of one, this replica at host:port). We
   * dial the entries above `replica`; our own and the ones below are not used (they dial us).
   */
  readonly replicaAddresses?: ReadonlyArray<ReplicaAddress> | undefined
  readonly connectionsMax?: number | undefined
  readonly eventsMax?: number | undefined
  /** The send queue bound of a client's (or an unidentified peer's) connection. */
  readonly sendQueueMax?: number | undefined
  /** The send queue bound of a replica's connection. */
  readonly replicaSendQueueMax?: number | undefined
  /** A connection that has delivered no valid message this long after being accepted is closed. */
  readonly handshakeTimeoutMs?: number | undefined
  /** A connection that has delivered valid messages, but none for this long, is closed. */
  readonly idleTimeoutMs?: number | undefined
  /** The bounds of the delay before each dial of a replica (tcp_dialer.ts). */
  readonly connectDelayMinMs?: number | undefined
  readonly connectDelayMaxMs?: number | undefined
}

/** What the TCP bus tells its tests and operators beyond the MessageBus. */
export interface TcpBusShape extends MessageBusShape {
  /** The connection to `replica`: whether there is one open, its queued messages, and the bytes it holds unsent. */
  readonly replicaLink: (replica: number) => ReplicaLink
  /** The accepted connections open now (at most `connectionsMax`). */
  readonly openConnections: () => number
}

export interface ReplicaLink {
  /** A connection to the replica is established (not merely dialing). */
  readonly connected: boolean
  /** Messages in its send queue (at most `replicaSendQueueMax`). */
  readonly queued: number
  /** Bytes held for it and not yet handed to the kernel: the queue and Node's write buffer. */
  readonly heldBytes: number
}

export const connectionsMaxDefault = 128
export const eventsMaxDefault = 256
export const sendQueueMaxDefault = 2
/** vsr.md §12.5 and TigerBeetle's `connection_send_queue_max_replica`. */
export const replicaSendQueueMaxDefault = 4
/**
 * Clients ping every 30 s (TigerBeetle's `ping_timeout`, src/client/session.ts) and may reconnect
 * with nothing else to say, so a silent connection gets one and a half ping intervals (TigerBeetle's
 * own TTL for peers of unknown type, `message_bus_unknown_time_to_live`, is the same 45 s).
 */
export const handshakeTimeoutMsDefault = 45_000
/** Two ping intervals: one late ping under load does not close a live client. */
export const idleTimeoutMsDefault = 60_000
/** Sweeps per (shorter) deadline: a connection outlives its deadline by at most this fraction of it, doubled. */
export const sweepsPerTimeout = 4
/** Refused, evicted and timed-out connections are logged at most once per this interval each (with a count of the others). */
export const refusalLogIntervalMs = 1000
/** Log lines waiting for the log fiber; beyond it lines are dropped (a flood of bad peers must not grow memory). */
export const logLinesMax = 1024

/** The listening socket could not be opened (address in use, permission, bad address). */
export class MessageBusListenError extends Schema.TaggedError<MessageBusListenError>()("MessageBusListenError", {
  host: Schema.String,
  port: Schema.Number,
  code: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot listen on ${formatAddress(this.host, this.port)} (${this.code}): ${this.reason}`
  }
}

/**
 * The MessageBus over TCP, listening on `options.host:options.port` for the layer's lifetime and
 * dialing the replicas above `options.replica`; closing the layer closes the listener and every
 * connection. Fails with `MessageBusListenError` (naming the address) when the port cannot be bound.
 */
export function layerMessageBusTcp(options: TcpBusOptions): Layer.Layer<MessageBus, MessageBusListenError> {
  return Layer.effect(MessageBus, makeTcpBus(options))
}

/** The same as a scoped effect, for callers that manage the scope themselves. */
export const makeTcpBus = Effect.fnUntraced(function* (
  options: TcpBusOptions
): Effect.fn.Return<TcpBusShape, MessageBusListenError, Scope.Scope> {
  const limits = checkedLimits(options)
  const events = yield* Queue.bounded<BusEvent>(limits.eventsMax)
  const logs = yield* Queue.dropping<LogLine>(logLinesMax)
  const backlogReady = yield* Latch.make(false)
  const clock = yield* Clock.Clock
  const random = yield* Random.Random
  const nowMs = () => Number(clock.monotonicTimeNanosUnsafe() / 1_000_000n)
  const bus = new TcpBus(u128ToBytes(options.cluster), limits, { events, logs, backlogReady, nowMs, random: () => random.nextDoubleUnsafe() })

  yield* Effect.forkScoped(Effect.forever(writeLogs(logs)))
  yield* Effect.forkScoped(Effect.forever(moveBacklog(bus, events, backlogReady)))
  const sweepIntervalMs = Math.max(1, Math.floor(Math.min(limits.handshakeTimeoutMs, limits.idleTimeoutMs) / sweepsPerTimeout))
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(sweepIntervalMs), Effect.sync(() => bus.sweep()))))
  // Finalizers run in reverse: the server and its connections close first, then the queue, then
  // the lines logged meanwhile are written before the log fiber stops.
  yield* Effect.addFinalizer(() => Effect.flatMap(Queue.clear(logs), writeLines))
  yield* Effect.addFinalizer(() => Queue.shutdown(events))
  const port = yield* Effect.acquireRelease(listen(bus, options.host, options.port), () => bus.shutdown())
  bus.dialer.start()
  assert(port >= 0, () => `listening on port ${port}`)
  assert(limits.seat.replica < limits.seat.replicaCount, () => "the bus's seat is in the cluster")

  return {
    events,
    sendToClient: (client, message) => Effect.sync(() => bus.sendToClient(client, message)),
    sendToReplica: (replica, message) => Effect.sync(() => bus.sendToReplica(replica, message)),
    replicaLink: (replica) => bus.replicaLink(replica),
    openConnections: () => bus.connections.size,
    port
  }
})

// --- the bus ------------------------------------------------------------------------------------

interface Limits {
  readonly seat: ClusterSeat
  readonly replicaAddresses: ReadonlyArray<ReplicaAddress>
  readonly connectionsMax: number
  readonly eventsMax: number
  readonly sendQueueMax: number
  readonly replicaSendQueueMax: number
  readonly handshakeTimeoutMs: number
  readonly idleTimeoutMs: number
  readonly connectDelayMinMs: number
  readonly connectDelayMaxMs: number
}

function checkedLimits(options: TcpBusOptions): Limits {
  const replicaAddresses = options.replicaAddresses ?? [{ host: options.host, port: options.port }]
  const limits: Limits = {
    seat: { replica: options.replica ?? 0, replicaCount: replicaAddresses.length },
    replicaAddresses,
    connectionsMax: options.connectionsMax ?? connectionsMaxDefault,
    eventsMax: options.eventsMax ?? eventsMaxDefault,
    sendQueueMax: options.sendQueueMax ?? sendQueueMaxDefault,
    replicaSendQueueMax: options.replicaSendQueueMax ?? replicaSendQueueMaxDefault,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? handshakeTimeoutMsDefault,
    idleTimeoutMs: options.idleTimeoutMs ?? idleTimeoutMsDefault,
    connectDelayMinMs: options.connectDelayMinMs ?? connectDelayMinMsDefault,
    connectDelayMaxMs: options.connectDelayMaxMs ?? connectDelayMaxMsDefault
  }
  assert(limits.seat.replicaCount >= 1, () => "a cluster has at least one replica address")
  assert(limits.seat.replicaCount <= replicasMax, () => `a cluster has at most ${replicasMax} replicas, not ${limits.seat.replicaCount}`)
  assert(Number.isInteger(limits.seat.replica), () => "replica must be an integer")
  assert(limits.seat.replica >= 0, () => "replica must not be negative")
  assert(limits.seat.replica < limits.seat.replicaCount, () => `replica ${limits.seat.replica} is outside a cluster of ${limits.seat.replicaCount}`)
  for (const [name, value] of [["connectionsMax", limits.connectionsMax], ["eventsMax", limits.eventsMax],
    ["sendQueueMax", limits.sendQueueMax], ["replicaSendQueueMax", limits.replicaSendQueueMax]] as const) {
    assert(Number.isInteger(value), () => `${name} must be an integer`)
    assert(value >= 1, () => `${name} must be positive`)
  }
  for (const [name, value] of [["handshakeTimeoutMs", limits.handshakeTimeoutMs], ["idleTimeoutMs", limits.idleTimeoutMs],
    ["connectDelayMinMs", limits.connectDelayMinMs]] as const) {
    assert(Number.isFinite(value), () => `${name} must be finite`)
    assert(value > 0, () => `${name} must be positive`)
  }
  assert(limits.connectDelayMaxMs > limits.connectDelayMinMs, () => "connectDelayMaxMs must exceed connectDelayMinMs")
  for (const { host, port } of replicaAddresses.slice(limits.seat.replica + 1)) {
    assert(Number.isInteger(port), () => `the port of the replica at ${host} must be an integer`)
    assert(port >= 1, () => `the replica at ${host} has port ${port}: a replica we dial needs a port in 1..65535`)
    assert(port <= 65535, () => `the replica at ${host} has port ${port}: a replica we dial needs a port in 1..65535`)
  }
  return limits
}

type LogLine = { readonly level: "warning" | "debug"; readonly text: string }

interface BusParts {
  readonly events: Queue.Queue<BusEvent>
  readonly logs: Queue.Queue<LogLine>
  readonly backlogReady: Latch.Latch
  /** Monotonic milliseconds from the layer's `Clock`. */
  readonly nowMs: () => number
  /** Uniform in [0, 1), from the layer's `Random`. */
  readonly random: () => number
}

/**
 * All bus state, touched only from Node's socket callbacks, timers and the send calls
 * (synchronous code on the one JavaScript thread), so it needs no locking.
 */
class TcpBus {
  readonly server: net.Server
  /** The accepted connections (bounded by `connectionsMax`). */
  readonly connections = new Map<number, Connection>()
  /** The connections we dialed, at most one per replica above us. */
  readonly dialed = new Set<Connection>()
  /** The connections that have not spoken yet, oldest accepted first: the candidates for eviction. */
  readonly silent = new Set<Connection>()
  /** The connection that reaches each replica, by index (never our own). */
  readonly replicas: Array<Connection | undefined>
  readonly clients = new ClientConnections()
  readonly dialer: Dialer
  /** Events that did not fit in the queue, oldest first; while non-empty every socket is paused. */
  readonly backlog: Array<BusEvent> = []
  backlogHead = 0
  paused = false
  stopped = false
  readonly nowMs: () => number
  private readonly refusals: FloodLog
  private readonly evictions: FloodLog
  private readonly timeouts: FloodLog
  private readonly cluster: Uint8Array
  private readonly limits: Limits
  private readonly parts: BusParts

  constructor(cluster: Uint8Array, limits: Limits, parts: BusParts) {
    this.cluster = cluster
    this.limits = limits
    this.parts = parts
    this.nowMs = parts.nowMs
    const warn = (text: string) => this.log("warning", text)
    this.refusals = new FloodLog(parts.nowMs, warn, refusalLogIntervalMs)
    this.evictions = new FloodLog(parts.nowMs, warn, refusalLogIntervalMs)
    this.timeouts = new FloodLog(parts.nowMs, warn, refusalLogIntervalMs)
    this.replicas = Array.from({ length: limits.seat.replicaCount }, () => undefined)
    this.dialer = new Dialer({
      ...limits.seat, delayMinMs: limits.connectDelayMinMs, delayMaxMs: limits.connectDelayMaxMs, random: parts.random,
      dial: (replica) => this.dial(replica)
    })
    this.server = net.createServer({ noDelay: true, keepAlive: true }, (socket) => this.accept(socket))
    assert(this.replicas.length === limits.seat.replicaCount, () => "one slot per replica")
    assert(this.connections.size === 0, () => "a new bus has no connections")
  }

  get backlogSize(): number {
    return this.backlog.length - this.backlogHead
  }

  // --- connections ---

  private accept(socket: net.Socket): void {
    assert(this.connections.size <= this.limits.connectionsMax, () => `${this.connections.size} connections open`)
    if (this.stopped) {
      socket.destroy()
      return
    }
    const remote = formatAddress(socket.remoteAddress ?? "?", socket.remotePort ?? 0)
    if (this.connections.size >= this.limits.connectionsMax && !this.evictSilent()) {
      this.refusals.note(() => `refused a connection from ${remote}: ` +
        `${this.limits.connectionsMax} connections open (connectionsMax) and none of them silent`)
      socket.on("error", () => {})
      socket.destroy()
      return
    }
    assert(this.connections.size < this.limits.connectionsMax, () => `accept: ${this.connections.size} connections open`)
    const connection = this.open(socket, remote, undefined)
    this.connections.set(connection.id, connection)
    this.silent.add(connection)
  }

  /** Dials replica `replica` (the dialer's timer fired), unless a connection to it exists. */
  private dial(replica: number): void {
    assert(this.dialer.dials(replica), () => `dial: replica ${this.limits.seat.replica} does not dial replica ${replica}`)
    assert(this.dialed.size < this.limits.seat.replicaCount, () => `${this.dialed.size} dialed connections`)
    if (this.stopped || this.replicas[replica] !== undefined) return
    const address = this.limits.replicaAddresses[replica]
    const socket = net.connect({ host: address.host, port: address.port, noDelay: true, keepAlive: true })
    const connection = this.open(socket, `replica ${replica} at ${formatAddress(address.host, address.port)}`, replica)
    this.dialed.add(connection)
    this.replicas[replica] = connection
    socket.on("connect", () => this.log("debug", `connected to ${connection.remote} (connection ${connection.id})`))
  }

  /** A connection for `socket`, wired to its callbacks. */
  private open(socket: net.Socket, remote: string, dialed: number | undefined): Connection {
    assert(!this.stopped, () => "a stopped bus opens no connection")
    const connection = new Connection(socket, this.cluster, remote, {
      openedMs: this.nowMs(),
      dialed,
      sendQueueMax: dialed === undefined ? this.limits.sendQueueMax : this.limits.replicaSendQueueMax,
      sink: (connection) => ({
        message: (message) => this.deliver(connection, message),
        dropped: (_message, rejection) => this.log("debug", `dropped a message on connection ${connection.id}: ${describeRejection(rejection)}`)
      })
    })
    socket.setNoDelay(true)
    if (this.paused) socket.pause()
    socket.on("data", (chunk: Buffer) => this.receive(connection, chunk))
    socket.on("drain", () => connection.flush())
    socket.on("error", (error: NodeJS.ErrnoException) =>
      this.log("debug", `connection ${connection.id} with ${connection.remote}: ${error.code ?? error.message}`))
    socket.on("close", () => this.closed(connection))
    assert(connection.state === "open", () => "a new connection is open")
    return connection
  }

  /**
   * At the limit, makes room by closing the oldest connection that has not spoken (its peer has
   * had the longest to say something); false when every open connection has spoken.
   */
  private evictSilent(): boolean {
    assert(this.connections.size >= this.limits.connectionsMax, () => "evicting below the limit")
    assert(this.silent.size <= this.connections.size, () => `${this.silent.size} silent of ${this.connections.size} connections`)
    for (const connection of this.silent) {
      if (connection.state !== "open") continue
      this.evictions.note(() => `closed connection ${connection.id} from ${connection.remote} to make room for a new one: ` +
        `${this.limits.connectionsMax} connections open (connectionsMax) and it has sent no valid message`)
      this.drop(connection)
      return true
    }
    return false
  }

  private closed(connection: Connection): void {
    assert(connection.dialed === undefined || !this.connections.has(connection.id), () => "a dialed connection is among the accepted")
    if (connection.state === "closed") return
    const partial = connection.framer.bufferedBytes
    if (partial > 0 && connection.framer.failure === undefined) {
      this.log("debug", `connection ${connection.id} with ${connection.remote} closed with ${partial} bytes of an incomplete message`)
    }
    connection.state = "closed"
    connection.sendQueue.length = 0
    this.connections.delete(connection.id)
    this.dialed.delete(connection)
    this.silent.delete(connection)
    this.clients.forget(connection.id)
    const peer = connection.peer
    if (peer._tag === "Replica" && this.replicas[peer.replica] === connection) {
      this.replicas[peer.replica] = undefined
      if (this.dialer.dials(peer.replica)) this.dialer.schedule(peer.replica)
    }
    assert(this.silent.size <= this.connections.size, () => `${this.silent.size} silent of ${this.connections.size} connections`)
  }

  /**
   * Destroys a connection and frees its slot now rather than at the socket's "close" event, so
   * that an eviction makes room for the newcomer at once; that event then finds it closed.
   */
  private drop(connection: Connection): void {
    assert(connection.state !== "closed", () => "dropping a closed connection")
    connection.state = "closing"
    connection.socket.destroy()
    this.closed(connection)
    assert(!this.connections.has(connection.id), () => "a dropped connection keeps its slot")
  }

  /**
   * Closes every open accepted connection silent for longer than its deadline. While the bus is
   * paused by backpressure no socket can deliver, so every connection's quiet time starts over.
   */
  sweep(): void {
    assert(this.connections.size <= this.limits.connectionsMax, () => `${this.connections.size} connections open`)
    const now = this.nowMs()
    for (const connection of this.connections.values()) {
      if (connection.state !== "open") continue
      if (this.paused || connection.spokeSinceSweep) {
        connection.spokeSinceSweep = false
        connection.quietSinceMs = now
        continue
      }
      const [timeoutMs, bound] = connection.spoken
        ? [this.limits.idleTimeoutMs, "idleTimeoutMs"]
        : [this.limits.handshakeTimeoutMs, "handshakeTimeoutMs"]
      const quietMs = now - connection.quietSinceMs
      if (quietMs < timeoutMs) continue
      const silence = connection.spoken ? "no valid message" : "no valid message since it was accepted,"
      this.timeouts.note(() => `closed connection ${connection.id} from ${connection.remote}: ` +
        `${silence} quiet for ${quietMs} ms (${bound} is ${timeoutMs})`)
      this.drop(connection) // deleting the current entry does not disturb the Map's iteration
    }
    assert(this.silent.size <= this.connections.size, () => `${this.silent.size} silent of ${this.connections.size} connections`)
  }

  // --- receiving ---

  private receive(connection: Connection, chunk: Buffer): void {
    assert(chunk.byteLength > 0, () => "an empty read")
    if (connection.state !== "open") return
    if (connection.dialed !== undefined && !connection.spoken) this.dialer.heard(connection.dialed)
    // Consumers get plain Uint8Array views (a Buffer's `slice` shares memory, a trap for them).
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    const rejection = connection.framer.feed(bytes, connection.sink)
    if (rejection === undefined || connection.state !== "open") return
    this.log("warning", `closing connection ${connection.id} with ${connection.remote}: ${describeRejection(rejection)}`)
    connection.state = "closing"
    connection.socket.destroy()
    assert(connection.framer.failure !== undefined, () => "a rejection is sticky")
  }

  /**
   * A valid message: learns the peer from it (closing the connection when the claim cannot hold),
   * then hands it on. The connection has spoken (it is no longer evictable nor silent for the sweep).
   */
  private deliver(connection: Connection, message: Uint8Array): void {
    assert(message.length > 0, () => "an empty message")
    // The framer goes on through the chunk after a claim closed the connection: the rest is not heard.
    if (connection.state !== "open") return
    const peer = peerAfter(connection.peer, message, this.limits.seat)
    if (typeof peer === "string") {
      this.log("warning", `closing connection ${connection.id} with ${connection.remote} (${describePeer(connection.peer)}): ${peer}`)
      this.drop(connection)
      return
    }
    if (peer !== connection.peer) this.identify(connection, peer)
    if (peer._tag === "Client") this.clients.learn(connection.id, message)
    connection.spokeSinceSweep = true
    if (!connection.spoken) {
      connection.spoken = true
      this.silent.delete(connection)
    }
    this.emit({ _tag: "Message", message })
    assert(connection.peer === peer, () => "the connection's peer is the one its message proved")
  }

  /** The connection proved to be `peer`: a replica's newest connection replaces the one before it. */
  private identify(connection: Connection, peer: Peer): void {
    assert(connection.state === "open", () => "identifying a closed connection")
    assert(peer._tag !== "Unknown", () => "a message identifies a peer or tells nothing")
    if (peer._tag === "Replica") {
      this.clients.forget(connection.id) // it may have forwarded a client's request first
      const previous = this.replicas[peer.replica]
      if (previous !== undefined && previous !== connection) {
        this.log("debug", `connection ${connection.id} from ${connection.remote} is replica ${peer.replica}: closing its older connection ${previous.id}`)
        this.drop(previous)
      }
      this.replicas[peer.replica] = connection
      connection.sendQueueMax = this.limits.replicaSendQueueMax
    }
    connection.peer = peer
    assert(peer._tag !== "Replica" || this.replicas[peer.replica] === connection, () => "a replica is reached on its newest connection")
  }

  /** Events keep arrival order: once one waits in the backlog, every later one queues behind it. */
  private emit(event: BusEvent): void {
    assert(this.backlogHead <= this.backlog.length, () => "the backlog's head is past its end")
    if (this.stopped) return
    if (this.backlogSize === 0 && Queue.offerUnsafe(this.parts.events, event)) return
    this.backlog.push(event)
    if (!this.paused) {
      this.paused = true
      this.forEachConnection((connection) => connection.socket.pause())
    }
    this.parts.backlogReady.openUnsafe()
    assert(this.paused, () => "a backlog pauses every socket")
  }

  /** Called by the backlog fiber once the backlog is empty. */
  resumeReading(): void {
    assert(this.backlogSize === 0, () => "resuming with events still in the backlog")
    this.backlog.length = 0
    this.backlogHead = 0
    if (!this.paused || this.stopped) return
    this.paused = false
    this.forEachConnection((connection) => connection.socket.resume())
    assert(!this.paused, () => "reading resumed")
  }

  // --- sending ---

  sendToClient(client: bigint, message: Uint8Array): void {
    assertWholeMessage(message)
    assert(client > 0n, () => "a client id is never zero")
    assert(client < 1n << 128n, () => "a client id is a u128")
    const id = this.clients.connectionOf(client)
    const connection = id === undefined ? undefined : this.connections.get(id)
    if (connection === undefined || connection.state !== "open") return
    if (!connection.enqueue(message)) {
      this.log("debug", `dropped a message to client ${client}: send queue full (${connection.sendQueueMax})`)
    }
  }

  sendToReplica(replica: number, message: Uint8Array): void {
    assertWholeMessage(message)
    assert(Number.isInteger(replica), () => `replica ${replica} is not an index`)
    assert(replica >= 0, () => `replica ${replica} is negative`)
    assert(replica < this.limits.seat.replicaCount, () => `replica ${replica} is outside a cluster of ${this.limits.seat.replicaCount}`)
    // A replica's messages to itself never reach the bus (vsr.md §12.1, the loopback queue).
    assert(replica !== this.limits.seat.replica, () => `replica ${replica} sends to itself through the bus`)
    const connection = this.replicas[replica]
    if (connection === undefined || connection.state !== "open") return
    if (!connection.enqueue(message)) {
      this.log("debug", `dropped a message to replica ${replica}: send queue full (${connection.sendQueueMax})`)
    }
  }

  replicaLink(replica: number): ReplicaLink {
    assert(replica >= 0, () => `replica ${replica} is negative`)
    assert(replica < this.limits.seat.replicaCount, () => `replica ${replica} is outside a cluster of ${this.limits.seat.replicaCount}`)
    const connection = this.replicas[replica]
    if (connection === undefined || connection.state !== "open") return { connected: false, queued: 0, heldBytes: 0 }
    return { connected: !connection.socket.connecting, queued: connection.sendQueue.length, heldBytes: connection.heldBytes }
  }

  // --- lifetime ---

  log(level: LogLine["level"], text: string): void {
    Queue.offerUnsafe(this.parts.logs, { level, text })
  }

  private forEachConnection(f: (connection: Connection) => void): void {
    assert(this.dialed.size < this.limits.seat.replicaCount, () => `${this.dialed.size} dialed connections`)
    assert(this.connections.size <= this.limits.connectionsMax, () => `${this.connections.size} connections open`)
    for (const connection of this.connections.values()) f(connection)
    for (const connection of this.dialed) f(connection)
  }

  /** Stops dialing and listening, destroys every connection, waits for the server to close. */
  shutdown(): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      this.stopped = true
      this.dialer.stop()
      this.server.close(() => resume(Effect.void))
      this.forEachConnection((connection) => connection.socket.destroy())
      assert(this.stopped, () => "the bus stopped")
      assert(this.backlogSize >= 0, () => "the backlog's head is past its end")
    })
  }
}

// --- the layer's fibers -----------------------------------------------------------------------

const listen = (bus: TcpBus, host: string, port: number) =>
  Effect.callback<number, MessageBusListenError>((resume) => {
    const server = bus.server
    assert(!server.listening, () => "the bus listens once")
    assert(!bus.stopped, () => "a stopped bus does not listen")
    const failed = (error: NodeJS.ErrnoException) => {
      assert(!server.listening, () => "a listener that failed is not listening")
      assert(error instanceof Error, () => "the listener fails with an error")
      server.off("listening", listening)
      resume(Effect.fail(new MessageBusListenError({
        host, port, code: error.code ?? "UNKNOWN", reason: listenReasons[error.code ?? ""] ?? error.message
      })))
    }
    const listening = () => {
      assert(server.listening, () => "listening")
      assert(!bus.stopped, () => "a stopped bus does not listen")
      server.off("error", failed)
      server.on("error", (error) => bus.log("warning", `listener on ${formatAddress(host, port)}: ${error.message}`))
      const address = server.address()
      resume(typeof address === "object" && address !== null ? Effect.succeed(address.port) : Effect.succeed(port))
    }
    server.once("error", failed)
    server.once("listening", listening)
    try {
      server.listen({ host, port })
    } catch (error) {
      // An invalid port or host throws synchronously instead of emitting "error".
      failed(error as NodeJS.ErrnoException)
    }
    return Effect.sync(() => server.close())
  })

const listenReasons: Readonly<Record<string, string>> = {
  EADDRINUSE: "address already in use",
  EACCES: "permission denied",
  EADDRNOTAVAIL: "address not available on this machine",
  ENOTFOUND: "host not found"
}

/** Waits for events stuck behind a full queue, moves them in order, then lets the sockets read again. */
const moveBacklog = Effect.fnUntraced(function* (bus: TcpBus, events: Queue.Queue<BusEvent>, backlogReady: Latch.Latch) {
  yield* backlogReady.await
  backlogReady.closeUnsafe()
  assert(bus.backlogSize >= 0, () => "the backlog's head is past its end")
  assert(bus.backlogSize === 0 || bus.paused || bus.stopped, () => "a backlog without paused sockets")
  while (bus.backlogSize > 0) {
    // Offer before removing: while this waits, `emit` must still see a non-empty backlog.
    const event = bus.backlog[bus.backlogHead]
    if (!Queue.offerUnsafe(events, event)) yield* Queue.offer(events, event)
    bus.backlog[bus.backlogHead++] = undefined as unknown as BusEvent
  }
  bus.resumeReading()
})

const writeLogs = (logs: Queue.Queue<LogLine>) => Effect.flatMap(Queue.takeAll(logs), writeLines)

const writeLines = Effect.fnUntraced(function* (lines: ReadonlyArray<LogLine>) {
  assert(lines.length <= logLinesMax, () => `${lines.length} log lines, over their bound ${logLinesMax}`)
  for (const line of lines) {
    assert(line.text.length > 0, () => "an empty log line")
    if (line.level === "warning") yield* Effect.logWarning(`message bus: ${line.text}`)
    else yield* Effect.logDebug(`message bus: ${line.text}`)
  }
})
