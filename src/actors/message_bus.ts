/**
 * The MessageBus (vsr.md §12.2): the replica's only view of the network. Connections come and go
 * on their own; the bus frames their byte streams into messages (wire-protocol.md §2), verifies
 * both checksums and the cluster before anything else sees a byte, and hands the replica one
 * ordered stream of messages. The replica addresses peers, never connections: a client by its id
 * (`sendToClient`), a replica by its index (`sendToReplica`). Which connection reaches which peer
 * is the bus's business: a client is reached on the connection it last spoke on (a request or a
 * ping naming it), a replica on the connection the bus keeps to it.
 *
 * Layers implement it: TCP over `node:net` (`layerMessageBusTcp` in src/layers/network_tcp.ts),
 * in memory (src/layers/bus_memory.ts) and the simulated network of simulation.md §2
 * (sim/network.ts). This module imports none of them: imports point down the architecture
 * (docs/decisions.md). All keep the same contract:
 *
 * - `events` is bounded. When it is full the bus stops reading from sockets (TCP backpressure)
 *   and loses nothing: what was already read waits, in order, until there is room.
 * - A connection whose peer breaks the framing rules (bad checksum, unknown command, size out of
 *   range, wrong cluster) is closed and logged; a message whose header breaks a per-command rule
 *   is dropped silently (wire-protocol.md §2 step 6). Nothing a peer sends makes the bus fail.
 * - Sends never block and never fail: a message for a peer with no connection, or whose bounded
 *   send queue is full, is dropped, and the protocol's retries recover it (vsr.md §12.5). One
 *   slow peer never holds up the messages for the others.
 */
import { Context, type Effect, type Queue } from "effect"

/** A message from a peer: header and body checksums verified, cluster checked, header rules passed, `length == size`. */
export interface BusEvent {
  readonly _tag: "Message"
  readonly message: Uint8Array
}

export interface MessageBusShape {
  /** Validated incoming messages, in arrival order (bounded; the bus stops reading sockets while it is full: TCP backpressure). */
  readonly events: Queue.Dequeue<BusEvent>
  /**
   * Queues a message for client `client` on the connection it last spoke on (bounded per
   * connection; dropped when the client has no open connection or the queue is full: the client
   * resends). The bus copies the bytes before returning: it never mutates or retains the
   * caller's buffer. `message` must be exactly one whole message (`length == size`).
   */
  readonly sendToClient: (client: bigint, message: Uint8Array) => Effect.Effect<void>
  /**
   * Queues a message for replica `replica` of the cluster (bounded per peer; dropped while there
   * is no connection to it or its queue is full: the protocol resends). Copies as `sendToClient`.
   */
  readonly sendToReplica: (replica: number, message: Uint8Array) => Effect.Effect<void>
  /** The port actually listened on (for port 0 in tests). */
  readonly port: number
}

export class MessageBus extends Context.Service<MessageBus, MessageBusShape>()("scarab/MessageBus") {}
