/**
 * Adversary behaviours: nodes that run their own NodeLogic instead of the honest gossip core. A behaviour is a
 * factory from an AdversaryContext (its node's PeerNetwork port, clock, randomness, and a way to build a real core
 * for the parts it wants to do honestly, such as membership) to a NodeLogic. Add one by adding an entry to
 * BEHAVIOURS; `--scenario attack:NAME:RATIO` then runs it. The issue-17 suite (GossipSub v1.1's attacks):
 *   censor        links like an honest node, never forwards or validates anything
 *   invalid       answers every new item with garbage under a true ID (costs a validation its module rejects)
 *   spam          sends garbage under true IDs at a steady rate to its links, whatever it receives
 *   ihave-flood   censors, and announces (IHAVE) IDs it does not have at a steady rate to links that speak trees
 *   graft-flood   censors, and GRAFTs the IDs it saw (and invented ones) at a steady rate, asking for every item again
 *   eclipse       censors, and every one of them dials the same honest node (the first one the first of them knew)
 *   cold-boot     censors with four times the links, so it holds as many honest slots as it can while the network forms
 *   covert-flash  relays honestly (earning credit) until it has seen SIM_FLASH_AFTER_ITEMS items, then censors: all
 *                 of them switch within one propagation delay of each other
 *
 * Must never: reach into another node's state (an adversary only has what its own links tell it, plus what the
 * context deliberately gives it: colluders share `colluders` and what hangs off it), or use randomness other than
 * the context's.
 */
import {
  SIM_ADVERSARY_TICK_MS,
  SIM_COLD_BOOT_LINK_FACTOR,
  SIM_ECLIPSE_REDIAL_MS,
  SIM_FLASH_AFTER_ITEMS,
  SIM_FLOOD_IDS_PER_TICK,
  SIM_SPAM_PER_TICK,
} from "../defaults.ts";
import { createCore, type BroadcasterTunables, type GossipCore } from "../gossip/core.ts";
import { itemId } from "../gossip/item-id.ts";
import type { Clock, GossipItem, LocalModules, PeerAddress, PeerEvents, PeerId, PeerNetwork, Verdict } from "../gossip/ports.ts";
import { pickInPlace } from "../gossip/broadcaster.ts";
import type { NodeLogic } from "./node.ts";

export interface AdversaryContext {
  network: PeerNetwork;
  clock: Clock;
  random: () => number;
  degree: number;
  cacheSize: number;
  bootstrappers: PeerAddress[];
  /** The data type honest modules subscribe to. */
  dataType: number;
  /** The IDs of every adversary node so far (colluding behaviours use it; `invalid` ignores fellow adversaries). */
  colluders: ReadonlySet<PeerId>;
  /** A real gossip core on this node (honest membership and links), whose events the behaviour may filter. */
  realCore(local?: LocalModules): GossipCore;
}

export type AdversaryFactory = (ctx: AdversaryContext) => NodeLogic;

/** A module that subscribes and finds everything valid (for cores whose items the behaviour intercepts anyway). */
export function acceptingModules(dataType: number): LocalModules {
  return {
    hasSubscribers: (t) => t === dataType,
    canValidate: (t) => t === dataType,
    validate: (): Promise<Verdict> => Promise.resolve("valid"),
  };
}

/**
 * The core's NodeLogic with its item handler replaced. Every other event goes to the core as it is (a Proxy, so
 * handlers the core gains later pass through without a change here).
 */
