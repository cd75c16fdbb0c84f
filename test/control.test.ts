/**
 * The control HTTP server against real in-process nodes: GET /metrics must parse as Prometheus text 0.0.4 (strict
 * parser below, no library) and count what really happened; GET /status has the documented shape; the exposition
 * writer escapes hostile label values. Real sockets, real handshakes (PoW difficulty 4).
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { bootstrapAt, testConfig } from "./net-harness.ts";
import { CONTENT_TYPE, Histogram, renderExposition } from "../src/control/prometheus.ts";
import type { NodeStatus } from "../src/control/status.ts";
import { silentLogger } from "../src/log.ts";
import { startNode, type GossipNode } from "../src/node.ts";
import { generateEd25519Pem, loadIdentity } from "../src/p2p/identity.ts";
import { PowPool } from "../src/p2p/pow-pool.ts";
import { ApiClient } from "../src/client/api-client.ts";
import { waitFor } from "./wait-for.ts";

// ---------------------------------------------------------------------------------------------------------------
// A strict parser for the text exposition format 0.0.4 (what Prometheus' own parser rejects, this rejects too, and
// a little more: HELP and TYPE are required, families must be contiguous, histogram invariants must hold).

interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface ParsedFamily {
  name: string;
  type: string;
  help: string;
  samples: ParsedSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(i));
    if (!m) throw new Error(`line ${line}: bad label at "${text.slice(i)}"`);
    i += m[0].length;
    let value = "";
    for (;;) {
      if (i >= text.length) throw new Error(`line ${line}: unterminated label value`);
      const c = text[i++]!;
      if (c === '"') break;
      if (c === "\n") throw new Error(`line ${line}: raw newline in label value`);
      if (c === "\\") {
        const e = text[i++];
        if (e === "\\") value += "\\";
        else if (e === '"') value += '"';
        else if (e === "n") value += "\n";
        else throw new Error(`line ${line}: bad escape \\${e}`);
      } else value += c;
    }
    if (m[1]! in labels) throw new Error(`line ${line}: label ${m[1]} twice`);
    labels[m[1]!] = value;
    if (i < text.length) {
      if (text[i] !== ",") throw new Error(`line ${line}: expected , between labels`);
      i++;
    }
  }
  return labels;
}

function parseValue(text: string, line: number): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: bad value "${text}"`);
  return Number(text);
}

function parseExposition(text: string): Map<string, ParsedFamily> {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const families = new Map<string, ParsedFamily>();
  const seriesSeen = new Set<string>();
  let current: ParsedFamily | undefined;
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw === "") throw new Error(`line ${line}: empty line`);
    if (raw.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(raw);
      if (!m) throw new Error(`line ${line}: comment is neither HELP nor TYPE: ${raw}`);
      const [, kind, name, rest] = m;
      if (!METRIC_NAME.test(name!)) throw new Error(`line ${line}: bad metric name ${name}`);
      if (kind === "HELP") {
        if (families.has(name!)) throw new Error(`line ${line}: family ${name} declared twice or not contiguous`);
        // Only \\ and \n may be escaped in HELP text.
        if (!/^(?:[^\\]|\\[\\n])*$/.test(rest!)) throw new Error(`line ${line}: bad escape in HELP`);
        current = { name: name!, type: "", help: rest!, samples: [] };
        families.set(name!, current);
      } else {
        if (current?.name !== name || current.type !== "") throw new Error(`line ${line}: TYPE must follow its HELP once`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest!)) throw new Error(`line ${line}: bad type ${rest}`);
        current.type = rest!;
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(raw);
    if (!m) throw new Error(`line ${line}: not a sample: ${raw}`);
    const [, name, labelText, valueText] = m;
    if (!current || current.type === "") throw new Error(`line ${line}: sample before HELP/TYPE`);
    const allowed =
      current.type === "histogram" ? [`${current.name}_bucket`, `${current.name}_sum`, `${current.name}_count`] : [current.name];
    if (!allowed.includes(name!)) throw new Error(`line ${line}: ${name} does not belong to family ${current.name}`);
    const labels = labelText ? parseLabels(labelText, line) : {};
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",")}}`;
    if (seriesSeen.has(key)) throw new Error(`line ${line}: duplicate series ${key}`);
    seriesSeen.add(key);
    current.samples.push({ name: name!, labels, value: parseValue(valueText!, line) });
  });
  for (const f of families.values()) {
    if (f.type === "") throw new Error(`family ${f.name} has no TYPE`);
    if (f.type === "counter") {
      if (!f.name.endsWith("_total")) throw new Error(`counter ${f.name} does not end in _total`);
      for (const s of f.samples) if (!(s.value >= 0)) throw new Error(`counter ${f.name} is negative or NaN`);
    }
    if (f.type === "histogram") checkHistogram(f);
  }
  return families;
}

function checkHistogram(f: ParsedFamily): void {
  const buckets = f.samples.filter((s) => s.name.endsWith("_bucket"));
  const count = f.samples.find((s) => s.name === `${f.name}_count`);
  const sum = f.samples.find((s) => s.name === `${f.name}_sum`);
  if (!count || !sum || buckets.length === 0) throw new Error(`histogram ${f.name} lacks _bucket, _sum or _count`);
  let lastLe = -Infinity;
  let lastValue = 0;
  for (const b of buckets) {
    if (b.labels.le === undefined) throw new Error(`histogram ${f.name}: bucket without le`);
    const le = parseValue(b.labels.le, 0);
    if (!(le > lastLe)) throw new Error(`histogram ${f.name}: le not increasing`);
    if (b.value < lastValue) throw new Error(`histogram ${f.name}: buckets not cumulative`);
    lastLe = le;
    lastValue = b.value;
  }
  if (lastLe !== Infinity) throw new Error(`histogram ${f.name}: last bucket is not +Inf`);
  if (lastValue !== count.value) throw new Error(`histogram ${f.name}: +Inf bucket ≠ _count`);
}

const value = (families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number => {
  const f = families.get(name.replace(/_(bucket|sum|count)$/, "")) ?? families.get(name);
  const s = f?.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  if (s === undefined) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`);
  return s.value;
};

// ---------------------------------------------------------------------------------------------------------------
// Nodes with a control server

const pow = new PowPool({ size: 1 });
const nodes: GossipNode[] = [];
const clients: ApiClient[] = [];
/** Tests that start nodes: real handshakes on a machine with about one core. */
const NODE_TEST_TIMEOUT = 20_000;

