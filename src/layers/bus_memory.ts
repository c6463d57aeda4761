/**
 * An in-process MessageBus: the replica's side is the same interface as the TCP bus
 * (src/layers/network_tcp.ts), and clients in the same process open connections with `connect`
 * instead of a socket. Used by `layerEmbedded` (one replica and its client in one process).
 *
 * It keeps the TCP bus's contract: messages to the replica are verified (checksums, cluster,
 * header rules) and copied, `events` is bounded (a client's `send` waits while it is full), and
 * `send` to a client copies the bytes and never fails; a closed connection drops them.
 */
import { Effect, Queue } from "effect"
import type { BusEvent, MessageBusShape } from "../actors/message_bus.ts"
import { u128ToBytes } from "../protocol/build.ts"
import { validateMessage } from "../protocol/message.ts"

export interface MemoryConnection {
  /** Sends one whole message to the replica (dropped if it fails verification, as TCP would close). */
  readonly send: (message: Uint8Array) => Effect.Effect<void>
  /** Ends the connection; the replica sees `Closed`. */
  readonly close: Effect.Effect<void>
}

export interface MemoryBus {
  readonly bus: MessageBusShape
  /** Opens a connection; `deliver` receives the replica's messages (copies the client owns). */
  readonly connect: (deliver: (message: Uint8Array) => void) => Effect.Effect<MemoryConnection>
}

/** Events waiting for the replica, as in the TCP bus. */
const eventsMax = 1024

export const makeMemoryBus = (cluster: bigint): Effect.Effect<MemoryBus> => Effect.gen(function* () {
  const events = yield* Queue.bounded<BusEvent>(eventsMax)
  const clusterBytes = u128ToBytes(cluster)
  const connections = new Map<number, (message: Uint8Array) => void>()
  let connectionNext = 1

  const closeConnection = (connection: number) => Effect.suspend(() => {
    if (!connections.delete(connection)) return Effect.void
    return Effect.asVoid(Queue.offer(events, { _tag: "Closed", connection }))
  })

  const bus: MessageBusShape = {
    events,
    send: (connection, message) => Effect.sync(() => {
      connections.get(connection)?.(message.slice())
    }),
    close: closeConnection,
    port: 0
  }

  const connect = (deliver: (message: Uint8Array) => void) => Effect.sync((): MemoryConnection => {
    const connection = connectionNext++
    connections.set(connection, deliver)
    return {
      send: (message) => Effect.suspend(() => {
        if (!connections.has(connection) || validateMessage(message, clusterBytes) !== undefined) return Effect.void
        // The replica may turn a request into a prepare in place: it gets its own copy.
        return Effect.asVoid(Queue.offer(events, { _tag: "Message", connection, message: message.slice() }))
      }),
      close: closeConnection(connection)
    }
  })
  return { bus, connect }
})
