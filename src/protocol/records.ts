/**
 * Binary layouts of the ledger's records (spec/state-machine.md §1, §2) and a cold-path codec
 * between them and plain objects with bigint fields.
 *
 * The hot path never goes through the codec: the ledger reads and writes these records in place
 * as u32 words (`*Word` offsets, little-endian u128 = words 0..3). The codec is for clients, the
 * REPL, tests and tools, where one object per record is fine.
 */
import { accountBalanceSize, accountFilterSize, accountSize, createResultSize, queryFilterSize, transferSize } from "./operation.ts"

export const u128Max = (1n << 128n) - 1n
export const u64Max = (1n << 64n) - 1n
/** Timestamps are 1..2^63-1: the top bit is reserved by the storage engine. */
export const timestampMax = (1n << 63n) - 1n
export const amountMax = u128Max

/** Account layout, byte offsets. */
export const AccountLayout = {
  id: 0,
  debits_pending: 16,
  debits_posted: 32,
  credits_pending: 48,
  credits_posted: 64,
  user_data_128: 80,
  user_data_64: 96,
  user_data_32: 104,
  reserved: 108,
  ledger: 112,
  code: 116,
  flags: 118,
  timestamp: 120
} as const

/** Transfer layout, byte offsets. */
export const TransferLayout = {
  id: 0,
  debit_account_id: 16,
  credit_account_id: 32,
  amount: 48,
  pending_id: 64,
  user_data_128: 80,
  user_data_64: 96,
  user_data_32: 104,
  timeout: 108,
  ledger: 112,
  code: 116,
  flags: 118,
  timestamp: 120
} as const

export const AccountBalanceLayout = {
  debits_pending: 0,
  debits_posted: 16,
  credits_pending: 32,
  credits_posted: 48,
  timestamp: 64,
  reserved: 72
} as const

export const AccountFilterLayout = {
  account_id: 0,
  user_data_128: 16,
  user_data_64: 32,
  user_data_32: 40,
  code: 44,
  reserved: 46,
  timestamp_min: 104,
  timestamp_max: 112,
  limit: 120,
  flags: 124
} as const
export const accountFilterReservedSize = 58

export const QueryFilterLayout = {
  user_data_128: 0,
  user_data_64: 16,
  user_data_32: 24,
  ledger: 28,
  code: 32,
  reserved: 34,
  timestamp_min: 40,
  timestamp_max: 48,
  limit: 56,
  flags: 60
} as const
export const queryFilterReservedSize = 6

export const CreateResultLayout = { timestamp: 0, status: 8, reserved: 12 } as const

export const AccountFlags = {
  linked: 1 << 0,
  debits_must_not_exceed_credits: 1 << 1,
  credits_must_not_exceed_debits: 1 << 2,
  history: 1 << 3,
  imported: 1 << 4,
  closed: 1 << 5
} as const
/** Bits 6..15 must be zero. */
export const accountFlagsPadding = 0xffc0

export const TransferFlags = {
  linked: 1 << 0,
  pending: 1 << 1,
  post_pending_transfer: 1 << 2,
  void_pending_transfer: 1 << 3,
  balancing_debit: 1 << 4,
  balancing_credit: 1 << 5,
  closing_debit: 1 << 6,
  closing_credit: 1 << 7,
  imported: 1 << 8
} as const
/** Bits 9..15 must be zero. */
export const transferFlagsPadding = 0xfe00

export const AccountFilterFlags = { debits: 1 << 0, credits: 1 << 1, reversed: 1 << 2 } as const
export const QueryFilterFlags = { reversed: 1 << 0 } as const

export interface Account {
  readonly id: bigint
  readonly debits_pending: bigint
  readonly debits_posted: bigint
  readonly credits_pending: bigint
  readonly credits_posted: bigint
  readonly user_data_128: bigint
  readonly user_data_64: bigint
  readonly user_data_32: number
  readonly reserved: number
  readonly ledger: number
  readonly code: number
  readonly flags: number
  readonly timestamp: bigint
}

