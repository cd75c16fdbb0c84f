/**
 * `gossip [--config FILE] [--log-level L] [--log-format F]`: runs a node until SIGINT or SIGTERM. Loads the config and
 * hostkey, builds the logger, hands over to node.ts, and bounds the shutdown. Holds no protocol logic.
 */
import { describeConfig, loadOrCreateHostkey } from "../config.ts";
import { NODE_SHUTDOWN_BOUND_MS } from "../defaults.ts";
import { UsageError } from "../errors.ts";
import { createLogger, type LogLevel } from "../log.ts";
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
  const force = setTimeout(() => process.exit(0), NODE_SHUTDOWN_BOUND_MS);
  await node.stop();
  clearTimeout(force);
  return 0;
}
