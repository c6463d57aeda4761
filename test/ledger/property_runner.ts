/**
 * Runs a generated workload (gen_ledger.ts) against the fast ledger and the reference model side
 * by side with one cluster clock, and fails at the first difference: every reply must be
 * byte-identical, and after every step every account, transfer, account-transfer list, balance
 * history and the next expiry must be identical, and both sides' invariants must hold. A create
 * batch that fully succeeded is resubmitted at once: it must answer `exists` for every event,
 * with the original timestamps, and change nothing.
 */
import { Effect } from "effect"
import type { Ledger } from "../../src/ledger/ledger.ts"
import type { ClientOperation } from "../../src/protocol/operation.ts"
import {
  MAX128,
  account,
  decodeAccountBalances,
  decodeAccounts,
  decodeCreateResults,
  decodeTransfers,
  encodeAccountFilter,
  encodeAccounts,
  encodeIds,
  encodeQueryFilter,
  encodeTransfers,
  transfer,
  type ModelAccountFilter,
  type ModelQueryFilter
} from "./reference/codec.ts"
import { A, AF, AFF, BATCH_MAX, Op, ReferenceLedger, T, TF, type ReferenceOptions } from "./reference/model.ts"
import type { ModelAccount, ModelState, ModelTransfer } from "./reference/model_types.ts"
import { accountIdMax, transferPool, type PendingRef, type Replay, type BoundSpec, type Step, type TimestampSpec } from "./gen_ledger.ts"

/** Where the cluster clock starts by default (ns). */
export const clockStartDefault = 1_000_000_000_000n

export interface ComparisonOptions extends ReferenceOptions {
  /** Where the cluster clock starts (ns); near 2^63 to reach overflows_timeout. */
  readonly clockStart?: bigint
}

const accountNames: ReadonlyMap<number, string> = new Map(Object.entries(A).map(([name, value]) => [value, name]))
const transferNames: ReadonlyMap<number, string> = new Map(Object.entries(T).map(([name, value]) => [value, name]))

const accountFlagNames = Object.entries(AF).filter(([name]) => name !== "padding")
const transferFlagNames = Object.entries(TF).filter(([name]) => name !== "padding")

export class Mismatch extends Error {}

export class Comparison {
  readonly fast: Ledger
  readonly model: ReferenceLedger
  /** Timestamp of the last request (spec §6.1). */
  now: bigint
  private readonly clockStart: bigint
  /** Human-readable log of what ran, for failure messages. */
  readonly log: Array<string> = []
  /** Counters of what the workload exercised, for tuning the generators. */
  readonly seen = new Map<string, number>()

  constructor(fast: Ledger, options: ComparisonOptions = {}) {
    this.fast = fast
    this.model = new ReferenceLedger(options)
    this.clockStart = options.clockStart ?? clockStartDefault
    this.now = this.clockStart
  }

  run(steps: ReadonlyArray<Step>): void {
    this.compareState("initial")
    steps.forEach((step, index) => {
      this.step(step, index)
      this.compareState(`after step ${index} (${step.kind})`)
    })
  }

  private count(key: string): void {
    this.seen.set(key, (this.seen.get(key) ?? 0) + 1)
  }

