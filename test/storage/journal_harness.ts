/**
 * Helpers for the journal's tests: a chain of prepares, a Storage whose I/O the test holds and
 * releases one by one (to force an order of completions), and bounded waits that count
 * scheduler turns instead of time.
 */
import { Deferred, Effect } from "effect"
import { assert } from "../../src/assert.ts"
import { buildMessage, u128FromBytes, u128ToBytes } from "../../src/protocol/build.ts"
import { Command, zeroHeader } from "../../src/protocol/header.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"
import { headersPerSector, layoutOf, testConfig } from "../../src/storage/layout.ts"
import { sectorSize, sectorsCeil, Storage, type Zone } from "../../src/storage/storage.ts"

export const layout = layoutOf(testConfig)
export const slots = layout.config.journalSlotCount
export const cluster = 7n
export const clusterBytes = u128ToBytes(cluster)
export const root = rootPrepare(clusterBytes)
/** The WAL zones and nothing after them: the journal touches nothing else. */
export const walSizeBytes = layout.walPrepares.start + layout.walPrepares.sizeBytes

/** A chain of prepares of ops 1..count, bodies of growing size (some span two sectors). */
export function chain(count: number): Array<Uint8Array> {
  const prepares: Array<Uint8Array> = []
  let parent = root
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
    header.parent = u128FromBytes(parent, 0)
    const body = new Uint8Array((op % 9) * 700).fill(op)
    header.size = 256 + body.length
    const prepare = buildMessage(header, body)
    prepares.push(prepare)
    parent = prepare
  }
  return prepares
}

/** The prepare of op `op` as it lies on disk: zero-padded to its sector end. */
export function onDiskImage(prepare: Uint8Array): Uint8Array {
  const image = new Uint8Array(sectorsCeil(prepare.length))
  image.set(prepare)
  return image
}

export const sectorOfSlot = (slot: number) => Math.floor(slot / headersPerSector)

/** One I/O the gate holds: what it was asked (a copy of a write's bytes at issue) and its release. */
export interface HeldIo {
  readonly kind: "read" | "write"
  readonly zone: string
  readonly offset: number
  /** For a write, its bytes when it was issued. */
  readonly issued: Uint8Array
  /** The memory the I/O reads into or writes from. */
  readonly buffer: Uint8Array
  readonly release: Deferred.Deferred<void>
  done: boolean
}

/**
 * A Storage that holds every I/O `hold` selects until the test releases it, and logs every I/O
 * in the order it was issued. A held write reaches the disk with its buffer as it is when
 * released, as a real device reads the memory while it performs the write.
 */
export function gate(storage: Storage["Service"], hold: (kind: "read" | "write", zone: Zone) => boolean) {
  const log: Array<HeldIo> = []
  const pass = <A, E>(kind: "read" | "write", zone: Zone, offset: number, buffer: Uint8Array, io: Effect.Effect<A, E>) =>
    Effect.suspend(() => {
      const entry: HeldIo = { kind, zone: zone.name, offset, issued: buffer.slice(), buffer, release: Deferred.makeUnsafe<void>(), done: false }
      log.push(entry)
      const held = hold(kind, zone)
      // The device reads a write's memory while it performs it: that memory must not change meanwhile.
      const unchanged = Effect.sync(() => {
        if (kind === "write") assert(hex(buffer) === hex(entry.issued), () => `the memory of a write to ${zone.name}@${offset} changed while it was in flight`)
      })
      return Effect.andThen(held ? Deferred.await(entry.release) : Effect.void, Effect.andThen(unchanged, io)).pipe(
        Effect.tap(() => Effect.sync(() => { entry.done = true })))
    })
  const gated = Storage.of({
    ...storage,
    read: (zone, offset, buffer) => pass("read", zone, offset, buffer, storage.read(zone, offset, buffer)),
    write: (zone, offset, buffer) => pass("write", zone, offset, buffer, storage.write(zone, offset, buffer))
  })
  const release = (entry: HeldIo) => Deferred.succeed(entry.release, undefined)
  return { storage: gated, log, release }
}

/** Scheduler turns a condition may take to come true (a bound, not a duration). */
export const turnsMax = 10_000

/** Yields until `condition` holds; failing after `turnsMax` turns means it never will. */
export const until = (condition: () => boolean, what: string) => Effect.gen(function* () {
  for (let turn = 0; turn < turnsMax; turn++) {
    if (condition()) return
    yield* Effect.yieldNow
  }
  assert(false, () => `never happened: ${what}`)
})

/** Lets everything that can run without the test's help run (a fixed number of turns). */
export const settle = Effect.gen(function* () {
  for (let turn = 0; turn < 200; turn++) yield* Effect.yieldNow
})

/** The bytes of `zone` from `offset`, `length` long, as the disk holds them now. */
export const readRaw = (storage: Storage["Service"], zone: Zone, offset: number, length: number) => Effect.gen(function* () {
  const buffer = storage.allocate(sectorsCeil(length))
  yield* storage.read(zone, offset, buffer)
  return buffer.subarray(0, length)
})

export const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")

/** The headers-ring sector of `slot` as the disk holds it now. */
export const headerSectorOnDisk = (storage: Storage["Service"], slot: number) =>
  readRaw(storage, layout.walHeaders, sectorOfSlot(slot) * sectorSize, sectorSize)
