/**
 * Scenarios (`--scenario`): what happens to the network once it has formed, and when the items are published.
 * `steady`; `failure:F[:S]` (a fraction F of the nodes crashes at once, items from S s later); `churn[:R]` (a fraction R
 * of the nodes replaced per minute); `partition[:F]` (a fraction F split off, items on both sides, heal, items);
 * `attack:BEHAVIOUR:RATIO` (RATIO adversary nodes per honest node, running an adversary.ts behaviour, present from the
 * start); `newcomer[:K]` (K nodes join one by one, each through one bootstrapper; 60 s later, how many of their links
 * go to that bootstrapper's neighbours). Parsing is pure; `start` only schedules through the ScenarioContext it is given.
 */
import {
  SIM_CHURN_LEAD_S,
  SIM_FAILURE_PUBLISH_AFTER_S,
  SIM_HEAL_WAIT_S,
  SIM_NEWCOMER_GAP_S,
  SIM_NEWCOMER_WAIT_S,
  SIM_NEWCOMERS,
  SIM_PARTITION_S,
} from "../defaults.ts";
import { UsageError } from "../errors.ts";
import { BEHAVIOURS } from "./adversary.ts";
import type { SimNode } from "./node.ts";

/** Default replacement rate of a bare `churn`, and split fraction of a bare `partition`. */
const DEFAULT_CHURN_PER_MINUTE = 0.1;
const DEFAULT_PARTITION_FRACTION = 0.5;
/** Items published during a split start this long after it (the split is fresh: links across look alive). */
const SPLIT_PUBLISH_AFTER_S = 5;

export interface ScenarioContext {
  readonly t0: number;
  readonly items: number;
  readonly rate: number;
  /** The original honest population size (--nodes), and the nodes' degree. */
  readonly nodes: number;
  readonly degree: number;
  now(): number;
  random(): number;
  at(time: number, fn: () => void): void;
  /** Publishes one item now from a random live honest node (of `side`, if given). */
  publish(phase: string, side?: number): void;
  liveNodes(): SimNode[];
  crash(node: SimNode): void;
  /** A fresh honest node joins now through random present nodes (or through `bootstrappers`). */
  spawnHonest(bootstrappers?: SimNode[]): SimNode;
  /** Assigns sides and cuts the network until `healAt`. */
  partition(sideOf: (node: SimNode) => number, healAt: number): void;
}

export interface Scenario {
  /** Canonical spelling, e.g. "failure:0.5:10". */
  readonly name: string;
  readonly adversary?: { behaviour: string; perHonest: number };
  /** Schedules everything from ctx.t0; returns the time of the last publication. */
  start(ctx: ScenarioContext): number;
  /** What the scenario measured itself (newcomer: where the newcomers' links went), for the result. */
  figures?(): NewcomerFigures;
}

/** newcomer:K — where K newcomers, each joining through one bootstrapper B, have their links SIM_NEWCOMER_WAIT_S later. */
export interface NewcomerFigures {
  newcomers: number;
  wait_s: number;
  links_mean: number;
  /** Newcomers still linked to their own bootstrapper. */
  linked_to_bootstrapper: number;
  /** Links to B's neighbours (as they were when the newcomer joined), mean and max per newcomer, and that mean as a
   *  share of `degree` … */
  to_bootstrapper_neighbours_mean: number;
  to_bootstrapper_neighbours_max: number;
  share_of_degree: number;
  /** … against the mean count had the same number of links gone to live nodes chosen at random. */
  random_expected_mean: number;
}

/** Schedules `count` publications at `rate` per second from `from`; returns the last one's time. */
function publishSeries(ctx: ScenarioContext, from: number, count: number, phase: string, sides?: number[]): number {
  let last = from;
  for (let k = 0; k < count; k++) {
    last = from + (k * 1000) / ctx.rate;
    const side = sides?.[k % sides.length];
    ctx.at(last, () => ctx.publish(phase, side));
  }
  return last;
}

function fraction(flag: string, text: string | undefined, fallback?: number): number {
  if (text === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`--scenario ${flag}: needs a fraction`);
  }
  const f = Number(text);
  if (!(f >= 0 && f <= 1) || text.trim() === "") throw new UsageError(`--scenario ${flag}: expected a fraction 0–1, got "${text}"`);
  return f;
}

