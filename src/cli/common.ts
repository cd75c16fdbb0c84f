/**
 * Argument helpers shared by the CLI commands: strict option parsing (a mistake is a UsageError, exit 2) and parsers
 * for the option values every command takes. Pure apart from reading a config file when --config is given.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { parseHostPort, type HostPort } from "../address.ts";
import { defaultConfig, loadConfigFile, type NodeConfig } from "../config.ts";
import { UsageError } from "../errors.ts";

/** Every command but `run` (which has no name on the command line): src/cli.ts dispatches on these. */
export const COMMANDS = ["keygen", "id", "announce", "subscribe", "status", "testnet", "simulate"] as const;
export type Command = (typeof COMMANDS)[number];

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

/** Strict parse of one command's options (plus --help/-h); unknown flags are a UsageError. */
export function parseOptions(args: string[], options: ParseArgsOptionsConfig): { values: OptionValues; positionals: string[] } {
  try {
    const r = parseArgs({ args, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
    return { values: r.values as OptionValues, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Options of a command that takes no positional arguments (run, keygen, id). */
export function parseFlagsOnly(args: string[], options: ParseArgsOptionsConfig): OptionValues {
  const { values, positionals } = parseOptions(args, options);
  const extra = positionals[0];
  if (extra !== undefined && !values.help) {
    const isCommand = (COMMANDS as readonly string[]).includes(extra);
    throw new UsageError(isCommand ? `the command comes first: gossip ${extra} [options]` : `unexpected argument "${extra}"`);
  }
  return values;
}

export function addressOption(flag: string, text: string): HostPort {
  const parsed = parseHostPort(text);
  if (typeof parsed === "string") throw new UsageError(`${flag}: ${parsed}`);
  return parsed;
}

export function intOption(flag: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${flag}: expected an integer ${min}-${max}, got "${text}"`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${flag}: ${n} is out of range ${min}-${max}`);
  return n;
}

/** The config named by --config, else the embedded default (ConfigError, exit 2, when the file is unusable). */
export function configOrDefault(path: string | undefined): NodeConfig {
  return path === undefined ? defaultConfig() : loadConfigFile(path);
}

/** The config named by --config, if any (ConfigError, exit 2, when it is unusable). Creates no hostkey. */
export function optionalConfig(path: string | undefined): NodeConfig | undefined {
  return path === undefined ? undefined : loadConfigFile(path);
}
