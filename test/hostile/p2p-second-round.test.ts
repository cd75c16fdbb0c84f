/**
 * The second round of hostile P2P testing (issue 18, item 3: pending-handshake lockout), against a real node with the
 * canary running beside it. Sixteen source addresses (127.0.0.2–127.0.0.17, bound with node:net's localAddress) each
 * hold as many connections as the per-IP cap admits — silent ones and ones that sent the start of a frame that never
 * ends — and reopen each one the moment the node drops it, while one more per address keeps sending garbage. That
 * fills the node-wide table of pending handshakes (64) for as long as the attack runs. Honest nodes from 127.0.0.1
 * must still link, each within the 10 s goal, one after another.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import net from "node:net";
import { randomBytes } from "node:crypto";
import { MAX_PENDING_HANDSHAKES, MAX_PENDING_HANDSHAKES_PER_IP } from "../../src/defaults.ts";
import type { GossipNode } from "../../src/node.ts";
import { waitFor } from "../wait-for.ts";
import { createHarness } from "../net-harness.ts";
import { type Canary, startCanary } from "./canary.ts";

const h = createHarness();
setDefaultTimeout(90_000);
let canary: Canary;

beforeAll(async () => {
  canary = await startCanary(h); // the target keeps every Transport default: 64 pending, 4 per IP, 5 s deadline
});
afterAll(async () => {
  await canary.stop();
  await h.cleanup();
  h.close();
});

type Behaviour = "silent" | "partial" | "garbage";

interface Flood {
  /** Connections open now, and opened in all. */
  open(): number;
  opened(): number;
  stop(): Promise<void>;
}

/**
 * Keeps `count` connections per behaviour from each source address, each reopened as soon as it closes ("garbage"
 * ones 20 ms later: the node refuses or drops them at once, and a tighter loop would only burn the one CPU).
 */
function pendingFlood(port: number, sources: string[], per: Record<Behaviour, number>): Flood {
  const sockets = new Set<net.Socket>();
  let opened = 0;
  let stopped = false;
  const connect = (source: string, behaviour: Behaviour) => {
    if (stopped) return;
    const s = net.connect({ host: "127.0.0.1", port, localAddress: source });
    opened++;
    sockets.add(s);
    s.on("connect", () => {
      // A frame of 4096 bytes announced and never finished; or a whole frame of noise (no HandshakeInit).
      if (behaviour === "partial") s.write(Uint8Array.from([0, 0, 0x10, 0, ...randomBytes(10)]));
      if (behaviour === "garbage") s.write(Uint8Array.from([0, 0, 0, 12, ...randomBytes(12)]));
    });
    s.on("data", () => {}); // read (and drop) the Hello: a stream that is never read never sees the node's FIN
    s.on("error", () => {});
    s.on("close", () => {
      sockets.delete(s);
      if (behaviour === "garbage") setTimeout(() => connect(source, behaviour), 20);
      else setImmediate(() => connect(source, behaviour));
    });
  };
  for (const source of sources) {
    for (const behaviour of ["silent", "partial", "garbage"] as const) for (let i = 0; i < per[behaviour]; i++) connect(source, behaviour);
  }
  return {
    open: () => sockets.size,
    opened: () => opened,
    async stop() {
      stopped = true;
      for (const s of sockets) s.destroy();
      await waitFor(() => sockets.size === 0, 3000, "the flood's sockets closed");
    },
  };
}

const linkedTo = (a: GossipNode, b: GossipNode) => a.transport.linked().some((l) => l.info.peerId === b.identity.idHex);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

test("3. sixteen addresses holding every pending-handshake slot (silent, half a frame, garbage): honest nodes still link", async () => {
  const target = canary.target;
  const sources = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`);
  // Three silent and one half-frame connection per address: exactly the per-IP cap, 16 × 4 = the whole table.
  expect(sources.length * MAX_PENDING_HANDSHAKES_PER_IP).toBe(MAX_PENDING_HANDSHAKES);
  const flood = pendingFlood(target.transport.port, sources, { silent: 3, partial: 1, garbage: 1 });
  try {
    // The attack is in place: the table is full of the flood's connections before any honest node tries.
    await waitFor(() => target.transport.stats().pendingHandshakes === MAX_PENDING_HANDSHAKES, 10_000, "a full table of pending handshakes");
    const times: number[] = [];
    const timeouts = () => target.transport.stats().handshakesFailed.get("handshake-timeout") ?? 0;
    for (let round = 0; round < 5; round++) {
      if (round === 2) {
        // The rest once the node's deadline has dropped the flood's first connections and the flood has reopened them.
        await waitFor(() => timeouts() >= MAX_PENDING_HANDSHAKES / 2, 15_000, "the deadline to drop the flood's first connections");
        await waitFor(() => target.transport.stats().pendingHandshakes === MAX_PENDING_HANDSHAKES, 10_000, "the table refilled");
      }
      const started = performance.now();
      const honest = await h.node({ bootstrapPort: target.transport.port });
      await waitFor(() => linkedTo(target, honest) && linkedTo(honest, target), 10_000, `honest node ${round + 1} linked (the 10 s goal)`);
      times.push(performance.now() - started);
      await h.stop(honest);
      // The flood refills the slot the honest handshake had.
      await waitFor(() => target.transport.stats().pendingHandshakes === MAX_PENDING_HANDSHAKES, 10_000, "the table full again");
    }
    if (process.env.HOSTILE_VERBOSE) {
      console.log(`time to link under the flood: ${times.map((t) => t.toFixed(0)).join(", ")} ms (median ${median(times).toFixed(0)} ms); flood opened ${flood.opened()}`);
    }
    const failures = target.transport.stats().handshakesFailed;
    expect(failures.get("handshake-evicted") ?? 0).toBeGreaterThanOrEqual(times.length); // each honest node took a flood slot
    expect(failures.get("too-many-pending") ?? 0).toBeGreaterThan(0); // and the flood kept knocking
  } finally {
    await flood.stop();
  }
  await waitFor(() => target.transport.stats().pendingHandshakes === 0, 10_000, "the table empty after the flood");
  await canary.check();
});
