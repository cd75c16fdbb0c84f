import { describe, expect, test } from "bun:test";
import {
  SCORE_BAN_THRESHOLD,
  SCORE_FIRST_DELIVERY_CAP,
  SCORE_HALF_LIFE_MS,
  SCORE_PENALTY_TOLERANCE,
} from "../../src/defaults.ts";
import { PeerScore, type PeerScoreOptions } from "../../src/gossip/peer-score.ts";
import { colocationKey } from "../../src/gossip/score-colocation.ts";
import { bump, decayRate, decaying, valueAt } from "../../src/gossip/score-decay.ts";
import { seededRandom } from "../../src/util/random.ts";

const T = 7;
const U = 8;

function scored(options: PeerScoreOptions = {}) {
  const clock = { t: 0 };
  const bans: [string, string][] = [];
  const s = new PeerScore({ ...options, now: () => clock.t, onScoreBan: (peer, why) => bans.push([peer, why]) });
  return { s, clock, bans };
}

describe("decaying counters", () => {
  test("halve every half-life, bump on the decayed value, cap", () => {
    const rate = decayRate(1_000);
    const c = decaying(0);
    bump(c, 0, rate, 8);
    expect(valueAt(c, 1_000, rate)).toBeCloseTo(4, 9);
    expect(valueAt(c, 3_000, rate)).toBeCloseTo(1, 9);
    bump(c, 1_000, rate, 1, 4.5);
    expect(c.value).toBe(4.5);
    expect(valueAt(c, 2_000, rate)).toBeCloseTo(2.25, 9);
    expect(valueAt(c, 500, rate)).toBe(4.5); // a read before the last change is that change
    expect(() => decayRate(0)).toThrow(RangeError);
  });
});

describe("the score", () => {
  test("first deliveries are credit, capped, and decay with the half-life", () => {
    const { s, clock } = scored();
    for (let i = 0; i < 100; i++) s.recordFirstDelivery("p", T);
    expect(s.scoreOf("p")).toBe(SCORE_FIRST_DELIVERY_CAP);
    clock.t = SCORE_HALF_LIFE_MS;
    expect(s.scoreOf("p")).toBeCloseTo(SCORE_FIRST_DELIVERY_CAP / 2, 9);
    expect(s.scoreOf("never-seen")).toBe(0);
  });

  test("behavioural penalties: tolerated up to a few, then the square of the excess, then a ban that disconnects", () => {
    const { s, bans, clock } = scored();
    for (let i = 0; i < SCORE_PENALTY_TOLERANCE; i++) expect(s.recordUnservedAnnouncement("p")).toBe(false);
    expect(s.scoreOf("p")).toBe(0);
    expect(s.recordGraftFlood("p")).toBe(false);
    expect(s.scoreOf("p")).toBeCloseTo(-1, 9);
    expect(s.recordAnnouncementFlood("p")).toBe(false);
    expect(s.scoreOf("p")).toBeCloseTo(-4, 9);
    expect(s.acceptsGossip("p")).toBe(true);
    for (let i = 0; i < 2; i++) s.recordEagerMiss("p");
    expect(s.scoreOf("p")).toBeCloseTo(-16, 9);
    expect(s.acceptsGossip("p")).toBe(false); // below the gossip threshold (-10), above the ban (-50)
    expect(bans).toEqual([]);
    let banned = false;
    for (let i = 0; i < 10 && !banned; i++) banned = s.recordGraftFlood("p");
    expect(banned).toBe(true);
    expect(bans).toEqual([["p", "graft-flood"]]);
    expect(s.isBanned("p")).toBe(true);
    expect(s.stats().scoreBans).toBe(1);
    // Evidence during the ban changes nothing; after it the peer starts over.
    expect(s.recordGraftFlood("p")).toBe(false);
    clock.t += 10 * 60_000;
    expect(s.isBanned("p")).toBe(false);
    expect(s.scoreOf("p")).toBe(0);
  });

  test("penalties decay: the same number spread over time never bans", () => {
    const { s, clock, bans } = scored();
    for (let i = 0; i < 1_000; i++) {
      s.recordUnservedAnnouncement("p");
      clock.t += SCORE_HALF_LIFE_MS / 4; // ~5.8 in flight at the steady state: under the tolerance of 6
    }
    expect(bans).toEqual([]);
    expect(s.scoreOf("p")).toBe(0);
  });

  test("violations lower the score; with other evidence they ban before the strikes would", () => {
    const { s } = scored();
    s.recordInvalid("p");
    expect(s.scoreOf("p")).toBeCloseTo(-4, 9);
    for (let i = 0; i < 12; i++) s.recordUnservedAnnouncement("p"); // 6 over the tolerance: −36
    expect(s.scoreOf("p")).toBeCloseTo(-40, 9);
    expect(s.recordInvalid("p")).toBe(false); // −44
    expect(s.recordInvalid("p")).toBe(false); // −48
    expect(s.recordInvalid("p")).toBe(true); // −52: the fourth strike of ten bans
    expect(s.isBanned("p")).toBe(true);
  });

  test("scoring off: the score is kept but never bans (strikes still do)", () => {
    const { s, bans } = scored({ scoring: false });
    for (let i = 0; i < 100; i++) s.recordGraftFlood("p");
    expect(s.scoreOf("p")).toBeLessThan(SCORE_BAN_THRESHOLD);
    expect(s.isBanned("p")).toBe(false);
    expect(s.acceptsGossip("p")).toBe(true);
    expect(bans).toEqual([]);
    for (let i = 0; i < 10; i++) s.recordInvalid("q");
    expect(s.isBanned("q")).toBe(true);
  });
});

