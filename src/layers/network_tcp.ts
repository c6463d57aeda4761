/**
 * The MessageBus over TCP (`node:net`): one listening server, one `MessageFramer` per connection,
 * socket callbacks feeding the bounded `events` queue with `Queue.offerUnsafe`. Nothing here runs
 * an Effect per byte or a fiber per message or per connection: the only fibers are the layer's
 * three helpers, one that moves events past a full queue (and resumes reading), one that writes
 * log lines, one that sweeps silent connections.
 *
 * Bounds (vsr.md §12.5), all options with defaults below:
 * - `connectionsMax` (128) open connections. A connection is *silent* until it delivers its first
 *   valid message (one that reaches `events`). When one more arrives at the limit, the oldest
 *   silent connection is closed to make room, so silent sockets, however many, never lock out a
 *   client that speaks; only when none is silent is the newcomer destroyed at once. Both are
 *   warnings, at most one line a second each, counting the others.
 * - Deadlines, checked by one sweep every quarter of the shorter deadline (so a connection is
 *   closed between one and one and a half deadlines after it went quiet, never before): a silent
 *   connection is closed `handshakeTimeoutMs` (45 s) after it was accepted, one that has spoken
 *   after `idleTimeoutMs` (60 s) without a valid message. Both exceed the 30 s at which clients
 *   ping (TigerBeetle's and ours), so a live client is never closed: one that reconnects with
 *   nothing to send speaks with its next ping. While the bus is paused by backpressure no socket
 *   can deliver, so nobody's silence is counted. Time is Effect's `Clock` (tests use TestClock).
 * - Receive: at most one message (≤ 1 MiB) assembled per connection, by the framer.
 * - `eventsMax` (256) events in the queue. When an event does not fit, it and every later one go to
 *   an ordered backlog and every socket is paused. A paused socket delivers no more data, so the
 *   backlog holds at most the rest of one read per connection (Node reads ≤ 64 KiB at a time); the
 *   kernel's receive window then pushes back on the peers. Reading resumes once the backlog is in
 *   the queue.
 * - Send: a message is copied and written at once when the socket takes more (`write` has not
 *   returned false); otherwise it waits in the connection's send queue of `sendQueueMax` (2, the
 *   client figure of vsr.md §12.5: one reply and one pong or eviction) messages, and a message
 *   beyond that is dropped (the protocol retries). So at most `sendQueueMax` + 1 messages plus
 *   16 KiB of Node's write buffer are held per connection. Node coalesces the writes buffered
 *   while a write is in flight into one `writev`, so there is no batching of our own.
 *
 * What closes a connection (one log line at warning level with the reason and the remote address):
 * a bad header or body checksum, an unknown command, a size outside 256..1 MiB, a wrong cluster
 * (wire-protocol.md §2 steps 1–5). A message with an invalid header (§2 step 6) is dropped, logged
 * at debug level only, and the connection stays. Peer disconnects, socket errors and drops on a
 * full send queue are logged at debug level.
 */
import * as net from "node:net"
import { Clock, Effect, Latch, Layer, Queue, Schema, type Scope } from "effect"
// A cycle with message_bus.ts (its `layerTcp` calls `makeTcpBus`), safe because neither module
// touches the other's exports while it is being evaluated: only inside functions.
import { type BusEvent, MessageBus, type MessageBusShape } from "../actors/message_bus.ts"
import { assert, unreachable } from "../assert.ts"
import { u128ToBytes } from "../protocol/build.ts"
import { type FrameSink, MessageFramer } from "../protocol/framing.ts"
import { FrameLayout, headerSize, messageSizeMax, readU32 } from "../protocol/header.ts"
import type { Rejection } from "../protocol/message.ts"

export interface TcpBusOptions {
  readonly host: string
  /** 0 picks a free port (tests); the bus reports it as `port`. */
  readonly port: number
  readonly cluster: bigint
  readonly connectionsMax?: number | undefined
  readonly eventsMax?: number | undefined
  readonly sendQueueMax?: number | undefined
  /** After `close`, how long a peer that does not read may hold the socket before it is destroyed. */
  readonly closeLingerMs?: number | undefined
  /** A connection that has delivered no valid message this long after being accepted is closed. */
  readonly handshakeTimeoutMs?: number | undefined
  /** A connection that has delivered valid messages, but none for this long, is closed. */
  readonly idleTimeoutMs?: number | undefined
}

