/**
 * Whole messages to one socket, coalesced per event-loop turn: a message to an idle socket (nothing queued, nothing
 * written yet this turn, and the last turn wrote at most one) is written at once, so an idle connection adds no turn
 * of latency; the later messages of a turn, or every message while the socket is busy, wait for the end of the turn
 * and leave in one write. One write system call per turn instead of per message is what a burst of NOTIFICATIONs to
 * one module costs (a write is the largest single item of a node's profile then).
 *
 * Bounded like the SendQueue under it: `write` refuses a message that would take the bytes held (this turn's and the
 * kernel's backlog) past the limit, writing nothing, and the caller decides (the API server closes a slow reader).
 */
import { SendQueue } from "./send-queue.ts";
import { TurnPacer, type TurnEnder } from "./turn-end.ts";

export class TurnWriter implements TurnEnder {
  private readonly queue: SendQueue;
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private readonly pacer = new TurnPacer(this);

  constructor(socket: { write(bytes: Uint8Array): number }, readonly limit: number) {
    this.queue = new SendQueue(socket, limit);
  }

  /** Bytes accepted and not yet taken by the kernel (this turn's included). */
  get pending(): number {
    return this.queue.pending + this.heldBytes;
  }

  get empty(): boolean {
    return this.pending === 0;
  }

  /** Takes one whole message; false, writing nothing, when it would pass the limit. */
  write(bytes: Uint8Array): boolean {
    if (this.pending > 0 && this.pending + bytes.length > this.limit) return false;
    if (this.pacer.message(this.pending === 0)) return this.queue.write(bytes);
    this.held.push(bytes);
    this.heldBytes += bytes.length;
    return true;
  }

  /** Call from the socket's drain handler. */
  flush(): void {
    this.queue.flush();
  }

  /** The end of the turn: what it holds leaves in one write. */
  endTurn(): void {
    this.pacer.turnEnded();
    if (this.held.length === 0) return;
    const messages = this.held;
    this.held = [];
    const total = this.heldBytes;
    this.heldBytes = 0;
    // Accepted already within the limit: the queue takes it whole.
    this.queue.write(messages.length === 1 ? messages[0]! : Buffer.concat(messages, total));
  }

  /** Forgets what is held and queued (the connection is closing and its output no longer matters). */
  discard(): void {
    this.held = [];
    this.heldBytes = 0;
    this.queue.discard();
  }
}
