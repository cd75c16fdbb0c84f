/**
 * Just enough of the WebAssembly binary format to emit small hand-written modules (scripts/gen-blake3-wasm.ts,
 * scripts/gen-aead-wasm.ts; scripts/gen-pow-wasm.ts uses its encoding helpers): LEB128, sections, a module of functions of one type each, and the instructions those
 * generators use. Pure: bytes in, bytes out.
 */

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

export const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
export const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
export const name = (s: string) => vec([...new TextEncoder().encode(s)].map((b) => [b]));

export const I32 = 0x7f;
export const I64 = 0x7e;

export interface WasmFunction {
  name: string;
  params: number[];
  /** Local declarations after the parameters: [count, type] pairs. */
  locals: [number, number][];
  code: number[];
}

/** A module exporting `memory` (`pages` initial pages) and every function, none of which returns a value. */
export function wasmModule(pages: number, functions: WasmFunction[]): Uint8Array {
  const types = section(1, vec(functions.map((f) => [0x60, ...vec(f.params.map((p) => [p])), ...vec([])])));
  const funcs = section(3, vec(functions.map((_, i) => uleb(i))));
  const memory = section(5, vec([[0x00, ...uleb(pages)]]));
  const exports = section(7, vec([[...name("memory"), 0x02, 0], ...functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)])]));
  const bodies = functions.map((f) => {
    const body = [...vec(f.locals.map(([count, type]) => [...uleb(count), type])), ...f.code, 0x0b];
    return [...uleb(body.length), ...body];
  });
  const code = section(10, vec(bodies));
  return Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...funcs, ...memory, ...exports, ...code]);
}

/** Instructions (each an array of bytes). Loads and stores take a byte offset; alignment hints are natural. */
export const op = {
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (n: number) => [0x41, ...sleb(n | 0)],
  i64: (n: number | bigint) => [0x42, ...sleb(n)],
  load: (offset: number) => [0x28, 2, ...uleb(offset)],
  store: (offset: number) => [0x36, 2, ...uleb(offset)],
  /** i64.load32_u and i64.store32 (alignment hint 0: Poly1305 reads words at odd offsets). */
  load32u64: (offset: number) => [0x35, 0, ...uleb(offset)],
  store32from64: (offset: number) => [0x3e, 0, ...uleb(offset)],
  add: [0x6a],
  sub: [0x6b],
  mul: [0x6c],
  and: [0x71],
  or: [0x72],
  xor: [0x73],
  shl: [0x74],
  shrU: [0x76],
  rotl: [0x77],
  rotr: [0x78],
  eqz: [0x45],
  ltU: [0x49],
  gtU: [0x4b],
  leU: [0x4d],
  geU: [0x4f],
  add64: [0x7c],
  sub64: [0x7d],
  mul64: [0x7e],
  and64: [0x83],
  or64: [0x84],
  shl64: [0x86],
  shrU64: [0x88],
  geS64: [0x59],
  extendU: [0xad],
  select: [0x1b],
  call: (f: number) => [0x10, ...uleb(f)],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  br: (label: number) => [0x0c, ...uleb(label)],
  brIf: (label: number) => [0x0d, ...uleb(label)],
  end: [0x0b],
};

export const V128 = 0x7b;
const simd = (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm];

/** The SIMD (128-bit) instructions the generators use; i32x4 lanes unless named otherwise. */
export const simdOp = {
  load: (offset: number) => simd(0x00, 4, ...uleb(offset)),
  store: (offset: number) => simd(0x0b, 4, ...uleb(offset)),
  /** A v128 constant of four i32 lanes. */
  const: (lanes: number[]) => simd(0x0c, ...lanes.flatMap((x) => [x & 255, (x >>> 8) & 255, (x >>> 16) & 255, (x >>> 24) & 255])),
  /** i8x16.shuffle of the two vectors on the stack (indices 0–15: the first, 16–31: the second). */
  shuffle: (bytes: number[]) => simd(0x0d, ...bytes),
  splat: simd(0x11),
  xor: simd(0x51),
  or: simd(0x50),
  shl: simd(0xab),
  shrU: simd(0xad),
  add: simd(0xae),
};
