/**
 * The network client's transport over TCP (`node:net`), wire-protocol.md §9.8: one connection per
 * replica, each framed with a `MessageFramer` (checksums and cluster verified; a connection that
 * breaks the framing rules is closed), re-established after a break with the official client's
 * backoff, `50 + U[0, min(950, 50·2^a)]` ms, where `a` counts attempts since bytes last arrived.
 * TCP_NODELAY and keepalive are on.
 *
 * One difference from the official client: a message sent while the connection is down is kept
 * (the latest one per replica) and written as soon as it is up, instead of waiting for the
 * request timeout. That spares every new client the 600 ms the first register would otherwise
 * wait; the bytes are identical, and duplicates are answered from the replica's stored reply.
 */
import * as net from "node:net"
import { Effect, Random } from "effect"
import { u128ToBytes } from "../protocol/build.ts"
import { type FrameSink, MessageFramer } from "../protocol/framing.ts"
import type { TransportFactory } from "./session.ts"

export interface TcpAddress {
  readonly host: string
  readonly port: number
}

export interface ClientTcpOptions {
  readonly cluster: bigint
  readonly addresses: ReadonlyArray<TcpAddress>
}

const reconnectBaseMs = 50
const reconnectJitterMsMax = 950

interface Link {
  socket: net.Socket | undefined
  /** The latest message sent while disconnected, written on connect. */
  held: Uint8Array | undefined
}

export const tcpTransport = (options: ClientTcpOptions): TransportFactory => (deliver) => Effect.gen(function* () {
  const cluster = u128ToBytes(options.cluster)
  const links: Array<Link> = options.addresses.map(() => ({ socket: undefined, held: undefined }))
  const sink: FrameSink = { message: deliver, dropped: () => {} }

  /** One connection's life: resolves when the socket is closed; destroys it on interruption. */
  const connectOnce = (address: TcpAddress, link: Link, onBytes: () => void) => Effect.callback<void>((resume) => {
    const framer = new MessageFramer(cluster)
    const socket = net.createConnection({ host: address.host, port: address.port, noDelay: true, keepAlive: true })
    socket.on("connect", () => {
      link.socket = socket
      const held = link.held
      link.held = undefined
      if (held !== undefined) socket.write(held)
    })
    socket.on("data", (chunk: Buffer) => {
      onBytes()
      const chunkBytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      if (framer.feed(chunkBytes, sink) !== undefined) socket.destroy()
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      if (link.socket === socket) link.socket = undefined
      resume(Effect.void)
    })
    return Effect.sync(() => {
      if (link.socket === socket) link.socket = undefined
      socket.destroy()
    })
  })

  const connectionLoop = (address: TcpAddress, link: Link) => Effect.gen(function* () {
    let attempts = 0
    while (true) {
      yield* connectOnce(address, link, () => {
        attempts = 0
      })
      const jitterMs = yield* Random.nextIntBetween(0, Math.min(reconnectJitterMsMax, reconnectBaseMs * 2 ** Math.min(attempts, 10)))
      attempts++
      yield* Effect.sleep(reconnectBaseMs + jitterMs)
    }
  })

  for (let i = 0; i < links.length; i++) yield* Effect.forkScoped(connectionLoop(options.addresses[i]!, links[i]!))

  return {
    replicaCount: links.length,
    send: (replica: number, message: Uint8Array) => Effect.sync(() => {
      const link = links[replica]!
      if (link.socket !== undefined && !link.socket.destroyed) link.socket.write(message)
      else link.held = message
    })
  }
})
