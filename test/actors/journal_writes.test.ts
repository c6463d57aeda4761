/** The journal's waiting writes (src/actors/journal_writes.ts): lowest op first, bounded. */
import { Effect } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { JournalWrites } from "../../src/actors/journal_writes.ts"
import { buildMessage } from "../../src/protocol/build.ts"
import { Command, PrepareLayout, readU64Number, zeroHeader } from "../../src/protocol/header.ts"

const prepareOf = (op: number) => buildMessage({ ...zeroHeader(Command.prepare), cluster: 1n, op: BigInt(op) }, new Uint8Array(0))

describe("JournalWrites", () => {
  it.effect("gives the waiting prepare of the lowest op first, and refuses one beyond its bound", () => Effect.gen(function* () {
    const writes = yield* JournalWrites.make(4)
    for (const op of [9, 3, 7, 5]) expect(writes.offer(prepareOf(op))).toBe(true)
    expect(writes.offer(prepareOf(1))).toBe(false)
    const taken: Array<number> = []
    taken.push(readU64Number(yield* writes.take, PrepareLayout.op.offset))
    expect(writes.offer(prepareOf(4))).toBe(true)
    for (let i = 0; i < 4; i++) taken.push(readU64Number(yield* writes.take, PrepareLayout.op.offset))
    expect(taken).toEqual([3, 4, 5, 7, 9])
  }))
})
