/**
 * The `gossip` command as an operator meets it: subprocesses, real config files, signals.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapAt, testConfig } from "./net-harness.ts";
import { createLogger, silentLogger } from "../src/log.ts";
import { startNode, type GossipNode } from "../src/node.ts";
import { generateEd25519Pem, loadIdentity } from "../src/p2p/identity.ts";
import { PowPool } from "../src/p2p/pow-pool.ts";
import { ApiClient } from "../src/client/api-client.ts";
import { waitFor } from "./wait-for.ts";

const CLI = join(import.meta.dir, "..", "src", "cli.ts");
/** A test that spawns `gossip` and waits for it: a fresh Bun process starts in about 0.1 s, more on a loaded machine. */
const SPAWN_TIMEOUT = 15_000;
const HAVE_SCRIPT = Bun.which("script") !== null;
const dir = mkdtempSync(join(tmpdir(), "gossip-cli-"));

function run(...args: string[]) {
  const r = Bun.spawnSync([process.execPath, CLI, ...args], { cwd: dir, env: { ...process.env, XDG_DATA_HOME: dir } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

test("--version prints the package version and a commit", () => {
  const r = run("--version");
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^gossip \d+\.\d+\.\d+ \(commit .+\)\n$/);
}, SPAWN_TIMEOUT);

test("unknown flags and commands print usage on stderr and exit 2", () => {
  for (const args of [["--frobnicate"], ["frobnicate"]]) {
    const r = run(...args);
    expect(r.code).toBe(2);
    expect(r.err).toContain("usage:");
  }
}, SPAWN_TIMEOUT);

test("keygen writes a 0600 Ed25519 key, prints its ID, refuses to overwrite; id agrees", () => {
  const out = join(dir, "k.pem");
  const r = run("keygen", "--out", out);
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^[0-9a-f]{64}\n$/);
  expect(statSync(out).mode & 0o777).toBe(0o600);
  expect(run("keygen", "--out", out).code).toBe(1);
  const cfg = join(dir, "id.yaml");
  writeFileSync(cfg, "hostkey: k.pem\n");
  expect(run("id", "--config", cfg).out).toBe(r.out);
}, SPAWN_TIMEOUT);

test("a bad config stops the program with one line naming file and key, exit 2", () => {
  const cfg = join(dir, "bad.yaml");
  writeFileSync(cfg, "hostkey: k.pem\ngossip:\n  degree: -1\n");
  const r = run("--config", cfg);
  expect(r.code).toBe(2);
  expect(r.err).toBe(`gossip: config error: ${cfg}: gossip.degree: -1 is out of range 1-1000\n`);
}, SPAWN_TIMEOUT);

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

test("two nodes from YAML configs link (PoW on workers) and carry an announcement; SIGTERM exits 0", async () => {
  const [apiA, p2pA, apiB, p2pB] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const write = (name: string, api: number, p2p: number, boot?: number) => {
    const path = join(dir, name);
    writeFileSync(
      path,
      `hostkey: ${name}.pem\ngossip:\n  api_address: 127.0.0.1:${api}\n  p2p_address: 127.0.0.1:${p2p}\n` +
        (boot ? `  bootstrapper: 127.0.0.1:${boot}\n` : "") +
        `  pow_difficulty: 8\n  degree: 4\n`,
    );
    return path;
  };
  const spawn = (cfg: string) =>
    Bun.spawn([process.execPath, CLI, "--config", cfg, "--log-format", "json"], { cwd: dir, stderr: "pipe", stdout: "ignore" });
  const a = spawn(write("a.yaml", apiA, p2pA));
  const b = spawn(write("b.yaml", apiB, p2pB, p2pA));
  try {
    const sub = await connectWhenUp(apiB);
    sub.subscribe(1337);
    const announcer = await connectWhenUp(apiA);
    // Until the link is up the item may not reach b: announce again until b's module is notified.
    const m = await waitFor(
      async () => {
        announcer.announce(1337, new TextEncoder().encode("deadbeef"), 4);
        return sub.nextMessage(250).catch(() => undefined);
      },
      10_000,
      "b's module notified",
    );
    if (m.kind !== "notification") throw new Error("expected a notification");
    expect(new TextDecoder().decode(m.data)).toBe("deadbeef");
    sub.validate(m.messageId, true);
    await sub.end();
    announcer.close();
  } finally {
    a.kill("SIGTERM");
    b.kill("SIGTERM");
  }
  expect(await a.exited).toBe(0);
  expect(await b.exited).toBe(0);
  const logB = await new Response(b.stderr).text();
  const lines = logB.trim().split("\n").map((l) => JSON.parse(l));
  const up = lines.find((l) => l.event === "link up");
  expect(up).toBeDefined();
  expect(up.peer).toMatch(/^[0-9a-f]{64}$/);
}, SPAWN_TIMEOUT);

async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** A client of the node's API once the node (a fresh process) listens. */
function connectWhenUp(port: number): Promise<ApiClient> {
  return waitFor(() => ApiClient.connect(port).catch(() => undefined), 10_000, `the API on port ${port}`, 50);
}

test("logs are JSON lines when stderr is not a terminal (log_level from the config); every close names its reason", async () => {
  const [api, p2p, control] = await freePorts(3);
  const cfg = join(dir, "logs.yaml");
  writeFileSync(
    cfg,
    `hostkey: logs.pem\ngossip:\n  api_address: 127.0.0.1:${api}\n  p2p_address: 127.0.0.1:${p2p}\n` +
      `  control_address: 127.0.0.1:${control}\n  pow_difficulty: 8\n  log_level: debug\n`,
  );
  // No --log-format: stderr is a pipe, so the node must choose JSON itself.
  const node = Bun.spawn([process.execPath, CLI, "--config", cfg], { cwd: dir, stderr: "pipe", stdout: "ignore" });
  const status = async () => (await (await fetch(`http://127.0.0.1:${control}/status`)).json()) as { api_connections: number; links: unknown[] };
  const pool = new PowPool({ size: 1 });
  let peer: GossipNode | undefined;
  try {
    const violator = await connectWhenUp(api);
    violator.send(new Uint8Array([0, 1, 0, 0])); // size 1 < 4: a protocol violation
    await violator.waitClosed();
    const leaver = await ApiClient.connect(api);
    const stayer = await ApiClient.connect(api);
    leaver.close();
    await waitFor(async () => (await status()).api_connections === 1, 3000, "the node to see the module leave", 10);
    // A "peer" that sends garbage instead of a handshake message: the node must close it.
    let rawClosed = false;
    const raw = await Bun.connect({ hostname: "127.0.0.1", port: p2p, socket: { data() {}, close: () => void (rawClosed = true), error() {} } });
    raw.write(new Uint8Array([0, 0, 0, 2, 0xff, 0xff]));
    await waitFor(() => rawClosed, 4000, "garbage peer closed");
    // A real peer, linked when the node stops.
    const config = testConfig({ bootstrappers: bootstrapAt(p2p) });
    peer = await startNode(config, loadIdentity(generateEd25519Pem()), silentLogger, { pow: pool });
    await waitFor(() => peer!.transport.linked().length === 1, 4000, "peer linked");
    // The dialer's side is up one handshake message before the node's: wait for the node's own view too.
    await waitFor(async () => (await status()).links.length === 1, 4000, "the node to see the link", 10);
    node.kill("SIGTERM");
    expect(await node.exited).toBe(0);
    stayer.close();
  } finally {
    node.kill("SIGKILL");
    await peer?.stop();
    await pool.close();
  }

  const lines = (await new Response(node.stderr).text()).trim().split("\n");
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const r of records) {
    expect(Number.isNaN(Date.parse(r.time as string))).toBe(false);
    expect(["debug", "info", "warn", "error"]).toContain(r.level as string);
    expect(typeof r.event).toBe("string");
  }
  const closes = records.filter((r) => /closed|down|failed|refused/.test(r.event as string));
  expect(closes.length).toBeGreaterThanOrEqual(5);
  for (const r of closes) expect({ event: r.event, reason: typeof r.reason === "string" && r.reason.length > 0 }).toEqual({ event: r.event, reason: true });
  const apiReasons = records.filter((r) => r.event === "api connection closed").map((r) => `${r.level}:${r.reason}`);
  expect(apiReasons).toEqual(["warn:size-too-small", "debug:closed-by-module", "debug:shutting-down"]);
  expect(records.some((r) => r.event === "handshake failed" && r.level === "debug")).toBe(true);
  expect(records.find((r) => r.event === "link down")?.reason).toBe("shutting-down");
}, SPAWN_TIMEOUT);

