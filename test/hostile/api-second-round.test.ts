/**
 * The second round of hostile local modules (issue 18 items 4–7) against real in-process nodes, with the canary
 * (canary.ts) announcing and receiving through the target all along: another process holding 1200 idle API
 * connections, a subscriber that never answers beside a peer flooding its type, a module announcing 60 KB items as
 * fast as it can, and subscriptions to every data type. The target runs every API limit at its default and the
 * validation timeout at its default (5 s). `HOSTILE_VERBOSE=1` prints the figures each case measured.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { encodeAnnounce, encodeNotify } from "../../src/api/codec.ts";
import {
  API_MAX_CONNECTIONS,
  API_MAX_SUBSCRIPTIONS,
  API_MAX_SUBSCRIPTIONS_PER_CONNECTION,
  TREE_RECENT_MAX_BYTES,
  VALIDATION_TIMEOUT_MS,
} from "../../src/defaults.ts";
import { ApiTestClient, waitFor } from "../api/client.ts";
import { createHarness } from "../net-harness.ts";
import { type Canary, type Module, announceBytes, apiCloseReasons, apiModule, heapUsed, startCanary } from "./canary.ts";
import { RawPeer, payload } from "./raw-peer.ts";

const h = createHarness();
let canary: Canary;
const cleanups: (() => unknown)[] = [];
/** What a case leaves by design for the canary's check after it (bytes in bounded stores), and whether the following
 *  cases start from a new baseline. */
