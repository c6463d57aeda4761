/**
 * A request-level fuzzer (issue 12): requests with valid checksums and every operation number
 * 0–255, with bodies of random sizes and contents, from registered and unregistered clients,
 * through the shipping replica (`layerReplica`, in this process, over a real test-profile data
 * file and the in-process MessageBus), with restarts on the same file along the way.
 *
 * What it proves, for one seed:
 * - the replica never stops: a defect in its loop (an assertion while executing an op) fails
 *   the run at once, naming the operation it was executing and the requests still unanswered;
 * - every op that reaches the WAL can be executed: every restart (graceful, or with requests in
 *   flight) replays the journal on the same file and opens, and its commit op is at least the one
 *   before (nothing lost);
 * - the answers make sense: every message the replica sends is valid and answers a request of
 *   the client it is sent to; a retry of a client's latest request gets the identical reply
 *   (also across restarts); a valid 0.17 request is answered (creates may be refused for
 *   capacity); every account a reply said was created is found by later lookups.
 *
 * How outcomes are known without timing assumptions: requests go in rounds of at most six, from
 * distinct clients, followed by a well-formed lookup of a dedicated probe client. Commits are in
 * op order, so when the probe's reply arrives every request of the round that was prepared has
 * been answered, and any eviction came earlier still; a request with neither was dropped.
 * Registrations go in rounds of their own, so that the session a register evicts (least recently
 * committed) cannot race with other requests. Six requests, the probe and a pulse fit the
 * pipeline (8), so no request is dropped for want of room in it.
 *
 * The requests, and the decisions taken on their outcomes, are a function of the seed. The
 * replica's clock is the real one: pulses (pending transfers expiring) and timestamps vary from
 * run to run, which changes op numbers but no outcome the fuzzer acts on.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cause, Context, Data, Deferred, Duration, Effect, Exit, Layer, Logger, References, Scope } from "effect"
import { MessageBus } from "../../src/actors/message_bus.ts"
import { LedgerCapacity, layerReplica, Replica, ReplicaLedger } from "../../src/actors/replica.ts"
import { makeMemoryBus, type MemoryBus, type MemoryConnection } from "../../src/layers/bus_memory.ts"
import { acquireStorageFile, formatDataFile } from "../../src/layers/disk.ts"
import { Prng } from "../../src/prng.ts"
import { createLedger, type Ledger, type LedgerOptions } from "../../src/ledger/ledger.ts"
import { buildMessage, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import {
  Command, EvictionLayout, EvictionReason, FrameLayout, headerSize, readU32, releaseClientMin, releaseScarab, ReplyLayout,
  RequestLayout, u128Equal, zeroHeader
} from "../../src/protocol/header.ts"
import { validateMessage } from "../../src/protocol/message.ts"
import { decodeMultiBatch, encodeMultiBatch } from "../../src/protocol/multi_batch.ts"
import { AccountFilterFlags, AccountFlags, AccountLayout, QueryFilterFlags, TransferFlags, TransferLayout } from "../../src/protocol/records.ts"
import { registerRequestBody } from "../../src/protocol/register.ts"
import { created } from "../../src/protocol/status.ts"
import { Storage } from "../../src/storage/storage.ts"

export interface FuzzOptions {
  readonly seed: number
  /** Fuzzed requests to send (the probe's requests are not counted): the run's bound. */
  readonly requests: number
  /** Requests between restarts; the run also ends with one. */
  readonly restartEvery: number
  /** The ledger's capacity: small, so that creates beyond it are tried. */
  readonly capacity: { readonly accountsMax: number; readonly transfersMax: number }
  /** Operations the fuzzed requests carry (default: all of 0–255). */
  readonly operations?: ReadonlyArray<number>
  /** How a failure tells its reader to replay this run. */
  readonly replay: (seed: number) => string
  /** Progress lines (every `progressEvery` requests) and, with `verbose`, the replica's log. */
  readonly print?: (line: string) => void
  readonly progressEvery?: number
  readonly verbose?: boolean
  /** How long a round may wait for the probe's reply before the replica is declared stuck. */
  readonly answerTimeoutMs?: number
}

export interface FuzzReport {
  readonly seed: number
  readonly requests: number
  readonly rounds: number
  readonly restarts: number
  readonly restartsWithRequestsInFlight: number
  readonly replies: number
  readonly evictions: number
  readonly evictionsByReason: Readonly<Record<string, number>>
  /** Requests the replica answered with nothing (session rules, capacity). */
  readonly dropped: number
  /** Requests whose header the bus rejects before the replica sees them. */
  readonly droppedByBus: number
  readonly retriesIdentical: number
  /** Ops the replica committed over the run (register, requests, probes, pulses): its final commit op. */
  readonly preparedOps: number
  readonly checkpointOp: number
  readonly repliesByOperation: Readonly<Record<string, number>>
  /** Operations sent at least once from a registered client with a header its session accepts. */
  readonly operationsSentInSession: ReadonlyArray<number>
  /** Operations sent at least once, with any header. */
  readonly operationsSent: ReadonlyArray<number>
  readonly largestBodyBytes: number
  readonly accountsCreated: number
  readonly warnings: number
  /** The first distinct warnings the replica logged (digits as N). */
  readonly warningSamples: ReadonlyArray<string>
  readonly elapsedMs: number
}

export class RequestFuzzFailure extends Data.TaggedError("RequestFuzzFailure")<{ readonly seed: number; readonly message: string }> {}

/** What a failed run says: the fuzzer's failure (seed, what, how to replay), or any other cause. */
export function failureText(cause: Cause.Cause<RequestFuzzFailure>): string {
  const failure = cause.reasons.find(Cause.isFailReason)
  return failure !== undefined ? failure.error.message : Cause.pretty(cause)
}

/** Runs the fuzzer on a fresh data file in a temporary directory, removed afterwards. */
export const runRequestFuzz = (options: FuzzOptions): Effect.Effect<FuzzReport, RequestFuzzFailure> =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "scarab-request-fuzz-"))),
    (directory) => Effect.suspend(() => new Fuzzer(options, join(directory, "0_0.scarab")).run()),
    (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
  )

/** Names of the operations that have one (wire-protocol.md §8, state-machine.md §3). */
export function operationName(operation: number): string {
  return operationNames[operation] ?? (operation < 128 ? "reserved for the protocol" : "unknown")
}

// --- tuning -------------------------------------------------------------------------------------

/** Requests per round besides the probe: with the probe and a pulse, within the pipeline of 8. */
const roundRequestsMax = 6
/** Registered fuzz clients; registrations and throwaway clients churn the 64-session table. */
const fuzzClients = 12
const clusterId = 0n
const clusterBytes = u128ToBytes(clusterId)
const bodySizeMax = 1024 * 1024 - headerSize
/** Events of one multi-batch batch that fill a 1 MiB body (128-byte events), as TigerBeetle's clients send. */
const batchEventsMax = 8189
const answerTimeoutMsDefault = 120_000
/** Accounts and transfers the model keeps to look up (the oldest are forgotten). */
const modelMax = 50_000

// --- the fuzzer ---------------------------------------------------------------------------------

type Outcome = { readonly _tag: "Reply"; readonly message: Uint8Array } | { readonly _tag: "Eviction"; readonly reason: number }

/** What a request's outcome must be, beyond "the replica survives". */
type Check = "none" | "identical_reply" | "answered" | "answered_or_dropped"

