/**
 * RefillWalks (src/gossip/view-refill.ts) on its own: asks bounded per round and per missing link, one walk per ask
 * received (starting one hop in), and the hint that sends a passing walk to a neighbour that asked, used once and
 * only while fresh.
 */
import { expect, test } from "bun:test";
import { VIEW_ACTIVE_WALK, VIEW_REFILL_ASK_MS, VIEW_REFILL_WALKS } from "../../src/defaults.ts";
import type { LinkInfo, PeerId, ViewMessage } from "../../src/gossip/ports.ts";
import { RefillWalks } from "../../src/gossip/view-refill.ts";
import { seededRandom } from "../../src/util/random.ts";

const link = (peer: string): LinkInfo => ({ peer, host: `10.0.0.${peer.length}`, port: 6001, inbound: false, views: true });

function refill() {
  let now = 0;
  const sent: [PeerId, ViewMessage][] = [];
  const r = new RefillWalks({ random: seededRandom(3), now: () => now, send: (p, m) => void sent.push([p, m]) });
  return { r, sent, advance: (ms: number) => void (now += ms) };
}

test("asks: at most VIEW_REFILL_WALKS neighbours per missing link, once per VIEW_REFILL_ASK_MS, none when not short", () => {
  const { r, sent, advance } = refill();
  const links = ["a", "b", "c", "d", "e", "f", "g", "h"].map(link);
  r.ask(links, 0);
  expect(sent.length).toBe(0);
  r.ask(links, 1);
  expect(sent.length).toBe(VIEW_REFILL_WALKS);
  expect(new Set(sent.map(([p]) => p)).size).toBe(VIEW_REFILL_WALKS);
  for (const [, m] of sent) expect(m).toEqual({ kind: "neighbor", high: false });
  r.ask(links, 2); // same round: nothing more
  expect(sent.length).toBe(VIEW_REFILL_WALKS);
  advance(VIEW_REFILL_ASK_MS);
  r.ask(links, 5); // more missing than neighbours: each neighbour once
  expect(sent.length).toBe(VIEW_REFILL_WALKS + links.length);
  expect(r.asks).toBe(VIEW_REFILL_WALKS + links.length);
});

test("an ask starts one walk for the asker, one hop in, never back to it; an asker that does not listen gets none", () => {
  const { r, sent } = refill();
  r.asked(link("x"), [link("a"), link("b")]);
  expect(sent.length).toBe(1);
  const [to, m] = sent[0]!;
  expect(["a", "b"]).toContain(to);
  expect(m).toEqual({ kind: "forward-join", peer: { host: "10.0.0.1", port: 6001, id: "x" }, ttl: VIEW_ACTIVE_WALK - 1 });
  r.asked({ ...link("y"), port: 0 }, [link("a")]);
  expect(sent.length).toBe(1);
  expect(r.walks).toBe(1);
});

test("a walk goes to a neighbour that asked lately, once; the hint expires and is forgotten with the link", () => {
  const { r, advance } = refill();
  const others = ["a", "b", "c", "d", "e", "f"].map(link);
  r.asked(link("c"), []); // c is short (nobody to walk to here, but the hint is kept)
  expect(r.nextHop(others)).toBe("c");
  // Used once: the next walk goes anywhere (over many draws, not always c).
  const next = new Set(Array.from({ length: 30 }, () => r.nextHop(others)));
  expect(next.size).toBeGreaterThan(1);
  r.asked(link("d"), []);
  advance(VIEW_REFILL_ASK_MS + 1);
  expect(new Set(Array.from({ length: 30 }, () => r.nextHop(others))).size).toBeGreaterThan(1); // stale: no pull to d
  r.asked(link("e"), []);
  r.forget("e");
  expect(new Set(Array.from({ length: 30 }, () => r.nextHop(others))).size).toBeGreaterThan(1);
});
