/**
 * The module-author and operator tools as commands: `announce`, `subscribe`, `status`. Each parses its own options,
 * resolves addresses (flag, else the --config file, else the default) and hands over to src/tools/. Returns the exit
 * code; throws UsageError (2), ConfigError (2) or ToolFailure (1).
 */
import { readFileSync } from "node:fs";
import { MAX_DATA_SIZE } from "../api/codec.ts";
import { ConfigError, UsageError } from "../errors.ts";
import { DEFAULTS } from "../config.ts";
import { EXEC_CONCURRENCY, EXEC_TIMEOUT_MS } from "../defaults.ts";
import { announce } from "../tools/announce.ts";
import { subscribe } from "../tools/subscribe.ts";
import { DEFAULT_CONTROL_ADDRESS, fetchStatus, renderStatus } from "../tools/status.ts";
import { addressOption, intOption, optionalConfig, parseOptions as parse } from "./common.ts";

function apiAddress(flag: string | undefined, configPath: string | undefined) {
  if (flag !== undefined) return addressOption("--api", flag);
  return optionalConfig(configPath)?.apiAddress ?? addressOption("default", DEFAULTS.apiAddress);
}

export async function announceCommand(args: string[]): Promise<number | "help"> {
  const { values, positionals } = parse(args, {
    api: { type: "string" },
    config: { type: "string", short: "c" },
    type: { type: "string", short: "t" },
    ttl: { type: "string" },
    file: { type: "string", short: "f" },
  });
  if (values.help) return "help";
  if (values.type === undefined) throw new UsageError("announce needs --type N");
  const dataType = intOption("--type", values.type as string, 0, 0xffff);
  const ttl = values.ttl === undefined ? 0 : intOption("--ttl", values.ttl as string, 0, 255);
  const sources = positionals.length + (values.file !== undefined ? 1 : 0);
  if (sources !== 1) throw new UsageError("announce needs exactly one of DATA, --file F or - (standard input)");
  let data: Uint8Array;
  const file = values.file as string | undefined;
  if (file !== undefined) {
    try {
      data = readFileSync(file);
    } catch (e) {
      throw new UsageError(`--file: cannot read ${file}: ${(e as Error).message}`);
    }
  } else if (positionals[0] === "-") {
    data = new Uint8Array(await Bun.stdin.arrayBuffer());
  } else {
    data = new TextEncoder().encode(positionals[0]!);
  }
  if (data.length > MAX_DATA_SIZE) throw new UsageError(`data is ${data.length} bytes; one ANNOUNCE carries at most ${MAX_DATA_SIZE}`);
  const api = apiAddress(values.api as string | undefined, values.config as string | undefined);
  process.stdout.write((await announce({ api, dataType, ttl, data })) + "\n");
  return 0;
}

export async function subscribeCommand(args: string[]): Promise<number | "help"> {
  const { values, positionals } = parse(args, {
    api: { type: "string" },
    config: { type: "string", short: "c" },
    type: { type: "string", short: "t", multiple: true },
    "reject-if": { type: "string" },
    exec: { type: "string" },
    "exec-concurrency": { type: "string" },
    "exec-timeout": { type: "string" },
    json: { type: "boolean" },
    count: { type: "string", short: "n" },
  });
  if (values.help) return "help";
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const types = (values.type as string[] | undefined) ?? [];
  if (types.length === 0) throw new UsageError("subscribe needs --type N (repeat it for several types)");
  const dataTypes = types.map((t) => intOption("--type", t, 0, 0xffff));
  let rejectIf: RegExp | undefined;
  if (values["reject-if"] !== undefined) {
    try {
      rejectIf = new RegExp(values["reject-if"] as string);
    } catch (e) {
      throw new UsageError(`--reject-if: ${(e as Error).message}`);
    }
  }
  const command = values.exec as string | undefined;
  if (command !== undefined && rejectIf !== undefined) throw new UsageError("--exec and --reject-if: give one way to decide, not both");
  if (command === undefined && (values["exec-concurrency"] !== undefined || values["exec-timeout"] !== undefined)) {
    throw new UsageError("--exec-concurrency and --exec-timeout need --exec CMD");
  }
  if (command !== undefined && command.trim() === "") throw new UsageError("--exec: the command is empty");
  const exec = command === undefined ? undefined : {
    command,
    concurrency: values["exec-concurrency"] === undefined ? EXEC_CONCURRENCY : intOption("--exec-concurrency", values["exec-concurrency"] as string, 1, 1024),
    timeoutMs: values["exec-timeout"] === undefined ? EXEC_TIMEOUT_MS : intOption("--exec-timeout", values["exec-timeout"] as string, 1, 3_600_000),
  };
  const count = values.count === undefined ? undefined : intOption("--count", values.count as string, 1, Number.MAX_SAFE_INTEGER);
  const api = apiAddress(values.api as string | undefined, values.config as string | undefined);

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await subscribe({
      api,
      dataTypes,
      rejectIf,
      exec,
      json: values.json === true,
      count,
      print: (line) => process.stdout.write(line + "\n"),
      note: (line) => process.stderr.write(`gossip: ${line}\n`),
      signal: stop.signal,
    });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  return 0;
}

export async function statusCommand(args: string[]): Promise<number | "help"> {
  const { values, positionals } = parse(args, {
    control: { type: "string" },
    config: { type: "string", short: "c" },
    json: { type: "boolean" },
  });
  if (values.help) return "help";
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  let control;
  if (values.control !== undefined) {
    control = addressOption("--control", values.control as string);
  } else if (values.config !== undefined) {
    const config = optionalConfig(values.config as string)!;
    if (!config.controlAddress) throw new ConfigError(config.source, "gossip.control_address", "not set, so the node serves no status; set it or pass --control");
    control = config.controlAddress;
  } else {
    control = addressOption("default", DEFAULT_CONTROL_ADDRESS);
  }
  const status = await fetchStatus(control);
  process.stdout.write(values.json ? JSON.stringify(status, null, 2) + "\n" : renderStatus(status));
  return 0;
}