test("README 'Run a small network' runs as written: three nodes, subscribers on two, an announcement on one", async () => {
  const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Run a small network"));
  let script = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
  // The same commands on free ports, so that the test cannot collide with anything listening on 6001–9003.
  const wanted = [...new Set(script.match(/127\.0\.0\.1:[679]00[1-3]/g))];
  expect(wanted).toHaveLength(9);
  const ports = await freePorts(wanted.length);
  wanted.forEach((addr, i) => (script = script.replaceAll(addr, `127.0.0.1:${ports[i]}`)));
  const work = mkdtempSync(join(tmpdir(), "gossip-walkthrough-"));
  const preamble = `set -e\ngossip() { ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"; }\n`;
  // Its own session and process group: whatever it leaves running (nodes, if it failed half-way) is killed after.
  const sh = Bun.spawn(["setsid", "bash", "-c", preamble + script], { cwd: work, stdout: "pipe", stderr: "pipe" });
  const killGroup = () => {
    try {
      process.kill(-sh.pid, "SIGKILL");
    } catch {} // the group is already empty
  };
  const guard = setTimeout(killGroup, 25_000);
  const code = await sh.exited;
  clearTimeout(guard);
  killGroup();
  const [out, err] = await Promise.all([new Response(sh.stdout).text(), new Response(sh.stderr).text()]);
  expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
  expect(out).toMatch(/^links +2$/m);
  expect(out).toContain('type=1337 size=17 valid text="hello from node 1"\n');
  expect(out).toContain('{"data_type":1337,"size":17,"valid":true,"text":"hello from node 1"}\n');
  expect(out).toMatch(/^gossip_items_valid_total 1$/m);
  expect(out).toMatch(/^announced 17 bytes, type 1337, ttl 0, item [0-9a-f]{64} via /m);
}, 30_000);

