/**
 * `gossip testnet --processes` as a library (src/testnet/processes.ts): eight `gossip` processes with generated
 * configs and HyParView views link into one network, an item reaches all of them, and after four are killed
 * (SIGKILL) the next item reaches every survivor. The 60-node version is scripts/testnet-kill-half.ts (docs/simulation.md,
 * "Membership views"). Real processes, real sockets, PoW difficulty 8.
 */
import { afterAll, expect, test } from "bun:test";
import { startProcessTestnet, type ProcessTestnet } from "../src/testnet/processes.ts";
import { PROBE_DATA_TYPE, encodeProbe, readProbe } from "../src/testnet/probe.ts";
import { waitFor } from "./wait-for.ts";

let net: ProcessTestnet | undefined;
afterAll(async () => {
  await net?.stop();
});

test("eight gossip processes with hyparview views: an item reaches all; four killed, the next item reaches the four survivors", async () => {
  const got = new Map<number, Set<number>>([[0, new Set()], [1, new Set()]]);
  const base = 20_000 + (process.pid % 2_000) * 8; // apart from other test files' fixed ports
  net = await startProcessTestnet({
    nodes: 8,
    basePort: base,
    degree: 3,
    overlay: "hyparview",
    dissemination: "flood",
    bootstrappers: 2,
    onNotification: (i, type, data) => {
      const p = type === PROBE_DATA_TYPE ? readProbe(data, 64) : undefined;
      if (p !== undefined) got.get(p.seq)?.add(i);
      return p !== undefined;
    },
  });
  const t = net;
  expect(new Set(t.nodes.map((x) => x.process.pid)).size).toBe(8); // one process each
  await waitFor(async () => (await t.status()).every((s) => s !== undefined && s.links.length > 0), 30_000, "every node linked", 100);
  t.announce(0, PROBE_DATA_TYPE, encodeProbe({ seq: 0, origin: 0, sentAt: 0 }, 64));
  await waitFor(() => got.get(0)!.size === 7, 20_000, "item 0 at the 7 others", 50);
  for (const i of [1, 3, 5, 6]) t.kill(i);
  await waitFor(async () => {
    const s = await t.status();
    const ids = new Set(t.nodes.filter((x) => x.alive).map((x) => s[x.index]?.peer_id));
    // Every survivor's links lead to survivors only, and it has one.
    return t.nodes.filter((x) => x.alive).every((x) => s[x.index] !== undefined && s[x.index]!.links.length > 0 && s[x.index]!.links.every((l) => ids.has(l.peer_id)));
  }, 30_000, "survivors linked among themselves", 100);
  t.announce(2, PROBE_DATA_TYPE, encodeProbe({ seq: 1, origin: 2, sentAt: 0 }, 64));
  await waitFor(() => got.get(1)!.size === 3, 20_000, "item 1 at the 3 other survivors", 50);
  expect([...got.get(1)!].sort()).toEqual([0, 4, 7]);
}, 60_000);
