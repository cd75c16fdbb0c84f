/**
 * The canary for the hostile-input suites: a target node (the one attacked) and a canary peer linked to it, each with
 * a subscriber module and an announcer module that keep announcing and receiving for the whole test file. After each
 * hostile case `check()` proves that nothing the canary announced was lost or duplicated, that the original link
 * still carries it, and that the process's open descriptors and heap are back near their baseline.
 * Real nodes and sockets (test/net-harness.ts); nothing here is mocked.
 */
import { readdirSync } from "node:fs";
import {
  type Notification,
  decodeMessage,
  encodeAnnounce,
  encodeNotify,
  encodeValidation,
} from "../../src/api/codec.ts";
import type { GossipNode, NodeOptions } from "../../src/node.ts";
import { ApiTestClient, captureLogger, waitFor, type LogEntry } from "../api/client.ts";
import type { NodeSpec, createHarness } from "../net-harness.ts";

export type Harness = ReturnType<typeof createHarness>;

/** The canary's own data type; hostile cases use others. */
export const CANARY_TYPE = 0xcafe;
/** Descriptors a case may leave open for a moment (Bun's own lazily opened ones). */
const FD_SLACK = 6;
/** Heap growth tolerated after a case, once garbage is collected. */
const HEAP_SLACK_BYTES = 24 << 20;

export function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Live heap (buffers included) after a full collection. */
export function heapUsed(): number {
  Bun.gc(true);
  return process.memoryUsage().heapUsed;
}

export interface Resources {
  fds: number;
  heap: number;
}

export function measure(): Resources {
  return { fds: openFds(), heap: heapUsed() };
}

/** Waits for open descriptors and the heap to come back near `base` (plus `heapAllowance` bytes a case accounts for);
 *  throws with the figures if they do not. */
export async function expectNearBaseline(base: Resources, heapAllowance = 0): Promise<void> {
  try {
    await waitFor(() => openFds() <= base.fds + FD_SLACK, 5000, "descriptors back to baseline");
  } catch {
    throw new Error(`open descriptors ${openFds()} > baseline ${base.fds} + ${FD_SLACK}`);
  }
  const bound = base.heap + HEAP_SLACK_BYTES + heapAllowance;
  let heap = heapUsed();
  for (let i = 0; i < 20 && heap > bound; i++) {
    await Bun.sleep(50); // closed sockets and timers release their buffers a little later
    heap = heapUsed();
  }
  if (heap > bound) {
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    throw new Error(`heap ${mib(heap)} MiB > baseline ${mib(base.heap)} MiB + 24${heapAllowance ? ` + ${mib(heapAllowance)} allowed` : ""}`);
  }
}

/** A local module on a node's API: subscribes to `dataType` (if given), answers per `verdict`, records every NOTIFICATION. */
export interface Module {
  client: ApiTestClient;
  notifications: Notification[];
  /** Data of each NOTIFICATION as text, in arrival order. */
  received: string[];
}

export type VerdictRule = boolean | "silent" | ((n: Notification) => boolean | "silent");

export async function apiModule(n: GossipNode, dataType: number | undefined, verdict: VerdictRule = true): Promise<Module> {
  const client = await ApiTestClient.connect(n.api.port);
  const m: Module = { client, notifications: [], received: [] };
  const before = n.api.stats().subscriptions;
  if (dataType !== undefined) client.send(encodeNotify({ dataType }));
  void (async () => {
    for (;;) {
      let message;
      try {
        message = decodeMessage(await client.next(600_000));
      } catch {
        return; // closed
      }
      if (message.kind !== "notification") continue;
      m.notifications.push(message);
      m.received.push(new TextDecoder().decode(message.data));
      const answer = typeof verdict === "function" ? verdict(message) : verdict;
      if (answer !== "silent") client.send(encodeValidation({ messageId: message.messageId, valid: answer }));
    }
  })();
  if (dataType !== undefined) await waitFor(() => n.api.stats().subscriptions > before, 3000, "subscription");
  return m;
}

export function announceBytes(dataType: number, text: string | Uint8Array, ttl = 0): Uint8Array {
  const data = typeof text === "string" ? new TextEncoder().encode(text) : text;
  return encodeAnnounce({ ttl, dataType, data });
}

export interface Canary {
  /** The node under attack. */
  target: GossipNode;
  /** The canary's peer, linked to the target for the whole file. */
  peer: GossipNode;
  /** Everything the target logged (debug included). */
  log: LogEntry[];
  /** Items announced so far. */
  readonly sent: number;
  /**
   * Waits for every canary item so far to arrive on both nodes exactly once, and resources to return near baseline.
   * `heapAllowance`: bytes a case may leave in bounded stores by design (say which in the case).
   */
  check(options?: { heapAllowance?: number }): Promise<void>;
  /** Takes the descriptor and heap baseline again (after a file's own long-lived fixtures are set up). */
  rebaseline(): void;
  stop(): Promise<void>;
}

