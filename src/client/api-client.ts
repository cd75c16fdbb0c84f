/**
 * A VoidPhone API client: one TCP connection to a node's api_address, speaking as a local module (NSE, Onion…)
 * would. The CLI tools, the testnet's modules and the tests all use it. Messages from the node are reassembled from
 * the byte stream (src/api/reader.ts: one may arrive split over reads, several in one read) and either handed to
 * `onMessage` / `answerNotifications`, or kept in an inbox for `next()`.
 *
 * Must never: lose queued bytes on end() (Bun's write takes what the kernel takes; the rest waits for drain), throw out
 * of a socket handler (a malformed message from the node closes the connection, with the reason), or queue more than
 * `sendLimit` bytes for a node that does not read.
 */
import type { Socket } from "bun";
import { formatHostPort, type HostPort } from "../address.ts";
import { MSG_NOTIFICATION, decodeMessage, encodeAnnounce, encodeNotify, encodeValidation, type ApiMessage } from "../api/codec.ts";
import { MessageReader } from "../api/reader.ts";
import { API_CLIENT_CONNECT_TIMEOUT_MS, API_CLIENT_END_TIMEOUT_MS } from "../defaults.ts";
import { ApiClientError, ApiProtocolError } from "../errors.ts";
import { SendQueue } from "../net/send-queue.ts";

export interface ApiClientOptions {
  /** Host when `connect` is given a bare port (default 127.0.0.1). */
  host?: string;
  connectTimeoutMs?: number;
  /** Bytes queued for a node that does not read before the connection is closed ("send-limit"); default unbounded. */
  sendLimit?: number;
}

export interface ReceivedNotification {
  messageId: number;
  dataType: number;
  data: Uint8Array;
}

export interface ApiClientStats {
  /** Whole messages received from the node. */
  messages: number;
  /** NOTIFICATIONs among them. */
  notifications: number;
  bytesReceived: number;
  /** Bytes accepted by send() and not yet taken by the kernel. */
  bytesQueued: number;
}

/**
 * Why a connection ended: `closed-by-node`, `closed-by-us`, `send-limit`, `socket-error:<message>`,
 * `bad-message:<ApiProtocolError code>`, `handler-failed:<message>`.
 */
export type CloseReason = string;

export class ApiClient {
  /**
   * Each decoded message from the node, in order. Unset: raw messages wait in the inbox for next(). A throw closes
   * the connection (`handler-failed`).
   */
  onMessage: ((message: ApiMessage) => void) | undefined;
  /** Resolves with the reason once the connection is closed, by either side. */
  readonly closed: Promise<CloseReason>;
  private markClosed!: (reason: CloseReason) => void;
  private reason: CloseReason | undefined;
  private readonly reader = new MessageReader();
  private readonly inbox: Uint8Array[] = [];
  private inboxWaiters: (() => void)[] = [];
  private answers: Uint8Array[] = [];
  private socket!: Socket<undefined>;
  private queue!: SendQueue;
  private drained: (() => void) | undefined;
  private messages = 0;
  private notifications = 0;
  private bytesReceived = 0;

  private constructor(
    /** host:port of the node's API. */
    readonly address: string,
    private readonly sendLimit: number,
  ) {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
  }

