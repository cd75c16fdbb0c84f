import { describe, expect, test } from "bun:test";
import { blake3 } from "@noble/hashes/blake3.js";
import { ItemCache } from "../../src/gossip/item-cache.ts";
import { idKey, idMatches, itemId } from "../../src/gossip/item-id.ts";
import type { GossipItem } from "../../src/gossip/ports.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const item = (s: string, ttl = 3, dataType = 7): GossipItem => ({ id: itemId(dataType, bytes(s)), ttl, dataType, data: bytes(s) });
const names = (c: ItemCache) => c.list().map((i) => new TextDecoder().decode(i.data));

describe("itemId", () => {
  test("is BLAKE3 over the data type as u16 big-endian followed by the data", () => {
    const data = bytes("deadbeef");
    const expected = blake3(new Uint8Array([0x05, 0x39, ...data])); // 1337 = 0x0539
    expect(itemId(1337, data)).toEqual(expected);
    expect(itemId(1337, data).length).toBe(32);
  });

  test("differs by data type and by data; TTL plays no part", () => {
    const data = bytes("x");
    expect(idKey(itemId(1, data))).not.toBe(idKey(itemId(256, data)));
    expect(idKey(itemId(1, data))).not.toBe(idKey(itemId(1, bytes("y"))));
    expect(item("x", 1).id).toEqual(item("x", 9).id);
  });

  test("empty data and the largest data type are fine; a data type outside u16 is a caller bug", () => {
    expect(itemId(0xffff, new Uint8Array(0)).length).toBe(32);
    expect(() => itemId(0x10000, bytes("x"))).toThrow(RangeError);
    expect(() => itemId(-1, bytes("x"))).toThrow(RangeError);
  });

  test("idMatches accepts only the true ID and never throws on malformed claims", () => {
    const it = item("hello");
    expect(idMatches(it.id, it.dataType, it.data)).toBe(true);
    const forged = it.id.slice();
    forged[31] ^= 1;
    expect(idMatches(forged, it.dataType, it.data)).toBe(false);
    expect(idMatches(it.id.subarray(0, 31), it.dataType, it.data)).toBe(false);
    expect(idMatches(new Uint8Array(0), it.dataType, it.data)).toBe(false);
    // Same low 16 bits as 7 but not a u16: must not pass as type 7.
    expect(idMatches(it.id, 7 + 0x10000, it.data)).toBe(false);
    expect(idMatches(it.id, 1.5, it.data)).toBe(false);
  });

  test("idMatches remembers only the very arrays it matched, with their data type", () => {
    const it = item("remembered");
    expect(idMatches(it.id, it.dataType, it.data)).toBe(true);
    expect(idMatches(it.id, it.dataType + 1, it.data)).toBe(false); // same arrays, other type
    const copy = it.id.slice(); // an equal ID in a fresh array (a copy from a peer) is checked, and matches
    expect(idMatches(copy, it.dataType, it.data)).toBe(true);
    const other = item("other");
    expect(idMatches(it.id, it.dataType, other.data)).toBe(false);
    expect(idMatches(copy, it.dataType, it.data.slice())).toBe(true);
  });

  test("idKey reads only the view it is given", () => {
    const buf = new Uint8Array([9, 1, 2, 3, 9]);
    expect(idKey(buf.subarray(1, 4))).toBe("010203");
  });
});

describe("ItemCache", () => {
  test("keeps the last `capacity` items, oldest first, evicting the oldest", () => {
    const c = new ItemCache(3);
    for (const s of ["a", "b", "c", "d", "e"]) c.put(item(s));
    expect(names(c)).toEqual(["c", "d", "e"]);
    expect(c.size).toBe(3);
    expect(c.has(idKey(item("a").id))).toBe(false);
    expect(c.has(idKey(item("e").id))).toBe(true);
  });

  test("over many evictions (and items put again meanwhile) it always holds the last `capacity` new items in order", () => {
    const c = new ItemCache(3);
    const expected: string[] = [];
    for (let i = 0; i < 20; i++) {
      const s = `i${i}`;
      c.put(item(s));
      expected.push(s);
      if (i % 3 === 0) expect(c.put(item(expected[expected.length - 2] ?? s))).toBe(false); // still cached: no change
      expect(names(c)).toEqual(expected.slice(-3));
    }
    expect(c.has(idKey(item("i16").id))).toBe(false);
    expect(c.has(idKey(item("i17").id))).toBe(true);
  });

  test("an item put again keeps its place and its first TTL", () => {
    const c = new ItemCache(3);
    c.put(item("a", 5));
    c.put(item("b"));
    expect(c.put(item("a", 9))).toBe(false);
    c.put(item("c"));
    c.put(item("d"));
    expect(names(c)).toEqual(["b", "c", "d"]);
    const c2 = new ItemCache(2);
    c2.put(item("a", 5));
    c2.put(item("a", 9));
    expect(c2.list()[0]!.ttl).toBe(5);
  });

  test("capacity 0 caches nothing; a bad capacity is refused", () => {
    const c = new ItemCache(0);
    expect(c.put(item("a"))).toBe(false);
    expect(c.list()).toEqual([]);
    expect(() => new ItemCache(-1)).toThrow(RangeError);
    expect(() => new ItemCache(1.5)).toThrow(RangeError);
  });

  test("list() is a copy: changing it does not change the cache", () => {
    const c = new ItemCache(2);
    c.put(item("a"));
    c.list().pop();
    expect(c.size).toBe(1);
  });
});
