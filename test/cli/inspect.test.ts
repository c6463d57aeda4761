/**
 * `scarab inspect` on a real data file: a test-profile file that a replica served 41 ops on (a
 * register and 40 creates, so the checkpoint of op 31 holds a client session, a snapshot and a
 * free set). Each subcommand's report is checked on the clean file; then bytes are flipped in a
 * superblock copy, a WAL prepare, a redundant WAL header and two grid blocks, and `integrity`
 * must name each while `superblock`, `wal` and `grid` still print and flag the damage,
 * without writing a byte (`start` would repair the superblock copy); then the file is cut short.
 */
import { closeSync, openSync, readSync, statSync, truncateSync, writeSync } from "node:fs"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { inspect as inspectFile, renderReport } from "../../src/cli/inspect.ts"
import type { InspectSubcommand } from "../../src/cli/inspect_options.ts"
import { layoutOf, storageConfigs } from "../../src/storage/layout.ts"
import { format, scarabSync, startReplica, temporaryDataFile, type DataDirectory } from "../integration/replica_process.ts"

const layout = layoutOf(storageConfigs.test)
let data: DataDirectory

beforeAll(async () => {
  data = temporaryDataFile()
  format(data.path)
  const replica = await startReplica(data.path)
  try {
    const creates = Array.from({ length: 40 }, (_, i) => `create_accounts id=${i + 1} code=10 ledger=700`).join("; ")
    const repl = scarabSync(["repl", "--cluster=0", `--addresses=${replica.port}`, `--command=${creates}`])
    expect(repl.status, repl.stderr).toBe(0)
  } finally {
    await replica.kill("SIGTERM")
  }
}, 60_000)

afterAll(() => data?.remove())

/** A subcommand's report in this process (what the binary prints, without a process per call): its text and damage. */
async function inspect(subcommand: InspectSubcommand, path?: string): Promise<{ stdout: string; damaged: Array<string> }> {
  const report = await Effect.runPromise(inspectFile({ subcommand, path, json: false }))
  return { stdout: renderReport(report, false), damaged: report.damaged }
}

/** The report as `--json` prints it. */
async function json(subcommand: InspectSubcommand, path?: string): Promise<Record<string, any>> {
  return JSON.parse(renderReport(await Effect.runPromise(inspectFile({ subcommand, path, json: true })), true))
}

/** Flips one byte at an absolute offset of the file. */
function flip(path: string, offset: number): void {
  const fd = openSync(path, "r+")
  const byte = Buffer.alloc(1)
  readSync(fd, byte, 0, 1, offset)
  byte[0] = byte[0]! ^ 0xff
  writeSync(fd, byte, 0, 1, offset)
  closeSync(fd)
}

/** The bytes of the superblock zone. */
function superblockZone(path: string): Buffer {
  const fd = openSync(path, "r")
  const bytes = Buffer.alloc(layout.superblock.sizeBytes)
  readSync(fd, bytes, 0, bytes.length, 0)
  closeSync(fd)
  return bytes
}

