/**
 * `startTestnet` and `gossip testnet` over real sockets: items announced by an outside module reach the outside
 * modules on every node through the VoidPhone API, a malformed probe is refused by the testnet's own validators, and
 * the command prints its ports and summary lines (with copies and bytes per delivery), stops on SIGINT with exit 0,
 * and refuses bad flags with exit 2.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { perDelivery } from "../src/cli/testnet.ts";
import { ApiClient } from "../src/client/api-client.ts";
import { randomDials } from "../src/testnet/dials.ts";
import { startTestnet, type Testnet } from "../src/testnet/network.ts";
import { PROBE_DATA_TYPE, encodeProbe, readProbe } from "../src/testnet/probe.ts";
import { seededRandom } from "../src/util/random.ts";
import { waitFor } from "./wait-for.ts";

const MODULE_TYPE = 4242;
const clients: ApiClient[] = [];
let net: Testnet | undefined;

afterAll(async () => {
  for (const c of clients) c.close();
  await net?.stop();
});

/** An outside module on one node: subscribes and answers valid to everything; collects the data it is notified of. */
async function outsideModule(port: number, received: string[]): Promise<ApiClient> {
  const client = await ApiClient.connect(port);
  clients.push(client);
  client.answerNotifications((n) => void received.push(new TextDecoder().decode(n.data)));
  client.subscribe(MODULE_TYPE);
  return client;
}

const invalidVerdicts = (t: Testnet) => t.nodes.reduce((s, n) => s + n.node.broadcaster.stats().invalid, 0);

describe("startTestnet", () => {
  test("each node dials k distinct others, never itself, the same graph for the same seed", () => {
    const dials = randomDials(8, 4, seededRandom(3));
    expect(dials).toEqual(randomDials(8, 4, seededRandom(3)));
    dials.forEach((targets, i) => {
      expect(new Set(targets).size).toBe(4);
      expect(targets).not.toContain(i);
      for (const t of targets) expect(t >= 0 && t < 8).toBe(true);
    });
    expect(randomDials(3, 4, seededRandom(1)).every((t) => t.length === 2)).toBe(true);
  });

  test("an outside module's item reaches the outside modules on every other node; a bad probe stops at the first hop", async () => {
    net = await startTestnet({ nodes: 6, dataTypes: [MODULE_TYPE], powDifficulty: 4, seed: 5 });
    expect(existsSync(join(net.dir, "node-0.pem"))).toBe(true);
    expect(net.links()).toBeGreaterThanOrEqual(5); // connected: at least a spanning tree's worth
    const received = net.nodes.map(() => [] as string[]);
    await Promise.all(net.nodes.map((t, i) => outsideModule(t.apiPort, received[i]!)));
    await waitFor(() => net!.nodes.every((t) => t.node.api.stats().subscriptions >= 3), 3000, "outside subscriptions");

    const announcer = await ApiClient.connect(net.nodes[0]!.apiPort);
    clients.push(announcer);
    announcer.announce(MODULE_TYPE, new TextEncoder().encode("hello testnet"));
    await waitFor(() => received.every((r) => r.includes("hello testnet")), 5000, "the item on every node");

    // A probe whose filler is wrong: node 0's neighbours are notified, their testnet modules say invalid, so it
    // travels no further than one hop.
    const bad = encodeProbe({ seq: 1, origin: 0, sentAt: 0 }, 64);
    bad[40] ^= 0xff;
    expect(readProbe(bad)).toBeUndefined();
    const invalidBefore = invalidVerdicts(net);
    net.announce(0, PROBE_DATA_TYPE, bad);
    const neighbours = net.nodes[0]!.node.transport.linked().length;
    await waitFor(() => invalidVerdicts(net!) - invalidBefore === neighbours, 5000, "invalid verdicts");
    const good = encodeProbe({ seq: 2, origin: 0, sentAt: 0 }, 64);
    const notifiedBefore = net.nodes.map((t) => t.module.stats().notifications);
    net.announce(0, PROBE_DATA_TYPE, good);
    await waitFor(() => net!.nodes.slice(1).every((t, i) => t.module.stats().notifications > notifiedBefore[i + 1]!), 5000, "a good probe everywhere");
    // The bad probe was never forwarded: nobody beyond node 0's neighbours counted it invalid.
    expect(invalidVerdicts(net)).toBe(invalidBefore + neighbours);
  }, 30_000);
});

/** Two consecutive free loopback ports (checked by binding them; another process could still take them after). */
async function freePortPair(): Promise<number> {
  for (;;) {
    const first = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const second = Bun.listen({ hostname: "127.0.0.1", port: first.port + 1, socket: { data() {} } });
      second.stop(true);
      return first.port;
    } catch {
      // taken: try another pair
    } finally {
      first.stop(true);
    }
  }
}

