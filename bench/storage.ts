/**
 * Storage and checksum benchmark (issue 3).
 *
 * Questions: how fast is the AES-NI checksum against the TypeScript one (target: native ≥ 5 GB/s
 * on 1 MiB), and how do the io_uring and thread-pool Storage layers compare with each other and
 * with plain Node `fs` through the page cache (target: io_uring 4 KiB random reads ≥ 1.5× the
 * thread pool's IOPS at 32 in flight)?
 *
 * Workloads and exact paths measured:
 * - checksum: `checksumInto` over one buffer of 256 B, 4 KiB and 1 MiB, repeated for ≥ 0.3 s;
 * - sequential writes: a fresh data file of `fileSizeBytes`, written front to back in 1 MiB
 *   writes, `seqWritesInFlight` in flight, through `Storage.write` (O_DIRECT|O_DSYNC, so every
 *   write is durable on completion), then one `Storage.sync`; the fs baseline does the same with
 *   `FileHandle.write` through the page cache and one `fsync` at the end;
 * - random reads: `randomReads` reads of 4 KiB at uniformly random sector offsets of that file,
 *   by 32 long-lived reader fibers (so 32 in flight), through `Storage.read` (Direct I/O); the fs baseline reads through the page
 *   cache (which holds the file it just wrote, so it measures memory copies, not the device).
 * The last line is `RESULT {json}`.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { Effect } from "effect"
import { layerStorageFile } from "../src/layers/disk.ts"
import { Prng } from "../src/prng.ts"
import { native } from "../src/native.ts"
import { checksumInto as checksumIntoTypeScript } from "../src/protocol/checksum.ts"
import { sectorSize, Storage, type Zone } from "../src/storage/storage.ts"

const fileSizeBytes = 256 * 1024 * 1024
const writeSizeBytes = 1024 * 1024
const seqWritesInFlight = 4
const readSizeBytes = 4096
const readsInFlight = 32
const randomReads = 40_000
const checksumSecondsMin = 0.3

const directory = fs.mkdtempSync(nodePath.join(os.tmpdir(), "scarab-bench-storage-"))
const zone: Zone = { name: "bench", start: 0, sizeBytes: fileSizeBytes }

interface IoFigures {
  readonly seqWriteMbps: number
  readonly seqWriteIops: number
  readonly randomReadMbps: number
  readonly randomReadIops: number
}

const main = Effect.gen(function* () {
  console.log(`storage benchmark: ${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? "unknown CPU"}, files in ${directory}`)

  const sizes = [256, 4096, 1024 * 1024] as const
  const checksumNative = native?.aesNi === true ? native.checksum : undefined
  const checksumRows = sizes.map((size) => ({
    size,
    native: checksumNative === undefined ? Number.NaN : checksumGbps(checksumNative, size),
    typescript: checksumGbps(checksumIntoTypeScript, size)
  }))
  console.log("\nchecksum (AEGIS-128L), GB/s      native    typescript")
  for (const row of checksumRows) {
    console.log(`  ${String(row.size).padStart(8)} B                ${fmt(row.native, 2).padStart(8)}    ${fmt(row.typescript, 3).padStart(10)}`)
  }

  const uring = native === undefined ? undefined : yield* storageFigures("io_uring")
  const pool = yield* storageFigures("thread_pool")
  const pageCache = yield* Effect.promise(() => pageCacheFigures())

  console.log(`\n1 MiB sequential writes (${seqWritesInFlight} in flight, ${fileSizeBytes >> 20} MiB, then fsync) and`)
  console.log(`4 KiB random reads (${readsInFlight} in flight, ${randomReads} reads)`)
  console.log("                         seq MB/s   seq IOPS   rand MB/s   rand IOPS")
  for (const [name, figures] of [["io_uring (Direct I/O)", uring], ["thread pool (Direct I/O)", pool], ["node fs (page cache)", pageCache]] as const) {
    if (figures === undefined) {
      console.log(`  ${name.padEnd(24)} unavailable`)
      continue
    }
    console.log(`  ${name.padEnd(24)} ${fmt(figures.seqWriteMbps, 1).padStart(8)} ${fmt(figures.seqWriteIops, 0).padStart(10)} ${fmt(figures.randomReadMbps, 1).padStart(11)} ${fmt(figures.randomReadIops, 0).padStart(11)}`)
  }

  const ratio = uring === undefined ? Number.NaN : uring.randomReadIops / pool.randomReadIops
  const oneMiB = checksumRows[2]
  console.log(`\ntargets: native checksum 1 MiB ≥ 5 GB/s: ${fmt(oneMiB.native, 2)} (${oneMiB.native >= 5 ? "met" : "NOT met"}); ` +
    `io_uring/thread pool random read IOPS ≥ 1.5: ${fmt(ratio, 2)} (${ratio >= 1.5 ? "met" : "NOT met"})`)
  const result = {
    checksum_native_256b_gbps: round(checksumRows[0].native, 3),
    checksum_ts_256b_gbps: round(checksumRows[0].typescript, 3),
    checksum_native_4kib_gbps: round(checksumRows[1].native, 3),
    checksum_ts_4kib_gbps: round(checksumRows[1].typescript, 3),
    checksum_native_1mib_gbps: round(oneMiB.native, 3),
    checksum_ts_1mib_gbps: round(oneMiB.typescript, 3),
    uring_seq_write_mbps: round(uring?.seqWriteMbps ?? Number.NaN, 1),
    threadpool_seq_write_mbps: round(pool.seqWriteMbps, 1),
    fs_pagecache_seq_write_mbps: round(pageCache.seqWriteMbps, 1),
    uring_random_read_iops: round(uring?.randomReadIops ?? Number.NaN, 0),
    threadpool_random_read_iops: round(pool.randomReadIops, 0),
    fs_pagecache_random_read_iops: round(pageCache.randomReadIops, 0),
    uring_vs_threadpool_random_read_iops_ratio: round(ratio, 2)
  }
  console.log(`RESULT ${JSON.stringify(result)}`)
})

/** Sequential writes then random reads through one Storage layer on a fresh file. */
function storageFigures(implementation: "io_uring" | "thread_pool"): Effect.Effect<IoFigures, unknown> {
  const path = nodePath.join(directory, `${implementation}.data`)
  const measure = Effect.gen(function* () {
    const storage = yield* Storage
    const writeBuffers = Array.from({ length: seqWritesInFlight }, (_, i) => storage.allocate(writeSizeBytes).fill(i + 1))
    const writes = fileSizeBytes / writeSizeBytes
    const writeStart = performance.now()
    yield* Effect.forEach(range(writes), (i) => storage.write(zone, i * writeSizeBytes, writeBuffers[i % seqWritesInFlight]),
      { concurrency: seqWritesInFlight, discard: true })
    yield* storage.sync
    const writeSeconds = (performance.now() - writeStart) / 1000

    // Long-lived readers, one per in-flight slot, as the journal and grid own fixed I/O slots.
    const offsets = randomOffsets()
    const readStart = performance.now()
    yield* Effect.forEach(range(readsInFlight), (reader) => Effect.gen(function* () {
      const buffer = storage.allocate(readSizeBytes)
      for (let i = reader; i < randomReads; i += readsInFlight) yield* storage.read(zone, offsets[i], buffer)
    }), { concurrency: "unbounded", discard: true })
    const readSeconds = (performance.now() - readStart) / 1000
    return figures(writes, writeSeconds, readSeconds)
  })
  return measure.pipe(
    Effect.provide(layerStorageFile({ path, createSizeBytes: fileSizeBytes, implementation, inFlightMax: 64 })),
    Effect.ensuring(Effect.sync(() => fs.rmSync(path, { force: true })))
  )
}

