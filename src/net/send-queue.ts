/**
 * An outbound byte queue for one Bun socket. Bun's `socket.write` writes what the kernel takes and returns the
 * count; the rest is NOT queued. We keep the remainder in order, flush on `drain`, and bound what may pile up so a
 * peer or module that stops reading costs us at most `limit` bytes.
 */
export class SendQueue {
  private readonly chunks: Uint8Array[] = [];
  private head = 0;
  /** Bytes accepted but not yet taken by the kernel. */
  pending = 0;

  constructor(
    /** A Bun socket, or anything that writes like one (takes what it can, returns the count). */
    private readonly socket: { write(bytes: Uint8Array): number },
    readonly limit: number,
  ) {}

  /**
   * Queues one whole message (written in one write when the queue is empty). Returns false, writing nothing, when
   * the message would take the queue past its limit: the caller decides whether to drop or to close.
   */
  write(bytes: Uint8Array): boolean {
    if (this.pending + bytes.length > this.limit && this.pending > 0) return false;
    if (this.pending === 0) {
      const written = this.socket.write(bytes);
      if (written >= bytes.length) return true;
      bytes = bytes.subarray(Math.max(0, written));
    }
    this.chunks.push(bytes);
    this.pending += bytes.length;
    return true;
  }

  /** Call from the socket's `drain` handler. */
  flush(): void {
    while (this.head < this.chunks.length) {
      const chunk = this.chunks[this.head]!;
      const written = this.socket.write(chunk);
      if (written <= 0) return;
      this.pending -= Math.min(written, chunk.length);
      if (written < chunk.length) {
        this.chunks[this.head] = chunk.subarray(written);
        return;
      }
      this.chunks[this.head++] = EMPTY;
    }
    this.chunks.length = 0;
    this.head = 0;
  }

  /** Forgets what is queued (the connection is closing and its output no longer matters). */
  discard(): void {
    this.chunks.length = 0;
    this.head = 0;
    this.pending = 0;
  }

  get empty(): boolean {
    return this.pending === 0;
  }
}

const EMPTY = new Uint8Array(0);
