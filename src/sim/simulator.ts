/**
 * `gossip simulate` as a library: builds a world of nodes that each run the real gossip core (src/gossip/core.ts)
 * on the simulated transport (world.ts), lets them join through real membership (each new node gets a few random
 * present nodes as bootstrappers), warms up until the links settle, runs a scenario (scenario.ts) that publishes the
 * items, and returns the figures as one JSON-ready object. Same options and seed → the same result, event for event
 * (only wall_seconds and peak_rss_mb differ).
 *
 * Must never: read the process clock or Math.random for anything the nodes see (wall time is only reported), or
 * re-implement protocol logic that the core owns.
 */
import {
  DEFAULT_CACHE_SIZE,
  DEFAULT_POW_DIFFICULTY,
  SIM_BOOTSTRAPPERS,
  SIM_DATA_TYPE,
  SIM_DIALS_SETTLE_MS,
  SIM_DRAIN_MAX_S,
  SIM_DRAIN_TURNS,
  SIM_QUIET_S,
  SIM_HASH_RATE,
  SIM_ITEM_BYTES,
  SIM_ITEMS,
  SIM_JITTER,
  SIM_JOIN_RATE_PER_S,
  SIM_JOIN_WINDOW_MAX_S,
  SIM_RATE_PER_S,
  SIM_SETTLED_SHARE,
  SIM_VIEW_SAMPLE_MS,
  SIM_VALIDATION_DELAY_MS,
  SIM_WARMUP_MAX_S,
  SIM_WARMUP_MIN_S,
} from "../defaults.ts";
import { createCore, type BroadcasterTunables } from "../gossip/core.ts";
import type { PeerAddress, PeerNetwork } from "../gossip/ports.ts";
import { randomDials } from "../testnet/dials.ts";
import { seededRandom } from "../util/random.ts";
import { adversaryCore, BEHAVIOURS } from "./adversary.ts";
import { SimMetrics, round, type Population } from "./metrics.ts";
import { deliveryResult, type SimResult } from "./result.ts";
import { parseLatency, Wire } from "./network-model.ts";
import { SimModules, SimNode, type ModuleHost } from "./node.ts";
import { overlayStats } from "./overlay.ts";
import { parseScenario, shuffle, type ScenarioContext } from "./scenario.ts";
import { ViewWatch } from "./views.ts";
import { World } from "./world.ts";

export type { SimResult } from "./result.ts";

/** Warm-up items carry sequence numbers from here (never those of measured items), and their traffic gets this long
 *  to end before the measured part starts. */
const WARMUP_SEQ_BASE = 1 << 30;
const SIM_WARMUP_ITEMS_DRAIN_S = 5;

export const DISSEMINATIONS = ["flood", "plumtree"] as const;
export type Dissemination = (typeof DISSEMINATIONS)[number];
export const OVERLAYS = ["classic", "hyparview"] as const;
export type SimOverlay = (typeof OVERLAYS)[number];

