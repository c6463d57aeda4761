/**
 * The journal's write and read pools (issue 13, storage.md §4.3): several prepare writes in
 * flight leave exactly the disk that the same writes one after the other leave; two writes whose
 * redundant headers share a sector never race (one sector write at a time, each carrying every
 * header durable by then); a later write to a slot waits for the earlier one; reads never share
 * memory with writes in flight and return the right bytes; the bounds hold; and a crash at any
 * moment of a run of writes leaves what recovery's rules expect (no acknowledged op lost, no
 * redundant header on disk without its prepare).
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { SimulatedDisk } from "../../src/layers/disk_sim.ts"
import { Prng } from "../../src/prng.ts"
import {
  formatJournal, type Journal, journalReadsCommitMax, journalReadsMax, journalReadsRepairMax, JournalReadsBusyError, recoverJournal
} from "../../src/storage/journal.ts"
import { headersPerSector } from "../../src/storage/layout.ts"
import { sectorSize, Storage } from "../../src/storage/storage.ts"
import {
  chain, clusterBytes, gate, headerSectorOnDisk, hex, layout, onDiskImage, readRaw, root, settle, slots, until,
  walSizeBytes
} from "./journal_harness.ts"

const onDisk = (disk: SimulatedDisk) => <A, E>(effect: Effect.Effect<A, E, Storage>) => effect.pipe(Effect.provide(disk.layer()))

/** Formats the journal on `storage` and recovers it fresh, as a replica of one (`solo`) or of a cluster. */
const freshJournal = (storage: Storage["Service"], solo: boolean) => Effect.gen(function* () {
  yield* formatJournal(storage, layout, clusterBytes)
  const { journal } = yield* recoverJournal(storage, layout, { cluster: clusterBytes, checkpointHeader: root, solo })
  return journal
})

const headerOf = (prepare: Uint8Array) => prepare.subarray(0, 256)
const slotIn = (sector: Uint8Array, slot: number) => sector.subarray((slot % headersPerSector) * 256, (slot % headersPerSector + 1) * 256)
const slotOffset = (op: number) => (op % slots) * layout.config.messageSizeMax

/** Forks `effect` and runs it up to its first suspension now, so writes start in the order they are forked. */
const start = <A, E>(effect: Effect.Effect<A, E>) => Effect.forkChild(effect, { startImmediately: true })

/**
 * Runs `effect` to its end, moving the TestClock (its disk latencies are in it) a second at a
 * time: each step completes every I/O due within it, in order of their completion times.
 */
const clockedThrough = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.gen(function* () {
  const fiber = yield* Effect.forkChild(effect)
  for (let step = 0; step < clockedStepsMax && fiber.pollUnsafe() === undefined; step++) yield* TestClock.adjust("1 second")
  return yield* Fiber.join(fiber)
})
/** Far beyond what any effect here takes (a few hundred writes of a few milliseconds each): bounds a hang. */
const clockedStepsMax = 100_000

/** The defect's message when `exit` died, else undefined. */
function defectOf(exit: Exit.Exit<unknown, unknown>): string | undefined {
  if (exit._tag !== "Failure") return undefined
  const defect = Cause.squash(exit.cause)
  return defect instanceof Error && Cause.hasDies(exit.cause) ? defect.message : undefined
}