describe("scarab inspect on a clean file", () => {
  it("superblock: four valid copies of one version, and the checkpoint of op 31", async () => {
    const result = await inspect("superblock", data.path)
    expect(result.damaged).toEqual([])
    for (let copy = 0; copy < 4; copy++) expect(result.stdout).toMatch(new RegExp(`copy ${copy} at offset ${copy * 24576}: valid sequence=\\d+`))
    const report = await json("superblock", data.path)
    expect(report.working).toMatchObject({ cluster: "0", replica: 0, replica_count: 1, checkpoint_op: 31, profile: "test", release: "0.17.9" })
    expect(report.working.commit_max).toBeGreaterThanOrEqual(31)
    expect(report.working.checkpoint_id).toMatch(/^[0-9a-f]{32}$/)
    expect(report.damaged).toEqual([])
  })

  it("wal: every op from the root to op 41 is eql, the other slots nil", async () => {
    const report = await json("wal", data.path)
    expect(report.slotCount).toBe(64)
    expect(report.opMax).toBe(41)
    expect(report.checkpointOp).toBe(31)
    expect(report.decisions).toEqual({ eql: 42, nil: 22 })
    expect(report.slots[1]).toMatchObject({ slot: 1, op: 1, operation: "register", decision: "eql", case: "P", header: "ok", prepare: "ok" })
    expect(report.slots[41]).toMatchObject({ op: 41, operation: "create_accounts", view: 0 })
    const text = (await inspect("wal", data.path)).stdout
    expect(text).toMatch(/^41 +41 +[0-9a-f]{16} +0 +create_accounts +eql \(P\)/m)
    expect(text).toContain("42-63")
  })

  it("replies: the REPL's session, its reply intact", async () => {
    const report = await json("replies", data.path)
    expect(report.checkpointOp).toBe(31)
    expect(report.sessions).toHaveLength(1)
    expect(report.sessions[0]).toMatchObject({ slot: 0, session: "1", replyOp: 31, intact: true })
    expect((await inspect("replies", data.path)).stdout).toContain("intact")
  })

  it("grid: the free set and the blocks of each type", async () => {
    const report = await json("grid", data.path)
    expect(report.checkpointOp).toBe(31)
    expect(report.freeSet.acquired).toBeGreaterThan(0)
    expect(report.blocksByType.value).toBe(1)
    expect(report.blocksByType.manifest).toBeGreaterThanOrEqual(1)
    expect(report.blocksByType.client_sessions).toBeGreaterThanOrEqual(1)
    expect(report.sections.find((s: { name: string }) => s.name === "accounts")).toMatchObject({ rows: 30, blocks: 1 })
  })

  it("integrity: nothing damaged, and a summary", async () => {
    const result = await inspect("integrity", data.path)
    expect(result.damaged).toEqual([])
    expect(result.stdout).toMatch(/ok: 4 superblock copies, 64 wal slots, 1 client replies, \d+ grid blocks verified/)
  })

  it("constants: both profiles' layouts, as layout.ts computes them", async () => {
    const report = await json("constants")
    for (const name of ["production", "test"] as const) {
      const config = storageConfigs[name]
      expect(report[name]).toMatchObject({ journal_slot_count: config.journalSlotCount, checkpoint_ops: config.checkpointOps, block_size: config.blockSize })
      expect(report[name].zones.grid.start).toBe(layoutOf(config).grid.start)
    }
    expect((await inspect("constants")).stdout).toContain("wal_prepares")
  })

  it("the binary: integrity exits 0, an unknown subcommand is a usage error (2), a missing file exits 1", () => {
    const integrity = scarabSync(["inspect", "integrity", data.path])
    expect(integrity.status, integrity.stderr).toBe(0)
    expect(integrity.stdout).toContain("verified")
    const unknown = scarabSync(["inspect", "frobnicate", data.path])
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toContain("unknown inspect subcommand 'frobnicate'")
    const missing = scarabSync(["inspect", "wal", "/nonexistent/x.scarab"])
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain("scarab: /nonexistent/x.scarab: cannot open the data file (ENOENT)")
  })

  it("names a missing file", async () => {
    const missing = await Effect.runPromise(Effect.flip(inspectFile({ subcommand: "wal", path: "/nonexistent/x.scarab", json: false })))
    expect(missing._tag).toBe("InspectError")
    expect(missing.message).toContain("/nonexistent/x.scarab: cannot open the data file (ENOENT)")
  })
})

