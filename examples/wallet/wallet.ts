/**
 * A wallet service built on Scarab's `Ledger` service: an example of an Effect service of your
 * own, with its own domain errors, that runs unchanged on every Ledger layer (in memory, an
 * embedded replica, a remote cluster). See wallet.test.ts for the property tests that run it on
 * two of them.
 *
 * The books: every wallet is an account that may not spend more than it holds
 * (`debits_must_not_exceed_credits`), and one `bank` account stands for the world outside,
 * where deposits come from and withdrawals go to. Every movement of money is one transfer, so
 * the ledger's double entry keeps the sum of all balances at zero and no wallet can go below
 * zero: the wallet service never checks a balance itself, it reads the ledger's verdict.
 *
 * Every operation carries an `id` chosen by the caller: the id of its transfer, and so its
 * idempotency key. Repeating an operation with the same id (a retry after a timeout, say)
 * succeeds without moving money twice; reusing an id for a different operation is an
 * `IdConflict`. As in TigerBeetle, an id whose operation failed because of the balances (not
 * enough funds, a missing wallet) stays failed: retrying it is an `IdConflict` too, so pick a
 * new id for a new attempt.
 *
 * A hold (two-phase transfer) reserves an amount in the payer's wallet for a payee: it is
 * captured (all of it, or part of it and the rest is released), released, or it expires after
 * `timeoutSeconds`; exactly one of these happens, once.
 */
import { Context, Effect, Layer, Schema } from "effect"
import {
  AccountFlags, Ledger, TransferFlags, type CreateAccountStatusName, type CreateTransferStatusName, type LedgerError, type TransferInput
} from "../../src/index.ts"

// --- domain errors --------------------------------------------------------------------------------

/** A wallet or operation id the service cannot use: 0, or one of the ids it keeps for itself. */
export class InvalidId extends Schema.TaggedError<InvalidId>()("InvalidId", { id: Schema.BigInt }) {
  override get message() {
    return `${this.id} is not a usable id: ids are 1 to 2^128 - 3 and not the bank's`
  }
}

/** Amounts are positive. */
export class InvalidAmount extends Schema.TaggedError<InvalidAmount>()("InvalidAmount", { amount: Schema.BigInt }) {
  override get message() {
    return `an amount must be positive, not ${this.amount}`
  }
}

export class WalletNotFound extends Schema.TaggedError<WalletNotFound>()("WalletNotFound", { wallet: Schema.BigInt }) {
  override get message() {
    return `no wallet ${this.wallet}`
  }
}

/** The wallet's available funds (what it holds, minus its holds) do not cover the amount. Nothing moved. */
export class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  wallet: Schema.BigInt,
  amount: Schema.BigInt
}) {
  override get message() {
    return `wallet ${this.wallet} cannot pay ${this.amount}: not enough available funds`
  }
}

export class SameWallet extends Schema.TaggedError<SameWallet>()("SameWallet", { wallet: Schema.BigInt }) {
  override get message() {
    return `wallet ${this.wallet} cannot pay itself`
  }
}

export class HoldNotFound extends Schema.TaggedError<HoldNotFound>()("HoldNotFound", { hold: Schema.BigInt }) {
  override get message() {
    return `no hold ${this.hold}`
  }
}

/** The hold was already captured, released, or it expired: it is resolved once. */
export class HoldClosed extends Schema.TaggedError<HoldClosed>()("HoldClosed", {
  hold: Schema.BigInt,
  outcome: Schema.Literals(["captured", "released", "expired"])
}) {
  override get message() {
    return `hold ${this.hold} is closed: it was ${this.outcome}`
  }
}

export class CaptureExceedsHold extends Schema.TaggedError<CaptureExceedsHold>()("CaptureExceedsHold", {
  hold: Schema.BigInt,
  amount: Schema.BigInt
}) {
  override get message() {
    return `hold ${this.hold} holds less than ${this.amount}`
  }
}

/** The id already names another operation (or a failed attempt, or a foreign account): use a fresh one. */
export class IdConflict extends Schema.TaggedError<IdConflict>()("IdConflict", { id: Schema.BigInt, status: Schema.String }) {
  override get message() {
    return `id ${this.id} is already taken (${this.status}); use a new id`
  }
}

export type WalletError =
  | InvalidId | InvalidAmount | WalletNotFound | InsufficientFunds | SameWallet | HoldNotFound | HoldClosed | CaptureExceedsHold | IdConflict

// --- the service ----------------------------------------------------------------------------------

export interface Balance {
  /** What the wallet can spend: received minus spent minus held. Never negative. */
  readonly available: bigint
  /** Held for payees, until captured, released or expired. */
  readonly held: bigint
  /** Held for this wallet by payers. */
  readonly incoming: bigint
}

