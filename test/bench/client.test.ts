/**
 * A smoke test of `npm run bench:client` (bench/client.ts), never a timed assertion: one case of
 * Scarab's client with tiny sizes, end to end (its own process, a replica process, a fresh data
 * file), must report a well-formed CASE line. The whole benchmark (four cases, eight processes)
 * costs 15-20 s even with tiny sizes, so the test runs one; the other three share its code path.
 */
import { spawnSync } from "node:child_process"
import { join } from "node:path"
import { expect, it } from "vitest"
import { childRunMs } from "../integration/replica_process.ts"

const script = join(new URL("../../", import.meta.url).pathname, "bench/client.ts")

it("bench:client runs a tiny fan-in case of layerClient and reports it", () => {
  const result = spawnSync(process.execPath, [script, "--case=scarab:fan-in", "--fibers=50", "--rounds=2", "--accounts=10"],
    { encoding: "utf8", timeout: childRunMs })
  expect(result.status, result.stderr).toBe(0)
  const line = result.stdout.split("\n").find((l) => l.startsWith("CASE "))
  expect(line, result.stdout).toBeDefined()
  const measured = JSON.parse(line!.slice("CASE ".length))
  expect(measured).toMatchObject({ client: "scarab", shape: "fan-in", transfers: 100 })
  expect(measured.ms).toBeGreaterThan(0)
})

it("bench:client refuses unknown flags with a usage error", () => {
  const result = spawnSync(process.execPath, [script, "--colour=red"], { encoding: "utf8", timeout: childRunMs })
  expect(result.status).toBe(2)
  expect(result.stderr).toContain("unknown flag --colour")
})
