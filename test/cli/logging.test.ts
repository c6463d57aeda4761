/**
 * What a replica logs, for operators and for machines: `scarab start` names its version, cluster,
 * replica, addresses, data file, storage layer and profile in one start-up line, exactly once
 * (the storage layer's own lines, one per open of the file, are debug lines); `--log-format=json`
 * prints one parseable JSON object per line with timestamp, level, message and annotations;
 * `--log-level` drops the lines below it. The embedded replica logs through the application's
 * Effect loggers and is quiet (warnings and worse) unless asked for more.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Logger } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Ledger } from "../../src/client/ledger_service.ts"
import { layerEmbedded } from "../../src/client/layer_embedded.ts"
import { format, scarabSync, startMs, startReplica, temporaryDataFile, type DataDirectory, type RunningReplica } from "../integration/replica_process.ts"

let data: DataDirectory | undefined
let running: RunningReplica | undefined
afterEach(async () => {
  await running?.kill()
  running = undefined
  data?.remove()
  data = undefined
})

const cli = new URL("../../src/cli/main.ts", import.meta.url).pathname
const startUpLine = /scarab \d+\.\d+\.\d+: replica 0 of cluster 0, addresses 127\.0\.0\.1:0, data file .+, storage (io_uring|thread_pool) \((Direct I\/O|page cache)\), test profile/g

/** Starts a replica with `flags` on a fresh test-profile file, stops it with SIGTERM, and returns its stdout and stderr. */
async function runReplica(flags: ReadonlyArray<string>): Promise<{ stdout: string; stderr: string }> {
  data = temporaryDataFile()
  format(data.path)
  running = await startReplica(data.path, 0, flags)
  await running.kill("SIGTERM")
  const errors = running.errors()
  return { stdout: running.output().replace(errors, ""), stderr: errors }
}

describe("scarab start's log", () => {
  it("names the replica's setup in one start-up line, exactly once, and the storage layer nowhere else at info level", async () => {
    const { stdout } = await runReplica([])
    expect(stdout.match(startUpLine)?.length, stdout).toBe(1)
    expect(stdout).not.toContain("storage: io_uring")
    expect(stdout).toContain("replica 0: normal view=0 primary=0")
  }, startMs)

  it("--log-format=json: every line is a JSON object with timestamp, level, message and annotations", async () => {
    const { stdout } = await runReplica(["--log-format=json"])
    const lines = stdout.split("\n").filter((line) => line !== "")
    expect(lines.length).toBeGreaterThanOrEqual(4)
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    for (const entry of entries) {
      expect(typeof entry.timestamp === "string" && !Number.isNaN(Date.parse(entry.timestamp)), JSON.stringify(entry)).toBe(true)
      expect(["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]).toContain(entry.level)
      expect(typeof entry.message).toBe("string")
      expect(typeof entry.annotations).toBe("object")
    }
    const messages = entries.map((entry) => String(entry.message))
    expect(messages.filter((message) => message.match(startUpLine) !== null)).toHaveLength(1)
    const serving = entries.find((entry) => String(entry.message).includes("serving on port"))
    expect(serving?.annotations).toEqual({ replica: 0, cluster: "0" })
    expect(messages.some((message) => message.includes("stopping on a signal"))).toBe(true)
  }, startMs)

  it("--log-level=debug adds the storage layer's lines; --log-level=warn drops the info lines", async () => {
    const debug = await runReplica(["--log-level=debug"])
    expect(debug.stdout).toMatch(/DEBUG .*storage: (io_uring|thread-pool)/)
    expect(debug.stdout.match(startUpLine)?.length).toBe(1)
    await running?.kill()
    // At warn nothing announces that the replica serves: it runs for a few seconds, then stops on SIGTERM.
    const path = data!.path
    const warn = spawnSync(process.execPath, [cli, "start", "--addresses=0", "--log-level=warn", "--log-format=json", path], {
      encoding: "utf8", timeout: 8000, killSignal: "SIGTERM"
    })
    const levels = warn.stdout.split("\n").filter((line) => line !== "").map((line) => (JSON.parse(line) as { level: string }).level)
    expect(levels.filter((level) => level === "INFO" || level === "DEBUG")).toEqual([])
  }, startMs)

  it("refuses an unknown level or format with exit code 2", () => {
    const level = scarabSync(["start", "--addresses=0", "--log-level=verbose", "x"])
    expect(level.status).toBe(2)
    expect(level.stderr).toContain("--log-level must be debug, info, warn or error, not 'verbose'")
    const logFormat = scarabSync(["start", "--addresses=0", "--log-format=xml", "x"])
    expect(logFormat.status).toBe(2)
    expect(logFormat.stderr).toContain("--log-format must be text or json, not 'xml'")
  })
})

describe("layerEmbedded's log", () => {
  // Every directory a test made (it opens two ledgers), removed after it.
  const directories: Array<string> = []
  afterEach(() => {
    for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true })
  })

  /** Opens an embedded ledger with `logLevel`, creates an account, and returns every line the application's logger received. */
  const linesOf = (logLevel: "Info" | undefined) => {
    const directory = mkdtempSync(join(tmpdir(), "scarab-log-"))
    directories.push(directory)
    const path = join(directory, "ledger.scarab")
    const lines: Array<string> = []
    const logger = Logger.make<unknown, void>(({ logLevel: level, message }) => {
      lines.push(`${level} ${(Array.isArray(message) ? message : [message]).map(String).join(" ")}`)
    })
    const program = Effect.gen(function* () {
      yield* (yield* Ledger).createAccounts([{ id: 1n, ledger: 1, code: 1 }])
    }).pipe(Effect.provide(layerEmbedded({ path, profile: "test", ...(logLevel === undefined ? {} : { logLevel }) })))
    return Effect.runPromise(program.pipe(Effect.provide(Logger.layer([logger])))).then(() => lines)
  }

  it("is quiet by default, and logs through the application's logger at the level asked for", async () => {
    const quiet = await linesOf(undefined)
    expect(quiet.filter((line) => line.startsWith("Info") || line.startsWith("Debug"))).toEqual([])
    const informed = await linesOf("Info")
    expect(informed.some((line) => line.includes("loaded the checkpoint at op 0"))).toBe(true)
  }, startMs)
})
