/**
 * Many fresh ledgers on one replica, for running the conformance suite against a single replica
 * process: a layer's `send` wrapped so that each namespace sees only its own accounts and
 * transfers. Ids from 1 to 2^64 - 1 are moved into the namespace's own range of ids (ids the
 * suite uses outside that range, 0 and 2^128 - 1, are the same in every namespace and never
 * name stored objects), ledgers into the namespace's own range of ledgers, and a query that names
 * no ledger is confined to the namespace's ledger 700, the one the conformance suite keeps its
 * objects in. Replies are mapped back, so the tests see the ids and ledgers they used.
 *
 * The wrapper works on the validated binary batches `makeLedger` hands to `send`, so every
 * request check, the typed API, the streams and `submit` are the real ones.
 */
import type { Decode, Send } from "../../src/index.ts"
import { AccountFilterLayout, AccountLayout, QueryFilterLayout, TransferLayout } from "../../src/protocol/records.ts"
import { accountSize, idSize, Operation, transferSize } from "../../src/protocol/operation.ts"

const idSpan = 1n << 64n
/** Ledgers per namespace: the suite uses ledgers below 1000. */
const ledgerSpan = 1000
/** The ledger a query without one is confined to. */
const suiteLedger = 700

export function namespaced(send: Send, namespace: number): Send {
  const base = BigInt(namespace + 1) * idSpan
  const ledgerBase = (namespace + 1) * ledgerSpan
  const toId = (id: bigint) => id >= 1n && id < idSpan ? base + id : id
  const fromId = (id: bigint) => id > base && id < base + idSpan ? id - base : id
  const toLedger = (ledger: number) => ledger === 0 ? 0 : ledgerBase + ledger
  const fromLedger = (ledger: number) => ledger > ledgerBase && ledger < ledgerBase + ledgerSpan ? ledger - ledgerBase : ledger

  const accounts = (bytes: Uint8Array, id: (x: bigint) => bigint, ledger: (x: number) => number) =>
    records(bytes, accountSize, (view, o) => {
      mapU128(view, o + AccountLayout.id, id)
      mapU32(view, o + AccountLayout.ledger, ledger)
    })
  const transfers = (bytes: Uint8Array, id: (x: bigint) => bigint, ledger: (x: number) => number) =>
    records(bytes, transferSize, (view, o) => {
      for (const field of [TransferLayout.id, TransferLayout.debit_account_id, TransferLayout.credit_account_id, TransferLayout.pending_id]) {
        mapU128(view, o + field, id)
      }
      mapU32(view, o + TransferLayout.ledger, ledger)
    })

  // Replies are mapped back before the caller's decoder sees them.
  const back = <A>(decode: Decode<A>, map: (reply: Uint8Array) => Uint8Array): Decode<A> => (reply, countMax) => decode(map(reply), countMax)

  return (operation, body, decode) => {
    switch (operation) {
      case Operation.create_accounts:
        return send(operation, accounts(body, toId, toLedger), decode)
      case Operation.create_transfers:
        return send(operation, transfers(body, toId, toLedger), decode)
      case Operation.lookup_accounts:
        return send(operation, records(body, idSize, (view, o) => mapU128(view, o, toId)), back(decode, (reply) => accounts(reply, fromId, fromLedger)))
      case Operation.lookup_transfers:
        return send(operation, records(body, idSize, (view, o) => mapU128(view, o, toId)), back(decode, (reply) => transfers(reply, fromId, fromLedger)))
      case Operation.get_account_transfers:
      case Operation.get_account_balances: {
        const filter = records(body, body.length, (view, o) => mapU128(view, o + AccountFilterLayout.account_id, toId))
        return operation === Operation.get_account_transfers
          ? send(operation, filter, back(decode, (reply) => transfers(reply, fromId, fromLedger)))
          : send(operation, filter, decode)
      }
      case Operation.query_accounts:
      case Operation.query_transfers: {
        const filter = records(body, body.length, (view, o) =>
          mapU32(view, o + QueryFilterLayout.ledger, (ledger) => toLedger(ledger === 0 ? suiteLedger : ledger)))
        return send(operation, filter, back(decode, (reply) =>
          operation === Operation.query_accounts ? accounts(reply, fromId, fromLedger) : transfers(reply, fromId, fromLedger)))
      }
    }
  }
}

/** A copy of `bytes` with `edit` applied to each `size`-byte record. */
function records(bytes: Uint8Array, size: number, edit: (view: DataView, offset: number) => void): Uint8Array {
  const copy = bytes.slice()
  const view = new DataView(copy.buffer)
  for (let offset = 0; offset < copy.length; offset += size) edit(view, offset)
  return copy
}

function mapU128(view: DataView, offset: number, f: (value: bigint) => bigint): void {
  const value = view.getBigUint64(offset, true) | (view.getBigUint64(offset + 8, true) << 64n)
  const mapped = f(value)
  view.setBigUint64(offset, mapped & (idSpan - 1n), true)
  view.setBigUint64(offset + 8, mapped >> 64n, true)
}

function mapU32(view: DataView, offset: number, f: (value: number) => number): void {
  view.setUint32(offset, f(view.getUint32(offset, true)), true)
}