  private step(step: Step, index: number): void {
    switch (step.kind) {
      case "create_accounts": {
        this.now += step.gap
        const prev = this.now
        const state = this.model.state()
        const events = step.events.map((e): ModelAccount => account({ ...e, timestamp: resolve(e.timestamp, prev, state) }))
        this.create(Op.create_accounts, encodeAccounts(events), events.length, index, JSON.stringify(events, bigintJson))
        return
      }
      case "create_transfers": {
        this.now += step.gap
        const prev = this.now
        const state = this.model.state()
        const pending = [...state.transfers].filter((t) => (t.flags & TF.pending) !== 0).reverse()
        const references = {
          recent: pending.map((t) => t.id),
          unresolved: pending.filter((t) => state.pendingStatus.get(t.id) === "pending").map((t) => t.id)
        }
        const events = step.events.map(
          (e, i): ModelTransfer =>
            transfer({
              ...e,
              pending_id: resolvePending(e.pending_id, e.id, references, step.events.map((x) => x.id), i),
              timestamp:
                e.timestamp.mode === "before_account"
                  ? (state.accounts.find((a) => a.id === (e.timestamp.mode === "before_account" && e.timestamp.side === "debit" ? e.debit_account_id : e.credit_account_id))?.timestamp ?? prev + 2n) - 1n
                  : resolve(e.timestamp, prev, state)
            })
        )
        this.create(Op.create_transfers, encodeTransfers(events), events.length, index, JSON.stringify(events, bigintJson))
        return
      }
      case "replay_accounts": {
        const existing = this.model.state().accounts
        if (existing.length === 0) return
        const events = step.picks.map((pick): ModelAccount => {
          const original = existing[existing.length - 1 - (pick.back % existing.length)]!
          const changed = mutate({ ...original }, pick)
          return account({ ...changed, debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n, timestamp: (changed.flags & AF.imported) !== 0 ? original.timestamp : 0n, flags: linkFlag(changed.flags, pick.linked) })
        })
        this.create(Op.create_accounts, encodeAccounts(events), events.length, index, JSON.stringify(events, bigintJson))
        return
      }
      case "replay_transfers": {
        const existing = this.model.state().transfers
        if (existing.length === 0) return
        const events = step.picks.map((pick): ModelTransfer => {
          const original = existing[existing.length - 1 - (pick.back % existing.length)]!
          const changed = mutate({ ...original }, pick)
          return transfer({ ...changed, timestamp: (changed.flags & TF.imported) !== 0 ? original.timestamp : 0n, flags: linkFlag(changed.flags, pick.linked) })
        })
        this.create(Op.create_transfers, encodeTransfers(events), events.length, index, JSON.stringify(events, bigintJson))
        return
      }
      case "lookup":
        this.read(step.operation, encodeIds(step.ids), `step ${index}: ${JSON.stringify(step, bigintJson)}`)
        return
      case "account_filter": {
        const f = step.filter
        const filter: ModelAccountFilter = {
          ...f,
          reserved: reservedBytes(58, f.reservedByte),
          timestamp_min: this.bound(f.timestamp_min),
          timestamp_max: this.bound(f.timestamp_max)
        }
        this.read(step.operation, encodeAccountFilter(filter), `step ${index}: op ${step.operation} ${JSON.stringify(filter, bigintJson)}`)
        return
      }
      case "query": {
        const f = step.filter
        const filter: ModelQueryFilter = {
          ...f,
          reserved: reservedBytes(6, f.reservedByte),
          timestamp_min: this.bound(f.timestamp_min),
          timestamp_max: this.bound(f.timestamp_max)
        }
        this.read(step.operation, encodeQueryFilter(filter), `step ${index}: op ${step.operation} ${JSON.stringify(filter, bigintJson)}`)
        return
      }
      case "advance": {
        this.now += step.ns
        this.log.push(`step ${index}: advance ${step.ns} ns → now ${this.now}`)
        // The primary pulses while next_expiry <= now (§10.5); bounded, each pulse expires 8189.
        for (let pulses = 0; step.pulse && pulses < 4; pulses++) {
          const next = this.model.nextExpiry()
          if (next === undefined || next > this.now) break
          this.pulse(index)
        }
        return
      }
      case "pulse":
        this.pulse(index)
        return
    }
  }

  private pulse(index: number): void {
    const T = this.tick(BATCH_MAX)
    const expected = this.model.pulse(T)
    const actual = this.fast.pulse(T)
    this.log.push(`step ${index}: pulse at ${T}: ${expected} expired`)
    this.count(`pulses expiring ${expected > 0 ? "some" : "none"}`)
    this.seen.set("expiries", (this.seen.get("expiries") ?? 0) + expected)
    if (expected !== actual) this.fail(`pulse at ${T}: reference expired ${expected}, fast ${actual}`)
  }