export interface CanaryOptions {
  target?: NodeSpec;
  peer?: NodeSpec;
  /** The target's API limits (NodeOptions.api); unset ones keep their defaults (src/defaults.ts). */
  api?: NodeOptions["api"];
  /** Pause between canary announcements (one every few ms keeps traffic flowing through every case). */
  everyMs?: number;
}

export async function startCanary(h: Harness, options: CanaryOptions = {}): Promise<Canary> {
  const log = captureLogger();
  const target = await h.node({
    validationTimeoutMs: 500,
    // The cases' raw observers link and never say anything, which link usefulness rightly drops as a censor
    // (test/usefulness-net.test.ts); these cases are about the local API, not about judging links.
    usefulness: false,
    ...options.target,
    api: { ...options.target?.api, ...options.api },
    log,
  });
  const peer = await h.node({ ...options.peer, bootstrapPort: target.transport.port });
  await waitFor(() => linkOf(peer, target) !== undefined && linkOf(target, peer) !== undefined, 5000, "canary link");
  const link = linkOf(peer, target)!;

  const subs = [await apiModule(target, CANARY_TYPE), await apiModule(peer, CANARY_TYPE)];
  const announcers = [await ApiTestClient.connect(target.api.port), await ApiTestClient.connect(peer.api.port)];
  let sent = 0;
  const timer = setInterval(() => {
    announcers[sent % 2]!.send(announceBytes(CANARY_TYPE, `canary ${sent}`));
    sent++;
  }, options.everyMs ?? 20);

  const delivered = async (upTo: number) => {
    const want = (m: Module) => {
      const got = new Set(m.received);
      if (got.size !== m.received.length) return false; // a duplicate: fails below with the figures
      for (let i = 0; i < upTo; i++) if (!got.has(`canary ${i}`)) return false;
      return true;
    };
    try {
      await waitFor(() => subs.every(want), 3000, "canary delivery");
    } catch {
      const missing = subs.map((m) => {
        const got = new Set(m.received);
        return Array.from({ length: upTo }, (_, i) => `canary ${i}`).filter((t) => !got.has(t)).slice(0, 5);
      });
      const duplicates = subs.map((m) => m.received.length - new Set(m.received).size);
      throw new Error(`canary lost items: missing ${JSON.stringify(missing)}, duplicates ${JSON.stringify(duplicates)}`);
    }
  };

  await delivered(10);
  // Warm-up done (PoW workers, JIT, lazily opened descriptors): this is the baseline every case returns to.
  let baseline = measure();

  return {
    target,
    peer,
    log: log.entries,
    get sent() {
      return sent;
    },
    async check(options = {}) {
      // Something announced after the case must arrive too: the node still serves.
      const upTo = sent + 3;
      await waitFor(() => sent >= upTo, 5000, "canary announcements");
      await delivered(upTo);
      if (linkOf(peer, target) !== link || link.closed) throw new Error("the canary's link to the target was replaced");
      await expectNearBaseline(baseline, options.heapAllowance ?? 0);
      if (process.env.HOSTILE_VERBOSE) {
        const now = measure();
        const mib = (b: number) => (b / 2 ** 20).toFixed(1);
        console.log(`canary: ${upTo} items delivered both ways; fds ${now.fds} (baseline ${baseline.fds}); heap ${mib(now.heap)} MiB (baseline ${mib(baseline.heap)})`);
      }
    },
    rebaseline() {
      baseline = measure();
    },
    async stop() {
      clearInterval(timer);
      for (const c of [...announcers, ...subs.map((s) => s.client)]) c.close();
    },
  };
}

export function linkOf(from: GossipNode, to: GossipNode) {
  return from.transport.linked().find((l) => l.info.peerId === to.identity.idHex);
}

/** Close reasons the target's API logged (warn level: violations), oldest first. */
export function apiCloseReasons(log: LogEntry[]): string[] {
  return log.filter((e) => e.event === "api connection closed" && e.level === "warn").map((e) => String(e.fields.reason));
}

/** Reasons of the target's failed inbound handshakes, with the Diffie-Hellman operations each cost. */
export function handshakeFailures(log: LogEntry[]): { reason: string; dh: number }[] {
  return log
    .filter((e) => e.event === "handshake failed" && e.fields.inbound === true)
    .map((e) => ({ reason: String(e.fields.reason), dh: Number(e.fields.dh ?? 0) }));
}

export function linkDownReasons(log: LogEntry[]): string[] {
  return log.filter((e) => e.event === "link down").map((e) => String(e.fields.reason));
}
