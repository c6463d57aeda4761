import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ExitViewVotes } from "../../src/actors/exit_view_votes.ts"
import { connectDown } from "../../src/actors/log_chain.ts"
import { buildMessage, u128FromBytes } from "../../src/protocol/build.ts"
import { Command, PrepareLayout, readU64Number, zeroHeader } from "../../src/protocol/header.ts"

/** A prepare header of `op` chained to `parent`, told apart from others of its op by `variant`. */
const header = (op: number, parent: Uint8Array | undefined, variant: number): Uint8Array =>
  buildMessage({ ...zeroHeader(Command.prepare), cluster: 1n, op: BigInt(op), timestamp: BigInt(op), view: variant, parent: parent === undefined ? 0n : u128FromBytes(parent, 0) }, new Uint8Array(0))

/** A chain of ops 1..length, each the child of the one below. */
function chain(length: number, variant: number): Array<Uint8Array> {
  const headers: Array<Uint8Array> = []
  for (let op = 1; op <= length; op++) headers.push(header(op, headers.at(-1), variant))
  return headers
}

describe("connectDown", () => {
  it("keeps exactly the headers connected down from the head, whatever else the candidates offer, and stops at the first gap", () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 30 }), fc.integer({ min: 1, max: 30 }), fc.array(fc.integer({ min: 1, max: 30 })), (length, fork, gaps) => {
      const ours = chain(length, 1)
      // Another history from `fork` on: a view change truncated it, yet its headers linger.
      const theirs = chain(length, 2)
      const head = ours.at(-1)!
      const candidates = (op: number) => gaps.includes(op) ? [theirs[op - 1]] : [theirs[op - 1], ours[op - 1]].slice(op >= fork ? 0 : 1)
      const found = connectDown(head, 1, candidates)
      const firstGap = Math.max(0, ...gaps.filter((op) => op < length))
      expect(found.length).toBe(length - firstGap)
      found.forEach((connected, i) => {
        expect(readU64Number(connected, PrepareLayout.op.offset)).toBe(length - i)
        expect(connected).toEqual(ours[length - 1 - i])
      })
    }))
  })
})

describe("ExitViewVotes", () => {
  it("counts each replica once, forgets others' votes when the window closes but keeps ours, and withdraws ours", () => {
    const votes = new ExitViewVotes(5, 0, 100)
    votes.add(0, 0)
    votes.add(0, 1)
    expect(votes.count).toBe(1)
    expect(votes.own).toBe(true)
    votes.add(3, 10)
    votes.add(4, 50)
    expect(votes.count).toBe(3)
    votes.expire(109)
    expect(votes.count).toBe(3)
    votes.expire(110)
    expect(votes.count).toBe(1)
    votes.withdraw()
    expect(votes.own).toBe(false)
    expect(votes.count).toBe(0)
    votes.add(2, 200)
    votes.clear()
    expect(votes.count).toBe(0)
  })
})
