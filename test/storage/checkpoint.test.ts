/**
 * Checkpoints on the simulated disk (storage.md §7, rung R1): a checkpoint stores exactly the
 * ledger and the client sessions, and reopening it gives a ledger that answers every later batch
 * as the original does; unchanged blocks are carried over and old ones freed once the next
 * checkpoint is durable, so space stays bounded; two replicas fed the same ops write identical
 * grids; a crash at any write of a checkpoint reopens the previous or the new one, never a mix;
 * and damaged or misdirected blocks, lost replies and damaged superblock copies are caught.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Ledger } from "../../src/ledger/ledger.ts"
import { checkpointId } from "../../src/storage/checkpoint_state.ts"
import type { Checkpointer } from "../../src/storage/checkpoint.ts"
import { type SessionEntry } from "../../src/storage/client_sessions.ts"
import { durableOp } from "../../src/storage/layout.ts"
import { Storage } from "../../src/storage/storage.ts"
import { openSuperblock } from "../../src/storage/superblock.ts"
import { SimulatedDisk } from "../../src/layers/disk_sim.ts"
import {
  checkpointHeader, drive, format, layout, newDisk, onDisk, open, openOn, session, snapshotBytes, tearingStorage
} from "./checkpoint_harness.ts"

const start = 1_000_000_000_000n
const checkpointOps = layout.config.checkpointOps
const checkpointOf = (k: number) => k * checkpointOps - 1

/** Writes the checkpoint of op `op` and then commits up to its durability op, as the replica does. */
const checkpoint = (checkpointer: Checkpointer, ledger: Ledger, op: number, timestamp: bigint, sessions: ReadonlyArray<SessionEntry>) =>
  Effect.gen(function* () {
    const stats = yield* checkpointer.write({ header: checkpointHeader(op, timestamp), ledger, sessions })
    for (let commit = op + 1; commit <= durableOp(layout.config, op); commit++) checkpointer.onCommit(commit)
    return stats
  })

/** k checkpoints over the same workload; returns the ledger and the time reached. */
const run = (disk: SimulatedDisk, k: number, sessions: ReadonlyArray<SessionEntry> = []) => Effect.gen(function* () {
  yield* format(disk)
  const opened = yield* open(disk)
  let now = start
  for (let i = 1; i <= k; i++) {
    now = drive(opened.ledger, i, 30, now, i === 1 ? 0 : 12)
    yield* onDisk(disk)(checkpoint(opened.checkpointer, opened.ledger, checkpointOf(i), now, sessions))
  }
  return { ...opened, now }
})