  /** A create batch, then (if every event was created) its resubmission. */
  private create(operation: ClientOperation, body: Uint8Array, n: number, index: number, events: string): void {
    const end = this.tick(n)
    this.log.push(`step ${index}: op ${operation} T=${end} events=${events}`)
    const reply = this.execute(operation, body, n, end)
    const results = decodeCreateResults(reply)
    const names = operation === Op.create_accounts ? accountNames : transferNames
    const kind = operation === Op.create_accounts ? "account" : "transfer"
    results.forEach((r, i) => {
      this.count(`${kind}.${names.get(r.status)}`)
      if (r.status !== 0xffffffff) return
      const flags = new DataView(body.buffer, body.byteOffset).getUint16(i * 128 + 118, true)
      const flagNames = kind === "account" ? accountFlagNames : transferFlagNames
      for (const [name, bit] of flagNames) if ((flags & bit) !== 0) this.count(`${kind}.created.${name}`)
    })
    this.log.push(`  → ${results.map((r) => `${names.get(r.status)}@${r.timestamp}`).join(", ")}`)
    if (n === 0 || !results.every((r) => r.status === 0xffffffff)) return

    // Resubmission: `exists` with the original timestamps, except that `exists` breaks a linked
    // chain (§17.3), so every later event of a chain answers linked_event_failed at its slot.
    const before = this.modelFingerprint()
    const T2 = this.tick(n)
    const again = decodeCreateResults(this.execute(operation, body, n, T2))
    this.log.push(`  resubmitted at T=${T2} → ${again.map((r) => names.get(r.status)).join(", ")}`)
    const exists = operation === Op.create_accounts ? A.exists : T.exists
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
    let inChain = false
    again.forEach((r, i) => {
      const linked = (view.getUint16(i * 128 + 118, true) & 1) !== 0
      const expected = inChain
        ? { status: A.linked_event_failed as number, timestamp: T2 - BigInt(n) + BigInt(i) + 1n }
        : { status: exists as number, timestamp: results[i]!.timestamp }
      if (r.status !== expected.status || r.timestamp !== expected.timestamp) {
        this.fail(`resubmitted event ${i}: ${names.get(r.status)}@${r.timestamp}, expected ${names.get(expected.status)}@${expected.timestamp}`)
      }
      inChain = linked
    })
    if (this.modelFingerprint() !== before) this.fail("resubmitting a successful batch changed the state")
    this.count("resubmissions")
  }

  private modelFingerprint(): string {
    const s = this.model.state()
    return JSON.stringify([s.accounts, s.transfers, [...s.pendingStatus], [...s.orphans]], bigintJson)
  }

  private read(operation: ClientOperation, body: Uint8Array, what: string): Uint8Array {
    const T = this.tick(0)
    this.log.push(what)
    return this.execute(operation, body, 1, T)
  }

  /** Executes on both sides and insists on identical replies; returns the reply. */
  private execute(operation: ClientOperation, body: Uint8Array, n: number, T: bigint): Uint8Array {
    const expected = this.model.execute(operation, body, T)
    Effect.runSync(this.fast.prefetch(operation, n))
    let actual: Uint8Array
    try {
      actual = this.fast.execute(operation, body, T)
    } catch (error) {
      this.fail(`fast ledger threw on op ${operation} at T=${T}: ${String(error)}\n${(error as Error).stack ?? ""}`)
    }
    if (!equalBytes(expected, actual)) {
      this.fail(`op ${operation} at T=${T}: replies differ\n  reference: ${describeReply(operation, expected)}\n  fast:      ${describeReply(operation, actual)}`)
    }
    return expected
  }

