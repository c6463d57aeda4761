/**
 * The view state a view change persists (issue 15; vsr.md §4.8): view, log view, commit_max and
 * the view headers go into a new superblock over the same checkpoint, survive a reopen, never go
 * back, stay through a later checkpoint, and a crash at any write of the update reopens either
 * the old state or the new one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { Storage } from "../../src/storage/storage.ts"
import { openSuperblock } from "../../src/storage/superblock.ts"
import { checkpointHeader, drive, format, layout, newDisk, onDisk, open, openOn, tearingStorage } from "./checkpoint_harness.ts"

const start = 1_000_000_000_000n
const superblockOf = (disk: ReturnType<typeof newDisk>) => onDisk(disk)(Effect.map(Effect.flatMap(Storage, (storage) => openSuperblock(storage, layout)), (opened) => opened.working))

describe("view state in the superblock", () => {
  it.effect("persists view, log view, commit_max and the view headers, keeps them through a checkpoint, and never goes back", () => Effect.gen(function* () {
    const disk = newDisk(7)
    yield* format(disk)
    const opened = yield* open(disk)
    const head = checkpointHeader(5, start)
    yield* onDisk(disk)(opened.checkpointer.writeViewState({ view: 3, logView: 2, commitMax: 4, viewHeaders: [head] }))
    const reopened = yield* superblockOf(disk)
    expect([reopened.vsrState.view, reopened.vsrState.logView, reopened.vsrState.commitMax]).toEqual([3, 2, 4])
    expect(Buffer.from(reopened.viewHeaders[0]!).equals(Buffer.from(head))).toBe(true)
    // A checkpoint after it keeps the view state.
    const now = drive(opened.ledger, 1, 20, start, 0)
    const op = layout.config.checkpointOps - 1
    yield* onDisk(disk)(opened.checkpointer.write({ header: checkpointHeader(op, now), ledger: opened.ledger, sessions: [] }))
    const after = yield* superblockOf(disk)
    expect([after.vsrState.view, after.vsrState.logView, after.vsrState.commitMax]).toEqual([3, 2, op])
    expect(Buffer.from(after.viewHeaders[0]!).equals(Buffer.from(head))).toBe(true)
    // A view that goes back is a defect, refused before anything is written.
    const back = yield* Effect.exit(onDisk(disk)(opened.checkpointer.writeViewState({ view: 2, logView: 2, commitMax: 4, viewHeaders: [head] })))
    expect(Exit.isFailure(back)).toBe(true)
    expect((yield* superblockOf(disk)).vsrState.view).toBe(3)
  }))

  it.effect("a crash at any write of the update reopens the old view state or the new one", () => Effect.gen(function* () {
    const outcomes = new Set<number>()
    // Four copies, one write each: tear each in turn.
    for (let k = 0; k < layout.config.superblockCopies; k++) {
      const disk = newDisk(20 + k)
      yield* format(disk)
      const exit = yield* Effect.exit(onDisk(disk)(Effect.gen(function* () {
        const opened = yield* openOn(tearingStorage(disk, yield* Storage, k))
        yield* opened.checkpointer.writeViewState({ view: 1, logView: 1, commitMax: 0, viewHeaders: [checkpointHeader(5, start)] })
      })))
      expect(exit._tag, `write ${k} tears`).toBe("Failure")
      disk.crash()
      const view = (yield* superblockOf(disk)).vsrState.view
      expect([0, 1]).toContain(view)
      outcomes.add(view)
    }
    // A crash at the first copies leaves the old state; at the last, enough copies hold the new one.
    expect([...outcomes].sort()).toEqual([0, 1])
  }))
})
