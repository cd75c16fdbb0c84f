/**
 * `bun run bench net`: the workload of workload.ts on our nodes: a testnet (src/testnet/network.ts) of N whole nodes in this
 * process, real loopback sockets and handshakes (difficulty 0 by default), each node dialing 4 random others, and on
 * every node an API module that subscribes over TCP and validates every NOTIFICATION.
 */
import { startTestnet, type Testnet } from "../src/testnet/network.ts";
import { PROBE_DATA_TYPE } from "../src/testnet/probe.ts";
import { DEFAULT_WORKLOAD, Recorder, rssAfterGc, runResult, runWorkload, waitUntil, type Driver, type RunResult, type WorkloadOptions } from "./workload.ts";

export interface OursOptions {
  nodes: number;
  /**
   * Peers each item is pushed to. Default: N-1, i.e. every node pushes to all the links the dials gave it, which is
   * what a deployed node does (membership keeps about `degree` links); membership is off so the graph stays exactly
   * the gossipsub harness's.
   */
  degree?: number;
  dialsPerNode: number;
  powDifficulty: number;
  /** gossip.dissemination of every node (default: the node's default, broadcast trees). */
  dissemination?: "plumtree" | "flood";
}

export const OURS_DEFAULTS: OursOptions = { nodes: 30, dialsPerNode: 4, powDifficulty: 0 };

class OursDriver implements Driver {
  constructor(private readonly net: Testnet) {}
  get nodes(): number {
    return this.net.nodes.length;
  }
  publish(origin: number, data: Uint8Array): void {
    this.net.announce(origin, PROBE_DATA_TYPE, data);
  }
  links(): number {
    return this.net.links();
  }
  copiesSent(): number {
    return this.net.nodes.reduce((sum, t) => sum + t.node.broadcaster.metrics.forwarded, 0);
  }
  stop(): Promise<void> {
    return this.net.stop();
  }
}

export async function runOurs(o: OursOptions, w: WorkloadOptions): Promise<RunResult> {
  const rssBase = rssAfterGc();
  const recorder = new Recorder(o.nodes);
  const t0 = performance.now();
  const degree = o.degree ?? Math.max(1, o.nodes - 1);
  const net = await startTestnet({
    nodes: o.nodes,
    degree,
    membership: false,
    dialsPerNode: o.dialsPerNode,
    powDifficulty: o.powDifficulty,
    dissemination: o.dissemination,
    seed: w.seed,
    onNotification: (node, _type, data) => recorder.sink(node, data),
  });
  const driver = new OursDriver(net);
  // A link counts once both ends have it: let the last handshakes' far ends catch up before reading the graph.
  await waitUntil(() => Number.isInteger(driver.links()), 2000);
  const links = driver.links();
  const setupMs = performance.now() - t0;
  w.log(`ours: ${o.nodes} nodes, ${links} links (mean ${((2 * links) / o.nodes).toFixed(1)} per node), degree ${degree}, set up in ${setupMs.toFixed(0)} ms`);
  let rssNodes = 0;
  const sizes = await runWorkload(driver, recorder, { ...w, afterLatency: () => (rssNodes = rssAfterGc()) });
  const rssPeak = rssAfterGc();
  await driver.stop();
  return runResult({
    impl: "ours",
    variant: `degree ${degree}, difficulty ${o.powDifficulty}, ${o.dissemination ?? "default"} dissemination`,
    nodes: o.nodes,
    links,
    setupMs,
    rss: { base: rssBase, afterLatency: rssNodes, peak: rssPeak },
    sizes,
    recorder,
    duplicatesAre: "duplicate notifications",
  });
}

export function workloadFor(sizes: number[], log: (line: string) => void, overrides: Partial<WorkloadOptions> = {}): WorkloadOptions {
  return { ...DEFAULT_WORKLOAD, sizes, log, ...overrides };
}
