/**
 * The systemd unit shipped in deploy/gossip.service: `systemd-analyze verify` must accept it without a single
 * warning (an unknown key or a bad value is only a warning to systemd, and would silently drop a hardening line), and
 * README "Binaries" must show it as it is. Skipped, saying so, where systemd-analyze is not installed.
 */
import { expect, test } from "bun:test";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const UNIT = join(import.meta.dir, "..", "deploy", "gossip.service");
const ANALYZE = Bun.which("systemd-analyze");
const SYSTEM_UNITS = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((d) => existsSync(join(d, "sysinit.target")));
const CAN_VERIFY = ANALYZE !== null && SYSTEM_UNITS !== undefined;
if (!CAN_VERIFY) console.warn("test/deploy.test.ts: systemd-analyze verify skipped: no systemd-analyze (or no system units) here");

/** Verifies `unitText` in a throw-away root: the system's own units (so targets resolve) and a stand-in executable at
 *  the unit's ExecStart path (verify insists it exists; the real binary need not be installed to check the unit). */
function verify(unitText: string): { code: number; err: string } {
  const root = mkdtempSync(join(tmpdir(), "gossip-unit-"));
  cpSync(SYSTEM_UNITS!, join(root, "usr/lib/systemd/system"), { recursive: true });
  const exec = /^ExecStart=(\S+)/m.exec(unitText)![1]!;
  mkdirSync(join(root, dirname(exec)), { recursive: true });
  writeFileSync(join(root, exec), "#!/bin/sh\n");
  chmodSync(join(root, exec), 0o755);
  mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
  const unit = join(root, "etc/systemd/system/gossip.service");
  writeFileSync(unit, unitText);
  const r = Bun.spawnSync([ANALYZE!, "verify", `--root=${root}`, unit], { stderr: "pipe", stdout: "pipe" });
  return { code: r.exitCode, err: r.stderr.toString() + r.stdout.toString() };
}

test.skipIf(!CAN_VERIFY)("deploy/gossip.service passes systemd-analyze verify with no warning; a broken copy does not", () => {
  const text = readFileSync(UNIT, "utf8");
  expect(verify(text)).toEqual({ code: 0, err: "" });
  // The check can fail: a misspelt key and a bad boolean are reported.
  const broken = verify(text.replace("NoNewPrivileges=yes", "NoNewPrivileges=maybe").replace("Restart=on-failure", "Restrat=on-failure"));
  expect(broken.err).toContain("Unknown key 'Restrat'");
  expect(broken.err).toContain("Failed to parse boolean value");
});

test("README 'Binaries' shows deploy/gossip.service as it is, and gossip accepts its ExecStart options", () => {
  const unit = readFileSync(UNIT, "utf8");
  const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Binaries"));
  expect(/```ini\n([\s\S]*?)```/.exec(section)?.[1]).toBe(unit);
  // The options parse (with --help the node only prints its usage): a renamed flag would make the service exit 2.
  const [, ...args] = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(" ");
  const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "..", "src", "cli.ts"), ...args, "--help"]);
  expect({ code: r.exitCode, err: r.stderr.toString() }).toEqual({ code: 0, err: "" });
}, 15_000);