/** The same workload with plain `fs.promises` through the page cache. */
async function pageCacheFigures(): Promise<IoFigures> {
  const path = nodePath.join(directory, "page_cache.data")
  const file = await fs.promises.open(path, "w+")
  try {
    const buffer = new Uint8Array(writeSizeBytes).fill(9)
    const writes = fileSizeBytes / writeSizeBytes
    let next = 0
    const writeStart = performance.now()
    await Promise.all(range(seqWritesInFlight).map(async () => {
      for (let i = next++; i < writes; i = next++) await file.write(buffer, 0, writeSizeBytes, i * writeSizeBytes)
    }))
    await file.sync()
    const writeSeconds = (performance.now() - writeStart) / 1000

    const offsets = randomOffsets()
    let read = 0
    const readStart = performance.now()
    await Promise.all(range(readsInFlight).map(async () => {
      const target = new Uint8Array(readSizeBytes)
      for (let i = read++; i < randomReads; i = read++) await file.read(target, 0, readSizeBytes, offsets[i])
    }))
    const readSeconds = (performance.now() - readStart) / 1000
    return figures(writes, writeSeconds, readSeconds)
  } finally {
    await file.close()
    fs.rmSync(path, { force: true })
  }
}

function figures(writes: number, writeSeconds: number, readSeconds: number): IoFigures {
  return {
    seqWriteMbps: fileSizeBytes / writeSeconds / 1e6,
    seqWriteIops: writes / writeSeconds,
    randomReadMbps: (randomReads * readSizeBytes) / readSeconds / 1e6,
    randomReadIops: randomReads / readSeconds
  }
}

function checksumGbps(checksumInto: (data: Uint8Array, target: Uint8Array, offset: number) => void, size: number): number {
  const data = new Uint8Array(size)
  for (let i = 0; i < size; i++) data[i] = (i * 131) & 0xff
  const target = new Uint8Array(16)
  const batch = Math.max(1, Math.floor((1 << 22) / size))
  for (let i = 0; i < batch; i++) checksumInto(data, target, 0) // warm-up
  let iterations = 0
  const start = performance.now()
  let seconds = 0
  while (seconds < checksumSecondsMin) {
    for (let i = 0; i < batch; i++) checksumInto(data, target, 0)
    iterations += batch
    seconds = (performance.now() - start) / 1000
  }
  return (iterations * size) / seconds / 1e9
}

/** The same seeded offsets for every implementation. */
function randomOffsets(): Array<number> {
  const prng = new Prng(3)
  const sectors = fileSizeBytes / sectorSize
  return range(randomReads).map(() => prng.below(sectors) * sectorSize)
}

function range(count: number): Array<number> {
  return Array.from({ length: count }, (_, i) => i)
}

function fmt(value: number, digits: number): string {
  return Number.isNaN(value) ? "n/a" : value.toFixed(digits)
}

function round(value: number, digits: number): number | null {
  return Number.isNaN(value) ? null : Number(value.toFixed(digits))
}

Effect.runPromise(main).finally(() => fs.rmSync(directory, { recursive: true, force: true }))
