/**
 * `scarab repl` end to end: the REPL as a child process, driven through its stdin, against a
 * `scarab start` replica process on a free port (one for the file; tests use their own ids).
 * Statements run when their `;` arrives, bad statements print an error and the session goes on,
 * `--command` runs nothing unless every statement parses and exits 1 on the first failure.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { type AddressInfo, createServer, type Socket } from "node:net"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { format, scarabSync, startReplica, temporaryDataFile, type DataDirectory, type RunningReplica } from "../integration/replica_process.ts"

const cli = join(new URL("../../", import.meta.url).pathname, "src/cli/main.ts")

let data: DataDirectory
let replica: RunningReplica

beforeAll(async () => {
  data = temporaryDataFile()
  format(data.path)
  replica = await startReplica(data.path)
})

afterAll(async () => {
  await replica?.kill()
  data?.remove()
})

/** A REPL child process: what it printed so far, input, and its exit. */
class Repl {
  stdout = ""
  stderr = ""
  readonly exited: Promise<number | null>
  private readonly child: ChildProcess

  constructor(args: ReadonlyArray<string>) {
    this.child = spawn(process.execPath, [cli, "repl", ...args], { stdio: ["pipe", "pipe", "pipe"] })
    this.child.stdout!.on("data", (chunk) => (this.stdout += chunk))
    this.child.stderr!.on("data", (chunk) => (this.stderr += chunk))
    // "close", not "exit": what the REPL printed last is read by then.
    this.exited = new Promise((resolve) => this.child.once("close", (code) => resolve(code)))
  }

  static on(port: number, ...args: ReadonlyArray<string>): Repl {
    return new Repl(["--cluster=0", `--addresses=${port}`, ...args])
  }

  send(text: string): void {
    this.child.stdin!.write(text)
  }

  /**
   * Resolves once stdout or stderr (as chosen) matches, checked at each chunk of output; rejects
   * with everything printed if the REPL closes its output first, or prints nothing that matches
   * within `replyMs` (a bound for a REPL that hangs: a loaded machine may take seconds to start one).
   */
  waitFor(pattern: RegExp, stream: "stdout" | "stderr" = "stdout"): Promise<void> {
    if (pattern.test(this[stream])) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const output = this.child[stream]!
      const finish = (error?: Error) => {
        clearTimeout(timer)
        output.off("data", check)
        this.child.off("close", closed)
        if (error === undefined) resolve()
        else reject(error)
      }
      const failure = (why: string) => new Error(`${why} ${pattern} on ${stream}:\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`)
      // Registered after the constructor's listener, so the chunk is already in this[stream].
      const check = () => { if (pattern.test(this[stream])) finish() }
      const closed = () => finish(pattern.test(this[stream]) ? undefined : failure("closed without"))
      const timer = setTimeout(() => finish(failure(`nothing within ${replyMs} ms matched`)), replyMs)
      output.on("data", check)
      this.child.once("close", closed)
    })
  }

  /** stderr without the notice the REPL prints when a reply takes over 2 s, which a loaded machine may. */
  errors(): string {
    return this.stderr.replace(waitingNotice, "")
  }

  async end(): Promise<number | null> {
    this.child.stdin!.end()
    return await this.exited
  }

  kill(): Promise<number | null> {
    this.child.kill("SIGKILL")
    return this.exited
  }
}

/** The REPL's line when the cluster has not answered within 2 s: a matter of speed, not of behaviour. */
const waitingNotice = /^\(waiting for a reply from cluster [^)]*\)\n/gm
/** A bound for a REPL that never prints what a test waits for. */
const replyMs = 120_000