export interface Transfer {
  readonly id: bigint
  readonly debit_account_id: bigint
  readonly credit_account_id: bigint
  readonly amount: bigint
  readonly pending_id: bigint
  readonly user_data_128: bigint
  readonly user_data_64: bigint
  readonly user_data_32: number
  readonly timeout: number
  readonly ledger: number
  readonly code: number
  readonly flags: number
  readonly timestamp: bigint
}

export interface AccountBalance {
  readonly debits_pending: bigint
  readonly debits_posted: bigint
  readonly credits_pending: bigint
  readonly credits_posted: bigint
  readonly timestamp: bigint
}

export interface AccountFilter {
  readonly account_id: bigint
  readonly user_data_128: bigint
  readonly user_data_64: bigint
  readonly user_data_32: number
  readonly code: number
  readonly timestamp_min: bigint
  readonly timestamp_max: bigint
  readonly limit: number
  readonly flags: number
}

export interface QueryFilter {
  readonly user_data_128: bigint
  readonly user_data_64: bigint
  readonly user_data_32: number
  readonly ledger: number
  readonly code: number
  readonly timestamp_min: bigint
  readonly timestamp_max: bigint
  readonly limit: number
  readonly flags: number
}

export interface CreateResult {
  readonly timestamp: bigint
  readonly status: number
}

/** An account with every field zero but those given: the shape clients usually start from. */
export const account = (fields: Partial<Account> & Pick<Account, "id">): Account => ({
  debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n,
  user_data_128: 0n, user_data_64: 0n, user_data_32: 0, reserved: 0, ledger: 0, code: 0, flags: 0,
  timestamp: 0n, ...fields
})

export const transfer = (fields: Partial<Transfer> & Pick<Transfer, "id">): Transfer => ({
  debit_account_id: 0n, credit_account_id: 0n, amount: 0n, pending_id: 0n,
  user_data_128: 0n, user_data_64: 0n, user_data_32: 0, timeout: 0, ledger: 0, code: 0, flags: 0,
  timestamp: 0n, ...fields
})

export const accountFilter = (fields: Partial<AccountFilter> & Pick<AccountFilter, "account_id">): AccountFilter => ({
  user_data_128: 0n, user_data_64: 0n, user_data_32: 0, code: 0, timestamp_min: 0n, timestamp_max: 0n,
  limit: 8189, flags: AccountFilterFlags.debits | AccountFilterFlags.credits, ...fields
})

export const queryFilter = (fields: Partial<QueryFilter>): QueryFilter => ({
  user_data_128: 0n, user_data_64: 0n, user_data_32: 0, ledger: 0, code: 0, timestamp_min: 0n,
  timestamp_max: 0n, limit: 8189, flags: 0, ...fields
})

// --- cold-path codec -------------------------------------------------------------------------

const getU128 = (view: DataView, offset: number): bigint =>
  view.getBigUint64(offset, true) | (view.getBigUint64(offset + 8, true) << 64n)

const setU128 = (view: DataView, offset: number, value: bigint): void => {
  checkRange(value, u128Max, offset)
  view.setBigUint64(offset, value & u64Max, true)
  view.setBigUint64(offset + 8, value >> 64n, true)
}

const setU64 = (view: DataView, offset: number, value: bigint): void => {
  checkRange(value, u64Max, offset)
  view.setBigUint64(offset, value, true)
}

const setUint = (view: DataView, offset: number, value: number, bits: 16 | 32): void => {
  checkRange(BigInt(value), (1n << BigInt(bits)) - 1n, offset)
  if (bits === 16) view.setUint16(offset, value, true)
  else view.setUint32(offset, value, true)
}

function checkRange(value: bigint, max: bigint, offset: number): void {
  if (value < 0n || value > max) throw new RangeError(`value ${value} at offset ${offset} is out of range 0..${max}`)
}

const viewOf = (bytes: Uint8Array): DataView => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)

let bufferViewed: ArrayBufferLike | undefined
let bufferViewCached: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0))

