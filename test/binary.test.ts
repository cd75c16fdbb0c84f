/**
 * The compiled binaries as an operator runs them: `bun build --compile` output (scripts/build-binaries.ts), three real
 * nodes from YAML configs with proof of work on the bundled workers, an announcement crossing them through the API,
 * and the arm64 binary answering under qemu. Set GOSSIP_SKIP_BINARY=1 to skip this file (the build takes a while).
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VERSION } from "../src/version.ts";
import { buildBinary, gitCommit } from "../scripts/build-binaries.ts";
import { ApiClient } from "../src/client/api-client.ts";
import { waitFor } from "./wait-for.ts";

const SKIP = process.env.GOSSIP_SKIP_BINARY === "1";
const QEMU = "/usr/bin/qemu-aarch64-static";
const ARM64_LIBS = "/usr/aarch64-linux-gnu";
const HAVE_QEMU = existsSync(QEMU) && existsSync(ARM64_LIBS);
const TIMEOUT = 120_000;

if (SKIP) console.log("binary tests skipped: GOSSIP_SKIP_BINARY=1");
if (!SKIP && !HAVE_QEMU) console.log("arm64 smoke test skipped: qemu-user-static/libc6-arm64-cross not installed");

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** A client of a node process's API once it listens; fails at once if the process exits first. */
function connect(port: number, proc: { exitCode: number | null }): Promise<ApiClient> {
  return waitFor(
    () => {
      if (proc.exitCode !== null) throw new Error(`node exited (${proc.exitCode}) before its API listened`);
      return ApiClient.connect(port).catch(() => undefined);
    },
    10_000,
    `the API on port ${port}`,
    25,
  );
}

describe.skipIf(SKIP)("compiled binary", () => {
  let x64 = "";
  const commit = gitCommit();
  const dir = mkdtempSync(join(tmpdir(), "gossip-bin-"));

  beforeAll(() => {
    x64 = buildBinary("x64", commit);
  }, TIMEOUT);

  test("--version prints the package version and the commit embedded at build time", () => {
    // Run from a folder without .git, so the commit can only come from the build's --define.
    const r = Bun.spawnSync([x64, "--version"], { cwd: dir });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe(`gossip ${VERSION} (commit ${commit})\n`);
    expect(commit).not.toContain("(source)");
  }, TIMEOUT);

  test(
    "three nodes in a chain (PoW on the bundled workers) carry an announcement from node 1 to node 3; the middle one serves its dashboard; SIGTERM and SIGHUP exit 0",
    async () => {
      const ports = await Promise.all(Array.from({ length: 7 }, freePort));
      const control = ports[6]!;
      const config = (n: number, boot?: number) => {
        const path = join(dir, `node${n}.yaml`);
        writeFileSync(
          path,
          `hostkey: node${n}.pem\ngossip:\n  api_address: 127.0.0.1:${ports[2 * n - 2]}\n` +
            `  p2p_address: 127.0.0.1:${ports[2 * n - 1]}\n` +
            (boot ? `  bootstrapper: 127.0.0.1:${boot}\n` : "") +
            (n === 2 ? `  control_address: 127.0.0.1:${control}\n` : "") +
            `  pow_difficulty: 8\n  degree: 4\n`,
        );
        return path;
      };
      const apiOf = (n: number) => ports[2 * n - 2];
      const p2pOf = (n: number) => ports[2 * n - 1];
      // A chain 1 ← 2 ← 3: node 3 only hears of node 1's item through node 2.
      const nodes = [config(1), config(2, p2pOf(1)), config(3, p2pOf(2))].map((cfg) =>
        Bun.spawn([x64, "--config", cfg, "--log-format", "json"], { cwd: dir, stdout: "ignore", stderr: "pipe" }),
      );
      const logs = nodes.map((p) => new Response(p.stderr).text());
      try {
        const sub = await connect(apiOf(3), nodes[2]);
        sub.subscribe(4242);
        const announcer = await connect(apiOf(1), nodes[0]);
        // Until both links are up the item may not reach node 3: announce again until it is notified.
        const m = await waitFor(
          async () => {
            announcer.announce(4242, new TextEncoder().encode("from node 1"), 8);
            return sub.nextMessage(250).catch(() => undefined);
          },
          30_000,
          "node 3's module notified",
        );
        if (m.kind !== "notification") throw new Error(`expected a notification, got ${m.kind}`);
        expect(m.dataType).toBe(4242);
        expect(new TextDecoder().decode(m.data)).toBe("from node 1");
        sub.validate(m.messageId, true);
        await sub.end();
        announcer.close();
        // The dashboard page is inside the binary too, and its data source answers.
        const page = await fetch(`http://127.0.0.1:${control}/`);
        expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
        expect(await page.text()).toContain('fetch("status"');
        const status = (await (await fetch(`http://127.0.0.1:${control}/status`)).json()) as { links: unknown[] };
        expect(status.links).toHaveLength(2);
      } finally {
        nodes[0]!.kill("SIGTERM");
        nodes[1]!.kill("SIGHUP"); // a closed terminal: a clean stop too
        nodes[2]!.kill("SIGTERM");
      }
      expect(await Promise.all(nodes.map((p) => p.exited))).toEqual([0, 0, 0]);
      // The middle node linked both ways: proof the handshakes (and so the PoW workers) ran inside the binary.
      const middle = (await logs[1]).trim().split("\n").map((l) => JSON.parse(l));
      expect(middle.filter((l) => l.event === "link up").length).toBeGreaterThanOrEqual(2);
    },
    TIMEOUT,
  );

  test.skipIf(!HAVE_QEMU)(
    "the arm64 binary answers --version under qemu-aarch64-static",
    () => {
      const arm64 = buildBinary("arm64", commit);
      const r = Bun.spawnSync([QEMU, "-L", ARM64_LIBS, arm64, "--version"], { cwd: dir });
      expect(r.stderr.toString()).toBe("");
      expect(r.exitCode).toBe(0);
      expect(r.stdout.toString()).toBe(`gossip ${VERSION} (commit ${commit})\n`);
    },
    TIMEOUT,
  );
});
