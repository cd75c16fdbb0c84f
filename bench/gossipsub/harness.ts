/**
 * The workload of ../workload.ts on js-libp2p gossipsub: N libp2p nodes in this process (TCP on 127.0.0.1, Noise,
 * Yamux, Identify, gossipsub with its defaults incl. message signing), each dialing 4 random others, one topic that
 * every node subscribes to, a topic validator that checks every item the way our API module does.
 *
 * Only the IP-colocation penalty is off (every node shares 127.0.0.1, which would otherwise score them all down);
 * the "unsigned" variant also sets StrictNoSign. Runs under Node (main.ts): under Bun, @chainsafe/libp2p-noise sends
 * payloads ≥ 1200 bytes to node:crypto's chacha20-poly1305, which Bun lacks, so such frames fail.
 */
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { gossipsub, TopicValidatorResult, type GossipSub, type GossipsubOpts } from "@libp2p/gossipsub";
import { identify } from "@libp2p/identify";
import { tcp } from "@libp2p/tcp";
import { createLibp2p, type Libp2p } from "libp2p";
import { randomDials } from "../../src/testnet/dials.ts";
import { seededRandom } from "../../src/util/random.ts";
import { Recorder, rssAfterGc, runResult, runWorkload, sleep, waitUntil, type Driver, type RunResult, type WorkloadOptions } from "../workload.ts";

const TOPIC = "bench";

export interface GossipsubOptions {
  nodes: number;
  signed: boolean;
  dialsPerNode: number;
}

/** Counts message copies in sent RPCs through gossipsub's own metrics hook (every other metric is a no-op). */
function copyCounter(): { register: NonNullable<GossipsubOpts["metricsRegister"]>; copies: () => number } {
  let copies = 0;
  const noop = () => {};
  const metric = (name: string) => ({
    inc: name === "gossipsub_rpc_sent_message_total" ? (v?: number) => void (copies += v ?? 1) : noop,
    set: noop,
    addCollect: noop,
    observe: noop,
    reset: noop,
    startTimer: () => noop,
  });
  const register = {
    gauge: (c: { name: string }) => metric(c.name),
    histogram: (c: { name: string }) => metric(c.name),
    avgMinMax: (c: { name: string }) => metric(c.name),
  };
  return { register: register as unknown as NonNullable<GossipsubOpts["metricsRegister"]>, copies: () => copies };
}

class GossipsubDriver implements Driver {
  constructor(
    private readonly peers: Libp2p<{ pubsub: GossipSub }>[],
    private readonly counter: () => number,
  ) {}
  get nodes(): number {
    return this.peers.length;
  }
  publish(origin: number, data: Uint8Array): void {
    this.peers[origin]!.services.pubsub.publish(TOPIC, data).catch(() => {});
  }
  links(): number {
    return this.peers.reduce((sum, p) => sum + p.getConnections().length, 0) / 2;
  }
  copiesSent(): number {
    return this.counter();
  }
  async stop(): Promise<void> {
    await Promise.all(this.peers.map((p) => p.stop()));
  }
}

export async function runGossipsub(o: GossipsubOptions, w: WorkloadOptions): Promise<RunResult> {
  const rssBase = rssAfterGc();
  const recorder = new Recorder(o.nodes);
  const counter = copyCounter();
  const t0 = performance.now();
  const peers: Libp2p<{ pubsub: GossipSub }>[] = [];
  for (let i = 0; i < o.nodes; i++) {
    const peer = await createLibp2p({
      addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        pubsub: gossipsub({
          scoreParams: { IPColocationFactorWeight: 0 },
          metricsRegister: counter.register,
          metricsTopicStrToLabel: new Map([[TOPIC, TOPIC]]),
          ...(o.signed ? {} : { globalSignaturePolicy: "StrictNoSign" as const }),
        }),
      },
    });
    const pubsub = peer.services.pubsub;
    pubsub.subscribe(TOPIC);
    pubsub.topicValidators.set(TOPIC, (_from, message) =>
      recorder.sink(i, message.data) ? TopicValidatorResult.Accept : TopicValidatorResult.Reject,
    );
    peers.push(peer);
  }
  const pairs = randomDials(o.nodes, o.dialsPerNode, seededRandom(w.seed)).flatMap((ts, i) => ts.map((j) => [i, j] as const));
  for (const [i, j] of pairs) {
    for (let attempt = 0; ; attempt++) {
      try {
        await peers[i]!.dial(peers[j]!.getMultiaddrs()[0]!);
        break;
      } catch (e) {
        if (attempt >= 5) throw e;
        await sleep(50);
      }
    }
  }
  // Meshes form on heartbeats (1 s): wait until every node has mesh peers for the topic, then one heartbeat more.
  const meshSize = (p: Libp2p<{ pubsub: GossipSub }>) => (p.services.pubsub as unknown as { getMeshPeers(t: string): string[] }).getMeshPeers(TOPIC).length;
  await waitUntil(() => peers.every((p) => meshSize(p) >= Math.min(4, p.getConnections().length)), 10_000, 50);
  await sleep(1000);
  const driver = new GossipsubDriver(peers, counter.copies);
  const links = driver.links();
  const setupMs = performance.now() - t0;
  const variant = o.signed ? "signed (defaults)" : "unsigned (StrictNoSign)";
  w.log(`gossipsub ${variant}: ${o.nodes} nodes, ${links} connections (mean ${((2 * links) / o.nodes).toFixed(1)} per node), set up in ${setupMs.toFixed(0)} ms`);
  let rssNodes = 0;
  const sizes = await runWorkload(driver, recorder, { ...w, afterLatency: () => (rssNodes = rssAfterGc()) });
  const rssPeak = rssAfterGc();
  await driver.stop();
  return runResult({
    impl: o.signed ? "gossipsub" : "gossipsub-unsigned",
    variant,
    nodes: o.nodes,
    links,
    setupMs,
    rss: { base: rssBase, afterLatency: rssNodes, peak: rssPeak },
    sizes,
    recorder,
    duplicatesAre: "duplicate deliveries",
  });
}
