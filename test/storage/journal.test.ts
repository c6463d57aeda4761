/**
 * The WAL on the simulated disk (storage.md §4): what is appended is recovered in op order,
 * across crashes and wraps of the ring; a torn append at the head is truncated (it was never
 * acknowledged), while corruption below the head is refused naming the op; a damaged redundant
 * header beside an intact prepare is fixed locally; a faulty slot stays faulty across restarts;
 * and a crash at every write boundary of a sequence of appends keeps every acknowledged op.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { SimulatedDisk } from "../../src/layers/disk_sim.ts"
import { formatJournal, Journal, JournalRecoveryError, type Recovered, recoverJournal } from "../../src/storage/journal.ts"
import { headersPerSector } from "../../src/storage/layout.ts"
import { sectorSize, Storage, StorageFatalError } from "../../src/storage/storage.ts"
import { chain, clusterBytes, layout, root, slots } from "./journal_harness.ts"

const sizeBytes = layout.dataFileSizeMin

const slotOffset = (op: number) => layout.walPrepares.start + (op % slots) * layout.config.messageSizeMax
const headerSectorOffset = (op: number) => layout.walHeaders.start + Math.floor((op % slots) / headersPerSector) * sectorSize

const onDisk = (disk: SimulatedDisk) => <A, E>(effect: Effect.Effect<A, E, Storage>) => effect.pipe(Effect.provide(disk.layer()))

/** Formats the journal and appends `prepares` through a recovered Journal (as the replica does). */
const append = (disk: SimulatedDisk, prepares: ReadonlyArray<Uint8Array>, format = true) => onDisk(disk)(Effect.gen(function* () {
  const storage = yield* Storage
  if (format) yield* formatJournal(storage, layout, clusterBytes)
  const { journal } = yield* recoverJournal(storage, layout, { cluster: clusterBytes, checkpointHeader: root, solo: true })
  for (const prepare of prepares) yield* journal.writePrepare(prepare)
}))

const recover = (disk: SimulatedDisk, checkpointHeader = root, solo = true) =>
  onDisk(disk)(Effect.gen(function* () { return yield* recoverJournal(yield* Storage, layout, { cluster: clusterBytes, checkpointHeader, solo }) }))