interface InFlight {
  /** 1-based among the fuzzed requests; 0 for the probe's. */
  readonly serial: number
  readonly client: FuzzClient | undefined
  readonly clientId: bigint
  readonly peer: Peer
  readonly bytes: Uint8Array
  readonly operation: number
  readonly note: string
  readonly check: Check
  /** For a valid 0.17 create: what each event creates, to learn from the reply. */
  readonly creates: Creates | undefined
  outcome: Outcome | undefined
}

type Creates =
  | { readonly _tag: "accounts"; readonly accounts: ReadonlyArray<KnownAccount> }
  | { readonly _tag: "transfers"; readonly transfers: ReadonlyArray<{ readonly id: bigint; readonly pending: boolean }> }

interface KnownAccount {
  readonly id: bigint
  readonly ledger: number
  readonly code: number
}

/** Who owns a connection: a registered client, or the shared connection of unregistered clients. */
interface Peer {
  readonly name: string
  connection: MemoryConnection | undefined
}

interface FuzzClient extends Peer {
  id: bigint
  /** 0n until registered; the op of its register otherwise. */
  session: bigint
  /** The latest request number answered, and that reply's `context` (the next request's parent). */
  latest: number
  parent: Uint8Array
  release: number
  lastRequest: Uint8Array | undefined
  lastReply: Uint8Array | undefined
}

interface Round {
  readonly requests: Array<InFlight>
  /** The request whose reply closes the round: the probe's. */
  readonly barrier: InFlight
  readonly byClient: Map<bigint, InFlight>
  readonly done: Deferred.Deferred<RoundEnd>
}

type RoundEnd = { readonly _tag: "Answered" } | { readonly _tag: "Stopped" | "Wrong"; readonly text: string }

interface Incarnation {
  readonly number: number
  readonly scope: Scope.Closeable
  readonly memory: MemoryBus
  readonly replica: Replica["Service"]
  readonly ledger: WatchedLedger
}

/** The replica's ledger with a record of what it executed last: a defect names its operation. */
interface WatchedLedger {
  ledger: Ledger
  last: string
  lastOperation: number | undefined
  threw: string | undefined
}

class Fuzzer {
  private readonly prng: Prng
  private readonly operations: ReadonlyArray<number>
  private readonly model = new Model()
  private readonly clients: Array<FuzzClient> = []
  private readonly probe: FuzzClient
  /** The one connection every unregistered (and throwaway) client sends on. */
  private readonly strangers: Peer = { name: "unregistered clients", connection: undefined }
  /** A wrong answer that arrived between rounds: the next round fails with it. */
  private wrongBetweenRounds: string | undefined
  private incarnation: Incarnation | undefined
  private incarnations = 0
  private round: Round | undefined
  private deck: Array<number> = []
  private sent = 0
  private restartPoints = 0
  private clientIdNext = 1n
  private readonly logTail: Array<string> = []
  private readonly stats = {
    rounds: 0, restarts: 0, restartsWithRequestsInFlight: 0, replies: 0, evictions: 0, dropped: 0, droppedByBus: 0,
    retriesIdentical: 0, largestBodyBytes: 0, warnings: 0, warningSamples: new Set<string>(),
    evictionsByReason: new Map<string, number>(), repliesByOperation: new Map<number, number>(),
    operationsSent: new Set<number>(), operationsInSession: new Set<number>()
  }

  private readonly options: FuzzOptions
  private readonly path: string

  constructor(options: FuzzOptions, path: string) {
    this.options = options
    this.path = path
    this.prng = new Prng(options.seed)
    this.operations = options.operations ?? Array.from({ length: 256 }, (_, operation) => operation)
    this.probe = this.newClient("probe")
    for (let i = 0; i < fuzzClients; i++) this.clients.push(this.newClient(`client ${i}`))
  }

  run(): Effect.Effect<FuzzReport, RequestFuzzFailure> {
    const fuzzer = this
    return Effect.gen(function* () {
      const started = Date.now()
      yield* formatDataFile({ path: fuzzer.path, cluster: clusterId, replica: 0, replicaCount: 1, profile: "test" }).pipe(
        Effect.mapError((error) => fuzzer.failure(`cannot format ${fuzzer.path}: ${error.message}`)),
        Effect.provideService(References.CurrentLoggers, new Set<Logger.Logger<unknown, unknown>>()))
      yield* fuzzer.open().pipe(Effect.mapError((text) => fuzzer.failure(`the replica does not open on a freshly formatted file: ${text}`)))
      yield* fuzzer.registerProbe()
      let nextRestart = fuzzer.options.restartEvery
      let nextProgress = fuzzer.options.progressEvery ?? Number.MAX_SAFE_INTEGER
      while (fuzzer.sent < fuzzer.options.requests) {
        const round = fuzzer.nextRound()
        if (fuzzer.sent >= nextRestart) {
          nextRestart += fuzzer.options.restartEvery
          yield* fuzzer.restartDuring(round)
        } else {
          yield* fuzzer.send(round)
          yield* fuzzer.settle(round)
        }
        if (fuzzer.sent >= nextProgress) {
          nextProgress += fuzzer.options.progressEvery ?? 0
          fuzzer.print(fuzzer.progress(started))
        }
      }
      yield* fuzzer.restart()
      const replica = fuzzer.incarnation!.replica
      const report = fuzzer.report(Number(yield* replica.commitOp), yield* replica.checkpointOp, Date.now() - started)
      yield* fuzzer.close()
      return report
    }).pipe(Effect.onExit(() => this.close()))
  }

  // --- rounds -----------------------------------------------------------------------------------

  /** The next round: a registration on its own, or up to six fuzzed requests from distinct clients. */
  private nextRound(): Round {
    const unregistered = this.clients.filter((client) => client.session === 0n)
    const requests: Array<InFlight> = []
    if ((unregistered.length > 0 && this.prng.chance(0.5)) || this.prng.chance(0.05)) {
      requests.push(this.registerRequest(unregistered))
    } else {
      const registered = this.shuffled(this.clients.filter((client) => client.session !== 0n))
      const count = 1 + this.prng.below(roundRequestsMax)
      for (let i = 0; i < count; i++) {
        const client = registered[i]
        requests.push(client === undefined || this.prng.chance(0.1) ? this.strangerRequest() : this.clientRequest(client))
      }
    }
    return this.makeRound(requests, this.probeRequest())
  }

  private makeRound(requests: Array<InFlight>, barrier: InFlight): Round {
    const byClient = new Map<bigint, InFlight>()
    for (const request of [...requests, barrier]) {
      if (byClient.has(request.clientId)) throw new Error("fuzzer: two requests of one client in a round")
      byClient.set(request.clientId, request)
    }
    return { requests, barrier, byClient, done: Deferred.makeUnsafe<RoundEnd>() }
  }

  /** Sends the round's requests that have no outcome yet, then its barrier. */
  private send(round: Round): Effect.Effect<void> {
    const fuzzer = this
    return Effect.gen(function* () {
      fuzzer.round = round
      fuzzer.stats.rounds++
      for (const request of [...round.requests, round.barrier]) {
        if (request.outcome !== undefined) continue
        if (request.serial > 0) fuzzer.stats.operationsSent.add(request.operation)
        yield* request.peer.connection!.send(request.bytes)
      }
    })
  }

