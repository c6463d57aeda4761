/**
 * The native addon: it is built (npm install builds it; only SCARAB_NATIVE=skip/off may leave it
 * out), its AES-NI checksum matches every shared vector and the TypeScript reference on random
 * inputs, its aligned buffers are aligned-sized and zeroed, its fallocate reserves real space,
 * and its ring rejects bad arguments instead of handing them to the kernel.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Prng } from "../../src/prng.ts"
import { native, nativeUnavailableReason, RingOp } from "../../src/native.ts"
import { checksum as checksumTypeScript, checksumToBigint } from "../../src/protocol/checksum.ts"
import { checksum, checksumImplementation } from "../../src/protocol/checksum_native.ts"
import { loadCapturedMessages, loadChecksumVectors } from "../protocol/checksum_vectors.ts"

const nativeOptedOut = process.env.SCARAB_NATIVE === "skip" || process.env.SCARAB_NATIVE === "off"

describe("native addon", () => {
  it.skipIf(nativeOptedOut)("was built by npm install and loads", () => {
    assert.isDefined(native, nativeUnavailableReason)
  })

  it.skipIf(native === undefined || !native.aesNi)("the AES-NI checksum is the one in use and reproduces every vector and message", () => {
    assert.strictEqual(checksumImplementation, "native")
    for (const vector of loadChecksumVectors()) {
      assert.strictEqual(checksumToBigint(checksum(vector.input)), vector.checksum, vector.name)
    }
    for (const message of loadCapturedMessages()) {
      assert.deepStrictEqual(checksum(message.bytes.subarray(16, 256)), message.bytes.subarray(0, 16), message.file)
      assert.deepStrictEqual(checksum(message.bytes.subarray(256)), message.bytes.subarray(32, 48), message.file)
    }
  })

  it.skipIf(native === undefined || !native.aesNi)("the AES-NI checksum equals the TypeScript one on random inputs of every length and alignment", () => {
    const prng = new Prng(17)
    const backing = new Uint8Array(9000)
    for (let i = 0; i < backing.length; i++) backing[i] = prng.below(256)
    for (let iteration = 0; iteration < 400; iteration++) {
      const start = prng.below(64)
      const length = iteration < 300 ? iteration : prng.below(backing.length - 64)
      const input = backing.subarray(start, start + length)
      assert.deepStrictEqual(checksum(input), checksumTypeScript(input), `length ${length} at ${start}`)
    }
  })

  it.skipIf(native === undefined)("rejects a checksum target too small instead of writing past it", () => {
    assert.throws(() => native?.checksum(new Uint8Array(4), new Uint8Array(20), 5), /target too small/)
  })

  it.skipIf(native === undefined)("allocates zeroed memory of the requested size and rejects bad sizes and alignments", () => {
    const buffer = native?.allocateAligned(3 * 4096, 4096)
    assert.strictEqual(buffer?.byteLength, 3 * 4096)
    assert.isTrue(new Uint8Array(buffer ?? new ArrayBuffer(1)).every((byte) => byte === 0))
    assert.throws(() => native?.allocateAligned(0, 4096), /size/)
    assert.throws(() => native?.allocateAligned(4096, 1000), /alignment/)
  })

  it.skipIf(native === undefined)("its memory is what O_DIRECT needs, where a misaligned view is refused by the kernel", () => {
    const path = nodePath.join(os.tmpdir(), `scarab-direct-${process.pid}.data`)
    fs.writeFileSync(path, new Uint8Array(8192).fill(1))
    const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_DIRECT)
    try {
      const memory = native?.allocateAligned(2 * 4096, 4096) ?? new ArrayBuffer(0)
      assert.strictEqual(fs.readSync(fd, new Uint8Array(memory, 0, 4096), 0, 4096, 0), 4096)
      assert.strictEqual(fs.readSync(fd, new Uint8Array(memory, 4096, 4096), 0, 4096, 4096), 4096)
      assert.throws(() => fs.readSync(fd, new Uint8Array(memory, 1, 4096), 0, 4096, 0), /EINVAL/)
    } finally {
      fs.closeSync(fd)
      fs.rmSync(path)
    }
  })

  it.skipIf(native === undefined)("allocateFile reserves the space (not a sparse file) and refuses bad arguments", () => {
    const addon = native
    if (addon === undefined) return
    const path = nodePath.join(os.tmpdir(), `scarab-allocate-${process.pid}.data`)
    const fd = fs.openSync(path, "w+")
    try {
      assert.strictEqual(addon.allocateFile(fd, 1024 * 1024), 0)
      const stat = fs.fstatSync(fd)
      assert.strictEqual(stat.size, 1024 * 1024)
      assert.isAtLeast(stat.blocks * 512, 1024 * 1024)
      assert.throws(() => addon.allocateFile(-1, 4096), /file descriptor/)
      assert.throws(() => addon.allocateFile(fd, 0), /size/)
    } finally {
      fs.closeSync(fd)
      fs.rmSync(path)
    }
  })

  it.skipIf(native === undefined)("the ring refuses bad arguments before the kernel sees them, and is unusable once closed", () => {
    const addon = native
    if (addon === undefined) return
    const results = new Int32Array(64)
    assert.throws(() => addon.ringCreate(3, results, () => {}), /power of two/)
    assert.throws(() => addon.ringCreate(64, results, () => {}), /results/)
    const ring = addon.ringCreate(16, results, () => {})
    const path = nodePath.join(os.tmpdir(), `scarab-ring-${process.pid}.data`)
    const fd = fs.openSync(path, "w+")
    try {
      assert.throws(() => addon.ringPrepare(ring, 7 as RingOp, fd, null, 0, 0, 0), /invalid op/)
      assert.throws(() => addon.ringPrepare(ring, RingOp.read, fd, new Uint8Array(8), 16, 0, 0), /at least/)
      assert.throws(() => addon.ringPrepare(ring, RingOp.read, -1, new Uint8Array(8), 8, 0, 0), /invalid/)
      addon.ringClose(ring)
      assert.throws(() => addon.ringSubmit(ring), /closed/)
    } finally {
      fs.closeSync(fd)
      fs.rmSync(path)
    }
  })
})
