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

/** A base port P whose P+i, P+1000+i and P+2000+i (i < n) are free now (bound and released), so that no node
 *  process dies on a port another test or an outgoing connection holds. */
function freeBase(n: number): number {
  for (let attempt = 0; ; attempt++) {
    const base = 20_000 + ((process.pid * 7 + attempt * 131) % 2_000) * 8;
    const held: { stop(force?: boolean): void }[] = [];
    try {
      for (const offset of [0, 1000, 2000]) {
        for (let i = 0; i < n; i++) held.push(Bun.listen({ hostname: "127.0.0.1", port: base + offset + i, socket: { data() {} } }));
      }
      return base;
    } catch {
      if (attempt > 50) throw new Error("no free base port");
    } finally {
      for (const h of held) h.stop(true);
    }
  }
}
afterAll(async () => {
  await net?.stop();
});

test("eight gossip processes with hyparview views: an item reaches all; four killed, the next item reaches the four survivors", async () => {
  const got = new Map<number, Set<number>>([[0, new Set()], [1, new Set()]]);
  const base = freeBase(8);
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

test("a node process that cannot start (its port is taken) fails the start at once with the reason, not after a minute", async () => {
  const base = freeBase(2);
  const squatter = Bun.listen({ hostname: "127.0.0.1", port: base, socket: { data() {} } }); // node 0's P2P port
  try {
    const started = Date.now();
    const error = await startProcessTestnet({ nodes: 2, basePort: base, degree: 3, bootstrappers: 1 }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/exited \(code \d+\)/);
    expect(Date.now() - started).toBeLessThan(20_000);
  } finally {
    squatter.stop(true);
  }
}, 30_000);
