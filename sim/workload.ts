/**
 * Random ledger requests for simulated clients (simulation.md §6): every operation, valid and
 * invalid events (the ledger answers those with result codes), linked chains, pending transfers
 * with and without timeouts and their posts and voids, balancing and closing transfers, imported
 * events, lookups and every query. Ids come from small pools so that "exists", duplicates and
 * references to earlier transfers happen often. A request is one to `batchesMax` batches of one
 * operation, each made as a call on the client's session, which merges them into multi-batch
 * requests; every batch is well-formed (`submit` refuses the others before sending, so a
 * malformed body is not what this tests).
 *
 * The generator knows nothing of the ledger's state; the reference model judges every reply.
 */
import { eventSize, Operation, type ClientOperation } from "../src/protocol/operation.ts"
import {
  account, AccountFilterFlags, AccountFlags, accountFilter, encodeAccount, encodeAccountFilter, encodeBatch, encodeIds,
  encodeQueryFilter, encodeTransfer, queryFilter, transfer, TransferFlags, type Account, type Transfer
} from "../src/protocol/records.ts"
import type { Random } from "./random.ts"

export interface WorkloadOptions {
  /** Account ids 1..accountPool. */
  readonly accountPool: number
  /** Events per batch at most. */
  readonly batchEventsMax: number
  /** Batches per request at most (multi-batch). */
  readonly batchesMax: number
  /** Probability that an event is deliberately odd (zero ids, bad flags, reserved fields…). */
  readonly oddProbability: number
}

export interface GeneratedRequest {
  readonly operation: ClientOperation
  /** One or more batches, not multi-batch framed: each is one call. */
  readonly batches: ReadonlyArray<Uint8Array>
}

/** One generator shared by all clients of a run: transfer ids and pending ids are global. */
export class Workload {
  private readonly random: Random
  readonly options: WorkloadOptions
  private transferNext = 1n
  private readonly pendingIds: Array<bigint> = []

  constructor(random: Random, options: WorkloadOptions) {
    this.random = random
    this.options = options
  }

  next(): GeneratedRequest {
    const r = this.random
    const roll = r.below(100)
    const operation: ClientOperation =
      roll < 15 ? Operation.create_accounts
        : roll < 60 ? Operation.create_transfers
          : roll < 68 ? Operation.lookup_accounts
            : roll < 74 ? Operation.lookup_transfers
              : roll < 81 ? Operation.get_account_transfers
                : roll < 88 ? Operation.get_account_balances
                  : roll < 94 ? Operation.query_accounts
                    : Operation.query_transfers
    const batchCount = r.between(1, this.options.batchesMax)
    const batches: Array<Uint8Array> = []
    for (let b = 0; b < batchCount; b++) batches.push(this.batch(operation))
    return { operation, batches }
  }

  private batch(operation: ClientOperation): Uint8Array {
    const r = this.random
    const count = () => r.between(r.chance(0.05) ? 0 : 1, this.options.batchEventsMax)
    switch (operation) {
      case Operation.create_accounts: {
        const accounts: Array<Account> = []
        const n = count()
        for (let i = 0; i < n; i++) accounts.push(this.account(i === n - 1))
        return encodeBatch(accounts, eventSize(operation), encodeAccount)
      }
      case Operation.create_transfers: {
        const transfers: Array<Transfer> = []
        const n = count()
        for (let i = 0; i < n; i++) transfers.push(this.transfer(i === n - 1))
        return encodeBatch(transfers, eventSize(operation), encodeTransfer)
      }
      case Operation.lookup_accounts: {
        const ids: Array<bigint> = []
        for (let i = count(); i > 0; i--) ids.push(this.accountId())
        return encodeIds(ids)
      }
      case Operation.lookup_transfers: {
        const ids: Array<bigint> = []
        for (let i = count(); i > 0; i--) ids.push(this.transferId())
        return encodeIds(ids)
      }
      case Operation.get_account_transfers:
      case Operation.get_account_balances: {
        const flags = r.pick([AccountFilterFlags.debits, AccountFilterFlags.credits, AccountFilterFlags.debits | AccountFilterFlags.credits])
          | (r.chance(0.3) ? AccountFilterFlags.reversed : 0)
        return encodeAccountFilter(accountFilter({
          account_id: this.accountId(), limit: r.chance(0.05) ? 0 : r.between(1, 12), flags: r.chance(0.03) ? 0 : flags,
          code: r.chance(0.2) ? r.between(1, 2) : 0
        }))
      }
      case Operation.query_accounts:
      case Operation.query_transfers:
        return encodeQueryFilter(queryFilter({
          ledger: r.chance(0.7) ? 1 : 0, code: r.chance(0.3) ? r.between(1, 2) : 0, limit: r.chance(0.05) ? 0 : r.between(1, 12),
          flags: r.chance(0.3) ? 1 : 0, user_data_32: r.chance(0.1) ? r.between(1, 3) : 0
        }))
    }
  }

