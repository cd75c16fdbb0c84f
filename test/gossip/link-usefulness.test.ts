/**
 * Link usefulness in memory (src/gossip/link-usefulness.ts): a link that says nothing while items flow through others
 * is named useless; an honest lazy link (announcements), an eager one (duplicates) and an exempt tree child are not;
 * cache replays and bursts of old items do not make the other links look silent; and the score side: a second drop
 * as useless bans, a first does not.
 */
import { describe, expect, test } from "bun:test";
import { SCORE_BAN_THRESHOLD, SCORE_GOSSIP_THRESHOLD } from "../../src/defaults.ts";
import { LinkUsefulness, type LinkUsefulnessParams } from "../../src/gossip/link-usefulness.ts";
import { PeerScore } from "../../src/gossip/peer-score.ts";

const params: LinkUsefulnessParams = { minItems: 10, minItemsAfterTalk: 12, minLinkAgeMs: 2_000, maxDropsPerJudgement: 2, maxLinks: 8, replayWindowMs: 1_000, burstGapMs: 20 };

/** `count` new items, one every 100 ms from `parent`; `also` says something about each (an announcement). */
function flow(u: LinkUsefulness, t: { now: number }, parent: string, count: number, also: string[] = []): void {
  for (let i = 0; i < count; i++) {
    t.now += 100;
    u.message(parent, t.now);
    u.first(parent, true, t.now);
    for (const p of also) u.message(p, t.now);
  }
}

describe("link usefulness", () => {
  test("a silent link is useless once enough items came through others; talking links are not", () => {
    const u = new LinkUsefulness(params);
    const t = { now: 0 };
    for (const p of ["parent", "lazy", "censor"]) u.linkUp(p, t.now);
    flow(u, t, "parent", 9, ["lazy"]);
    t.now = 3_000;
    expect(u.judge(t.now)).toEqual([]); // 9 items: not enough to judge
    flow(u, t, "parent", 1, ["lazy"]);
    expect(u.judge(t.now)).toEqual([{ peer: "censor", mute: true }]);
    expect(u.recordOf("lazy")!.silentFor).toBe(0);
    expect(u.stats().judgedUseless).toBe(1);
  });

  test("a young link is not judged, and an exempt one (a tree child) never", () => {
    const u = new LinkUsefulness(params);
    const t = { now: 0 };
    u.linkUp("parent", 0);
    u.linkUp("child", 0);
    flow(u, t, "parent", 5);
    u.linkUp("young", t.now);
    flow(u, t, "parent", 15);
    expect(u.judge(t.now, (p) => p === "child")).toEqual([]); // young: up for 1.5 s only
    t.now += 1_000;
    expect(u.judge(t.now, (p) => p === "child")).toEqual([{ peer: "young", mute: true }]);
  });

  test("one first announcement or one duplicate resets a link's silence; a link that talked before is not mute", () => {
    const u = new LinkUsefulness(params);
    const t = { now: 0 };
    for (const p of ["parent", "announcer", "quiet"]) u.linkUp(p, 0);
    u.message("quiet", 50);
    flow(u, t, "parent", 9);
    u.first("announcer", false, t.now); // an IHAVE of an ID we did not have: no new item yet, but useful
    flow(u, t, "parent", 5);
    t.now = 5_000;
    expect(u.judge(t.now)).toEqual([{ peer: "quiet", mute: false }]);
  });

  test("a cache replay and a burst of old items from one peer count as at most one item for the others' silence", () => {
    const u = new LinkUsefulness(params);
    const t = { now: 5_000 };
    for (const p of ["honest", "bridge", "newcomer"]) u.linkUp(p, 0);
    // A new link's cache replay: 50 items marked replayed.
    for (let i = 0; i < 50; i++) {
      u.message("newcomer", t.now, true);
      u.first("newcomer", true, t.now);
    }
    // A neighbour that just bridged to another part of the network forwards what it got there, all at once.
    t.now += 2_000;
    for (let i = 0; i < 50; i++) {
      u.message("bridge", t.now);
      u.first("bridge", true, t.now);
    }
    expect(u.recordOf("honest")!.silentFor).toBe(1); // the burst's first item only
    expect(u.judge(t.now)).toEqual([]);
  });

  test("longest silence first, at most maxDropsPerJudgement; records bounded and gone with the link", () => {
    const u = new LinkUsefulness(params);
    const t = { now: 0 };
    u.linkUp("parent", 0);
    u.linkUp("a", 0);
    flow(u, t, "parent", 5);
    u.linkUp("b", 0);
    u.linkUp("c", 0);
    flow(u, t, "parent", 20);
    t.now = 10_000;
    const dropped = u.judge(t.now).map((x) => x.peer);
    expect(dropped).toHaveLength(2);
    expect(dropped[0]).toBe("a"); // silent for 25 items; b and c for 20
    for (let i = 0; i < 20; i++) u.linkUp(`p${i}`, t.now);
    expect(u.stats().tracked).toBe(params.maxLinks);
    u.linkDown("p19");
    expect(u.recordOf("p19")).toBeUndefined();
  });

  test("parameters are checked", () => {
    expect(() => new LinkUsefulness({ ...params, minItems: 0 })).toThrow(RangeError);
    expect(() => new LinkUsefulness({ ...params, maxDropsPerJudgement: 0 })).toThrow(RangeError);
  });
});

