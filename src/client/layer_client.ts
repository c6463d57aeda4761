/**
 * `layerClient({ cluster, addresses })`: the Ledger service over the network, speaking
 * TigerBeetle's client protocol to a Scarab or TigerBeetle 0.17 cluster through a session
 * (session.ts) over TCP (transport_tcp.ts).
 */
import * as net from "node:net"
import { Effect, Layer, Schema } from "effect"
import { Ledger, makeLedger } from "./ledger_service.ts"
import { makeSession } from "./session.ts"
import { tcpTransport, type TcpAddress } from "./transport_tcp.ts"

export interface ClientOptions {
  /** The cluster id the replicas were formatted with. */
  readonly cluster: bigint
  /**
   * The replicas in the cluster's order: "3000" (a port on 127.0.0.1), "host:port", "host" (port
   * 3001), "[::1]:3000" or "[::1]" (IPv6), or a port number. At most 6.
   */
  readonly addresses: ReadonlyArray<string | number>
  /** First retransmission of a request in ms (default 600, as TigerBeetle's clients). */
  readonly requestTimeoutMs?: number
}

/** The options name no valid cluster address list. */
export class InvalidClientOptions extends Schema.TaggedError<InvalidClientOptions>()("InvalidClientOptions", {
  reason: Schema.String
}) {
  override get message(): string {
    return `layerClient: ${this.reason}`
  }
}

/** The session and its TCP transport for the current scope (for tests and tools that want the session's stats). */
export const makeClientSession = Effect.fnUntraced(function* (options: ClientOptions) {
  if (options.addresses.length < 1 || options.addresses.length > 6) {
    return yield* new InvalidClientOptions({ reason: `${options.addresses.length} addresses; a cluster has 1 to 6 replicas` })
  }
  if (options.cluster < 0n || options.cluster >= 1n << 128n) return yield* new InvalidClientOptions({ reason: `cluster ${options.cluster} is not a u128` })
  const addresses: Array<TcpAddress> = []
  for (const text of options.addresses) {
    const address = parseAddress(String(text))
    if (address === undefined) return yield* new InvalidClientOptions({ reason: `'${text}' is not a port, host, host:port, [ipv6] or [ipv6]:port` })
    addresses.push(address)
  }
  return yield* makeSession({
    cluster: options.cluster,
    transport: tcpTransport({ cluster: options.cluster, addresses }),
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs })
  })
})

export const layerClient = (options: ClientOptions): Layer.Layer<Ledger, InvalidClientOptions> =>
  Layer.effect(Ledger, Effect.map(makeClientSession(options), (session) => Ledger.of(makeLedger(session.call))))

/**
 * "3000" (on 127.0.0.1), "host:3000", "host" (port 3001, TigerBeetle's default), "[::1]:3000" or
 * "[::1]": an IPv6 host in brackets, as TigerBeetle writes it.
 */
function parseAddress(text: string): TcpAddress | undefined {
  const bracketed = /^\[([^\]]*)\](?::([0-9]+))?$/.exec(text)
  if (bracketed !== null) return net.isIPv6(bracketed[1]!) ? withPort(bracketed[1]!, bracketed[2]) : undefined
  if (/^[0-9]+$/.test(text)) return withPort("127.0.0.1", text)
  const colon = text.indexOf(":")
  if (colon < 0) return text === "" ? undefined : withPort(text, undefined)
  if (colon !== text.lastIndexOf(":") || colon === 0 || !/^[0-9]+$/.test(text.slice(colon + 1))) return undefined
  return withPort(text.slice(0, colon), text.slice(colon + 1))
}

function withPort(host: string, portText: string | undefined): TcpAddress | undefined {
  const port = portText === undefined ? 3001 : Number(portText)
  return port >= 1 && port <= 65535 ? { host, port } : undefined
}
