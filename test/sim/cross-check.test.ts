/**
 * The simulator against real sockets: 50 real nodes in this process (src/testnet, real handshakes, the VoidPhone API,
 * flooding) and `simulate` with the same graph (topology dials:4, the same seed, so randomDials picks the same dials),
 * the same degree and zero latency must agree on copies per delivery and delivered ratio within 10%. This is what
 * keeps the simulator from drifting away from the real node.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { TESTNET_DIALS_PER_NODE } from "../../src/defaults.ts";
import { simulate } from "../../src/sim/simulator.ts";
import { startTestnet, type Testnet } from "../../src/testnet/network.ts";
import { PROBE_DATA_TYPE, encodeProbe } from "../../src/testnet/probe.ts";
import { seededRandom } from "../../src/util/random.ts";
import { waitFor } from "../wait-for.ts";

const NODES = 50;
const DEGREE = 6;
const ITEMS = 20;
const SEED = 7;
const DIFFICULTY = 4;

let net: Testnet | undefined;
afterAll(async () => {
  await net?.stop();
});

/** Resolves once `read()` has not changed for `quietMs` (and `done` or that quiet says the traffic is over). */
async function settledValue(read: () => number, done: (v: number) => boolean, quietMs: number, timeoutMs: number): Promise<number> {
  let last = read();
  let since = Date.now();
  await waitFor(() => {
    const v = read();
    if (v !== last) {
      last = v;
      since = Date.now();
    }
    return done(v) || Date.now() - since >= quietMs;
  }, timeoutMs, "deliveries to settle", 20);
  return read();
}

describe("simulate vs gossip testnet", () => {
  test(`${NODES} nodes, degree ${DEGREE}, flood: copies per delivery and delivered ratio within 10%`, async () => {
    net = await startTestnet({ nodes: NODES, degree: DEGREE, dissemination: "flood", powDifficulty: DIFFICULTY, seed: SEED });
    const t = net;
    expect(t.nodes.every((n) => n.node.broadcaster.stats().dissemination === "flood")).toBe(true);
    // Membership runs after the dials, as in the simulation: wait until no node is still dialing or short of links.
    await waitFor(
      () => t.nodes.every((n) => n.node.membership.stats().dialing === 0 && n.node.membership.stats().linked >= DEGREE),
      20_000,
      "links to settle",
    );
    const base = t.stats();
    const random = seededRandom(SEED);
    for (let seq = 0; seq < ITEMS; seq++) {
      const origin = Math.floor(random() * NODES);
      t.announce(origin, PROBE_DATA_TYPE, encodeProbe({ seq, origin, sentAt: 0 }, 1024));
      await Bun.sleep(10); // spaced, as the simulation publishes them at its rate
    }
    const expected = ITEMS * (NODES - 1);
    const deliveries = (await settledValue(() => t.stats().deliveries - base.deliveries, (v) => v >= expected, 1000, 20_000));
    const real = {
      copies: (t.stats().copiesSent - base.copiesSent) / deliveries,
      ratio: deliveries / expected,
    };

    const sim = await simulate({
      nodes: NODES,
      degree: DEGREE,
      topology: `dials:${TESTNET_DIALS_PER_NODE}`,
      seed: SEED,
      latency: "fixed:0",
      powDifficulty: DIFFICULTY,
      items: ITEMS,
      size: 1024,
    });
    const report = `real ${JSON.stringify(real)} simulated ${JSON.stringify({ copies: sim.copies_per_delivery, ratio: sim.delivered_ratio })}`;
    expect(Math.abs(sim.copies_per_delivery - real.copies) / real.copies, report).toBeLessThanOrEqual(0.1);
    expect(Math.abs(sim.delivered_ratio - real.ratio) / real.ratio, report).toBeLessThanOrEqual(0.1);
    // Not trivially equal: flooding at degree 6 over ~8 links costs several copies per delivery in both.
    expect(real.copies).toBeGreaterThan(3);
  }, 60_000);
});
