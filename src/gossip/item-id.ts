/**
 * Item IDs: BLAKE3(dataType as u16 big-endian ‖ data), 32 bytes. TTL is excluded so the same item arriving with another
 * TTL is still a duplicate, and the ID binds the content so nobody can claim an ID for other bytes.
 * Pure: no state, no I/O.
 */
import { blake3 } from "@noble/hashes/blake3.js";
import { ITEM_ID_BYTES, MAX_DATA_TYPE } from "../defaults.ts";

export function isDataType(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= MAX_DATA_TYPE;
}

/** The ID of an item. Throws RangeError for a data type outside u16: a caller bug (peer input is checked first). */
export function itemId(dataType: number, data: Uint8Array): Uint8Array {
  if (!isDataType(dataType)) throw new RangeError(`itemId: data type ${dataType} is not a u16`);
  // Hash the 2-byte prefix and the data incrementally: no copy of the (up to 64 KiB) data.
  const prefix = new Uint8Array([dataType >>> 8, dataType & 0xff]);
  return blake3.create().update(prefix).update(data).digest();
}

/** True if `id` is exactly the ID of (dataType, data). False (never a throw) for any malformed claim. */
export function idMatches(id: Uint8Array, dataType: number, data: Uint8Array): boolean {
  if (id.length !== ITEM_ID_BYTES || !isDataType(dataType)) return false;
  const actual = itemId(dataType, data);
  // Not secret material, so no constant-time compare is needed.
  for (let i = 0; i < ITEM_ID_BYTES; i++) if (actual[i] !== id[i]) return false;
  return true;
}

/** Map key for an ID (hex). Used by the seen and item caches. */
export function idKey(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString("hex");
}