describe("scarab repl, interactive through stdin", () => {
  it("runs TigerBeetle's quick start: statements across lines and several per line, results as tables", async () => {
    const repl = Repl.on(replica.port)
    try {
      repl.send("create_accounts id=1 code=10 ledger=700,\n")
      // No ';' yet: the statement waits for its end. So the first thing printed is one table
      // with both accounts; the first line run alone would have printed a table, or an error, first.
      repl.send("  id=2 code=10 ledger=700 flags=history;\n")
      await repl.waitFor(/^ 2  created/m)
      expect(repl.stdout).toMatch(/^id {2}result +timestamp\n-+ +-+ +-+\n 1 {2}created +\d+\n 2 {2}created +\d+\n/)
      repl.send("create_transfers id=1 debit_account_id=1 credit_account_id=2 amount=10 ledger=700 code=10; lookup_accounts id=1, id=2;\n")
      await repl.waitFor(/^ 2 +700 +10 +history +0 +0 +0 +10 +\d+$/m)
      expect(repl.stdout).toMatch(/^ 1 +700 +10 +- +0 +10 +0 +0 +\d+$/m)
      repl.send("get_account_transfers account_id=1 flags=debits|credits;\nget_account_balances account_id=2;\n")
      await repl.waitFor(/^ *\d+ +0 +0 +0 +10$/m)
      expect(repl.stdout).toMatch(/^id +debit_account_id +credit_account_id +amount/m)
      expect(await repl.end()).toBe(0)
      expect(repl.errors()).toBe("")
    } finally {
      await repl.kill()
    }
  })

  it("a bad statement prints what is wrong and where, and the session goes on", async () => {
    const repl = Repl.on(replica.port)
    try {
      repl.send("frobnicate id=1;\n")
      await repl.waitFor(/unknown operation 'frobnicate'/, "stderr")
      repl.send("create_accounts id=100 colour=3;\n")
      await repl.waitFor(/unknown key 'colour' for create_accounts/, "stderr")
      expect(repl.stderr).toContain(`  create_accounts id=100 colour=3\n${" ".repeat(2 + "create_accounts id=100 ".length)}^`)
      repl.send("create_accounts id=1x0 code=1 ledger=1;\n")
      await repl.waitFor(/invalid value '1x0' for id: expected a u128/, "stderr")
      repl.send("create_accounts id=100 code=1 ledger=1 flags=linked|purple;\n")
      await repl.waitFor(/unknown flag 'purple'/, "stderr")
      // Refused by the ledger (a result) and by the client (a typed error): both shown, the session goes on.
      repl.send("create_transfers id=100 debit_account_id=98 credit_account_id=99 amount=1 ledger=1 code=1;\n")
      await repl.waitFor(/^100  debit_account_not_found/m)
      repl.send("get_account_transfers account_id=1 timestamp_min=-0;\n")
      await repl.waitFor(/error: get_account_transfers field timestamp_min: /, "stderr")
      repl.send("query_accounts;\n")
      await repl.waitFor(/error: query_accounts needs a filter, as in query_accounts limit=10;/, "stderr")
      repl.send("lookup_transfers id=424242;\n")
      await repl.waitFor(/^No transfers found\.$/m)
      // Still alive and serving after all of it.
      repl.send("create_accounts id=100 code=1 ledger=1; lookup_accounts id=100;\n")
      await repl.waitFor(/^100 +1 +1 +- +0 +0 +0 +0 +\d+$/m)
      repl.send("lookup_accounts id=100")
      expect(await repl.end()).toBe(0)
      expect(repl.stderr).toContain("error: the input ended inside a statement (no ';'); it was not run")
    } finally {
      await repl.kill()
    }
  })
})

