import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // Timeouts bound liveness only, never speed: a hung test must fail, a slow machine must not
    // make one fail. On an idle 2-core machine the slowest test takes under a minute; CI runs on
    // a shared machine where the same test can take ten times as long (a load average of 12 on
    // 2 cores was measured to slow tests 5-25 times). No test sets a shorter timeout of its own.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // Two cores: more workers only add contention.
    maxWorkers: 2
  }
})