async function node(opts: { bootstrapPort?: number; control?: boolean } = {}): Promise<GossipNode> {
  const config = testConfig({
    bootstrappers: bootstrapAt(opts.bootstrapPort),
    controlAddress: opts.control === false ? undefined : { host: "127.0.0.1", port: 0 },
  });
  const n = await startNode(config, loadIdentity(generateEd25519Pem()), silentLogger, {
    pow,
    membership: { tickMs: 100, backoffInitialMs: 50 },
  });
  nodes.push(n);
  return n;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});
afterAll(() => pow.close());

const get = (n: GossipNode, path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${n.control!.port}${path}`, init);

async function linkedPair() {
  const a = await node();
  const b = await node({ bootstrapPort: a.transport.port });
  await waitFor(() => a.transport.linked().length === 1 && b.transport.linked().length === 1, 5000, "link");
  return { a, b };
}

/** A module on `n` that subscribes and answers every NOTIFICATION valid. */
async function validSubscriber(n: GossipNode, dataType: number) {
  const c = await ApiClient.connect(n.api.port);
  clients.push(c);
  c.answerNotifications(() => true);
  c.subscribe(dataType);
  await waitFor(() => n.api.hasSubscribers(dataType), 3000, "subscription");
  return { notified: () => c.stats().notifications };
}

test("/metrics parses as Prometheus text and counts an announce, a validated receive, handshakes and a failure", async () => {
  const { a, b } = await linkedPair();
  const sub = await validSubscriber(b, 1337);
  const announcer = await ApiClient.connect(a.api.port);
  clients.push(announcer);
  announcer.announce(1337, new TextEncoder().encode("metrics"));
  await waitFor(() => sub.notified() === 1 && b.broadcaster.stats().valid === 1, 5000, "validated at b");

  // A peer that sends garbage instead of a handshake: a failure with a reason.
  const raw = await Bun.connect({ hostname: "127.0.0.1", port: b.transport.port, socket: { data() {}, close() {}, error() {} } });
  raw.write(new Uint8Array([0, 0, 0, 3, 1, 2, 3]));
  await waitFor(() => b.transport.stats().handshakesFailed.size > 0, 5000, "handshake failure");
  raw.end();

  const resB = await get(b, "/metrics");
  expect(resB.status).toBe(200);
  expect(resB.headers.get("content-type")).toBe(CONTENT_TYPE);
  const mb = parseExposition(await resB.text());
  const ma = parseExposition(await (await get(a, "/metrics")).text());

  expect(value(ma, "gossip_items_announced_total")).toBe(1);
  expect(value(ma, "gossip_items_forwarded_total")).toBeGreaterThanOrEqual(1);
  expect(value(mb, "gossip_items_received_total")).toBe(1);
  expect(value(mb, "gossip_items_valid_total")).toBe(1);
  expect(value(mb, "gossip_items_duplicate_total")).toBe(0);
  expect(value(mb, "gossip_items_invalid_total")).toBe(0);
  expect(value(mb, "gossip_validation_duration_seconds_count")).toBe(1);
  expect(value(mb, "gossip_validation_duration_seconds_bucket", { le: "+Inf" })).toBe(1);
  // b dialed a, so b solved a proof of work; a (the responder) solved none.
  expect(value(mb, "gossip_pow_solve_duration_seconds_count")).toBeGreaterThanOrEqual(1);
  expect(value(ma, "gossip_pow_solve_duration_seconds_count")).toBe(0);
  expect(value(ma, "gossip_links", { direction: "inbound" })).toBe(1);
  expect(value(mb, "gossip_links", { direction: "outbound" })).toBe(1);
  expect(value(ma, "gossip_handshakes_completed_total")).toBe(1);
  const failures = mb.get("gossip_handshakes_failed_total")!.samples;
  expect(failures.length).toBeGreaterThan(0);
  expect(failures.every((s) => typeof s.labels.reason === "string" && s.value >= 1)).toBe(true);
  expect(value(mb, "gossip_link_bytes_received_total")).toBeGreaterThan(0);
  expect(value(mb, "gossip_link_send_dropped_total")).toBe(0);
  expect(value(mb, "gossip_api_subscriptions")).toBe(1);
  expect(value(mb, "gossip_item_cache_items")).toBe(1);
  expect(value(mb, "gossip_item_cache_capacity")).toBe(5);
  expect(mb.get("gossip_build_info")!.samples[0]!.labels.version).toMatch(/^\d+\.\d+\.\d+$/);
}, NODE_TEST_TIMEOUT);

test("byte counters keep the totals of closed links: they never go down when a peer leaves", async () => {
  const { a, b } = await linkedPair();
  const before = value(parseExposition(await (await get(a, "/metrics")).text()), "gossip_link_bytes_received_total");
  expect(before).toBeGreaterThan(0);
  nodes.splice(nodes.indexOf(b), 1);
  await b.stop();
  await waitFor(() => a.transport.linked().length === 0, 5000, "link down");
  const after = parseExposition(await (await get(a, "/metrics")).text());
  expect(value(after, "gossip_link_bytes_received_total")).toBeGreaterThanOrEqual(before);
  expect(value(after, "gossip_links", { direction: "inbound" })).toBe(0);
}, NODE_TEST_TIMEOUT);

test("/status has the documented shape: peer ID, listen addresses, links, subscriptions by type, cache fill", async () => {
  const { a, b } = await linkedPair();
  await validSubscriber(a, 7);
  await validSubscriber(a, 7);
  await validSubscriber(a, 3);
  const startedAt = value(parseExposition(await (await get(a, "/metrics")).text()), "gossip_start_time_seconds") * 1000;
  const before = Date.now();
  const res = await get(a, "/status");
  const after = Date.now();
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("application/json");
  const s = (await res.json()) as NodeStatus;
  expect(Object.keys(s).sort()).toEqual(
    ["api_connections", "bans", "cache", "commit", "handshakes", "items", "link_bytes", "links", "listen", "membership", "peer_id",
      "subscriptions", "uptime_seconds", "validation", "validations_outstanding", "version"].sort(),
  );
  expect(s.peer_id).toBe(a.identity.idHex);
  expect(s.listen).toEqual({
    api: `127.0.0.1:${a.api.port}`,
    p2p: `127.0.0.1:${a.transport.port}`,
    control: `127.0.0.1:${a.control!.port}`,
  });
  expect(s.links).toHaveLength(1);
  const link = s.links[0]!;
  expect(link.peer_id).toBe(b.identity.idHex);
  expect(link.inbound).toBe(true);
  expect(link.address).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(link.listen_port).toBe(b.transport.port);
  expect(typeof link.age_seconds).toBe("number");
  expect(link.bytes_in).toBeGreaterThan(0);
  expect(link.bytes_out).toBeGreaterThan(0);
  expect(link.dropped).toBe(0);
  expect(s.subscriptions).toEqual([
    { data_type: 3, subscribers: 1 },
    { data_type: 7, subscribers: 2 },
  ]);
  expect(s.api_connections).toBe(3);
  expect(s.cache).toEqual({ items: 0, capacity: 5, seen_ids: 0 });
  expect(s.handshakes.completed).toBe(1);
  expect(typeof s.handshakes.failed).toBe("object");
  // Uptime is the time since the start the node reports in /metrics, read within the request (to its 0.1 s), …
  const tenths = (ms: number) => (ms - startedAt) / 100;
  expect(s.uptime_seconds).toBeGreaterThanOrEqual(Math.floor(tenths(before) - 1e-6) / 10);
  expect(s.uptime_seconds).toBeLessThanOrEqual(Math.ceil(tenths(after) + 1e-6) / 10);
  // … and it keeps counting: a later document shows more.
  const later = async () => ((await (await get(a, "/status")).json()) as NodeStatus).uptime_seconds;
  await waitFor(async () => (await later()) > s.uptime_seconds, 5000, "uptime to grow", 20);
}, NODE_TEST_TIMEOUT);

test("/status items, validation and link bytes are the /metrics figures (the dashboard's rates come from them)", async () => {
  const { a, b } = await linkedPair();
  await validSubscriber(b, 21);
  const announcer = await ApiClient.connect(a.api.port);
  clients.push(announcer);
  for (const text of ["one", "two"]) announcer.announce(21, new TextEncoder().encode(text));
  await waitFor(() => b.broadcaster.stats().valid === 2, 5000, "validated at b");
  const m = parseExposition(await (await get(b, "/metrics")).text());
  const s = (await (await get(b, "/status")).json()) as NodeStatus;
  expect(s.items).toMatchObject({
    received: value(m, "gossip_items_received_total"),
    valid: 2,
    duplicate: value(m, "gossip_items_duplicate_total"),
    invalid: 0,
    forwarded: value(m, "gossip_items_forwarded_total"),
    announced: 0,
  });
  expect(s.validation.count).toBe(value(m, "gossip_validation_duration_seconds_count"));
  expect(s.validation.sum_seconds).toBeCloseTo(value(m, "gossip_validation_duration_seconds_sum"), 9);
  const buckets = m.get("gossip_validation_duration_seconds")!.samples.filter((x) => x.name.endsWith("_bucket"));
  expect(s.validation.buckets.map((x) => [String(x.le), x.count])).toEqual(buckets.map((x) => [x.labels.le!, x.value]));
  expect(s.link_bytes.received).toBeGreaterThanOrEqual(s.links.reduce((n, l) => n + l.bytes_in, 0));
}, NODE_TEST_TIMEOUT);

test("GET / is the dashboard: one HTML page with no external asset, a strict CSP, reading ./status", async () => {
  const a = await node();
  const res = await get(a, "/");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
  const csp = res.headers.get("content-security-policy")!;
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("connect-src 'self'");
  expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
  const html = await res.text();
  expect(html).toStartWith("<!doctype html>");
  // Every reference is relative to the node or inline data; the only absolute URL is the SVG namespace name.
  const refs = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((r) => r[1]);
  expect([...new Set(refs)].sort()).toEqual(["data:,", "metrics", "status"]);
  expect(html.replaceAll("http://www.w3.org/2000/svg", "")).not.toMatch(/https?:|\/\/[a-z]/i);
  expect(html).toContain('fetch("status"');
  // The hashes in the CSP are those of the inline style and script, or the browser would refuse to run them.
  const hash = (t: string) => `'sha256-${new Bun.CryptoHasher("sha256").update(t).digest("base64")}'`;
  expect(csp).toContain(hash(/<script>([\s\S]*)<\/script>/.exec(html)![1]!));
  expect(csp).toContain(hash(/<style>([\s\S]*)<\/style>/.exec(html)![1]!));
}, NODE_TEST_TIMEOUT);

test("docs/grafana-dashboard.json queries only metrics that /metrics serves, with suffixes that fit their types", async () => {
  const a = await node();
  const served = parseExposition(await (await get(a, "/metrics")).text());
  const dashboard = JSON.parse(await Bun.file(new URL("../docs/grafana-dashboard.json", import.meta.url)).text());
  const exprs: string[] = [dashboard.templating.list.map((v: { definition: string }) => v.definition)].flat();
  for (const p of dashboard.panels) for (const t of p.targets ?? []) exprs.push(t.expr);
  expect(exprs.length).toBeGreaterThan(30);
  const queried = new Set<string>();
  for (const e of exprs) {
    for (const [name] of e.matchAll(/\bgossip_[a-z0-9_]+/g)) {
      const family = served.get(name) ?? served.get(name.replace(/_(bucket|sum|count)$/, ""));
      expect({ name, served: family !== undefined }).toEqual({ name, served: true });
      if (family!.name !== name) expect({ name, type: family!.type }).toEqual({ name, type: "histogram" });
      if (family!.type === "histogram") expect({ name, suffixed: family!.name !== name }).toEqual({ name, suffixed: true });
      queried.add(family!.name);
    }
    // rate() and increase() only over counters and histogram series, never over a gauge.
    for (const [, inner] of e.matchAll(/\b(?:rate|increase)\((gossip_[a-z0-9_]+)/g)) {
      const family = served.get(inner!) ?? served.get(inner!.replace(/_(bucket|sum|count)$/, ""));
      expect({ inner, type: family!.type }).not.toEqual({ inner, type: "gauge" });
    }
  }
  // Every family of the metrics reference has a panel.
  expect([...served.keys()].filter((n) => !queried.has(n))).toEqual([]);
}, NODE_TEST_TIMEOUT);

test("unknown paths are 404, other methods 405; without control_address nothing listens", async () => {
  const a = await node();
  expect((await get(a, "/x")).status).toBe(404);
  expect((await get(a, "/metrics/x")).status).toBe(404);
  const post = await get(a, "/status", { method: "POST", body: "x" });
  expect(post.status).toBe(405);
  expect(post.headers.get("allow")).toBe("GET, HEAD");
  expect((await get(a, "/metrics")).status).toBe(200);
  const off = await node({ control: false });
  expect(off.control).toBeUndefined();
}, NODE_TEST_TIMEOUT);

test("exposition writer: hostile label values are escaped, histograms are cumulative, bad names are refused", () => {
  const h = new Histogram([0.1, 1]);
  for (const v of [0.05, 0.5, 0.5, 7, NaN]) h.observe(v);
  const text = renderExposition([
    {
      name: "x_failed_total",
      help: 'reasons a peer chose: back\\slash "quote"\nnewline',
      type: "counter",
      samples: [{ labels: { reason: 'socket-error:a "b"\\c\nd' }, value: 2 }],
    },
    h.family("x_seconds", "a histogram"),
  ]);
  const parsed = parseExposition(text);
  expect(parsed.get("x_failed_total")!.samples[0]!.labels.reason).toBe('socket-error:a "b"\\c\nd');
  const hs = parsed.get("x_seconds")!.samples;
  expect(hs.map((s) => [s.name, s.labels.le ?? "-", s.name.endsWith("_sum") ? Math.round(s.value * 100) : s.value])).toEqual([
    ["x_seconds_bucket", "0.1", 1],
    ["x_seconds_bucket", "1", 3],
    ["x_seconds_bucket", "+Inf", 4],
    ["x_seconds_sum", "-", 805],
    ["x_seconds_count", "-", 4],
  ]);
  expect(() => renderExposition([{ name: "x_failed", help: "", type: "counter", samples: [] }])).toThrow(/_total/);
  expect(() => renderExposition([{ name: "bad-name", help: "", type: "gauge", samples: [] }])).toThrow(/not valid/);
  expect(() => renderExposition([{ name: "x", help: "", type: "gauge", samples: [{ labels: { "a-b": "1" }, value: 1 }] }])).toThrow();
  // The parser itself is strict: it must refuse what the format forbids.
  expect(() => parseExposition("x 1\n")).toThrow(/before HELP/);
  expect(() => parseExposition("# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"1\"} 1\nx_total{a=\"1\"} 2\n")).toThrow(/duplicate/);
  expect(() => parseExposition("# HELP y h\n# TYPE y histogram\ny_bucket{le=\"1\"} 2\ny_bucket{le=\"+Inf\"} 1\ny_sum 1\ny_count 1\n")).toThrow(
    /cumulative/,
  );
});

test("README 'Metrics reference' lists exactly the metrics /metrics serves, with their types", async () => {
  const a = await node();
  const served = parseExposition(await (await get(a, "/metrics")).text());
  const readme = await Bun.file(new URL("../README.md", import.meta.url)).text();
  const section = readme.slice(readme.indexOf("## Metrics reference"), readme.indexOf("\n## ", readme.indexOf("## Metrics reference") + 5));
  const documented = new Map([...section.matchAll(/^\| `([a-z_:]+)` \| (counter|gauge|histogram) \|/gm)].map((m) => [m[1]!, m[2]!]));
  expect(documented.size).toBeGreaterThan(20);
  expect(new Map([...served.values()].map((f) => [f.name, f.type]))).toEqual(documented);
}, NODE_TEST_TIMEOUT);

test("a control address already in use fails the start with the key named, and leaves nothing listening", async () => {
  const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const apiPort = probe.port;
  probe.stop(true);
  try {
    const config = testConfig({
      apiAddress: { host: "127.0.0.1", port: apiPort },
      controlAddress: { host: "127.0.0.1", port: busy.port },
    });
    await expect(startNode(config, loadIdentity(generateEd25519Pem()), silentLogger, { pow })).rejects.toThrow(
      `cannot listen on gossip.control_address 127.0.0.1:${busy.port}`,
    );
    // The API listener was closed again: its port can be taken.
    const again = Bun.listen({ hostname: "127.0.0.1", port: apiPort, socket: { data() {} } });
    again.stop(true);
  } finally {
    busy.stop(true);
  }
}, NODE_TEST_TIMEOUT);
