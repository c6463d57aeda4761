/**
 * `scarab repl --cluster=<u128> --addresses=<address>[,…] [--command='<statements>']`: a client
 * REPL in TigerBeetle's statement language (repl_parser.ts), through the network client
 * (`layerClient`), printing results as tables (repl_output.ts).
 *
 * Interactive (no `--command`): statements are read line by line and run when their `;` arrives,
 * so one may span lines (the prompt turns into `...`) and one line may hold several. A malformed
 * statement, a refused request or an interrupted one prints its error and the session goes on.
 * On a terminal there are a prompt, line editing, history (up/down, for this session), Tab
 * completion of operations and keys, and Ctrl+C, which drops the statement being typed or
 * stops waiting for the one running (whose outcome is then unknown: it may still commit);
 * Ctrl+D leaves. From a pipe the same statements run without prompts.
 *
 * `--command`: the statements given (the last may omit its `;`) are parsed first, and run only
 * if all of them parse; the first failure ends the run with exit code 1, as in TigerBeetle.
 */
import * as readline from "node:readline"
import { Cause, Context, Deferred, Effect, Fiber, Layer, Queue } from "effect"
import { layerClient } from "../client/layer_client.ts"
import { Ledger, type LedgerApi } from "../client/ledger_service.ts"
import type { LedgerError } from "../client/errors.ts"
import { formatAddressText, parseAddress, parseDurationMs, parseU128, UsageError, type Parsed } from "./arguments.ts"
import { keysOfOperation, operations, parseStatement, pointAt, splitStatements, type ParseError, type Statement } from "./repl_parser.ts"
import { accountsTable, balancesTable, createResultsTable, transfersTable } from "./repl_output.ts"

export interface ReplOptions {
  readonly cluster: bigint
  /** `host:port` of each replica, in the cluster's order. */
  readonly addresses: ReadonlyArray<string>
  readonly command: string | undefined
  /** How long a statement may wait for its reply before the REPL gives up on it; undefined: as long as it takes. */
  readonly timeoutMs: number | undefined
}

export function replOptions(parsed: Parsed): ReplOptions {
  parsed.allowOnly(["cluster", "addresses", "command", "timeout"])
  if (parsed.positional.length > 0) throw new UsageError(`repl takes no data file, got ${parsed.positional.join(" ")}`)
  const addresses = parsed.required("addresses").split(",").map((text) => formatAddressText(parseAddress(text)))
  if (addresses.length > 6) throw new UsageError(`--addresses names ${addresses.length} replicas; a cluster has at most 6`)
  const command = parsed.flags.get("command")
  const timeout = parsed.flags.get("timeout")
  return {
    cluster: parseU128(parsed.required("cluster"), "--cluster"), addresses, command: command === "" ? undefined : command,
    timeoutMs: timeout === undefined ? undefined : parseDurationMs(parsed.required("timeout"), "--timeout")
  }
}

/** What a statement printed, and whether it succeeded. */
export interface Outcome {
  readonly ok: boolean
  readonly lines: ReadonlyArray<string>
}

export const help = [
  "Statements end with ';' and may span lines. Examples:",
  "  create_accounts id=1 code=10 ledger=700 flags=linked|history, id=2 code=10 ledger=700;",
  "  create_transfers id=1 debit_account_id=1 credit_account_id=2 amount=1_000 ledger=700 code=10;",
  "  create_transfers id=2 debit_account_id=1 credit_account_id=2 amount=10 ledger=700 code=10 flags=pending timeout=60;",
  "  create_transfers id=3 pending_id=2 amount=-0 flags=post_pending_transfer;   (amount=-0: the largest amount, post all)",
  "  lookup_accounts id=1, id=2;",
  "  lookup_transfers id=0xa1a2_b1b2;",
  "  get_account_transfers account_id=1 flags=debits|credits|reversed limit=10;",
  "  get_account_balances account_id=1;",
  "  query_accounts ledger=700 limit=10;",
  "  query_transfers code=10 timestamp_min=1 limit=10;",
  "Numbers are decimal or 0x/0o/0b, with optional '_' between digits; -N is the largest value minus N.",
  `Operations: ${operations.join(", ")}, help.`
]