function withItems(core: GossipCore, item: PeerEvents["item"]): NodeLogic {
  const base = core.events;
  const events = new Proxy(base, {
    get(target, key) {
      if (key === "item") return item;
      const v = Reflect.get(target, key) as unknown;
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return {
    events,
    acceptInbound: (peer) => core.acceptInbound(peer),
    referrals: (peer) => core.referrals(peer),
    isBanned: (peer) => core.isBanned(peer),
    start: () => core.start(),
    stop: () => core.stop(),
  };
}

/** Links like an honest node (real membership, peer exchange), but never forwards or validates anything. */
export const censor: AdversaryFactory = (ctx) => withItems(ctx.realCore(), () => {});

/**
 * Links like an honest node; for every new item it receives, forwards garbage instead: an item of the subscribed
 * type with the same size, random bytes and a correct ID (so it passes the ID check and costs each receiver a
 * validation that its module rejects).
 */
export const invalid: AdversaryFactory = (ctx) => {
  const seen = new WeakSet<Uint8Array>();
  return withItems(ctx.realCore(), (from, item) => {
    // Fellow adversaries' garbage is not answered with more (that would be a chain reaction among them).
    if (seen.has(item.data) || ctx.colluders.has(from)) return;
    seen.add(item.data);
    const data = new Uint8Array(item.data.length);
    for (let i = 0; i < data.length; i += 4) {
      const r = Math.floor(ctx.random() * 4294967296);
      for (let j = 0; j < 4 && i + j < data.length; j++) data[i + j] = (r >>> (8 * j)) & 0xff;
    }
    seen.add(data);
    const garbage: GossipItem = { id: itemId(ctx.dataType, data), ttl: 0, dataType: ctx.dataType, data };
    const targets = ctx.network.linkedPeers().filter((l) => l.peer !== from);
    pickInPlace(targets, ctx.degree, ctx.random);
    for (const l of targets.slice(0, ctx.degree)) ctx.network.sendItem(l.peer, garbage);
  });
};

/** `count` random bytes from the context's randomness. */
function randomBytes(ctx: AdversaryContext, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i += 4) {
    const r = Math.floor(ctx.random() * 4294967296);
    for (let j = 0; j < 4 && i + j < count; j++) out[i + j] = (r >>> (8 * j)) & 0xff;
  }
  return out;
}

/** Runs `fn` every SIM_ADVERSARY_TICK_MS once the logic has started; stop() ends it. */
function ticking(logic: NodeLogic, ctx: AdversaryContext, fn: () => void): NodeLogic {
  let timer: unknown;
  return {
    ...logic,
    start: () => {
      logic.start();
      timer = ctx.clock.setInterval(fn, SIM_ADVERSARY_TICK_MS);
    },
    stop: () => {
      if (timer !== undefined) ctx.clock.clearInterval(timer);
      logic.stop();
    },
  };
}

/** Honest-looking peers only (fellow adversaries are not attacked). */
function honestLinks(ctx: AdversaryContext): PeerId[] {
  const out: PeerId[] = [];
  for (const l of ctx.network.linkedPeers()) if (!ctx.colluders.has(l.peer)) out.push(l.peer);
  return out;
}

/** Garbage of the subscribed type under true IDs, SIM_SPAM_PER_TICK items per tick to each honest link. */
export const spam: AdversaryFactory = (ctx) =>
  ticking(withItems(ctx.realCore(), () => {}), ctx, () => {
    for (const peer of honestLinks(ctx)) {
      for (let k = 0; k < SIM_SPAM_PER_TICK; k++) {
        const data = randomBytes(ctx, 64);
        ctx.network.sendItem(peer, { id: itemId(ctx.dataType, data), ttl: 0, dataType: ctx.dataType, data });
      }
    }
  });

/** Censors; announces SIM_FLOOD_IDS_PER_TICK invented IDs per tick to each honest link that speaks trees (each one
 *  a GRAFT it will never serve). */
export const ihaveFlood: AdversaryFactory = (ctx) =>
  ticking({ ...withItems(ctx.realCore(), () => {}), offersTrees: true }, ctx, () => {
    for (const l of ctx.network.linkedPeers()) {
      if (ctx.colluders.has(l.peer) || l.trees !== true) continue;
      const entries = Array.from({ length: SIM_FLOOD_IDS_PER_TICK }, () => ({ id: randomBytes(ctx, 8), dataType: ctx.dataType, hops: 0 }));
      ctx.network.sendTree?.(l.peer, { kind: "ihave", entries });
    }
  });

/** Censors; GRAFTs the prefixes of the items it received (and invented ones), SIM_FLOOD_IDS_PER_TICK per tick to each
 *  honest link that speaks trees: every honest answer is an item sent again, or a DONT-HAVE. */
export const graftFlood: AdversaryFactory = (ctx) => {
  const recent: Uint8Array[] = [];
  const logic: NodeLogic = {
    ...withItems(ctx.realCore(), (_from, item) => {
      recent.push(item.id.subarray(0, 8));
      if (recent.length > 64) recent.shift();
    }),
    offersTrees: true,
  };
  return ticking(logic, ctx, () => {
    for (const l of ctx.network.linkedPeers()) {
      if (ctx.colluders.has(l.peer) || l.trees !== true) continue;
      const ids = Array.from({ length: SIM_FLOOD_IDS_PER_TICK }, (_, k) => recent[k] ?? randomBytes(ctx, 8));
      ctx.network.sendTree?.(l.peer, { kind: "graft", ids, dataType: ctx.dataType });
    }
  });
};

/** The node every eclipse adversary of one run targets: the first address the first of them was given. */
const eclipseTargets = new WeakMap<ReadonlySet<PeerId>, PeerAddress>();

/** Censors, and keeps a link to the one target every adversary of the run shares. */
export const eclipse: AdversaryFactory = (ctx) => {
  if (!eclipseTargets.has(ctx.colluders) && ctx.bootstrappers[0] !== undefined) eclipseTargets.set(ctx.colluders, ctx.bootstrappers[0]);
  const target = eclipseTargets.get(ctx.colluders);
  const core = ctx.realCore();
  let timer: unknown;
  let dialing = false;
  const dialTarget = () => {
    if (target === undefined || dialing || ctx.network.linkedPeers().some((l) => l.peer === target.id)) return;
    dialing = true;
    ctx.network.dial(target).then(
      () => void (dialing = false),
      () => void (dialing = false),
    );
  };
  const logic = withItems(core, () => {});
  return {
    ...logic,
    start: () => {
      logic.start();
      dialTarget();
      timer = ctx.clock.setInterval(dialTarget, SIM_ECLIPSE_REDIAL_MS);
    },
    stop: () => {
      if (timer !== undefined) ctx.clock.clearInterval(timer);
      logic.stop();
    },
  };
};

/** Censors with SIM_COLD_BOOT_LINK_FACTOR × degree links (dialing and accepting that many). */
export const coldBoot: AdversaryFactory = (ctx) =>
  withItems(adversaryCore({ ...ctx, degree: ctx.degree * SIM_COLD_BOOT_LINK_FACTOR }), () => {});

/** Relays every item like an honest node until it has seen SIM_FLASH_AFTER_ITEMS distinct ones, then censors. */
export const covertFlash: AdversaryFactory = (ctx) => {
  const core = ctx.realCore();
  const seen = new WeakSet<Uint8Array>();
  let count = 0;
  return withItems(core, (from, item) => {
    if (!seen.has(item.data)) {
      seen.add(item.data);
      count++;
    }
    if (count <= SIM_FLASH_AFTER_ITEMS) core.events.item(from, item);
  });
};

export const BEHAVIOURS: Readonly<Record<string, AdversaryFactory>> = {
  censor,
  invalid,
  spam,
  "ihave-flood": ihaveFlood,
  "graft-flood": graftFlood,
  eclipse,
  "cold-boot": coldBoot,
  "covert-flash": covertFlash,
};

/** Builds a real core for an adversary context (the same createCore honest nodes use). */
export function adversaryCore(ctx: Omit<AdversaryContext, "realCore" | "colluders">, local?: LocalModules): GossipCore {
  return createCore({
    network: ctx.network,
    local: local ?? acceptingModules(ctx.dataType),
    clock: ctx.clock,
    random: ctx.random,
    degree: ctx.degree,
    cacheSize: ctx.cacheSize,
    bootstrappers: ctx.bootstrappers,
    broadcaster: { dissemination: "flood" } as Record<string, unknown> as BroadcasterTunables,
    // An adversary links like a connected honest node, which never probes (its links talk): isolation probes would
    // make every censor, whose core never sees an item, a dialer of six more addresses every few seconds.
    usefulness: { probes: false },
  });
}