/**
 * A view of the whole buffer under `bytes` (offsets are then `bytes.byteOffset + …`), kept for
 * the latest buffer: the many small pieces of one buffer (a slab's one-event bodies, a reply's
 * result batches) share it instead of a view each.
 */
export function bufferView(bytes: Uint8Array): DataView<ArrayBufferLike> {
  if (bytes.buffer !== bufferViewed) {
    bufferViewed = bytes.buffer
    bufferViewCached = new DataView(bytes.buffer)
  }
  return bufferViewCached
}

export function encodeAccount(value: Account, target: Uint8Array = new Uint8Array(accountSize), offset = 0): Uint8Array {
  const view = viewOf(target.subarray(offset, offset + accountSize))
  const L = AccountLayout
  setU128(view, L.id, value.id)
  setU128(view, L.debits_pending, value.debits_pending)
  setU128(view, L.debits_posted, value.debits_posted)
  setU128(view, L.credits_pending, value.credits_pending)
  setU128(view, L.credits_posted, value.credits_posted)
  setU128(view, L.user_data_128, value.user_data_128)
  setU64(view, L.user_data_64, value.user_data_64)
  setUint(view, L.user_data_32, value.user_data_32, 32)
  setUint(view, L.reserved, value.reserved, 32)
  setUint(view, L.ledger, value.ledger, 32)
  setUint(view, L.code, value.code, 16)
  setUint(view, L.flags, value.flags, 16)
  setU64(view, L.timestamp, value.timestamp)
  return target
}

export function decodeAccount(bytes: Uint8Array, offset = 0): Account {
  const view = viewOf(bytes.subarray(offset, offset + accountSize))
  const L = AccountLayout
  return {
    id: getU128(view, L.id),
    debits_pending: getU128(view, L.debits_pending),
    debits_posted: getU128(view, L.debits_posted),
    credits_pending: getU128(view, L.credits_pending),
    credits_posted: getU128(view, L.credits_posted),
    user_data_128: getU128(view, L.user_data_128),
    user_data_64: view.getBigUint64(L.user_data_64, true),
    user_data_32: view.getUint32(L.user_data_32, true),
    reserved: view.getUint32(L.reserved, true),
    ledger: view.getUint32(L.ledger, true),
    code: view.getUint16(L.code, true),
    flags: view.getUint16(L.flags, true),
    timestamp: view.getBigUint64(L.timestamp, true)
  }
}

export function encodeTransfer(value: Transfer, target: Uint8Array = new Uint8Array(transferSize), offset = 0): Uint8Array {
  const view = viewOf(target.subarray(offset, offset + transferSize))
  const L = TransferLayout
  setU128(view, L.id, value.id)
  setU128(view, L.debit_account_id, value.debit_account_id)
  setU128(view, L.credit_account_id, value.credit_account_id)
  setU128(view, L.amount, value.amount)
  setU128(view, L.pending_id, value.pending_id)
  setU128(view, L.user_data_128, value.user_data_128)
  setU64(view, L.user_data_64, value.user_data_64)
  setUint(view, L.user_data_32, value.user_data_32, 32)
  setUint(view, L.timeout, value.timeout, 32)
  setUint(view, L.ledger, value.ledger, 32)
  setUint(view, L.code, value.code, 16)
  setUint(view, L.flags, value.flags, 16)
  setU64(view, L.timestamp, value.timestamp)
  return target
}

export function decodeTransfer(bytes: Uint8Array, offset = 0): Transfer {
  const view = viewOf(bytes.subarray(offset, offset + transferSize))
  const L = TransferLayout
  return {
    id: getU128(view, L.id),
    debit_account_id: getU128(view, L.debit_account_id),
    credit_account_id: getU128(view, L.credit_account_id),
    amount: getU128(view, L.amount),
    pending_id: getU128(view, L.pending_id),
    user_data_128: getU128(view, L.user_data_128),
    user_data_64: view.getBigUint64(L.user_data_64, true),
    user_data_32: view.getUint32(L.user_data_32, true),
    timeout: view.getUint32(L.timeout, true),
    ledger: view.getUint32(L.ledger, true),
    code: view.getUint16(L.code, true),
    flags: view.getUint16(L.flags, true),
    timestamp: view.getBigUint64(L.timestamp, true)
  }
}

