/**
 * An in-process MessageBus: the replica's side is the same interface as the TCP bus
 * (src/layers/network_tcp.ts), and clients in the same process open connections with `connect`
 * instead of a socket. Used by `layerEmbedded` (one replica and its client in one process).
 *
 * It keeps the TCP bus's contract: messages to the replica are verified (checksums, cluster,
 * header rules) and copied, `events` is bounded (a client's `send` waits while it is full), and
 * `sendToClient` copies the bytes and never fails; a client with no open connection gets nothing.
 * It runs one replica: there is no other to reach, so `sendToReplica` is a defect.
 */
import { Effect, Queue } from "effect"
import { assert } from "../assert.ts"
import { ClientConnections } from "../actors/client_connections.ts"
import type { BusEvent, MessageBusShape } from "../actors/message_bus.ts"
import { u128ToBytes } from "../protocol/build.ts"
import { validateMessage } from "../protocol/message.ts"

export interface MemoryConnection {
  /** Sends one whole message to the replica (dropped if it fails verification, as TCP would close). */
  readonly send: (message: Uint8Array) => Effect.Effect<void>
  /** Ends the connection: the replica's messages for its client go nowhere from now on. */
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

  const clients = new ClientConnections()

  const bus: MessageBusShape = {
    events,
    sendToClient: (client, message) => Effect.sync(() => {
      const connection = clients.connectionOf(client)
      if (connection !== undefined) connections.get(connection)?.(message.slice())
    }),
    sendToReplica: (replica) => Effect.sync(() => assert(false, () => `the in-process bus runs one replica: no replica ${replica} to reach`)),
    port: 0
  }

  const connect = (deliver: (message: Uint8Array) => void) => Effect.sync((): MemoryConnection => {
    const connection = connectionNext++
    connections.set(connection, deliver)
    return {
      send: (message) => Effect.suspend(() => {
        if (!connections.has(connection) || validateMessage(message, clusterBytes) !== undefined) return Effect.void
        clients.learn(connection, message)
        // The replica may turn a request into a prepare in place: it gets its own copy.
        return Effect.asVoid(Queue.offer(events, { _tag: "Message", message: message.slice() }))
      }),
      close: Effect.sync(() => {
        if (connections.delete(connection)) clients.forget(connection)
      })
    }
  })
  return { bus, connect }
})
