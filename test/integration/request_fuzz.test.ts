/**
 * The request fuzzer (request_fuzzer.ts) with a short budget: a few thousand requests with valid
 * checksums, every operation 0–255, random bodies up to 1 MiB, registered and unregistered
 * clients, through the shipping replica on a real test-profile data file, with a restart every
 * 400 requests (every other one with requests in flight). The replica must never stop, must
 * reopen every time with nothing lost, and must answer as the protocol says (see the fuzzer's
 * header). The long run is `npm run fuzz:requests`.
 *
 * The run is bounded by its request count, not by time. Its seed comes from
 * SCARAB_REQUEST_FUZZ_SEED, or is fixed, so that CI runs the same requests every time; a failure
 * names it and how to replay it. The default seed is the one that found reads committing during
 * a checkpoint past the durability op unnoticed (Checkpointer.onCommit); other seeds run in the
 * long runs (`npm run fuzz:requests`).
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { failureText, runRequestFuzz } from "./request_fuzzer.ts"

const seed = Number(process.env.SCARAB_REQUEST_FUZZ_SEED ?? 1369452435)
const requests = 2000
const restartEvery = 400
const replay = (failed: number) => `SCARAB_REQUEST_FUZZ_SEED=${failed} npx vitest run test/integration/request_fuzz.test.ts`

/** The operations that pass the header rules from a registered client (7–127 are the protocol's, 0, 1, 2, 4, 5 need other headers). */
const inSession = [3, 6, ...Array.from({ length: 128 }, (_, i) => 128 + i)]

describe("request fuzzer", () => {
  it("the replica survives every operation 0-255 with random bodies, restarts every time, and loses nothing", async () => {
    const exit = await Effect.runPromiseExit(runRequestFuzz({
      seed, requests, restartEvery, capacity: { accountsMax: 8192, transfersMax: 32768 }, replay
    }))
    if (exit._tag === "Failure") throw new Error(failureText(exit.cause))
    const report = exit.value
    const { operationsSent, operationsSentInSession, ...figures } = report
    console.info(`request fuzzer, seed ${seed}: ${operationsSent.length} operations sent, ${operationsSentInSession.length} in session; ${JSON.stringify(figures)}`)
    const context = `seed ${seed} (replay: ${replay(seed)})`
    expect(report.requests, context).toBeGreaterThanOrEqual(requests)
    // Restarts along the way, half of them with requests in flight, and one at the end.
    expect(report.restarts, context).toBeGreaterThanOrEqual(requests / restartEvery)
    expect(report.restartsWithRequestsInFlight, context).toBeGreaterThanOrEqual(Math.floor(requests / restartEvery / 2))
    // Every operation was sent, and every one the header rules let through reached the session checks.
    expect(report.operationsSent, context).toEqual(Array.from({ length: 256 }, (_, i) => i))
    expect(report.operationsSentInSession, context).toEqual(inSession)
    // The fuzzed requests got every kind of answer, and state grew: the run exercised the prepare path.
    for (const operation of [2, 140, 141, 142, 143, 144, 145, 146, 147]) expect(report.repliesByOperation[operation], `${context}: replies to ${operation}`).toBeGreaterThan(0)
    expect(report.evictionsByReason.invalid_request_operation, context).toBeGreaterThan(0)
    expect(report.evictionsByReason.invalid_request_body, context).toBeGreaterThan(0)
    expect(report.dropped, context).toBeGreaterThan(0)
    expect(report.retriesIdentical, context).toBeGreaterThan(0)
    expect(report.accountsCreated, context).toBeGreaterThan(0)
    expect(report.largestBodyBytes, context).toBeGreaterThan(512 * 1024)
    // Several checkpoints of the test profile (every 32 ops) were crossed and replayed over.
    expect(report.checkpointOp, context).toBeGreaterThanOrEqual(3 * 32)
  }, 600_000)
})
