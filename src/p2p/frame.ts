/**
 * Framing on the P2P byte stream: every frame is length:u32 big-endian ‖ body, 1 ≤ length ≤ 128 KiB.
 * FrameReader is a pure push parser (chunks in, whole bodies out) with bounded memory. It checks a declared length
 * before allocating anything for it, and after any violation it is dead: a byte stream cannot be resynchronised.
 */
import { MAX_FRAME_BODY_BYTES } from "../defaults.ts";
import { P2PProtocolError } from "../errors.ts";

export const FRAME_HEADER_BYTES = 4;
/** Largest body: an ANNOUNCE's 65527 data bytes plus protobuf and AEAD overhead fit with room to spare. */
export const MAX_FRAME_BODY = MAX_FRAME_BODY_BYTES;

function checkLength(length: number): void {
  if (length === 0) throw new P2PProtocolError("empty-frame", "frame length 0");
  if (length > MAX_FRAME_BODY) throw new P2PProtocolError("frame-too-large", `frame length ${length} > ${MAX_FRAME_BODY}`);
}

/** Header ‖ body in one new buffer. Throws for bodies we would refuse to receive. */
export function encodeFrame(body: Uint8Array): Uint8Array {
  checkLength(body.length);
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  putLength(frame, body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Writes the header into the first 4 bytes of a buffer whose body already follows it (e.g. from
 * TransportCipher.encrypt(plaintext, FRAME_HEADER_BYTES)), saving a copy; returns the same buffer.
 */
export function writeFrameHeader(frame: Uint8Array): Uint8Array {
  const length = frame.length - FRAME_HEADER_BYTES;
  checkLength(length);
  putLength(frame, length);
  return frame;
}

/** The big-endian u32 length, byte by byte: a DataView per frame also made the engine allocate the frame's
 *  ArrayBuffer (a small typed array has none until someone asks for it). */
function putLength(frame: Uint8Array, length: number): void {
  frame[0] = length >>> 24;
  frame[1] = (length >>> 16) & 0xff;
  frame[2] = (length >>> 8) & 0xff;
  frame[3] = length & 0xff;
}

export class FrameReader {
  /** Header bytes collected so far when a header straddles chunks. */
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFill = 0;
  /** The body being assembled across chunks (allocated only once its length has been checked). */
  private body: Uint8Array | undefined;
  private bodyFill = 0;
  private dead = false;

  /** Bytes held for an incomplete frame (at most 4 + MAX_FRAME_BODY). */
  get buffered(): number {
    return this.body === undefined ? this.headerFill : FRAME_HEADER_BYTES + this.bodyFill;
  }

  /**
   * Feeds one chunk; returns the bodies it completed, in order. A body that lies inside one chunk is a view of that
   * chunk (no copy), so callers must not reuse chunk buffers they pass in (Bun's `data` chunks are fresh).
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.dead) throw new P2PProtocolError("reader-dead", "frame reader already failed");
    try {
      return this.consume(chunk);
    } catch (e) {
      this.dead = true;
      this.body = undefined;
      throw e;
    }
  }

  private consume(chunk: Uint8Array): Uint8Array[] {
    const bodies: Uint8Array[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.body === undefined) {
        let length: number;
        if (this.headerFill === 0 && chunk.length - pos >= FRAME_HEADER_BYTES) {
          length = readU32(chunk, pos);
          pos += FRAME_HEADER_BYTES;
        } else {
          const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, chunk.length - pos);
          this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
          this.headerFill += take;
          pos += take;
          if (this.headerFill < FRAME_HEADER_BYTES) break;
          this.headerFill = 0;
          length = readU32(this.header, 0);
        }
        checkLength(length);
        if (chunk.length - pos >= length) {
          bodies.push(chunk.subarray(pos, pos + length));
          pos += length;
          continue;
        }
        this.body = new Uint8Array(length);
        this.bodyFill = 0;
      }
      const take = Math.min(this.body.length - this.bodyFill, chunk.length - pos);
      this.body.set(chunk.subarray(pos, pos + take), this.bodyFill);
      this.bodyFill += take;
      pos += take;
      if (this.bodyFill === this.body.length) {
        bodies.push(this.body);
        this.body = undefined;
      }
    }
    return bodies;
  }
}

function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}