export const connectionsMaxDefault = 128
export const eventsMaxDefault = 256
export const sendQueueMaxDefault = 2
export const closeLingerMsDefault = 1000
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
 * The MessageBus over TCP, listening on `options.host:options.port` for the layer's lifetime;
 * closing the layer closes the listener and every connection. Fails with `MessageBusListenError`
 * (naming the address) when the port cannot be bound.
 */
export function layerMessageBusTcp(options: TcpBusOptions): Layer.Layer<MessageBus, MessageBusListenError> {
  return Layer.effect(MessageBus, makeTcpBus(options))
}

/** The same as a scoped effect, for callers that manage the scope themselves. */
export const makeTcpBus = Effect.fnUntraced(function* (
  options: TcpBusOptions
): Effect.fn.Return<MessageBusShape, MessageBusListenError, Scope.Scope> {
  const limits = checkedLimits(options)
  const events = yield* Queue.bounded<BusEvent>(limits.eventsMax)
  const logs = yield* Queue.dropping<LogLine>(logLinesMax)
  const backlogReady = yield* Latch.make(false)
  const clock = yield* Clock.Clock
  const nowMs = () => Number(clock.monotonicTimeNanosUnsafe() / 1_000_000n)
  const bus = new TcpBus(u128ToBytes(options.cluster), limits, events, logs, backlogReady, nowMs)

  yield* Effect.forkScoped(Effect.forever(writeLogs(logs)))
  yield* Effect.forkScoped(Effect.forever(moveBacklog(bus, events, backlogReady)))
  const sweepIntervalMs = Math.max(1, Math.floor(Math.min(limits.handshakeTimeoutMs, limits.idleTimeoutMs) / sweepsPerTimeout))
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(sweepIntervalMs), Effect.sync(() => bus.sweep()))))
  // Finalizers run in reverse: the server and its connections close first, then the queue, then
  // the lines logged meanwhile are written before the log fiber stops.
  yield* Effect.addFinalizer(() => Effect.flatMap(Queue.clear(logs), writeLines))
  yield* Effect.addFinalizer(() => Queue.shutdown(events))
  const port = yield* Effect.acquireRelease(listen(bus, options.host, options.port), () => bus.shutdown())

  return {
    events,
    send: (connection, message) => Effect.sync(() => bus.send(connection, message)),
    close: (connection) => Effect.sync(() => bus.close(connection)),
    port
  }
})

// --- the connections ------------------------------------------------------------------------------

interface Limits {
  readonly connectionsMax: number
  readonly eventsMax: number
  readonly sendQueueMax: number
  readonly closeLingerMs: number
  readonly handshakeTimeoutMs: number
  readonly idleTimeoutMs: number
}

function checkedLimits(options: TcpBusOptions): Limits {
  const limits: Limits = {
    connectionsMax: options.connectionsMax ?? connectionsMaxDefault,
    eventsMax: options.eventsMax ?? eventsMaxDefault,
    sendQueueMax: options.sendQueueMax ?? sendQueueMaxDefault,
    closeLingerMs: options.closeLingerMs ?? closeLingerMsDefault,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? handshakeTimeoutMsDefault,
    idleTimeoutMs: options.idleTimeoutMs ?? idleTimeoutMsDefault
  }
  assert(Number.isInteger(limits.connectionsMax) && limits.connectionsMax >= 1, () => "connectionsMax must be a positive integer")
  assert(Number.isInteger(limits.eventsMax) && limits.eventsMax >= 1, () => "eventsMax must be a positive integer")
  assert(Number.isInteger(limits.sendQueueMax) && limits.sendQueueMax >= 1, () => "sendQueueMax must be a positive integer")
  assert(limits.closeLingerMs >= 0, () => "closeLingerMs must not be negative")
  assert(Number.isFinite(limits.handshakeTimeoutMs) && limits.handshakeTimeoutMs > 0, () => "handshakeTimeoutMs must be positive")
  assert(Number.isFinite(limits.idleTimeoutMs) && limits.idleTimeoutMs > 0, () => "idleTimeoutMs must be positive")
  return limits
}