describe("the score of a peer dropped as useless", () => {
  test("one drop stays above the gossip threshold; a second soon after bans; it decays in between", () => {
    const clock = { t: 0 };
    const bans: [string, string][] = [];
    const s = new PeerScore({ now: () => clock.t, onScoreBan: (peer, why) => bans.push([peer, why]) });
    expect(s.recordUselessLink("c")).toBe(false);
    expect(s.scoreOf("c")).toBeGreaterThan(SCORE_GOSSIP_THRESHOLD);
    clock.t += 10_000;
    expect(s.recordUselessLink("c")).toBe(true);
    expect(bans).toEqual([["c", "useless-link"]]);
    expect(s.isBanned("c")).toBe(true);
    // Dropped twice far apart (half-lives between): never banned.
    expect(s.recordUselessLink("h")).toBe(false);
    clock.t += 20 * 60_000;
    expect(s.recordUselessLink("h")).toBe(false);
    expect(s.scoreOf("h")).toBeGreaterThan(SCORE_BAN_THRESHOLD);
  });

  test("first copies reach the usefulness hook whatever the verdict, first announcements too, banned peers never", () => {
    const firsts: [string, boolean][] = [];
    const s = new PeerScore({ now: () => 0, onFirst: (peer, newItem) => firsts.push([peer, newItem]) });
    s.recordFirstDelivery("a", 1);
    s.recordRejection("b", 1); // the module's taste is the baseline's business: b did bring the item first
    s.recordFirstAnnouncement("c");
    s.ban("d");
    s.recordFirstDelivery("d", 1);
    s.recordFirstAnnouncement("d");
    expect(firsts).toEqual([
      ["a", true],
      ["b", true],
      ["c", false],
    ]);
  });
});

describe("a full inbound table", () => {
  test("gives way for the youngest link old enough that never said anything (not exempt), never for one that talked", () => {
    const u = new LinkUsefulness(params);
    u.linkUp("old-mute", 0);
    u.linkUp("talker", 0);
    u.linkUp("mute", 5_000);
    u.linkUp("child", 6_000);
    u.linkUp("too-young", 9_000);
    u.message("talker", 100);
    const all = ["talker", "old-mute", "mute", "child", "too-young"];
    expect(u.youngestMute(all, 10_000, (p) => p === "child")).toBe("mute");
    expect(u.youngestMute(["talker", "too-young"], 10_000)).toBeUndefined();
    expect(u.youngestMute(["talker", "old-mute", "child"], 10_000)).toBe("child");
  });
});
