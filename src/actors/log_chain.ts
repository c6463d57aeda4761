/**
 * Which headers form a replica's log below its head (vsr.md §5.2 rule 5, §4.5, §6.2): walking
 * down from the head, an op's header is the candidate whose checksum is the `parent` of the
 * header just above it. A hash chain names exactly one history, so a header of another history
 * (an op an older view truncated, a stale slot of the journal) can never connect: whatever
 * connects down from a head the current view made is that view's log. Pure.
 */
import { assert } from "../assert.ts"
import { headerSize, PrepareLayout, readU64Number, u128Equal } from "../protocol/header.ts"

/**
 * The headers connected down from `head`, head first, consecutive, down to op `floor` at the
 * lowest; the walk stops at the first op where no candidate connects (a gap, which repair fills).
 */
export function connectDown(head: Uint8Array, floor: number, candidates: (op: number) => ReadonlyArray<Uint8Array | undefined>): Array<Uint8Array> {
  assert(head.length >= headerSize, () => "a header is 256 bytes")
  const headOp = readU64Number(head, PrepareLayout.op.offset)
  assert(floor >= 1, () => `floor ${floor} is an op`)
  assert(floor <= headOp, () => `floor ${floor} is at or below the head ${headOp}`)
  const chain = [head]
  for (let op = headOp - 1; op >= floor; op--) {
    const above = chain.at(-1)!
    const below = candidates(op).find((header) => header !== undefined && u128Equal(above, PrepareLayout.parent.offset, header, 0))
    if (below === undefined) break
    assert(readU64Number(below, PrepareLayout.op.offset) === op, () => `the header connecting below op ${op + 1} is of op ${op}`)
    chain.push(below)
  }
  assert(chain.length <= headOp - floor + 1, () => "the chain stays above the floor")
  return chain
}
