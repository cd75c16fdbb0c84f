/**
 * `gossip announce`, `gossip subscribe` and `gossip status` as subprocesses against real in-process nodes: the
 * tools speak the VoidPhone API and the control HTTP like any module or operator would. Exit codes: 0 ok, 1 runtime
 * failure with one clear line, 2 usage or config error.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapAt, testConfig } from "./net-harness.ts";
import { silentLogger } from "../src/log.ts";
import { startNode, type GossipNode } from "../src/node.ts";
import { generateEd25519Pem, loadIdentity } from "../src/p2p/identity.ts";
import { PowPool } from "../src/p2p/pow-pool.ts";
import { ApiClient } from "../src/client/api-client.ts";
import { ExecValidator } from "../src/tools/exec-validator.ts";
import type { NodeStatus } from "../src/control/status.ts";
import { renderStatus } from "../src/tools/status.ts";
import { formatNotification, showData } from "../src/tools/data-format.ts";
import { waitFor } from "./wait-for.ts";

const CLI = join(import.meta.dir, "..", "src", "cli.ts");
/** Tests that start nodes and `gossip` subprocesses: real handshakes, a fresh Bun per tool, about one core. */
const TOOL_TEST_TIMEOUT = 20_000;
const dir = mkdtempSync(join(tmpdir(), "gossip-tools-"));
const pow = new PowPool({ size: 1 });
const nodes: GossipNode[] = [];
const children: Bun.Subprocess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});
afterAll(() => pow.close());

async function node(opts: { bootstrapPort?: number; degree?: number; maxInboundPerIp?: number } = {}): Promise<GossipNode> {
  const config = testConfig({
    bootstrappers: bootstrapAt(opts.bootstrapPort),
    controlAddress: { host: "127.0.0.1", port: 0 },
    ...(opts.degree ? { degree: opts.degree } : {}),
  });
  const transport = opts.maxInboundPerIp === undefined ? undefined : { maxInboundPerIp: opts.maxInboundPerIp, limitLoopback: true };
  const n = await startNode(config, loadIdentity(generateEd25519Pem()), silentLogger, { pow, membership: { tickMs: 100, backoffInitialMs: 50 }, transport });
  nodes.push(n);
  return n;
}

async function linkedPair() {
  const a = await node();
  const b = await node({ bootstrapPort: a.transport.port });
  await waitFor(() => a.transport.linked().length === 1 && b.transport.linked().length === 1, 4000, "link");
  return { a, b };
}

/** Starts the CLI (never spawnSync: the in-process nodes need the event loop while it runs). */
function spawn(args: string[], stdin?: Uint8Array) {
  const p = Bun.spawn([process.execPath, CLI, ...args], { cwd: dir, stdin: stdin ?? "ignore", stdout: "pipe", stderr: "pipe" });
  children.push(p);
  const result = (async () => {
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { out, err, code };
  })();
  return { process: p, result };
}
const gossip = (...args: string[]) => spawn(args).result;

async function closedPort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

test("subscribe on one node and announce on the other: text, stdin bytes as hex, JSON lines, answers valid", async () => {
  const { a, b } = await linkedPair();
  const sub = spawn(["subscribe", "--api", `127.0.0.1:${b.api.port}`, "--type", "1337", "--json", "--count", "2"]);
  await waitFor(() => b.api.hasSubscribers(1337), 4000, "subscribe connected");

  const first = await gossip("announce", "--api", `127.0.0.1:${a.api.port}`, "--type", "1337", "--ttl", "3", "hello world");
  expect(first.err).toBe("");
  expect(first.code).toBe(0);
  expect(first.out).toMatch(/^announced 11 bytes, type 1337, ttl 3, item [0-9a-f]{64} via 127\.0\.0\.1:\d+\n$/);
  const second = await spawn(["announce", "--api", `127.0.0.1:${a.api.port}`, "--type", "1337", "-"], new Uint8Array([0, 0xff, 0x10]))
    .result;
  expect(second.code).toBe(0);

  const { out, err, code } = await sub.result;
  expect(code).toBe(0);
  expect(err).toContain(`subscribed to type 1337 at 127.0.0.1:${b.api.port}`);
  const lines = out.trim().split("\n").map((l) => JSON.parse(l));
  expect(lines).toEqual([
    { data_type: 1337, size: 11, valid: true, text: "hello world" },
    { data_type: 1337, size: 3, valid: true, hex: "00ff10" },
  ]);
  // The node got both VALIDATIONs: both items were judged valid (and would be forwarded).
  await waitFor(() => b.broadcaster.stats().valid === 2, 4000, "both validated");
  expect(a.broadcaster.stats().announced).toBe(2);
}, TOOL_TEST_TIMEOUT);

