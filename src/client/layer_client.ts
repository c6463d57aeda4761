/**
 * `layerClient({ cluster, addresses })`: the Ledger service over the network, speaking
 * TigerBeetle's client protocol to a Scarab or TigerBeetle 0.17 cluster through a session
 * (session.ts) over TCP (transport_tcp.ts).
 */
import { Effect, Layer, Schema } from "effect"
import { Ledger, makeLedger } from "./ledger_service.ts"
import { makeSession } from "./session.ts"
import { tcpTransport, type TcpAddress } from "./transport_tcp.ts"

export interface ClientOptions {
  /** The cluster id the replicas were formatted with. */
  readonly cluster: bigint
  /**
   * The replicas in the cluster's order: "3000" (a port on 127.0.0.1), "host:port", or a port
   * number. At most 6.
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
    if (address === undefined) return yield* new InvalidClientOptions({ reason: `'${text}' is not a port or host:port` })
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

function parseAddress(text: string): TcpAddress | undefined {
  const colon = text.lastIndexOf(":")
  const host = colon < 0 ? "127.0.0.1" : text.slice(0, colon)
  const portText = colon < 0 ? text : text.slice(colon + 1)
  if (host === "" || !/^[0-9]+$/.test(portText)) return undefined
  const port = Number(portText)
  return port >= 1 && port <= 65535 ? { host, port } : undefined
}