export function decodeAccountBalance(bytes: Uint8Array, offset = 0): AccountBalance {
  const view = viewOf(bytes.subarray(offset, offset + accountBalanceSize))
  const L = AccountBalanceLayout
  return {
    debits_pending: getU128(view, L.debits_pending),
    debits_posted: getU128(view, L.debits_posted),
    credits_pending: getU128(view, L.credits_pending),
    credits_posted: getU128(view, L.credits_posted),
    timestamp: view.getBigUint64(L.timestamp, true)
  }
}

export function encodeAccountFilter(value: AccountFilter, target: Uint8Array = new Uint8Array(accountFilterSize), offset = 0): Uint8Array {
  const view = viewOf(target.subarray(offset, offset + accountFilterSize))
  const L = AccountFilterLayout
  setU128(view, L.account_id, value.account_id)
  setU128(view, L.user_data_128, value.user_data_128)
  setU64(view, L.user_data_64, value.user_data_64)
  setUint(view, L.user_data_32, value.user_data_32, 32)
  setUint(view, L.code, value.code, 16)
  target.fill(0, offset + L.reserved, offset + L.reserved + accountFilterReservedSize)
  setU64(view, L.timestamp_min, value.timestamp_min)
  setU64(view, L.timestamp_max, value.timestamp_max)
  setUint(view, L.limit, value.limit, 32)
  setUint(view, L.flags, value.flags, 32)
  return target
}

export function encodeQueryFilter(value: QueryFilter, target: Uint8Array = new Uint8Array(queryFilterSize), offset = 0): Uint8Array {
  const view = viewOf(target.subarray(offset, offset + queryFilterSize))
  const L = QueryFilterLayout
  setU128(view, L.user_data_128, value.user_data_128)
  setU64(view, L.user_data_64, value.user_data_64)
  setUint(view, L.user_data_32, value.user_data_32, 32)
  setUint(view, L.ledger, value.ledger, 32)
  setUint(view, L.code, value.code, 16)
  target.fill(0, offset + L.reserved, offset + L.reserved + queryFilterReservedSize)
  setU64(view, L.timestamp_min, value.timestamp_min)
  setU64(view, L.timestamp_max, value.timestamp_max)
  setUint(view, L.limit, value.limit, 32)
  setUint(view, L.flags, value.flags, 32)
  return target
}

export function decodeCreateResult(bytes: Uint8Array, offset = 0): CreateResult {
  const view = viewOf(bytes.subarray(offset, offset + createResultSize))
  return {
    timestamp: view.getBigUint64(CreateResultLayout.timestamp, true),
    status: view.getUint32(CreateResultLayout.status, true)
  }
}

/** Encodes a list of records back to back, as a batch body. */
export function encodeBatch<A>(values: ReadonlyArray<A>, size: number, encode: (value: A, target: Uint8Array, offset: number) => unknown): Uint8Array {
  const bytes = new Uint8Array(values.length * size)
  values.forEach((value, index) => encode(value, bytes, index * size))
  return bytes
}

/** Decodes a body of back-to-back records. */
export function decodeBatch<A>(bytes: Uint8Array, size: number, decode: (bytes: Uint8Array, offset: number) => A): Array<A> {
  if (bytes.length % size !== 0) throw new RangeError(`body of ${bytes.length} bytes is not a multiple of ${size}`)
  const values: Array<A> = []
  for (let offset = 0; offset < bytes.length; offset += size) values.push(decode(bytes, offset))
  return values
}

export const encodeIds = (ids: ReadonlyArray<bigint>): Uint8Array =>
  encodeBatch(ids, 16, (id, target, offset) => setU128(viewOf(target), offset, id))
