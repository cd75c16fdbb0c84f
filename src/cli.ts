#!/usr/bin/env bun
/**
 * The `gossip` command: run a node, or one of the small tools around it. Picks the command, parses its arguments,
 * loads config, and hands over to node.ts or src/cli/tools.ts; it holds no protocol logic itself.
 * Exit codes: 0 ok, 1 runtime failure (cannot connect, cannot listen…), 2 usage or config error.
 */
import { existsSync, writeFileSync } from "node:fs";
import type { ParseArgsOptionsConfig } from "node:util";
import { UsageError, parseOptions } from "./cli/common.ts";
import { defaultConfig, describeConfig, loadConfigFile, loadOrCreateHostkey, type NodeConfig } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { createLogger, type LogLevel } from "./log.ts";
import { generateEd25519Pem, loadIdentity } from "./p2p/identity.ts";
import { ToolFailure } from "./tools/api-connection.ts";
import { versionLine } from "./version.ts";

const USAGE = `usage:
  gossip [--config FILE] [--log-level LEVEL] [--log-format text|json]
                                   run a node (without --config: embedded default, API 127.0.0.1:7001)
  gossip keygen --out FILE         write a new Ed25519 hostkey (PEM, mode 0600) and print its peer ID
  gossip id [--config FILE]        print this node's peer ID
  gossip announce [--api HOST:PORT] --type N [--ttl T] DATA|--file F|-
                                   announce DATA (text), a file's bytes, or standard input (-); TTL 0 = unlimited
  gossip subscribe [--api HOST:PORT] --type N [--type N…] [--reject-if REGEX] [--json] [--count N]
                                   print each notification and answer it: valid unless REGEX matches the data
  gossip status [--control HOST:PORT] [--json]
                                   the node's links, subscriptions and cache, from its control_address
  gossip testnet --nodes N [--announce-rate R] [--base-port P]
                                   N local nodes in one process; prints their API ports and a live summary
                                   (see gossip testnet --help)
  gossip --version                 print version and build commit
  gossip --help                    this text

LEVEL is debug, info, warn or error. announce/subscribe/status also take --config FILE to find the node's
api_address / control_address; without either they use 127.0.0.1:7001 / 127.0.0.1:9001.
Config: YAML (node.yaml) or VoidPhone INI (*.ini); see README.`;

const TOOLS = ["announce", "subscribe", "status"] as const;

export async function main(argv: string[]): Promise<number> {
  const command = argv[0] !== undefined && !argv[0].startsWith("-") ? argv[0] : "run";
  const args = command === "run" ? argv : argv.slice(1);
  try {
    let result: number | "help";
    switch (command) {
      case "run":
        result = await runNode(args);
        break;
      case "keygen":
        result = keygen(args);
        break;
      case "id":
        result = printId(args);
        break;
      case "testnet":
        result = await (await import("./testnet.ts")).testnetCommand(args);
        break;
      default: {
        if (!(TOOLS as readonly string[]).includes(command)) return usage(`unknown command "${command}"`);
        const tools = await import("./cli/tools.ts");
        const run = { announce: tools.announceCommand, subscribe: tools.subscribeCommand, status: tools.statusCommand };
        result = await run[command as (typeof TOOLS)[number]](args);
      }
    }
    if (result === "help") {
      process.stdout.write(USAGE + "\n");
      return 0;
    }
    return result;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`gossip: config error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof UsageError) return usage(e.message);
    if (e instanceof ToolFailure) {
      process.stderr.write(`gossip: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

function usage(problem: string): number {
  process.stderr.write(`gossip: ${problem}\n${USAGE}\n`);
  return 2;
}

/** Options of run/keygen/id, which take no positional arguments. */
function parse(args: string[], options: ParseArgsOptionsConfig) {
  const { values, positionals } = parseOptions(args, options);
  const extra = positionals[0];
  if (extra !== undefined && !values.help) {
    const isCommand = ["keygen", "id", ...TOOLS].includes(extra);
    throw new UsageError(isCommand ? `the command comes first: gossip ${extra} [options]` : `unexpected argument "${extra}"`);
  }
  return values;
}

function loadConfig(path: string | undefined): NodeConfig {
  return path === undefined ? defaultConfig() : loadConfigFile(path);
}

async function runNode(args: string[]): Promise<number | "help"> {
  const values = parse(args, {
    config: { type: "string", short: "c" },
    "log-level": { type: "string" },
    "log-format": { type: "string" },
    version: { type: "boolean", short: "v" },
  });
  if (values.help) return "help";
  if (values.version) {
    process.stdout.write(versionLine() + "\n");
    return 0;
  }
  const level = values["log-level"] as string | undefined;
  const format = values["log-format"] as string | undefined;
  if (level !== undefined && !["debug", "info", "warn", "error"].includes(level)) throw new UsageError(`--log-level: unknown level "${level}"`);
  if (format !== undefined && format !== "text" && format !== "json") throw new UsageError(`--log-format: expected text or json`);
  const config = loadConfig(values.config as string | undefined);
  const log = createLogger({
    level: (level as LogLevel | undefined) ?? config.logLevel,
    format: (format as "text" | "json" | undefined) ?? (process.stderr.isTTY ? "text" : "json"),
  });
  const { identity, created } = loadOrCreateHostkey(config);
  if (created) log.info("hostkey created", { path: config.hostkeyPath, kind: "ed25519" });
  const { startNode } = await import("./node.ts");
  let node;
  try {
    node = await startNode(config, identity, log);
  } catch (e) {
    // Typically an address in use or not ours to bind: one clear line, not a stack.
    log.error("node failed to start", { error: e as Error });
    process.stderr.write(`gossip: node not started: ${(e as Error).message}\n`);
    return 1;
  }
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

function keygen(args: string[]): number | "help" {
  const values = parse(args, { out: { type: "string" } });
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

function printId(args: string[]): number | "help" {
  const values = parse(args, { config: { type: "string", short: "c" } });
  if (values.help) return "help";
  const { identity } = loadOrCreateHostkey(loadConfig(values.config as string | undefined));
  process.stdout.write(identity.idHex + "\n");
  return 0;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    // Exit once what was written to a piped stdout has left: process.exit() does not wait for it.
    (code) => void process.stdout.write("", () => process.exit(code)),
    (e) => {
      process.stderr.write(`gossip: fatal: ${(e as Error)?.stack ?? e}\n`);
      process.exit(1);
    },
  );
}