let afterCase: { heapAllowance: number; rebaseline: boolean } = { heapAllowance: 0, rebaseline: false };
const verbose = (line: string) => void (process.env.HOSTILE_VERBOSE && console.log(line));
const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)}%`;
const MIB = 2 ** 20;

beforeAll(async () => {
  canary = await startCanary(h, { target: { validationTimeoutMs: VALIDATION_TIMEOUT_MS } });
}, 20_000);
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await h.stopAllBut([canary.target, canary.peer]);
  await canary.check({ heapAllowance: afterCase.heapAllowance });
  if (afterCase.rebaseline) canary.rebaseline();
  afterCase = { heapAllowance: 0, rebaseline: false };
}, 20_000);
afterAll(async () => {
  await canary.stop();
  await h.cleanup();
  h.close();
}, 20_000);

async function module(on: Parameters<typeof apiModule>[0], dataType: number | undefined, verdict: Parameters<typeof apiModule>[2] = true): Promise<Module> {
  const m = await apiModule(on, dataType, verdict);
  cleanups.push(() => m.client.close());
  return m;
}

async function client(port: number): Promise<ApiTestClient> {
  const c = await ApiTestClient.connect(port);
  cleanups.push(() => c.close());
  return c;
}

async function rawPeer(port: number): Promise<RawPeer> {
  const p = await RawPeer.connect(port);
  cleanups.push(() => p.close());
  await p.handshake();
  return p;
}

/** Another process that opens `count` API connections, never sends a byte, and reopens each one the node drops. */
const IDLE_HOLDER = `
const port = Number(process.env.PORT), count = Number(process.env.COUNT);
let open = 0, reopened = 0;
const handlers = { data() {}, open() { open++; }, close() { open--; reopened++; setImmediate(one); }, error() {} };
function one() { return Bun.connect({ hostname: "127.0.0.1", port, socket: handlers }).catch(() => setTimeout(one, 5)); }
for (let i = 0; i < count; i += 100) await Promise.all(Array.from({ length: Math.min(100, count - i) }, one));
setInterval(() => console.log(JSON.stringify({ open, reopened })), 200);
`;

/** A module that answers every NOTIFICATION valid and keeps only the item number in its first 4 bytes. (No closure
 *  here sees a node: a client the runtime keeps a while after its close must not keep a stopped node's memory.) */
async function countingSubscriber(port: number, dataType: number): Promise<Set<number>> {
  const got = new Set<number>();
  const sub = await client(port);
  sub.answerNotifications((n) => void got.add(new DataView(n.data.buffer, n.data.byteOffset).getUint32(0)));
  sub.subscribe(dataType);
  return got;
}

/**
 * A raw socket to a node's API that writes `count` ANNOUNCEs of unique 60 KB items, the next one whenever the kernel
 * takes more: as fast as the node reads. (At module level, so that no test scope outlives the socket's handlers.)
 */
async function floodAnnouncements(port: number, dataType: number, count: number) {
  let written = 0;
  let pending: Uint8Array | undefined;
  const item = (i: number) => {
    const data = new Uint8Array(60_000).fill(i & 0xff);
    new DataView(data.buffer).setUint32(0, i);
    return encodeAnnounce({ ttl: 0, dataType, data });
  };
  const pump = (s: { write(b: Uint8Array): number }) => {
    for (;;) {
      pending ??= written < count ? item(written++) : undefined;
      if (pending === undefined) return;
      const n = s.write(pending);
      if (n < pending.length) {
        pending = pending.subarray(Math.max(0, n));
        return;
      }
      pending = undefined;
    }
  };
  const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, drain: (s) => pump(s) } });
  pump(socket);
  return { written: () => written, close: () => socket.end() };
}

test("4. another process holds 1200 idle API connections (reopening each one dropped): an honest module connects and is served", async () => {
  const api = canary.target.api;
  const holder = Bun.spawn([process.execPath, "-e", IDLE_HOLDER], {
    env: { ...process.env, PORT: String(api.port), COUNT: "1200" },
    stdout: "pipe",
    stderr: "inherit",
  });
  // Its own count of open connections and of those it had to reopen, a line every 200 ms.
  let held = { open: 0, reopened: 0 };
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of holder.stdout) {
      const lines = decoder.decode(chunk).trim().split("\n");
      held = JSON.parse(lines.at(-1)!);
    }
  })();
  cleanups.push(async () => {
    holder.kill();
    await holder.exited;
    await waitFor(() => api.stats().connections <= 2, 10_000, "the holder's connections gone");
  });
  // Full, and the excess refused and reopened at least once (after its probation; at once before the fix).
  await waitFor(() => api.stats().connections === API_MAX_CONNECTIONS && held.reopened >= 1200 - API_MAX_CONNECTIONS, 20_000, "the holder reopening");

  const started = performance.now();
  const honest = await module(canary.target, 0x401);
  const subscribedMs = performance.now() - started;
  // Served both ways: an item from the canary's peer reaches it, and what it announces reaches the peer.
  const peerSub = await module(canary.peer, 0x402);
  (await client(canary.peer.api.port)).send(announceBytes(0x401, "to the honest module"));
  await waitFor(() => honest.received.includes("to the honest module"), 5000, "a peer's item at the honest module");
  honest.client.send(announceBytes(0x402, "from the honest module"));
  await waitFor(() => peerSub.received.includes("from the honest module"), 5000, "its announcement at the peer");
  expect(honest.client.isClosed).toBe(false);
  verbose(
    `4: honest module subscribed ${subscribedMs.toFixed(0)} ms after connecting; holder: ${held.open} open, ${held.reopened} reopened; ` +
      `${api.stats().idleEvicted} idle connections evicted, ${api.stats().onProbation} on probation`,
  );
}, 60_000);

test("5. a subscriber of T that never answers, a peer sending T at ~300/s: items of U from another peer are delivered and forwarded ≥ 99%", async () => {
  const target = canary.target;
  const T = 0x501;
  const U = 0x502;
  const silent = await module(target, T, "silent");
  const uSub = await module(target, U, true);
  const observer = await rawPeer(target.transport.port); // fed by eager push (it does not speak trees)
  const flooder = await rawPeer(target.transport.port);
  const uNode = await h.node({ bootstrapPort: target.transport.port });
  await waitFor(() => target.transport.linked().length === 4, 5000, "target linked to peer, observer, flooder, U's node");
  const uAnnouncer = await client(uNode.api.port);

  let tSent = 0;
  const floodStart = performance.now();
  const flood = setInterval(() => {
    for (let i = 0; i < 3; i++) flooder.send(payload(T, `t ${tSent++}`));
  }, 10);
  cleanups.push(() => clearInterval(flood));
  // The silent subscriber holds all it may: T items are being dropped busy now.
  await waitFor(() => target.broadcaster.stats().droppedBusy > 0, 10_000, "T items dropped busy");

  const U_ITEMS = 200;
  for (let i = 0; i < U_ITEMS; i++) {
    uAnnouncer.send(announceBytes(U, `u ${i}`));
    await Bun.sleep(20); // ~50/s, spread over 4 s of the T flood
  }
  const forwarded = () => observer.payloads(U).length;
  await waitFor(() => uSub.received.length >= U_ITEMS && forwarded() >= U_ITEMS, 10_000, "every U item").catch(() => {});
  clearInterval(flood);
  const tStats = target.broadcaster.stats();
  verbose(
    `5: U delivered ${pct(uSub.received.length, U_ITEMS)}, forwarded ${pct(forwarded(), U_ITEMS)}; ` +
      `T sent ${tSent} (${(tSent / ((performance.now() - floodStart) / 1000)).toFixed(0)}/s), notified to the silent one ${silent.received.length}, dropped busy ${tStats.droppedBusy}`,
  );
  expect(uSub.received.length).toBeGreaterThanOrEqual(0.99 * U_ITEMS);
  expect(forwarded()).toBeGreaterThanOrEqual(0.99 * U_ITEMS);
  // The silent one held at most its share of the table: never more than 1024 / subscribed connections.
  expect(silent.received.length).toBeLessThan(tSent);
}, 60_000);

test("6. a module announcing unique 60 KB items as fast as it can: ≥ 99% reach every other node; the announcer's memory stays bounded", async () => {
  const target = canary.target;
  const F = 0x601;
  const b = await h.node({ bootstrapPort: target.transport.port });
  const c = await h.node({ bootstrapPort: target.transport.port });
  await waitFor(() => target.transport.linked().length === 3 && b.transport.linked().length >= 1 && c.transport.linked().length >= 1, 5000, "links");
  // On every other node a subscriber that answers valid and keeps only each item's number (60 KB copies would weigh on
  // the heap check).
  const subs: Set<number>[] = [];
  for (const n of [canary.peer, b, c]) {
    subs.push(await countingSubscriber(n.api.port, F));
    await waitFor(() => n.api.hasSubscribers(F), 3000, "subscribed");
  }
  const dropsBefore = target.transport.linked().reduce((n, l) => n + l.droppedMessages, 0);

  const ITEMS = 400;
  let rssPeak = 0;
  let heldPeak = 0;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    heldPeak = Math.max(heldPeak, target.api.stats().heldBytes);
  }, 20);
  cleanups.push(() => clearInterval(sampler));
  const started = performance.now();
  const flood = await floodAnnouncements(target.api.port, F, ITEMS);
  cleanups.push(() => flood.close());
  const arrived = () => Math.min(...subs.map((s) => s.size));
  await waitFor(() => arrived() >= ITEMS, 30_000, "every item at every other node").catch(() => {});
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const drops = target.transport.linked().reduce((n, l) => n + l.droppedMessages, 0) - dropsBefore;
  verbose(
    `6: ${flood.written()} × 60 KB announced, all arrived in ${seconds.toFixed(1)} s (${((ITEMS * 60_000) / MIB / seconds).toFixed(1)} MiB/s); ` +
      `reached ${subs.map((s) => pct(s.size, ITEMS)).join(", ")}; dropped at the target's links ${drops}; ` +
      `process RSS peak ${(rssPeak / MIB).toFixed(0)} MiB; held by the API at most ${(heldPeak / 1024).toFixed(0)} KiB`,
  );
  for (const s of subs) expect(s.size).toBeGreaterThanOrEqual(0.99 * ITEMS);
  // At most one socket read (512 KiB in Bun) is held for the paused announcer.
  expect(heldPeak).toBeLessThanOrEqual(512 * 1024 + 65_535);
  // By design the target's and the peer's stores of recent items for GRAFT answers (TREE_RECENT_MAX_BYTES each) are
  // now full of 60 KB items, and the two stopped nodes' stores may outlive them a while (the collector is
  // conservative): allowed once, then the baseline is taken again for the cases that follow.
  afterCase = { heapAllowance: 4 * TREE_RECENT_MAX_BYTES, rebaseline: true };
}, 60_000);