describe("module rejections against the node's own baseline", () => {
  /** Items of `type` from `peers` in turn; each rejected with probability `rejectRate` (or always for `garbage`). */
  function stream(s: PeerScore, clock: { t: number }, o: { peers: string[]; items: number; rejectRate: number; type?: number; garbage?: string; seed?: number; gapMs?: number }) {
    const random = seededRandom(o.seed ?? 1);
    for (let i = 0; i < o.items; i++) {
      const peer = o.peers[i % o.peers.length]!;
      clock.t += o.gapMs ?? 100;
      if (peer === o.garbage || random() < o.rejectRate) s.recordRejection(peer, o.type ?? T);
      else s.recordFirstDelivery(peer, o.type ?? T);
    }
  }

  test("a module rejecting half of what it sees: no honest relay is ever charged, over many seeds and sample sizes", () => {
    let worst = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const { s, clock, bans } = scored();
      const peers = Array.from({ length: 8 }, (_, i) => `honest${i}`);
      stream(s, clock, { peers, items: 4_000, rejectRate: 0.5, seed });
      expect(bans).toEqual([]);
      for (const p of peers) worst = Math.min(worst, s.scoreParts(p).rejections);
    }
    expect(worst).toBe(0);
  });

  test("a module that rejects everything charges nobody (no peer delivered anything valid: no reference)", () => {
    const { s, clock, bans } = scored();
    stream(s, clock, { peers: ["a", "b", "c"], items: 3_000, rejectRate: 1 });
    expect(bans).toEqual([]);
    expect(s.table.baselineOf(T)).toBeUndefined();
  });

  test("garbage senders outnumbering the honest relays ten to one are all banned, the relays never", () => {
    for (const rejectRate of [0, 0.5]) {
      const { s, clock, bans } = scored();
      const spammers = Array.from({ length: 20 }, (_, i) => `spam${i}`);
      const random = seededRandom(7);
      for (let round = 0; round < 400; round++) {
        clock.t += 100;
        for (const h of ["a", "b"]) {
          if (random() < rejectRate) s.recordRejection(h, T);
          else s.recordFirstDelivery(h, T);
        }
        for (const p of spammers) if (!s.isBanned(p)) s.recordRejection(p, T);
      }
      expect(bans.map(([p]) => p).sort()).toEqual([...spammers].sort());
      expect(s.isBanned("a") || s.isBanned("b")).toBe(false);
      expect(s.table.baselineOf(T)).toBeCloseTo(rejectRate, 1); // the garbage did not move it
    }
  });

  test("a peer sending only garbage among honest relays is banned; the honest ones are not", () => {
    for (const rejectRate of [0, 0.5]) {
      const { s, clock, bans } = scored();
      stream(s, clock, { peers: ["a", "b", "c", "spam"], items: 2_000, rejectRate, garbage: "spam" });
      expect(bans.map(([p]) => p)).toEqual(["spam"]);
      expect(bans[0]![1]).toBe("module-rejections");
      for (const p of ["a", "b", "c"]) expect(s.isBanned(p)).toBe(false);
    }
  });

  test("the only source of a type is never judged on it, however much is rejected", () => {
    const { s, clock, bans } = scored();
    stream(s, clock, { peers: ["only"], items: 2_000, rejectRate: 0, garbage: "only" });
    expect(bans).toEqual([]);
    expect(s.scoreParts("only").rejections).toBe(0);
  });

  test("the baseline is per data type: a relay of a mostly rejected type beside relays of an accepted one is not charged", () => {
    const { s, clock, bans } = scored();
    // Two relays of T, whose module rejects 90% (an NSE-like module that keeps only better estimates) …
    stream(s, clock, { peers: ["t1", "t2"], items: 1_000, rejectRate: 0.9, type: T, seed: 3 });
    // … and two of U, accepted always.
    stream(s, clock, { peers: ["u1", "u2"], items: 1_000, rejectRate: 0, type: U, seed: 4 });
    expect(bans).toEqual([]);
    for (const p of ["t1", "t2", "u1", "u2"]) expect(s.scoreParts(p).rejections).toBe(0);
  });

  test("a module whose taste changes over time (accepts, then rejects all) charges none of the relays that see the change together", () => {
    const { s, clock, bans } = scored();
    stream(s, clock, { peers: ["a", "b", "c"], items: 1_000, rejectRate: 0 });
    stream(s, clock, { peers: ["a", "b", "c"], items: 3_000, rejectRate: 1 });
    expect(bans).toEqual([]);
  });

  test("tables stay bounded", () => {
    const { s } = scored({ maxTracked: 10, maxTypes: 4, maxTypesPerPeer: 2 });
    for (let i = 0; i < 100; i++) s.recordRejection(`p${i}`, i);
    for (let i = 0; i < 10; i++) for (let t = 0; t < 10; t++) s.recordFirstDelivery("x", t);
    expect(s.table.stats()).toMatchObject({ tracked: 10, types: 4 });
  });
});