export interface WalletApi {
  /** Opens an empty wallet; opening an open wallet again does nothing. */
  readonly open: (wallet: bigint) => Effect.Effect<void, InvalidId | IdConflict | LedgerError>
  /** Money from outside (the bank) into a wallet. */
  readonly deposit: (operation: { readonly id: bigint; readonly wallet: bigint; readonly amount: bigint }) => Effect.Effect<void, WalletError | LedgerError>
  /** Money out of a wallet, to the outside. */
  readonly withdraw: (operation: { readonly id: bigint; readonly wallet: bigint; readonly amount: bigint }) => Effect.Effect<void, WalletError | LedgerError>
  readonly transfer: (operation: { readonly id: bigint; readonly from: bigint; readonly to: bigint; readonly amount: bigint }) => Effect.Effect<void, WalletError | LedgerError>
  /** Reserves `amount` of `from` for `to`; `id` names the hold. With `timeoutSeconds`, it expires unless resolved first. */
  readonly hold: (operation: {
    readonly id: bigint; readonly from: bigint; readonly to: bigint; readonly amount: bigint; readonly timeoutSeconds?: number
  }) => Effect.Effect<void, WalletError | LedgerError>
  /** Pays the payee `amount` of the hold (all of it when omitted) and releases the rest. */
  readonly capture: (operation: { readonly id: bigint; readonly hold: bigint; readonly amount?: bigint }) => Effect.Effect<void, WalletError | LedgerError>
  /** Gives the held amount back to the payer. */
  readonly release: (operation: { readonly id: bigint; readonly hold: bigint }) => Effect.Effect<void, WalletError | LedgerError>
  readonly balance: (wallet: bigint) => Effect.Effect<Balance, InvalidId | WalletNotFound | LedgerError>
}

export interface WalletOptions {
  /** The ledger (currency) of the wallets; default 1. */
  readonly ledger?: number
  /** The transfer code of the wallet's movements; default 1. */
  readonly code?: number
}

export class Wallet extends Context.Service<Wallet, WalletApi>()("scarab-examples/Wallet") {
  /** The wallet service over whichever Ledger layer is provided; opens the bank account on start. */
  static readonly layer = (options: WalletOptions = {}): Layer.Layer<Wallet, LedgerError, Ledger> =>
    Layer.effect(Wallet, Effect.gen(function* () {
      const ledger = yield* Ledger
      const books = { ledger: options.ledger ?? 1, code: options.code ?? 1 }
      const [bank] = yield* ledger.createAccounts([{ id: bankId, ledger: books.ledger, code: books.code }])
      if (bank!.status !== "created" && bank!.status !== "exists") {
        return yield* Effect.die(new Error(`wallet: the bank account could not be opened: ${bank!.status}`))
      }
      return Wallet.of(makeWallet(ledger, books))
    }))
}

/** The bank's account id, and the largest id left to wallets and operations (TigerBeetle refuses 2^128 - 1). */
export const bankId = (1n << 128n) - 2n
const idMax = bankId - 1n
/** A capture of "the whole hold" is expressed to the ledger as the largest amount. */
const wholeHold = (1n << 128n) - 1n

function makeWallet(ledger: Ledger["Service"], books: { readonly ledger: number; readonly code: number }): WalletApi {
  /** Submits one transfer and turns its status into success or the domain error it means. */
  const move = (transfer: TransferInput, meaning: Meaning) => Effect.flatMap(ledger.createTransfers([transfer]), ([result]) => {
    const status = result!.status
    if (status === "created" || status === "exists") return Effect.void
    const error = meaning(status) ?? commonMeaning(status, transfer)
    return error === undefined
      ? Effect.die(new Error(`wallet: unexpected ledger status ${status} for transfer ${transfer.id}`))
      : Effect.fail(error)
  })

  /** `ids`: the ids the caller chose (the operation's and the wallets'); the bank is never one of them. */
  const payment = (ids: ReadonlyArray<bigint>, id: bigint, from: bigint, to: bigint, amount: bigint, flags = 0, timeout = 0) =>
    Effect.andThen(Effect.andThen(validIds(ids), validAmount(amount)), move(
      { id, debit_account_id: from, credit_account_id: to, amount, ledger: books.ledger, code: books.code, flags, timeout },
      (status) => status === "exceeds_credits" ? new InsufficientFunds({ wallet: from, amount }) : undefined))

  return {
    open: (wallet) => Effect.andThen(validIds([wallet]), Effect.flatMap(
      ledger.createAccounts([{ id: wallet, ledger: books.ledger, code: books.code, flags: AccountFlags.debits_must_not_exceed_credits }]),
      ([result]) => openOutcome(wallet, result!.status))),
    deposit: ({ id, wallet, amount }) => payment([id, wallet], id, bankId, wallet, amount),
    withdraw: ({ id, wallet, amount }) => payment([id, wallet], id, wallet, bankId, amount),
    transfer: ({ id, from, to, amount }) => payment([id, from, to], id, from, to, amount),
    hold: ({ id, from, to, amount, timeoutSeconds }) =>
      payment([id, from, to], id, from, to, amount, TransferFlags.pending, timeoutSeconds ?? 0),
    capture: ({ id, hold, amount }) => Effect.andThen(Effect.all([validIds([id, hold]), ownId(id, hold), amount === undefined ? Effect.void : validAmount(amount)]), move(
      { id, pending_id: hold, amount: amount ?? wholeHold, flags: TransferFlags.post_pending_transfer },
      (status) => holdMeaning(hold, status) ?? (status === "exceeds_pending_transfer_amount" ? new CaptureExceedsHold({ hold, amount: amount! }) : undefined))),
    release: ({ id, hold }) => Effect.andThen(Effect.andThen(validIds([id, hold]), ownId(id, hold)), move(
      { id, pending_id: hold, flags: TransferFlags.void_pending_transfer }, (status) => holdMeaning(hold, status))),
    balance: (wallet) => Effect.andThen(validIds([wallet]), Effect.flatMap(ledger.lookupAccounts([wallet]), ([account]) =>
      account === undefined
        ? Effect.fail(new WalletNotFound({ wallet }))
        : Effect.succeed({
          available: account.credits_posted - account.debits_posted - account.debits_pending,
          held: account.debits_pending,
          incoming: account.credits_pending
        })))
  }
}