  private accountId(): bigint {
    const r = this.random
    if (r.chance(this.options.oddProbability)) return r.pick([0n, (1n << 128n) - 1n, BigInt(this.options.accountPool + 1 + r.below(8))])
    return BigInt(r.between(1, this.options.accountPool))
  }

  private transferId(): bigint {
    const r = this.random
    if (this.transferNext > 1n && r.chance(0.6)) return 1n + BigInt(r.below(Number(this.transferNext - 1n)))
    return r.chance(0.1) ? 0n : this.transferNext
  }

  private account(last: boolean): Account {
    const r = this.random
    const odd = r.chance(this.options.oddProbability)
    let flags = 0
    if (!last && r.chance(0.15)) flags |= AccountFlags.linked
    if (r.chance(0.15)) flags |= AccountFlags.debits_must_not_exceed_credits
    else if (r.chance(0.15)) flags |= AccountFlags.credits_must_not_exceed_debits
    if (r.chance(0.3)) flags |= AccountFlags.history
    if (odd && r.chance(0.3)) flags |= r.pick([AccountFlags.closed, AccountFlags.imported, 1 << 9, AccountFlags.linked])
    return account({
      id: this.accountId(),
      ledger: odd && r.chance(0.3) ? r.pick([0, 2]) : 1,
      code: odd && r.chance(0.3) ? 0 : r.between(1, 2),
      flags,
      user_data_32: r.between(0, 3),
      user_data_64: r.chance(0.2) ? r.u64() : 0n,
      reserved: odd && r.chance(0.1) ? 1 : 0,
      debits_posted: odd && r.chance(0.1) ? 1n : 0n,
      timestamp: odd && r.chance(0.1) ? 1n : 0n
    })
  }

  private transfer(last: boolean): Transfer {
    const r = this.random
    const odd = r.chance(this.options.oddProbability)
    const kind = r.below(100)
    let flags = 0
    let pendingId = 0n
    let timeout = 0
    let amount = r.chance(0.1) ? 0n : BigInt(r.between(1, 100))
    if (kind < 25) {
      flags |= TransferFlags.pending
      if (r.chance(0.3)) timeout = r.between(1, 5)
    } else if (kind < 40 && this.pendingIds.length > 0) {
      flags |= r.chance(0.5) ? TransferFlags.post_pending_transfer : TransferFlags.void_pending_transfer
      pendingId = this.pendingIds[this.pendingIds.length - 1 - r.below(Math.min(8, this.pendingIds.length))]!
      if (r.chance(0.5)) amount = r.chance(0.5) ? 0n : (1n << 128n) - 1n
    } else if (kind < 48) {
      flags |= r.chance(0.5) ? TransferFlags.balancing_debit : TransferFlags.balancing_credit
      if (r.chance(0.3)) amount = (1n << 128n) - 1n
    } else if (kind < 51) {
      flags |= (r.chance(0.5) ? TransferFlags.closing_debit : TransferFlags.closing_credit) | TransferFlags.pending
    }
    if (!last && r.chance(0.15)) flags |= TransferFlags.linked
    if (odd && r.chance(0.3)) flags |= r.pick([TransferFlags.imported, 1 << 10, TransferFlags.post_pending_transfer])
    const debit = this.accountId()
    const credit = r.chance(0.05) ? debit : this.accountId()
    const id = r.chance(0.15) && this.transferNext > 1n ? 1n + BigInt(r.below(Number(this.transferNext - 1n))) : this.transferNext++
    if ((flags & TransferFlags.pending) !== 0) this.pendingIds.push(id)
    return transfer({
      id: odd && r.chance(0.2) ? 0n : id,
      debit_account_id: debit,
      credit_account_id: credit,
      amount,
      pending_id: pendingId,
      timeout,
      ledger: odd && r.chance(0.3) ? r.pick([0, 2]) : 1,
      code: odd && r.chance(0.2) ? 0 : r.between(1, 2),
      flags,
      user_data_32: r.between(0, 3),
      timestamp: odd && r.chance(0.1) ? 1n : 0n
    })
  }
}
