/**
 * The client table (vsr.md §9.1, §9.3): one session per registered client, with its session
 * number, its slot, and its latest committed reply, which a retry of that request gets again.
 * At most `clientsMax` sessions; registering one more evicts the session committed least
 * recently, and the newcomer takes its slot (otherwise the lowest free one). Slots are where a
 * checkpoint stores the replies, so they must come out the same on every replica: everything
 * here is decided by committed ops alone.
 */
import { assert } from "../assert.ts"
import { u128FromBytes } from "../protocol/build.ts"
import { Command, FrameLayout, ReplyLayout, readU32, readU64Number, u128Equal } from "../protocol/header.ts"
import type { SessionEntry } from "../storage/client_sessions.ts"

/** A client session: its number, its slot in the table and its latest committed reply. */
export interface Session {
  readonly client: bigint
  readonly session: bigint
  readonly slot: number
  reply: Uint8Array
  /** Op of the latest reply: the eviction order. */
  commitOp: number
}

export class ClientTable {
  private readonly clientsMax: number
  private readonly sessions = new Map<bigint, Session>()

  constructor(clientsMax: number) {
    assert(Number.isInteger(clientsMax), () => `clientsMax ${clientsMax} is not an integer`)
    assert(clientsMax > 0, () => `clientsMax ${clientsMax} is not positive`)
    this.clientsMax = clientsMax
  }

  get size(): number {
    return this.sessions.size
  }

  get(client: bigint): Session | undefined {
    return this.sessions.get(client)
  }

  has(client: bigint): boolean {
    return this.sessions.has(client)
  }

  /** Loads the sessions of a checkpoint into an empty table. */
  restore(entries: ReadonlyArray<SessionEntry>): void {
    assert(this.sessions.size === 0, () => "restore into an empty client table")
    assert(entries.length <= this.clientsMax, () => `a checkpoint with ${entries.length} sessions, more than ${this.clientsMax}`)
    for (const entry of entries) {
      assert(!this.sessions.has(entry.client), () => `client ${entry.client} twice in the checkpoint`)
      assert(entry.slot >= 0, () => `client ${entry.client} in slot ${entry.slot}`)
      assert(entry.slot < this.clientsMax, () => `client ${entry.client} in slot ${entry.slot}, beyond ${this.clientsMax}`)
      // Read back what `entries` gave the checkpoint: a reply (or its header alone) of this client.
      assert(entry.reply[FrameLayout.command.offset] === Command.reply, () => `client ${entry.client}: its stored reply is not a reply`)
      this.sessions.set(entry.client, {
        client: entry.client, session: entry.session, slot: entry.slot, reply: entry.reply, commitOp: readU64Number(entry.reply, ReplyLayout.op.offset)
      })
    }
    assert(this.sessions.size === entries.length, () => "every session restored once")
  }

  /**
   * Registers `client` at `op`, with the register's `reply`: evicts the least recently
   * committed session when the table is full and takes its slot, else the lowest free slot.
   */
  open(client: bigint, op: number, reply: Uint8Array): void {
    assert(!this.sessions.has(client), () => `client ${client} registers twice`)
    assertReplyOf(reply, op)
    let slot = -1
    if (this.sessions.size >= this.clientsMax) {
      let oldest: Session | undefined
      for (const session of this.sessions.values()) if (oldest === undefined || session.commitOp < oldest.commitOp) oldest = session
      this.sessions.delete(oldest!.client)
      slot = oldest!.slot
    } else {
      const taken = new Set([...this.sessions.values()].map((session) => session.slot))
      for (slot = 0; taken.has(slot); slot++);
    }
    assert(slot >= 0, () => `session slot ${slot}`)
    assert(slot < this.clientsMax, () => `session slot ${slot} beyond ${this.clientsMax}`)
    this.sessions.set(client, { client, session: BigInt(op), slot, reply, commitOp: op })
    assert(this.sessions.size <= this.clientsMax, () => "client table over its bound")
  }

