/**
 * A ledger at capacity (issue 12, defect 3), through the real replica on a real data file: a
 * create that could exceed the capacity is refused before it is prepared (it never reaches the
 * journal, so no restart can trip on it), the replica says which limit is reached, other
 * clients' reads and creates that fit go on, a restart with the same capacity works, and a
 * restart with a smaller capacity than the data takes is refused in words.
 *
 * The refused request is dropped, as a request the cluster cannot take yet: its client retries
 * it, and (one request in flight) waits behind it; the protocol has no reply that says "full".
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Logger } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { makeEmbeddedReplica, memoryTransport } from "../../src/client/layer_embedded.ts"
import { type LedgerApi, makeLedger } from "../../src/client/ledger_service.ts"
import { makeSession, RequestDeadline } from "../../src/client/session.ts"

let directory: string | undefined
afterEach(() => {
  if (directory !== undefined) rmSync(directory, { recursive: true, force: true })
  directory = undefined
})

const transfersMax = 40
const transfer = (id: bigint) => ({ id, debit_account_id: 1n, credit_account_id: 2n, amount: 1n, ledger: 1, code: 1 })

type Clients = readonly [LedgerApi, LedgerApi]

/** Runs `program` with two clients of one embedded replica of `capacity`, collecting what it logs. */
function withReplica<A, E>(path: string, capacity: { accountsMax: number; transfersMax: number }, program: (clients: Clients) => Effect.Effect<A, E>) {
  const lines: Array<string> = []
  const logger = Logger.make<unknown, void>(({ message }) => {
    lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
  })
  return Effect.runPromiseExit(Effect.scoped(Effect.gen(function* () {
    const { cluster, memory } = yield* makeEmbeddedReplica({ path, profile: "test", capacity })
    const client = () => Effect.map(makeSession({ cluster, transport: memoryTransport(memory) }), (session) => makeLedger(session.call))
    return yield* program([yield* client(), yield* client()])
  })).pipe(Effect.provide(Logger.layer([logger])))).then((exit) => ({ exit, lines }))
}

describe("a replica at its ledger's capacity", () => {
  it("refuses creates beyond it before the journal, serves the rest, restarts, and names a capacity too small for the data", async () => {
    directory = mkdtempSync(join(tmpdir(), "scarab-capacity-"))
    const path = join(directory, "0_0.scarab")
    const capacity = { accountsMax: 4, transfersMax }
    const first = await withReplica(path, capacity, ([ledger, other]) => Effect.gen(function* () {
      yield* ledger.createAccounts([{ id: 1n, ledger: 1, code: 1 }, { id: 2n, ledger: 1, code: 1 }])
      // One transfer a request: enough ops to pass a checkpoint of the test profile (every 32).
      for (let id = 1n; id <= BigInt(transfersMax); id++) {
        const [result] = yield* ledger.createTransfers([transfer(id)])
        expect(result?.status).toBe("created")
      }
      // Full: never prepared, so the call waits until its deadline; the outcome is certain.
      const refused = yield* Effect.flip(ledger.createTransfers([transfer(1000n)]).pipe(Effect.provideService(RequestDeadline, "1 second")))
      expect(refused._tag).toBe("OutcomeUnknown")
      // Other clients' reads, and their creates of what still has room, are served.
      const [debit] = yield* other.lookupAccounts([1n])
      expect(debit?.debits_posted).toBe(BigInt(transfersMax))
      const [created] = yield* other.createAccounts([{ id: 3n, ledger: 1, code: 1 }])
      expect(created?.status).toBe("created")
      expect(yield* other.lookupTransfers([1000n])).toEqual([])
    }))
    expect(first.exit._tag, String(first.exit)).toBe("Success")
    expect(first.lines.some((line) => /holds as many transfers as its capacity allows \(40\).*refused before they are prepared/.test(line)),
      first.lines.join("\n")).toBe(true)

    // A restart with the same capacity replays the journal and serves.
    const second = await withReplica(path, capacity, ([ledger]) => Effect.gen(function* () {
      const accounts = yield* ledger.lookupAccounts([1n, 2n, 3n])
      expect(accounts.map((account) => account.id)).toEqual([1n, 2n, 3n])
      expect(accounts[0]?.debits_posted).toBe(BigInt(transfersMax))
    }))
    expect(second.exit._tag, String(second.exit)).toBe("Success")

    // A restart with less room than the stored data takes is refused, in words.
    const third = await withReplica(path, { accountsMax: 4, transfersMax: 10 }, () => Effect.void)
    expect(third.exit._tag).toBe("Failure")
    expect(String(third.exit)).toMatch(/more than the ledger's capacity for transfers|beyond the ledger's capacity/)
  })
})
