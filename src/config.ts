/**
 * Node configuration: YAML (`node.yaml`) or the VoidPhone INI convention, read into one validated `NodeConfig`.
 * Every problem becomes a ConfigError naming the file and the key; nothing here listens or dials.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import ini from "ini";
import YAML from "yaml";
import { formatHostPort, parseHostPort, type HostPort } from "./address.ts";
import {
  DEFAULT_API_ADDRESS,
  DEFAULT_CACHE_SIZE,
  DEFAULT_DEGREE,
  DEFAULT_DISSEMINATION,
  DEFAULT_MAX_POW_DIFFICULTY,
  DEFAULT_IDENTITY_POW_DIFFICULTY,
  DEFAULT_OVERLAY,
  DEFAULT_P2P_ADDRESS,
  DEFAULT_POW_DIFFICULTY,
  VALIDATION_TIMEOUT_MS,
} from "./defaults.ts";
import { ConfigError } from "./errors.ts";
import type { LogLevel } from "./log.ts";
import { generateEd25519Pem, loadIdentity, type Identity } from "./p2p/identity.ts";

export interface NodeConfig {
  /** The file it came from, or "<default>" for the embedded configuration. */
  source: string;
  hostkeyPath: string;
  apiAddress: HostPort;
  p2pAddress: HostPort;
  bootstrappers: HostPort[];
  degree: number;
  cacheSize: number;
  /** `gossip.dissemination`: broadcast trees (default) or flooding; absent = the default. */
  dissemination?: "plumtree" | "flood";
  /** `gossip.overlay`: the membership that keeps the links (HyParView views or the classic candidate table). */
  overlay?: "hyparview" | "classic";
  /** Leading zero bits this node demands from peers that connect to it. */
  powDifficulty: number;
  /** The most this node will solve when it connects to others. */
  maxPowDifficulty: number;
  /** Identity cost: bits of identity proof of work this node holds and demands of peers; absent or 0 = off. */
  identityPowDifficulty?: number;
  validationTimeoutMs: number;
  rpsApiAddress?: HostPort;
  controlAddress?: HostPort;
  logLevel: LogLevel;
}

/** Defaults for everything an operator need not choose, from the one table src/defaults.ts (README "Configuration"). */
export const DEFAULTS = {
  apiAddress: DEFAULT_API_ADDRESS,
  p2pAddress: DEFAULT_P2P_ADDRESS,
  degree: DEFAULT_DEGREE,
  cacheSize: DEFAULT_CACHE_SIZE,
  powDifficulty: DEFAULT_POW_DIFFICULTY,
  maxPowDifficulty: DEFAULT_MAX_POW_DIFFICULTY,
  identityPowDifficulty: DEFAULT_IDENTITY_POW_DIFFICULTY,
  validationTimeoutMs: VALIDATION_TIMEOUT_MS,
  logLevel: "info" as LogLevel,
};

const GOSSIP_KEYS = [
  "api_address",
  "p2p_address",
  "bootstrapper",
  "degree",
  "cache_size",
  "dissemination",
  "overlay",
  "pow_difficulty",
  "max_pow_difficulty",
  "identity_pow_difficulty",
  "validation_timeout_ms",
  "control_address",
  "log_level",
] as const;
const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

type Raw = Record<string, unknown>;

/** Reads and validates a config file (`.ini` by extension, YAML otherwise). Creates a missing hostkey. */
export function loadConfigFile(path: string): NodeConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(path, "(file)", `cannot read: ${(e as Error).message}`);
  }
  return path.toLowerCase().endsWith(".ini") ? fromIni(path, text) : fromYaml(path, text);
}

/** The embedded default used without --config: loopback addresses, hostkey in the user's data directory. */
export function defaultConfig(env: Record<string, string | undefined> = process.env): NodeConfig {
  const dataHome = env.XDG_DATA_HOME || join(env.HOME || homedir(), ".local", "share");
  return build("<default>", { hostkey: join(dataHome, "gossip", "hostkey.pem") }, {}, undefined, "/");
}

export function fromYaml(file: string, text: string): NodeConfig {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new ConfigError(file, "(syntax)", (e as Error).message.split("\n")[0]!);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isRecord(doc)) throw new ConfigError(file, "(top level)", "expected a mapping of keys");
  for (const key of Object.keys(doc)) {
    if (!["hostkey", "gossip", "rps"].includes(key)) throw new ConfigError(file, key, "unknown key");
  }
  const gossip = section(file, doc, "gossip");
  const rps = section(file, doc, "rps");
  return build(file, doc, gossip, rps, dirname(resolve(file)));
}

/** VoidPhone INI: global `hostkey =` before any section, then [gossip] and [rps]; other modules' sections ignored. */
export function fromIni(file: string, text: string): NodeConfig {
  const doc = ini.parse(text) as Raw;
  const gossip = isRecord(doc.gossip) ? doc.gossip : {};
  const rps = isRecord(doc.rps) ? doc.rps : undefined;
  return build(file, { hostkey: doc.hostkey }, gossip, rps, dirname(resolve(file)), true);
}

