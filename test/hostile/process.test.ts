/**
 * A node's life as a process (issue 18 item 9): the signals an operator or a terminal sends, a start that cannot bind
 * one of its listeners, and the temporary files of a peer-store save cut short by a kill. The node under test is a
 * real `gossip` subprocess (signals, exit codes and start-up binding belong to a process; sending SIGHUP to the test
 * runner would end the runner, so the canary cannot sit inside the process under test). The canary runs in this
 * process beside it: the subprocess links to the canary's target, and after every case the canary proves that its
 * neighbours lost nothing while it came, took signals and went.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ApiTestClient, waitFor } from "../api/client.ts";
import { createHarness } from "../net-harness.ts";
import { parsePeerStore } from "../../src/peer-store.ts";
import { type Canary, apiModule, startCanary } from "./canary.ts";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
/** Spawning a fresh Bun process, linking it and stopping it takes about a second; more on a loaded machine. */
const PROCESS_TIMEOUT = 20_000;
const h = createHarness();
let canary: Canary;
const running: Subprocess[] = [];
const dir = mkdtempSync(join(tmpdir(), "gossip-process-"));
let configs = 0;

beforeAll(async () => {
  canary = await startCanary(h);
});
afterEach(async () => {
  for (const p of running.splice(0)) p.kill("SIGKILL");
  await h.stopAllBut([canary.target, canary.peer]);
  await canary.check();
});
afterAll(async () => {
  await canary.stop();
  await h.cleanup();
  h.close();
});

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

interface NodeProcess {
  proc: Subprocess<"ignore", "ignore", "pipe">;
  api: number;
  p2p: number;
  hostkey: string;
  /** Every JSON log record so far. */
  records: Record<string, unknown>[];
  /** stderr lines that are not JSON (the one-line failure report). */
  plain: string[];
  /** Resolves once stderr is closed (the process is gone and everything it wrote is read). */
  drained: Promise<void>;
  waitLog(event: string, what?: string): Promise<Record<string, unknown>>;
}

/** A `gossip` node in its own process, bootstrapping to the canary's target, JSON logs at debug. */
async function spawnNode(extra: { p2p?: number; control?: number } = {}): Promise<NodeProcess> {
  const name = `node${++configs}`;
  const api = await freePort();
  const p2p = extra.p2p ?? (await freePort());
  const cfg = join(dir, `${name}.yaml`);
  writeFileSync(
    cfg,
    `hostkey: ${name}.pem\ngossip:\n  api_address: 127.0.0.1:${api}\n  p2p_address: 127.0.0.1:${p2p}\n` +
      (extra.control ? `  control_address: 127.0.0.1:${extra.control}\n` : "") +
      `  bootstrapper: 127.0.0.1:${canary.target.transport.port}\n  pow_difficulty: 4\n  degree: 4\n  log_level: debug\n`,
  );
  const proc = Bun.spawn([process.execPath, CLI, "--config", cfg, "--log-format", "json"], { cwd: dir, stdout: "ignore", stderr: "pipe" });
  running.push(proc);
  const records: Record<string, unknown>[] = [];
  const plain: string[] = [];
  const drained = (async () => {
    let rest = "";
    for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const lines = rest.split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith("{")) records.push(JSON.parse(line));
        else if (line !== "") plain.push(line);
      }
    }
  })();
  const waitLog = (event: string, what = `log event "${event}"`) => waitFor(() => records.find((r) => r.event === event), 10_000, what, 10);
  return { proc, api, p2p, hostkey: join(dir, `${name}.pem`), records, plain, drained, waitLog };
}

/** Waits until the subprocess and the canary's target are linked both ways; returns the subprocess's peer ID. */
async function linkedToCanary(n: NodeProcess): Promise<string> {
  const up = await n.waitLog("link up");
  const id = up.peer as string;
  expect(id).toBe(canary.target.identity.idHex);
  const { id: nodeId } = await waitFor(
    () => canary.target.transport.linked().map((l) => ({ id: l.info.peerId, port: l.info.listenPort })).find((l) => l.port === n.p2p),
    10_000,
    "the canary's target linked to the subprocess",
  );
  return nodeId;
}

