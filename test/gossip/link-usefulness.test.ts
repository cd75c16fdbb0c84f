/**
 * Link usefulness in memory (src/gossip/link-usefulness.ts): a link that says nothing while items flow through others
 * is named useless; an honest lazy link (announcements), an eager one (duplicates) and an exempt tree child are not;
 * cache replays and bursts of old items do not make the other links look silent; and the score side: a second drop
 * as useless bans, a first does not.
 */
import { describe, expect, test } from "bun:test";
import { SCORE_BAN_THRESHOLD, SCORE_GOSSIP_THRESHOLD } from "../../src/defaults.ts";
import { IsolationProbes, LinkUsefulness, type IsolationProbeParams, type LinkUsefulnessParams } from "../../src/gossip/link-usefulness.ts";
import { PeerScore } from "../../src/gossip/peer-score.ts";
import type { CoreOptions } from "../../src/gossip/core.ts";
import type { PeerEvents } from "../../src/gossip/ports.ts";
import { MemNetwork, spawn, type MemNode } from "./memnet.ts";

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

describe("isolation probes", () => {
  /** The links quiet; the node's own links (not probes) talk. */
  const ISOLATED = { quiet: true, ownQuiet: true };
  const TALKING = { quiet: false, ownQuiet: false };
  const probeParams: IsolationProbeParams = { delayMs: 10_000, intervalMs: 2_000, perRound: 3, probeAgeMs: 2_000, backoffAfter: 6, maxIntervalMs: 16_000 };

  test("what the links said since they came up, but for those excepted, counted up to enough", () => {
    const u = new LinkUsefulness(params);
    const none = () => false;
    expect([u.size, u.messagesFrom(none)]).toEqual([0, 0]);
    u.linkUp("a", 0);
    u.linkUp("b", 0);
    expect([u.size, u.messagesFrom(none)]).toEqual([2, 0]);
    for (let i = 0; i < 5; i++) u.message("b", 100 + i); // duplicates, tree messages: anything counts
    u.message("a", 200);
    expect(u.messagesFrom(none)).toBe(6);
    expect(u.messagesFrom((peer) => peer === "b")).toBe(1);
    expect(u.messagesFrom(none, 3)).toBeGreaterThanOrEqual(3);
    u.linkDown("b");
    u.linkUp("b", 300); // a new link: what the old one said does not count
    expect(u.messagesFrom(none)).toBe(1);
    expect(u.isMute("b")).toBe(true);
    expect(u.isMute("a")).toBe(false);
  });

  test("probes only once the links have been quiet for delayMs, tops up to perRound per round, never while they talk", () => {
    const p = new IsolationProbes(probeParams);
    const mute = () => true;
    expect(p.tick(0, TALKING, mute)).toEqual({ dial: 0, close: [], kept: [] });
    expect(p.tick(1_000, ISOLATED, mute).dial).toBe(0); // quiet since 1 s
    expect(p.tick(10_999, ISOLATED, mute).dial).toBe(0);
    expect(p.tick(11_000, ISOLATED, mute).dial).toBe(3);
    p.dialed(3);
    p.answered("x", 11_100);
    p.answered(undefined, 11_100); // a failed dial frees its slot
    expect(p.tick(12_000, ISOLATED, mute).dial).toBe(0); // the round's interval not over
    expect(p.tick(13_000, ISOLATED, mute).dial).toBe(1); // one dial pending, one probe linked: one more
    // The links talk: no probe, and the quiet period starts over.
    expect(p.tick(16_000, TALKING, mute).dial).toBe(0);
    expect(p.tick(17_000, ISOLATED, mute).dial).toBe(0);
    expect(p.tick(26_999, ISOLATED, mute).dial).toBe(0);
  });

  test("a probe mute for probeAgeMs is closed, one that talked while the own links stayed quiet is kept; only probes are ever closed", () => {
    const p = new IsolationProbes(probeParams);
    const said = new Set<string>();
    const isMute = (peer: string) => !said.has(peer);
    p.tick(0, ISOLATED, isMute);
    expect(p.tick(10_000, ISOLATED, isMute).dial).toBe(3);
    p.dialed(3);
    for (const peer of ["censor", "honest", "gone"]) p.answered(peer, 10_500);
    p.linkDown("gone");
    said.add("honest");
    const wayIn = { quiet: false, ownQuiet: true }; // the probe "honest" talks, the node's own links stay quiet
    expect(p.tick(12_000, wayIn, isMute).close).toEqual([]); // up 1.5 s only
    expect(p.tick(12_500, wayIn, isMute)).toEqual({ dial: 0, close: ["censor"], kept: ["honest"] }); // "gone" went by itself
    expect(p.stats()).toMatchObject({ dialed: 3, closed: 1, kept: 1, unneeded: 0 });
    expect(p.isProbe("honest")).toBe(false); // an ordinary link now
    // Never more than perRound probes tracked, whatever answers arrive.
    for (const peer of ["a", "b", "c", "d", "e"]) p.answered(peer, 13_000);
    expect(["a", "b", "c", "d", "e"].filter((x) => p.isProbe(x))).toHaveLength(3);
  });

  test("a probe that talks when the node's own links talk too (a quiet network came alive) is closed as not needed", () => {
    const p = new IsolationProbes(probeParams);
    p.tick(0, ISOLATED, () => true);
    expect(p.tick(10_000, ISOLATED, () => true).dial).toBe(3);
    p.dialed(3);
    for (const peer of ["a", "b", "c"]) p.answered(peer, 10_000);
    expect(p.tick(12_000, TALKING, (peer) => peer === "c").close).toEqual(["a", "b", "c"]);
    expect(p.stats()).toMatchObject({ closed: 1, kept: 0, unneeded: 2 });
  });

  test("the interval doubles after every backoffAfter failed probes in a row, up to the cap, and starts over once the links talk", () => {
    const p = new IsolationProbes(probeParams);
    const mute = () => true;
    let now = 0;
    p.tick(now, ISOLATED, mute);
    now = 10_000;
    const rounds: number[] = [];
    let n = 0;
    while (now < 200_000) {
      const { dial } = p.tick(now, ISOLATED, mute);
      if (dial > 0) {
        rounds.push(now);
        p.dialed(dial);
        for (let i = 0; i < dial; i++) p.answered(`p${n++}`, now);
      }
      now += 1_000;
    }
    const gaps = rounds.slice(1).map((t, i) => t - rounds[i]!);
    // 3 probes per round, each closed 2 s later: 6 failures per doubling; a round waits for its probes' verdict too.
    expect(gaps.slice(0, 8)).toEqual([2_000, 2_000, 4_000, 4_000, 8_000, 8_000, 16_000, 16_000]);
    expect(Math.max(...gaps)).toBe(16_000);
    expect(p.intervalMs()).toBe(16_000);
    p.tick(now, TALKING, mute);
    expect(p.intervalMs()).toBe(2_000);
  });

  test("parameters are checked", () => {
    expect(() => new IsolationProbes({ ...probeParams, perRound: 0 })).toThrow(RangeError);
    expect(() => new IsolationProbes({ ...probeParams, maxIntervalMs: 1_000 })).toThrow(RangeError);
    expect(() => new IsolationProbes({ ...probeParams, backoffAfter: 0 })).toThrow(RangeError);
  });
});