export interface SimOptions {
  nodes: number;
  degree: number;
  dissemination?: Dissemination;
  /** Broadcast-tree parameters other than the defaults of src/defaults.ts (`--tree key=value,…`: for tuning). */
  tree?: BroadcasterTunables["tree"];
  /** The membership every honest node runs (default classic, as the node's gossip.overlay). */
  overlay?: SimOverlay;
  scenario?: string;
  items?: number;
  /** Item data bytes. */
  size?: number;
  /** Items published per simulated second. */
  rate?: number;
  seed?: number;
  /** `coordinates` (default) or `fixed:MS` (one-way). */
  latency?: string;
  jitter?: number;
  loss?: number;
  /** Per-node uplink in Mbit/s; unset: unlimited. */
  uplinkMbit?: number;
  powDifficulty?: number;
  hashRate?: number;
  validationDelayMs?: number;
  /** Fraction of honest nodes whose module rejects everything. */
  invalidNodes?: number;
  /** Probability that any one validation answer is "invalid". */
  rejectRate?: number;
  /** false: honest nodes keep their peer scores but ban only by strikes (measurements with scoring off). */
  scoring?: boolean;
  /** false: honest nodes without isolation probes (src/gossip/link-usefulness.ts), to measure what they do. */
  probes?: boolean;
  /** Fraction of honest nodes without a subscriber (dead ends). */
  deadEnds?: number;
  bootstrappers?: number;
  joinRate?: number;
  /**
   * How the network forms. `join` (default): nodes join one by one at `joinRate`, each with `bootstrappers` random
   * present nodes, through real membership. `dials:K`: the testnet's way (src/testnet/network.ts): every node starts
   * at once with no bootstrapper, dials K random others chosen by randomDials with the same seed (so the same graph
   * as `gossip testnet --seed`), and starts membership once those dials are done.
   */
  topology?: string;
  cacheSize?: number;
  crash?: "reset" | "silent";
  warmupMinS?: number;
  /** Items published (and not measured) before the scenario's items. */
  warmupItems?: number;
  warmupMaxS?: number;
  drainMaxS?: number;
  /** After the drain, keep running at most this long until every live honest node's view is full (the delivery
   *  figures are taken before it; `views` and `overlay_end` after). */
  viewsWaitS?: number;
  /** The drain also ends once no delivery has happened for this long. */
  quietS?: number;
  strictDrain?: boolean;
  /** Called about once per wall second while it runs. */
  progress?: (p: Progress) => void;
  /** Called once at the end with the world and its measurements (tests and diagnostics look inside). */
  inspect?: (world: World, metrics: SimMetrics) => void;
  /** Called every simulated second (from the first join to the end) with the world, e.g. to time a recovery. */
  everySecond?: (world: World, phase: string) => void;
}

export interface Progress {
  simSeconds: number;
  phase: string;
  events: number;
  wallSeconds: number;
  published: number;
  items: number;
  /** Rough simulated seconds left (upper bound: the drain may end early). */
  simSecondsLeft: number;
}


/** Independent seeded streams, so that adding draws to one part does not shift another's. */
function stream(seed: number, k: number): () => number {
  return seededRandom(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(k + 1, 0xc2b2ae35));
}