/** What a status means for one kind of operation; undefined: see `commonMeaning`. */
type Meaning = (status: CreateTransferStatusName) => WalletError | undefined

/** What a status means for any of the wallet's transfers; undefined: the wallet never builds a transfer that gets it. */
function commonMeaning(status: CreateTransferStatusName, transfer: TransferInput): WalletError | undefined {
  switch (status) {
    case "debit_account_not_found":
      return new WalletNotFound({ wallet: transfer.debit_account_id ?? 0n })
    case "credit_account_not_found":
      return new WalletNotFound({ wallet: transfer.credit_account_id ?? 0n })
    case "accounts_must_be_different":
      return new SameWallet({ wallet: transfer.debit_account_id ?? 0n })
    case "id_already_failed":
    case "exists_with_different_flags":
    case "exists_with_different_debit_account_id":
    case "exists_with_different_credit_account_id":
    case "exists_with_different_amount":
    case "exists_with_different_pending_id":
    case "exists_with_different_timeout":
    case "exists_with_different_code":
    case "exists_with_different_ledger":
    case "exists_with_different_user_data_128":
    case "exists_with_different_user_data_64":
    case "exists_with_different_user_data_32":
      return new IdConflict({ id: transfer.id, status })
    default:
      return undefined
  }
}

/** The statuses of a capture or a release that are about the hold it names. */
function holdMeaning(hold: bigint, status: CreateTransferStatusName): WalletError | undefined {
  switch (status) {
    case "pending_transfer_not_found":
    case "pending_transfer_not_pending": // the id names a payment, not a hold
      return new HoldNotFound({ hold })
    case "pending_transfer_already_posted":
      return new HoldClosed({ hold, outcome: "captured" })
    case "pending_transfer_already_voided":
      return new HoldClosed({ hold, outcome: "released" })
    case "pending_transfer_expired":
      return new HoldClosed({ hold, outcome: "expired" })
    default:
      return undefined
  }
}

function openOutcome(wallet: bigint, status: CreateAccountStatusName): Effect.Effect<void, IdConflict> {
  if (status === "created" || status === "exists") return Effect.void
  // Another account (not a wallet of these books) already has this id.
  if (status.startsWith("exists_with_different_")) return Effect.fail(new IdConflict({ id: wallet, status }))
  return Effect.die(new Error(`wallet: unexpected ledger status ${status} opening wallet ${wallet}`))
}

/**
 * Ids and amounts are checked before anything is sent, so the ledger's answer is about balances
 * and ids in use only. Ids above `idMax` are the service's own (the bank, TigerBeetle's int max).
 */
const validIds = (ids: ReadonlyArray<bigint>): Effect.Effect<void, InvalidId> => Effect.suspend(() => {
  const bad = ids.find((id) => id < 1n || id > idMax)
  return bad === undefined ? Effect.void : Effect.fail(new InvalidId({ id: bad }))
})

/** A capture or a release is a transfer of its own: it cannot reuse its hold's id. */
const ownId = (id: bigint, hold: bigint): Effect.Effect<void, IdConflict> =>
  id !== hold ? Effect.void : Effect.fail(new IdConflict({ id, status: "a capture or release needs an id of its own, not its hold's" }))

const validAmount = (amount: bigint): Effect.Effect<void, InvalidAmount> =>
  amount > 0n ? Effect.void : Effect.fail(new InvalidAmount({ amount }))