describe("journal: a sector of the headers ring has one writer at a time", () => {
  it.effect("two writes whose redundant headers share a sector: the second waits, then goes out carrying both (and a third that came meanwhile)", () =>
    Effect.gen(function* () {
      const disk = new SimulatedDisk({ seed: 11, sizeBytes: walSizeBytes })
      yield* onDisk(disk)(Effect.gen(function* () {
        const raw = yield* Storage
        let holding = false
        const g = gate(raw, (kind) => holding && kind === "write")
        const journal = yield* freshJournal(g.storage, false)
        const prepares = chain(3) // ops 1, 2, 3: slots 1, 2, 3, one headers sector
        holding = true
        const from = g.log.length
        const issued = () => g.log.slice(from)
        const fibers = yield* Effect.forEach(prepares, (prepare) => start(journal.writePrepare(prepare)))
        yield* until(() => issued().length === 3, "the three prepare writes are issued")
        expect(issued().map((io) => io.zone)).toEqual(["wal_prepares", "wal_prepares", "wal_prepares"])

        // Op 1's prepare lands: its header goes out, alone (ops 2 and 3 are not durable yet).
        yield* g.release(issued()[0]!)
        yield* until(() => issued().length === 4, "op 1's header sector write")
        const first = issued()[3]!
        expect(first.zone).toBe("wal_headers")
        expect(hex(slotIn(first.issued, 1))).toBe(hex(headerOf(prepares[0]!)))
        expect(hex(slotIn(first.issued, 2))).not.toBe(hex(headerOf(prepares[1]!)))

        // Ops 2 and 3 land while the sector is being written: they wait for it.
        yield* g.release(issued()[1]!)
        yield* g.release(issued()[2]!)
        yield* until(() => issued()[1]!.done && issued()[2]!.done, "ops 2 and 3's prepares land")
        yield* settle
        expect(issued().length, "no second write of a sector in flight").toBe(4)
        expect(fibers[0]!.pollUnsafe()).toBeUndefined()

        // The first sector write lands: op 1 is durable; the next write carries ops 1, 2 and 3.
        yield* g.release(first)
        yield* Fiber.join(fibers[0]!)
        yield* until(() => issued().length === 5, "the sector's next write")
        const second = issued()[4]!
        expect(second.zone).toBe("wal_headers")
        for (let op = 1; op <= 3; op++) expect(hex(slotIn(second.issued, op)), `op ${op}`).toBe(hex(headerOf(prepares[op - 1]!)))
        yield* settle
        expect(fibers[1]!.pollUnsafe(), "op 2 is not acknowledged before its header lands").toBeUndefined()
        yield* g.release(second)
        yield* Fiber.join(fibers[1]!)
        yield* Fiber.join(fibers[2]!)
        expect(issued().length, "three ops, two sector writes").toBe(5)
        const sector = yield* headerSectorOnDisk(raw, 1)
        for (let op = 1; op <= 3; op++) expect(hex(slotIn(sector, op))).toBe(hex(headerOf(prepares[op - 1]!)))
      }))
    }))

  it.effect("a later write to the same slot (a wrap-around) waits for the earlier one, prepare and header", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 12, sizeBytes: walSizeBytes })
    yield* onDisk(disk)(Effect.gen(function* () {
      const raw = yield* Storage
      let holding = false
      const g = gate(raw, (kind) => holding && kind === "write")
      const journal = yield* freshJournal(g.storage, false)
      const prepares = chain(slots + 5)
      const older = prepares[4]! // op 5, slot 5
      const newer = prepares[slots + 4]! // op 69, slot 5
      holding = true
      const from = g.log.length
      const issued = () => g.log.slice(from)
      const first = yield* start(journal.writePrepare(older))
      const second = yield* start(journal.writePrepare(newer))
      yield* until(() => issued().length === 1, "op 5's prepare write")
      yield* settle
      expect(issued().length, "op 69 waits for op 5's slot").toBe(1)
      yield* g.release(issued()[0]!)
      yield* until(() => issued().length === 2, "op 5's header write")
      yield* settle
      expect(issued().length, "op 69 still waits: op 5's header is in flight").toBe(2)
      yield* g.release(issued()[1]!)
      yield* Fiber.join(first)
      yield* until(() => issued().length === 3, "op 69's prepare write")
      yield* g.release(issued()[2]!)
      yield* until(() => issued().length === 4, "op 69's header write")
      yield* g.release(issued()[3]!)
      yield* Fiber.join(second)
      expect(issued().map((io) => `${io.zone}@${io.offset}`)).toEqual([
        `wal_prepares@${slotOffset(5)}`, "wal_headers@0", `wal_prepares@${slotOffset(5)}`, "wal_headers@0"
      ])
      expect(hex(slotIn(issued()[1]!.issued, 5))).toBe(hex(headerOf(older)))
      expect(hex(slotIn(issued()[3]!.issued, 5))).toBe(hex(headerOf(newer)))
      const image = onDiskImage(newer)
      expect(hex(yield* readRaw(raw, layout.walPrepares, slotOffset(5), image.length))).toBe(hex(image))
      expect(hex(slotIn(yield* headerSectorOnDisk(raw, 5), 5))).toBe(hex(headerOf(newer)))
      expect(hex(journal.headerOf(5))).toBe(hex(headerOf(newer)))
    }))
  }))
})