function build(file: string, top: Raw, gossip: Raw, rps: Raw | undefined, baseDir: string, fromIni = false): NodeConfig {
  for (const key of Object.keys(gossip)) {
    if (!(GOSSIP_KEYS as readonly string[]).includes(key)) throw new ConfigError(file, `gossip.${key}`, "unknown key");
  }
  if (rps && !fromIni) {
    for (const key of Object.keys(rps)) {
      if (key !== "api_address") throw new ConfigError(file, `rps.${key}`, "unknown key");
    }
  }
  const int = (key: string, fallback: number, min: number, max: number) =>
    integer(file, `gossip.${key}`, gossip[key], fallback, min, max, fromIni);
  const addr = (key: string, fallback: string) => address(file, `gossip.${key}`, gossip[key] ?? fallback);

  const hostkey = top.hostkey;
  if (hostkey === undefined || hostkey === null || hostkey === "") {
    throw new ConfigError(file, "hostkey", "missing: give the path of the identity key (created if the file does not exist)");
  }
  if (typeof hostkey !== "string") throw new ConfigError(file, "hostkey", "expected a file path");

  const config: NodeConfig = {
    source: file,
    hostkeyPath: isAbsolute(hostkey) ? hostkey : resolve(baseDir, hostkey),
    apiAddress: addr("api_address", DEFAULTS.apiAddress),
    p2pAddress: addr("p2p_address", DEFAULTS.p2pAddress),
    bootstrappers: bootstrappers(file, gossip.bootstrapper),
    degree: int("degree", DEFAULTS.degree, 1, 1000),
    cacheSize: int("cache_size", DEFAULTS.cacheSize, 0, 100_000),
    powDifficulty: int("pow_difficulty", DEFAULTS.powDifficulty, 0, 32),
    maxPowDifficulty: int("max_pow_difficulty", DEFAULTS.maxPowDifficulty, 0, 32),
    identityPowDifficulty: int("identity_pow_difficulty", DEFAULTS.identityPowDifficulty, 0, 40),
    validationTimeoutMs: int("validation_timeout_ms", DEFAULTS.validationTimeoutMs, 10, 600_000),
    logLevel: DEFAULTS.logLevel,
  };
  const dissemination = gossip.dissemination ?? DEFAULT_DISSEMINATION;
  if (dissemination !== "plumtree" && dissemination !== "flood") {
    throw new ConfigError(file, "gossip.dissemination", `expected plumtree or flood, got ${JSON.stringify(dissemination)}`);
  }
  config.dissemination = dissemination;
  const overlay = gossip.overlay ?? DEFAULT_OVERLAY;
  if (overlay !== "hyparview" && overlay !== "classic") {
    throw new ConfigError(file, "gossip.overlay", `expected hyparview or classic, got ${JSON.stringify(overlay)}`);
  }
  config.overlay = overlay;
  if (gossip.control_address !== undefined) config.controlAddress = address(file, "gossip.control_address", gossip.control_address);
  if (gossip.log_level !== undefined) {
    if (!LOG_LEVELS.includes(gossip.log_level as LogLevel)) {
      throw new ConfigError(file, "gossip.log_level", `expected one of ${LOG_LEVELS.join(", ")}`);
    }
    config.logLevel = gossip.log_level as LogLevel;
  }
  if (rps?.api_address !== undefined) config.rpsApiAddress = address(file, "rps.api_address", rps.api_address);
  return config;
}

function section(file: string, doc: Raw, name: string): Raw {
  const value = doc[name];
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw new ConfigError(file, name, "expected a mapping of keys");
  return value;
}

function integer(file: string, key: string, value: unknown, fallback: number, min: number, max: number, lenient: boolean): number {
  if (value === undefined || value === null) return fallback;
  const n = lenient && typeof value === "string" && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n)) throw new ConfigError(file, key, `expected an integer, got ${JSON.stringify(value)}`);
  if (n < min || n > max) throw new ConfigError(file, key, `${n} is out of range ${min}-${max}`);
  return n;
}

function address(file: string, key: string, value: unknown): HostPort {
  if (typeof value !== "string") throw new ConfigError(file, key, `expected "host:port", got ${JSON.stringify(value)}`);
  const parsed = parseHostPort(value);
  if (typeof parsed === "string") throw new ConfigError(file, key, parsed);
  return parsed;
}

function bootstrappers(file: string, value: unknown): HostPort[] {
  if (value === undefined || value === null || value === "") return [];
  if (typeof value === "string") return [address(file, "gossip.bootstrapper", value)];
  if (Array.isArray(value)) return value.map((v, i) => address(file, `gossip.bootstrapper[${i}]`, v));
  throw new ConfigError(file, "gossip.bootstrapper", "expected host:port or a list of them");
}

function isRecord(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Loads the identity key named by the config; if the file does not exist, creates an Ed25519 key there (mode 0600).
 * Returns whether it was created so the caller can log it.
 */
export function loadOrCreateHostkey(config: NodeConfig): { identity: Identity; created: boolean } {
  const path = config.hostkeyPath;
  let created = false;
  if (!existsSync(path)) {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(path, generateEd25519Pem(), { mode: 0o600, flag: "wx" });
      chmodSync(path, 0o600);
      created = true;
    } catch (e) {
      throw new ConfigError(config.source, "hostkey", `cannot create ${path}: ${(e as Error).message}`);
    }
  }
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(config.source, "hostkey", `unreadable ${path}: ${(e as Error).message}`);
  }
  try {
    return { identity: loadIdentity(pem), created };
  } catch (e) {
    const why = e instanceof ConfigError ? e.problem : (e as Error).message;
    throw new ConfigError(config.source, "hostkey", `${path} is not an Ed25519 or RSA private key in PEM: ${why}`);
  }
}

/** One line per setting, for the startup log. */
export function describeConfig(c: NodeConfig): Record<string, string | number> {
  return {
    config: c.source,
    api: formatHostPort(c.apiAddress),
    p2p: formatHostPort(c.p2pAddress),
    bootstrappers: c.bootstrappers.map(formatHostPort).join(",") || "none",
    degree: c.degree,
    cache_size: c.cacheSize,
    dissemination: c.dissemination ?? DEFAULT_DISSEMINATION,
    overlay: c.overlay ?? DEFAULT_OVERLAY,
    pow_difficulty: c.powDifficulty,
  };
}