  /** Waits for the barrier's reply (or the replica's end), then judges every outcome of the round. */
  private settle(round: Round): Effect.Effect<void, RequestFuzzFailure> {
    const fuzzer = this
    return Effect.gen(function* () {
      const end = yield* Deferred.await(round.done).pipe(Effect.timeoutOption(Duration.millis(fuzzer.options.answerTimeoutMs ?? answerTimeoutMsDefault)))
      if (end._tag === "None") {
        return yield* fuzzer.fail(round, `the replica did not answer the probe within ${fuzzer.options.answerTimeoutMs ?? answerTimeoutMsDefault} ms`)
      }
      if (end.value._tag === "Stopped") return yield* fuzzer.fail(round, `the replica's loop ended; it logged "${end.value.text}"`)
      if (end.value._tag === "Wrong") return yield* fuzzer.fail(round, end.value.text)
      fuzzer.round = undefined
      const problems: Array<string> = []
      if (fuzzer.wrongBetweenRounds !== undefined) problems.push(fuzzer.wrongBetweenRounds)
      fuzzer.judgeProbe(round.barrier, problems)
      for (const request of round.requests) fuzzer.judge(request, problems)
      if (problems.length > 0) return yield* fuzzer.fail(round, problems.join("\n  "))
    })
  }

  /** Applies one fuzzed request's outcome to the model and checks it; problems are collected. */
  private judge(request: InFlight, problems: Array<string>): void {
    const outcome = request.outcome
    const client = request.client
    if (outcome === undefined) {
      this.stats.dropped++
      if (request.check === "answered" || request.check === "identical_reply") problems.push(`${describe(request)}: dropped, expected an answer`)
      return
    }
    if (outcome._tag === "Eviction") {
      this.stats.evictions++
      const name = evictionReasonName(outcome.reason)
      this.stats.evictionsByReason.set(name, (this.stats.evictionsByReason.get(name) ?? 0) + 1)
      // The table evicted the session (least recently committed): the client registers anew.
      if (outcome.reason === EvictionReason.no_session && client !== undefined && client.session !== 0n && request.operation !== 2) client.session = 0n
      else if (request.check !== "none") problems.push(`${describe(request)}: evicted (${name}), expected a reply`)
      return
    }
    this.stats.replies++
    const operation = outcome.message[ReplyLayout.operation.offset]!
    this.stats.repliesByOperation.set(operation, (this.stats.repliesByOperation.get(operation) ?? 0) + 1)
    if (client === undefined) return void problems.push(`${describe(request)}: a reply to a client that never registered`)
    const number = readU32(outcome.message, ReplyLayout.request.offset)
    if (operation === 2 && number === 0 && client.session === 0n) {
      client.session = readU64(outcome.message, ReplyLayout.op.offset)
      client.release = readU32(request.bytes, FrameLayout.release.offset)
      this.answered(client, request, outcome.message, 0)
    } else if (number === client.latest + 1) {
      this.answered(client, request, outcome.message, number)
      if (request.creates !== undefined) this.model.learn(request.creates, outcome.message.subarray(headerSize))
    } else if (number === client.latest && client.lastReply !== undefined && u128Equal(request.bytes, 0, client.lastRequest!, 0)) {
      // A retry of the latest request: the stored reply, byte for byte (vsr.md §9.5).
      if (!sameBytes(outcome.message, client.lastReply)) problems.push(`${describe(request)}: a retry got a reply other than the stored one`)
      else this.stats.retriesIdentical++
    } else {
      problems.push(`${describe(request)}: a reply to request ${number}, the client's latest being ${client.latest}`)
    }
  }

  private answered(client: FuzzClient, request: InFlight, reply: Uint8Array, number: number): void {
    client.latest = number
    client.parent = reply.slice(ReplyLayout.context.offset, ReplyLayout.context.offset + 16)
    client.lastRequest = request.bytes
    client.lastReply = reply
  }

  /** The probe's reply: each looked-up account the model knows, in order, with its fields. */
  private judgeProbe(probe: InFlight, problems: Array<string>): void {
    const outcome = probe.outcome
    if (outcome?._tag !== "Reply") return void problems.push(`${describe(probe)}: the probe was not answered with a reply`)
    this.answered(this.probe, probe, outcome.message, readU32(outcome.message, ReplyLayout.request.offset))
    if (probe.operation === 2) {
      this.probe.session = readU64(outcome.message, ReplyLayout.op.offset)
      return
    }
    const expected = this.model.probed.get(probe)
    this.model.probed.delete(probe)
    const batches = decodeMultiBatch(outcome.message.subarray(headerSize), 128)
    if (typeof batches === "string" || batches.length !== 1) return void problems.push(`${describe(probe)}: the lookup's reply body does not decode (${String(batches)})`)
    const found = batches[0]!
    const lines: Array<string> = []
    for (let i = 0; i < (expected?.length ?? 0); i++) {
      const account = expected![i]!
      const at = i * 128
      if (at + 128 > found.length) { lines.push(`account ${account.id} is missing`); break }
      const id = u128FromBytes(found, at + AccountLayout.id)
      const ledger = readU32(found, at + AccountLayout.ledger)
      const code = found[at + AccountLayout.code]! | (found[at + AccountLayout.code + 1]! << 8)
      if (id !== account.id || ledger !== account.ledger || code !== account.code) lines.push(`found account ${id} (ledger ${ledger}, code ${code}) where ${account.id} (ledger ${account.ledger}, code ${account.code}) was created`)
    }
    if (found.length !== (expected?.length ?? 0) * 128) lines.push(`${found.length / 128} accounts found, ${expected?.length ?? 0} expected`)
    if (lines.length > 0) problems.push(`the probe's lookup of created accounts: ${lines.join("; ")}`)
  }

  // --- restarts ---------------------------------------------------------------------------------

  /**
   * A restart at a round: after the round settled, or (every other time) with its requests just
   * sent and in flight, as a crash would leave them; then the round is resent as a client
   * retries, and its outcomes are judged as usual.
   */
  private restartDuring(round: Round): Effect.Effect<void, RequestFuzzFailure> {
    const fuzzer = this
    return Effect.gen(function* () {
      if (fuzzer.restartPoints++ % 2 === 0) {
        yield* fuzzer.send(round)
        yield* fuzzer.settle(round)
        return yield* fuzzer.restart()
      }
      fuzzer.stats.restartsWithRequestsInFlight++
      yield* fuzzer.send(round)
      yield* fuzzer.restart(round)
      // The probe's own request may have committed before the restart: settle it alone first, so
      // that a stored reply to it cannot overtake the round's requests.
      const probe = round.barrier
      if (probe.outcome === undefined) {
        const alone = fuzzer.makeRound([], probe)
        yield* fuzzer.send(alone)
        yield* fuzzer.settle(alone)
      } else {
        const problems: Array<string> = []
        fuzzer.judgeProbe(probe, problems)
        if (problems.length > 0) return yield* fuzzer.failure(`after request ${fuzzer.sent}: ${problems.join("; ")}`)
      }
      const again = fuzzer.makeRound(round.requests, fuzzer.probeRequest())
      yield* fuzzer.send(again)
      yield* fuzzer.settle(again)
    })
  }

