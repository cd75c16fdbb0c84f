/**
 * `gossip [--config FILE] [--log-level L] [--log-format F]`: runs a node until SIGINT, SIGTERM, SIGHUP or SIGQUIT
 * (SIGUSR1 and SIGUSR2 are ignored). Loads the config and hostkey, builds the logger, hands over to node.ts, and
 * bounds the shutdown. Holds no protocol logic; must never let a signal end the node without its clean stop.
 */
import { describeConfig, loadOrCreateHostkey } from "../config.ts";
import { NODE_SHUTDOWN_BOUND_MS } from "../defaults.ts";
import { UsageError } from "../errors.ts";
import { createLogger, type Logger, type LogLevel } from "../log.ts";
import { versionLine } from "../version.ts";
import { configOrDefault, parseFlagsOnly } from "./common.ts";

export async function runCommand(args: string[]): Promise<number | "help"> {
  const values = parseFlagsOnly(args, {
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
  const config = configOrDefault(values.config as string | undefined);
  const log = createLogger({
    level: (level as LogLevel | undefined) ?? config.logLevel,
    format: (format as "text" | "json" | undefined) ?? (process.stderr.isTTY ? "text" : "json"),
  });
  const { identity, created } = loadOrCreateHostkey(config);
  if (created) log.info("hostkey created", { path: config.hostkeyPath, kind: "ed25519" });
  const { startNode } = await import("../node.ts");
  // Signal handlers go in before anything listens: a signal during the start must not kill the node half-way.
  const stopSignal = awaitStopSignal(log);
  let node;
  try {
    node = await startNode(config, identity, log);
  } catch (e) {
    // Typically an address in use or not ours to bind: one clear line, not a stack.
    log.error("node failed to start", { error: e as Error });
    process.stderr.write(`gossip: node not started: ${(e as Error).message}\n`);
    stopSignal.release();
    return 1;
  }
  log.info("node started", { ...describeConfig(config), peer_id: identity.idHex });

  log.info("stopping", { signal: await stopSignal.received });
  const force = setTimeout(() => process.exit(0), NODE_SHUTDOWN_BOUND_MS);
  await node.stop();
  clearTimeout(force);
  stopSignal.release();
  return 0;
}

/** Signals that stop a node cleanly (close every connection, save the peer store, exit 0). HUP is here because a
 *  node left on a closed terminal gets it, and QUIT because an operator's Ctrl-\ means "stop" too (README "CLI"). */
export const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const;
/** Signals a node ignores (their default is to kill the process without its clean stop). */
export const IGNORED_SIGNALS = ["SIGUSR1", "SIGUSR2"] as const;

/** Resolves with the first stop signal; ignored signals are logged at debug. release() removes every handler. */
function awaitStopSignal(log: Logger): { received: Promise<string>; release(): void } {
  const handlers: [NodeJS.Signals, () => void][] = [];
  const received = new Promise<string>((resolve) => {
    for (const signal of STOP_SIGNALS) handlers.push([signal, () => resolve(signal)]);
  });
  for (const signal of IGNORED_SIGNALS) handlers.push([signal, () => log.debug("signal ignored", { signal })]);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  return { received, release: () => handlers.forEach(([signal, handler]) => process.off(signal, handler)) };
}
