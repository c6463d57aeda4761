/**
 * The reference model's own codec for the ledger's records (spec/state-machine.md §1).
 *
 * Written from the spec's layout tables with DataView and bigint, independently of
 * src/protocol/records.ts, so that the property tests cross-check the fast ledger's layouts too.
 * Cold path only: one object per record is fine here.
 */
import type { ModelAccount, ModelTransfer } from "./model_types.ts"

export const MAX128 = (1n << 128n) - 1n
export const MAX64 = (1n << 64n) - 1n
export const MAX63 = (1n << 63n) - 1n
export const AMOUNT_MAX = MAX128

export const ACCOUNT_SIZE = 128
export const TRANSFER_SIZE = 128
export const ACCOUNT_BALANCE_SIZE = 128
export const ACCOUNT_FILTER_SIZE = 128
export const QUERY_FILTER_SIZE = 64
export const CREATE_RESULT_SIZE = 16
export const ID_SIZE = 16

const view = (bytes: Uint8Array): DataView => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)

export const readU128 = (bytes: Uint8Array, offset: number): bigint => {
  const v = view(bytes)
  return v.getBigUint64(offset, true) | (v.getBigUint64(offset + 8, true) << 64n)
}

export const writeU128 = (bytes: Uint8Array, offset: number, value: bigint): void => {
  if (value < 0n || value > MAX128) throw new RangeError(`u128 out of range: ${value}`)
  const v = view(bytes)
  v.setBigUint64(offset, value & MAX64, true)
  v.setBigUint64(offset + 8, value >> 64n, true)
}

export const readU64 = (bytes: Uint8Array, offset: number): bigint => view(bytes).getBigUint64(offset, true)
export const writeU64 = (bytes: Uint8Array, offset: number, value: bigint): void => {
  if (value < 0n || value > MAX64) throw new RangeError(`u64 out of range: ${value}`)
  view(bytes).setBigUint64(offset, value, true)
}
export const readU32 = (bytes: Uint8Array, offset: number): number => view(bytes).getUint32(offset, true)
export const writeU32 = (bytes: Uint8Array, offset: number, value: number): void =>
  view(bytes).setUint32(offset, value, true)
export const readU16 = (bytes: Uint8Array, offset: number): number => view(bytes).getUint16(offset, true)
export const writeU16 = (bytes: Uint8Array, offset: number, value: number): void =>
  view(bytes).setUint16(offset, value, true)

/** True when every byte in [start, end) is zero. */
export const isZero = (bytes: Uint8Array, start: number, end: number): boolean => {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false
  return true
}

// Account, §1.1.
export const decodeAccount = (bytes: Uint8Array, offset = 0): ModelAccount => {
  const b = bytes.subarray(offset, offset + ACCOUNT_SIZE)
  return {
    id: readU128(b, 0),
    debits_pending: readU128(b, 16),
    debits_posted: readU128(b, 32),
    credits_pending: readU128(b, 48),
    credits_posted: readU128(b, 64),
    user_data_128: readU128(b, 80),
    user_data_64: readU64(b, 96),
    user_data_32: readU32(b, 104),
    reserved: readU32(b, 108),
    ledger: readU32(b, 112),
    code: readU16(b, 116),
    flags: readU16(b, 118),
    timestamp: readU64(b, 120)
  }
}

export const encodeAccountInto = (bytes: Uint8Array, offset: number, a: ModelAccount): void => {
  const b = bytes.subarray(offset, offset + ACCOUNT_SIZE)
  writeU128(b, 0, a.id)
  writeU128(b, 16, a.debits_pending)
  writeU128(b, 32, a.debits_posted)
  writeU128(b, 48, a.credits_pending)
  writeU128(b, 64, a.credits_posted)
  writeU128(b, 80, a.user_data_128)
  writeU64(b, 96, a.user_data_64)
  writeU32(b, 104, a.user_data_32)
  writeU32(b, 108, a.reserved)
  writeU32(b, 112, a.ledger)
  writeU16(b, 116, a.code)
  writeU16(b, 118, a.flags)
  writeU64(b, 120, a.timestamp)
}

// Transfer, §1.2.
export const decodeTransfer = (bytes: Uint8Array, offset = 0): ModelTransfer => {
  const b = bytes.subarray(offset, offset + TRANSFER_SIZE)
  return {
    id: readU128(b, 0),
    debit_account_id: readU128(b, 16),
    credit_account_id: readU128(b, 32),
    amount: readU128(b, 48),
    pending_id: readU128(b, 64),
    user_data_128: readU128(b, 80),
    user_data_64: readU64(b, 96),
    user_data_32: readU32(b, 104),
    timeout: readU32(b, 108),
    ledger: readU32(b, 112),
    code: readU16(b, 116),
    flags: readU16(b, 118),
    timestamp: readU64(b, 120)
  }
}