export function parseScenario(spec: string): Scenario {
  const [kind, a, b, ...rest] = spec.split(":");
  const noMore = (n: number) => {
    if ([a, b, ...rest].slice(n).some((p) => p !== undefined)) throw new UsageError(`--scenario: too many parts in "${spec}"`);
  };
  switch (kind) {
    case "steady":
      noMore(0);
      return { name: "steady", start: (ctx) => publishSeries(ctx, ctx.t0, ctx.items, "steady") };
    case "failure": {
      noMore(2);
      const f = fraction("failure:F", a);
      const after = b === undefined ? SIM_FAILURE_PUBLISH_AFTER_S : Number(b);
      if (!(after >= 0)) throw new UsageError(`--scenario failure:F:S: S must be seconds ≥ 0, got "${b}"`);
      return {
        name: `failure:${f}:${after}`,
        start: (ctx) => {
          ctx.at(ctx.t0, () => {
            const live = ctx.liveNodes();
            shuffle(live, ctx.random);
            for (const n of live.slice(0, Math.round(f * live.length))) ctx.crash(n);
          });
          return publishSeries(ctx, ctx.t0 + after * 1000, ctx.items, "after-failure");
        },
      };
    }
    case "churn": {
      noMore(1);
      const perMinute = fraction("churn:R", a, DEFAULT_CHURN_PER_MINUTE);
      return {
        name: `churn:${perMinute}`,
        start: (ctx) => {
          const first = ctx.t0 + SIM_CHURN_LEAD_S * 1000;
          const last = publishSeries(ctx, first, ctx.items, "churn");
          // One step per second, carrying the fractional remainder, until well past the end of the run.
          let owed = 0;
          for (let t = ctx.t0; t <= last + 120_000; t += 1000) {
            ctx.at(t, () => {
              owed += (perMinute * ctx.nodes) / 60;
              const live = ctx.liveNodes().filter((n) => n.honest);
              shuffle(live, ctx.random);
              let i = 0;
              for (; owed >= 1 && i < live.length; owed--, i++) {
                ctx.crash(live[i]!);
                ctx.spawnHonest();
              }
            });
          }
          return last;
        },
      };
    }
    case "partition": {
      noMore(1);
      const f = fraction("partition:F", a, DEFAULT_PARTITION_FRACTION);
      return {
        name: `partition:${f}`,
        start: (ctx) => {
          const healAt = ctx.t0 + SIM_PARTITION_S * 1000;
          ctx.at(ctx.t0, () => {
            const live = ctx.liveNodes();
            shuffle(live, ctx.random);
            const cut = new Set(live.slice(0, Math.round(f * live.length)));
            ctx.partition((n) => (cut.has(n) ? 1 : 0), healAt);
          });
          const half = Math.ceil(ctx.items / 2);
          publishSeries(ctx, ctx.t0 + SPLIT_PUBLISH_AFTER_S * 1000, half, "split", [0, 1]);
          return publishSeries(ctx, healAt + SIM_HEAL_WAIT_S * 1000, ctx.items - half, "healed");
        },
      };
    }
    case "attack": {
      noMore(2);
      if (a === undefined || !(a in BEHAVIOURS)) {
        throw new UsageError(`--scenario attack:BEHAVIOUR:RATIO: behaviour must be one of ${Object.keys(BEHAVIOURS).join(", ")}`);
      }
      const ratio = Number(b);
      if (b === undefined || !(ratio >= 0)) throw new UsageError(`--scenario attack:${a}:RATIO: RATIO must be a number ≥ 0 (adversaries per honest node)`);
      return {
        name: `attack:${a}:${ratio}`,
        adversary: { behaviour: a, perHonest: ratio },
        start: (ctx) => publishSeries(ctx, ctx.t0, ctx.items, "attack"),
      };
    }
    case "newcomer": {
      noMore(1);
      const count = a === undefined ? SIM_NEWCOMERS : Number(a);
      if (!(Number.isInteger(count) && count >= 1)) throw new UsageError(`--scenario newcomer:K: K must be an integer ≥ 1, got "${a}"`);
      return newcomerScenario(count);
    }
    default:
      throw new UsageError(`--scenario: unknown scenario "${spec}" (steady, failure:F[:S], churn[:R], partition[:F], attack:BEHAVIOUR:RATIO, newcomer[:K])`);
  }
}

/** K newcomers join SIM_NEWCOMER_GAP_S apart, each through one random live honest node; each is looked at
 *  SIM_NEWCOMER_WAIT_S after its join; the items follow the last look (so the newcomers are expected to get them). */
function newcomerScenario(count: number): Scenario {
  const seen: { links: number; toB: boolean; toNeighbours: number; expected: number }[] = [];
  let degree = 0;
  return {
    name: `newcomer:${count}`,
    start: (ctx) => {
      for (let k = 0; k < count; k++) {
        ctx.at(ctx.t0 + k * SIM_NEWCOMER_GAP_S * 1000, () => {
          const live = ctx.liveNodes().filter((n) => n.honest);
          const b = live[Math.floor(ctx.random() * live.length)]!;
          const neighbours = new Set(b.links.keys());
          const newcomer = ctx.spawnHonest([b]);
          ctx.at(ctx.now() + SIM_NEWCOMER_WAIT_S * 1000, () => {
            const links = [...newcomer.links.keys()];
            const others = ctx.liveNodes().length - 1;
            // Random choice: the same number of links to distinct live nodes other than the newcomer, uniformly.
            const expected = others <= 0 ? 0 : (links.length * [...neighbours].filter((id) => id !== newcomer.id).length) / others;
            degree = ctx.degree;
            seen.push({ links: links.length, toB: newcomer.links.has(b.id), toNeighbours: links.filter((id) => neighbours.has(id)).length, expected });
          });
        });
      }
      return publishSeries(ctx, ctx.t0 + ((count - 1) * SIM_NEWCOMER_GAP_S + SIM_NEWCOMER_WAIT_S) * 1000 + 1000, ctx.items, "after-newcomers");
    },
    figures: () => {
      const mean = (f: (s: (typeof seen)[number]) => number, digits = 3) =>
        seen.length === 0 ? 0 : Math.round((seen.reduce((a, s) => a + f(s), 0) / seen.length) * 10 ** digits) / 10 ** digits;
      const toNeighbours = mean((s) => s.toNeighbours);
      return {
        newcomers: seen.length,
        wait_s: SIM_NEWCOMER_WAIT_S,
        links_mean: mean((s) => s.links),
        linked_to_bootstrapper: seen.filter((s) => s.toB).length,
        to_bootstrapper_neighbours_mean: toNeighbours,
        to_bootstrapper_neighbours_max: Math.max(0, ...seen.map((s) => s.toNeighbours)),
        share_of_degree: degree === 0 ? 0 : Math.round((toNeighbours / degree) * 10_000) / 10_000,
        random_expected_mean: mean((s) => s.expected, 5),
      };
    },
  };
}

export function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
}
