/**
 * One local module's TCP connection as the API server sees it: bytes in (the reader, the partial-message deadline,
 * messages held while announcements wait), bytes out (the bounded send queue), and how it ends.
 *
 * No policy: the server (server.ts) decides what messages mean, when to hold them and when to close. Must never:
 * lose or reorder a message it read, keep reading while it holds messages, run the partial-message deadline while it
 * is not being read, or keep buffers (queued output, held messages, a half message) once closed.
 */
import type { Socket } from "bun";
import { TurnWriter } from "../net/turn-writer.ts";
import { MessageReader } from "./reader.ts";

export class ApiConnection {
  readonly remote: string;
  /** When its bytes last arrived (performance.now()), for idle eviction. */
  lastActiveAt = performance.now();
  /** It has sent at least one whole message. */
  spoke = false;
  /** We stopped serving it (violation, slow reader, eviction, its close, our stop). */
  closed = false;
  /** Bun reported the socket closed: nothing left to end or terminate. */
  socketGone = false;
  /** Whole messages read but not handled yet, the first an ANNOUNCE that waits; the socket is paused meanwhile. */
  private heldMessages: Uint8Array[] | undefined;
  private heldByteCount = 0;
  private reader = new MessageReader();
  /** Output the kernel has not taken yet, bounded (past it the server closes us: "slow-reader"); the messages of one
   *  turn leave in one write. */
  private readonly queue: TurnWriter;
  private partialTimer: Timer | undefined;

  constructor(
    readonly socket: Socket<ApiConnection | undefined>,
    maxPendingOutputBytes: number,
    private readonly partialMessageTimeoutMs: number,
    /** A message begun and not completed within the deadline. */
    private readonly onPartialTimeout: (conn: ApiConnection) => void,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.queue = new TurnWriter(socket as Socket<unknown>, maxPendingOutputBytes);
  }

  /** Bytes from the socket → whole messages (undecoded), in order. Throws ApiProtocolError on a bad size. */
  read(chunk: Uint8Array): Uint8Array[] {
    this.lastActiveAt = performance.now();
    return this.reader.push(chunk);
  }

  get isHolding(): boolean {
    return this.heldMessages !== undefined;
  }

  /** Bytes of the messages held: at most one socket read's worth. */
  get heldBytes(): number {
    return this.heldByteCount;
  }

  /** Keeps messages for later, in order, and stops reading the socket (TCP slows the module down). */
  hold(messages: Uint8Array[]): void {
    if (this.heldMessages === undefined) {
      this.heldMessages = [];
      this.socket.pause();
      // We stopped reading: a message it began cannot be completed, and that is not its fault.
      clearTimeout(this.partialTimer);
      this.partialTimer = undefined;
    }
    for (const m of messages) {
      this.heldMessages.push(m);
      this.heldByteCount += m.length;
    }
  }

  /** Takes the held messages back (to handle now); the socket stays paused until resume(). */
  takeHeld(): Uint8Array[] {
    const held = this.heldMessages ?? [];
    this.heldMessages = undefined;
    this.heldByteCount = 0;
    return held;
  }

  /** Reads again after takeHeld(), with the partial-message deadline running again if a message is half read. */
  resume(): void {
    this.socket.resume();
    this.armPartialDeadline(true);
  }

  /** A started message must complete within the deadline; a new message restarts it, more bytes do not. */
  armPartialDeadline(completedAny: boolean): void {
    if (this.reader.pendingBytes === 0 || completedAny) {
      clearTimeout(this.partialTimer);
      this.partialTimer = undefined;
    }
    if (this.reader.pendingBytes > 0 && this.partialTimer === undefined && !this.isHolding) {
      this.partialTimer = setTimeout(() => this.onPartialTimeout(this), this.partialMessageTimeoutMs);
    }
  }

  /** Queues one whole message; false, writing nothing, if that would pass the output bound. */
  send(bytes: Uint8Array): boolean {
    return this.queue.write(bytes);
  }

  /** Call from the socket's drain handler. */
  flush(): void {
    this.queue.flush();
  }

  /** Output the kernel has not taken yet. */
  get queuedBytes(): number {
    return this.queue.pending;
  }

  /** Forgets everything it buffers (output, held messages, a half message) and its timer; marks it closed. */
  dispose(): void {
    this.closed = true;
    clearTimeout(this.partialTimer);
    this.partialTimer = undefined;
    this.heldMessages = undefined;
    this.heldByteCount = 0;
    this.queue.discard();
    // Drop a half-received message (up to 64 KiB) now: a linger timer may keep this object for a while.
    this.reader = new MessageReader();
  }
}
