/**
 * A simulated client speaking the wire protocol (wire-protocol.md §9, §12, §13): it registers,
 * keeps one request in flight, retries it with the identical bytes until a reply names it, and
 * chains each request to the previous reply's `context`. It reconnects when its connection
 * closes. Every reply is checked (sim/checker.ts) and a reply to an already answered request
 * must be byte-identical to the first one received.
 *
 * The client is part of the simulator, not shipping code: Scarab has no wire client of its own
 * yet, so this one is written from the protocol documents.
 */
import { buildMessage } from "../src/protocol/build.ts"
import { Command, EvictionLayout, FrameLayout, readU32, releaseScarab, ReplyLayout, VsrOperation, zeroHeader } from "../src/protocol/header.ts"
import { validateMessage } from "../src/protocol/message.ts"
import { registerRequestBody, registerResultBatchSizeLimit } from "../src/protocol/register.ts"
import { headerSize } from "../src/protocol/operation.ts"
import type { Checker } from "./checker.ts"
import { equal, readU64 } from "./checker.ts"
import type { SimNetwork } from "./network.ts"
import type { GeneratedRequest } from "./workload.ts"
import { Trace, type TraceHash } from "./trace.ts"
import type { Random } from "./random.ts"

export interface ClientOptions {
  /** Debug log (the simulator's `--log=debug`). */
  readonly log?: ((line: string) => void) | undefined
  /** Ticks before the first retry; doubled per retry up to `retryTicksMax`. */
  readonly retryTicksMin: number
  readonly retryTicksMax: number
}

interface InFlight {
  readonly bytes: Uint8Array
  readonly number: number
  readonly issuedTick: number
  sentTick: number
  retries: number
}

export class SimClient {
  readonly index: number
  readonly id: bigint
  private readonly cluster: bigint
  private readonly network: SimNetwork
  private readonly checker: Checker
  private readonly trace: TraceHash
  private readonly random: Random
  private readonly options: ClientOptions
  private connection = 0
  /** Every connection this client opened (replies may arrive on an older one). */
  private readonly connections = new Set<number>()
  /** 0 before registration; then the register op. */
  session = 0n
  evicted = false
  private requestNumber = 0
  /** The newest request number sent: a reply to it may still arrive after an eviction. */
  private sentMax = 0
  private parent: Uint8Array = new Uint8Array(16)
  inFlight: InFlight | undefined = undefined
  /** The first reply received for each request number: later copies must be identical. */
  private readonly replies = new Map<number, Uint8Array>()
  requestsCompleted = 0
  retriesSent = 0
  /** Replies to a register re-executed after an eviction (a late duplicate of the register). */
  reregistrations = 0

  constructor(
    index: number, id: bigint, cluster: bigint, network: SimNetwork, checker: Checker, trace: TraceHash, random: Random,
    options: ClientOptions
  ) {
    this.index = index
    this.id = id
    this.cluster = cluster
    this.network = network
    this.checker = checker
    this.trace = trace
    this.random = random
    this.options = options
  }

  get registered(): boolean {
    return this.session !== 0n
  }

  get idle(): boolean {
    return this.inFlight === undefined && !this.evicted
  }

  /** Sends the register request (once, at start). */
  register(tick: number, now: number): void {
    const header = zeroHeader(Command.request)
    header.cluster = this.cluster
    header.release = releaseScarab
    header.client = this.id
    header.operation = VsrOperation.register
    this.start(buildMessage(header, registerRequestBody()), 0, tick, now)
  }

  /** Issues the next request of the session. */
  issue(request: GeneratedRequest, tick: number, now: number): void {
    const header = zeroHeader(Command.request)
    header.cluster = this.cluster
    header.release = releaseScarab
    header.client = this.id
    header.session = this.session
    header.request = this.requestNumber + 1
    header.operation = request.operation
    header.parent = u128Of(this.parent)
    this.start(buildMessage(header, request.body), this.requestNumber + 1, tick, now)
  }

  /** Retries the request in flight when its timer is due. */
  tick(tick: number, now: number): void {
    const inFlight = this.inFlight
    if (inFlight === undefined || this.evicted) return
    const wait = Math.min(this.options.retryTicksMax, this.options.retryTicksMin * 2 ** Math.min(inFlight.retries, 10))
    if (tick - inFlight.sentTick < wait + this.random.below(1 + (wait >> 2))) return
    inFlight.retries++
    this.retriesSent++
    this.options.log?.(`client ${this.index}: retry ${inFlight.retries} of request ${inFlight.number}`)
    this.send(inFlight, tick, now)
  }

  onClosed(connection: number): void {
    if (connection === this.connection) this.connection = 0
  }