  /**
   * Closes the replica and opens it again on the same file: it must replay its journal and open,
   * with at least the commit op it had; then a probe round (a well-formed lookup) must succeed.
   * `inFlight` is a round whose outcomes are still open: it stays current across the restart.
   */
  private restart(inFlight?: Round): Effect.Effect<void, RequestFuzzFailure> {
    const fuzzer = this
    return Effect.gen(function* () {
      const before = yield* fuzzer.incarnation!.replica.commitOp
      const ledger = fuzzer.incarnation!.ledger.ledger
      yield* fuzzer.close()
      // Nothing runs now: the closed replica's ledger must still satisfy every invariant.
      const broken = attempt(() => ledger.verify())
      if (broken !== undefined) return yield* fuzzer.failure(`after request ${fuzzer.sent}: the ledger's invariants are broken: ${broken}`)
      fuzzer.stats.restarts++
      yield* fuzzer.open().pipe(Effect.mapError((text) => fuzzer.failure(
        `restart ${fuzzer.stats.restarts} after request ${fuzzer.sent} failed: the replica does not open on its data file: ${text}` +
          (inFlight === undefined ? "" : `\n  requests in flight at the restart:\n    ${inFlight.requests.map(describe).join("\n    ")}`))))
      const after = yield* fuzzer.incarnation!.replica.commitOp
      if (after < before) {
        return yield* fuzzer.failure(`restart ${fuzzer.stats.restarts} after request ${fuzzer.sent}: commit op ${after} after the restart, ${before} before (committed ops lost)`)
      }
      if (inFlight === undefined) {
        const probe = fuzzer.makeRound([], fuzzer.probeRequest())
        yield* fuzzer.send(probe)
        yield* fuzzer.settle(probe)
      }
    })
  }

  /** Opens the replica on the data file, with a fresh bus, and connects every client to it; or says why it cannot. */
  private open(): Effect.Effect<void, string> {
    const fuzzer = this
    return Effect.gen(function* () {
      const number = ++fuzzer.incarnations
      const watched: WatchedLedger = { ledger: createLedger(), last: "nothing yet", lastOperation: undefined, threw: undefined }
      const scope = yield* Scope.make()
      const logger = Logger.make<unknown, void>(({ message, logLevel, cause }) => fuzzer.onLog(number, logLevel, message, cause))
      const exit = yield* Effect.exit(Effect.gen(function* () {
        const storage = yield* acquireStorageFile({ path: fuzzer.path })
        const memory = yield* makeMemoryBus(clusterId)
        const context = yield* Layer.build(layerReplica).pipe(Effect.provideService(Storage, storage), Effect.provideService(MessageBus, memory.bus))
        return { memory, replica: Context.get(context, Replica) }
      }).pipe(
        Scope.provide(scope),
        Effect.provideService(LedgerCapacity, fuzzer.options.capacity),
        Effect.provideService(ReplicaLedger, (capacity: LedgerOptions) => watch(watched, createLedger(capacity))),
        Effect.provideService(References.CurrentLoggers, new Set([logger])),
        Effect.provideService(References.MinimumLogLevel, "Info")
      ))
      if (Exit.isFailure(exit)) {
        yield* Scope.close(scope, exit)
        return yield* Effect.fail(causeText(exit.cause) +
          (watched.threw === undefined ? "" : `\n  replaying, the ledger threw executing ${watched.last}: ${watched.threw}`))
      }
      const { memory, replica } = exit.value
      fuzzer.incarnation = { number, scope, memory, replica, ledger: watched }
      for (const peer of [fuzzer.probe, ...fuzzer.clients, fuzzer.strangers]) peer.connection = yield* memory.connect((message) => fuzzer.onMessage(peer, message))
    })
  }

  private close(): Effect.Effect<void> {
    const incarnation = this.incarnation
    this.incarnation = undefined
    return incarnation === undefined ? Effect.void : Scope.close(incarnation.scope, Exit.void)
  }

  private registerProbe(): Effect.Effect<void, RequestFuzzFailure> {
    this.probe.id = this.clientIdNext++
    const register = this.inFlight(0, this.probe, this.probe, register_(this.probe.id, registerRequestBody()), 2, "the probe's register", "answered")
    const round = this.makeRound([], register)
    return Effect.andThen(this.send(round), this.settle(round))
  }

  // --- what the replica says ----------------------------------------------------------------------

  /** Every message the replica sends: valid, for a client of this connection, answering its request. */
  private onMessage(peer: Peer, message: Uint8Array): void {
    const round = this.round
    const rejection = validateMessage(message, clusterBytes)
    const command = message[FrameLayout.command.offset]
    let request: InFlight | undefined
    let problem: string | undefined
    if (rejection !== undefined) problem = `the replica sent an invalid message: ${JSON.stringify(rejection)}`
    else if (command !== Command.reply && command !== Command.eviction) problem = `the replica sent command ${command} to a client`
    else {
      const client = u128FromBytes(message, command === Command.reply ? ReplyLayout.client.offset : EvictionLayout.client.offset)
      request = round?.byClient.get(client)
      if (request === undefined || request.peer !== peer) problem = `the replica sent a ${command === Command.reply ? "reply" : "eviction"} to client ${client}, which has no request in flight on this connection`
      else if (request.outcome !== undefined) problem = `${describe(request)}: answered twice`
      else if (command === Command.reply && !u128Equal(message, ReplyLayout.request_checksum.offset, request.bytes, 0)) problem = `${describe(request)}: a reply to another request`
    }
    if (problem !== undefined) {
      if (round !== undefined) Deferred.doneUnsafe(round.done, Effect.succeed({ _tag: "Wrong", text: problem }))
      else this.wrongBetweenRounds ??= problem
      return
    }
    request!.outcome = command === Command.reply ? { _tag: "Reply", message } : { _tag: "Eviction", reason: message[EvictionLayout.reason.offset]! }
    if (request !== round!.barrier) return
    Deferred.doneUnsafe(round!.done, Effect.succeed(command === Command.reply ? { _tag: "Answered" } as const
      : { _tag: "Wrong", text: `${describe(request!)}: evicted (${evictionReasonName(message[EvictionLayout.reason.offset]!)})` } as const))
  }

  private onLog(incarnation: number, level: string, message: unknown, cause: Cause.Cause<unknown>): void {
    if (this.incarnation !== undefined && this.incarnation.number !== incarnation) return
    let text = (Array.isArray(message) ? message : [message]).map((part) => Cause.isCause(part) ? causeText(part) : String(part)).join(" ")
    if (cause.reasons.length > 0) text += `: ${causeText(cause)}`
    this.logTail.push(`${level}: ${text}`)
    if (this.logTail.length > 10) this.logTail.shift()
    if (this.options.verbose) this.print(`replica ${level}: ${text}`)
    if (level === "Warn") {
      this.stats.warnings++
      if (this.stats.warningSamples.size < 10) this.stats.warningSamples.add(text.replace(/\d+/g, "N"))
    }
    if (level !== "Fatal" && level !== "Error") return
    if (this.round !== undefined) Deferred.doneUnsafe(this.round.done, Effect.succeed({ _tag: "Stopped", text }))
    else this.wrongBetweenRounds ??= `the replica logged (${level}): ${text}`
  }

  // --- failures -----------------------------------------------------------------------------------

