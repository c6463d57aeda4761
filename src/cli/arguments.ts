/**
 * Command-line parsing for `scarab`: `command --flag=value … <path>`, with one clear sentence
 * for every mistake. `-h` is `--help`; `scarab --help [command]` and `scarab -h [command]` are
 * `scarab help [command]`, and `scarab --version` is `scarab version`.
 */
import { isIPv6 } from "node:net"
import { assert } from "../assert.ts"
import { u128Max } from "../protocol/records.ts"
import { commandNamed } from "./usage.ts"

export class UsageError extends Error {
  override readonly name = "UsageError"
}

export interface Parsed {
  readonly command: string | undefined
  readonly flags: ReadonlyMap<string, string>
  readonly positional: ReadonlyArray<string>
  /** The value of a flag that must be given. */
  required(name: string): string
  /** The single positional argument: the data file. */
  path(): string
  /** Whether a switch (a flag without a value, such as --verbose) is given. */
  switchGiven(name: string): boolean
  /**
   * Refuses flags other than these (and --help). For a `scarab` command they must be the options
   * usage.ts documents for it, which --help lists: a difference is a defect.
   */
  allowOnly(names: ReadonlyArray<string>): void
}

/** Spellings that stand for a command when they come first. */
const leadingAliases: ReadonlyMap<string, string> = new Map([["--help", "help"], ["-h", "help"], ["--version", "version"]])

export function parseArguments(argvGiven: ReadonlyArray<string>): Parsed {
  const alias = argvGiven.length === 0 ? undefined : leadingAliases.get(argvGiven[0]!)
  const argv = alias === undefined ? argvGiven : [alias, ...argvGiven.slice(1)]
  const flags = new Map<string, string>()
  const positional: Array<string> = []
  for (const given of argv.slice(1)) {
    const argument = given === "-h" ? "--help" : given
    if (argument.startsWith("--")) {
      const equals = argument.indexOf("=")
      const name = equals < 0 ? argument.slice(2) : argument.slice(2, equals)
      if (name === "") throw new UsageError(`'${argument}' is not a flag`)
      if (flags.has(name)) throw new UsageError(`--${name} is given twice`)
      flags.set(name, equals < 0 ? "" : argument.slice(equals + 1))
    } else {
      positional.push(argument)
    }
  }
  return {
    command: argv[0],
    flags,
    positional,
    required(name) {
      const value = flags.get(name)
      if (value === undefined || value === "") throw new UsageError(`--${name}=<value> is required`)
      return value
    },
    path() {
      if (positional.length !== 1) throw new UsageError(positional.length === 0 ? "the data file's path is missing" : `one data file expected, got ${positional.join(" ")}`)
      return positional[0]!
    },
    switchGiven(name) {
      const value = flags.get(name)
      if (value !== undefined && value !== "") throw new UsageError(`--${name} takes no value, got '${value}'`)
      return value !== undefined
    },
    allowOnly(names) {
      // Tools beside the binary (bench/client.ts) parse their own commands, which usage.ts does not list.
      const documented = commandNamed(argv[0] ?? "")?.options.map((option) => option.name)
      assert(documented === undefined || [...names].sort().join(",") === [...documented].sort().join(","),
        () => `'${argv[0]}' accepts --${names.join(", --")} but src/cli/usage.ts documents --${documented?.join(", --")}`)
      for (const name of flags.keys()) {
        if (name !== "help" && !names.includes(name)) throw new UsageError(`unknown flag --${name} for '${argv[0]}'`)
      }
    }
  }
}

/** A decimal u128 (TigerBeetle's cluster ids are decimal). */
export function parseU128(text: string, what: string): bigint {
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`${what} must be a decimal number, not '${text}'`)
  const value = BigInt(text)
  if (value > u128Max) throw new UsageError(`${what} must be below 2^128`)
  return value
}

export function parseUint(text: string, what: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`${what} must be a whole number, not '${text}'`)
  const value = Number(text)
  if (value < min || value > max) throw new UsageError(`${what} must be between ${min} and ${max}, not ${value}`)
  return value
}

/**
 * A size as TigerBeetle writes it: bytes, or a whole number of KiB, MiB, GiB or TiB (the unit
 * in any case, `_` between digits allowed), at most 2^53 - 1 bytes.
 */
export function parseByteSize(text: string, what: string): number {
  const match = /^([0-9][0-9_]*)(kib|mib|gib|tib)?$/i.exec(text)
  if (match === null) throw new UsageError(`${what} must be a size such as 1GiB or 512MiB (KiB, MiB, GiB or TiB), not '${text}'`)
  const bytes = Number(match[1]!.replaceAll("_", "")) * 1024 ** ["", "kib", "mib", "gib", "tib"].indexOf((match[2] ?? "").toLowerCase())
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${what}: ${text} is too large`)
  return bytes
}

/** A duration with its unit, as `500ms`, `5s`, `2m` or `1h`, in milliseconds (at least 1, at most a day). */
export function parseDurationMs(text: string, what: string): number {
  const match = /^([0-9]+)(ms|s|m|h)$/.exec(text)
  if (match === null) throw new UsageError(`${what} must be a duration with its unit (500ms, 5s, 2m, 1h), not '${text}'`)
  const ms = Number(match[1]) * durationUnitsMs[match[2]!]!
  if (ms < 1 || ms > dayMs) throw new UsageError(`${what} must be between 1ms and 24h, not ${text}`)
  return ms
}

const dayMs = 24 * 60 * 60 * 1000
const durationUnitsMs: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60 * 1000, h: 60 * 60 * 1000 }

/**
 * `3000` (on 127.0.0.1), `host:3000`, `host` (port 3001, TigerBeetle's default), and IPv6 as
 * TigerBeetle writes it: `[::1]:3000`, or `[::1]` (port 3001). A bare IPv6 literal is refused:
 * `::1:3000` could be an address or an address and a port. `portMin` 0 lets a listener take
 * port 0: the kernel picks a free port, which the listener then names.
 */
export function parseAddress(text: string, portMin: 0 | 1 = 1): { readonly host: string; readonly port: number } {
  if (text === "") throw new UsageError("an address is empty (a comma too many?)")
  if (/^[0-9]+$/.test(text)) return { host: "127.0.0.1", port: parseUint(text, "a port", portMin, 65535) }
  if (text.startsWith("[")) {
    const close = text.indexOf("]")
    const host = close < 0 ? "" : text.slice(1, close)
    if (!isIPv6(host)) throw new UsageError(`address '${text}' is not an IPv6 address in brackets, as in [::1]:3001`)
    const rest = text.slice(close + 1)
    if (rest === "") return { host, port: portDefault }
    if (!rest.startsWith(":")) throw new UsageError(`address '${text}': a port follows the brackets after a colon, as in [::1]:3001`)
    return { host, port: parseUint(rest.slice(1), `the port of '${text}'`, portMin, 65535) }
  }
  const colon = text.indexOf(":")
  if (colon < 0) return { host: text, port: portDefault }
  if (colon !== text.lastIndexOf(":")) throw new UsageError(`address '${text}' has more than one colon: write an IPv6 address in brackets, as in [::1]:3001`)
  const host = text.slice(0, colon)
  if (host === "") throw new UsageError(`address '${text}' has no host`)
  return { host, port: parseUint(text.slice(colon + 1), `the port of '${text}'`, portMin, 65535) }
}

/** `host:port`, with an IPv6 host in brackets: what `parseAddress` reads back. */
export function formatAddressText(address: { readonly host: string; readonly port: number }): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}

/** TigerBeetle's port when an address names none. */
const portDefault = 3001