describe("journal: concurrent writes leave the disk the same writes leave one after the other", () => {
  /** Batches of ops drawn so that slots and header sectors collide: a batch may hold op n and op n + slots, or op n twice. */
  function batches(seed: number): Array<Array<number>> {
    const prng = new Prng(seed)
    return Array.from({ length: 8 }, () =>
      Array.from({ length: 1 + prng.below(layout.config.pipelineMax) }, () => 1 + prng.below(3 * headersPerSector) + (prng.chance(0.5) ? slots : 0)))
  }

  const walImage = (storage: Storage["Service"]) => Effect.gen(function* () {
    const headers = yield* readRaw(storage, layout.walHeaders, 0, layout.walHeaders.sizeBytes)
    // Every prepare here fits two sectors; nothing else of a slot is ever written.
    const prepares: Array<string> = []
    for (let slot = 0; slot < slots; slot++) prepares.push(hex(yield* readRaw(storage, layout.walPrepares, slot * layout.config.messageSizeMax, 2 * sectorSize)))
    return { headers: hex(headers), prepares }
  })


  it.effect("on random batches with shared sectors and wrap-arounds, over seeded disk latencies", () => Effect.gen(function* () {
    const prepares = chain(slots + 3 * headersPerSector)
    for (let seed = 1; seed <= 12; seed++) {
      const plan = batches(seed)
      const latency = { min: 0, mean: 3 }
      const concurrent = new SimulatedDisk({ seed, sizeBytes: walSizeBytes, writeLatencyMs: latency, readLatencyMs: latency })
      const serial = new SimulatedDisk({ seed, sizeBytes: walSizeBytes })
      const images = yield* Effect.forEach([concurrent, serial], (disk) => onDisk(disk)(Effect.gen(function* () {
        const storage = yield* Storage
        const journal = yield* clockedThrough(freshJournal(storage, false))
        for (const batch of plan) {
          if (disk === serial) for (const op of batch) yield* journal.writePrepare(prepares[op - 1]!)
          else yield* clockedThrough(Effect.gen(function* () {
            const fibers = yield* Effect.forEach(batch, (op) => start(journal.writePrepare(prepares[op - 1]!)))
            yield* Fiber.joinAll(fibers)
          }))
        }
        return yield* clockedThrough(walImage(storage))
      })))
      const [a, b] = images
      expect(a!.headers, `seed ${seed}: headers ring`).toBe(b!.headers)
      for (let slot = 0; slot < slots; slot++) expect(a!.prepares[slot], `seed ${seed}: slot ${slot}`).toBe(b!.prepares[slot])
    }
  }))
})