  /** The replica stopped or answered wrongly during `round`: say what, then try one restart. */
  private fail(round: Round, what: string): Effect.Effect<never, RequestFuzzFailure> {
    const fuzzer = this
    return Effect.gen(function* () {
      const watched = fuzzer.incarnation?.ledger
      const unanswered = [...round.requests, round.barrier].filter((request) => request.outcome === undefined)
      const lines = [`after request ${fuzzer.sent} (round ${fuzzer.stats.rounds}): ${what}`]
      if (watched?.threw !== undefined) lines.push(`the ledger threw executing ${watched.last}: ${watched.threw}`)
      else if (watched !== undefined) lines.push(`the ledger last executed ${watched.last}`)
      const culprit = watched?.threw !== undefined ? watched.lastOperation : undefined
      lines.push(`requests of the round without an answer:`, ...unanswered.map((request) =>
        `  ${describe(request)}${request.operation === culprit ? "  <- the operation the ledger was executing" : ""}`))
      lines.push(`the replica's last log lines:`, ...fuzzer.logTail.map((line) => `  ${line}`))
      fuzzer.round = undefined
      yield* fuzzer.close()
      // Whether the journal now holds what stopped it: a replica that cannot restart is down for good.
      const restart = yield* Effect.result(fuzzer.open())
      if (restart._tag === "Success") {
        lines.push(`a restart on the same data file opens (commit op ${yield* fuzzer.incarnation!.replica.commitOp})`)
        yield* fuzzer.close()
      } else {
        lines.push(`and a restart on the same data file fails too: ${restart.failure}`)
      }
      return yield* fuzzer.failure(lines.join("\n  "))
    })
  }

  private failure(what: string): RequestFuzzFailure {
    const seed = this.options.seed
    return new RequestFuzzFailure({ seed, message: `request fuzzer, seed ${seed}: ${what}\n  replay: ${this.options.replay(seed)}` })
  }

  // --- requests ---------------------------------------------------------------------------------

  private probeRequest(): InFlight {
    const accounts = this.model.sample(this.prng, this.prng.below(5))
    const body = encodeMultiBatch([idsOf(accounts.map((account) => account.id))], 16)
    const request = this.inFlight(0, this.probe, this.probe, this.header(this.probe, 140, body), 140, "probe: lookup_accounts of created accounts", "answered")
    this.model.probed.set(request, accounts)
    return request
  }

  /** A new client registering, or a slot's client replaced by a new one; sometimes with a bad body. */
  private registerRequest(unregistered: ReadonlyArray<FuzzClient>): InFlight {
    const throwaway = unregistered.length === 0 && this.prng.chance(0.7)
    const client = throwaway ? this.newClient("throwaway client") : unregistered[0] ?? this.clients[this.prng.below(this.clients.length)]!
    client.id = this.clientIdNext++
    client.session = 0n
    client.latest = 0
    client.parent = new Uint8Array(16)
    client.lastRequest = undefined
    client.lastReply = undefined
    const roll = this.prng.below(10)
    // Clients up to 0.15 registered without a body (evicted); the reserved bytes of the body are not checked.
    const body = roll === 0 ? new Uint8Array(0) : roll === 1 ? this.randomBytes(256) : registerRequestBody()
    return this.inFlight(++this.sent, client, throwaway ? this.strangers : client, register_(client.id, body), 2,
      `${client.name} ${client.id}: register, ${body.length}-byte body`, body.length === 256 ? "answered" : "none")
  }

  /** A request of an unregistered client: any operation but register (which would change the session table). */
  private strangerRequest(): InFlight {
    let operation = this.operation()
    if (operation === 2) operation = 6
    const id = (1n << 120n) | BigInt(this.prng.nextU32()) << 32n | BigInt(this.prng.nextU32())
    const body = this.fuzzBody(operation)
    const header = zeroHeader(Command.request)
    header.cluster = clusterId
    header.release = releaseScarab
    header.client = id
    header.session = BigInt(1 + this.prng.below(1000))
    header.request = 1 + this.prng.below(3)
    header.operation = operation
    return this.inFlight(++this.sent, undefined, this.strangers, buildMessage(header, body), operation,
      `unregistered client ${id}: ${operationLabel(operation)}, ${body.length}-byte body`, "none", undefined, id)
  }

  /** A registered client's request: a retry, a valid 0.17-style request, or any operation and body. */
  private clientRequest(client: FuzzClient): InFlight {
    if (client.lastRequest !== undefined && this.prng.chance(0.04)) {
      const operation = client.lastRequest[RequestLayout.operation.offset]!
      return this.inFlight(++this.sent, client, client, client.lastRequest, operation,
        `${client.name} ${client.id}: retry of request ${client.latest} (${operationLabel(operation)})`, "identical_reply")
    }
    const roll = this.prng.nextFloat()
    if (roll < 0.3) return this.validRequest(client)
    // A deck of 0..255 (shuffled, refilled) with a header the session accepts: every operation is
    // tried, in session, within every 256 draws of this kind.
    const fromDeck = roll < 0.55
    const operation = fromDeck ? this.fromDeck() : this.operation()
    // The protocol's operations pass the header rules only with their pinned body size.
    const body = fromDeck && operation <= 6 ? this.randomBytes(protocolBodySizes[operation] ?? 0) : this.fuzzBody(operation)
    const header = this.headerOf(client, operation)
    const fuzzed = fromDeck ? "in session" : this.fuzzHeader(header, client)
    const bytes = buildMessage(header, body)
    if (fuzzed === "in session" && validateMessage(bytes, clusterBytes) === undefined) this.stats.operationsInSession.add(operation)
    return this.inFlight(++this.sent, client, client, bytes, operation,
      `${client.name} ${client.id}: ${operationLabel(operation)}, ${body.length}-byte body, header ${fuzzed}`, "none")
  }

  /** A well-formed request of a 0.17 operation (or its deprecated twin), from the model's state. */
  private validRequest(client: FuzzClient): InFlight {
    const operations = this.operations.filter((operation) => operation >= 129 && operation <= 147 && operation !== 137)
    const operation = operations.length === 0 ? this.operation() : operations[this.prng.below(operations.length)]!
    // Only 129–147 have valid bodies of their own (137 excepted); with --operations, others may come here.
    const valid = currentOf[operation] !== undefined
    const { body, creates } = valid ? this.validBody(operation) : { body: this.fuzzBody(operation), creates: undefined }
    const bytes = this.header(client, operation, body)
    if (validateMessage(bytes, clusterBytes) === undefined) this.stats.operationsInSession.add(operation)
    // 0.17 reads must be answered; creates may be refused when the ledger could overflow.
    const check: Check = operation < 140 || !valid ? "none" : operation >= 146 ? "answered_or_dropped" : "answered"
    return this.inFlight(++this.sent, client, client, bytes, operation,
      `${client.name} ${client.id}: ${valid ? "valid " : ""}${operationLabel(operation)}, ${body.length}-byte body`, check, creates)
  }

  private inFlight(
    serial: number, client: FuzzClient | undefined, peer: Peer, bytes: Uint8Array, operation: number, note: string, check: Check,
    creates?: Creates, clientId?: bigint
  ): InFlight {
    this.stats.largestBodyBytes = Math.max(this.stats.largestBodyBytes, bytes.length - headerSize)
    if (serial > 0 && validateMessage(bytes, clusterBytes) !== undefined) this.stats.droppedByBus++
    return { serial, client, clientId: clientId ?? client!.id, peer, bytes, operation, note, check, creates, outcome: undefined }
  }

  private header(client: FuzzClient, operation: number, body: Uint8Array): Uint8Array {
    return buildMessage(this.headerOf(client, operation), body)
  }

