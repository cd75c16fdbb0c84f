/**
 * A VoidPhone API client connection for the command-line tools: connect to a node's api_address, send whole
 * messages, receive decoded ones. It is a module like any other (NSE, Onion…) as far as the node can tell.
 * Must never: lose queued bytes on end() (Bun's write takes what the kernel takes; the rest waits for drain) or let a
 * malformed message from the node throw out of a socket handler (it closes the connection with the reason).
 */
import type { Socket } from "bun";
import { formatHostPort, type HostPort } from "../address.ts";
import { decodeMessage, type ApiMessage } from "../api/codec.ts";
import { MessageReader } from "../api/reader.ts";
import { ApiProtocolError } from "../errors.ts";
import { SendQueue } from "../net/send-queue.ts";

/** A runtime failure a tool reports in one line and exits 1 for (cannot connect, connection lost…). */
export class ToolFailure extends Error {
  override readonly name = "ToolFailure";
}

export class ApiConnection {
  /** Each decoded message from the node, in order. */
  onMessage: (message: ApiMessage) => void = () => {};
  /** Resolves with the reason once the connection is closed, by either side. */
  readonly closed: Promise<string>;
  private markClosed!: (reason: string) => void;
  private isClosed = false;
  private readonly reader = new MessageReader();
  private socket!: Socket<undefined>;
  /** Unbounded: a tool sends only what its user asked for. */
  private queue!: SendQueue;
  private drained: (() => void) | undefined;

  private constructor(readonly address: string) {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
  }

  static async connect(addr: HostPort, timeoutMs = 3000): Promise<ApiConnection> {
    const address = formatHostPort(addr);
    const conn = new ApiConnection(address);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ToolFailure(`cannot connect to the API at ${address}: no answer in ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      conn.socket = await Promise.race([
        Bun.connect({
          hostname: addr.host,
          port: addr.port,
          socket: {
            data: (_s, chunk) => conn.received(chunk),
            drain: () => conn.flush(),
            close: () => conn.finish("closed by the node"),
            error: (_s, e) => conn.finish(`socket error: ${e.message}`),
          },
        }),
        timeout,
      ]);
    } catch (e) {
      if (e instanceof ToolFailure) throw e;
      throw new ToolFailure(`cannot connect to the API at ${address}: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    conn.queue = new SendQueue(conn.socket as Socket<unknown>, Infinity);
    return conn;
  }

  /** False once the connection closed, by either side. */
  get open(): boolean {
    return !this.isClosed;
  }

  /** Queues one whole message; bytes the kernel does not take now go out on drain, in order. */
  send(bytes: Uint8Array): void {
    if (this.isClosed) return;
    this.queue.write(bytes);
  }

  /** Sends what is queued, closes our side and waits (bounded) for the node to close too. */
  async end(timeoutMs = 2000): Promise<void> {
    if (!this.queue.empty && !this.isClosed) await new Promise<void>((resolve) => (this.drained = resolve));
    if (this.isClosed) return;
    this.socket.end();
    const timer = setTimeout(() => this.finish("closed by us"), timeoutMs);
    await this.closed;
    clearTimeout(timer);
  }

  /** Closes at once, dropping anything unsent. */
  close(): void {
    if (!this.isClosed) this.socket.terminate();
    this.finish("closed by us");
  }

  private received(chunk: Uint8Array): void {
    if (this.isClosed) return;
    try {
      for (const bytes of this.reader.push(chunk)) this.onMessage(decodeMessage(bytes));
    } catch (e) {
      this.socket.terminate();
      const what = e instanceof ApiProtocolError ? "bad message from the node" : "failed to handle a message";
      this.finish(`${what}: ${(e as Error).message}`);
    }
  }

  private flush(): void {
    this.queue?.flush();
    if (this.queue !== undefined && !this.queue.empty) return;
    this.drained?.();
    this.drained = undefined;
  }

  private finish(reason: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.drained?.();
    this.markClosed(reason);
  }
}