  onMessage(connection: number, bytes: Uint8Array): void {
    // A replaced (evicted) client's connections may still deliver; they are not this client's.
    if (!this.connections.has(connection)) return
    if (validateMessage(bytes, u128Bytes(this.cluster)) !== undefined) return // corrupted in flight: dropped
    const command = bytes[FrameLayout.command.offset]
    if (command === Command.eviction) {
      if (u128At(bytes, EvictionLayout.client.offset) !== this.id) return
      this.trace.add(Trace.eviction, this.index, bytes[EvictionLayout.reason.offset]!)
      this.options.log?.(`client ${this.index}: evicted (reason ${bytes[EvictionLayout.reason.offset]})`)
      this.evicted = true
      this.inFlight = undefined
      return
    }
    if (command !== Command.reply) return
    if (u128At(bytes, ReplyLayout.client.offset) !== this.id) {
      this.checker.fail("reply_to_wrong_client", `client ${this.index} received a reply for another client`)
      return
    }
    const number = readU32(bytes, ReplyLayout.request.offset)
    const first = this.replies.get(number)
    if (first !== undefined) {
      // A duplicated register delivered after this client's session was evicted registers it
      // again as a new op (the protocol cannot tell; simulation.md §6): a different op, not a
      // different answer to the same commit.
      if (number === 0 && readU64(bytes, ReplyLayout.op.offset) !== readU64(first, ReplyLayout.op.offset)) {
        this.reregistrations++
        return
      }
      if (!equal(first, bytes)) {
        this.checker.fail("retry_reply_identical", `client ${this.index} request ${number}: a second reply differs from the first`)
      }
      return
    }
    const inFlight = this.inFlight
    if (inFlight === undefined || inFlight.number !== number) {
      // An op in the pipeline when a register evicted its session still commits and replies,
      // possibly after the eviction arrived: only a number never sent is a violation.
      if (number > this.sentMax) this.checker.fail("reply_to_unsent_request", `client ${this.index} never sent request ${number}`)
      return
    }
    if (!equal(bytes.subarray(ReplyLayout.request_checksum.offset, ReplyLayout.request_checksum.offset + 16), inFlight.bytes.subarray(0, 16))) {
      this.checker.fail("reply_request_checksum", `client ${this.index} request ${number}: the reply names another request`)
      return
    }
    const stored = bytes.slice()
    this.replies.set(number, stored)
    this.checker.onReply(inFlight.bytes, stored)
    if (number === 0) {
      if (registerResultBatchSizeLimit(stored.subarray(headerSize)) === undefined) this.checker.fail("register_reply", "invalid RegisterResult")
      this.session = readU64(stored, ReplyLayout.op.offset)
    }
    this.parent = stored.slice(ReplyLayout.context.offset, ReplyLayout.context.offset + 16)
    this.requestNumber = number
    this.inFlight = undefined
    this.requestsCompleted++
    this.trace.addBytes(Trace.reply, stored, 0, 16)
    this.options.log?.(`client ${this.index}: reply to request ${number} (operation ${stored[ReplyLayout.operation.offset]}) at op ${readU64(stored, ReplyLayout.op.offset)}, ${stored.length - headerSize} body bytes`)
  }

  private start(bytes: Uint8Array, number: number, tick: number, now: number): void {
    const inFlight: InFlight = { bytes, number, issuedTick: tick, sentTick: tick, retries: 0 }
    this.inFlight = inFlight
    this.sentMax = Math.max(this.sentMax, number)
    this.trace.addBytes(Trace.request, bytes, 0, 16)
    this.options.log?.(`client ${this.index}: request ${number} (operation ${bytes[196]}, ${bytes.length - headerSize} body bytes)`)
    this.send(inFlight, tick, now)
  }

  private send(inFlight: InFlight, tick: number, now: number): void {
    if (this.connection === 0 || !this.network.isOpen(this.connection)) {
      this.connection = this.network.connect(this.index)
      this.connections.add(this.connection)
    }
    inFlight.sentTick = tick
    this.network.sendToReplica(this.connection, inFlight.bytes, now)
  }
}

function u128Of(bytes: Uint8Array): bigint {
  const view = new DataView(bytes.buffer, bytes.byteOffset, 16)
  return view.getBigUint64(0, true) | (view.getBigUint64(8, true) << 64n)
}

function u128At(bytes: Uint8Array, offset: number): bigint {
  return u128Of(bytes.subarray(offset, offset + 16))
}

const clusterBytes = new Map<bigint, Uint8Array>()
function u128Bytes(value: bigint): Uint8Array {
  let bytes = clusterBytes.get(value)
  if (bytes === undefined) {
    bytes = new Uint8Array(16)
    const view = new DataView(bytes.buffer)
    view.setBigUint64(0, value & ((1n << 64n) - 1n), true)
    view.setBigUint64(8, value >> 64n, true)
    clusterBytes.set(value, bytes)
  }
  return bytes
}