  /** The header a client in good standing sends next: its session, number and parent. */
  private headerOf(client: FuzzClient, operation: number) {
    const header = zeroHeader(Command.request)
    header.cluster = clusterId
    header.release = client.release
    header.client = client.id
    header.session = client.session
    header.request = client.latest + 1
    header.parent = u128FromBytes(client.parent, 0)
    header.operation = operation
    return header
  }

  /** Breaks the header a quarter of the time: session, number, parent, release, view, timestamp or replica. */
  private fuzzHeader(header: ReturnType<Fuzzer["headerOf"]>, client: FuzzClient): string {
    if (!this.prng.chance(0.25)) return "in session"
    switch (this.prng.below(9)) {
      case 0:
        header.session = client.session > 1n ? client.session - 1n : client.session + 1n
        return `session ${header.session} (the client's is ${client.session})`
      case 1:
        header.session = client.session + 1n + BigInt(this.prng.below(100))
        return `session ${header.session} (the client's is ${client.session})`
      case 2:
        header.request = client.latest >= 1 && this.prng.chance(0.5) ? client.latest : client.latest + 2 + this.prng.below(10)
        return `request ${header.request} (the client's latest is ${client.latest})`
      case 3:
        header.parent = u128FromBytes(this.randomBytes(16), 0)
        return "a wrong parent"
      case 4:
        header.release = [releaseClientMin - 1, releaseScarab + 1, releaseClientMin, 1 + this.prng.below(releaseClientMin)][this.prng.below(4)]!
        return `release ${header.release}`
      case 5:
        header.view = 1 + this.prng.below(3)
        return `view ${header.view}`
      case 6:
        header.timestamp = BigInt(1 + this.prng.nextU32())
        return "a timestamp"
      case 7:
        header.replica = 1 + this.prng.below(5)
        return `replica ${header.replica}`
      default:
        header.previous_request_latency = this.prng.nextU32()
        return "a previous_request_latency"
    }
  }

  /** Weighted: the state machine's operations (128–147) and the protocol's (0–6) often, any other sometimes. */
  private operation(): number {
    const roll = this.prng.below(100)
    const candidates = roll < 50 ? this.operations.filter((operation) => operation >= 128 && operation <= 147)
      : roll < 75 ? this.operations.filter((operation) => operation <= 6)
      : this.operations
    const from = candidates.length > 0 ? candidates : this.operations
    return from[this.prng.below(from.length)]!
  }

  private fromDeck(): number {
    if (this.deck.length === 0) this.deck = this.shuffled([...this.operations])
    return this.deck.pop()!
  }

  // --- bodies -----------------------------------------------------------------------------------

  /** A body of random size and content, shaped (or misshaped) for `operation`. */
  private fuzzBody(operation: number): Uint8Array {
    const size = eventSizes[operation] ?? elementSizes[this.prng.below(elementSizes.length)]!
    const roll = this.prng.below(100)
    if (roll < 12) return new Uint8Array(0)
    if (roll < 20 || (operation <= 6 && roll < 60)) return this.randomBytes(protocolBodySizes[operation] ?? 1 + this.prng.below(512))
    if (roll < 30) return this.randomBytes(1 + this.prng.below(512))
    if (roll < 44) return concat(this.records(operation, size, this.prng.below(65)))
    if (roll < 70) return this.multiBatch(operation, this.prng.chance(0.85) ? size : elementSizes[this.prng.below(elementSizes.length)]!, 1 + this.prng.below(4), 33)
    if (roll < 74) return this.multiBatch(operation, size, 50 + this.prng.below(1500), 2)
    if (roll < 82) return this.brokenTrailer(this.multiBatch(operation, size, 1 + this.prng.below(4), 17))
    if (roll < 85) return this.bigBody(operation, size)
    if (currentOf[operation] !== undefined) return this.validBody(operation).body
    return this.multiBatch(operation, size, 1, 9)
  }

  /** Up to 1 MiB: random bytes, or as many events as the body holds, flat or multi-batch. */
  private bigBody(operation: number, size: number): Uint8Array {
    switch (this.prng.below(3)) {
      case 0:
        return this.randomBytes(bodySizeMax - this.prng.below(256 * 1024))
      case 1:
        return concat(this.records(operation, size, Math.floor(bodySizeMax / size) - this.prng.below(4)))
      default: {
        // One batch: its count is a u16, and its trailer is one element (elements are 8 bytes or more).
        const events = Math.min(0xffff, Math.floor((bodySizeMax - size) / size))
        return encodeMultiBatch([concat(this.records(operation, size, events - this.prng.below(3)))], size)
      }
    }
  }

  private multiBatch(operation: number, size: number, batches: number, perBatchMax: number): Uint8Array {
    const list: Array<Uint8Array> = []
    let bytes = 0
    for (let i = 0; i < batches; i++) {
      const batch = concat(this.records(operation, size, this.prng.below(perBatchMax)))
      if (bytes + batch.length + 2 * (i + 2) + size > bodySizeMax) break
      bytes += batch.length
      list.push(batch)
    }
    if (list.length === 0) list.push(new Uint8Array(0))
    return encodeMultiBatch(list, size)
  }

  /** A multi-batch body with one trailer byte changed: a count, `k`, or the filler. */
  private brokenTrailer(body: Uint8Array): Uint8Array {
    const broken = body.slice()
    if (broken.length === 0) return broken
    const at = broken.length - 1 - this.prng.below(Math.min(broken.length, 8))
    broken[at] = (broken[at]! + 1 + this.prng.below(255)) & 0xff
    return broken
  }

  /** `count` records of `size` bytes: random, plausible (a valid one slightly mutated), or valid. */
  private records(operation: number, size: number, count: number): Array<Uint8Array> {
    const kind = this.prng.below(3)
    const records: Array<Uint8Array> = []
    for (let i = 0; i < count; i++) {
      const valid = kind > 0 && size === eventSizes[operation] ? this.validRecord(operation) : undefined
      records.push(valid === undefined ? this.randomBytes(size) : kind === 1 ? this.mutate(valid) : valid)
    }
    return records
  }

  /** A valid body for 129–147 (137 excepted: no records of its own), and what a 0.17 create would create. */
  private validBody(operation: number): { body: Uint8Array; creates: Creates | undefined } {
    const current = currentOf[operation]!
    const size = eventSizes[operation]!
    const multiBatch = operation >= 138
    const query = current === 142 || current === 143 || current === 144 || current === 145
    const batchCount = multiBatch ? 1 + this.prng.below(3) : 1
    const big = (current === 146 || current === 147) && this.prng.chance(0.03)
    // A query's reply must fit 1 MiB: the limits of a body's filters share 8189 results.
    const limitMax = Math.floor(batchEventsMax / batchCount)
    const batches: Array<Array<Uint8Array>> = []
    for (let i = 0; i < batchCount; i++) {
      const count = query ? 1 : big ? 1 + this.prng.below(limitMax) : this.prng.below(17)
      batches.push(Array.from({ length: count }, () => this.validRecord(operation, limitMax)!))
    }
    const body = multiBatch ? encodeMultiBatch(batches.map(concat), size) : concat(batches[0]!)
    const records = batches.flat()
    // Only 0.17's dense results are learnt from; the 0.16 encodings' sparse ones are not.
    if (operation === 146) {
      return { body, creates: { _tag: "accounts", accounts: records.map((record) => ({ id: u128FromBytes(record, 0), ledger: readU32(record, AccountLayout.ledger), code: record[AccountLayout.code]! | (record[AccountLayout.code + 1]! << 8) })) } }
    }
    if (operation === 147) {
      return { body, creates: { _tag: "transfers", transfers: records.map((record) => ({ id: u128FromBytes(record, 0), pending: (readU16(record, TransferLayout.flags) & TransferFlags.pending) !== 0 })) } }
    }
    return { body, creates: undefined }
  }