for (const signal of ["SIGHUP", "SIGQUIT"] as const) {
  test(`${signal} stops the node cleanly: exit 0, its links closed, the peer store saved at the stop`, async () => {
    const n = await spawnNode();
    await linkedToCanary(n);
    const sentAt = Date.now();
    n.proc.kill(signal);
    expect(await n.proc.exited).toBe(0);
    await n.drained;
    expect(n.records.find((r) => r.event === "stopping")?.signal).toBe(signal);
    expect(n.records.find((r) => r.event === "link down")?.reason).toBe("shutting-down");
    // The clean stop touches every linked peer as its link goes down and saves: last seen is the stop, not the link-up.
    const store = parsePeerStore(readFileSync(n.hostkey.replace(/\.pem$/, ".peers.json"), "utf8"));
    const entry = store.peers.find((p) => p.id === canary.target.identity.idHex);
    expect(entry).toBeDefined();
    expect(entry!.lastSeen).toBeGreaterThanOrEqual(sentAt);
  }, PROCESS_TIMEOUT);
}

test("SIGUSR1 and SIGUSR2 are ignored: the node keeps its link and carries items, then SIGTERM stops it (exit 0)", async () => {
  const n = await spawnNode();
  const nodeId = await linkedToCanary(n);
  for (const signal of ["SIGUSR1", "SIGUSR2"] as const) {
    n.proc.kill(signal);
    await waitFor(() => n.records.find((r) => r.event === "signal ignored" && r.signal === signal), 10_000, `${signal} logged as ignored`, 10);
  }
  // Still serving: an item announced on its API reaches a module on the canary's target, over the same link.
  const module = await apiModule(canary.target, 4242);
  const announcer = await ApiTestClient.connect(n.api);
  announcer.announce(4242, new TextEncoder().encode("after USR1 and USR2"));
  await waitFor(() => module.received.includes("after USR1 and USR2"), 10_000, "the item through the signalled node");
  expect(canary.target.transport.linked().some((l) => l.info.peerId === nodeId)).toBe(true);
  await announcer.end();
  module.client.close();
  n.proc.kill("SIGTERM");
  expect(await n.proc.exited).toBe(0);
}, PROCESS_TIMEOUT);

for (const taken of ["p2p", "control"] as const) {
  test(`a ${taken} port already taken: exit 1 with one line naming the key, and nothing ever claimed to listen`, async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const n = await spawnNode(taken === "p2p" ? { p2p: busy.port } : { control: busy.port });
      expect(await n.proc.exited).toBe(1);
      await n.drained;
      const key = taken === "p2p" ? "gossip.p2p_address" : "gossip.control_address";
      expect(n.plain).toEqual([expect.stringMatching(new RegExp(`^gossip: node not started: cannot listen on ${key} 127\\.0\\.0\\.1:${busy.port}: `))]);
      expect(n.records.filter((r) => /listening/.test(r.event as string)).map((r) => r.event)).toEqual([]);
      expect(n.records.some((r) => r.event === "node failed to start")).toBe(true);
      // And what had bound before the failure was let go: its API port is free again.
      const again = Bun.listen({ hostname: "127.0.0.1", port: n.api, socket: { data() {} } });
      again.stop(true);
    } finally {
      busy.stop(true);
    }
  }, PROCESS_TIMEOUT);
}

test("a save cut short by a kill leaves <store>.tmp-<pid>: removed at the next start, unless that process still runs", async () => {
  const n0 = await spawnNode(); // creates its hostkey; stopped at once, so the next start of the same config is "later"
  await n0.waitLog("node started");
  n0.proc.kill("SIGTERM");
  expect(await n0.proc.exited).toBe(0);
  const store = n0.hostkey.replace(/\.pem$/, ".peers.json");
  const gone = Bun.spawnSync(["true"]).pid; // a process that has exited: nobody's save is in progress under its pid
  const abandoned = `${store}.tmp-${gone}`;
  const live = `${store}.tmp-${process.pid}`; // this test runner is alive: its file may be a save in progress
  writeFileSync(abandoned, '{"version":1,"pee'); // what a kill mid-write leaves
  writeFileSync(live, "");
  const cfg = join(dir, `node${configs}.yaml`);
  const proc = Bun.spawn([process.execPath, CLI, "--config", cfg, "--log-format", "json"], { cwd: dir, stdout: "ignore", stderr: "pipe" });
  running.push(proc);
  try {
    await waitFor(() => ApiTestClient.connect(n0.api).then((c) => (c.close(), true), () => false), 10_000, "the restarted node's API", 50);
    expect(existsSync(abandoned)).toBe(false);
    expect(existsSync(live)).toBe(true);
  } finally {
    proc.kill("SIGTERM");
  }
  expect(await proc.exited).toBe(0);
  const log = await new Response(proc.stderr).text();
  expect(log).toContain(`"event":"peer store temporary removed"`);
}, PROCESS_TIMEOUT);
