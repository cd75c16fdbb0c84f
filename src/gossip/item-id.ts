/**
 * Item IDs: BLAKE3(dataType as u16 big-endian ‖ data), 32 bytes. TTL is excluded so the same item arriving with another
 * TTL is still a duplicate, and the ID binds the content so nobody can claim an ID for other bytes.
 * No I/O. The only state is two memos keyed weakly by the very arrays (never by content): the key made for an ID
 * array (idKey), and the ID array known to be the ID of a data array (idMatches). Both are sound because nothing
 * writes into an item's ID or data once the item exists (every copy from a peer is a fresh array; in the simulator
 * all copies of an item share the publisher's arrays, which is where the memos pay).
 */
import { ITEM_ID_BYTES, MAX_DATA_TYPE } from "../defaults.ts";
import { blake3 } from "../util/blake3-wasm.ts";

const PREFIX = new Uint8Array(2);
/** Data array → the ID array computed or checked for it (with its data type). */
const idOfData = new WeakMap<Uint8Array, { id: Uint8Array; dataType: number }>();

export function isDataType(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= MAX_DATA_TYPE;
}

/** The ID of an item. Throws RangeError for a data type outside u16: a caller bug (peer input is checked first). */
export function itemId(dataType: number, data: Uint8Array): Uint8Array {
  if (!isDataType(dataType)) throw new RangeError(`itemId: data type ${dataType} is not a u16`);
  // WebAssembly BLAKE3 (src/util/blake3-wasm.ts, equal to @noble/hashes: test/util/blake3-wasm.test.ts), several
  // times faster; the prefix and the data are copied into its memory side by side.
  PREFIX[0] = dataType >>> 8;
  PREFIX[1] = dataType & 0xff;
  const id = blake3(PREFIX, data);
  idOfData.set(data, { id, dataType });
  return id;
}

/** True if `id` is exactly the ID of (dataType, data). False (never a throw) for any malformed claim. */
export function idMatches(id: Uint8Array, dataType: number, data: Uint8Array): boolean {
  if (id.length !== ITEM_ID_BYTES || !isDataType(dataType)) return false;
  // The very same arrays already matched (a copy of an item this process made or checked): no hash again.
  const known = idOfData.get(data);
  if (known !== undefined && known.id === id && known.dataType === dataType) return true;
  const actual = itemId(dataType, data);
  // Not secret material, so no constant-time compare is needed.
  for (let i = 0; i < ITEM_ID_BYTES; i++) if (actual[i] !== id[i]) return false;
  idOfData.set(data, { id, dataType });
  return true;
}

/** Keys already made, by ID array: in the simulator every copy of an item carries the publisher's ID array, and a
 *  node handles each ID several times (arrival, validation, cache). Weak, so an ID's entry goes with its array.
 *  Sound because nothing writes into an ID once it is made (a forged one is a fresh array). */
const keys = new WeakMap<Uint8Array, string>();

/** Map key for an ID (hex). Used by the seen and item caches. The same array always gets the same string object,
 *  so map lookups with it reuse its hash. */
export function idKey(id: Uint8Array): string {
  let key = keys.get(id);
  if (key === undefined) {
    key = id.toHex(); // native, no Buffer per call: about a quarter of Buffer#toString("hex")'s cost here
    // A view into a frame (never at its start: the Payload's tags come first) is a copy's ID as decoded from a link,
    // never seen again, so remembering it would only cost (a weak entry per copy: 0.2 µs here, and work for the
    // collector). byteOffset, not .buffer: reading a small array's buffer makes the engine allocate one.
    if (id.byteOffset === 0) keys.set(id, key);
  }
  return key;
}
