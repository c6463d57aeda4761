/**
 * `scarab inspect`'s arguments: `inspect <subcommand> [<path>] [--json]`. Apart from inspect.ts,
 * so that a usage mistake is reported without loading Effect and the storage code (main.ts).
 */
import { type Parsed, UsageError } from "./arguments.ts"

/** The subcommands, in the order help lists them; `constants` alone takes no data file. */
export const inspectSubcommands = ["superblock", "wal", "replies", "grid", "integrity", "constants"] as const
export type InspectSubcommand = (typeof inspectSubcommands)[number]

export interface InspectOptions {
  readonly subcommand: InspectSubcommand
  /** The data file; undefined only for `constants`. */
  readonly path: string | undefined
  readonly json: boolean
}

export function inspectOptions(parsed: Parsed): InspectOptions {
  parsed.allowOnly(["json"])
  const [subcommand, ...rest] = parsed.positional
  const names = inspectSubcommands.join(", ")
  if (subcommand === undefined) throw new UsageError(`inspect needs a subcommand: ${names}`)
  const known = inspectSubcommands.find((name) => name === subcommand)
  if (known === undefined) throw new UsageError(`unknown inspect subcommand '${subcommand}' (one of ${names})`)
  const json = parsed.switchGiven("json")
  if (known === "constants") {
    if (rest.length > 0) throw new UsageError(`inspect constants takes no data file, got ${rest.join(" ")}`)
    return { subcommand: known, path: undefined, json }
  }
  if (rest.length !== 1) throw new UsageError(rest.length === 0 ? "the data file's path is missing" : `one data file expected, got ${rest.join(" ")}`)
  return { subcommand: known, path: rest[0]!, json }
}
