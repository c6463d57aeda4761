/**
 * The thread-pool Storage driver: positional reads and writes through Node's `fs` callbacks,
 * which run on libuv's thread pool (UV_THREADPOOL_SIZE threads, 4 by default). It is the
 * fallback where io_uring is refused (old kernels, seccomp-filtered containers). The file is the
 * same O_DIRECT|O_DSYNC data file and buffers come from the addon's aligned allocator, so the
 * durability semantics match the io_uring driver; only throughput differs.
 */
import * as fs from "node:fs"
import { Effect } from "effect"
import type { DiskDriver } from "./disk_engine.ts"
import type { DataFile } from "./disk_file.ts"
import { allocateSectorAligned } from "./disk_memory.ts"

export function makePoolDriver(file: DataFile, inFlightMax: number): DiskDriver {
  const { fd } = file
  const complete = (resume: (effect: Effect.Effect<number>) => void) => (error: NodeJS.ErrnoException | null, bytes: number) =>
    resume(Effect.succeed(error === null ? bytes : errnoResult(error)))
  return {
    implementation: "thread_pool",
    path: file.path,
    directIo: file.directIo,
    inFlightMax,
    allocateMemory: allocateSectorAligned,
    read: (buffer, position) =>
      Effect.callback<number>((resume) => fs.read(fd, buffer, 0, buffer.length, position, complete(resume))),
    write: (buffer, position) =>
      Effect.callback<number>((resume) => fs.write(fd, buffer, 0, buffer.length, position, complete(resume))),
    sync: Effect.callback<number>((resume) => {
      fs.fsync(fd, (error) => resume(Effect.succeed(error === null ? 0 : errnoResult(error))))
    }),
    sizeBytes: Effect.callback<number>((resume) => {
      fs.fstat(fd, (error, stat) => resume(Effect.succeed(error === null ? stat.size : errnoResult(error))))
    })
  }
}

/** Node reports errno as a negative number already; anything else is an unknown I/O error. */
function errnoResult(error: NodeJS.ErrnoException): number {
  return typeof error.errno === "number" && error.errno < 0 ? error.errno : -5
}