test("--reject-if answers invalid for matching data (the node counts it), valid otherwise; --file announces a file", async () => {
  const { a, b } = await linkedPair();
  const sub = spawn(["subscribe", "--api", `127.0.0.1:${b.api.port}`, "-t", "5", "--reject-if", "^spam", "-n", "2"]);
  await waitFor(() => b.api.hasSubscribers(5), 4000, "subscribe connected");
  expect((await gossip("announce", "--api", `127.0.0.1:${a.api.port}`, "--type", "5", "spam eggs")).code).toBe(0);
  await waitFor(() => b.broadcaster.stats().invalid === 1, 4000, "rejected");
  writeFileSync(join(dir, "ham.txt"), "ham");
  expect((await gossip("announce", "--api", `127.0.0.1:${a.api.port}`, "--type", "5", "--file", "ham.txt")).code).toBe(0);
  const { out, code } = await sub.result;
  expect(code).toBe(0);
  expect(out).toBe('type=5 size=9 rejected text="spam eggs"\ntype=5 size=3 valid text="ham"\n');
  await waitFor(() => b.broadcaster.stats().valid === 1, 4000, "ham validated");
  expect(b.broadcaster.stats().invalid).toBe(1);
}, TOOL_TEST_TIMEOUT);

/** A validator in shell: rejects data starting "reject" (exit 3), hangs on "hang", checks its environment. */
const VALIDATOR = [
  "data=$(cat)",
  'case "$data" in reject*) exit 3 ;; hang*) exec sleep 29.5 ;; esac',
  '[ "$GOSSIP_DATA_TYPE" = 77 ] && [ "$GOSSIP_SIZE" = "$(printf %s "$data" | wc -c | tr -d " ")" ] || exit 4',
].join("\n");

test("--exec: exit 0 passes an item on, a rejected one and a hanging one (timeout) stop at the node", async () => {
  // A line a — b — c: b's only subscriber is the --exec validator, so only what it passes can reach c. Inbound caps
  // keep it a line whatever membership tries: a admits one inbound link (b's), c admits none (it dials b).
  const a = await node({ degree: 1, maxInboundPerIp: 1 });
  const b = await node({ bootstrapPort: a.transport.port, degree: 2 });
  const c = await node({ bootstrapPort: b.transport.port, degree: 1, maxInboundPerIp: 0 });
  await waitFor(() => a.transport.linked().length === 1 && b.transport.linked().length === 2 && c.transport.linked().length === 1, 4000, "a line of three");
  writeFileSync(join(dir, "validator.sh"), VALIDATOR);
  const onC = await ApiClient.connect(c.api.port);
  const receivedOnC: string[] = [];
  onC.answerNotifications((n) => void receivedOnC.push(new TextDecoder().decode(n.data)));
  onC.subscribe(77);
  const sub = spawn(["subscribe", "--api", `127.0.0.1:${b.api.port}`, "-t", "77", "--exec", "sh validator.sh", "--exec-timeout", "1000", "-n", "3"]);
  await waitFor(() => b.api.hasSubscribers(77) && c.api.hasSubscribers(77), 4000, "subscribers on b and c");
  for (const text of ["reject me", "hang on", "fine item"]) {
    expect((await gossip("announce", "--api", `127.0.0.1:${a.api.port}`, "--type", "77", text)).code).toBe(0);
  }
  const { out, err, code } = await sub.result;
  expect(code).toBe(0);
  expect(out.split("\n").sort()).toEqual(["", 'type=77 size=7 rejected text="hang on"', 'type=77 size=9 rejected text="reject me"', 'type=77 size=9 valid text="fine item"']);
  expect(err).toContain("--exec rejected type=77 size=9: exit 3");
  expect(err).toContain("--exec rejected type=77 size=7: timeout 1000 ms");
  // The node took both rejections as verdicts (not as unanswered), and passed on only the item the command accepted.
  await waitFor(() => receivedOnC.includes("fine item"), 4000, "the accepted item on c");
  await waitFor(() => b.broadcaster.stats().invalid === 2, 4000, "two rejections counted on b");
  expect(b.broadcaster.stats()).toMatchObject({ valid: 1, invalid: 2, unanswered: 0 });
  expect(c.transport.linked().map((l) => l.info.peerId)).toEqual([b.identity.idHex]); // still a line: c hears only b
  expect(receivedOnC).toEqual(["fine item"]);
  // The hanging command was killed with its process group, not left behind.
  expect(Bun.spawnSync(["pgrep", "-f", "sleep 29.5"]).exitCode).toBe(1);
  onC.close();
}, TOOL_TEST_TIMEOUT);