test("7. NOTIFY for all 65,536 types on 64 connections: each is closed at its bound with a reason; node-wide bound too; memory bounded", async () => {
  const api = canary.target.api;
  const before = apiCloseReasons(canary.log).length;
  const base = api.stats().subscriptions;
  const heapBefore = heapUsed();
  const everyType = Buffer.concat(Array.from({ length: 65_536 }, (_, dataType) => encodeNotify({ dataType })));
  const greedy = await Promise.all(Array.from({ length: 64 }, () => client(api.port)));
  for (const g of greedy) g.send(everyType);
  await Promise.all(greedy.map((g) => g.waitClosed(10_000)));
  expect(apiCloseReasons(canary.log).slice(before)).toEqual(Array(64).fill("too-many-subscriptions"));
  expect(api.stats().subscriptions).toBe(base);

  // Under the per-connection bound, many connections meet the node-wide one.
  const per = API_MAX_SUBSCRIPTIONS_PER_CONNECTION;
  const fit = Math.floor((API_MAX_SUBSCRIPTIONS - base) / per); // connections that fit whole
  const many: ApiTestClient[] = [];
  for (let i = 0; i < fit + 3; i++) {
    const c = await client(api.port);
    c.send(Buffer.concat(Array.from({ length: per }, (_, k) => encodeNotify({ dataType: (i * per + k) % 65_536 }))));
    many.push(c);
    await waitFor(() => c.isClosed || api.stats().subscriptions >= Math.min(base + (i + 1) * per, API_MAX_SUBSCRIPTIONS), 5000, "subscribed");
  }
  await Promise.all(many.slice(fit).map((c) => c.waitClosed(5000)));
  expect(many.slice(0, fit).every((c) => !c.isClosed)).toBe(true);
  expect(apiCloseReasons(canary.log).slice(before + 64)).toEqual(Array(3).fill("subscription-table-full"));
  const held = api.stats().subscriptions;
  expect(held).toBe(base + fit * per);
  const heapAtBound = heapUsed() - heapBefore;
  verbose(`7: ${held} subscriptions held at the node-wide bound: heap +${(heapAtBound / MIB).toFixed(1)} MiB (${(heapAtBound / held).toFixed(0)} B each)`);
  expect(heapAtBound).toBeLessThan(64 * MIB);
  // A subscribed connection is still notified.
  (await client(canary.peer.api.port)).send(announceBytes(5, "type 5"));
  expect((await many[0]!.nextMessage(5000)).kind).toBe("notification");
}, 60_000);
