/**
 * Argument helpers shared by the CLI commands: one error type for "the command line is wrong" (exit 2), and parsers
 * for the option values every tool takes. Pure apart from reading a config file when --config is given.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { parseHostPort, type HostPort } from "../address.ts";
import { loadConfigFile, type NodeConfig } from "../config.ts";

/** The command line is wrong: the CLI prints the problem and the usage, and exits 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

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

/** The config named by --config, if any (ConfigError, exit 2, when it is unusable). Creates no hostkey. */
export function optionalConfig(path: string | undefined): NodeConfig | undefined {
  return path === undefined ? undefined : loadConfigFile(path);
}