  /** Connects to a node's API (`port` alone means 127.0.0.1 unless options.host); ApiClientError when it cannot. */
  static async connect(target: number | HostPort, options: ApiClientOptions = {}): Promise<ApiClient> {
    const addr = typeof target === "number" ? { host: options.host ?? "127.0.0.1", port: target } : target;
    const client = new ApiClient(formatHostPort(addr), options.sendLimit ?? Infinity);
    const timeoutMs = options.connectTimeoutMs ?? API_CLIENT_CONNECT_TIMEOUT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ApiClientError("connect-timeout", `cannot connect to the API at ${client.address}: no answer in ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    const connecting = Bun.connect({
      hostname: addr.host,
      port: addr.port,
      socket: {
        data: (_s, chunk) => client.received(chunk),
        drain: () => client.flush(),
        close: () => client.finish("closed-by-node"),
        error: (_s, e) => client.finish(`socket-error:${e.message}`),
      },
    });
    try {
      client.socket = await Promise.race([connecting, timeout]);
    } catch (e) {
      connecting.then((s) => s.terminate(), () => {}); // a socket that opens after the timeout is not kept
      if (e instanceof ApiClientError) throw e;
      throw new ApiClientError("connect-failed", `cannot connect to the API at ${client.address}: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    client.queue = new SendQueue(client.socket as Socket<unknown>, client.sendLimit);
    return client;
  }

  /** True once the connection is closed, by either side (or being closed by us). */
  get isClosed(): boolean {
    return this.reason !== undefined;
  }

  /** Queues bytes (normally one whole message; tests also send broken ones). Ignored once closed. */
  send(bytes: Uint8Array): void {
    if (this.reason !== undefined) return;
    if (!this.queue.write(bytes)) this.abort("send-limit");
  }

  /** GOSSIP ANNOUNCE. */
  announce(dataType: number, data: Uint8Array, ttl = 0): void {
    this.send(encodeAnnounce({ ttl, dataType, data }));
  }

  /** GOSSIP NOTIFY: from now on the node notifies this connection of items of `dataType`. */
  subscribe(dataType: number): void {
    this.send(encodeNotify({ dataType }));
  }

  /**
   * GOSSIP VALIDATION for a NOTIFICATION's message ID. Answers given in one event-loop turn leave together in one write
   * (8 bytes each; a busy module answers many per turn); end() sends them before it closes.
   */
  validate(messageId: number, valid: boolean): void {
    if (this.reason !== undefined) return;
    if (this.answers.push(encodeValidation({ messageId, valid })) === 1) setImmediate(() => this.sendAnswers());
  }

  /**
   * Answers every NOTIFICATION from now on with the verdict `decide` returns (valid unless it returns false); other
   * messages are ignored. Replaces onMessage.
   */
  answerNotifications(decide: (n: ReceivedNotification) => boolean | void): void {
    this.onMessage = (m) => {
      if (m.kind === "notification") this.validate(m.messageId, decide(m) !== false);
    };
  }

  /** The next whole message from the inbox (when onMessage is unset); rejects on timeout or once closed and empty. */
  async next(timeoutMs = 3000): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (this.reason !== undefined) throw new Error(`connection closed (${this.reason}) while waiting for a message`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for a message from ${this.address}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.inboxWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.inbox.shift()!;
  }

  /** next(), decoded. */
  async nextMessage(timeoutMs?: number): Promise<ApiMessage> {
    return decodeMessage(await this.next(timeoutMs));
  }

  /** Whole messages in the inbox, not yet taken by next(). */
  get queued(): number {
    return this.inbox.length;
  }

  /** Resolves with the reason once the connection is closed; rejects if it is still open after `timeoutMs`. */
  async waitClosed(timeoutMs = 3000): Promise<CloseReason> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${this.address} to close`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops reading from the socket (a module that stalls); the node's output then piles up on its side. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Sends what is queued (pending answers included), closes our side and waits (bounded) for the node to close too. */
  async end(timeoutMs = API_CLIENT_END_TIMEOUT_MS): Promise<void> {
    this.sendAnswers();
    if (!this.queue.empty && this.reason === undefined) await new Promise<void>((resolve) => (this.drained = resolve));
    if (this.reason !== undefined) return;
    this.socket.end();
    const timer = setTimeout(() => this.finish("closed-by-us"), timeoutMs);
    await this.closed;
    clearTimeout(timer);
  }

  /** Closes our side now (a FIN, as a module that goes away); anything not yet sent is dropped. */
  close(): void {
    if (this.reason !== undefined) return;
    this.finish("closed-by-us"); // first: ending the socket may run the close handler at once
    this.socket.end();
  }

  stats(): ApiClientStats {
    return {
      messages: this.messages,
      notifications: this.notifications,
      bytesReceived: this.bytesReceived,
      bytesQueued: this.queue.pending,
    };
  }

  private received(chunk: Uint8Array): void {
    if (this.reason !== undefined) return;
    this.bytesReceived += chunk.length;
    let whole: Uint8Array[];
    try {
      whole = this.reader.push(chunk);
    } catch (e) {
      this.abort(`bad-message:${(e as ApiProtocolError).code}`);
      return;
    }
    for (const bytes of whole) {
      this.messages++;
      if (((bytes[2]! << 8) | bytes[3]!) === MSG_NOTIFICATION) this.notifications++;
      if (this.onMessage === undefined) {
        this.inbox.push(bytes);
        continue;
      }
      let m: ApiMessage;
      try {
        m = decodeMessage(bytes);
      } catch (e) {
        this.abort(e instanceof ApiProtocolError ? `bad-message:${e.code}` : `bad-message:${(e as Error).message}`);
        return;
      }
      try {
        this.onMessage(m);
      } catch (e) {
        this.abort(`handler-failed:${(e as Error).message}`);
        return;
      }
      if (this.reason !== undefined) return;
    }
    if (this.inbox.length > 0) this.wake();
  }

  private sendAnswers(): void {
    if (this.answers.length === 0) return;
    const batch = this.answers;
    this.answers = [];
    this.send(batch.length === 1 ? batch[0]! : Buffer.concat(batch));
  }

  private flush(): void {
    this.queue?.flush();
    if (this.queue !== undefined && !this.queue.empty) return;
    this.drained?.();
    this.drained = undefined;
  }

  /** Our side gives up on the connection at once (no FIN handshake, queued bytes dropped). */
  private abort(reason: CloseReason): void {
    if (this.reason !== undefined) return;
    this.finish(reason); // first: terminate() runs the close handler at once
    this.socket.terminate();
  }

  private finish(reason: CloseReason): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.answers = [];
    this.queue?.discard();
    this.drained?.();
    this.drained = undefined;
    this.markClosed(reason);
    this.wake();
  }

  private wake(): void {
    const waiters = this.inboxWaiters;
    this.inboxWaiters = [];
    for (const w of waiters) w();
  }
}
