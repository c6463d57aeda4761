/**
 * Sector-aligned I/O memory. O_DIRECT needs buffers whose address is a multiple of the sector
 * size; JavaScript cannot allocate or even observe that, so the native addon allocates it
 * (posix_memalign) and hands it over as an external ArrayBuffer. Without the addon, memory is
 * ordinary (and the layers then refuse Direct I/O, see disk.ts).
 */
import { native } from "../native.ts"
import { sectorSize } from "../storage/storage.ts"

/** Whether `allocateSectorAligned` really returns aligned memory in this process. */
export const alignedMemoryAvailable = native !== undefined

export function allocateSectorAligned(sizeBytes: number): Uint8Array {
  return native === undefined
    ? new Uint8Array(sizeBytes)
    : new Uint8Array(native.allocateAligned(sizeBytes, sectorSize))
}