function ipOf(index: number): string {
  const n = index + 1;
  return `10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function itemData(seq: number, size: number): Uint8Array {
  const data = new Uint8Array(Math.max(size, 4));
  new DataView(data.buffer).setUint32(0, seq);
  for (let i = 4; i < data.length; i++) data[i] = (seq * 31 + i) & 0xff;
  return data;
}

export async function simulate(o: SimOptions): Promise<SimResult> {
  const wallStart = performance.now();
  const seed = o.seed ?? 1;
  const degree = o.degree;
  const items = o.items ?? SIM_ITEMS;
  const size = o.size ?? SIM_ITEM_BYTES;
  const rate = o.rate ?? SIM_RATE_PER_S;
  const dissemination = o.dissemination ?? "flood";
  if (!DISSEMINATIONS.includes(dissemination)) throw new RangeError(`dissemination must be one of ${DISSEMINATIONS.join(", ")}`);
  const scenario = parseScenario(o.scenario ?? "steady");
  const latencySpec = o.latency ?? "coordinates";
  const metrics = new SimMetrics();
  const wire = new Wire({
    latency: parseLatency(latencySpec, stream(seed, 1)),
    jitter: o.jitter ?? (latencySpec.startsWith("fixed") ? 0 : SIM_JITTER),
    loss: o.loss ?? 0,
    uplinkBitsPerSecond: o.uplinkMbit === undefined ? Infinity : o.uplinkMbit * 1e6,
    random: stream(seed, 2),
  });
  const world = new World({
    wire,
    metrics,
    powDifficulty: o.powDifficulty ?? DEFAULT_POW_DIFFICULTY,
    hashesPerSecond: o.hashRate ?? SIM_HASH_RATE,
    random: stream(seed, 3),
    crash: o.crash ?? "reset",
    drainTurns: SIM_DRAIN_TURNS,
    strictDrain: o.strictDrain,
  });
  const topology = stream(seed, 4);
  const scenarioRandom = stream(seed, 5);
  const moduleRandom = stream(seed, 6);
  const validationDelay = o.validationDelayMs ?? SIM_VALIDATION_DELAY_MS;
  const rejectRate = o.rejectRate ?? 0;
  const cacheSize = o.cacheSize ?? DEFAULT_CACHE_SIZE;
  const host: ModuleHost = {
    dataType: SIM_DATA_TYPE,
    notified: (node, data) => {
      const track = metrics.track(data);
      if (track !== undefined) metrics.delivered(track, node.index, world.now);
      // Warm-up items are valid too (honest nodes published them), but not measured. Items travel by reference in
      // the simulator, so the very array tells them apart from garbage that happens to look alike.
      return track !== undefined || warmupData.has(data);
    },
    rejectsNow: () => rejectRate > 0 && moduleRandom() < rejectRate,
    answerLater: (node, resolve, verdict) => world.answerAt(world.now + validationDelay, node, resolve, verdict),
  };

  const broadcaster: BroadcasterTunables = { dissemination, tree: o.tree };
  const warmupData = new WeakSet<Uint8Array>();
  const alive: SimNode[] = [];
  const ports: PeerNetwork[] = [];
  const colluders = new Set<string>();
  /** A few random live nodes already present (sampled, not shuffled: joins must stay O(1) at 100,000 nodes). */
  const bootstrappersFor = (): PeerAddress[] => {
    const out: PeerAddress[] = [];
    const picked = new Set<SimNode>();
    const k = Math.min(o.bootstrappers ?? SIM_BOOTSTRAPPERS, alive.length);
    for (let tries = 0; out.length < k && tries < 20 * k; tries++) {
      const n = alive[Math.floor(topology() * alive.length)]!;
      if (!n.alive || picked.has(n)) continue;
      picked.add(n);
      out.push(n.address);
    }
    return out;
  };
  const spawn = (behaviour: string | undefined, start = true, through?: SimNode[]): SimNode => {
    const index = world.nodes.length;
    const random = stream(seed, 1000 + index);
    let node: SimNode | undefined;
    const clock = world.clockFor(() => node);
    node = new SimNode(index, `n${index}`, ipOf(index), 6001, topology(), behaviour === undefined, world.now, clock, random);
    const bootstrappers = through?.map((n) => n.address) ?? (start ? bootstrappersFor() : []);
    world.add(node);
    const network = world.portOf(node);
    if (behaviour === undefined) {
      const modules = new SimModules(node, host, topology() >= (o.deadEnds ?? 0), topology() < (o.invalidNodes ?? 0));
      node.modules = modules;
      node.logic = createCore({ network, local: modules, clock, random, degree, cacheSize, bootstrappers, broadcaster, overlay: o.overlay, score: { scoring: o.scoring }, usefulness: o.probes === false ? { probes: false } : undefined });
    } else {
      colluders.add(node.id);
      const base = { network, clock, random, degree, cacheSize, bootstrappers, dataType: SIM_DATA_TYPE };
      node.logic = BEHAVIOURS[behaviour]!({ ...base, colluders, realCore: (local) => adversaryCore(base, local) });
    }
    alive.push(node);
    ports.push(network);
    if (start) node.logic.start();
    return node;
  };

  // Who joins, in which order: honest nodes and (attack scenarios) adversaries interleaved at random.
  const adversaries = scenario.adversary ? Math.round(scenario.adversary.perHonest * o.nodes) : 0;
  const order: (string | undefined)[] = [...Array<undefined>(o.nodes).fill(undefined), ...Array<string>(adversaries).fill(scenario.adversary?.behaviour ?? "")];
  shuffle(order, topology);
  if (order[0] !== undefined) order.unshift(order.splice(order.indexOf(undefined), 1)[0]);
  // Big networks join faster, so that the joins (whose membership ticks cost O(N) per simulated second) stay short.
  const joinRate = o.joinRate ?? Math.max(SIM_JOIN_RATE_PER_S, order.length / SIM_JOIN_WINDOW_MAX_S);
  let joinEnd = ((order.length - 1) * 1000) / joinRate;
  const dials = /^dials:(\d+)$/.exec(o.topology ?? "join");
  if (dials !== null) {
    const k = Number(dials[1]);
    world.at(0, () => {
      for (const behaviour of order) spawn(behaviour, false);
      randomDials(order.length, k, seededRandom(seed)).forEach((targets, i) => {
        for (const j of targets) ports[i]!.dial({ host: world.nodes[j]!.host, port: world.nodes[j]!.listenPort }).catch(() => {});
      });
    });
    joinEnd = SIM_DIALS_SETTLE_MS;
    world.at(joinEnd, () => {
      for (const n of alive) n.logic?.start();
    });
  } else if ((o.topology ?? "join") === "join") {
    order.forEach((behaviour, k) => world.at((k * 1000) / joinRate, () => void spawn(behaviour)));
  } else {
    throw new RangeError(`topology must be join or dials:K, got "${o.topology}"`);
  }

  // Progress and the phase we are in.
  let phase = "join";
  let published = 0;
  let plannedEnd = joinEnd + ((o.warmupMinS ?? SIM_WARMUP_MIN_S) + items / rate + (o.drainMaxS ?? SIM_DRAIN_MAX_S)) * 1000;
  let lastReport = performance.now();
  // This run's own peak (the process's maxRSS would include earlier runs of a sweep), sampled every 4096 events.
  let peakRss = process.memoryUsage.rss();
  const progress = () => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    if (o.progress === undefined) return;
    const now = performance.now();
    if (now - lastReport < 1000) return;
    lastReport = now;
    o.progress({
      simSeconds: world.now / 1000,
      phase,
      events: world.events,
      wallSeconds: (now - wallStart) / 1000,
      published,
      items,
      simSecondsLeft: Math.max(0, plannedEnd - world.now) / 1000,
    });
  };

  if (o.everySecond !== undefined) {
    const observe = o.everySecond;
    const tick = () => {
      observe(world, phase);
      world.at(world.now + 1000, tick);
    };
    world.at(1000, tick);
  }

  // Warm-up: until the links settle (see SIM_WARMUP_* and docs/simulation.md).
  await world.runUntil(joinEnd + (o.warmupMinS ?? SIM_WARMUP_MIN_S) * 1000, undefined, progress);
  phase = "warm-up";
  const warmupEnd = joinEnd + (o.warmupMaxS ?? SIM_WARMUP_MAX_S) * 1000;
  while (world.now < warmupEnd && !settled(alive, degree)) await world.runUntil(world.now + 1000, undefined, progress);
  const overlay = overlayStats(alive.filter((n) => n.alive));
  // Warm-up items (`--warmup-items`): published before the measured ones and never measured, so that broadcast
  // trees have formed (issue 15 measures 100 items after 20 warm-up items); their traffic ends before t0.
  const warmupItems = o.warmupItems ?? 0;
  for (let k = 0; k < warmupItems; k++) {
    world.at(world.now + (k / rate) * 1000, () => {
      const candidates = alive.filter((n) => n.alive && n.honest && n.modules!.subscribed);
      if (candidates.length === 0) return;
      const publisher = candidates[Math.floor(scenarioRandom() * candidates.length)]!;
      const data = itemData(WARMUP_SEQ_BASE + k, size);
      warmupData.add(data);
      publisher.logic!.announce!({ ttl: 0, dataType: SIM_DATA_TYPE, data });
    });
  }
  if (warmupItems > 0) await world.runUntil(world.now + (warmupItems / rate + SIM_WARMUP_ITEMS_DRAIN_S) * 1000, undefined, progress);
  const t0 = world.now;
  const wallWarmupEnd = performance.now();

  // The scenario and its items.
  phase = "scenario";
  const live = () => {
    let w = 0;
    for (const n of alive) if (n.alive) alive[w++] = n;
    alive.length = w;
    return alive.slice();
  };
  const views = new ViewWatch(() => alive, degree);
  views.start(t0);
  const sampleViews = () => {
    views.observe(world.now);
    world.at(world.now + SIM_VIEW_SAMPLE_MS, sampleViews);
  };
  const ctx: ScenarioContext = {
    t0,
    items,
    rate,
    nodes: o.nodes,
    degree,
    now: () => world.now,
    random: scenarioRandom,
    at: (time, fn) => world.at(time, fn),
    publish: (phaseName, side) => {
      const candidates = live().filter((n) => n.honest && n.modules!.subscribed && (side === undefined || n.side === side));
      if (candidates.length === 0) return;
      const publisher = candidates[Math.floor(scenarioRandom() * candidates.length)]!;
      if (published === 0) {
        world.flushPings();
        metrics.startMeasuring();
      }
      phase = "publishing";
      const data = itemData(published, size);
      metrics.published({ seq: published++, data, publisher: publisher.index, publishedAt: world.now, nodeCount: world.nodes.length, side: side ?? -1, phase: phaseName });
      publisher.logic!.announce!({ ttl: 0, dataType: SIM_DATA_TYPE, data });
    },
    liveNodes: live,
    crash: (node) => world.crash(node),
    spawnHonest: (through) => spawn(undefined, true, through),
    partition: (sideOf, healAt) => {
      for (const n of live()) n.side = sideOf(n);
      world.partition(healAt);
    },
  };
  const warmupSimSeconds = t0 / 1000;
  const lastPublish = scenario.start(ctx);
  world.at(t0, sampleViews); // after the scenario's own events at t0 (same time, scheduled later)
  plannedEnd = lastPublish + (o.drainMaxS ?? SIM_DRAIN_MAX_S) * 1000;
  await world.runUntil(lastPublish, undefined, progress);
  const wallPublishEnd = performance.now();
  phase = "drain";
  const population: Population = {
    isExpected: (i, t) => {
      const n = world.nodes[i]!;
      return n.alive && n.honest && n.modules!.subscribed && i !== t.publisher && (t.side < 0 || n.side === t.side);
    },
  };
  const quietMs = (o.quietS ?? SIM_QUIET_S) * 1000;
  const quietSince = () => Math.max(metrics.lastDeliveryAt, lastPublish);
  while (world.now < plannedEnd && world.now - quietSince() < quietMs && !metrics.allDelivered(population)) {
    await world.runUntil(world.now + 1000, undefined, progress);
  }
  const wallDrainEnd = performance.now();
  world.flushPings();
  const delivery = structuredClone(deliveryResult(metrics, population, size));
  const viewsUntil = world.now + (o.viewsWaitS ?? 0) * 1000;
  while (world.now < viewsUntil && !views.allFull) await world.runUntil(world.now + 1000, undefined, progress);
  o.inspect?.(world, metrics);

  return {
    nodes: o.nodes,
    degree,
    dissemination,
    membership: o.overlay ?? "classic",
    scenario: scenario.name,
    seed,
    items: metrics.items.length,
    size,
    rate,
    latency: wire.latency.description,
    uplink_mbit: o.uplinkMbit ?? null,
    adversaries,
    ...delivery,
    honest_peers_banned: metrics.honestBansOfHonest,
    adversaries_banned: metrics.honestBansOfAdversaries,
    warmup: { sim_seconds: warmupSimSeconds, messages: metrics.warmup.messages, bytes: metrics.warmup.bytes },
    overlay,
    overlay_end: overlayStats(alive.filter((n) => n.alive)),
    views: views.figures(),
    ...(scenario.figures ? { newcomers: scenario.figures() } : {}),
    sim_seconds: round(world.now / 1000, 3),
    wall_seconds: round((performance.now() - wallStart) / 1000, 2),
    wall_phases: {
      warmup: round((wallWarmupEnd - wallStart) / 1000, 2),
      scenario: round((wallPublishEnd - wallWarmupEnd) / 1000, 2),
      drain: round((wallDrainEnd - wallPublishEnd) / 1000, 2),
    },
    peak_rss_mb: Math.round(Math.max(peakRss, process.memoryUsage.rss()) / 1048576),
    events: world.events,
  };
}

/** The links have settled: no live node without a link, and nearly all at `degree` or more. */
function settled(nodes: SimNode[], degree: number): boolean {
  let full = 0;
  let live = 0;
  for (const n of nodes) {
    if (!n.alive) continue;
    live++;
    if (n.links.size === 0) return false;
    if (n.links.size >= degree) full++;
  }
  return full >= SIM_SETTLED_SHARE * live;
}