/** Runs one statement against the ledger: its table, or its error as a line. */
export function execute(ledger: LedgerApi, statement: Statement): Effect.Effect<Outcome> {
  const nothing = (what: string) => Effect.succeed({ ok: false, lines: [`error: ${what}`] })
  const found = (lines: ReadonlyArray<string>, count: number, what: string): Outcome => ({ ok: true, lines: count === 0 ? [`No ${what} found.`] : lines })
  const run = (): Effect.Effect<Outcome, LedgerError> => {
    switch (statement.kind) {
      case "empty":
        return Effect.succeed({ ok: true, lines: [] })
      case "help":
        return Effect.succeed({ ok: true, lines: help })
      case "create_accounts":
        if (statement.objects.length === 0) return nothing("no accounts to create, as in create_accounts id=1 code=10 ledger=700;")
        return Effect.map(ledger.createAccounts(statement.objects), (results) =>
          ({ ok: true, lines: createResultsTable(statement.objects.map((o) => o.id), results) }))
      case "create_transfers":
        if (statement.objects.length === 0) return nothing("no transfers to create")
        return Effect.map(ledger.createTransfers(statement.objects), (results) =>
          ({ ok: true, lines: createResultsTable(statement.objects.map((o) => o.id), results) }))
      case "lookup_accounts":
        if (statement.objects.length === 0) return nothing("no accounts to look up, as in lookup_accounts id=1;")
        return Effect.map(ledger.lookupAccounts(statement.objects.map((o) => o.id)), (rows) => found(accountsTable(rows), rows.length, "accounts"))
      case "lookup_transfers":
        if (statement.objects.length === 0) return nothing("no transfers to look up, as in lookup_transfers id=1;")
        return Effect.map(ledger.lookupTransfers(statement.objects.map((o) => o.id)), (rows) => found(transfersTable(rows), rows.length, "transfers"))
      case "get_account_transfers":
        if (statement.objects.length === 0) return nothing("get_account_transfers needs a filter, as in get_account_transfers account_id=1;")
        return Effect.map(ledger.getAccountTransfers(statement.objects[0]!), (rows) => found(transfersTable(rows), rows.length, "transfers"))
      case "get_account_balances":
        if (statement.objects.length === 0) return nothing("get_account_balances needs a filter, as in get_account_balances account_id=1;")
        return Effect.map(ledger.getAccountBalances(statement.objects[0]!), (rows) => found(balancesTable(rows), rows.length, "balances"))
      case "query_accounts":
        if (statement.objects.length === 0) return nothing("query_accounts needs a filter, as in query_accounts limit=10;")
        return Effect.map(ledger.queryAccounts(statement.objects[0]!), (rows) => found(accountsTable(rows), rows.length, "accounts"))
      case "query_transfers":
        if (statement.objects.length === 0) return nothing("query_transfers needs a filter, as in query_transfers limit=10;")
        return Effect.map(ledger.queryTransfers(statement.objects[0]!), (rows) => found(transfersTable(rows), rows.length, "transfers"))
    }
  }
  return Effect.catch(run(), (error) => Effect.succeed({ ok: false, lines: [`error: ${error.message}`] }))
}

/** A parse error as printed: the message, then the statement's line with a caret under the spot. */
export const parseErrorLines = (text: string, error: ParseError): Array<string> =>
  [`error: ${error.message}`, ...pointAt(text, error.offset).map((line) => `  ${line}`)]

/** Tab completion (readline's completer): operations first, then the keys of the statement's operation. */
export function complete(line: string): [Array<string>, string] {
  const statement = line.slice(line.lastIndexOf(";") + 1)
  const word = /[A-Za-z_]*$/.exec(statement)![0]
  const before = statement.slice(0, statement.length - word.length)
  if (/=\s*[^\s,]*$/.test(before)) return [[], word] // inside a value
  const operation = operations.find((name) => new RegExp(`^\\s*${name}\\b`).test(before))
  const candidates = before.trim() === "" ? [...operations, "help"].map((name) => `${name} `)
    : operation === undefined ? [] : keysOfOperation(operation).map((key) => `${key}=`)
  return [candidates.filter((candidate) => candidate.startsWith(word)), word]
}

/** The REPL on a cluster: `--command` mode or an interactive session on stdin. */
export const repl = (options: ReplOptions) => Effect.scoped(Effect.gen(function* () {
  const context = yield* Layer.build(layerClient({ cluster: options.cluster, addresses: options.addresses }))
  const ledger = Context.get(context, Ledger)
  if (options.command !== undefined) return yield* runCommand(ledger, options.command, options)
  yield* interactive(ledger, options)
}))

const out = (lines: ReadonlyArray<string>) => Effect.sync(() => {
  if (lines.length > 0) process.stdout.write(`${lines.join("\n")}\n`)
})
const err = (lines: ReadonlyArray<string>) => Effect.sync(() => {
  if (lines.length > 0) process.stderr.write(`${lines.join("\n")}\n`)
})

const waitingNoticeMs = 2_000

/**
 * `execute`, saying on stderr what it waits for when the cluster has not answered within two
 * seconds (the network client retries forever: a cluster that is down, or of another id than
 * --cluster, never answers), and giving up with a note when `stop` completes first or
 * --timeout passes.
 */
