/**
 * Test helpers for the API, kept for the files that still import them from here: the VoidPhone API client (the one in
 * src/client/api-client.ts, under its old name), the shared condition poller (test/wait-for.ts), and a logger that
 * records what it is told. Test-only; real sockets, no mocks.
 */
import type { LogFields, Logger } from "../../src/log.ts";

export { ApiClient as ApiTestClient } from "../../src/client/api-client.ts";
export { waitFor } from "../wait-for.ts";

export interface LogEntry {
  level: string;
  event: string;
  fields: LogFields;
}

/** A Logger that records every entry (debug included) for assertions. */
export function captureLogger(entries: LogEntry[] = []): Logger & { entries: LogEntry[] } {
  const at = (level: string) => (event: string, fields: LogFields = {}) => void entries.push({ level, event, fields });
  const log: Logger & { entries: LogEntry[] } = {
    entries,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: () => log,
  };
  return log;
}
