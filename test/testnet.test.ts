/**
 * `startTestnet` and `gossip testnet` over real sockets: items announced by an outside module reach the outside
 * modules on every node through the VoidPhone API, a malformed probe is refused by the testnet's own validators, and
 * the command prints its ports and summary lines, stops on SIGINT with exit 0, and refuses bad flags with exit 2.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { decodeMessage, encodeAnnounce, encodeNotify, encodeValidation } from "../src/api/codec.ts";
import { PROBE_DATA_TYPE, encodeProbe, randomDials, readProbe, seededRandom, startTestnet, type Testnet } from "../src/testnet.ts";
import { ApiTestClient, waitFor } from "./api/client.ts";

const MODULE_TYPE = 4242;
const clients: ApiTestClient[] = [];
let net: Testnet | undefined;

afterAll(async () => {
  for (const c of clients) c.close();
  await net?.stop();
});

/** An outside module on one node: subscribes and answers valid to everything; collects the data it is notified of. */
async function outsideModule(port: number, received: string[]): Promise<ApiTestClient> {
  const client = await ApiTestClient.connect(port);
  clients.push(client);
  client.send(encodeNotify({ dataType: MODULE_TYPE }));
  (async () => {
    for (;;) {
      let m;
      try {
        m = decodeMessage(await client.next(60_000));
      } catch {
        return;
      }
      if (m.kind !== "notification") continue;
      received.push(new TextDecoder().decode(m.data));
      client.send(encodeValidation({ messageId: m.messageId, valid: true }));
    }
  })();
  return client;
}

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

    const announcer = await ApiTestClient.connect(net.nodes[0]!.apiPort);
    clients.push(announcer);
    announcer.send(encodeAnnounce({ ttl: 0, dataType: MODULE_TYPE, data: new TextEncoder().encode("hello testnet") }));
    await waitFor(() => received.every((r) => r.includes("hello testnet")), 5000, "the item on every node");

    // A probe whose filler is wrong: node 0's neighbours are notified, their testnet modules say invalid, so it
    // travels no further than one hop.
    const bad = encodeProbe({ seq: 1, origin: 0, sentAt: 0 }, 64);
    bad[40] ^= 0xff;
    expect(readProbe(bad)).toBeUndefined();
    const invalidBefore = net.nodes.reduce((s, t) => s + t.node.broadcaster.metrics.invalid, 0);
    net.announce(0, PROBE_DATA_TYPE, bad);
    const neighbours = net.nodes[0]!.node.transport.linked().length;
    await waitFor(() => net!.nodes.reduce((s, t) => s + t.node.broadcaster.metrics.invalid, 0) - invalidBefore === neighbours, 5000, "invalid verdicts");
    const good = encodeProbe({ seq: 2, origin: 0, sentAt: 0 }, 64);
    const notifiedBefore = net.nodes.map((t) => t.module.notifications);
    net.announce(0, PROBE_DATA_TYPE, good);
    await waitFor(() => net!.nodes.slice(1).every((t, i) => t.module.notifications > notifiedBefore[i + 1]!), 5000, "a good probe everywhere");
    // The bad probe was never forwarded: nobody beyond node 0's neighbours counted it invalid.
    expect(net.nodes.reduce((s, t) => s + t.node.broadcaster.metrics.invalid, 0) - invalidBefore).toBe(neighbours);
  });
});

describe("gossip testnet (through the gossip CLI)", () => {
  const spawn = (args: string[]) =>
    Bun.spawn([process.execPath, join(import.meta.dir, "../src/cli.ts"), "testnet", ...args], { stdout: "pipe", stderr: "pipe" });

  test("prints API ports and one summary line per second with delivered probes; SIGINT stops it with exit 0", async () => {
    const proc = spawn(["--nodes", "4", "--announce-rate", "20", "--base-port", "0", "--difficulty", "4"]);
    let out = "";
    const reader = (async () => {
      for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
    })();
    await waitFor(() => /t=\d+s links \d+ .*\d+\/\d+ delivered/.test(out) && (out.match(/^t=/gm)?.length ?? 0) >= 2, 20_000, "two summary lines");
    proc.kill("SIGINT");
    expect(await proc.exited).toBe(0);
    await reader;
    for (let i = 0; i < 4; i++) expect(out).toMatch(new RegExp(`node ${i}: api 127\\.0\\.0\\.1:\\d+`));
    const delivered = [...out.matchAll(/probes (\d+) announced, (\d+)\/(\d+) delivered/g)].map((m) => Number(m[2]));
    expect(Math.max(...delivered)).toBeGreaterThan(0);
    expect(out).toContain("testnet stopped");
  }, 30_000);

  test("a bad flag is a usage error: exit 2 and the usage on stderr", async () => {
    const proc = spawn(["--nodes", "many"]);
    expect(await proc.exited).toBe(2);
    const err = await new Response(proc.stderr).text();
    expect(err).toContain("--nodes must be a number");
    expect(err).toContain("usage: gossip testnet");
  });
});