describe("journal: reads never share memory with writes", () => {
  it.effect("a read while a write is in flight returns the right bytes and leaves the write's bytes intact (single replica)", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 21, sizeBytes: walSizeBytes })
    const prepares = chain(9)
    yield* onDisk(disk)(Effect.gen(function* () {
      const raw = yield* Storage
      let holding = false
      const g = gate(raw, (kind, zone) => holding && kind === "write" && zone.name === "wal_prepares")
      const journal = yield* freshJournal(g.storage, true)
      for (const prepare of prepares.slice(0, 8)) yield* journal.writePrepare(prepare)
      holding = true
      const from = g.log.length
      const writing = yield* start(journal.writePrepare(prepares[8]!))
      yield* until(() => g.log.length === from + 1, "op 9's prepare write")
      for (let op = 1; op <= 8; op++) {
        const read = yield* journal.readPrepare(op, headerOf(prepares[op - 1]!))
        expect(read && hex(read), `op ${op}`).toBe(hex(prepares[op - 1]!))
      }
      yield* g.release(g.log[from]!)
      yield* Fiber.join(writing)
    }))
    const recovered = yield* onDisk(disk)(Effect.gen(function* () {
      return yield* recoverJournal(yield* Storage, layout, { cluster: clusterBytes, checkpointHeader: root, solo: true })
    }))
    expect(recovered.replay.map((entry) => entry.op)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    const read = yield* onDisk(disk)(recovered.journal.readPrepare(9, headerOf(prepares[8]!)))
    expect(read && hex(read)).toBe(hex(prepares[8]!))
  }))

  it.effect("the read pool: reads in flight beside writes in flight, each in its own memory, and its bounds", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 22, sizeBytes: walSizeBytes })
    const prepares = chain(2 * journalReadsMax)
    yield* onDisk(disk)(Effect.gen(function* () {
      const raw = yield* Storage
      let holding = false
      const g = gate(raw, (_kind, zone) => holding && zone.name === "wal_prepares")
      const journal = yield* freshJournal(g.storage, false)
      expect(journal.readsMax).toBe(journalReadsMax)
      for (const prepare of prepares.slice(0, journalReadsMax)) yield* journal.writePrepare(prepare)
      holding = true
      const from = g.log.length
      // The next ops' writes are in flight (held at their prepares) while ops 1..8 are read.
      const writes = yield* Effect.forEach(prepares.slice(journalReadsMax), (prepare) => start(journal.writePrepare(prepare)))
      const readOf = (op: number, repair: boolean) => {
        const expected = headerOf(prepares[op - 1]!)
        return repair ? journal.readPrepareForRepair(op, expected) : journal.readPrepare(op, expected)
      }
      // A slot being written holds nothing to read yet.
      expect(yield* readOf(journalReadsMax + 1, false)).toBeUndefined()
      const reads = yield* Effect.forEach(Array.from({ length: journalReadsMax }, (_, i) => i + 1),
        (op) => start(readOf(op, op > journalReadsCommitMax)))
      yield* until(() => g.log.length === from + 2 * journalReadsMax, "every write and read is issued")
      const inFlight = g.log.slice(from)
      for (let i = 0; i < inFlight.length; i++) {
        for (let j = i + 1; j < inFlight.length; j++) {
          const a = inFlight[i]!.buffer
          const b = inFlight[j]!.buffer
          const overlap = a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length
          expect(overlap, `I/O ${i} (${inFlight[i]!.kind}) and ${j} (${inFlight[j]!.kind}) share memory`).toBe(false)
        }
      }
      // The bounds: a third commit read is a defect; a seventh repair read is refused at once.
      const commit = yield* Effect.exit(readOf(1, false))
      expect(defectOf(commit)).toContain(`more than ${journalReadsCommitMax} journal reads on the commit path`)
      const busy = yield* Effect.flip(readOf(3, true))
      assert.instanceOf(busy, JournalReadsBusyError)
      expect(busy.readsMax).toBe(journalReadsRepairMax)
      holding = false
      for (const io of inFlight) yield* g.release(io)
      for (let op = 1; op <= journalReadsMax; op++) {
        const read = yield* Fiber.join(reads[op - 1]!)
        expect(read && hex(read), `op ${op}`).toBe(hex(prepares[op - 1]!))
      }
      yield* Fiber.joinAll(writes)
      // Every buffer went back to the pool: the same reads run again, and read the new ops too.
      for (let op = 1; op <= 2 * journalReadsMax; op++) {
        const read = yield* readOf(op, true)
        expect(read && hex(read), `op ${op} again`).toBe(hex(prepares[op - 1]!))
      }
    }))
  }))
})

