/**
 * The `gossip` command as an operator meets it: subprocesses, real config files, signals.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeMessage, encodeAnnounce, encodeNotify, encodeValidation } from "../src/api/codec.ts";
import { ApiTestClient } from "./api/client.ts";

const CLI = join(import.meta.dir, "..", "src", "cli.ts");
const dir = mkdtempSync(join(tmpdir(), "gossip-cli-"));

function run(...args: string[]) {
  const r = Bun.spawnSync([process.execPath, CLI, ...args], { cwd: dir, env: { ...process.env, XDG_DATA_HOME: dir } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

test("--version prints the package version and a commit", () => {
  const r = run("--version");
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^gossip \d+\.\d+\.\d+ \(commit .+\)\n$/);
});

test("unknown flags and commands print usage on stderr and exit 2", () => {
  for (const args of [["--frobnicate"], ["frobnicate"]]) {
    const r = run(...args);
    expect(r.code).toBe(2);
    expect(r.err).toContain("usage:");
  }
});

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
});

test("a bad config stops the program with one line naming file and key, exit 2", () => {
  const cfg = join(dir, "bad.yaml");
  writeFileSync(cfg, "hostkey: k.pem\ngossip:\n  degree: -1\n");
  const r = run("--config", cfg);
  expect(r.code).toBe(2);
  expect(r.err).toBe(`gossip: config error: ${cfg}: gossip.degree: -1 is out of range 1-1000\n`);
});

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
    const connect = async (port: number) => {
      for (let i = 0; ; i++) {
        try {
          return await ApiTestClient.connect(port);
        } catch (e) {
          if (i > 100) throw e;
          await Bun.sleep(50);
        }
      }
    };
    const sub = await connect(apiB);
    sub.send(encodeNotify({ dataType: 1337 }));
    const announcer = await connect(apiA);
    // Until the link is up the item may not reach b: announce again until b's module is notified.
    let got: Uint8Array | undefined;
    for (let i = 0; i < 40 && !got; i++) {
      announcer.send(encodeAnnounce({ ttl: 4, dataType: 1337, data: new TextEncoder().encode(`deadbeef`) }));
      try {
        got = await sub.next(250);
      } catch {}
    }
    const m = decodeMessage(got!);
    if (m.kind !== "notification") throw new Error("expected a notification");
    expect(new TextDecoder().decode(m.data)).toBe("deadbeef");
    sub.send(encodeValidation({ messageId: m.messageId, valid: true }));
    announcer.close();
    sub.close();
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
});
