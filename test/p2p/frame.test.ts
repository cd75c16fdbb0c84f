// Framing: u32 BE length ‖ body, 1..128 KiB, parsed by a pure push reader with bounded memory.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { FRAME_HEADER_BYTES, FrameReader, MAX_FRAME_BODY, encodeFrame, writeFrameHeader } from "../../src/p2p/frame.ts";
import { codeOf } from "./error-code.ts";


function header(length: number): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, length, false);
  return h;
}

describe("encodeFrame", () => {
  test("big-endian length, then the body", () => {
    expect(encodeFrame(new Uint8Array([7, 8, 9]))).toEqual(new Uint8Array([0, 0, 0, 3, 7, 8, 9]));
    const big = encodeFrame(new Uint8Array(0x010203));
    expect(big.subarray(0, 4)).toEqual(new Uint8Array([0, 1, 2, 3]));
  });

  test("refuses what a reader would refuse", () => {
    expect(codeOf(() => encodeFrame(new Uint8Array(0)))).toBe("empty-frame");
    expect(encodeFrame(new Uint8Array(MAX_FRAME_BODY)).length).toBe(MAX_FRAME_BODY + 4);
    expect(codeOf(() => encodeFrame(new Uint8Array(MAX_FRAME_BODY + 1)))).toBe("frame-too-large");
  });

  test("writeFrameHeader fills the header of a buffer with headroom", () => {
    const buf = new Uint8Array(FRAME_HEADER_BYTES + 3);
    buf.set([1, 2, 3], 4);
    expect(writeFrameHeader(buf)).toEqual(encodeFrame(new Uint8Array([1, 2, 3])));
    expect(codeOf(() => writeFrameHeader(new Uint8Array(4)))).toBe("empty-frame");
  });
});

describe("FrameReader", () => {
  test("length 15 is read; 0 and 2^32-1 are refused from the header alone", () => {
    const body = Uint8Array.from({ length: 15 }, (_, i) => i);
    expect(new FrameReader().push(encodeFrame(body))).toEqual([body]);

    expect(codeOf(() => new FrameReader().push(header(0)))).toBe("empty-frame");

    // Only the 4 header bytes arrive: the reader refuses at once, without waiting for (or allocating) 4 GiB.
    const reader = new FrameReader();
    expect(codeOf(() => reader.push(header(0xffffffff)))).toBe("frame-too-large");
    expect(reader.buffered).toBe(0);
    expect(codeOf(() => reader.push(header(MAX_FRAME_BODY + 1)))).toBe("reader-dead");
  });

  test("a header split over chunks is checked as soon as it is whole", () => {
    const reader = new FrameReader();
    const h = header(MAX_FRAME_BODY + 1);
    expect(reader.push(h.subarray(0, 1))).toEqual([]);
    expect(reader.push(h.subarray(1, 3))).toEqual([]);
    expect(codeOf(() => reader.push(h.subarray(3)))).toBe("frame-too-large");
  });

  test("the largest frame is accepted, and the buffer never exceeds one frame", () => {
    const reader = new FrameReader();
    const frame = encodeFrame(new Uint8Array(MAX_FRAME_BODY).fill(5));
    let max = 0;
    for (let i = 0; i < frame.length; i += 4096) {
      const out = reader.push(frame.subarray(i, i + 4096));
      max = Math.max(max, reader.buffered);
      if (i + 4096 >= frame.length) expect(out.map((b) => b.length)).toEqual([MAX_FRAME_BODY]);
      else expect(out).toEqual([]);
    }
    expect(max).toBeLessThanOrEqual(MAX_FRAME_BODY + FRAME_HEADER_BYTES);
    expect(reader.buffered).toBe(0);
  });

  test("after an error the reader stays dead", () => {
    const reader = new FrameReader();
    expect(codeOf(() => reader.push(new Uint8Array([0, 0, 0, 0, 1])))).toBe("empty-frame");
    expect(codeOf(() => reader.push(encodeFrame(new Uint8Array([1]))))).toBe("reader-dead");
  });

  test("property: any split of any frame sequence yields exactly the bodies, in order", () => {
    const body = fc.oneof(
      { weight: 8, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 5000 }).map((n) => new Uint8Array(n).fill(n & 0xff)) },
    );
    fc.assert(
      fc.property(fc.array(body, { maxLength: 12 }), fc.array(fc.integer({ min: 0, max: 6000 }), { maxLength: 20 }), (bodies, cuts) => {
        const stream = Buffer.concat(bodies.map(encodeFrame));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const reader = new FrameReader();
        const out: Uint8Array[] = [];
        let prev = 0;
        for (const p of [...points, stream.length]) {
          out.push(...reader.push(new Uint8Array(stream.subarray(prev, p))));
          prev = p;
        }
        expect(out.map((b) => Buffer.from(b).toString("hex"))).toEqual(bodies.map((b) => Buffer.from(b).toString("hex")));
        expect(reader.buffered).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  test("property: merged frames in one chunk come out as zero-copy views, in order", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { minLength: 1, maxLength: 10 }), (bodies) => {
        const chunk = new Uint8Array(Buffer.concat(bodies.map(encodeFrame)));
        const out = new FrameReader().push(chunk);
        expect(out).toEqual(bodies);
        for (const b of out) expect(b.buffer).toBe(chunk.buffer);
      }),
    );
  });
});
