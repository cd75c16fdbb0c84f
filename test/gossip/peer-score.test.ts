import { describe, expect, test } from "bun:test";
import { PeerScore } from "../../src/gossip/peer-score.ts";

describe("PeerScore", () => {
  test("strikes count within a window that opens at the first strike", () => {
    let t = 0;
    const s = new PeerScore({ threshold: 3, windowMs: 1_000, banMs: 5_000, now: () => t });
    expect(s.recordInvalid("p")).toBe(false);
    expect(s.recordInvalid("p")).toBe(false);
    t = 1_000; // window over: counting starts again
    expect(s.strikesOf("p")).toBe(0);
    expect(s.recordInvalid("p")).toBe(false);
    expect(s.recordInvalid("p")).toBe(false);
    expect(s.recordInvalid("p")).toBe(true);
    expect(s.isBanned("p")).toBe(true);
    expect(s.isBanned("q")).toBe(false);
    t += 4_999;
    expect(s.isBanned("p")).toBe(true);
    t += 1;
    expect(s.isBanned("p")).toBe(false);
    expect(s.strikesOf("p")).toBe(0);
  });

  test("memory stays bounded however many peers misbehave", () => {
    const s = new PeerScore({ threshold: 2, maxTracked: 10, now: () => 0 });
    for (let i = 0; i < 1_000; i++) s.recordInvalid(`p${i}`);
    for (let i = 0; i < 1_000; i++) s.ban(`b${i}`);
    expect(s.stats()).toEqual({ tracked: 10, banned: 10, scoreBans: 0 });
  });

  test("rejections by local modules with no other peer to compare with are counted, bounded, and never ban", () => {
    const s = new PeerScore({ threshold: 2, maxTracked: 10, now: () => 0 });
    for (let i = 0; i < 100; i++) s.recordRejection("relay", 1);
    expect(s.rejectionsOf("relay")).toBe(100);
    expect(s.isBanned("relay")).toBe(false);
    expect(s.strikesOf("relay")).toBe(0);
    for (let i = 0; i < 1_000; i++) s.recordRejection(`p${i}`, 1);
    expect(s.rejectionsOf("relay")).toBe(0); // the stalest record went first
    expect(s.stats()).toEqual({ tracked: 10, banned: 0, scoreBans: 0 });
  });
});
