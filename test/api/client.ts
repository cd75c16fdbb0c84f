/**
 * Test helpers for the API: a raw TCP client that sends bytes and reads whole messages, a logger that records what
 * it is told, and a condition poller. Test-only; real sockets, no mocks.
 */
import type { Socket } from "bun";
import type { LogFields, Logger } from "../../src/log.ts";
import { type ApiMessage, decodeMessage } from "../../src/api/codec.ts";
import { MessageReader } from "../../src/api/reader.ts";

export class ApiTestClient {
  private readonly reader = new MessageReader();
  private readonly inbox: Uint8Array[] = [];
  private waiters: (() => void)[] = [];
  private outbox: Uint8Array[] = [];
  private socket!: Socket<undefined>;
  private markClosed!: () => void;
  /** Resolves once the connection is closed, by either side. */
  readonly closed = new Promise<void>((resolve) => (this.markClosed = resolve));
  isClosed = false;
  /** Bytes received in total (whole messages or not). */
  receivedBytes = 0;

  static async connect(port: number, host = "127.0.0.1"): Promise<ApiTestClient> {
    const client = new ApiTestClient();
    client.socket = await Bun.connect({
      hostname: host,
      port,
      socket: {
        data: (_s, chunk) => {
          client.receivedBytes += chunk.length;
          client.inbox.push(...client.reader.push(chunk));
          client.wake();
        },
        drain: () => client.flush(),
        close: () => {
          client.isClosed = true;
          client.markClosed();
          client.wake();
        },
        error: () => {},
      },
    });
    return client;
  }

  /** Writes all of `bytes`, queueing what the kernel does not take yet (one write when it fits). */
  send(bytes: Uint8Array): void {
    this.outbox.push(bytes);
    if (this.outbox.length === 1) this.flush();
  }

  /** The next whole message; rejects on timeout or when the connection closed with nothing left to read. */
  async next(timeoutMs = 3000): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (this.isClosed) throw new Error("connection closed while waiting for a message");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a message");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.inbox.shift()!;
  }

  async nextMessage(timeoutMs?: number): Promise<ApiMessage> {
    return decodeMessage(await this.next(timeoutMs));
  }

  /** Whole messages received and not yet taken. */
  get queued(): number {
    return this.inbox.length;
  }

  /** Resolves when the peer closed the connection; rejects if it is still open after `timeoutMs`. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    await waitFor(() => this.isClosed, timeoutMs, "connection to close");
  }

  pause(): void {
    this.socket.pause();
  }

  close(): void {
    this.socket.end();
  }

  private flush(): void {
    while (this.outbox.length > 0) {
      const head = this.outbox[0];
      const written = Math.max(0, this.socket.write(head));
      if (written < head.length) {
        this.outbox[0] = head.subarray(written);
        return;
      }
      this.outbox.shift();
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** Polls `condition` every few ms; rejects with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 3000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

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