describe("journal: the write pool's bounds", () => {
  it.effect("a cluster's journal takes writesMax writes in flight; one more is a defect and the others are unharmed", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 31, sizeBytes: walSizeBytes })
    yield* onDisk(disk)(Effect.gen(function* () {
      const raw = yield* Storage
      let holding = false
      const g = gate(raw, (kind) => holding && kind === "write")
      const journal = yield* freshJournal(g.storage, false)
      const writesMax = layout.config.pipelineMax
      expect(journal.writesMax).toBe(writesMax)
      const prepares = chain(writesMax + 1)
      holding = true
      const from = g.log.length
      const fibers = yield* Effect.forEach(prepares.slice(0, writesMax), (prepare) => start(journal.writePrepare(prepare)))
      expect(journal.writesAvailable).toBe(0)
      const beyond = yield* Effect.exit(journal.writePrepare(prepares[writesMax]!))
      expect(defectOf(beyond)).toContain(`the bound is ${writesMax}`)
      holding = false
      for (const io of g.log.slice(from)) yield* g.release(io)
      yield* Fiber.joinAll(fibers)
      expect(journal.writesAvailable).toBe(writesMax)
      yield* journal.writePrepare(prepares[writesMax]!)
    }))
    const recovered = yield* onDisk(disk)(Effect.gen(function* () {
      return yield* recoverJournal(yield* Storage, layout, { cluster: clusterBytes, checkpointHeader: root, solo: false })
    }))
    expect(recovered.replay.map((entry) => entry.op)).toEqual(Array.from({ length: layout.config.pipelineMax + 1 }, (_, i) => i + 1))
  }))

  it.effect("a single replica's journal writes one prepare at a time (recovery's torn-append rule relies on it) and serves no repair reads", () =>
    Effect.gen(function* () {
      const disk = new SimulatedDisk({ seed: 32, sizeBytes: walSizeBytes })
      yield* onDisk(disk)(Effect.gen(function* () {
        const raw = yield* Storage
        let holding = false
        const g = gate(raw, (kind) => holding && kind === "write")
        const journal = yield* freshJournal(g.storage, true)
        expect(journal.writesMax).toBe(1)
        expect(journal.readsMax).toBe(journalReadsCommitMax)
        const prepares = chain(2)
        holding = true
        const from = g.log.length
        const first = yield* start(journal.writePrepare(prepares[0]!))
        const second = yield* Effect.exit(journal.writePrepare(prepares[1]!))
        expect(defectOf(second)).toContain("a single replica writes one prepare at a time")
        const repair = yield* Effect.exit(journal.readPrepareForRepair(1, headerOf(prepares[0]!)))
        expect(defectOf(repair)).toContain("serves no repair reads")
        holding = false
        for (const io of g.log.slice(from)) yield* g.release(io)
        yield* Fiber.join(first)
        yield* journal.writePrepare(prepares[1]!)
      }))
    }))
})

