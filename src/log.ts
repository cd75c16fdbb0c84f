/**
 * Leveled logging, one line per event: human-readable on a terminal, JSON lines otherwise.
 * Modules take a Logger so tests can silence or capture it; nothing here decides policy.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: "text" | "json";
  write?: (line: string) => void;
  base?: LogFields;
}

function fieldText(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  if (typeof value === "string") return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  return String(value);
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const minRank = LEVEL_RANK[options.level ?? "info"];
  const format = options.format ?? (process.stderr.isTTY ? "text" : "json");
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const base = options.base ?? {};

  const emit = (level: LogLevel, event: string, fields: LogFields = {}) => {
    if (LEVEL_RANK[level] < minRank) return;
    const all = { ...base, ...fields };
    if (format === "json") {
      const record: LogFields = { time: new Date().toISOString(), level, event };
      for (const [k, v] of Object.entries(all)) {
        // bigint has no JSON form (JSON.stringify would throw and lose the line): write it as a decimal string.
        record[k] =
          v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v instanceof Error ? v.message : typeof v === "bigint" ? String(v) : v;
      }
      write(JSON.stringify(record));
    } else {
      const parts = Object.entries(all).map(([k, v]) => `${k}=${fieldText(v instanceof Error ? v.message : v)}`);
      write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${event}${parts.length ? " " + parts.join(" ") : ""}`);
    }
  };

  return {
    debug: (e, f) => emit("debug", e, f),
    info: (e, f) => emit("info", e, f),
    warn: (e, f) => emit("warn", e, f),
    error: (e, f) => emit("error", e, f),
    child: (fields) => createLogger({ ...options, format, write, base: { ...base, ...fields } }),
  };
}

/** A logger that drops everything: for tests that do not inspect logs. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