  /** Compares everything observable through reads, the next expiry and both sides' invariants. */
  private compareState(when: string): void {
    const accountIds = [0n, MAX128, ...Array.from({ length: accountIdMax + 1 }, (_, i) => BigInt(i + 1))]
    const transferIds = [0n, MAX128, ...Array.from({ length: transferPool }, (_, i) => BigInt(i + 1))]
    const check = (operation: ClientOperation, body: Uint8Array, label: string): Uint8Array => {
      try {
        return this.execute(operation, body, 1, this.tick(0))
      } catch (error) {
        if (error instanceof Mismatch) throw new Mismatch(`${when}, ${label}: ${error.message}`)
        throw error
      }
    }
    check(Op.lookup_accounts, encodeIds(accountIds), "lookup_accounts of the pool")
    check(Op.lookup_transfers, encodeIds(transferIds), "lookup_transfers of the pool")
    const accountPages: Array<Uint8Array> = []
    for (let min = 0n, page = 0; page < 100; page++) {
      const bytes = check(Op.query_accounts, encodeQueryFilter({ ...zeroQuery, timestamp_min: min }), `query_accounts page ${page}`)
      if (bytes.length === 0) break
      accountPages.push(bytes)
      min = decodeAccounts(bytes.subarray(bytes.length - 128)).at(-1)!.timestamp + 1n
    }
    const allAccounts = concat(accountPages)
    // Every transfer, paging by timestamp as a client would (§14.2), forwards and backwards.
    const pages: Array<Uint8Array> = []
    for (let min = 0n, page = 0; page < 100; page++) {
      const bytes = check(Op.query_transfers, encodeQueryFilter({ ...zeroQuery, timestamp_min: min }), `query_transfers page ${page}`)
      if (bytes.length === 0) break
      pages.push(bytes)
      min = decodeTransfers(bytes.subarray(bytes.length - 128)).at(-1)!.timestamp + 1n
    }
    const allTransfers = concat(pages)
    const reversed = check(Op.query_transfers, encodeQueryFilter({ ...zeroQuery, flags: 1 }), "query_transfers reversed")
    // The model's own state must agree with what its queries return.
    const state = this.model.state()
    if (!equalBytes(allAccounts, encodeAccounts(state.accounts))) this.fail(`${when}: model query_accounts pages disagree with its state`)
    if (!equalBytes(allTransfers, encodeTransfers(state.transfers))) this.fail(`${when}: model query_transfers pages disagree with its state`)
    const newestFirst = state.transfers.slice(-BATCH_MAX).reverse()
    if (!equalBytes(reversed, encodeTransfers(newestFirst))) this.fail(`${when}: model reversed query_transfers disagrees with its state`)
    for (let id = 1n; id <= BigInt(accountIdMax); id++) {
      const filter = encodeAccountFilter({ ...zeroAccountFilter, account_id: id })
      check(Op.get_account_transfers, filter, `get_account_transfers(${id})`)
      const balances = check(Op.get_account_balances, filter, `get_account_balances(${id})`)
      if (balances.length > 0) this.count("balance rows")
    }
    const expectedExpiry = this.model.nextExpiry()
    const actualExpiry = this.fast.nextExpiry()
    if (expectedExpiry !== actualExpiry) this.fail(`${when}: nextExpiry reference ${expectedExpiry}, fast ${actualExpiry}`)
    try {
      this.model.checkInvariants()
    } catch (error) {
      this.fail(`${when}: reference invariant: ${String(error)}`)
    }
    try {
      this.fast.verify()
    } catch (error) {
      this.fail(`${when}: fast ledger verify(): ${String(error)}`)
    }
  }

  /** The request timestamp of the next request consuming `delta` ns (§6.1). */
  private tick(delta: number): bigint {
    this.now += 1n + BigInt(delta)
    return this.now
  }

  private bound(spec: BoundSpec): bigint {
    switch (spec.mode) {
      case "zero":
        return 0n
      case "value":
        return spec.value
      case "frac":
        return this.clockStart + ((this.now - this.clockStart) * BigInt(spec.eighths)) / 8n
    }
  }

  private fail(message: string): never {
    const tail = this.log.slice(-40).join("\n")
    throw new Mismatch(`${message}\n--- last steps ---\n${tail}`)
  }
}

