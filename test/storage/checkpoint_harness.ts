/**
 * Shared by the checkpoint tests: a formatted simulated data file, a deterministic ledger
 * workload that reaches every part of the snapshot (accounts with and without history and
 * limits, posted and pending transfers with timeouts, posts, voids, expiries, transient failures
 * that leave orphan ids), checkpoint headers and client sessions, and a byte-level view of a
 * ledger's snapshot to compare states.
 */
import { Effect } from "effect"
import { SimulatedDisk } from "../../src/layers/disk_sim.ts"
import { Prng } from "../../src/prng.ts"
import { createLedger, type Ledger } from "../../src/ledger/ledger.ts"
import { snapshotRowWords } from "../../src/ledger/snapshot.ts"
import { buildMessage, u128ToBytes } from "../../src/protocol/build.ts"
import { Command, zeroHeader } from "../../src/protocol/header.ts"
import { Operation, transferSize, accountSize } from "../../src/protocol/operation.ts"
import { AccountFlags, encodeAccount, encodeBatch, encodeTransfer, TransferFlags } from "../../src/protocol/records.ts"
import { openCheckpoint, type OpenedCheckpoint } from "../../src/storage/checkpoint.ts"
import type { SessionEntry } from "../../src/storage/client_sessions.ts"
import { formatStorage } from "../../src/storage/format.ts"
import { Grid } from "../../src/storage/grid.ts"
import { layoutOf, testConfig } from "../../src/storage/layout.ts"
import { sectorSize, Storage, StorageFatalError } from "../../src/storage/storage.ts"
import { openSuperblock } from "../../src/storage/superblock.ts"

export const layout = layoutOf(testConfig)
export const cluster = 11n
export const clusterBytes = u128ToBytes(cluster)
export const gridBlocks = 4096
export const sizeBytes = layout.dataFileSizeMin + gridBlocks * layout.config.blockSize

export const onDisk = (disk: SimulatedDisk) => <A, E>(effect: Effect.Effect<A, E, Storage>) => effect.pipe(Effect.provide(disk.layer()))

export const newDisk = (seed: number) => new SimulatedDisk({ seed, sizeBytes, unwrittenReadsRandom: true })

export const format = (disk: SimulatedDisk) => onDisk(disk)(formatStorage({ cluster, replica: 0, replicaCount: 1, profile: "test" }))

/** Opens the data file's checkpoint into a fresh ledger, as the replica does at startup. */
export const open = (disk: SimulatedDisk, ledger: Ledger = createLedger()) =>
  onDisk(disk)(Effect.flatMap(Storage, (storage) => openOn(storage, ledger)))

/** The same over a given Storage (a wrapper that injects faults, say). */
export const openOn = (storage: Storage["Service"], ledger: Ledger = createLedger()) => Effect.gen(function* () {
  const { working } = yield* openSuperblock(storage, layout)
  const grid = new Grid(storage, layout, clusterBytes)
  const opened: OpenedCheckpoint = yield* openCheckpoint(storage, layout, grid, working, ledger)
  return { ...opened, ledger, storage }
})

/** A Storage whose write number `k` (from 0) tears: its first sector lands damaged, and it fails as if power was lost. */
export function tearingStorage(disk: SimulatedDisk, storage: Storage["Service"], k: number): Storage["Service"] {
  let count = 0
  return Storage.of({
    ...storage,
    write: (zone, offset, buffer) => {
      if (count++ < k) return storage.write(zone, offset, buffer)
      return Effect.andThen(storage.write(zone, offset, buffer.subarray(0, sectorSize)), () => {
        disk.corruptSector(zone.start + offset)
        return Effect.fail(new StorageFatalError({ path: disk.path, operation: "write", offset, code: "CRASH", reason: "power lost mid-write" }))
      })
    }
  })
}