describe("scarab inspect on a damaged file", () => {
  const grid = (address: number) => layout.grid.start + (address - 1) * layout.config.blockSize
  let valueBlock = 0
  let before: { mtimeMs: number; superblock: Buffer }

  beforeAll(async () => {
    const report = await json("grid", data.path)
    valueBlock = report.sections.find((s: { name: string }) => s.name === "accounts").addresses[0]
    const sessionsBlock = report.trailers["client sessions"][0]
    expect(valueBlock).toBeGreaterThan(0)
    flip(data.path, layout.superblock.start + 24576 + 100) // copy 1
    flip(data.path, layout.walPrepares.start + 5 * layout.config.messageSizeMax + 300) // op 5's body
    flip(data.path, layout.walHeaders.start + 7 * 256 + 10) // op 7's redundant header
    flip(data.path, grid(valueBlock) + 300)
    flip(data.path, grid(sessionsBlock) + 300)
    before = { mtimeMs: statSync(data.path).mtimeMs, superblock: superblockZone(data.path) }
  })

  it("integrity: names the superblock copy, the WAL slots and the grid blocks", async () => {
    const result = await inspect("integrity", data.path)
    expect(result.damaged).toHaveLength(5)
    expect(result.stdout).toContain("superblock copy 1 (offset 24576): invalid checksum or format")
    expect(result.stdout).toContain("wal_prepares slot 5: prepare invalid (decision vsr")
    expect(result.stdout).toContain("wal_headers slot 7: redundant header invalid (decision fix")
    expect(result.stdout).toContain(`grid block ${valueBlock} (snapshot accounts) cannot be read: invalid body checksum`)
    expect(result.stdout).toMatch(/grid block \d+ \(client sessions\) cannot be read: invalid body checksum/)
  })

  it("the binary: integrity exits 1 and prints what is damaged; superblock --json still exits 0", () => {
    const integrity = scarabSync(["inspect", "integrity", data.path])
    expect(integrity.status).toBe(1)
    expect(integrity.stdout).toContain("DAMAGED: 5 problem(s)")
    const superblock = scarabSync(["inspect", "superblock", "--json", data.path])
    expect(superblock.status).toBe(0)
    expect(JSON.parse(superblock.stdout).damaged).toHaveLength(1)
  })

  it("superblock and wal still print, flagging the damage; nothing is written", async () => {
    const superblock = await inspect("superblock", data.path)
    expect(superblock.damaged).toEqual(["superblock copy 1 (offset 24576): invalid checksum or format"])
    expect(superblock.stdout).toContain("copy 1 at offset 24576: DAMAGED")
    expect(superblock.stdout).toContain("checkpoint_op: 31")
    const wal = await json("wal", data.path)
    expect(wal.slots[5]).toMatchObject({ op: 5, decision: "vsr", case: "C", header: "ok", prepare: "damaged" })
    expect(wal.slots[7]).toMatchObject({ op: 7, decision: "fix", header: "damaged", prepare: "ok" })
    expect(wal.damaged).toHaveLength(2)
    expect((await inspect("grid", data.path)).damaged).toHaveLength(1)
    // start would have rewritten copy 1 at open; inspect never writes.
    expect(statSync(data.path).mtimeMs).toBe(before.mtimeMs)
    expect(superblockZone(data.path).equals(before.superblock)).toBe(true)
  })

  it("a file cut short: integrity names the size, superblock flags it", async () => {
    const size = statSync(data.path).size
    truncateSync(data.path, size - layout.config.blockSize)
    const result = await inspect("integrity", data.path)
    expect(result.damaged.length).toBeGreaterThan(0)
    expect(result.stdout).toContain(`the file is cut short: ${size - layout.config.blockSize} bytes`)
    expect((await inspect("superblock", data.path)).stdout).toContain("file: DAMAGED: the file is cut short")
  })

  it("a file with no valid superblock copy: superblock says so, wal fails naming it", async () => {
    for (let copy = 0; copy < 4; copy++) flip(data.path, copy * 24576 + 64)
    const superblock = await inspect("superblock", data.path)
    expect(superblock.damaged).toHaveLength(5)
    expect(superblock.stdout).toContain("quorum: REFUSED: not found: no copy has a valid checksum")
    const wal = await Effect.runPromise(Effect.flip(inspectFile({ subcommand: "wal", path: data.path, json: false })))
    expect(wal.message).toContain("superblock: not found")
  })
})
