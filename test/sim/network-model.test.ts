import { describe, expect, test } from "bun:test";
import { CoordinateLatency, FixedLatency, Wire, newDirection, parseLatency, powSolveMs } from "../../src/sim/network-model.ts";
import { FRAME_OVERHEAD_BYTES, PayloadSizer, addToTurn, newTurnBatch, peerListBytes, varintBytes } from "../../src/sim/wire-sizes.ts";
import { encodeBatch, encodeLinkMessage } from "../../src/p2p/wire.ts";
import { seededRandom } from "../../src/util/random.ts";

function wire(overrides: Partial<ConstructorParameters<typeof Wire>[0]> = {}): Wire {
  const w = new Wire({ latency: new FixedLatency(10), jitter: 0, loss: 0, uplinkBitsPerSecond: Infinity, random: seededRandom(1), ...overrides });
  w.place(0);
  w.place(1);
  return w;
}

describe("latency models", () => {
  test("coordinates: RTTs spread over about 10–300 ms with the median near 100 ms, symmetric", () => {
    const model = new CoordinateLatency(seededRandom(7));
    const n = 2000;
    for (let i = 0; i < n; i++) model.place(i);
    const random = seededRandom(8);
    const rtts: number[] = [];
    for (let k = 0; k < 50_000; k++) {
      const a = Math.floor(random() * n);
      const b = Math.floor(random() * n);
      if (a === b) continue;
      expect(model.oneWayMs(a, b)).toBe(model.oneWayMs(b, a));
      rtts.push(2 * model.oneWayMs(a, b));
    }
    rtts.sort((x, y) => x - y);
    const q = (p: number) => rtts[Math.floor(p * (rtts.length - 1))]!;
    expect(q(0)).toBeGreaterThanOrEqual(8);
    expect(q(0.01)).toBeLessThan(40);
    expect(q(0.5)).toBeGreaterThan(85);
    expect(q(0.5)).toBeLessThan(115);
    expect(q(0.99)).toBeGreaterThan(180);
    expect(q(1)).toBeLessThanOrEqual(320);
  });

  test("parseLatency: coordinates, fixed:MS (one way), anything else refused", () => {
    expect(parseLatency("fixed:25", seededRandom(1)).oneWayMs(0, 1)).toBe(25);
    expect(parseLatency("coordinates", seededRandom(1))).toBeInstanceOf(CoordinateLatency);
    expect(() => parseLatency("gaussian", seededRandom(1))).toThrow(RangeError);
  });
});

describe("Wire", () => {
  test("a frame arrives one-way latency later; jitter adds at most its fraction and never reorders a direction", () => {
    expect(wire().arrival(0, 1, 100, 5, newDirection(), false)).toBe(15);
    const w = wire({ jitter: 0.5, random: seededRandom(3) });
    const dir = newDirection();
    let last = 0;
    for (let t = 0; t < 1000; t += 0.5) {
      const at = w.arrival(0, 1, 100, t, dir, false);
      expect(at).toBeGreaterThanOrEqual(t + 10);
      expect(at).toBeGreaterThanOrEqual(last); // TCP order
      last = at;
    }
  });

  test("loss delays a frame by a retransmission (≥ 200 ms + RTT), it never drops it", () => {
    const w = wire({ loss: 1 });
    expect(w.arrival(0, 1, 100, 0, newDirection(), false)).toBe(10 + 200 + 20);
  });

  test("a finite uplink serialises frames FIFO and reports the backlog", () => {
    const w = wire({ uplinkBitsPerSecond: 8_000_000 }); // 1 byte per µs: 1000 bytes = 1 ms
    const a = newDirection();
    const b = newDirection();
    expect(w.arrival(0, 1, 1000, 0, a, false)).toBeCloseTo(11, 9);
    expect(w.arrival(0, 1, 1000, 0, b, false)).toBeCloseTo(12, 9); // waits for the first on the same uplink
    expect(w.backlog(a, 0.5)).toBe(1000);
    expect(w.backlog(a, 1)).toBe(0);
    expect(w.backlog(b, 1.5)).toBe(1000);
    expect(w.backlog(b, 2)).toBe(0);
  });

  test("proof-of-work solve time: mean 2^difficulty / rate", () => {
    const random = seededRandom(5);
    let sum = 0;
    for (let i = 0; i < 20_000; i++) sum += powSolveMs(22, 6.3e6, random);
    expect(sum / 20_000).toBeGreaterThan(0.95 * ((2 ** 22 / 6.3e6) * 1000));
    expect(sum / 20_000).toBeLessThan(1.05 * ((2 ** 22 / 6.3e6) * 1000));
    expect(powSolveMs(0, 1, random)).toBe(0);
  });
});

