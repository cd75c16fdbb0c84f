#!/usr/bin/env bun
/**
 * The `gossip` command's entry: picks the command, hands its arguments to src/cli/ (run, keys, tools, testnet), and
 * turns the errors they throw into exit codes. Holds no command logic and no protocol logic.
 * Exit codes: 0 ok, 1 runtime failure (cannot connect, cannot listen…), 2 usage or config error.
 */
import { COMMANDS, type Command } from "./cli/common.ts";
import { EXEC_CONCURRENCY, EXEC_TIMEOUT_MS } from "./defaults.ts";
import { ConfigError, ToolFailure, UsageError } from "./errors.ts";

const USAGE = `usage:
  gossip [--config FILE] [--log-level LEVEL] [--log-format text|json]
                                   run a node (without --config: embedded default, API 127.0.0.1:7001)
  gossip keygen --out FILE         write a new Ed25519 hostkey (PEM, mode 0600) and print its peer ID
  gossip id [--config FILE]        print this node's peer ID
  gossip announce [--api HOST:PORT] --type N [--ttl T] DATA|--file F|-
                                   announce DATA (text), a file's bytes, or standard input (-); TTL 0 = unlimited
  gossip subscribe [--api HOST:PORT] --type N [--type N…] [--reject-if REGEX | --exec CMD] [--json] [--count N]
                   [--exec-concurrency K] [--exec-timeout MS]
                                   print each notification and answer it: valid unless REGEX matches the data, or
                                   with --exec, valid if CMD (data on stdin, GOSSIP_DATA_TYPE and GOSSIP_SIZE set)
                                   exits 0 within MS (default ${EXEC_TIMEOUT_MS}), at most K (default ${EXEC_CONCURRENCY}) at once
  gossip status [--control HOST:PORT] [--json]
                                   the node's links, subscriptions and cache, from its control_address
  gossip testnet --nodes N [--announce-rate R] [--base-port P] [--control-base-port C]
                                   N local nodes in one process; prints their API ports (and dashboards with
                                   --control-base-port) and a live summary
                                   (see gossip testnet --help)
  gossip simulate --nodes N [--scenario S] [--json FILE] [--report DIR]
                                   simulate N nodes on virtual time (see gossip simulate --help)
  gossip --version                 print version and build commit
  gossip --help                    this text

LEVEL is debug, info, warn or error. announce/subscribe/status also take --config FILE to find the node's
api_address / control_address; without either they use 127.0.0.1:7001 / 127.0.0.1:9001.
Config: YAML (node.yaml) or VoidPhone INI (*.ini); see README.`;

type Run = (args: string[]) => Promise<number | "help"> | number | "help";

/** Each command's module is loaded only when it runs (a tool need not load the node). */
const COMMAND_RUNNERS: Record<Command | "run", () => Promise<Run>> = {
  run: async () => (await import("./cli/run.ts")).runCommand,
  keygen: async () => (await import("./cli/keys.ts")).keygenCommand,
  id: async () => (await import("./cli/keys.ts")).idCommand,
  announce: async () => (await import("./cli/tools.ts")).announceCommand,
  subscribe: async () => (await import("./cli/tools.ts")).subscribeCommand,
  status: async () => (await import("./cli/tools.ts")).statusCommand,
  testnet: async () => (await import("./cli/testnet.ts")).testnetCommand,
  simulate: async () => (await import("./cli/simulate.ts")).simulateCommand,
};

export async function main(argv: string[]): Promise<number> {
  const named = argv[0] !== undefined && !argv[0].startsWith("-");
  if (named && !(COMMANDS as readonly string[]).includes(argv[0]!)) return usage(`unknown command "${argv[0]}"`);
  const command = named ? (argv[0] as Command) : "run";
  try {
    const result = await (await COMMAND_RUNNERS[command]())(named ? argv.slice(1) : argv);
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