describe("IP colocation", () => {
  test("keys: IPv4 address, IPv4-mapped, IPv6 /64; names have none", () => {
    expect(colocationKey("10.1.2.3")).toBe("4:10.1.2.3");
    expect(colocationKey("::ffff:10.1.2.3")).toBe("4:10.1.2.3");
    expect(colocationKey("2001:db8:0:1::5")).toBe("6:2001:db8:0:1");
    expect(colocationKey("2001:0db8:0000:0001:ffff:0:0:9")).toBe("6:2001:db8:0:1");
    expect(colocationKey("[2001:db8::1]")).toBe("6:2001:db8:0:0");
    expect(colocationKey("example.org")).toBeUndefined();
    expect(colocationKey("1::2::3")).toBeUndefined();
  });

  test("peers from one IP or /64 beyond the threshold lose score, capped so that colocation alone never bans", () => {
    const { s, bans } = scored();
    const up = (peer: string, host: string) => s.linkUp({ peer, host, port: 1, inbound: true });
    up("a", "10.0.0.1");
    up("b", "10.0.0.1");
    expect(s.scoreOf("a")).toBe(0);
    up("c", "10.0.0.1");
    expect(s.scoreOf("a")).toBe(-1);
    for (let i = 0; i < 4; i++) up(`v6-${i}`, `2001:db8:0:1::${i + 1}`);
    expect(s.scoreOf("v6-0")).toBe(-4);
    for (let i = 0; i < 20; i++) up(`many${i}`, "10.0.0.1");
    expect(s.scoreOf("a")).toBe(-20);
    expect(bans).toEqual([]);
    expect(s.isBanned("a")).toBe(false);
    s.linkDown("c", "gone");
    for (let i = 0; i < 20; i++) s.linkDown(`many${i}`, "gone");
    expect(s.scoreOf("a")).toBe(0);
    // Loopback is exempt (local nodes share 127.0.0.1) unless asked for.
    for (let i = 0; i < 10; i++) up(`local${i}`, "127.0.0.1");
    expect(s.scoreOf("local0")).toBe(0);
    const strict = scored({ colocationLoopback: true }).s;
    for (let i = 0; i < 10; i++) strict.linkUp({ peer: `local${i}`, host: "127.0.0.1", port: 1, inbound: true });
    expect(strict.scoreOf("local0")).toBe(-20);
  });
});
