/**
 * The `scarab` binary's answers to bad input: usage mistakes exit 2 with one clear sentence,
 * failures at run time exit 1 naming the file or address, and nothing is overwritten.
 */
import { writeFileSync } from "node:fs"
import { type AddressInfo, createServer } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { format, scarabSync, temporaryDataFile, type DataDirectory } from "../integration/replica_process.ts"

let data: DataDirectory | undefined
afterEach(() => {
  data?.remove()
  data = undefined
})

describe("scarab CLI", () => {
  it.each([
    [[], "Usage"],
    [["frobnicate"], "unknown command 'frobnicate'"],
    [["format", "--cluster=abc", "--replica=0", "--replica-count=1", "x"], "--cluster must be a decimal number, not 'abc'"],
    [["format", "--cluster=0", "--replica=0", "--replica-count=1"], "the data file's path is missing"],
    [["format", "--cluster=0", "--replica=0", "x"], "--replica-count=<value> is required"],
    [["format", "--cluster=0", "--replica=0", "--replica-count=7", "x"], "--replica-count must be between 1 and 6, not 7"],
    [["format", "--cluster=0", "--replica=3", "--replica-count=3", "x"], "--replica must be between 0 and 2, not 3"],
    [["format", `--cluster=${1n << 128n}`, "--replica=0", "--replica-count=1", "x"], "--cluster must be below 2^128"],
    [["start", "--addresses=99999", "x"], "between 0 and 65535"],
    [["start", "--addresses=3000", "--bogus", "x"], "unknown flag --bogus"],
    [["start", "--addresses=1,2,3,4,5,6,7", "x"], "--addresses names 7 replicas; a cluster has at most 6"],
    [["start", "--addresses=3000,3001", "--format-if-missing", "--cluster=0", "x"], "--format-if-missing formats a single-replica cluster"],
    [["benchmark", "--replica-count=7"], "--replica-count must be between 1 and 6, not 7"],
    [["benchmark", "--addresses=3000", "--replica-count=3"], "--addresses names 1 replicas but --replica-count is 3"],
    [["benchmark", "--replica-count=3", "--restart-points=1000"], "--restart-points restarts a single replica the benchmark starts itself"],
    [["benchmark", "--cluster=1"], "--cluster names the cluster at --addresses"],
    [["start", "--addresses=3000", "--transfers-max=0", "x"], "--transfers-max must be between 1 and 67108864, not 0"],
    [["start", "--addresses=3000", "--accounts-max=many", "x"], "--accounts-max must be a whole number, not 'many'"]
  ])("refuses %j with a usage error", (args, message) => {
    const result = scarabSync(args)
    expect(result.status).toBe(2)
    expect(result.stderr + result.stdout).toContain(message)
  })

  it("prints its version", () => {
    const result = scarabSync(["version"])
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/^scarab 0\.17\.9/)
  })

  it("names a missing data file", () => {
    const result = scarabSync(["start", "--addresses=3000", "/nonexistent/scarab.data"])
    expect(result.status).toBe(1)
    expect(result.stderr).toContain("scarab: /nonexistent/scarab.data: cannot open the data file (ENOENT)")
  })

  it("refuses a file that is not a Scarab data file, and never formats over an existing file", () => {
    data = temporaryDataFile()
    writeFileSync(data.path, Buffer.alloc(1 << 20, 7))
    const start = scarabSync(["start", "--addresses=3000", data.path])
    expect(start.status).toBe(1)
    expect(start.stderr).toContain("superblock: not found: no copy has a valid checksum")
    const again = scarabSync(["format", "--cluster=0", "--replica=0", "--replica-count=1", data.path])
    expect(again.status).toBe(1)
    expect(again.stderr).toContain("EEXIST")
  })

  it("refuses to start --format-if-missing on an existing file of another cluster, naming both clusters", () => {
    data = temporaryDataFile()
    format(data.path, 5n)
    const result = scarabSync(["start", "--addresses=0", "--format-if-missing", "--cluster=0", data.path])
    expect(result.status).toBe(1)
    const errors = result.stderr.split("\n").filter((line) => line.startsWith("scarab:"))
    expect(errors).toEqual([`scarab: ${data.path}: the data file belongs to cluster 5, not to --cluster=0; refusing to start it`])
  })

  it("refuses a cluster's data file started with another number of addresses, or with a port 0 it must dial", () => {
    data = temporaryDataFile()
    format(data.path, 0n, 0, 3)
    const fewer = scarabSync(["start", "--addresses=0", data.path])
    expect(fewer.status).toBe(1)
    expect(fewer.stderr).toContain("the data file is of a cluster of 3 replicas, but --addresses names 1")
    // Replica 0 dials replicas 1 and 2: their ports must be known (0 is the kernel's pick, for a listener).
    const unknown = scarabSync(["start", "--addresses=0,0,0", data.path])
    expect(unknown.status).toBe(1)
    expect(unknown.stderr).toContain("--addresses gives replica 1 port 0, but replica 0 dials it: name its port")
  })

  it("names an address already in use", async () => {
    data = temporaryDataFile()
    format(data.path)
    // The blocker takes a port the kernel picks: a port chosen first and bound later could be taken meanwhile.
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const port = (blocker.address() as AddressInfo).port
    try {
      const result = scarabSync(["start", `--addresses=${port}`, data.path])
      expect(result.status).toBe(1)
      expect(result.stderr).toContain(`127.0.0.1:${port}`)
      expect(result.stderr).toContain("EADDRINUSE")
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
  })
})