  /** The client's latest reply is `reply`, committed at `op` (a session evicted meanwhile has none). */
  update(client: bigint, op: number, reply: Uint8Array): void {
    assert(client !== 0n, () => "a reply of a client's request (a pulse has none)")
    assertReplyOf(reply, op)
    const session = this.sessions.get(client)
    if (session === undefined) return
    assert(op > session.commitOp, () => `client ${client}: a reply at op ${op} after one at ${session.commitOp}`)
    session.reply = reply
    session.commitOp = op
  }

  /**
   * Ends the sessions in `slots` whose latest reply is still one committed at or before `op`
   * (restored from a checkpoint whose reply body is lost); returns their clients.
   */
  endWithReplyBefore(slots: ReadonlyArray<number>, op: number): Array<bigint> {
    assert(slots.length <= this.clientsMax, () => `${slots.length} slots of lost replies, more than ${this.clientsMax}`)
    const ended: Array<bigint> = []
    const before = this.sessions.size
    for (const session of [...this.sessions.values()]) {
      if (!slots.includes(session.slot) || session.commitOp > op) continue
      this.sessions.delete(session.client)
      ended.push(session.client)
    }
    assert(ended.length <= slots.length, () => "ended more sessions than slots named")
    assert(this.sessions.size === before - ended.length, () => "each session ended is gone")
    return ended
  }

  /**
   * The oldest session whose reply the checkpoint restored by its header alone (the client-replies
   * zone lost its body): a replica of a cluster fetches it from a peer (`get_reply`, vsr.md §5.4).
   */
  replyMissing(): Session | undefined {
    let oldest: Session | undefined
    for (const session of this.sessions.values()) {
      if (replyWhole(session.reply)) continue
      if (oldest === undefined || session.commitOp < oldest.commitOp) oldest = session
    }
    assert(oldest === undefined || !replyWhole(oldest.reply), () => "a missing reply is a header alone")
    assert(oldest === undefined || this.sessions.get(oldest.client) === oldest, () => "the session is in the table")
    return oldest
  }

  /**
   * A peer's copy of a reply whose body this table lacks: taken if it is exactly the reply the
   * session's header names (same checksum; the bus verified the body against it). Returns whether it was.
   */
  repairReply(reply: Uint8Array): boolean {
    assert(reply[FrameLayout.command.offset] === Command.reply, () => "a reply repairs a reply")
    assert(replyWhole(reply), () => "a repairing reply is whole")
    const session = this.sessions.get(u128FromBytes(reply, ReplyLayout.client.offset))
    if (session === undefined || replyWhole(session.reply) || !u128Equal(session.reply, 0, reply, 0)) return false
    session.reply = reply
    return true
  }

  /** The table as a checkpoint stores it, by slot. */
  entries(): Array<SessionEntry> {
    const entries = [...this.sessions.values()]
      .map((session) => ({ slot: session.slot, client: session.client, session: session.session, reply: session.reply }))
      .sort((a, b) => a.slot - b.slot)
    assert(entries.length === this.sessions.size, () => "every session is an entry")
    assert(entries.length <= this.clientsMax, () => "client table over its bound")
    return entries
  }
}

/**
 * What the table stores as a client's latest reply, checked when it is stored (`open`, `update`);
 * the replica checks the same fields when it resends it (ReplicaCore.resendIfDuplicate).
 */
function assertReplyOf(reply: Uint8Array, op: number): void {
  assert(reply[FrameLayout.command.offset] === Command.reply, () => "a session stores a reply")
  assert(readU64Number(reply, ReplyLayout.op.offset) === op, () => "a session's reply names the op it answers")
}

/** Whether a stored reply has its body (its size is its length), or is its header alone. */
const replyWhole = (reply: Uint8Array): boolean => readU32(reply, FrameLayout.size.offset) === reply.length
