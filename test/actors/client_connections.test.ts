/**
 * The shell's map from clients to connections: a client is reached on the connection it last
 * spoke on, a closed connection reaches nobody, and a peer inventing client ids holds one entry.
 */
import { describe, expect, it } from "vitest"
import { ClientConnections } from "../../src/actors/client_connections.ts"
import { buildMessage } from "../../src/protocol/build.ts"
import { Command, releaseScarab, zeroHeader } from "../../src/protocol/header.ts"

const ping = (client: bigint) => buildMessage({ ...zeroHeader(Command.ping_client), cluster: 1n, release: releaseScarab, client }, new Uint8Array(0))
const request = (client: bigint) =>
  buildMessage({ ...zeroHeader(Command.request), cluster: 1n, release: releaseScarab, client, session: 1n, request: 1, operation: 140 }, new Uint8Array(0))

describe("ClientConnections", () => {
  it("reaches a client on the connection it last spoke on, and nobody after that connection closes", () => {
    const map = new ClientConnections()
    map.learn(1, request(7n))
    expect(map.connectionOf(7n)).toBe(1)
    map.learn(2, ping(7n)) // reconnected
    expect(map.connectionOf(7n)).toBe(2)
    map.forget(1) // the old connection closing does not unmap the client
    expect(map.connectionOf(7n)).toBe(2)
    map.forget(2)
    expect(map.connectionOf(7n)).toBeUndefined()
  })

  it("holds one client per connection, however many ids a peer invents", () => {
    const map = new ClientConnections()
    for (let client = 1n; client <= 1000n; client++) map.learn(3, ping(client))
    expect(map.connectionOf(1000n)).toBe(3)
    expect(map.connectionOf(999n)).toBeUndefined()
    expect(map.connectionOf(1n)).toBeUndefined()
  })
})