/** A config whose api_address is taken by `busy`: the node cannot listen. */
function busyConfig(busy: { port: number }): string {
  const cfg = join(dir, "busy.yaml");
  writeFileSync(cfg, `hostkey: busy.pem\ngossip:\n  api_address: 127.0.0.1:${busy.port}\n`);
  return cfg;
}

test("a node that cannot listen exits 1 with one clear line (JSON log lines on a pipe)", () => {
  const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    const piped = run("--config", busyConfig(busy));
    expect(piped.code).toBe(1);
    expect(piped.err).toContain(`gossip: node not started: cannot listen on gossip.api_address 127.0.0.1:${busy.port}: `);
    expect(piped.err.split("\n").filter((l) => l.startsWith("{")).every((l) => JSON.parse(l).time)).toBe(true);
  } finally {
    busy.stop(true);
  }
}, SPAWN_TIMEOUT);

// `script` (util-linux) gives the node a pseudo-terminal, so it must pick the text format by itself.
test.skipIf(!HAVE_SCRIPT)("on a terminal, a node's log lines are text, not JSON", () => {
  const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    const cmd = [process.execPath, CLI, "--config", busyConfig(busy)].map((a) => `'${a}'`).join(" ");
    const tty = Bun.spawnSync(["script", "-qec", cmd, "/dev/null"], { cwd: dir, env: { ...process.env, XDG_DATA_HOME: dir } });
    const lines = tty.stdout.toString().replace(/\r/g, "").trim().split("\n");
    expect(tty.exitCode).toBe(1);
    expect(lines.some((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z ERROR node failed to start error=/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith("{"))).toBe(false);
  } finally {
    busy.stop(true);
  }
}, SPAWN_TIMEOUT);

test("JSON log lines stay one parseable line whatever the fields hold (bytes, errors, bigint, newlines)", () => {
  const lines: string[] = [];
  const log = createLogger({ format: "json", level: "debug", write: (l) => lines.push(l) }).child({ part: "p2p" });
  log.warn("link down", { reason: 'remote-error:"x"\nnext', peer: new Uint8Array([1, 2]), error: new Error("boom"), nonce: 12n });
  expect(lines).toHaveLength(1);
  expect(lines[0]).not.toContain("\n");
  const r = JSON.parse(lines[0]!);
  expect(r).toMatchObject({ level: "warn", event: "link down", part: "p2p", reason: 'remote-error:"x"\nnext', peer: "0102", error: "boom", nonce: "12" });
});
