/**
 * A probe of how responsive a replica stays under load: its own connection sends a `ping_client`
 * every 10 ms and times each pong (wire-protocol.md §9.7). The replica answers pings on the same
 * loop that commits and checkpoints, so the slowest answer is the longest the loop was busy
 * elsewhere: a checkpoint awaited on the loop would show here as its whole duration.
 *
 * A ping still unanswered when the probe stops counts for as long as it waited. At most
 * `outstandingMax` pings wait at once; beyond that the probe skips sends (and the waiting ones
 * already measure the stall).
 */
import { connect, type Socket } from "node:net"
import { performance } from "node:perf_hooks"
import { assert } from "../assert.ts"
import { buildMessage } from "../protocol/build.ts"
import { Command, FrameLayout, headerSize, PongClientLayout, readU32, releaseScarab, zeroHeader } from "../protocol/header.ts"

const intervalMs = 10
const outstandingMax = 1024

export class Pinger {
  private readonly socket: Socket
  private readonly timer: NodeJS.Timeout
  /** Send times by ping number (the ping's `ping_timestamp_monotonic`). */
  private readonly sentAt = new Map<number, number>()
  private next = 1
  private buffered: Buffer = Buffer.alloc(0)
  private slowestMs = 0
  private answered = 0
  private readonly client: bigint
  private readonly cluster: bigint

  private constructor(socket: Socket, cluster: bigint, client: bigint) {
    this.socket = socket
    this.cluster = cluster
    this.client = client
    socket.setNoDelay(true)
    socket.on("data", (chunk: Buffer) => this.onData(chunk))
    this.timer = setInterval(() => this.ping(), intervalMs)
  }

  /** Probes the replica at `address` (of `cluster`) as client `client`. */
  static start(address: { readonly host: string; readonly port: number }, cluster: bigint, client: bigint): Promise<Pinger> {
    return new Promise((resolve, reject) => {
      const socket = connect(address.port, address.host, () => { socket.off("error", reject); resolve(new Pinger(socket, cluster, client)) })
      socket.once("error", reject)
    })
  }

  /** Stops probing; returns the slowest answer (or wait, for a ping never answered) in ms and how many were answered. */
  stop(): { readonly slowestMs: number; readonly answered: number } {
    clearInterval(this.timer)
    const now = performance.now()
    for (const sent of this.sentAt.values()) this.slowestMs = Math.max(this.slowestMs, now - sent)
    this.socket.destroy()
    assert(this.slowestMs >= 0 && this.answered >= 0, () => "a probe measures forward")
    return { slowestMs: this.slowestMs, answered: this.answered }
  }

  private ping(): void {
    if (this.sentAt.size >= outstandingMax) return
    const number = this.next++
    this.sentAt.set(number, performance.now())
    const header = zeroHeader(Command.ping_client)
    header.release = releaseScarab
    header.client = this.client
    header.cluster = this.cluster
    header.ping_timestamp_monotonic = BigInt(number)
    this.socket.write(buildMessage(header, new Uint8Array(0)))
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk])
    while (this.buffered.length >= headerSize) {
      const size = readU32(this.buffered, FrameLayout.size.offset)
      assert(size >= headerSize && size <= 1024 * 1024, () => `a message of ${size} bytes`)
      if (this.buffered.length < size) return
      const message = this.buffered.subarray(0, size)
      this.buffered = this.buffered.subarray(size)
      assert(message[FrameLayout.command.offset] === Command.pong_client, () => `the probe got command ${message[FrameLayout.command.offset]}, not a pong`)
      const number = Number(message.readBigUInt64LE(PongClientLayout.ping_timestamp_monotonic.offset))
      const sent = this.sentAt.get(number)
      if (sent === undefined) continue
      this.sentAt.delete(number)
      this.slowestMs = Math.max(this.slowestMs, performance.now() - sent)
      this.answered++
    }
  }
}