type LogLine = { readonly level: "warning" | "debug"; readonly text: string }

/** Connection ids are unique in the process, so an id held anywhere can never name a newer connection. */
let connectionIdLast = 0

class Connection {
  readonly id: number
  readonly socket: net.Socket
  readonly remote: string
  readonly framer: MessageFramer
  readonly sink: FrameSink
  /** Copies of messages waiting for the socket to drain, at most `sendQueueMax`. */
  readonly sendQueue: Array<Uint8Array> = []
  /** "closing": `close` was called; queued messages are still written, nothing more is read. */
  state: "open" | "closing" | "closed" = "open"
  lingerTimer: ReturnType<typeof setTimeout> | undefined = undefined
  /** Has delivered a valid message: no longer silent, so never evicted to make room. */
  spoken = false
  /** A valid message arrived since the last sweep (a flag, so that the hot path reads no clock). */
  spokeSinceSweep = false
  /** When the connection was accepted, or the last sweep that saw it deliver (`Clock` ms). */
  quietSinceMs: number

  constructor(id: number, socket: net.Socket, framer: MessageFramer, sink: FrameSink, acceptedMs: number) {
    this.id = id
    this.socket = socket
    this.remote = formatAddress(socket.remoteAddress ?? "?", socket.remotePort ?? 0)
    this.framer = framer
    this.sink = sink
    this.quietSinceMs = acceptedMs
  }
}

/** A warning a flood of peers can cause, written at most once per `refusalLogIntervalMs`, counting the others. */
class FloodLog {
  private loggedAtMs = -Infinity
  private unlogged = 0
  private readonly bus: TcpBus

  constructor(bus: TcpBus) {
    this.bus = bus
  }

  note(text: () => string): void {
    this.unlogged++
    const now = this.bus.nowMs()
    if (now - this.loggedAtMs < refusalLogIntervalMs) return
    const others = this.unlogged > 1 ? ` (and ${this.unlogged - 1} more since the last such line)` : ""
    this.bus.log("warning", text() + others)
    this.loggedAtMs = now
    this.unlogged = 0
  }
}

/**
 * All bus state, touched only from Node's socket callbacks and from `send`/`close` (synchronous
 * code on the one JavaScript thread), so it needs no locking.
 */
class TcpBus {
  readonly server: net.Server
  readonly connections = new Map<number, Connection>()
  /** The connections that have not spoken yet, oldest accepted first: the candidates for eviction. */
  readonly silent = new Set<Connection>()
  /** Events that did not fit in the queue, oldest first; while non-empty every socket is paused. */
  readonly backlog: Array<BusEvent> = []
  backlogHead = 0
  paused = false
  stopped = false
  /** Monotonic milliseconds from the layer's `Clock`. */
  readonly nowMs: () => number
  private readonly refusals = new FloodLog(this)
  private readonly evictions = new FloodLog(this)
  private readonly timeouts = new FloodLog(this)
  private readonly cluster: Uint8Array
  private readonly limits: Limits
  private readonly events: Queue.Queue<BusEvent>
  private readonly logs: Queue.Queue<LogLine>
  private readonly backlogReady: Latch.Latch

  constructor(cluster: Uint8Array, limits: Limits, events: Queue.Queue<BusEvent>, logs: Queue.Queue<LogLine>, backlogReady: Latch.Latch,
    nowMs: () => number) {
    this.cluster = cluster
    this.limits = limits
    this.events = events
    this.logs = logs
    this.backlogReady = backlogReady
    this.nowMs = nowMs
    this.server = net.createServer({ noDelay: true, keepAlive: true }, (socket) => this.accept(socket))
  }

  get backlogSize(): number {
    return this.backlog.length - this.backlogHead
  }

  // --- receiving ---