test("ExecValidator runs at most `concurrency` commands at once; the rest wait in order; environment and stdin reach them", async () => {
  const work = mkdtempSync(join(dir, "exec-"));
  const command = `cat > "${work}/in-$GOSSIP_SIZE"; touch "${work}/started-$GOSSIP_SIZE"; while [ ! -e "${work}/go" ]; do sleep 0.02; done`;
  const v = new ExecValidator({ command, concurrency: 2, timeoutMs: 15_000 });
  const verdicts = [1, 2, 3, 4, 5].map((n) => v.validate(9, new Uint8Array(n).fill(0x61)));
  const started = () => readdirSync(work).filter((f) => f.startsWith("started-")).sort();
  await waitFor(() => started().length === 2, 5000, "two commands started");
  expect(v.stats()).toMatchObject({ running: 2, queued: 3 });
  expect(started()).toEqual(["started-1", "started-2"]); // the first two, in arrival order
  expect(readFileSync(join(work, "in-2"), "utf8")).toBe("aa");
  writeFileSync(join(work, "go"), "");
  expect(await Promise.all(verdicts)).toEqual([1, 2, 3, 4, 5].map(() => ({ valid: true })));
  expect(v.stats()).toEqual({ running: 0, queued: 0, runs: 5 });
  // A command that cannot run is a rejection with a reason, never a throw.
  const broken = new ExecValidator({ command: "exit 7", concurrency: 1, timeoutMs: 5000 });
  expect(await broken.validate(1, new Uint8Array(0))).toEqual({ valid: false, reason: "exit 7" });
}, TOOL_TEST_TIMEOUT);

test("status prints a readable table from --control, from --config, and JSON with --json", async () => {
  const { a, b } = await linkedPair();
  const control = `127.0.0.1:${b.control!.port}`;
  const table = await gossip("status", "--control", control);
  expect(table.code).toBe(0);
  expect(table.out).toMatch(new RegExp(`^peer id +${b.identity.idHex}$`, "m"));
  expect(table.out).toMatch(/^links +1$/m);
  expect(table.out).toMatch(new RegExp(`^${a.identity.idHex.slice(0, 16)} +127\\.0\\.0\\.1:${a.transport.port} +out `, "m"));

  const cfg = join(dir, "status.yaml");
  writeFileSync(cfg, `hostkey: s.pem\ngossip:\n  control_address: ${control}\n`);
  const viaConfig = await gossip("status", "--config", cfg, "--json");
  expect(viaConfig.code).toBe(0);
  expect(JSON.parse(viaConfig.out).peer_id).toBe(b.identity.idHex);

  const noControl = join(dir, "nocontrol.yaml");
  writeFileSync(noControl, "hostkey: s.pem\n");
  const r = await gossip("status", "--config", noControl);
  expect(r.code).toBe(2);
  expect(r.err).toContain("gossip.control_address: not set");
}, TOOL_TEST_TIMEOUT);

test("a node that cannot be reached is exit 1 with one clear line, for every tool", async () => {
  const port = await closedPort();
  const cases: [string[], string][] = [
    [["announce", "--api", `127.0.0.1:${port}`, "--type", "1", "x"], `cannot connect to the API at 127.0.0.1:${port}`],
    [["subscribe", "--api", `127.0.0.1:${port}`, "--type", "1"], `cannot connect to the API at 127.0.0.1:${port}`],
    [["status", "--control", `127.0.0.1:${port}`], `cannot reach the control address 127.0.0.1:${port}`],
  ];
  for (const [args, message] of cases) {
    const r = await gossip(...args);
    expect(r.code).toBe(1);
    expect(r.err).toContain(message);
    expect(r.err.trim().split("\n")).toHaveLength(1);
  }
}, TOOL_TEST_TIMEOUT);

test("usage mistakes are exit 2 with the problem named", async () => {
  writeFileSync(join(dir, "big.bin"), new Uint8Array(65528));
  const cases: [string[], string][] = [
    [["announce", "--api", "127.0.0.1:1", "x"], "announce needs --type N"],
    [["announce", "--type", "1"], "exactly one of DATA, --file F or -"],
    [["announce", "--type", "1", "--file", "big.bin", "x"], "exactly one of DATA, --file F or -"],
    [["announce", "--type", "70000", "x"], "--type: 70000 is out of range 0-65535"],
    [["announce", "--type", "1", "--ttl", "-1", "x"], "--ttl"],
    [["announce", "--type", "1", "--file", "big.bin"], "one ANNOUNCE carries at most 65527"],
    [["announce", "--type", "1", "--file", "missing.bin"], "--file: cannot read missing.bin"],
    [["announce", "--api", "nowhere", "--type", "1", "x"], "--api:"],
    [["subscribe", "--type", "1", "--reject-if", "("], "--reject-if:"],
    [["subscribe"], "subscribe needs --type N"],
    [["subscribe", "--type", "1", "--frobnicate"], "Unknown option '--frobnicate'"],
    [["subscribe", "--type", "1", "--exec", "true", "--reject-if", "x"], "--exec and --reject-if"],
    [["subscribe", "--type", "1", "--exec-timeout", "5"], "need --exec CMD"],
    [["subscribe", "--type", "1", "--exec", "true", "--exec-concurrency", "0"], "--exec-concurrency: 0 is out of range"],
    [["status", "--control", "nonsense"], "--control:"],
  ];
  for (const [args, message] of cases) {
    const r = await gossip(...args);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.err).toContain(message);
    expect(r.err).toContain("usage:");
  }
}, TOOL_TEST_TIMEOUT);

