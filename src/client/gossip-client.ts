/**
 * The client library for TypeScript/JavaScript modules on Bun (the package entry `gossip/client`, src/client/index.ts):
 * connect to a node's VoidPhone API, announce, subscribe, and take NOTIFICATIONs from an async iterator, answering
 * each one valid or invalid. Built on src/client/api-client.ts, which reassembles messages from the byte stream
 * (split over reads or several in one read). The CLI tools use it (src/tools/).
 *
 * Must never: send two VALIDATIONs for one NOTIFICATION (the node would close the connection: a second answer throws
 * here instead), lose a notification that arrived before anyone iterated (they wait in order), or end an iteration
 * silently when the node went away (that is an ApiClientError "connection-lost").
 */
import { parseHostPort, type HostPort } from "../address.ts";
import { ApiClientError } from "../errors.ts";
import { ApiClient, type ApiClientStats, type CloseReason } from "./api-client.ts";

export interface ConnectOptions {
  /** Give up connecting after this long (ApiClientError "connect-timeout"); default 3 s. */
  connectTimeoutMs?: number;
  /** Bytes queued for a node that does not read before the connection is closed ("send-limit"); default unbounded. */
  sendLimit?: number;
}

/** One NOTIFICATION: data of a type this connection subscribed to. Answer it once: valid() or invalid(). */
export interface Notification {
  readonly dataType: number;
  readonly data: Uint8Array;
  /** The node's 16-bit handle for this notification (answers are matched by it). */
  readonly messageId: number;
  /** The data as UTF-8 text (replacement characters where it is not). */
  readonly text: string;
  readonly answered: boolean;
  /** GOSSIP VALIDATION valid=1: the item may travel on (once every local subscriber said so). */
  valid(): void;
  /** GOSSIP VALIDATION valid=0: the item stops here and counts against the peer that sent it. */
  invalid(): void;
  answer(valid: boolean): void;
}

export interface AnnounceOptions {
  /** Hops the item may travel; 0 (default) = unlimited, 1 = our direct peers only. */
  ttl?: number;
}

/** Connects to a node's API: "host:port", "[v6]:port", a port on 127.0.0.1, or { host, port }. */
export async function connect(address: string | number | HostPort, options: ConnectOptions = {}): Promise<GossipClient> {
  let target: number | HostPort;
  if (typeof address === "string") {
    const parsed = parseHostPort(address);
    if (typeof parsed === "string") throw new ApiClientError("bad-address", `cannot connect to "${address}": ${parsed}`);
    target = parsed;
  } else {
    target = address;
  }
  return new GossipClient(await ApiClient.connect(target, options));
}

const textDecoder = new TextDecoder();

export class GossipClient {
  /** Notifications received and not yet taken by an iterator, oldest first. */
  private readonly waiting: Notification[] = [];
  private wake: (() => void) | undefined;
  private iterating = false;
  private closingByUs = false;

  constructor(private readonly connection: ApiClient) {
    connection.onMessage = (m) => {
      if (m.kind !== "notification") return; // the node sends modules nothing else
      this.waiting.push(this.notification(m.messageId, m.dataType, m.data));
      this.wakeIterator();
    };
    void connection.closed.then(() => this.wakeIterator());
  }

  /** host:port of the node's API. */
  get address(): string {
    return this.connection.address;
  }

  /** Resolves with the reason once the connection is closed, by either side. */
  get closed(): Promise<CloseReason> {
    return this.connection.closed;
  }

  /** GOSSIP NOTIFY for each type: from now on the node notifies this connection of items of those types. */
  subscribe(...dataTypes: number[]): void {
    for (const t of dataTypes) {
      if (!Number.isInteger(t) || t < 0 || t > 0xffff) throw new RangeError(`data type must be 0-65535, got ${t}`);
      this.connection.subscribe(t);
    }
  }

  /** GOSSIP ANNOUNCE: text is sent as UTF-8. The node sends no reply; other local subscribers hear of it, we do not. */
  announce(dataType: number, data: Uint8Array | string, options: AnnounceOptions = {}): void {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    this.connection.announce(dataType, bytes, options.ttl ?? 0);
  }

  /**
   * The notifications, in the order the node sent them, from the first one received (also those that arrived before
   * this call). One iterator at a time. It ends when we close the connection, and throws ApiClientError
   * "connection-lost" when the node closes it. Leaving the loop (break) leaves the connection open.
   */
  async *notifications(): AsyncGenerator<Notification, void, undefined> {
    if (this.iterating) throw new ApiClientError("already-iterating", "notifications(): one iterator at a time");
    this.iterating = true;
    try {
      for (;;) {
        const next = this.waiting.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (this.connection.isClosed) {
          if (this.closingByUs) return;
          const reason = await this.connection.closed;
          throw new ApiClientError("connection-lost", `connection to the node at ${this.address} lost (${reason})`);
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.iterating = false;
    }
  }

  /** Sends what is queued (answers included), then closes; an iterator in progress ends normally. */
  async close(): Promise<void> {
    this.closingByUs = true;
    await this.connection.end();
  }

  stats(): ApiClientStats & { waiting: number } {
    return { ...this.connection.stats(), waiting: this.waiting.length };
  }

  private notification(messageId: number, dataType: number, data: Uint8Array): Notification {
    const connection = this.connection;
    let answered = false;
    return {
      dataType,
      data,
      messageId,
      get text() {
        return textDecoder.decode(data);
      },
      get answered() {
        return answered;
      },
      answer(valid: boolean) {
        if (answered) throw new ApiClientError("already-answered", `notification ${messageId} was already answered`);
        answered = true;
        connection.validate(messageId, valid);
      },
      valid() {
        this.answer(true);
      },
      invalid() {
        this.answer(false);
      },
    };
  }

  private wakeIterator(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