  private accept(socket: net.Socket): void {
    if (this.stopped) {
      socket.destroy()
      return
    }
    if (this.connections.size >= this.limits.connectionsMax && !this.evictSilent()) {
      this.refusals.note(() => `refused a connection from ${formatAddress(socket.remoteAddress ?? "?", socket.remotePort ?? 0)}: ` +
        `${this.limits.connectionsMax} connections open (connectionsMax) and none of them silent`)
      socket.on("error", () => {})
      socket.destroy()
      return
    }
    assert(this.connections.size < this.limits.connectionsMax, () => `accept: ${this.connections.size} connections open`)
    const id = ++connectionIdLast
    const sink: FrameSink = {
      message: (message) => this.deliver(connection, message),
      dropped: (_message, rejection) => this.log("debug", `dropped a message on connection ${id}: ${describeRejection(rejection)}`)
    }
    const connection: Connection = new Connection(id, socket, new MessageFramer(this.cluster), sink, this.nowMs())
    this.connections.set(id, connection)
    this.silent.add(connection)
    socket.setNoDelay(true)
    if (this.paused) socket.pause()
    socket.on("data", (chunk: Buffer) => this.receive(connection, chunk))
    socket.on("drain", () => this.flush(connection))
    socket.on("error", (error: NodeJS.ErrnoException) =>
      this.log("debug", `connection ${id} from ${connection.remote}: ${error.code ?? error.message}`))
    socket.on("close", () => this.closed(connection))
  }

  /**
   * At the limit, makes room by closing the oldest connection that has not spoken (its peer has
   * had the longest to say something); false when every open connection has spoken.
   */
  private evictSilent(): boolean {
    for (const connection of this.silent) {
      if (connection.state !== "open") continue
      this.evictions.note(() => `closed connection ${connection.id} from ${connection.remote} to make room for a new one: ` +
        `${this.limits.connectionsMax} connections open (connectionsMax) and it has sent no valid message`)
      this.drop(connection)
      return true
    }
    return false
  }

  /** A valid message: the connection has spoken (it is no longer evictable nor silent for the sweep). */
  private deliver(connection: Connection, message: Uint8Array): void {
    connection.spokeSinceSweep = true
    if (!connection.spoken) {
      connection.spoken = true
      this.silent.delete(connection)
    }
    this.emit({ _tag: "Message", connection: connection.id, message })
  }

  private receive(connection: Connection, chunk: Buffer): void {
    if (connection.state !== "open") return
    // Consumers get plain Uint8Array views (a Buffer's `slice` shares memory, a trap for them).
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    const rejection = connection.framer.feed(bytes, connection.sink)
    if (rejection === undefined) return
    this.log("warning", `closing connection ${connection.id} from ${connection.remote}: ${describeRejection(rejection)}`)
    connection.state = "closing"
    connection.socket.destroy()
  }

  private closed(connection: Connection): void {
    if (connection.state === "closed") return
    const partial = connection.framer.bufferedBytes
    if (partial > 0 && connection.framer.failure === undefined) {
      this.log("debug", `connection ${connection.id} from ${connection.remote} closed with ${partial} bytes of an incomplete message`)
    }
    connection.state = "closed"
    connection.sendQueue.length = 0
    if (connection.lingerTimer !== undefined) clearTimeout(connection.lingerTimer)
    this.connections.delete(connection.id)
    this.silent.delete(connection)
    assert(this.silent.size <= this.connections.size, () => `${this.silent.size} silent of ${this.connections.size} connections`)
    this.emit({ _tag: "Closed", connection: connection.id })
  }

  /**
   * Destroys a connection and frees its slot now rather than at the socket's "close" event, so
   * that an eviction makes room for the newcomer at once; that event then finds it closed.
   */
  private drop(connection: Connection): void {
    connection.state = "closing"
    connection.socket.destroy()
    this.closed(connection)
  }

  /**
   * Closes every open connection silent for longer than its deadline. While the bus is paused by
   * backpressure no socket can deliver, so every connection's quiet time starts over instead.
   */
  sweep(): void {
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
  }

  /** Events keep arrival order: once one waits in the backlog, every later one queues behind it. */
  private emit(event: BusEvent): void {
    if (this.stopped) return
    if (this.backlogSize === 0 && Queue.offerUnsafe(this.events, event)) return
    this.backlog.push(event)
    if (!this.paused) {
      this.paused = true
      for (const connection of this.connections.values()) connection.socket.pause()
    }
    this.backlogReady.openUnsafe()
  }

