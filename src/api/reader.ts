/**
 * Reassembles VoidPhone API messages from a TCP byte stream: chunks in, whole messages (header included) out.
 *
 * Pure: no sockets, no timers. The server uses `pendingBytes` to enforce its partial-message deadline.
 * Must never: hold more than one incomplete message (≤ 65535 bytes) besides the chunk being pushed, or hand out bytes
 * it will later overwrite. A size field below 4 can never be resynchronised: it throws, and the stream is dead.
 */
import { ApiProtocolError } from "../errors.ts";
import { HEADER_SIZE } from "./codec.ts";

export class MessageReader {
  /** Header bytes of a message whose size is not known yet (0–3 of them in `headerFill`). */
  private readonly header = new Uint8Array(HEADER_SIZE);
  private headerFill = 0;
  /** The incomplete message once its size is known: allocated at its exact size, filled up to `bodyFill`. */
  private body: Uint8Array | undefined;
  private bodyFill = 0;
  private dead = false;

  /** Bytes of an incomplete message held back; 0 when the stream is at a message boundary. */
  get pendingBytes(): number {
    return this.body !== undefined ? this.bodyFill : this.headerFill;
  }

  /**
   * Feeds one chunk; returns the messages it completed, in order. A message that lies wholly inside `chunk` is
   * returned as a view of it (so the caller must not reuse chunk memory), a reassembled one as a fresh buffer.
   * Throws ApiProtocolError("size-too-small") as soon as a size field below 4 is seen (its 2 bytes suffice);
   * after that every push throws.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.dead) throw new ApiProtocolError("size-too-small", "stream already failed");
    const out: Uint8Array[] = [];
    let at = 0;

    // Finish the message left incomplete by earlier chunks.
    if (this.headerFill > 0 && this.body === undefined) {
      const take = Math.min(HEADER_SIZE - this.headerFill, chunk.length);
      this.header.set(chunk.subarray(0, take), this.headerFill);
      this.headerFill += take;
      at = take;
      if (this.headerFill >= 2) this.sizeAt(this.header, 0); // a bad size fails before the type arrives
      if (this.headerFill < HEADER_SIZE) return out;
      this.startBody(this.header);
    }
    if (this.body !== undefined) {
      const take = Math.min(this.body.length - this.bodyFill, chunk.length - at);
      this.body.set(chunk.subarray(at, at + take), this.bodyFill);
      this.bodyFill += take;
      at += take;
      if (this.bodyFill < this.body.length) return out;
      out.push(this.body);
      this.body = undefined;
      this.bodyFill = 0;
      this.headerFill = 0;
    }

    // At a message boundary: slice whole messages straight out of the chunk.
    while (at < chunk.length) {
      const left = chunk.length - at;
      const size = left >= 2 ? this.sizeAt(chunk, at) : HEADER_SIZE;
      if (left >= size) {
        out.push(chunk.subarray(at, at + size));
        at += size;
      } else if (left < HEADER_SIZE) {
        this.header.set(chunk.subarray(at), 0);
        this.headerFill = left;
        break;
      } else {
        this.startBody(chunk.subarray(at, at + HEADER_SIZE));
        this.body!.set(chunk.subarray(at + HEADER_SIZE), HEADER_SIZE);
        this.bodyFill = left;
        break;
      }
    }
    return out;
  }

  private sizeAt(bytes: Uint8Array, at: number): number {
    const size = (bytes[at] << 8) | bytes[at + 1];
    if (size < HEADER_SIZE) {
      this.dead = true;
      throw new ApiProtocolError("size-too-small", `size field ${size} is below ${HEADER_SIZE}`);
    }
    return size;
  }

  /** `header`: exactly the 4 header bytes of a message not yet complete. */
  private startBody(header: Uint8Array): void {
    const size = this.sizeAt(header, 0);
    this.body = new Uint8Array(size);
    this.body.set(header, 0);
    this.bodyFill = HEADER_SIZE;
    this.headerFill = HEADER_SIZE;
  }
}
