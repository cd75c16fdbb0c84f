/**
 * Issue 16 on real sockets: a testnet of SEPARATE `gossip` processes (src/testnet/processes.ts) survives killing
 * half of them. Starts N nodes (default 60), waits until their links form one component and a first item reaches
 * every node, SIGKILLs K of them (default N/2, chosen by the seed), waits until the survivors' links are one component
 * again, publishes the next item from a survivor and waits until every survivor has it. Prints what it waited for and
 * how long; exit 0 when every survivor received the item, 1 otherwise. Not part of `bun test` (about a minute or
 * two with 60 processes on one core): run it as
 *   bun scripts/testnet-kill-half.ts [--nodes 60] [--kill 30] [--overlay hyparview|classic] [--dissemination plumtree|flood]
 *                                     [--degree 6] [--base-port 16001] [--seed 1]
 */
import { parseArgs } from "node:util";
import { startProcessTestnet, type ProcessTestnet } from "../src/testnet/processes.ts";
import { PROBE_DATA_TYPE, encodeProbe, readProbe } from "../src/testnet/probe.ts";
import { seededRandom } from "../src/util/random.ts";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "60" },
    kill: { type: "string" },
    overlay: { type: "string", default: "hyparview" },
    dissemination: { type: "string", default: "plumtree" },
    degree: { type: "string", default: "6" },
    "base-port": { type: "string", default: "16001" },
    seed: { type: "string", default: "1" },
  },
});
const n = Number(values.nodes);
const kill = values.kill === undefined ? Math.floor(n / 2) : Number(values.kill);
const degree = Number(values.degree);
const overlay = values.overlay as "hyparview" | "classic";
const dissemination = values.dissemination as "plumtree" | "flood";
const random = seededRandom(Number(values.seed));
const t0 = performance.now();
const say = (line: string) => process.stdout.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${line}\n`);

/** seq → the nodes whose module received that probe. */
const got = new Map<number, Set<number>>();
let net: ProcessTestnet | undefined;

async function until(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await Bun.sleep(250);
  }
  say(what);
}

/** Live nodes whose links (to live nodes) form one component, each with at least one link; and how many are full. */
async function overlayOf(t: ProcessTestnet): Promise<{ oneComponent: boolean; full: number; live: number }> {
  const all = await t.status();
  const live = t.nodes.filter((x) => x.alive);
  const byId = new Map<string, number>();
  all.forEach((s, i) => s && byId.set(s.peer_id, i));
  if (live.some((x) => all[x.index] === undefined)) return { oneComponent: false, full: 0, live: live.length };
  const reached = new Set([live[0]!.index]);
  const queue = [live[0]!.index];
  while (queue.length > 0) {
    for (const l of all[queue.pop()!]!.links) {
      const j = byId.get(l.peer_id);
      if (j !== undefined && t.nodes[j]!.alive && !reached.has(j)) reached.add(j), queue.push(j);
    }
  }
  const full = live.filter((x) => all[x.index]!.links.length >= degree).length;
  return { oneComponent: reached.size === live.length, full, live: live.length };
}

async function publish(t: ProcessTestnet, seq: number, from: number): Promise<Set<number>> {
  got.set(seq, new Set());
  t.announce(from, PROBE_DATA_TYPE, encodeProbe({ seq, origin: from, sentAt: performance.now() }, 64));
  return got.get(seq)!;
}

let ok = false;
try {
  say(`starting ${n} gossip processes (overlay ${overlay}, dissemination ${dissemination}, degree ${degree})`);
  net = await startProcessTestnet({
    nodes: n,
    basePort: Number(values["base-port"]),
    degree,
    overlay,
    dissemination,
    seed: Number(values.seed),
    onNotification: (i, type, data) => {
      const p = type === PROBE_DATA_TYPE ? readProbe(data, 64) : undefined;
      if (p !== undefined) got.get(p.seq)?.add(i);
      return p !== undefined;
    },
  });
  const t = net;
  say(`all ${n} modules connected; configs and logs in ${t.dir}`);
  await until("one component, every node linked", 120_000, async () => (await overlayOf(t)).oneComponent);
  const first = await publish(t, 0, 0);
  await until(`item 0 at all ${n - 1} other nodes`, 30_000, () => first.size === n - 1);
  const victims = t.nodes.map((x) => x.index);
  for (let i = victims.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [victims[i], victims[j]] = [victims[j]!, victims[i]!];
  }
  const killed = victims.slice(0, kill);
  for (const i of killed) t.kill(i);
  const killedAt = performance.now();
  say(`killed ${kill} processes (SIGKILL): ${killed.sort((a, b) => a - b).join(" ")}`);
  await until("survivors in one component again", 120_000, async () => (await overlayOf(t)).oneComponent);
  const survivors = t.nodes.filter((x) => x.alive);
  const from = survivors[Math.floor(random() * survivors.length)]!.index;
  const next = await publish(t, 1, from);
  await until(`item 1 (from node ${from}) at all ${survivors.length - 1} other survivors`, 30_000, () => next.size === survivors.length - 1);
  ok = true;
  // How long until every survivor's view is full again (reported, not required: at most 60 s more).
  const fullBy = performance.now() + 60_000;
  let o = await overlayOf(t);
  while (o.full < o.live && performance.now() < fullBy) {
    await Bun.sleep(250);
    o = await overlayOf(t);
  }
  say(`${o.full} of ${o.live} survivors hold ${degree} links ${((performance.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
} catch (e) {
  say(`FAILED: ${(e as Error).message}`);
} finally {
  await net?.stop();
}
say(ok ? "ok: every survivor received the next item" : "not ok");
process.exit(ok ? 0 : 1);
