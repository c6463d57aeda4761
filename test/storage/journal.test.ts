/**
 * The first-rung WAL and superblock on the simulated disk: what is written is recovered in op
 * order; a restart after a crash keeps every completed write; a corrupt op below the newest is
 * refused with its number; a torn newest op (never acknowledged) is dropped.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { SimulatedDisk } from "../../src/layers/disk_sim.ts"
import { buildMessage, u128ToBytes } from "../../src/protocol/build.ts"
import { Command, zeroHeader } from "../../src/protocol/header.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"
import { formatJournal, JournalRecoveryError, recoverJournal, writePrepare } from "../../src/storage/journal.ts"
import { layoutOf, testConfig } from "../../src/storage/layout.ts"
import { Storage } from "../../src/storage/storage.ts"
import { readSuperblock, writeSuperblock } from "../../src/storage/superblock.ts"

const layout = layoutOf(testConfig)
const cluster = 7n
const clusterBytes = u128ToBytes(cluster)
const sizeBytes = layout.dataFileSizeMin

/** A chain of `count` prepares (op 1..count) with bodies of growing size, some over a sector. */
function chain(count: number): Array<Uint8Array> {
  const prepares: Array<Uint8Array> = []
  let parent = rootPrepare(clusterBytes)
  for (let op = 1; op <= count; op++) {
    const header = zeroHeader(Command.prepare)
    header.cluster = cluster
    header.op = BigInt(op)
    header.commit = BigInt(op - 1)
    header.timestamp = BigInt(1000 + op)
    header.operation = 146
    header.client = 99n
    header.request = op
    header.release = 4361
    header.parent = new DataView(parent.buffer, parent.byteOffset, 16).getBigUint64(0, true) |
      (new DataView(parent.buffer, parent.byteOffset, 16).getBigUint64(8, true) << 64n)
    const body = new Uint8Array(op * 700).fill(op)
    header.size = 256 + body.length
    const prepare = buildMessage(header, body)
    prepares.push(prepare)
    parent = prepare
  }
  return prepares
}

const useDisk = (disk: SimulatedDisk) => <A, E>(effect: Effect.Effect<A, E, Storage>) => effect.pipe(Effect.provide(disk.layer()))

describe("journal (first rung)", () => {
  it.effect("recovers every written op in order, across a crash", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 1, sizeBytes, unwrittenReadsRandom: true })
    const prepares = chain(20)
    yield* useDisk(disk)(Effect.gen(function* () {
      const storage = yield* Storage
      yield* writeSuperblock(storage, layout, { cluster, replica: 0, replicaCount: 1, config: "test" })
      yield* formatJournal(storage, layout, clusterBytes)
      for (const [i, prepare] of prepares.entries()) yield* writePrepare(storage, layout, BigInt(i + 1), prepare)
    }))
    disk.crash()
    const recovered = yield* useDisk(disk)(Effect.gen(function* () {
      const storage = yield* Storage
      const superblock = yield* readSuperblock(storage, layout)
      assert.strictEqual(superblock._tag, "Ok")
      return yield* recoverJournal(storage, layout, clusterBytes)
    }))
    expect(recovered.map((p) => Buffer.from(p).toString("hex"))).toEqual(prepares.map((p) => Buffer.from(p).toString("hex")))
  }))

  it.effect("a reused write buffer leaves no stale bytes: every prepare's padding is zero", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 5, sizeBytes, unwrittenReadsRandom: false })
    const prepares = chain(8)
    const recovered = yield* useDisk(disk)(Effect.gen(function* () {
      const storage = yield* Storage
      yield* formatJournal(storage, layout, clusterBytes)
      const scratch = storage.allocate(layout.config.messageSizeMax).fill(0xff)
      for (const [i, prepare] of prepares.entries()) yield* writePrepare(storage, layout, BigInt(i + 1), prepare, scratch)
      return yield* recoverJournal(storage, layout, clusterBytes)
    }))
    expect(recovered).toHaveLength(8)
  }))

  it.effect("refuses a corrupt op below the newest, naming it", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 2, sizeBytes, unwrittenReadsRandom: false })
    const prepares = chain(6)
    yield* useDisk(disk)(Effect.gen(function* () {
      const storage = yield* Storage
      yield* formatJournal(storage, layout, clusterBytes)
      for (const [i, prepare] of prepares.entries()) yield* writePrepare(storage, layout, BigInt(i + 1), prepare)
    }))
    disk.corruptSector(layout.walPrepares.start + 3 * layout.config.messageSizeMax)
    const error = yield* Effect.flip(useDisk(disk)(Effect.gen(function* () {
      return yield* recoverJournal(yield* Storage, layout, clusterBytes)
    })))
    expect(error).toBeInstanceOf(JournalRecoveryError)
    expect((error as JournalRecoveryError).op).toBe("3")
  }))

  it.effect("drops a torn newest op: it was never acknowledged", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 3, sizeBytes, unwrittenReadsRandom: false })
    const prepares = chain(5)
    yield* useDisk(disk)(Effect.gen(function* () {
      const storage = yield* Storage
      yield* formatJournal(storage, layout, clusterBytes)
      for (const [i, prepare] of prepares.entries()) yield* writePrepare(storage, layout, BigInt(i + 1), prepare)
    }))
    disk.corruptSector(layout.walPrepares.start + 5 * layout.config.messageSizeMax)
    const recovered = yield* useDisk(disk)(Effect.gen(function* () {
      return yield* recoverJournal(yield* Storage, layout, clusterBytes)
    }))
    expect(recovered).toHaveLength(4)
  }))

  it.effect("a superblock with one damaged copy still opens; all damaged refuses", () => Effect.gen(function* () {
    const disk = new SimulatedDisk({ seed: 4, sizeBytes, unwrittenReadsRandom: false })
    const identity = { cluster, replica: 0, replicaCount: 1, config: "test" as const }
    yield* useDisk(disk)(Effect.gen(function* () { yield* writeSuperblock(yield* Storage, layout, identity) }))
    disk.corruptSector(0)
    const one = yield* useDisk(disk)(Effect.gen(function* () { return yield* readSuperblock(yield* Storage, layout) }))
    expect(one).toEqual({ _tag: "Ok", identity, damagedCopies: 1 })
    for (let copy = 1; copy < 4; copy++) disk.corruptSector(copy * layout.config.superblockCopySize)
    const none = yield* useDisk(disk)(Effect.gen(function* () { return yield* readSuperblock(yield* Storage, layout) }))
    expect(none._tag).toBe("Unreadable")
  }))
})