test("subscribe exits 1 when the node goes away, and 0 on SIGTERM", async () => {
  const a = await node();
  const sub = spawn(["subscribe", "--api", `127.0.0.1:${a.api.port}`, "--type", "9"]);
  await waitFor(() => a.api.hasSubscribers(9), 4000, "subscribed");
  const apiPort = a.api.port;
  nodes.splice(nodes.indexOf(a), 1);
  await a.stop();
  const lost = await sub.result;
  expect(lost.code).toBe(1);
  expect(lost.err).toContain(`connection to the node at 127.0.0.1:${apiPort} lost`);

  const b = await node();
  const sub2 = spawn(["subscribe", "--api", `127.0.0.1:${b.api.port}`, "--type", "9"]);
  await waitFor(() => b.api.hasSubscribers(9), 4000, "subscribed");
  sub2.process.kill("SIGTERM");
  expect((await sub2.result).code).toBe(0);
  await waitFor(() => !b.api.hasSubscribers(9), 4000, "unsubscribed by closing");
}, TOOL_TEST_TIMEOUT);

test("data is shown as text when printable UTF-8, else as hex", () => {
  expect(showData(new TextEncoder().encode("grüße\tok\n"))).toEqual({ text: "grüße\tok\n" });
  expect(showData(new Uint8Array([0xc3, 0x28]))).toEqual({ hex: "c328" }); // invalid UTF-8
  expect(showData(new Uint8Array([0x41, 0x07]))).toEqual({ hex: "4107" }); // BEL: not printable
  expect(showData(new Uint8Array(0))).toEqual({ text: "" });
  expect(formatNotification({ dataType: 1, size: 2, valid: true, shown: { text: 'a"\n' } }, false)).toBe('type=1 size=2 valid text="a\\"\\n"');
});

test("the status table renders every part of a status document", () => {
  const doc: NodeStatus = {
    peer_id: "ab".repeat(32),
    version: "0.1.0",
    commit: "abc",
    uptime_seconds: 3725.4,
    listen: { api: "127.0.0.1:7001", p2p: "127.0.0.1:6001", control: "127.0.0.1:9001" },
    links: [
      { peer_id: "cd".repeat(32), address: "10.0.0.2:6001", listen_port: 6001, inbound: false, age_seconds: 65, bytes_in: 2048, bytes_out: 100, dropped: 1 },
    ],
    subscriptions: [{ data_type: 1337, subscribers: 2 }],
    api_connections: 3,
    validations_outstanding: 0,
    cache: { items: 4, capacity: 50, seen_ids: 12 },
    membership: { candidates: 5, dialing: 1 },
    handshakes: { completed: 7, failed: { "connect-failed": 2, "handshake-timeout": 1 }, pending: 0 },
    items: { announced: 1, received: 9, duplicate: 4, valid: 5, invalid: 0, unanswered: 0, not_subscribed: 0, dropped_busy: 0, id_mismatch: 0, forwarded: 12, send_failed: 0 },
    validation: { count: 5, sum_seconds: 0.01, buckets: [{ le: 0.005, count: 5 }, { le: "+Inf", count: 5 }] },
    link_bytes: { received: 2048, sent: 100 },
  };
  const text = renderStatus(doc);
  expect(text).toContain("uptime         1h 02m 05s\n");
  expect(text).toContain("subscriptions  1337 (2)\n");
  expect(text).toContain("cache          4/50 items, 12 seen IDs\n");
  expect(text).toContain("handshakes     7 completed, 3 failed (connect-failed 2, handshake-timeout 1), 0 pending\n");
  expect(text).toMatch(/^PEER +ADDRESS +DIR +AGE +IN +OUT +DROPPED$/m);
  expect(text).toMatch(/^cdcdcdcdcdcdcdcd +10\.0\.0\.2:6001 +out +1m 05s +2\.0 KiB +100 B +1$/m);
  // Links with a broadcast-tree role get a ROLE column.
  const withRoles = renderStatus({ ...doc, links: [{ ...doc.links[0]!, role: "lazy" }] });
  expect(withRoles).toMatch(/^PEER +ADDRESS +DIR +AGE +IN +OUT +DROPPED +ROLE$/m);
  expect(withRoles).toMatch(/^cdcdcdcdcdcdcdcd .* +1 +lazy$/m);
});