describe("gossip testnet (through the gossip CLI)", () => {
  const spawn = (args: string[]) =>
    Bun.spawn([process.execPath, join(import.meta.dir, "../src/cli.ts"), "testnet", ...args], { stdout: "pipe", stderr: "pipe" });

  test("prints API ports and one summary line per second with delivered probes; SIGINT stops it with exit 0", async () => {
    const proc = spawn(["--nodes", "4", "--announce-rate", "20", "--base-port", "0", "--difficulty", "4", "--degree", "6"]);
    let out = "";
    const reader = (async () => {
      for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
    })();
    const delivering = /^t=\d+s links \d+ \| items delivered [1-9]\d* \| copies\/delivery [\d.]+ \| bytes\/delivery \d+ \| probes \d+ announced, \d+\/\d+ delivered/m;
    await waitFor(() => delivering.test(out) && (out.match(/^t=/gm)?.length ?? 0) >= 2, 20_000, "two summary lines, deliveries in one");
    proc.kill("SIGINT");
    expect(await proc.exited).toBe(0);
    await reader;
    for (let i = 0; i < 4; i++) expect(out).toMatch(new RegExp(`node ${i}: api 127\\.0\\.0\\.1:\\d+`));
    const delivered = [...out.matchAll(/probes (\d+) announced, (\d+)\/(\d+) delivered/g)].map((m) => Number(m[2]));
    expect(Math.max(...delivered)).toBeGreaterThan(0);

    // Issue 14's figures, over the whole run. Each node dials 4 random others of 3, so the 4 nodes form a full graph
    // and, with degree 6, every node pushes an item on all 3 of its links: more than one copy per delivery (the
    // redundancy of flooding), at most one per link of the 4 nodes per delivery; every copy carries the 64-byte probe.
    const total = /^total: t=\d+s links \d+ \| items delivered (\d+) \| copies\/delivery ([\d.]+) \| bytes\/delivery (\d+)/m.exec(out);
    expect(total).not.toBeNull();
    const [deliveries, copies, bytes] = [Number(total![1]), Number(total![2]), Number(total![3])];
    expect(deliveries).toBeGreaterThan(0);
    expect(Number.isFinite(copies) && copies > 1 && copies <= 4).toBe(true);
    expect(Number.isFinite(bytes) && bytes >= copies * 64).toBe(true);
    expect(out).toContain("testnet stopped");
  }, 30_000);

  test("--control-base-port C: node i serves its dashboard, /status and /metrics on C+i, printed beside its ports", async () => {
    const base = await freePortPair();
    const proc = spawn(["--nodes", "2", "--base-port", "0", "--control-base-port", String(base), "--difficulty", "4"]);
    let out = "";
    const reader = (async () => {
      for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
    })();
    try {
      await waitFor(() => /^t=/m.test(out), 20_000, "the first summary line");
      for (let i = 0; i < 2; i++) {
        const line = new RegExp(`^node ${i}: api \\S+  p2p \\S+  id ([0-9a-f]{16})…  dashboard http://127\\.0\\.0\\.1:${base + i}/$`, "m").exec(out);
        expect(line).not.toBeNull();
        const page = await fetch(`http://127.0.0.1:${base + i}/`);
        expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
        expect(await page.text()).toContain('fetch("status"');
        const status = (await (await fetch(`http://127.0.0.1:${base + i}/status`)).json()) as { peer_id: string; links: unknown[] };
        expect(status.peer_id.slice(0, 16)).toBe(line![1]!);
        expect(status.links).toHaveLength(1);
        expect(await (await fetch(`http://127.0.0.1:${base + i}/metrics`)).text()).toContain("gossip_links{direction=");
      }
    } finally {
      proc.kill("SIGINT");
    }
    expect(await proc.exited).toBe(0);
    await reader;
  }, 30_000);

  test("--warmup S: lines say warm-up for S seconds, then items, copies and bytes count from there (probes from the start)", async () => {
    const proc = spawn(["--nodes", "3", "--announce-rate", "50", "--base-port", "0", "--difficulty", "4", "--warmup", "2", "--seconds", "4"]);
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    const warmup = [...out.matchAll(/^t=\d+s \(warm-up\) links \d+ \| items delivered (\d+)/gm)].map((m) => Number(m[1]));
    expect(warmup.length).toBeGreaterThan(0);
    expect(out).toMatch(/^t=[34]s links \d+ \| items delivered \d+/m);
    const total = /^total: t=\d+s links \d+ \| items delivered (\d+) \|.* probes \d+ announced, (\d+)\/\d+ delivered/m.exec(out);
    expect(total).not.toBeNull();
    // What was delivered during the warm-up is not counted after it; the probes count every delivery from the start.
    const [counted, probes, duringWarmup] = [Number(total![1]), Number(total![2]), Math.max(...warmup)];
    expect(duringWarmup).toBeGreaterThan(0);
    expect(counted).toBeGreaterThan(0);
    expect(counted).toBeLessThanOrEqual(probes - duringWarmup);
    // … and in brackets, the probes announced after the warm-up: each expected at the 2 nodes other than its origin.
    const after = /^total: .* probes (\d+) announced, \d+\/\d+ delivered \(after warm-up (\d+)\/(\d+)\), last-node p99/m.exec(out);
    expect(after).not.toBeNull();
    const [announced, afterDelivered, afterExpected] = after!.slice(1).map(Number) as [number, number, number];
    expect(afterExpected % 2).toBe(0);
    expect(afterExpected).toBeGreaterThan(0);
    expect(afterExpected).toBeLessThan(announced * 2);
    expect(afterDelivered).toBeGreaterThan(0);
    expect(afterDelivered).toBeLessThanOrEqual(afterExpected);
  }, 30_000);

  test("copies and bytes per delivery: traffic since the base reading over deliveries since then, '-' before any", () => {
    const base = { links: 3, deliveries: 10, copiesSent: 40, bytesSent: 9_000 };
    expect(perDelivery({ ...base, copiesSent: 50, bytesSent: 10_000 }, base)).toBe("copies/delivery - | bytes/delivery -");
    expect(perDelivery({ links: 3, deliveries: 13, copiesSent: 57, bytesSent: 27_036 }, base)).toBe("copies/delivery 5.67 | bytes/delivery 6012");
  });

  test("a bad flag is a usage error: exit 2 and the usage on stderr", async () => {
    const proc = spawn(["--nodes", "many"]);
    expect(await proc.exited).toBe(2);
    const err = await new Response(proc.stderr).text();
    expect(err).toContain("--nodes must be a number");
    expect(err).toContain("usage: gossip testnet");
  }, 10_000);
});