const executeWithNotice = Effect.fnUntraced(function* (ledger: LedgerApi, statement: Statement, options: ReplOptions,
  stop: Effect.Effect<void>, stopHint: string) {
  const cluster = `cluster ${options.cluster} at ${options.addresses.join(",")}`
  const bound = options.timeoutMs === undefined ? stopHint : `--timeout gives up after ${durationText(options.timeoutMs)}`
  const notice = yield* Effect.forkChild(Effect.delay(err([`(waiting for a reply from ${cluster}; ${bound})`]), waitingNoticeMs))
  const timedOut = options.timeoutMs === undefined ? Effect.never : Effect.as(Effect.sleep(options.timeoutMs), {
    ok: false, lines: [`error: no reply from ${cluster} within ${durationText(options.timeoutMs)} (--timeout): is it running, ` +
      `and is its id ${options.cluster}? The outcome is unknown: a create may still commit; look it up`]
  })
  const outcome = yield* Effect.raceFirst(execute(ledger, statement), Effect.raceFirst(timedOut, Effect.as(stop, {
    ok: false, lines: ["interrupted: no reply yet, so the outcome is unknown (a create may still commit; look it up)"]
  })))
  yield* Fiber.interrupt(notice)
  return outcome
})

const durationText = (ms: number): string => ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`

const runCommand = Effect.fnUntraced(function* (ledger: LedgerApi, command: string, options: ReplOptions) {
  const { statements, rest } = splitStatements(command)
  const texts = rest.trim() === "" ? statements : [...statements, rest]
  const parsed: Array<Statement> = []
  for (const text of texts) {
    const statement = parseStatement(text)
    if (statement.kind === "error") {
      yield* err(parseErrorLines(text.trim(), { ...statement, offset: statement.offset - (text.length - text.trimStart().length) }))
      process.exitCode = 1
      return
    }
    parsed.push(statement)
  }
  for (const statement of parsed) {
    const outcome = yield* executeWithNotice(ledger, statement, options, Effect.never, "--timeout=<duration> bounds the wait")
    yield* (outcome.ok ? out : err)(outcome.lines)
    if (!outcome.ok) {
      process.exitCode = 1
      return
    }
  }
})

const interactive = Effect.fnUntraced(function* (ledger: LedgerApi, options: ReplOptions) {
  const terminal = process.stdin.isTTY === true
  const lines = yield* Queue.unbounded<string, Cause.Done>()
  let buffer = ""
  let cancel: Deferred.Deferred<void> | undefined = undefined
  const rl = yield* Effect.acquireRelease(Effect.sync(() => readline.createInterface({
    input: process.stdin, output: process.stdout, terminal, historySize: 1000, removeHistoryDuplicates: true, completer: complete
  })), (rl) => Effect.sync(() => rl.close()))
  rl.on("line", (line) => Queue.offerUnsafe(lines, line))
  rl.on("close", () => Queue.endUnsafe(lines))
  // Ctrl+C on a terminal: stop waiting for the running statement, or drop the one being typed.
  rl.on("SIGINT", () => {
    if (cancel !== undefined) {
      Deferred.doneUnsafe(cancel, Effect.void)
      return
    }
    const typing = buffer !== "" || rl.line !== ""
    // Clears the line being edited (to its end, then back to its start), as shells do.
    rl.write(null, { ctrl: true, name: "e" })
    rl.write(null, { ctrl: true, name: "u" })
    process.stdout.write(typing ? "\n" : "\n(Ctrl+D leaves the REPL)\n")
    buffer = ""
    prompt()
  })
  const prompt = () => {
    if (!terminal) return
    rl.setPrompt(buffer === "" ? "> " : "... ")
    rl.prompt()
  }

  if (terminal) {
    yield* out([`Scarab REPL: cluster ${options.cluster} at ${options.addresses.join(",")}. Statements end with ';'.`,
      "Type help; for examples, Tab to complete, Ctrl+D to leave."])
  }
  prompt()
  while (true) {
    const line = yield* Effect.catchTag(Queue.take(lines), "Done", () => Effect.succeed(undefined))
    if (line === undefined) break
    buffer = buffer === "" ? line : `${buffer}\n${line}`
    const { statements, rest } = splitStatements(buffer)
    buffer = rest.trim() === "" ? "" : rest
    for (const text of statements) {
      const statement = parseStatement(text)
      if (statement.kind === "error") {
        yield* err(parseErrorLines(text, statement))
        continue
      }
      cancel = yield* Deferred.make<void>()
      const outcome = yield* executeWithNotice(ledger, statement, options, Deferred.await(cancel), "Ctrl+C stops waiting")
      cancel = undefined
      yield* (outcome.ok ? out : err)(outcome.lines)
    }
    prompt()
  }
  if (buffer.trim() !== "") yield* err(["error: the input ended inside a statement (no ';'); it was not run"])
  if (terminal) yield* out([""])
})
