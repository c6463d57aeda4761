#!/usr/bin/env node
// The `scarab` command. An installed package runs the compiled JavaScript in dist/ (Node does not
// strip types inside node_modules); a checkout, which has src/, runs the TypeScript sources, as
// the tests and `npm start` do, so `npx scarab` there never runs a stale build.
import { existsSync } from "node:fs"

const source = new URL("../src/cli/main.ts", import.meta.url)
await import(existsSync(source) ? source.href : new URL("../dist/cli/main.js", import.meta.url).href)
