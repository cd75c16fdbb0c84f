/**
 * `gossip keygen --out FILE` and `gossip id [--config FILE]`: write a new Ed25519 hostkey (never over an existing
 * file) and print a node's peer ID. No network.
 */
import { existsSync, writeFileSync } from "node:fs";
import { loadOrCreateHostkey } from "../config.ts";
import { UsageError } from "../errors.ts";
import { generateEd25519Pem, loadIdentity } from "../p2p/identity.ts";
import { configOrDefault, parseFlagsOnly } from "./common.ts";

export function keygenCommand(args: string[]): number | "help" {
  const values = parseFlagsOnly(args, { out: { type: "string" } });
  if (values.help) return "help";
  const out = values.out as string | undefined;
  if (!out) throw new UsageError("keygen needs --out FILE");
  if (existsSync(out)) {
    process.stderr.write(`gossip: ${out} exists; refusing to overwrite a hostkey\n`);
    return 1;
  }
  const pem = generateEd25519Pem();
  writeFileSync(out, pem, { mode: 0o600, flag: "wx" });
  process.stdout.write(loadIdentity(pem).idHex + "\n");
  return 0;
}

export function idCommand(args: string[]): number | "help" {
  const values = parseFlagsOnly(args, { config: { type: "string", short: "c" } });
  if (values.help) return "help";
  const { identity } = loadOrCreateHostkey(configOrDefault(values.config as string | undefined));
  process.stdout.write(identity.idHex + "\n");
  return 0;
}
