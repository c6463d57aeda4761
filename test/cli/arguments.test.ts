/**
 * What the CLI reads before anything runs, and the benchmark's workload: addresses as TigerBeetle
 * writes them (IPv6 in brackets), sizes, durations; the transfer id orders of --id-order (each a
 * permutation) and --transfer-pending's flag. Then operator messages of the data file's open: a
 * missing directory is named as such (format cannot create it), a missing file points at format,
 * a locked file names who holds it, in words an operator knows.
 */
import { afterEach, describe, expect, it } from "vitest"
import { formatAddressText, parseAddress, parseByteSize, parseDurationMs, UsageError } from "../../src/cli/arguments.ts"
import { idPermutation, transferBatch, xorshift } from "../../src/cli/workload.ts"
import { format, scarabSync, startReplica, temporaryDataFile, type DataDirectory } from "../integration/replica_process.ts"

let data: DataDirectory | undefined
afterEach(() => {
  data?.remove()
  data = undefined
})

describe("addresses, sizes and durations", () => {
  it("reads a port, host:port, a host, and IPv6 in brackets with or without a port, as TigerBeetle does", () => {
    expect(parseAddress("3000")).toEqual({ host: "127.0.0.1", port: 3000 })
    expect(parseAddress("10.0.0.2:3000")).toEqual({ host: "10.0.0.2", port: 3000 })
    expect(parseAddress("db.example")).toEqual({ host: "db.example", port: 3001 })
    expect(parseAddress("[::1]:3000")).toEqual({ host: "::1", port: 3000 })
    expect(parseAddress("[::1]")).toEqual({ host: "::1", port: 3001 })
    expect(parseAddress("[fe80::1:2]:0", 0)).toEqual({ host: "fe80::1:2", port: 0 })
    expect(formatAddressText({ host: "::1", port: 3000 })).toBe("[::1]:3000")
    expect(formatAddressText({ host: "127.0.0.1", port: 3000 })).toBe("127.0.0.1:3000")
    expect(() => parseAddress("::1")).toThrow(UsageError)
  })

  it("reads sizes as TigerBeetle's --cache-grid, and durations with their unit", () => {
    expect(parseByteSize("1GiB", "--cache-grid")).toBe(2 ** 30)
    expect(parseByteSize("512mib", "--cache-grid")).toBe(512 * 2 ** 20)
    expect(parseByteSize("4_096", "--cache-grid")).toBe(4096)
    expect(() => parseByteSize("1GB", "--cache-grid")).toThrow(UsageError)
    expect(parseDurationMs("500ms", "--timeout")).toBe(500)
    expect(parseDurationMs("2m", "--timeout")).toBe(120_000)
    expect(() => parseDurationMs("0s", "--timeout")).toThrow(UsageError)
  })
})

describe("the benchmark's workload: TigerBeetle's --id-order and --transfer-pending", () => {
  it("--id-order gives each transfer number a distinct id of 1..count, in the order asked for", () => {
    for (const order of ["sequential", "random", "reversed"] as const) {
      for (const count of [1, 2, 7, 8189, 100_000]) {
        const idOf = idPermutation(order, count, 42)
        const ids = Array.from({ length: count }, (_, i) => idOf(i + 1))
        expect(new Set(ids).size).toBe(count)
        expect(Math.min(...ids) === 1 && Math.max(...ids) === count).toBe(true)
      }
    }
    const reversed = idPermutation("reversed", 10, 0)
    expect([reversed(1), reversed(10)]).toEqual([10, 1])
    // A random order is not the sequential one, and another seed gives another order.
    const first = Array.from({ length: 100 }, (_, i) => idPermutation("random", 100, 1)(i + 1))
    const second = Array.from({ length: 100 }, (_, i) => idPermutation("random", 100, 2)(i + 1))
    expect(first).not.toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    expect(first).not.toEqual(second)
  })

  it("--transfer-pending sets flags.pending on every transfer", () => {
    const random = xorshift(1)
    const batch = transferBatch(random, 10, 1, 3, 0, { pending: true, idOf: (n) => 100 + n })
    const view = new DataView(batch.buffer)
    for (let i = 0; i < 3; i++) {
      expect(view.getUint16(i * 128 + 118, true)).toBe(2)
      expect(view.getUint32(i * 128, true)).toBe(101 + i)
    }
  })
})

describe("the data file's open, in an operator's words", () => {
  it("names a missing data file, and a missing directory to format in (not 'format it first')", () => {
    const result = scarabSync(["start", "--addresses=3000", "/nonexistent/scarab.data"])
    expect(result.status).toBe(1)
    expect(result.stderr).toContain("scarab: /nonexistent/scarab.data: cannot open the data file (ENOENT): no such file (create it with 'scarab format')")
    const formatted = scarabSync(["format", "--cluster=0", "--replica=0", "--replica-count=1", "/nonexistent/scarab.data"])
    expect(formatted.status).toBe(1)
    expect(formatted.stderr).toContain("(ENOENT): the directory /nonexistent does not exist (create it first)")
    expect(formatted.stderr).not.toContain("format it first")
  })

  it("a data file another replica has open is refused, naming that, not an internal service", async () => {
    data = temporaryDataFile()
    format(data.path)
    const replica = await startReplica(data.path)
    try {
      const second = scarabSync(["start", "--addresses=0", data.path])
      expect(second.status).toBe(1)
      expect(second.stderr).toContain("(EWOULDBLOCK): the data file is locked: another replica (a process, or another open in this one) has it open")
      expect(second.stderr).not.toContain("Storage")
    } finally {
      await replica.kill()
    }
  })
})
