/**
 * Which connection reaches which client: the replica's core addresses clients, the bus
 * connections (vsr.md §12.2). A client is reached on the connection it last spoke on (a
 * request or a ping naming it); a connection speaks for one client at a time, so the map holds
 * at most one entry per open connection, however many client ids a hostile peer invents.
 */
import { assert } from "../assert.ts"
import { u128FromBytes } from "../protocol/build.ts"
import { Command, FrameLayout, PingClientLayout, RequestLayout } from "../protocol/header.ts"

export class ClientConnections {
  private readonly byClient = new Map<bigint, number>()
  private readonly byConnection = new Map<number, bigint>()

  /** Learns the client a message on `connection` speaks for (requests and pings name one). */
  learn(connection: number, message: Uint8Array): void {
    assert(Number.isSafeInteger(connection), () => "a connection id is an integer")
    assert(connection >= 0, () => "a connection id is not negative")
    const command = message[FrameLayout.command.offset]
    if (command !== Command.request && command !== Command.ping_client) return
    const client = u128FromBytes(message, command === Command.request ? RequestLayout.client.offset : PingClientLayout.client.offset)
    const previous = this.byConnection.get(connection)
    if (previous !== undefined && previous !== client && this.byClient.get(previous) === connection) this.byClient.delete(previous)
    this.byConnection.set(connection, client)
    this.byClient.set(client, connection)
    assert(this.byConnection.get(connection) === client, () => "the connection speaks for the client")
    assert(this.byClient.size <= this.byConnection.size, () => "more clients mapped than connections")
  }

  /** The connection gone: its client is reachable no more (unless it spoke on another since). */
  forget(connection: number): void {
    assert(Number.isSafeInteger(connection), () => "a connection id is an integer")
    assert(connection >= 0, () => "a connection id is not negative")
    const client = this.byConnection.get(connection)
    this.byConnection.delete(connection)
    if (client !== undefined && this.byClient.get(client) === connection) this.byClient.delete(client)
    assert(!this.byConnection.has(connection), () => `connection ${connection} still mapped`)
    assert(this.byClient.size <= this.byConnection.size, () => "more clients mapped than connections")
  }

  connectionOf(client: bigint): number | undefined {
    return this.byClient.get(client)
  }
}