export const encodeTransferInto = (bytes: Uint8Array, offset: number, t: ModelTransfer): void => {
  const b = bytes.subarray(offset, offset + TRANSFER_SIZE)
  writeU128(b, 0, t.id)
  writeU128(b, 16, t.debit_account_id)
  writeU128(b, 32, t.credit_account_id)
  writeU128(b, 48, t.amount)
  writeU128(b, 64, t.pending_id)
  writeU128(b, 80, t.user_data_128)
  writeU64(b, 96, t.user_data_64)
  writeU32(b, 104, t.user_data_32)
  writeU32(b, 108, t.timeout)
  writeU32(b, 112, t.ledger)
  writeU16(b, 116, t.code)
  writeU16(b, 118, t.flags)
  writeU64(b, 120, t.timestamp)
}

export const encodeAccounts = (accounts: ReadonlyArray<ModelAccount>): Uint8Array => {
  const out = new Uint8Array(accounts.length * ACCOUNT_SIZE)
  accounts.forEach((a, i) => encodeAccountInto(out, i * ACCOUNT_SIZE, a))
  return out
}

export const encodeTransfers = (transfers: ReadonlyArray<ModelTransfer>): Uint8Array => {
  const out = new Uint8Array(transfers.length * TRANSFER_SIZE)
  transfers.forEach((t, i) => encodeTransferInto(out, i * TRANSFER_SIZE, t))
  return out
}

export const decodeAccounts = (bytes: Uint8Array): Array<ModelAccount> => {
  if (bytes.length % ACCOUNT_SIZE !== 0) throw new Error(`not a whole number of accounts: ${bytes.length}`)
  const out: Array<ModelAccount> = []
  for (let o = 0; o < bytes.length; o += ACCOUNT_SIZE) out.push(decodeAccount(bytes, o))
  return out
}

export const decodeTransfers = (bytes: Uint8Array): Array<ModelTransfer> => {
  if (bytes.length % TRANSFER_SIZE !== 0) throw new Error(`not a whole number of transfers: ${bytes.length}`)
  const out: Array<ModelTransfer> = []
  for (let o = 0; o < bytes.length; o += TRANSFER_SIZE) out.push(decodeTransfer(bytes, o))
  return out
}

// AccountBalance, §1.3.
export interface ModelAccountBalance {
  debits_pending: bigint
  debits_posted: bigint
  credits_pending: bigint
  credits_posted: bigint
  timestamp: bigint
}

export const encodeAccountBalanceInto = (bytes: Uint8Array, offset: number, b: ModelAccountBalance): void => {
  const r = bytes.subarray(offset, offset + ACCOUNT_BALANCE_SIZE)
  writeU128(r, 0, b.debits_pending)
  writeU128(r, 16, b.debits_posted)
  writeU128(r, 32, b.credits_pending)
  writeU128(r, 48, b.credits_posted)
  writeU64(r, 64, b.timestamp)
  // Bytes 72..127 are reserved and stay zero.
}

export const decodeAccountBalances = (bytes: Uint8Array): Array<ModelAccountBalance> => {
  if (bytes.length % ACCOUNT_BALANCE_SIZE !== 0) throw new Error(`not a whole number of balances: ${bytes.length}`)
  const out: Array<ModelAccountBalance> = []
  for (let o = 0; o < bytes.length; o += ACCOUNT_BALANCE_SIZE) {
    const r = bytes.subarray(o, o + ACCOUNT_BALANCE_SIZE)
    if (!isZero(r, 72, 128)) throw new Error("account balance: reserved bytes are not zero")
    out.push({
      debits_pending: readU128(r, 0),
      debits_posted: readU128(r, 16),
      credits_pending: readU128(r, 32),
      credits_posted: readU128(r, 48),
      timestamp: readU64(r, 64)
    })
  }
  return out
}

// AccountFilter, §1.4.
export interface ModelAccountFilter {
  account_id: bigint
  user_data_128: bigint
  user_data_64: bigint
  user_data_32: number
  code: number
  /** 58 bytes at offset 46; undefined = zeros. */
  reserved?: Uint8Array
  timestamp_min: bigint
  timestamp_max: bigint
  limit: number
  flags: number
}

export const encodeAccountFilter = (f: ModelAccountFilter): Uint8Array => {
  const b = new Uint8Array(ACCOUNT_FILTER_SIZE)
  writeU128(b, 0, f.account_id)
  writeU128(b, 16, f.user_data_128)
  writeU64(b, 32, f.user_data_64)
  writeU32(b, 40, f.user_data_32)
  writeU16(b, 44, f.code)
  if (f.reserved !== undefined) {
    if (f.reserved.length !== 58) throw new Error("account filter: reserved must be 58 bytes")
    b.set(f.reserved, 46)
  }
  writeU64(b, 104, f.timestamp_min)
  writeU64(b, 112, f.timestamp_max)
  writeU32(b, 120, f.limit)
  writeU32(b, 124, f.flags)
  return b
}

export const decodeAccountFilter = (b: Uint8Array): ModelAccountFilter & { reservedZero: boolean } => ({
  account_id: readU128(b, 0),
  user_data_128: readU128(b, 16),
  user_data_64: readU64(b, 32),
  user_data_32: readU32(b, 40),
  code: readU16(b, 44),
  reserved: b.slice(46, 104),
  reservedZero: isZero(b, 46, 104),
  timestamp_min: readU64(b, 104),
  timestamp_max: readU64(b, 112),
  limit: readU32(b, 120),
  flags: readU32(b, 124)
})