  /** One valid event of `operation`'s 0.17 twin, or undefined for operations without records. */
  private validRecord(operation: number, limitMax = batchEventsMax): Uint8Array | undefined {
    switch (currentOf[operation]) {
      case 146:
        return this.model.newAccount(this.prng)
      case 147:
        return this.model.newTransfer(this.prng)
      case 140:
        return idsOf([this.model.accountId(this.prng)])
      case 141:
        return idsOf([this.model.transferId(this.prng)])
      case 142:
      case 143:
        return this.model.accountFilter(this.prng, limitMax)
      case 144:
      case 145:
        return this.model.queryFilter(this.prng, limitMax)
      default:
        return undefined
    }
  }

  private mutate(record: Uint8Array): Uint8Array {
    const flips = 1 + this.prng.below(4)
    for (let i = 0; i < flips; i++) record[this.prng.below(record.length)] = this.prng.below(256)
    return record
  }

  private randomBytes(length: number): Uint8Array {
    const bytes = new Uint8Array(length)
    const words = Math.floor(length / 4)
    const view = new DataView(bytes.buffer)
    for (let i = 0; i < words; i++) view.setUint32(i * 4, this.prng.nextU32(), true)
    for (let i = words * 4; i < length; i++) bytes[i] = this.prng.below(256)
    return bytes
  }

  // --- helpers ------------------------------------------------------------------------------------

  private newClient(name: string): FuzzClient {
    return { name, connection: undefined, id: 0n, session: 0n, latest: 0, parent: new Uint8Array(16), release: releaseScarab, lastRequest: undefined, lastReply: undefined }
  }

  private shuffled<A>(items: Array<A>): Array<A> {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.prng.below(i + 1)
      const swap = items[i]!
      items[i] = items[j]!
      items[j] = swap
    }
    return items
  }

  private print(line: string): void {
    this.options.print?.(line)
  }

  private progress(started: number): string {
    const seconds = (Date.now() - started) / 1000
    return `requests ${this.sent}, rounds ${this.stats.rounds}, restarts ${this.stats.restarts}, replies ${this.stats.replies}, ` +
      `evictions ${this.stats.evictions}, dropped ${this.stats.dropped}, accounts ${this.model.accountsCreated}, ` +
      `${Math.round(this.sent / Math.max(seconds, 0.001))} requests/s`
  }

  private report(preparedOps: number, checkpointOp: number, elapsedMs: number): FuzzReport {
    return {
      seed: this.options.seed,
      requests: this.sent,
      rounds: this.stats.rounds,
      restarts: this.stats.restarts,
      restartsWithRequestsInFlight: this.stats.restartsWithRequestsInFlight,
      replies: this.stats.replies,
      evictions: this.stats.evictions,
      evictionsByReason: Object.fromEntries(this.stats.evictionsByReason),
      dropped: this.stats.dropped,
      droppedByBus: this.stats.droppedByBus,
      retriesIdentical: this.stats.retriesIdentical,
      preparedOps,
      checkpointOp,
      repliesByOperation: Object.fromEntries([...this.stats.repliesByOperation].sort(([a], [b]) => a - b)),
      operationsSentInSession: [...this.stats.operationsInSession].sort((a, b) => a - b),
      operationsSent: [...this.stats.operationsSent].sort((a, b) => a - b),
      largestBodyBytes: this.stats.largestBodyBytes,
      accountsCreated: this.model.accountsCreated,
      warnings: this.stats.warnings,
      warningSamples: [...this.stats.warningSamples],
      elapsedMs
    }
  }
}

// --- the model: what the replica said it created ------------------------------------------------

class Model {
  private readonly accounts: Array<KnownAccount> = []
  private readonly transfers: Array<bigint> = []
  private readonly pending: Array<bigint> = []
  private readonly byLedger = new Map<number, Array<bigint>>()
  private idNext = 1n
  accountsCreated = 0
  /** The accounts each probe request looks up. */
  readonly probed = new Map<InFlight, ReadonlyArray<KnownAccount>>()

  /** Learns from a create's reply: dense 0.17 results, one per event, in order. */
  learn(creates: Creates, body: Uint8Array): void {
    const batches = decodeMultiBatch(body, 16)
    if (typeof batches === "string") return
    const results = concat(batches)
    const events = creates._tag === "accounts" ? creates.accounts : creates.transfers
    for (let i = 0; i < events.length && (i + 1) * 16 <= results.length; i++) {
      if (readU32(results, i * 16 + 8) !== created) continue
      if (creates._tag === "accounts") {
        const account = creates.accounts[i]!
        this.accountsCreated++
        pushBounded(this.accounts, account)
        const ids = this.byLedger.get(account.ledger) ?? []
        pushBounded(ids, account.id)
        this.byLedger.set(account.ledger, ids)
      } else {
        const transfer = creates.transfers[i]!
        pushBounded(this.transfers, transfer.id)
        if (transfer.pending) pushBounded(this.pending, transfer.id)
      }
    }
  }

  /** Up to `count` distinct known accounts. */
  sample(prng: Prng, count: number): Array<KnownAccount> {
    const picked = new Map<bigint, KnownAccount>()
    for (let i = 0; i < count && this.accounts.length > 0; i++) {
      const account = this.accounts[prng.below(this.accounts.length)]!
      picked.set(account.id, account)
    }
    return [...picked.values()]
  }

  newAccount(prng: Prng): Uint8Array {
    const record = new Uint8Array(128)
    writeU128(record, AccountLayout.id, this.nextId())
    writeU32(record, AccountLayout.ledger, 1 + prng.below(3))
    writeU16(record, AccountLayout.code, 1 + prng.below(5))
    const flags = [0, 0, AccountFlags.history, AccountFlags.debits_must_not_exceed_credits, AccountFlags.credits_must_not_exceed_debits][prng.below(5)]!
    writeU16(record, AccountLayout.flags, flags)
    if (prng.chance(0.3)) writeU32(record, AccountLayout.user_data_32, prng.nextU32())
    return record
  }

  /** A transfer between two accounts of one ledger: posted, pending (expiring soon), or resolving a pending one. */
  newTransfer(prng: Prng): Uint8Array {
    const record = new Uint8Array(128)
    writeU128(record, TransferLayout.id, this.nextId())
    const ledgers = [...this.byLedger.entries()].filter(([, ids]) => ids.length >= 2)
    const [ledger, ids] = ledgers.length > 0 ? ledgers[prng.below(ledgers.length)]! : [1, [1n, 2n]]
    const roll = prng.below(10)
    if (roll < 2 && this.pending.length > 0) {
      writeU128(record, TransferLayout.pending_id, this.pending[prng.below(this.pending.length)]!)
      writeU16(record, TransferLayout.flags, prng.chance(0.5) ? TransferFlags.post_pending_transfer : TransferFlags.void_pending_transfer)
      return record
    }
    const debit = ids[prng.below(ids.length)]!
    let credit = ids[prng.below(ids.length)]!
    if (credit === debit) credit = ids[(ids.indexOf(debit) + 1) % ids.length]!
    writeU128(record, TransferLayout.debit_account_id, debit)
    writeU128(record, TransferLayout.credit_account_id, credit)
    writeU128(record, TransferLayout.amount, BigInt(1 + prng.below(1000)))
    writeU32(record, TransferLayout.ledger, ledger)
    writeU16(record, TransferLayout.code, 1 + prng.below(5))
    if (roll < 5) {
      writeU16(record, TransferLayout.flags, TransferFlags.pending)
      // One to three seconds: pulses expire them during the run.
      writeU32(record, TransferLayout.timeout, prng.below(4))
    }
    return record
  }