  /** Called by the backlog fiber once the backlog is empty. */
  resumeReading(): void {
    assert(this.backlogSize === 0, () => "resuming with events still in the backlog")
    this.backlog.length = 0
    this.backlogHead = 0
    if (!this.paused || this.stopped) return
    this.paused = false
    for (const connection of this.connections.values()) connection.socket.resume()
  }

  // --- sending ---

  send(id: number, message: Uint8Array): void {
    assert(message.length >= headerSize && message.length <= messageSizeMax &&
      readU32(message, FrameLayout.size.offset) === message.length, () => `send: not one whole message (${message.length} bytes)`)
    const connection = this.connections.get(id)
    if (connection === undefined || connection.state !== "open") return
    const socket = connection.socket
    if (connection.sendQueue.length === 0 && !socket.writableNeedDrain) {
      socket.write(Buffer.from(message))
    } else if (connection.sendQueue.length < this.limits.sendQueueMax) {
      connection.sendQueue.push(Buffer.from(message))
    } else {
      this.log("debug", `dropped a message to connection ${id}: send queue full (${this.limits.sendQueueMax})`)
    }
  }

  /** Writes queued messages while the socket takes them; ends a closing connection once all are out. */
  private flush(connection: Connection): void {
    if (connection.state === "closed") return
    const queue = connection.sendQueue
    let written = 0
    while (written < queue.length && !connection.socket.writableNeedDrain) connection.socket.write(queue[written++])
    queue.splice(0, written)
    if (connection.state === "closing" && queue.length === 0) connection.socket.end()
  }

  close(id: number): void {
    const connection = this.connections.get(id)
    if (connection === undefined || connection.state !== "open") return
    connection.state = "closing"
    connection.lingerTimer = setTimeout(() => connection.socket.destroy(), this.limits.closeLingerMs)
    connection.lingerTimer.unref()
    this.flush(connection)
  }

  // --- lifetime ---

  log(level: LogLine["level"], text: string): void {
    Queue.offerUnsafe(this.logs, { level, text })
  }

  /** Stops listening, destroys every connection, waits for the server to close. */
  shutdown(): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      this.stopped = true
      this.server.close(() => resume(Effect.void))
      for (const connection of this.connections.values()) {
        if (connection.lingerTimer !== undefined) clearTimeout(connection.lingerTimer)
        connection.socket.destroy()
      }
    })
  }
}

// --- the layer's fibers -----------------------------------------------------------------------

const listen = (bus: TcpBus, host: string, port: number) =>
  Effect.callback<number, MessageBusListenError>((resume) => {
    const server = bus.server
    const failed = (error: NodeJS.ErrnoException) => {
      server.off("listening", listening)
      resume(Effect.fail(new MessageBusListenError({
        host, port, code: error.code ?? "UNKNOWN", reason: listenReasons[error.code ?? ""] ?? error.message
      })))
    }
    const listening = () => {
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
  for (const line of lines) {
    if (line.level === "warning") yield* Effect.logWarning(`message bus: ${line.text}`)
    else yield* Effect.logDebug(`message bus: ${line.text}`)
  }
})

// --- helpers ------------------------------------------------------------------------------------

function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`
}

function describeRejection(rejection: Rejection): string {
  switch (rejection._tag) {
    case "Truncated":
      return `truncated message (${rejection.length} bytes)`
    case "BadHeaderChecksum":
      return "bad header checksum"
    case "UnknownCommand":
      return `unknown command ${rejection.command}`
    case "SizeOutOfRange":
      return `size ${rejection.size} outside ${headerSize}..${messageSizeMax}`
    case "LengthMismatch":
      return `size ${rejection.size} but ${rejection.length} bytes`
    case "BadBodyChecksum":
      return "bad body checksum"
    case "WrongCluster":
      return "wrong cluster"
    case "InvalidHeader":
      return `invalid header (${rejection.reason})`
    default:
      return unreachable(rejection)
  }
}