describe("journal: a crash at any moment of a run of writes", () => {
  interface Scenario {
    readonly name: string
    readonly solo: boolean
    /** Ops written (and acknowledged) before the run. */
    readonly history: number
    /** The run writes ops history + 1 .. last, up to writesMax at once (one at a time for a replica of one). */
    readonly last: number
    /** The checkpoint recovery starts from: the run stays within its prepare_max. */
    readonly checkpointOp: number
  }
  const scenarios: ReadonlyArray<Scenario> = [
    { name: "cluster, first lap", solo: false, history: 0, last: 24, checkpointOp: 0 },
    { name: "cluster, the ring wraps", solo: false, history: 52, last: 80, checkpointOp: 31 },
    // One write at a time takes longer per op: fewer ops, every moment still.
    { name: "single replica, first lap", solo: true, history: 0, last: 8, checkpointOp: 0 },
    { name: "single replica, the ring wraps", solo: true, history: 60, last: 68, checkpointOp: 31 }
  ]
  const prepares = chain(80)
  const seeds = [1, 2]
  /** A run of 28 ops at a few milliseconds per write ends far sooner: this bounds a hung run. */
  const crashMsMax = 10_000

  interface Outcome {
    readonly finished: boolean
    readonly started: ReadonlySet<number>
    readonly acknowledged: ReadonlySet<number>
  }

  /** Runs the scenario on `disk`, crashing it after `crashMs` milliseconds of the run (never, if the run ends first). */
  const runUntilCrash = (disk: SimulatedDisk, scenario: Scenario, crashMs: number) => onDisk(disk)(Effect.gen(function* () {
    const storage = yield* Storage
    // The set-up is not under test: its writes complete whatever their latency.
    const journal: Journal = yield* clockedThrough(Effect.gen(function* () {
      const journal = yield* freshJournal(storage, scenario.solo)
      for (const prepare of prepares.slice(0, scenario.history)) yield* journal.writePrepare(prepare)
      return journal
    }))
    const started = new Set<number>()
    const acknowledged = new Set<number>()
    const ops = Array.from({ length: scenario.last - scenario.history }, (_, i) => scenario.history + 1 + i)
    const run = yield* Effect.forkChild(Effect.forEach(ops, (op) => Effect.sync(() => started.add(op)).pipe(
      Effect.andThen(journal.writePrepare(prepares[op - 1]!)),
      Effect.andThen(Effect.sync(() => acknowledged.add(op)))
    ), { concurrency: scenario.solo ? 1 : layout.config.pipelineMax, discard: true }))
    for (let ms = 0; ms < crashMs && run.pollUnsafe() === undefined; ms++) yield* TestClock.adjust(1)
    const finished = run.pollUnsafe() !== undefined
    if (finished) {
      yield* Fiber.join(run)
      return { finished, started, acknowledged } satisfies Outcome
    }
    disk.crash()
    const outcome = { finished, started: new Set(started), acknowledged: new Set(acknowledged) } satisfies Outcome
    // The dead process's writes in flight now fail (their storage is gone): the journal stops.
    const exit = yield* clockedThrough(Fiber.await(run))
    expect(exit._tag).toBe("Failure")
    return outcome
  }))

  /**
   * No redundant header on disk without its prepare (§4.3): a header naming op x in slot s means
   * the slot holds op x intact, unless another op's write of that slot was in flight at the crash.
   */
  const checkHeadersHaveTheirPrepares = (disk: SimulatedDisk, outcome: Outcome, what: string) => onDisk(disk)(Effect.gen(function* () {
    const storage = yield* Storage
    const ring = yield* readRaw(storage, layout.walHeaders, 0, layout.walHeaders.sizeBytes)
    for (const prepare of prepares) {
      const op = prepares.indexOf(prepare) + 1
      const slot = op % slots
      if (hex(ring.subarray(slot * 256, slot * 256 + 256)) !== hex(headerOf(prepare))) continue
      const inFlight = [...outcome.started].some((other) => other !== op && other % slots === slot && !outcome.acknowledged.has(other))
      if (inFlight) continue
      const image = onDiskImage(prepare)
      expect(hex(yield* readRaw(storage, layout.walPrepares, slotOffset(op), image.length)), `${what}: op ${op}'s header is on disk without its prepare`)
        .toBe(hex(image))
    }
  }))

  const checkRecovery = (disk: SimulatedDisk, scenario: Scenario, outcome: Outcome, what: string) => onDisk(disk)(clockedThrough(Effect.gen(function* () {
    const checkpointHeader = scenario.checkpointOp === 0 ? root : headerOf(prepares[scenario.checkpointOp - 1]!)
    const recovered = yield* recoverJournal(yield* Storage, layout, { cluster: clusterBytes, checkpointHeader, solo: scenario.solo }).pipe(
      Effect.catchTag("JournalRecoveryError", (error) => Effect.sync(() => assert.fail(`${what}: recovery refused: ${error.message}`))))
    const { journal } = recovered
    const acknowledged = [...outcome.acknowledged, ...Array.from({ length: scenario.history }, (_, i) => i + 1)]
      .filter((op) => op > scenario.checkpointOp)
    for (const op of acknowledged) {
      const slot = op % slots
      if (journal.isFaulty(slot)) {
        // Only a cluster may hold an acknowledged op as faulty: it fetches it from a peer and never nacks it.
        expect(scenario.solo, `${what}: op ${op} is faulty in a replica of one`).toBe(false)
        continue
      }
      expect(hex(journal.headerOf(slot)), `${what}: acknowledged op ${op} is lost`).toBe(hex(headerOf(prepares[op - 1]!)))
      const read = yield* journal.readPrepare(op, headerOf(prepares[op - 1]!))
      expect(read && hex(read), `${what}: op ${op} reads back`).toBe(hex(prepares[op - 1]!))
    }
    // Each op recovery returns is the prepare written at it (a cluster's may leave gaps: the core decides what connects).
    const replayed = recovered.replay.map((entry) => entry.op)
    for (const entry of recovered.replay) expect(hex(entry.checksum), `${what}: op ${entry.op}`).toBe(hex(prepares[entry.op - 1]!.subarray(0, 16)))
    if (scenario.solo) {
      // A replica of one replays every acknowledged op, and at most the one op in flight besides.
      const head = replayed.at(-1) ?? scenario.checkpointOp
      const acknowledgedMax = Math.max(scenario.checkpointOp, ...acknowledged)
      expect(head, what).toBeGreaterThanOrEqual(acknowledgedMax)
      expect(head, what).toBeLessThanOrEqual(acknowledgedMax + 1)
      expect(recovered.report.faultySlots, what).toEqual([])
    }
    return recovered.report
  })))

  for (const scenario of scenarios) {
    it.effect(`${scenario.name}: every acknowledged op survives, torn ones are told apart`, () => Effect.gen(function* () {
      let tornTotal = 0
      let faultyTotal = 0
      let runs = 0
      for (const seed of seeds) {
        const disk = () => new SimulatedDisk({
          seed, sizeBytes: walSizeBytes, writeLatencyMs: { min: 1, mean: 3 }, faults: { crashFaultProbability: seed % 2 === 1 ? 1 : 0.5 }
        })
        for (let crashMs = 0; crashMs < crashMsMax; crashMs++) {
          const crashed = disk()
          const outcome = yield* runUntilCrash(crashed, scenario, crashMs)
          const what = `${scenario.name}, seed ${seed}, crash after ${crashMs} ms`
          if (!scenario.solo) expect(outcome.started.size - outcome.acknowledged.size, what).toBeLessThanOrEqual(layout.config.pipelineMax)
          else expect(outcome.started.size - outcome.acknowledged.size, what).toBeLessThanOrEqual(1)
          yield* checkHeadersHaveTheirPrepares(crashed, outcome, what)
          const report = yield* checkRecovery(crashed, scenario, outcome, what)
          tornTotal += report.tornSlots.length
          faultyTotal += report.faultySlots.length
          runs++
          if (outcome.finished) break
          assert(crashMs < crashMsMax - 1, `${what}: the run never ends`)
        }
      }
      // The runs did crash in the middle of writes, and recovery saw what they tore: a replica of
      // one truncates its torn append; a cluster also leaves tears for its peers to repair (a tear
      // in the first lap, or below the head, is not provably unacknowledged).
      expect(runs).toBeGreaterThan(10)
      expect(tornTotal + faultyTotal).toBeGreaterThan(0)
      if (scenario.solo) expect(faultyTotal).toBe(0)
      if (scenario.solo) expect(tornTotal).toBeGreaterThan(0)
    }))
  }
})