  accountId(prng: Prng): bigint {
    return this.accounts.length === 0 || prng.chance(0.2) ? this.idNext + BigInt(prng.below(1000)) : this.accounts[prng.below(this.accounts.length)]!.id
  }

  transferId(prng: Prng): bigint {
    return this.transfers.length === 0 || prng.chance(0.2) ? this.idNext + BigInt(prng.below(1000)) : this.transfers[prng.below(this.transfers.length)]!
  }

  accountFilter(prng: Prng, limitMax: number): Uint8Array {
    const record = new Uint8Array(128)
    writeU128(record, 0, this.accountId(prng))
    writeU32(record, 120, 1 + prng.below(prng.chance(0.1) ? limitMax : Math.min(20, limitMax)))
    writeU32(record, 124, [AccountFilterFlags.debits, AccountFilterFlags.credits, AccountFilterFlags.debits | AccountFilterFlags.credits][prng.below(3)]! |
      (prng.chance(0.3) ? AccountFilterFlags.reversed : 0))
    return record
  }

  queryFilter(prng: Prng, limitMax: number): Uint8Array {
    const record = new Uint8Array(64)
    writeU32(record, 28, prng.below(4))
    writeU32(record, 56, 1 + prng.below(prng.chance(0.1) ? limitMax : Math.min(20, limitMax)))
    writeU32(record, 60, prng.chance(0.3) ? QueryFilterFlags.reversed : 0)
    return record
  }

  private nextId(): bigint {
    return this.idNext++
  }
}

// --- the replica's ledger, watched ----------------------------------------------------------------

/** Records each execution, and what the ledger threw: the replica dies on it, and says less. */
function watch(watched: WatchedLedger, inner: Ledger): Ledger {
  watched.ledger = inner
  const recorded = <A>(what: string, operation: number, run: () => A): A => {
    watched.last = what
    watched.lastOperation = operation
    try {
      return run()
    } catch (error) {
      watched.threw = error instanceof Error ? error.message : String(error)
      throw error
    }
  }
  return {
    ...inner,
    execute: (operation, events, timestamp) =>
      recorded(`execute(${operationLabel(operation)}, ${events.length} bytes)`, operation, () => inner.execute(operation, events, timestamp)),
    executeBatches: (operation, body, timestamp) =>
      recorded(`executeBatches(${operationLabel(operation)}, ${body.length}-byte body)`, operation, () => inner.executeBatches(operation, body, timestamp)),
    pulse: (timestamp) => recorded("pulse", 128, () => inner.pulse(timestamp))
  }
}

// --- operations -----------------------------------------------------------------------------------

const operationNames: Record<number, string> = {
  0: "reserved", 1: "root", 2: "register", 3: "reconfigure", 4: "pulse (protocol)", 5: "upgrade", 6: "noop",
  128: "pulse", 129: "create_accounts (unbatched)", 130: "create_transfers (unbatched)", 131: "lookup_accounts (unbatched)",
  132: "lookup_transfers (unbatched)", 133: "get_account_transfers (unbatched)", 134: "get_account_balances (unbatched)",
  135: "query_accounts (unbatched)", 136: "query_transfers (unbatched)", 137: "get_change_events", 138: "create_accounts (sparse)",
  139: "create_transfers (sparse)", 140: "lookup_accounts", 141: "lookup_transfers", 142: "get_account_transfers",
  143: "get_account_balances", 144: "query_accounts", 145: "query_transfers", 146: "create_accounts", 147: "create_transfers"
}

const operationLabel = (operation: number): string => `operation ${operation} (${operationName(operation)})`

/** Event sizes of 129–147 (wire-protocol.md §10.4); 129–137 are flat bodies, 138–147 multi-batch. */
const eventSizes: Record<number, number> = {
  129: 128, 130: 128, 131: 16, 132: 16, 133: 128, 134: 128, 135: 64, 136: 64, 137: 64,
  138: 128, 139: 128, 140: 16, 141: 16, 142: 128, 143: 128, 144: 64, 145: 64, 146: 128, 147: 128
}

/** The 0.17 operation whose records a deprecated one carries. */
const currentOf: Record<number, number> = {
  129: 146, 130: 147, 131: 140, 132: 141, 133: 142, 134: 143, 135: 144, 136: 145, 138: 146, 139: 147,
  140: 140, 141: 141, 142: 142, 143: 143, 144: 144, 145: 145, 146: 146, 147: 147
}

/** The body sizes the header rules pin for protocol operations (register, reconfigure, upgrade). */
const protocolBodySizes: Record<number, number> = { 2: 256, 3: 256, 4: 0, 5: 16, 6: 0 }

const elementSizes = [8, 16, 64, 128, 256]

const evictionReasonNames = Object.fromEntries(Object.entries(EvictionReason).map(([name, value]) => [value, name])) as Record<number, string>
const evictionReasonName = (reason: number): string => evictionReasonNames[reason] ?? `reason ${reason}`

function describe(request: InFlight): string {
  return `${request.serial === 0 ? "probe" : `request #${request.serial}`}: ${request.note}`
}

function register_(client: bigint, body: Uint8Array): Uint8Array {
  const header = zeroHeader(Command.request)
  header.cluster = clusterId
  header.release = releaseScarab
  header.client = client
  header.operation = 2
  return buildMessage(header, body)
}

// --- bytes ----------------------------------------------------------------------------------------

function concat(parts: ReadonlyArray<Uint8Array>): Uint8Array {
  let size = 0
  for (const part of parts) size += part.length
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const part of parts) {
    bytes.set(part, offset)
    offset += part.length
  }
  return bytes
}

function idsOf(ids: ReadonlyArray<bigint>): Uint8Array {
  const bytes = new Uint8Array(16 * ids.length)
  ids.forEach((id, index) => writeU128(bytes, index * 16, id))
  return bytes
}

function pushBounded<A>(items: Array<A>, item: A): void {
  if (items.length >= modelMax) items.splice(0, items.length - modelMax + 1)
  items.push(item)
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const writeU128 = (bytes: Uint8Array, offset: number, value: bigint): void => void u128ToBytes(value, bytes, offset)

function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(offset, value >>> 0, true)
}

function writeU16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value & 0xff
  bytes[offset + 1] = value >>> 8
}

const readU16 = (bytes: Uint8Array, offset: number): number => bytes[offset]! | (bytes[offset + 1]! << 8)

const readU64 = (bytes: Uint8Array, offset: number): bigint => new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(offset, true)

function attempt(run: () => void): string | undefined {
  try {
    run()
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

function causeText(cause: Cause.Cause<unknown>): string {
  const error = Cause.squash(cause)
  if (error instanceof Error) return error.message
  return Cause.pretty(cause).split("\n").slice(0, 3).join(" / ")
}