const ops = (recovered: Recovered) => recovered.replay.map((entry) => entry.op)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe("journal", () => {
  it.effect("recovers every appended op in order across a crash, and reads each prepare back intact", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 1, sizeBytes })
    const prepares = chain(40)
    yield* append(disk, prepares)
    disk.crash()
    const recovered = yield* recover(disk)
    expect(ops(recovered)).toEqual(range(1, 40))
    expect(recovered.report.decisions.vsr + recovered.report.decisions.fix + recovered.report.decisions.cut_torn).toBe(0)
    const read = yield* onDisk(disk)(Effect.forEach(recovered.replay, ({ op, checksum }) => recovered.journal.readPrepare(op, checksum)))
    expect(read.map((p) => Buffer.from(p!).toString("hex"))).toEqual(prepares.map((p) => Buffer.from(p).toString("hex")))
  }))

  it.effect("after the ring wraps, replays from the checkpoint on; older ops are not needed", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 2, sizeBytes })
    const prepares = chain(slots + 30)
    yield* append(disk, prepares)
    // A checkpoint at op 63 (the first of the test profile after the root... every 32 ops: 31, 63).
    const recovered = yield* recover(disk, prepares[62]!.subarray(0, 256))
    expect(ops(recovered)).toEqual(range(64, slots + 30))
  }))

  it.effect("truncates a torn append at the head: its redundant header was never written, so it was never acknowledged", () => Effect.gen(function* () {
    for (const [name, count] of [["first lap (reserved redundant header)", 10], ["a later lap (redundant header of an older op)", slots + 10]] as const) {
      const disk = new SimulatedDisk({ seed: 3, sizeBytes })
      const prepares = chain(count + 1)
      yield* append(disk, prepares.slice(0, count))
      // The next append's prepare lands torn and the machine stops before its header write.
      yield* onDisk(disk)(Effect.gen(function* () {
        const storage = yield* Storage
        const buffer = storage.allocate(Math.ceil(prepares[count]!.length / sectorSize) * sectorSize)
        buffer.set(prepares[count]!)
        yield* storage.write(layout.walPrepares, (count + 1) % slots * layout.config.messageSizeMax, buffer)
      }))
      disk.corruptSector(slotOffset(count + 1))
      const checkpoint = count > slots ? prepares[62]!.subarray(0, 256) : root
      const recovered = yield* recover(disk, checkpoint)
      expect(recovered.report.tornSlots, name).toEqual([(count + 1) % slots])
      expect(ops(recovered).at(-1), name).toBe(count)
    }
  }))

  it.effect("fixes redundant headers torn with their sector, from the intact prepares, and writes them back", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 4, sizeBytes })
    yield* append(disk, chain(20))
    // The sector of slots 16..31 becomes garbage, as if its last write had torn.
    yield* onDisk(disk)(Effect.gen(function* () {
      const storage = yield* Storage
      yield* storage.write(layout.walHeaders, headerSectorOffset(20) - layout.walHeaders.start, storage.allocate(sectorSize).fill(0xab))
    }))
    const first = yield* recover(disk)
    expect(ops(first)).toEqual(range(1, 20))
    expect(first.report.fixedSlots).toEqual(range(16, 31))
    const second = yield* recover(disk)
    expect(second.report.fixedSlots).toEqual([])
  }))

  it.effect("refuses to start when a prepare below the head is corrupt, naming its op", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 5, sizeBytes })
    yield* append(disk, chain(12))
    disk.corruptSector(slotOffset(5))
    const error = yield* Effect.flip(recover(disk))
    assert.instanceOf(error, JournalRecoveryError)
    expect((error as JournalRecoveryError).op).toBe("op 5 (slot 5)")
    expect(error.message).toContain("case C")
  }))

  it.effect("a single replica starts despite a damaged slot whose op its checkpoint already holds, and refuses one after it", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 8, sizeBytes })
    const prepares = chain(slots + 10)
    yield* append(disk, prepares)
    const checkpoint = prepares[62]!.subarray(0, 256) // op 63
    disk.corruptSector(slotOffset(40)) // op 40: inside the checkpoint
    const recovered = yield* recover(disk, checkpoint)
    expect(recovered.report.resetSlots).toEqual([40])
    expect(recovered.report.faultySlots).toEqual([])
    expect(ops(recovered)).toEqual(range(64, slots + 10))
    // The slot was reset on disk: a neighbour's write and another recovery see an empty slot.
    const again = yield* recover(disk, checkpoint)
    expect(again.report.resetSlots).toEqual([])
    expect(again.report.decisions.vsr).toBe(0)
    disk.corruptSector(slotOffset(66)) // op 66: after it
    const error = yield* Effect.flip(recover(disk, checkpoint))
    expect(error.message).toContain("op 66 (slot 2)")
  }))

  it.effect("refuses a slot whose prepare is an older op than its redundant header (a lost or misdirected write)", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 6, sizeBytes })
    const prepares = chain(slots + 8)
    yield* append(disk, prepares)
    // Slot of op 70 shows op 6 again: its prepare write was lost, its header (op 70) was written.
    yield* onDisk(disk)(Effect.gen(function* () {
      const storage = yield* Storage
      const buffer = storage.allocate(Math.ceil(prepares[5]!.length / sectorSize) * sectorSize)
      buffer.set(prepares[5]!)
      yield* storage.write(layout.walPrepares, 6 * layout.config.messageSizeMax, buffer)
    }))
    const error = yield* Effect.flip(recover(disk, prepares[62]!.subarray(0, 256)))
    expect(error.message).toContain("case N")
  }))

  it.effect("keeps a faulty slot faulty after a neighbour rewrote its header sector (cluster mode, storage.md §4.3)", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 7, sizeBytes })
    const prepares = chain(6)
    yield* append(disk, prepares.slice(0, 5))
    disk.corruptSector(slotOffset(3))
    const first = yield* recover(disk, root, false)
    expect(first.report.faultySlots).toEqual([3])
    // Op 6 shares slot 3's header sector; the recovered image writes slot 3's header invalid.
    yield* onDisk(disk)(first.journal.writePrepare(prepares[5]!))
    disk.crash()
    const second = yield* recover(disk, root, false)
    expect(second.report.faultySlots).toEqual([3])
    expect(second.journal.isFaulty(3)).toBe(true)
  }))

  it.effect("a crash at every write boundary of a run of appends keeps every acknowledged op", () => Effect.gen(function* () {
    const prepares = chain(slots + 6)
    // Each append is two writes (prepare, then its header sector); crash on write k, torn.
    const writes = 2 * prepares.length
    for (let k = 0; k < writes; k += 7) {
      const disk = new SimulatedDisk({ seed: 100 + k, sizeBytes })
      yield* onDisk(disk)(Effect.gen(function* () { yield* formatJournal(yield* Storage, layout, clusterBytes) }))
      let acknowledged = 0
      let count = 0
      const exit = yield* Effect.exit(onDisk(disk)(Effect.gen(function* () {
        const storage = yield* Storage
        const { journal } = yield* recoverJournal(storage, layout, { cluster: clusterBytes, checkpointHeader: root, solo: true })
        const tearing = Storage.of({
          ...storage,
          write: (zone, offset, buffer) => {
            if (count++ < k) return storage.write(zone, offset, buffer)
            // The k-th write tears: its first sector lands damaged, and the process stops.
            return Effect.andThen(storage.write(zone, offset, buffer.subarray(0, sectorSize)), () => {
              disk.corruptSector(zone.start + offset)
              return Effect.fail(new StorageFatalError({ path: "crash", operation: "write", offset, code: "CRASH", reason: "power lost" }))
            })
          }
        })
        const torn = new Journal(tearing, layout, cloneHeaders(journal), cloneRedundant(storage, journal), new Uint8Array(slots))
        for (const prepare of prepares) {
          yield* torn.writePrepare(prepare)
          acknowledged++
        }
      })))
      expect(exit._tag).toBe("Failure")
      disk.crash()
      // Past the first lap, replay starts at the checkpoint the replica would have taken at op 31.
      const checkpointOp = acknowledged > slots - 2 ? 31 : 0
      const recovered = yield* recover(disk, checkpointOp === 0 ? root : prepares[checkpointOp - 1]!.subarray(0, 256))
      const head = ops(recovered).at(-1) ?? checkpointOp
      expect(head, `crash at write ${k}`).toBeGreaterThanOrEqual(acknowledged)
      expect(head, `crash at write ${k}`).toBeLessThanOrEqual(acknowledged + 1)
    }
  }))
})

/** A Journal's images, taken through its public view, for a second Journal over another Storage. */
function cloneHeaders(journal: Journal): Uint8Array {
  const headers = new Uint8Array(slots * 256)
  for (let slot = 0; slot < slots; slot++) headers.set(journal.headerOf(slot), slot * 256)
  return headers
}

function cloneRedundant(storage: Storage["Service"], journal: Journal): Uint8Array {
  const redundant = storage.allocate(layout.walHeaders.sizeBytes)
  redundant.set(cloneHeaders(journal))
  return redundant
}
