/**
 * The io_uring Storage driver (storage.md §5.5): operations are prepared into the addon's ring
 * and submitted with one system call per batch (everything prepared during the same synchronous
 * stretch of JavaScript goes out together, from a microtask); completions come back in batches
 * from libuv watching the ring's eventfd. Ids index a fixed table of in-flight slots that keeps
 * each buffer referenced until the kernel is done with it.
 */
import { fstatSync } from "node:fs"
import { Effect, type Scope } from "effect"
import { assert } from "../assert.ts"
import { type NativeAddon, type RingHandle, RingOp } from "../native.ts"
import type { DiskDriver } from "./disk_engine.ts"
import type { DataFile } from "./disk_file.ts"
import { allocateSectorAligned } from "./disk_memory.ts"

/** Why io_uring could not be used; the layer logs it and falls back to the thread pool. */
export interface RingUnavailable {
  readonly _tag: "RingUnavailable"
  readonly reason: string
}

/**
 * Creates a ring of `entries` slots for `file`, or says why the kernel refused. The ring is
 * closed when the scope closes, after every operation in flight has completed.
 */
export function makeUringDriver(
  addon: NativeAddon,
  file: DataFile,
  entries: number
): Effect.Effect<DiskDriver | RingUnavailable, never, Scope.Scope> {
  assert(entries >= 1 && entries <= 4096 && (entries & (entries - 1)) === 0, () => "ring entries must be a power of two")
  return Effect.acquireRelease(
    Effect.sync(() => createRing(addon, file, entries)),
    (ring) => (ring._tag === "RingUnavailable" ? Effect.void : ring.close)
  ).pipe(Effect.map((ring) => (ring._tag === "RingUnavailable" ? ring : ring.driver)))
}

/**
 * Why this process cannot use io_uring, or undefined when it can: creates and closes a
 * one-entry ring. Containers often forbid io_uring (Docker's default seccomp profile does).
 */
export function ioUringUnavailableReason(addon: NativeAddon | undefined): string | undefined {
  if (addon === undefined) return "no native addon"
  try {
    addon.ringClose(addon.ringCreate(1, new Int32Array(4), () => {}))
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}

// ---------------------------------------------------------------------------------------------

interface Ring {
  readonly _tag: "Ring"
  readonly driver: DiskDriver
  readonly close: Effect.Effect<void>
}

function createRing(addon: NativeAddon, file: DataFile, entries: number): Ring | RingUnavailable {
  // The completion queue is twice the submission queue, so one batch never exceeds 2 × entries.
  const results = new Int32Array(4 * entries)
  const resumers: Array<((result: number) => void) | undefined> = new Array(entries).fill(undefined)
  const buffers: Array<Uint8Array | undefined> = new Array(entries).fill(undefined)
  const idsFree: Array<number> = []
  for (let id = entries - 1; id >= 0; id--) idsFree.push(id)
  let idleWaiter: (() => void) | undefined
  let submitScheduled = false

  const onCompletions = (count: number) => {
    assert(count <= 2 * entries, () => "completion batch larger than the completion queue")
    for (let i = 0; i < count; i++) {
      const id = results[2 * i]
      const result = results[2 * i + 1]
      const resume = resumers[id]
      assert(resume !== undefined, () => "completion for a slot that is not in flight")
      resumers[id] = undefined
      buffers[id] = undefined
      idsFree.push(id)
      resume(result)
    }
    if (idsFree.length === entries && idleWaiter !== undefined) idleWaiter()
  }

  let ring: RingHandle
  try {
    ring = addon.ringCreate(entries, results, onCompletions)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "UNKNOWN"
    return { _tag: "RingUnavailable", reason: `${code}: ${(error as Error).message}` }
  }

  const submit = () => {
    submitScheduled = false
    addon.ringSubmit(ring)
  }

  const operation = (op: RingOp, buffer: Uint8Array | null, position: number) =>
    Effect.callback<number>((resume) => {
      const id = idsFree.pop()
      // The engine admits at most inFlightMax = entries operations, uninterruptibly.
      assert(id !== undefined, () => "no free ring slot")
      resumers[id] = (result) => resume(Effect.succeed(result))
      buffers[id] = buffer ?? undefined
      try {
        addon.ringPrepare(ring, op, file.fd, buffer, buffer === null ? 0 : buffer.length, position, id)
      } catch (error) {
        // Nothing reached the ring: give the slot back so that closing does not wait for it.
        resumers[id] = undefined
        buffers[id] = undefined
        idsFree.push(id)
        throw error
      }
      if (!submitScheduled) {
        submitScheduled = true
        queueMicrotask(submit)
      }
    })

  const driver: DiskDriver = {
    implementation: "io_uring",
    path: file.path,
    directIo: file.directIo,
    inFlightMax: entries,
    allocateMemory: allocateSectorAligned,
    read: (buffer, position) => operation(RingOp.read, buffer, position),
    write: (buffer, position) => operation(RingOp.write, buffer, position),
    sync: operation(RingOp.fsync, null, 0),
    sizeBytes: Effect.sync(() => {
      try {
        return fstatSync(file.fd).size
      } catch (error) {
        return (error as NodeJS.ErrnoException).errno ?? -5
      }
    })
  }

  const close = Effect.callback<void>((resume) => {
    const finish = () => {
      addon.ringClose(ring)
      resume(Effect.void)
    }
    if (idsFree.length === entries) finish()
    else idleWaiter = finish
  })
  return { _tag: "Ring", driver, close }
}