// QueryFilter, §1.5.
export interface ModelQueryFilter {
  user_data_128: bigint
  user_data_64: bigint
  user_data_32: number
  ledger: number
  code: number
  /** 6 bytes at offset 34; undefined = zeros. */
  reserved?: Uint8Array
  timestamp_min: bigint
  timestamp_max: bigint
  limit: number
  flags: number
}

export const encodeQueryFilter = (f: ModelQueryFilter): Uint8Array => {
  const b = new Uint8Array(QUERY_FILTER_SIZE)
  writeU128(b, 0, f.user_data_128)
  writeU64(b, 16, f.user_data_64)
  writeU32(b, 24, f.user_data_32)
  writeU32(b, 28, f.ledger)
  writeU16(b, 32, f.code)
  if (f.reserved !== undefined) {
    if (f.reserved.length !== 6) throw new Error("query filter: reserved must be 6 bytes")
    b.set(f.reserved, 34)
  }
  writeU64(b, 40, f.timestamp_min)
  writeU64(b, 48, f.timestamp_max)
  writeU32(b, 56, f.limit)
  writeU32(b, 60, f.flags)
  return b
}

export const decodeQueryFilter = (b: Uint8Array): ModelQueryFilter & { reservedZero: boolean } => ({
  user_data_128: readU128(b, 0),
  user_data_64: readU64(b, 16),
  user_data_32: readU32(b, 24),
  ledger: readU32(b, 28),
  code: readU16(b, 32),
  reserved: b.slice(34, 40),
  reservedZero: isZero(b, 34, 40),
  timestamp_min: readU64(b, 40),
  timestamp_max: readU64(b, 48),
  limit: readU32(b, 56),
  flags: readU32(b, 60)
})

// Create results, §1.6.
export interface ModelCreateResult {
  timestamp: bigint
  status: number
}

export const encodeCreateResults = (results: ReadonlyArray<ModelCreateResult>): Uint8Array => {
  const out = new Uint8Array(results.length * CREATE_RESULT_SIZE)
  results.forEach((r, i) => {
    writeU64(out, i * CREATE_RESULT_SIZE, r.timestamp)
    writeU32(out, i * CREATE_RESULT_SIZE + 8, r.status)
    // reserved (offset 12) stays zero.
  })
  return out
}

export const decodeCreateResults = (bytes: Uint8Array): Array<ModelCreateResult> => {
  if (bytes.length % CREATE_RESULT_SIZE !== 0) throw new Error(`not a whole number of results: ${bytes.length}`)
  const out: Array<ModelCreateResult> = []
  for (let o = 0; o < bytes.length; o += CREATE_RESULT_SIZE) {
    if (readU32(bytes, o + 12) !== 0) throw new Error("create result: reserved is not zero")
    out.push({ timestamp: readU64(bytes, o), status: readU32(bytes, o + 8) })
  }
  return out
}

// Ids, for lookups.
export const encodeIds = (ids: ReadonlyArray<bigint>): Uint8Array => {
  const out = new Uint8Array(ids.length * ID_SIZE)
  ids.forEach((id, i) => writeU128(out, i * ID_SIZE, id))
  return out
}

/** Builders with every field defaulted to zero, for tests. */
export const account = (fields: Partial<ModelAccount> & { id: bigint }): ModelAccount => ({
  debits_pending: 0n,
  debits_posted: 0n,
  credits_pending: 0n,
  credits_posted: 0n,
  user_data_128: 0n,
  user_data_64: 0n,
  user_data_32: 0,
  reserved: 0,
  ledger: 0,
  code: 0,
  flags: 0,
  timestamp: 0n,
  ...fields
})

export const transfer = (fields: Partial<ModelTransfer> & { id: bigint }): ModelTransfer => ({
  debit_account_id: 0n,
  credit_account_id: 0n,
  amount: 0n,
  pending_id: 0n,
  user_data_128: 0n,
  user_data_64: 0n,
  user_data_32: 0,
  timeout: 0,
  ledger: 0,
  code: 0,
  flags: 0,
  timestamp: 0n,
  ...fields
})

export const accountFilter = (fields: Partial<ModelAccountFilter> & { account_id: bigint }): ModelAccountFilter => ({
  user_data_128: 0n,
  user_data_64: 0n,
  user_data_32: 0,
  code: 0,
  timestamp_min: 0n,
  timestamp_max: 0n,
  limit: 8189,
  flags: 3,
  ...fields
})

export const queryFilter = (fields: Partial<ModelQueryFilter> = {}): ModelQueryFilter => ({
  user_data_128: 0n,
  user_data_64: 0n,
  user_data_32: 0,
  ledger: 0,
  code: 0,
  timestamp_min: 0n,
  timestamp_max: 0n,
  limit: 8189,
  flags: 0,
  ...fields
})