/** The prepare header of checkpoint op `op` at cluster time `timestamp`. */
export function checkpointHeader(op: number, timestamp: bigint): Uint8Array {
  const header = zeroHeader(Command.prepare)
  header.cluster = cluster
  header.op = BigInt(op)
  header.commit = BigInt(op - 1)
  header.timestamp = timestamp
  header.operation = Operation.create_transfers
  header.client = 5n
  header.request = 1
  header.release = 4361
  header.size = 256
  return buildMessage(header, new Uint8Array(0)).subarray(0, 256)
}

/** A client session whose latest reply has a body of `bodySize` bytes (0: none). */
export function session(slot: number, client: bigint, op: number, bodySize: number): SessionEntry {
  const header = zeroHeader(Command.reply)
  header.cluster = cluster
  header.client = client
  header.op = BigInt(op)
  header.commit = BigInt(op)
  header.timestamp = 1n
  header.request = 3
  header.operation = Operation.create_transfers
  header.release = 4361
  header.size = 256 + bodySize
  return { slot, client, session: BigInt(slot + 1), reply: buildMessage(header, new Uint8Array(bodySize).fill(slot + 7)) }
}

/**
 * A workload that advances `ledger` by `batches` batches from cluster time `start`; returns the
 * time it reached. The same seed gives the same ops.
 */
export function drive(ledger: Ledger, seed: number, batches: number, start: bigint, accountsStart = 0): bigint {
  const random = new Prng(seed)
  let now = start
  let transferId = BigInt(seed) * 1_000_000n
  const accounts = accountsStart + 12
  if (accountsStart === 0) {
    const created = encodeBatch(Array.from({ length: accounts }, (_, i) => ({
      id: BigInt(i + 1), debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n, user_data_128: 0n,
      user_data_64: 0n, user_data_32: 0, reserved: 0, ledger: 1, code: 1, timestamp: 0n,
      flags: (i % 3 === 0 ? AccountFlags.history : 0) | (i % 4 === 1 ? AccountFlags.debits_must_not_exceed_credits : 0)
    })), accountSize, encodeAccount)
    now += BigInt(accounts)
    ledger.execute(Operation.create_accounts, created, now)
  }
  const pendings: Array<bigint> = []
  for (let b = 0; b < batches; b++) {
    const n = 1 + random.below(40)
    const transfers = Array.from({ length: n }, () => {
      const debit = BigInt(1 + random.below(accounts))
      const credit = BigInt(1 + ((Number(debit) + random.below(accounts - 1)) % accounts))
      const roll = random.below(10)
      const id = ++transferId
      const base = {
        id, debit_account_id: debit, credit_account_id: credit, amount: BigInt(1 + random.below(1000)), pending_id: 0n, user_data_128: 0n,
        user_data_64: 0n, user_data_32: 0, timeout: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n
      }
      if (roll < 3) {
        pendings.push(id)
        return { ...base, flags: TransferFlags.pending, timeout: random.chance(0.5) ? 1 + random.below(3) : 0 }
      }
      if (roll < 5 && pendings.length > 0) {
        const pending = pendings.splice(random.below(pendings.length), 1)[0]!
        return { ...base, debit_account_id: 0n, credit_account_id: 0n, amount: 0n, pending_id: pending, flags: random.chance(0.5) ? TransferFlags.post_pending_transfer : TransferFlags.void_pending_transfer, ledger: 0, code: 0 }
      }
      // Some go to an account that does not exist: a transient failure that leaves an orphan id.
      return roll === 9 ? { ...base, credit_account_id: 999_999n } : base
    })
    now += BigInt(n)
    ledger.execute(Operation.create_transfers, encodeBatch(transfers, transferSize, encodeTransfer), now)
    if (random.chance(0.2)) {
      now += 2_000_000_000n
      ledger.pulse(now)
    }
  }
  return now
}

/** Every section of a ledger's snapshot as one hex string per section: equal states, equal strings. */
export function snapshotBytes(ledger: Ledger): Array<string> {
  return ledger.snapshot().map((section) => {
    const words = new Uint32Array(section.rowCount * snapshotRowWords[section.id])
    section.copyRows(0, section.rowCount, words, 0)
    return `${section.id}:${Buffer.from(words.buffer).toString("hex")}`
  })
}