describe("isolation probes through the core (in memory)", () => {
  const T = 0x150;
  /** `count` items from `peer`'s node, one every `everyMs` of the network's clock (the first at once). */
  function publishEvery(net: MemNetwork, peer: ReturnType<typeof spawn>, count: number, everyMs: number): void {
    let k = 0;
    const publish = () => {
      peer.core.announce({ ttl: 0, dataType: T, data: new TextEncoder().encode(`item ${k++}`) });
      if (k < count) net.clock.setTimeout(publish, everyMs);
    };
    publish();
  }

  /** Accepts links and never says anything on any plane. */
  const censorEvents: PeerEvents = { linkUp() {}, linkDown() {}, item() {}, tree() {}, views() {}, peers() {}, peersRequested() {} };

  /** Honest a — b (items published at a), and x linked to three censors only, knowing b's address. */
  async function cutOff(usefulness?: CoreOptions["usefulness"]) {
    const net = new MemNetwork();
    const [a, b, x] = [net.addNode(), net.addNode(), net.addNode()];
    const censors = [net.addNode(), net.addNode(), net.addNode()];
    for (const c of censors) [c.events, c.speaksTrees] = [censorEvents, false]; // as the simulator's censors: they flood (a silent tree child is exempt)
    for (const n of [a, b, x]) n.modules.subscribe(T);
    const pa = spawn(net, a, { membership: { degree: 3, rotationIntervalMs: 1e9 } });
    const pb = spawn(net, b, { membership: { degree: 3, rotationIntervalMs: 1e9, bootstrappers: [a.address] } });
    const px = spawn(net, x, { membership: { degree: 3, rotationIntervalMs: 1e9, bootstrappers: censors.map((c) => c.address) }, usefulness });
    for (const p of [pa, pb, px]) p.core.start(); // membership and the usefulness judge
    await net.runFor(2_000);
    px.membership!.addKnownAddresses([b.address]); // known, but x is at degree and does not dial it
    publishEvery(net, pa, 150, 200);
    await net.runFor(32_000, 250);
    const got = x.modules.subscribers[0]!.notified.length;
    const stop = () => {
      for (const p of [pa, pb, px]) p.core.stop();
    };
    return { net, x, b, px, got, censors, stop };
  }

  test("a node linked to censors only dials more addresses, keeps the one that replays items, and then drops the censors", async () => {
    const { x, b, px, got, censors, stop } = await cutOff();
    expect(x.links.has(b.localId)).toBe(true);
    expect(got).toBeGreaterThan(100);
    expect(px.core.stats().probes).toMatchObject({ kept: 1 });
    // With items flowing through b, the censors are judged (mute): each dropped and charged, and banned when
    // dropped again after its redial.
    expect(censors.every((c) => px.score.isBanned(c.localId) || px.score.scoreParts(c.localId).penalties < 0)).toBe(true);
    expect(censors.filter((c) => px.score.isBanned(c.localId)).length).toBeGreaterThanOrEqual(2);
    stop();
  });

  test("an island: two nodes cut off together, hearing only each other's few items, still probe and both get in", async () => {
    const net = new MemNetwork();
    const [a, b, x, y] = [net.addNode(), net.addNode(), net.addNode(), net.addNode()];
    const censors = [net.addNode(), net.addNode(), net.addNode()];
    for (const c of censors) [c.events, c.speaksTrees] = [censorEvents, false];
    for (const n of [a, b, x, y]) n.modules.subscribe(T);
    const membership = (bootstrappers: MemNode[]) => ({ membership: { degree: 3, rotationIntervalMs: 1e9, bootstrappers: bootstrappers.map((n) => n.address) } });
    const pa = spawn(net, a, membership([]));
    const pb = spawn(net, b, membership([a]));
    const py = spawn(net, y, membership(censors.slice(0, 2)));
    const px = spawn(net, x, membership([censors[2]!, y]));
    for (const p of [pa, pb, px, py]) p.core.start();
    await net.runFor(2_000);
    expect(x.links.has(y.localId)).toBe(true);
    for (const p of [px, py]) p.membership!.addKnownAddresses([b.address]);
    for (let i = 0; i < 3; i++) py.core.announce({ ttl: 0, dataType: T, data: new TextEncoder().encode(`island ${i}`) });
    publishEvery(net, pa, 150, 200);
    await net.runFor(32_000, 250);
    expect(x.modules.subscribers[0]!.notified.length).toBeGreaterThan(100);
    expect(y.modules.subscribers[0]!.notified.length).toBeGreaterThan(100);
    for (const p of [pa, pb, px, py]) p.core.stop();
  });

  test("without probes it stays cut off", async () => {
    const { x, b, px, got, stop } = await cutOff({ probes: false });
    expect(got).toBe(0);
    expect(x.links.has(b.localId)).toBe(false);
    expect(px.core.stats().probes).toBeUndefined();
    stop();
  });
});