describe("scarab repl --command", () => {
  it("runs the statements in order (the last may omit ';') and exits 0", () => {
    const result = scarabSync(["repl", "--cluster=0", `--addresses=${replica.port}`,
      "--command=create_accounts id=200 code=1 ledger=1, id=201 code=1 ledger=1; lookup_accounts id=200, id=201"])
    expect(result.status, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^200  created/m)
    expect(result.stdout).toMatch(/^201 +1 +1 +- +0 +0 +0 +0 +\d+$/m)
  })

  it("runs nothing when one statement is malformed, and exits 1 naming it", () => {
    const refused = scarabSync(["repl", "--cluster=0", `--addresses=${replica.port}`,
      "--command=create_accounts id=300 code=1 ledger=1; lookup_accounts id=300 code=1;"])
    expect(refused.status).toBe(1)
    expect(refused.stderr).toContain("unknown key 'code' for lookup_accounts")
    expect(refused.stderr).toContain(`  lookup_accounts id=300 code=1\n${" ".repeat(2 + "lookup_accounts id=300 ".length)}^`)
    const lookup = scarabSync(["repl", "--cluster=0", `--addresses=${replica.port}`, "--command=lookup_accounts id=300"])
    expect(lookup.status).toBe(0)
    expect(lookup.stdout.trim()).toBe("No accounts found.")
  })

  it("stops at the first failing statement with exit code 1", () => {
    const result = scarabSync(["repl", "--cluster=0", `--addresses=${replica.port}`,
      "--command=lookup_accounts id=999; query_transfers timestamp_max=-0; create_accounts id=400 code=1 ledger=1"])
    expect(result.status).toBe(1)
    expect(result.stdout.trim()).toBe("No accounts found.")
    // The first line of stderr, unless a slow reply printed the waiting notice before it.
    expect(result.stderr.replace(waitingNotice, "")).toMatch(/^error: query_transfers field timestamp_max: /)
    const lookup = scarabSync(["repl", "--cluster=0", `--addresses=${replica.port}`, "--command=lookup_accounts id=400"])
    expect(lookup.stdout.trim()).toBe("No accounts found.")
  })

  it("says it is waiting when no replica answers", async () => {
    // A listener that accepts and never answers, held for the test: no other process can take
    // its port (as one could a port found free and left unbound) and answer in its place.
    const connections: Array<Socket> = []
    const silent = createServer((socket) => connections.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    const repl = Repl.on((silent.address() as AddressInfo).port, "--command=lookup_accounts id=1")
    try {
      await repl.waitFor(/\(waiting for a reply from cluster 0 at 127\.0\.0\.1:\d+; --timeout=<duration> bounds the wait\)/, "stderr")
    } finally {
      await repl.kill()
      for (const socket of connections) socket.destroy()
      await new Promise<void>((resolve) => silent.close(() => resolve()))
    }
  })

  // A replica drops the messages of another cluster: the client retries forever, so without a
  // bound the REPL would wait forever. It says what it waits for, then gives up, naming it.
  it("against a cluster of another id: says what it waits for, and --timeout ends the wait with exit code 1", async () => {
    const stale = new Repl(["--cluster=7", `--addresses=${replica.port}`, "--command=lookup_accounts id=1", "--timeout=4s"])
    const code = await stale.exited
    expect(code).toBe(1)
    expect(stale.stderr).toContain(`(waiting for a reply from cluster 7 at 127.0.0.1:${replica.port}; --timeout gives up after 4 s)`)
    expect(stale.stderr).toContain(`error: no reply from cluster 7 at 127.0.0.1:${replica.port} within 4 s (--timeout): is it running, and is its id 7?`)
    expect(stale.stdout).toBe("")
  })

  it.each([
    [["repl", "--addresses=3000"], "--cluster=<value> is required"],
    [["repl", "--cluster=0"], "--addresses=<value> is required"],
    [["repl", "--cluster=0", "--addresses=3000", "--colour=red"], "unknown flag --colour for 'repl'"],
    [["repl", "--cluster=x", "--addresses=3000"], "--cluster must be a decimal number, not 'x'"],
    [["repl", "--cluster=0", "--addresses=99999"], "between 1 and 65535"],
    [["repl", "--cluster=0", "--addresses=3000", "data.file"], "repl takes no data file"]
  ])("refuses %j with a usage error", (args, message) => {
    const result = scarabSync(args)
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(message)
  })
})
