/**
 * What the TCP bus's tests share: a bus on 127.0.0.1 with a free port whose time stands still (or
 * is the test's), raw `node:net` clients, and waits on events with a liveness bound far beyond
 * what a loaded machine takes.
 */
import * as net from "node:net"
import { assert } from "@effect/vitest"
import { Clock, Deferred, Effect, Exit, Logger, Queue, type Scope } from "effect"
import type { MessageBusShape } from "../../src/actors/message_bus.ts"
import { makeTcpBus, type TcpBusOptions } from "../../src/layers/network_tcp.ts"
import { sessionCluster } from "../protocol/wire_vectors.ts"

/**
 * How long a live test waits for one thing the bus must do (an event, a close, a log line): a
 * bound for a bus that never does it, far beyond what a loaded machine takes.
 */
export const livenessMs = 60_000

/**
 * A clock at which no time passes, for the bus in the live tests: what they check must not
 * depend on how fast the machine runs them, and the bus reads its clock for its deadlines
 * (a silent connection is closed after 45 s) and for its one-line-a-second warnings. With time
 * stopped its sweep never runs and every warning falls in one second; the tests of the deadlines
 * run the bus on TestClock instead.
 */
export const stoppedClock: Clock.Clock = {
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
export const startBus = (options: Partial<TcpBusOptions> = {}, time: "stopped" | "test clock" = "stopped") =>
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

export interface Client {
  readonly socket: net.Socket
  readonly received: () => Uint8Array
  /** Resolves when the socket is closed (by either side). */
  readonly closed: Deferred.Deferred<void>
  readonly write: (bytes: Uint8Array) => Effect.Effect<void>
  /** Our local port: the bus names us by it in its log lines. */
  readonly localPort: number
}

/** A raw TCP client, destroyed when the test's scope closes. */
export const connect = (port: number): Effect.Effect<Client, never, Scope.Scope> =>
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

export const nextEvent = (bus: MessageBusShape) =>
  Queue.take(bus.events).pipe(
    Effect.timeoutOrElse({ duration: livenessMs, orElse: () => Effect.die(new Error(`no bus event within ${livenessMs} ms`)) })
  )

/** Polls `condition` (something the test cannot await, such as a socket's buffer or a log line) until it holds. */
export const waitUntil = Effect.fnUntraced(function* (condition: () => boolean, what: string) {
  const pollMs = 10
  for (let i = 0; i < livenessMs / pollMs; i++) {
    if (condition()) return
    yield* Effect.sleep(pollMs)
  }
  assert.fail(`timed out waiting for ${what}`)
})

export const awaitClosed = (client: Client) =>
  Deferred.await(client.closed).pipe(
    Effect.timeoutOrElse({ duration: livenessMs, orElse: () => Effect.die(new Error("the bus did not close the connection")) })
  )
