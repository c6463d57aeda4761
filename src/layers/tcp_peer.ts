/**
 * Who is at the other end of a TCP connection (TigerBeetle's `vsr.Peer`, src/message_bus.zig and
 * `peer_type` in src/vsr/message_header.zig). A replica accepts connections from clients and from
 * the replicas with a lower index, and nothing in the handshake says which is which: the bus
 * learns it from the messages themselves, each of which names its sender's kind.
 *
 * - A replica-to-replica command (ping, pong, prepare_ok, commit, the view-change and repair
 *   commands, and the replica's own replies to clients that a replica may relay) names its sender
 *   in the header's `replica` field. The index must be one of the cluster's and not our own: a
 *   peer claiming either is misconfigured (or hostile), and its connection is closed.
 * - `ping_client` names its client for certain.
 * - `request` names a client only *likely*: replicas forward requests, so a connection that has
 *   proven to be a replica stays one, and one that only sent requests may still turn out a replica.
 * - `reply`, `prepare` and `block` say nothing about their sender.
 *
 * Once known, a peer does not change: a client that then speaks as a replica (or as another client
 * it named for certain), or a replica that then speaks as another replica or as a client, breaks
 * the protocol, and its connection is closed. Pure: the bus (network_tcp.ts) applies the result.
 */
import { assert } from "../assert.ts"
import { u128FromBytes } from "../protocol/build.ts"
import { Command, commandMax, FrameLayout, headerSize, PingClientLayout, replicasMax, RequestLayout } from "../protocol/header.ts"

export type Peer =
  | { readonly _tag: "Unknown" }
  | { readonly _tag: "Replica"; readonly replica: number }
  /** `certain`: named by a `ping_client`; otherwise only by requests, which a replica may forward. */
  | { readonly _tag: "Client"; readonly client: bigint; readonly certain: boolean }

export const peerUnknown: Peer = { _tag: "Unknown" }

/** The cluster as the bus sees it: how many replicas there are, and which one we are. */
export interface ClusterSeat {
  readonly replicaCount: number
  readonly replica: number
}

/**
 * The peer of a connection after it delivered `message` (a verified message): the same object
 * when the message tells nothing new, a new one when it identifies the peer, or a sentence saying
 * why the message cannot come from this peer (the connection must be closed).
 */
export function peerAfter(peer: Peer, message: Uint8Array, seat: ClusterSeat): Peer | string {
  assert(message.length >= headerSize, () => `a message of ${message.length} bytes has no header`)
  assert(seat.replica < seat.replicaCount, () => `replica ${seat.replica} of a cluster of ${seat.replicaCount}`)
  switch (claims[message[FrameLayout.command.offset]]) {
    case "replica":
      return replicaAfter(peer, message[FrameLayout.replica.offset], seat)
    case "client":
      return clientAfter(peer, u128FromBytes(message, PingClientLayout.client.offset), true)
    case "request":
      // A replica forwards requests to the primary: they do not make it a client.
      return peer._tag === "Replica" ? peer : clientAfter(peer, u128FromBytes(message, RequestLayout.client.offset), false)
    default:
      return peer
  }
}

/** Describes a peer for log lines. */
export function describePeer(peer: Peer): string {
  switch (peer._tag) {
    case "Unknown":
      return "an unidentified peer"
    case "Replica":
      return `replica ${peer.replica}`
    case "Client":
      return `client ${peer.client}`
  }
}

// --- helpers ------------------------------------------------------------------------------------

type Claim = "replica" | "client" | "request" | "none"

/** What each command says about its sender, by command code (TigerBeetle 0.17's `peer_type`). */
const claims: ReadonlyArray<Claim> = (() => {
  const table: Array<Claim> = Array.from({ length: commandMax + 1 }, () => "none")
  for (const command of [Command.ping, Command.pong, Command.pong_client, Command.prepare_ok, Command.commit, Command.exit_view,
    Command.join_view, Command.view, Command.get_view, Command.get_headers, Command.get_prepare, Command.get_reply,
    Command.headers, Command.eviction, Command.get_blocks]) table[command] = "replica"
  table[Command.ping_client] = "client"
  table[Command.request] = "request"
  assert(table.length === commandMax + 1, () => "one claim per command")
  assert(table.filter((claim) => claim === "replica").length === 15, () => "fifteen replica-to-replica commands")
  return table
})()

function replicaAfter(peer: Peer, replica: number, seat: ClusterSeat): Peer | string {
  assert(Number.isInteger(replica), () => "a replica index is an integer")
  assert(seat.replicaCount <= replicasMax, () => `a cluster of ${seat.replicaCount} replicas`)
  if (replica >= seat.replicaCount) return `it claims to be replica ${replica}, but the cluster has ${seat.replicaCount} (0..${seat.replicaCount - 1})`
  if (replica === seat.replica) return `it claims to be replica ${replica}, which is this replica`
  switch (peer._tag) {
    case "Unknown":
      return { _tag: "Replica", replica }
    case "Client":
      // A connection that only sent requests may have been a replica forwarding them.
      return peer.certain ? `it spoke as client ${peer.client}, now as replica ${replica}` : { _tag: "Replica", replica }
    case "Replica":
      return peer.replica === replica ? peer : `it spoke as replica ${peer.replica}, now as replica ${replica}`
  }
}

function clientAfter(peer: Peer, client: bigint, certain: boolean): Peer | string {
  assert(client >= 0n, () => "a client id is a u128")
  assert(peer._tag !== "Replica" || certain, () => "a replica's requests are forwarded, never a claim")
  switch (peer._tag) {
    case "Unknown":
      return { _tag: "Client", client, certain }
    case "Replica":
      return `it spoke as replica ${peer.replica}, now as client ${client}`
    case "Client":
      if (peer.client === client) return certain && !peer.certain ? { _tag: "Client", client, certain } : peer
      if (peer.certain || certain) return `it spoke as client ${peer.client}, now as client ${client}`
      // Requests of two clients on one connection (a replica forwarding them, most likely): it
      // speaks for the latest, as `ClientConnections` maps it. TigerBeetle keeps the first; either
      // way the next replica-to-replica message settles it.
      return { _tag: "Client", client, certain: false }
  }
}
