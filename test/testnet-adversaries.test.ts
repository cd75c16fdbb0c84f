/**
 * Adversaries on real sockets (issue 17): NodeOptions.behaviour "censor" and `gossip testnet --adversaries K
 * --behaviour censor`. A censor in the middle of a line of three nodes stops an item that an honest middle node
 * passes on; a testnet of honest nodes and censors delivers every probe to every honest node, counted over honest
 * nodes only, while the censors link like honest nodes, have no module and forward nothing; and the command's flags.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { linkTotals } from "../src/control/metrics.ts";
import type { GossipNode } from "../src/node.ts";
import { startTestnet, type Testnet } from "../src/testnet/network.ts";
import { PROBE_DATA_TYPE, encodeProbe, readProbe } from "../src/testnet/probe.ts";
import { createHarness, linked } from "./net-harness.ts";
import { waitFor } from "./wait-for.ts";

const DATA_TYPE = 0x4c4e; // "LN"
const h = createHarness();
let net: Testnet | undefined;

afterEach(async () => {
  await h.cleanup();
  await net?.stop();
  net = undefined;
});
afterAll(() => h.close());

describe("NodeOptions.behaviour censor", () => {
  /**
   * A — M — B, M dialing both ends, membership stopped so that the line stays a line (A and B never learn of each
   * other). Every node has the same subscribing module; only M's behaviour differs between the two cases.
   */
  async function line(middle: "honest" | "censor") {
    const spec = { degree: 4, powDifficulty: 4, usefulness: false as const };
    const [a, m, b] = [await h.node(spec), await h.node({ ...spec, behaviour: middle === "censor" ? "censor" : undefined }), await h.node(spec)];
    for (const n of [a, m, b]) n.membership.stop();
    await m.transport.dial("127.0.0.1", a.transport.port);
    await m.transport.dial("127.0.0.1", b.transport.port);
    const [, mid, end] = await Promise.all([a, m, b].map((n) => h.subscriber(n, DATA_TYPE)));
    expect(linked(a, b.identity.idHex)).toBe(false);
    return { a, m, b, mid: mid!.received, end: end!.received };
  }

  const item = (text: string) => text + ".".repeat(2000 - text.length); // big enough to see arrive in M's link bytes
  const bytesIn = (n: GossipNode) => linkTotals(n.transport).bytesIn;

  test("an honest middle node passes an item from one end of a line to the other", async () => {
    const { a, b, mid, end } = await line("honest");
    await h.announce(a, DATA_TYPE, item("through an honest node"));
    await waitFor(() => end.some((t) => t.startsWith("through an honest node")), 5000, "the item at the far end");
    expect(mid.some((t) => t.startsWith("through an honest node"))).toBe(true);
    expect(linked(a, b.identity.idHex)).toBe(false); // it came through the middle node
  }, 15_000);

  test("a censor in the middle keeps its links and receives the item, but never delivers, validates or forwards it", async () => {
    const { a, m, b, mid, end } = await line("censor");
    const before = bytesIn(m);
    await h.announce(a, DATA_TYPE, item("into a censor"));
    // The item reached the censor (its bytes are in M's links); an honest middle node passes it on within a few ms
    // (the test above), so half a second later the far end would have it.
    await waitFor(() => bytesIn(m) >= before + 2000, 5000, "the item's bytes at the censor");
    await Bun.sleep(500);
    expect(end).toEqual([]);
    expect(mid).toEqual([]); // its own module was never asked either
    const s = m.broadcaster.stats();
    expect([s.received, s.valid, s.forwarded]).toEqual([0, 0, 0]);
    // Membership and links are the honest node's: both ends are still linked to it.
    expect(linked(m, a.identity.idHex) && linked(m, b.identity.idHex)).toBe(true);
    expect(linked(a, b.identity.idHex)).toBe(false);
  }, 15_000);
});

