/**
 * The MessageBus (vsr.md §12.2): the replica's only view of the network. Connections come and go
 * on their own; the bus frames their byte streams into messages (wire-protocol.md §2), verifies
 * both checksums and the cluster before anything else sees a byte, and hands the replica one
 * ordered stream of events. The replica answers with `send` and `close`, addressing connections
 * by small integer ids.
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
 * - `send` never blocks and never fails: a message for a closed connection, or for a connection
 *   whose send queue is full, is dropped, and the protocol's retries recover it (vsr.md §12.5).
 */
import { Context, type Effect, type Queue } from "effect"

export type BusEvent =
  /** Header and body checksums verified, cluster checked, header rules passed, `length == size`. */
  | { readonly _tag: "Message"; readonly connection: number; readonly message: Uint8Array }
  /** The connection is gone (peer disconnect, protocol violation, `close`, error). Once per connection, after its last `Message`. */
  | { readonly _tag: "Closed"; readonly connection: number }

export interface MessageBusShape {
  /** Validated incoming messages and connection closures, in arrival order (bounded; the bus stops reading sockets while it is full: TCP backpressure). */
  readonly events: Queue.Dequeue<BusEvent>
  /**
   * Queues a message on a connection (bounded per-connection send queue; a message for a closed
   * connection or a full queue is dropped: the protocol retries). The bus copies the bytes before
   * `send` returns: it never mutates or retains the caller's buffer, which may be reused at once.
   * `message` must be exactly one whole message (`length == size`); anything else is a defect.
   */
  readonly send: (connection: number, message: Uint8Array) => Effect.Effect<void>
  /** Closes a connection after the messages already queued on it are written; `Closed` follows. A no-op for an unknown or closed connection. */
  readonly close: (connection: number) => Effect.Effect<void>
  /** The port actually listened on (for port 0 in tests). */
  readonly port: number
}

export class MessageBus extends Context.Service<MessageBus, MessageBusShape>()("scarab/MessageBus") {}
