/**
 * The view change's messages (vsr.md §2.3): join_view and view round trip through their
 * builders and readers, pass the header rules, and a reader refuses a body that breaks them
 * (a blank head, ops out of order, a damaged header, bits beyond the headers, a present blank).
 */
import { describe, expect, it } from "vitest"
import { buildMessage, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import { Command, FrameLayout, headerSize, JoinViewLayout, VsrOperation, zeroHeader } from "../../src/protocol/header.ts"
import { checkpointStateSize, headerInvalid, rootPrepare } from "../../src/protocol/header_rules.ts"
import { buildExitView, buildGetView, buildJoinView, buildView, decodeJoinView, decodeView } from "../../src/protocol/view_change.ts"

const cluster = 7n
const clusterBytes = u128ToBytes(cluster)

function chain(count: number): Array<Uint8Array> {
  const headers = [rootPrepare(clusterBytes)]
  for (let op = 1; op <= count; op++) {
    const parent = headers[op - 1]!
    headers.push(buildMessage({
      ...zeroHeader(Command.prepare), cluster, op: BigInt(op), commit: BigInt(Math.max(0, op - 2)), timestamp: 1000n + BigInt(op), operation: VsrOperation.pulse,
      parent: u128FromBytes(parent, 0)
    }, new Uint8Array(0)))
  }
  return headers
}

describe("join_view", () => {
  const log = chain(6)
  const fields = { cluster, replica: 2, view: 4, logView: 1, commitMin: 3, checkpointOp: 0, headers: [log[6]!, undefined, log[4]!, log[3]!], present: 0b1101, nack: 0b0010 }

  it("round-trips, blanks included, and passes the header rules", () => {
    const message = buildJoinView(fields)
    expect(headerInvalid(message)).toBeUndefined()
    const decoded = decodeJoinView(message, clusterBytes, 5)
    expect(typeof decoded).toBe("object")
    if (typeof decoded === "string") return
    expect(decoded).toMatchObject({ cluster, replica: 2, view: 4, logView: 1, commitMin: 3, checkpointOp: 0, present: 0b1101, nack: 0b0010 })
    expect(decoded.headers.map((header) => header === undefined ? undefined : Buffer.from(header).toString("hex")))
      .toEqual(fields.headers.map((header) => header === undefined ? undefined : Buffer.from(header).toString("hex")))
  })

  it("refuses a blank head, ops out of order, a damaged header, bits beyond the headers, a present blank, too many headers", () => {
    const message = buildJoinView(fields)
    const bodyHeader = (i: number) => headerSize * (i + 1)
    const blankHead = buildJoinView({ ...fields, headers: [log[6]!, undefined] })
    blankHead.set(blankHead.subarray(bodyHeader(1), bodyHeader(2)), bodyHeader(0))
    expect(decodeJoinView(blankHead, clusterBytes, 5)).toMatch(/head is blank|not of op/)
    const swapped = message.slice()
    swapped.set(message.subarray(bodyHeader(3), bodyHeader(4)), bodyHeader(2))
    expect(decodeJoinView(swapped, clusterBytes, 5)).toMatch(/not of op 4/)
    const damaged = message.slice()
    damaged[bodyHeader(2) + 200]! ^= 1
    expect(decodeJoinView(damaged, clusterBytes, 5)).toMatch(/not a valid prepare header/)
    const bits = message.slice()
    bits[JoinViewLayout.nack_bitset.offset] = 0b10000
    expect(decodeJoinView(bits, clusterBytes, 5)).toMatch(/beyond the headers/)
    expect(decodeJoinView(buildJoinView({ ...fields, present: 0b1111 }), clusterBytes, 5)).toMatch(/blank is present/)
    expect(decodeJoinView(message, clusterBytes, 3)).toMatch(/4 headers/)
    expect(decodeJoinView(message, u128ToBytes(cluster + 1n), 5)).toMatch(/not a valid prepare header/)
  })
})

describe("view, exit_view, get_view", () => {
  const log = chain(5)
  const state = new Uint8Array(checkpointStateSize).fill(9)

  it("a view round-trips with its checkpoint state and headers, and passes the header rules", () => {
    const message = buildView({ cluster, replica: 1, view: 4, nonce: 12345678901234567890123n, commitMax: 3, checkpointOp: 0, checkpointState: state, headers: [log[5]!, log[4]!, log[3]!] })
    expect(headerInvalid(message)).toBeUndefined()
    const decoded = decodeView(message, clusterBytes)
    expect(typeof decoded).toBe("object")
    if (typeof decoded === "string") return
    expect(decoded).toMatchObject({ replica: 1, view: 4, op: 5, nonce: 12345678901234567890123n, commitMax: 3, checkpointOp: 0 })
    expect(Buffer.from(decoded.checkpointState).equals(Buffer.from(state))).toBe(true)
    expect(decoded.headers).toHaveLength(3)
  })

  it("a view whose headers do not descend, or carry a damaged one, is refused", () => {
    const ascending = buildView({ cluster, replica: 1, view: 4, nonce: 0n, commitMax: 3, checkpointOp: 0, checkpointState: state, headers: [log[5]!, log[3]!, log[4]!] })
    expect(decodeView(ascending, clusterBytes)).toMatch(/not below/)
    const damaged = buildView({ cluster, replica: 1, view: 4, nonce: 0n, commitMax: 3, checkpointOp: 0, checkpointState: state, headers: [log[5]!, log[4]!] })
    damaged[headerSize + checkpointStateSize + headerSize + 77]! ^= 1
    expect(decodeView(damaged, clusterBytes)).toMatch(/not a valid prepare header/)
  })

  it("exit_view and get_view are bare headers the header rules accept", () => {
    expect(headerInvalid(buildExitView(cluster, 2, 3))).toBeUndefined()
    const getView = buildGetView(cluster, 2, 3, 99n)
    expect(headerInvalid(getView)).toBeUndefined()
    expect(getView[FrameLayout.command.offset]).toBe(Command.get_view)
    expect(getView[FrameLayout.replica.offset]).toBe(2)
  })
})