describe("wire sizes", () => {
  const item = (n: number, ttl = 0) => ({ id: new Uint8Array(32).fill(1), ttl, dataType: 0x51a1, data: new Uint8Array(n) });

  test("payload sizes are the real encoder's, plus frame and tag when alone", () => {
    const sizer = new PayloadSizer();
    for (const n of [0, 1, 100, 127, 128, 1024, 16384, 65527]) {
      for (const [ttl, dataType, hops] of [[0, 0x51a1, 0], [3, 1, 1], [255, 0, 300], [1, 65535, 127], [0, 128, 128]] as const) {
        const it = { ...item(n, ttl), dataType, hops };
        // What src/node.ts puts on the wire for an item (hops 0 left out, capped at 255).
        const wireHops = hops ? Math.min(hops, 255) : undefined;
        const real = encodeLinkMessage({ kind: { $case: "payload", value: { messageId: it.id, ttl, dataType, data: it.data, hops: wireHops } } }).length;
        expect(sizer.bytes(it)).toBe(real);
      }
    }
    const batch = newTurnBatch();
    expect(addToTurn(batch, 1, 500)).toBe(500 + FRAME_OVERHEAD_BYTES);
    expect(batch.sameFrame).toBe(false);
  });

  test("a turn on an idle link: the first message alone at once, the rest in one real Batch frame (to within 2 bytes)", () => {
    for (const sizes of [[1068, 1068], [40, 300, 1068, 5], [200, 200, 200, 200, 200, 200]]) {
      const batch = newTurnBatch();
      let ours = 0;
      sizes.forEach((n) => (ours += addToTurn(batch, 9, n)));
      const rest = sizes.slice(1).map((n) => new Uint8Array(n));
      const real = sizes[0]! + FRAME_OVERHEAD_BYTES + encodeBatch(rest).length + FRAME_OVERHEAD_BYTES;
      expect(Math.abs(ours - real)).toBeLessThanOrEqual(2);
    }
    // A link with bytes still queued batches the whole turn, the first message included.
    const busy = newTurnBatch();
    let ours = 0;
    for (const n of [100, 100, 100]) ours += addToTurn(busy, 3, n, false);
    expect(Math.abs(ours - (encodeBatch([100, 100, 100].map((n) => new Uint8Array(n))).length + FRAME_OVERHEAD_BYTES))).toBeLessThanOrEqual(2);
    // After a turn of several messages the link is busy: the next turn is one Batch, first message included; after a
    // turn of one it is idle again.
    const after = newTurnBatch();
    addToTurn(after, 1, 100);
    addToTurn(after, 1, 100);
    expect(addToTurn(after, 2, 100)).toBe(100 + FRAME_OVERHEAD_BYTES);
    expect(addToTurn(after, 2, 100)).toBeLessThan(100 + FRAME_OVERHEAD_BYTES); // joined the first one's frame
    const batch = newTurnBatch();
    addToTurn(batch, 1, 100);
    addToTurn(batch, 2, 100);
    expect(batch.sameFrame).toBe(false); // a new turn starts a new frame
    addToTurn(batch, 2, 100);
    expect(addToTurn(batch, 3, 100)).toBe(100 + FRAME_OVERHEAD_BYTES);
    expect(addToTurn(batch, 3, 100)).toBeLessThan(100 + FRAME_OVERHEAD_BYTES); // busy after turn 2's two: batched
    expect(varintBytes(127)).toBe(1);
    expect(varintBytes(128)).toBe(2);
  });

  test("peer lists are sized with 32-byte IDs", () => {
    const peers = [{ host: "10.0.0.1", port: 6001, id: "n1" }, { host: "10.0.0.2", port: 6001 }];
    const real = encodeLinkMessage({
      kind: { $case: "peerList", value: { peers: [{ host: "10.0.0.1", port: 6001, id: new Uint8Array(32) }, { host: "10.0.0.2", port: 6001, id: new Uint8Array(0) }] } },
    }).length;
    expect(peerListBytes(peers)).toBe(real);
  });
});