describe("checkpoints", () => {
  it.effect("a reopened checkpoint holds the same ledger, answers later batches identically, and keeps the sessions' replies", () => Effect.gen(function* () {
    const disk = newDisk(1)
    const sessions = [session(0, 101n, 7, 0), session(3, 102n, 9, 5000), session(5, 103n, 12, 70_000)]
    const original = yield* run(disk, 2, sessions)
    const reopened = yield* open(disk)
    expect(reopened.checkpointer.op).toBe(checkpointOf(2))
    expect(snapshotBytes(reopened.ledger)).toEqual(snapshotBytes(original.ledger))
    reopened.ledger.verify()
    expect(reopened.sessions.map((s) => [s.slot, s.client, s.session, Buffer.from(s.reply).toString("hex")]))
      .toEqual(sessions.map((s) => [s.slot, s.client, s.session, Buffer.from(s.reply).toString("hex")]))
    // Both ledgers go on identically: every reply of a further workload is the same.
    const replies = (ledger: Ledger) => {
      const seen: Array<string> = []
      const execute = ledger.execute
      ledger.execute = (operation, events, timestamp) => {
        const reply = execute(operation, events, timestamp)
        seen.push(Buffer.from(reply).toString("hex"))
        return reply
      }
      drive(ledger, 99, 40, original.now, 12)
      return seen
    }
    expect(replies(reopened.ledger)).toEqual(replies(original.ledger))
    expect(snapshotBytes(reopened.ledger)).toEqual(snapshotBytes(original.ledger))
  }))

  it.effect("carries unchanged blocks over, frees replaced ones at the durability op, and stays bounded in space", () => Effect.gen(function* () {
    const disk = newDisk(2)
    yield* format(disk)
    const { ledger, checkpointer } = yield* open(disk)
    let now = drive(ledger, 1, 400, start)
    const first = yield* onDisk(disk)(checkpoint(checkpointer, ledger, checkpointOf(1), now, []))
    expect(first.blocksReused).toBe(0)
    const used: Array<number> = []
    for (let k = 2; k <= 12; k++) {
      now = drive(ledger, k, 3, now, 12)
      const stats = yield* onDisk(disk)(checkpoint(checkpointer, ledger, checkpointOf(k), now, []))
      // Most transfer blocks are full and untouched by three more batches.
      expect(stats.blocksReused).toBeGreaterThan(0)
      expect(stats.blocksWritten).toBeLessThan(first.blocksWritten)
      used.push(checkpointer.blocksAcquired)
    }
    // Released blocks are reused: the grid does not grow with every checkpoint.
    expect(Math.max(...used.slice(5))).toBeLessThanOrEqual(Math.max(...used.slice(0, 5)) + 4)
    const reopened = yield* open(disk)
    expect(snapshotBytes(reopened.ledger)).toEqual(snapshotBytes(ledger))
  }))

  it.effect("two replicas fed the same ops write byte-identical grids and checkpoint states, a restart in between included", () => Effect.gen(function* () {
    const a = newDisk(3)
    const b = newDisk(4)
    const runA = yield* run(a, 3)
    // Replica b restarts after its second checkpoint and replays the rest.
    yield* format(b)
    let opened = yield* open(b)
    let now = start
    for (let i = 1; i <= 3; i++) {
      if (i === 3) {
        opened = yield* open(b)
        // The restart replays the WAL after checkpoint 2, which commits its durability op again.
        for (let commit = checkpointOf(2) + 1; commit <= durableOp(layout.config, checkpointOf(2)); commit++) opened.checkpointer.onCommit(commit)
      }
      // A restarted replica re-executes the ops after its checkpoint from the WAL: here, the workload.
      now = drive(opened.ledger, i, 30, now, i === 1 ? 0 : 12)
      yield* onDisk(b)(checkpoint(opened.checkpointer, opened.ledger, checkpointOf(i), now, []))
    }
    expect(Buffer.from(checkpointId(opened.checkpointer.state)).toString("hex")).toBe(Buffer.from(checkpointId(runA.checkpointer.state)).toString("hex"))
    const grid = (disk: SimulatedDisk, addresses: ReadonlyArray<number>) => onDisk(disk)(Effect.gen(function* () {
      const storage = yield* Storage
      const buffer = storage.allocate(layout.config.blockSize)
      const blocks: Array<string> = []
      for (const address of addresses) {
        yield* storage.read(layout.grid, (address - 1) * layout.config.blockSize, buffer)
        blocks.push(Buffer.from(buffer.subarray(0, new DataView(buffer.buffer).getUint32(96, true))).toString("hex"))
      }
      return blocks
    }))
    const acquired = (checkpointer: Checkpointer) => (checkpointer as unknown as { freeSet: { acquiredAddresses(): Array<number> } }).freeSet.acquiredAddresses()
    expect(acquired(opened.checkpointer)).toEqual(acquired(runA.checkpointer))
    expect(yield* grid(b, acquired(opened.checkpointer))).toEqual(yield* grid(a, acquired(runA.checkpointer)))
  }))

  it.effect("a crash at any write of a checkpoint reopens either the previous checkpoint or the new one, whole", () => Effect.gen(function* () {
    // Count the writes of one checkpoint, then crash (torn) at each of them in turn.
    const sessions = [session(1, 7n, 40, 9000)]
    const probe = newDisk(5)
    const base = yield* run(probe, 1)
    const before = probe.stats.writes
    const later = drive(base.ledger, 2, 30, base.now, 12)
    yield* onDisk(probe)(checkpoint(base.checkpointer, base.ledger, checkpointOf(2), later, sessions))
    const writes = probe.stats.writes - before
    expect(writes).toBeGreaterThan(8)
    const outcomes = new Set<number>()
    for (let k = 0; k < writes; k++) {
      const disk = newDisk(50 + k)
      const first = yield* run(disk, 1)
      const old = snapshotBytes(first.ledger)
      const exit = yield* Effect.exit(onDisk(disk)(Effect.gen(function* () {
        const restarted = yield* openOn(tearingStorage(disk, yield* Storage, k))
        for (let commit = checkpointOf(1) + 1; commit <= durableOp(layout.config, checkpointOf(1)); commit++) restarted.checkpointer.onCommit(commit)
        const now = drive(restarted.ledger, 2, 30, first.now, 12)
        yield* checkpoint(restarted.checkpointer, restarted.ledger, checkpointOf(2), now, sessions)
      })))
      expect(exit._tag, `write ${k} tears`).toBe("Failure")
      disk.crash()
      const after = yield* open(disk)
      outcomes.add(after.checkpointer.op)
      if (after.checkpointer.op === checkpointOf(1)) {
        expect(snapshotBytes(after.ledger), `crash at write ${k}`).toEqual(old)
      } else {
        expect(after.checkpointer.op, `crash at write ${k}`).toBe(checkpointOf(2))
        expect(snapshotBytes(after.ledger), `crash at write ${k}`).toEqual(snapshotBytes(base.ledger))
        expect(after.sessions.map((s) => s.client)).toEqual([7n])
      }
      after.ledger.verify()
    }
    // Early crashes keep the old checkpoint; one among the last superblock copies already has the new one.
    expect([...outcomes].sort((x, y) => x - y)).toEqual([checkpointOf(1), checkpointOf(2)])
  }))

  describe("faults at rest", () => {
    /** A data file with two checkpoints, and the addresses of the snapshot's value blocks. */
    const prepared = (seed: number) => Effect.gen(function* () {
      const disk = newDisk(seed)
      const sessions = [session(2, 44n, 30, 3000)]
      const original = yield* run(disk, 2, sessions)
      const directory = (original.checkpointer as unknown as { directory: Array<{ addresses: Array<number> }> }).directory
      const blocks = directory.flatMap((section) => section.addresses)
      return { disk, original, blocks }
    })
    const blockOffset = (address: number) => layout.grid.start + (address - 1) * layout.config.blockSize
    /** Damages one sector of snapshot block `index` of a fresh checkpoint; the open must refuse it, naming the block. */
    const refusedNaming = (seed: number, index: number, damage: (disk: SimulatedDisk, offset: number) => void) =>
      Effect.gen(function* () {
        const { disk, blocks } = yield* prepared(seed)
        damage(disk, blockOffset(blocks[index]!))
        const error = yield* Effect.flip(open(disk))
        expect(error._tag).toBe("GridReadError")
        expect(error.message).toContain(`grid block ${blocks[index]}`)
      })

    it.effect("a corrupt snapshot block is refused, naming the block", () =>
      refusedNaming(10, 1, (disk, offset) => disk.corruptSector(offset)))

    it.effect("a latent sector error in a block (EIO) is zero-filled by the storage and refused the same way", () =>
      refusedNaming(11, 0, (disk, offset) => disk.makeSectorLatent(offset)))

    it.effect("a misdirected block write (a valid block at the wrong address) is caught by the checksum its parent holds", () => Effect.gen(function* () {
      const { disk, blocks } = yield* prepared(12)
      yield* onDisk(disk)(Effect.gen(function* () {
        const storage = yield* Storage
        const buffer = storage.allocate(layout.config.blockSize)
        yield* storage.read(layout.grid, (blocks[0]! - 1) * layout.config.blockSize, buffer)
        yield* storage.write(layout.grid, (blocks[1]! - 1) * layout.config.blockSize, buffer)
      }))
      const error = yield* Effect.flip(open(disk))
      expect(error.message).toContain("unexpected checksum")
    }))

    it.effect("a client reply lost from the replies zone is reported with its session's header only", () => Effect.gen(function* () {
      const { disk } = yield* prepared(13)
      disk.corruptSector(layout.clientReplies.start + 2 * layout.config.messageSizeMax)
      const reopened = yield* open(disk)
      expect(reopened.repliesLost).toEqual([2])
      expect(reopened.sessions.map((s) => [s.slot, s.client, s.reply.length])).toEqual([[2, 44n, 256]])
    }))

    it.effect("any one damaged superblock copy is repaired at open, and the checkpoint loads", () => Effect.gen(function* () {
      for (let copy = 0; copy < 4; copy++) {
        const { disk, original } = yield* prepared(20 + copy)
        disk.corruptSector(copy * layout.config.superblockCopySize)
        const reopened = yield* open(disk)
        expect(snapshotBytes(reopened.ledger)).toEqual(snapshotBytes(original.ledger))
        const again = yield* onDisk(disk)(Effect.gen(function* () { return yield* openSuperblock(yield* Storage, layout) }))
        expect(again.repairedCopies).toEqual([])
      }
    }))
  })
})
