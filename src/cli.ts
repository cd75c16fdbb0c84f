#!/usr/bin/env bun
/**
 * The `gossip` command: run a node, or one of the small tools around it. Parses arguments, loads config, and hands
 * over to node.ts or a tool module; it holds no protocol logic itself.
 */
import { existsSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { defaultConfig, describeConfig, loadConfigFile, loadOrCreateHostkey, type NodeConfig } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { createLogger, type LogLevel } from "./log.ts";
import { startNode } from "./node.ts";
import { generateEd25519Pem, loadIdentity } from "./p2p/identity.ts";
import { versionLine } from "./version.ts";

const USAGE = `usage:
  gossip [--config FILE] [--log-level LEVEL] [--log-format text|json]
                                   run a node (without --config: embedded default, API 127.0.0.1:7001)
  gossip keygen --out FILE         write a new Ed25519 hostkey (PEM, mode 0600) and print its peer ID
  gossip id [--config FILE]        print this node's peer ID
  gossip --version                 print version and build commit
  gossip --help                    this text

LEVEL is debug, info, warn or error. Config: YAML (node.yaml) or VoidPhone INI (*.ini); see README.`;

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string", short: "c" },
        out: { type: "string" },
        "log-level": { type: "string" },
        "log-format": { type: "string" },
        version: { type: "boolean", short: "v" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    return usage((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (values.version) {
    process.stdout.write(versionLine() + "\n");
    return 0;
  }
  const command = positionals[0] ?? "run";
  if (positionals.length > 1) return usage(`unexpected argument "${positionals[1]}"`);
  try {
    switch (command) {
      case "run":
        return await runNode(values.config, values["log-level"], values["log-format"]);
      case "keygen":
        return keygen(values.out);
      case "id":
        return printId(values.config);
      default:
        return usage(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`gossip: config error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof UsageError) return usage(e.message);
    throw e;
  }
}

function usage(problem: string): number {
  process.stderr.write(`gossip: ${problem}\n${USAGE}\n`);
  return 2;
}

function loadConfig(path: string | undefined): NodeConfig {
  return path === undefined ? defaultConfig() : loadConfigFile(path);
}

async function runNode(configPath: string | undefined, level: string | undefined, format: string | undefined): Promise<number> {
  if (level !== undefined && !["debug", "info", "warn", "error"].includes(level)) throw new UsageError(`--log-level: unknown level "${level}"`);
  if (format !== undefined && format !== "text" && format !== "json") throw new UsageError(`--log-format: expected text or json`);
  const config = loadConfig(configPath);
  const log = createLogger({
    level: (level as LogLevel | undefined) ?? config.logLevel,
    format: (format as "text" | "json" | undefined) ?? (process.stderr.isTTY ? "text" : "json"),
  });
  const { identity, created } = loadOrCreateHostkey(config);
  if (created) log.info("hostkey created", { path: config.hostkeyPath, kind: "ed25519" });
  const node = await startNode(config, identity, log);
  log.info("node started", { ...describeConfig(config), peer_id: identity.idHex });

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info("stopping", { signal });
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  // Give shutdown a hard bound so a stuck socket cannot keep the process alive past 2 s.
  const force = setTimeout(() => process.exit(0), 1800);
  await node.stop();
  clearTimeout(force);
  return 0;
}

function keygen(out: string | undefined): number {
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

function printId(configPath: string | undefined): number {
  const { identity } = loadOrCreateHostkey(loadConfig(configPath));
  process.stdout.write(identity.idHex + "\n");
  return 0;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`gossip: fatal: ${(e as Error)?.stack ?? e}\n`);
      process.exit(1);
    },
  );
}
