/** Seeds (simulation.md §9): a decimal u64, or a 40-hex-digit git commit hash (its low 64 bits). */
export function parseSeed(text: string): bigint {
  if (/^[0-9a-fA-F]{40}$/.test(text)) return BigInt("0x" + text.slice(24))
  if (!/^[0-9]{1,20}$/.test(text)) throw new Error(`--seed must be a decimal u64 or a 40-hex-digit commit hash, not '${text}'`)
  const seed = BigInt(text)
  if (seed >= 1n << 64n) throw new Error(`--seed ${text} does not fit in 64 bits`)
  return seed
}

/** `--name=value` flags; anything else is an error. */
export function parseFlags(argv: ReadonlyArray<string>, allowed: ReadonlyArray<string>): Map<string, string> {
  const flags = new Map<string, string>()
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (match === null || !allowed.includes(match[1]!)) throw new Error(`unknown argument '${arg}' (allowed: ${allowed.map((a) => "--" + a).join(", ")})`)
    flags.set(match[1]!, match[2] ?? "")
  }
  return flags
}

export function parseCount(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) throw new Error(`--${name} must be a positive integer`)
  return Number(text)
}
