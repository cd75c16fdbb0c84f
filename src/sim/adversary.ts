/**
 * Adversary behaviours: nodes that run their own NodeLogic instead of the honest gossip core. A behaviour is a
 * factory from an AdversaryContext (its node's PeerNetwork port, clock, randomness, and a way to build a real core
 * for the parts it wants to do honestly, such as membership) to a NodeLogic. Add one by adding an entry to
 * BEHAVIOURS; `--scenario attack:NAME:RATIO` then runs it.
 *
 * Must never: reach into another node's state (an adversary only has what its own links tell it, plus what the
 * context deliberately gives it), or use randomness other than the context's.
 */
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

export const BEHAVIOURS: Readonly<Record<string, AdversaryFactory>> = { censor, invalid };

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
  });
}