describe("startTestnet with censors", () => {
  test("8 honest nodes and 8 censors: every probe reaches every other honest node; censors link, have no module, forward nothing", async () => {
    const honest = 8;
    const got: Set<number>[] = Array.from({ length: honest }, () => new Set<number>());
    net = await startTestnet({
      nodes: honest,
      adversaries: 8,
      behaviour: "censor",
      powDifficulty: 4,
      seed: 7,
      onNotification: (i, type, data) => {
        const probe = type === PROBE_DATA_TYPE ? readProbe(data) : undefined;
        if (probe !== undefined) got[i]!.add(probe.seq);
        return probe !== undefined;
      },
    });
    expect(net.nodes).toHaveLength(honest);
    expect(net.adversaries).toHaveLength(8);
    expect(net.adversaries.map((t) => t.index)).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    const adversaryIds = new Set(net.adversaries.map((t) => t.node.identity.idHex));
    // The censors were dialed and dial like honest nodes: honest nodes hold links to them.
    const toCensors = net.nodes.reduce((sum, t) => sum + t.node.transport.linked().filter((l) => adversaryIds.has(l.info.peerId)).length, 0);
    expect(toCensors).toBeGreaterThan(0);
    expect(net.adversaries.every((t) => t.node.api.stats().subscriptions === 0)).toBe(true);

    const probes = 30;
    const origin = (seq: number) => seq % honest;
    for (let seq = 0; seq < probes; seq++) {
      net.announce(origin(seq), PROBE_DATA_TYPE, encodeProbe({ seq, origin: origin(seq), sentAt: 0 }, 64));
      await Bun.sleep(20);
    }
    const complete = () => got.every((seqs, i) => seqs.size === probes - Array.from({ length: probes }, (_, s) => origin(s)).filter((o) => o === i).length);
    await waitFor(complete, 10_000, "every probe at every other honest node");
    // Deliveries count honest nodes only (the censors have no module): each probe once at each of the 7 others.
    expect(net.stats().deliveries).toBe(probes * (honest - 1));
    for (const t of net.adversaries) {
      const s = t.node.broadcaster.stats();
      expect([s.received, s.forwarded]).toEqual([0, 0]);
    }
    expect(net.stats().honestLinks).toBeLessThan(net.stats().links);
  }, 20_000);
});

describe("gossip testnet --adversaries K --behaviour censor (through the gossip CLI)", () => {
  const spawn = (args: string[]) =>
    Bun.spawn([process.execPath, join(import.meta.dir, "../src/cli.ts"), "testnet", ...args], { stdout: "pipe", stderr: "pipe" });

  test("prints the adversaries, and the probes' delivery counted over honest nodes only", async () => {
    const proc = spawn(["--nodes", "4", "--adversaries", "4", "--behaviour", "censor", "--announce-rate", "20", "--base-port", "0", "--difficulty", "4", "--seconds", "3"]);
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    expect(out).toMatch(/^testnet: 4 nodes \+ 4 adversaries \(censor\), /m);
    for (let i = 0; i < 4; i++) expect(out).toMatch(new RegExp(`^node ${i}: api 127\\.0\\.0\\.1:\\d+`, "m"));
    for (let i = 4; i < 8; i++) expect(out).toMatch(new RegExp(`^adversary \\(censor\\) ${i}: api 127\\.0\\.0\\.1:\\d+`, "m"));
    const total = /^total: t=\d+s links (\d+) \(honest–honest (\d+)\) \| items delivered (\d+) \|.* probes (\d+) announced, (\d+)\/(\d+) delivered to honest nodes, last-node p99/m.exec(out);
    expect(total).not.toBeNull();
    const [links, honestLinks, items, announced, delivered, expected] = total!.slice(1).map(Number) as number[];
    expect(honestLinks).toBeLessThanOrEqual(links!);
    expect(announced).toBeGreaterThan(0);
    expect(expected).toBe(announced! * 3); // each probe at the 3 other honest nodes, none at the censors
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThanOrEqual(expected!);
    expect(items).toBe(delivered); // only probes flow; only honest modules are notified
    expect(out).toContain("testnet stopped");
  }, 20_000);

  test("a behaviour other than censor, or adversaries with --processes, is a usage error", async () => {
    for (const [args, message] of [
      [["--adversaries", "2", "--behaviour", "spam"], '--behaviour must be censor, got "spam"'],
      [["--adversaries", "2", "--processes"], "--adversaries runs in-process nodes only, not with --processes"],
      [["--adversaries", "two"], "--adversaries must be a number"],
    ] as const) {
      const proc = spawn([...args]);
      expect(await proc.exited).toBe(2);
      const err = await new Response(proc.stderr).text();
      expect(err).toContain(message);
      expect(err).toContain("usage: gossip testnet");
    }
  }, 15_000);
});