/** Changes one field of a stored object for a replay: to 0 (where post/void inherit) or to another value. */
const mutate = <O extends object>(object: O, pick: Replay): O => {
  const o = object as unknown as Record<string, unknown>
  if (pick.field === "none") return object
  const value = o[pick.field]
  if (typeof value === "bigint") o[pick.field] = pick.zero ? 0n : value === 1n ? 2n : 1n
  else if (pick.field === "flags") o["flags"] = (value as number) ^ (pick.zero ? 0x1 : 0x8)
  else if (typeof value === "number") o[pick.field] = pick.zero ? 0 : value === 1 ? 2 : 1
  return object
}

/** Replays keep the original linked bit, and may add one (a chain across replayed events). */
const linkFlag = (flags: number, linked: boolean): number => (linked ? flags | 1 : flags)

const resolvePending = (
  ref: PendingRef,
  self: bigint,
  references: { readonly recent: ReadonlyArray<bigint>; readonly unresolved: ReadonlyArray<bigint> },
  batchIds: ReadonlyArray<bigint>,
  index: number
): bigint => {
  switch (ref.mode) {
    case "id":
      return ref.id
    case "self":
      return self
    case "recent":
    case "unresolved": {
      const ids = references[ref.mode]
      return ids.length === 0 ? 1n : ids[ref.back % ids.length]!
    }
    case "earlier":
      return index - ref.back >= 0 ? batchIds[index - ref.back]! : 1n
  }
}

const resolve = (spec: TimestampSpec, prev: bigint, state: ModelState): bigint => {
  switch (spec.mode) {
    case "before_account":
      throw new Error("before_account is resolved by the transfer step")
    case "object": {
      const objects = spec.of === "account" ? state.accounts : state.transfers
      if (objects.length === 0) return prev + 1n
      const chosen = objects[objects.length - 1 - (spec.back % objects.length)]!
      return chosen.timestamp + BigInt(spec.delta)
    }
    case "value":
      return spec.value
    case "fresh":
      return prev + 1n + BigInt(spec.offset)
    case "back":
      return prev - spec.back
  }
}

const zeroQuery: ModelQueryFilter = {
  user_data_128: 0n,
  user_data_64: 0n,
  user_data_32: 0,
  ledger: 0,
  code: 0,
  timestamp_min: 0n,
  timestamp_max: 0n,
  limit: BATCH_MAX,
  flags: 0
}

const zeroAccountFilter: ModelAccountFilter = {
  account_id: 0n,
  user_data_128: 0n,
  user_data_64: 0n,
  user_data_32: 0,
  code: 0,
  timestamp_min: 0n,
  timestamp_max: 0n,
  limit: BATCH_MAX,
  flags: AFF.debits | AFF.credits
}

const reservedBytes = (size: number, lastByte: number): Uint8Array => {
  const bytes = new Uint8Array(size)
  bytes[size - 1] = lastByte
  return bytes
}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

export const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export const bigintJson = (_key: string, value: unknown): unknown => (typeof value === "bigint" ? `${value}n` : value)

/** A reply decoded for a failure message. */
export const describeReply = (operation: number, reply: Uint8Array): string => {
  try {
    switch (operation) {
      case Op.create_accounts:
        return decodeCreateResults(reply).map((r) => `${accountNames.get(r.status) ?? r.status}@${r.timestamp}`).join(", ")
      case Op.create_transfers:
        return decodeCreateResults(reply).map((r) => `${transferNames.get(r.status) ?? r.status}@${r.timestamp}`).join(", ")
      case Op.lookup_accounts:
      case Op.query_accounts:
        return JSON.stringify(decodeAccounts(reply), bigintJson)
      case Op.lookup_transfers:
      case Op.get_account_transfers:
      case Op.query_transfers:
        return JSON.stringify(decodeTransfers(reply), bigintJson)
      case Op.get_account_balances:
        return JSON.stringify(decodeAccountBalances(reply), bigintJson)
      default:
        return `${reply.length} bytes`
    }
  } catch (error) {
    return `${reply.length} bytes, undecodable: ${String(error)}`
  }
}
