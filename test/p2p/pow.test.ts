import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { leadingZeroBits, powDigest, verifyPow } from "../../src/p2p/pow-input.ts";
import { PowKernel, leadingBitsMask, nonceBytes, nonceWords } from "../../src/p2p/pow-kernel.ts";
import { PowPool } from "../../src/p2p/pow-pool.ts";
import { runJob, type PowJobMessage } from "../../src/p2p/pow-worker.ts";
import { generate as generateTsKernel } from "../../scripts/gen-pow-kernel.ts";
import { generate as generateWasmKernel } from "../../scripts/gen-pow-wasm.ts";

const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const TWO_32 = 0x1_0000_0000;

/** A digest whose first `zeros` bits are zero and whose next bit (if any) is one; the rest random. */
function digestWithLeadingZeros(zeros: number): Uint8Array {
  const d = random(32);
  for (let bit = 0; bit < zeros; bit++) d[bit >> 3]! &= ~(0x80 >> (bit & 7));
  if (zeros < 256) d[zeros >> 3]! |= 0x80 >> (zeros & 7);
  return d;
}

/** Brute force: first offset in [start, start + count) of (lo, hi) nonces meeting `difficulty`, or -1. */
function firstMatch(prefix: Uint8Array, start: bigint, count: number, difficulty: number): number {
  for (let i = 0; i < count; i++) {
    const n = (start + BigInt(i)) & 0xffffffffffffffffn;
    const [lo, hi] = nonceWords(n);
    if (leadingZeroBits(powDigest(prefix, nonceBytes(lo, hi))) >= difficulty) return i;
  }
  return -1;
}

/** The reason a promise rejects with (a handler attached now, so an early rejection is never "unhandled"). */
function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (reason: unknown) => reason,
  );
}

async function waitFor(cond: () => boolean, what: string, ms = 4_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

describe("generated kernels", () => {
  test("the committed files are what their generators emit", async () => {
    const read = (name: string) => Bun.file(join(import.meta.dir, "../../src/p2p", name)).text();
    expect(await read("pow-kernel.gen.ts")).toBe(generateTsKernel());
    expect(await read("pow-wasm.gen.ts")).toBe(generateWasmKernel());
  });
});

describe("PowKernel digest", () => {
  // Each comparison is its own check (a loop counter compared with the loop's own bound could not fail).
  test("equals @noble/hashes blake3 for thousands of random prefixes and nonces", () => {
    for (let t = 0; t < 1500; t++) {
      const prefix = random(128);
      const kernel = new PowKernel(prefix);
      for (const nonce of [random(8), random(8)]) expect(toHex(kernel.digest(nonce))).toBe(toHex(powDigest(prefix, nonce)));
    }
  }, 20_000);

  test("equals the reference at the nonce and prefix extremes", () => {
    for (const prefix of [new Uint8Array(128), new Uint8Array(128).fill(0xff), random(128)]) {
      const kernel = new PowKernel(prefix);
      for (const [lo, hi] of [[0, 0], [TWO_32 - 1, 0], [0, 1], [TWO_32 - 1, TWO_32 - 1], [0x80000000, 0x7fffffff]]) {
        const nonce = nonceBytes(lo!, hi!);
        expect(toHex(kernel.digestWords(lo!, hi!))).toBe(toHex(powDigest(prefix, nonce)));
      }
    }
  });

  test("reads the prefix from a subarray at an offset", () => {
    const backing = random(300);
    const prefix = backing.subarray(7, 135);
    const nonce = backing.subarray(200, 208);
    expect(toHex(new PowKernel(prefix).digest(nonce))).toBe(toHex(powDigest(prefix.slice(), nonce.slice())));
  });

  test("rejects a wrong-sized prefix or nonce", () => {
    expect(() => new PowKernel(new Uint8Array(127))).toThrow(RangeError);
    expect(() => new PowKernel(random(128)).digest(new Uint8Array(7))).toThrow(RangeError);
    expect(() => new PowKernel(random(128)).searchWords(0, 0, 10, 65)).toThrow(RangeError);
    expect(() => new PowKernel(random(128)).searchWords(0, 0, 10, 1.5)).toThrow(RangeError);
  });
});

describe("leading zero bits", () => {
  test("the word-0 mask agrees with leadingZeroBits at every boundary 0…32, across byte edges", () => {
    for (let zeros = 0; zeros <= 40; zeros++) {
      for (let rep = 0; rep < 8; rep++) {
        const digest = digestWithLeadingZeros(zeros);
        expect(leadingZeroBits(digest)).toBe(zeros);
        const w0 = new DataView(digest.buffer).getUint32(0, true) | 0;
        for (let d = 0; d <= 32; d++) expect((w0 & leadingBitsMask(d)) === 0).toBe(zeros >= d);
      }
    }
  });

  test("the engine here runs the SIMD kernel by default", () => {
    // Bun's engine has wasm SIMD; if this ever fails the pool silently runs the slower TypeScript loop.
    expect(new PowKernel(random(128)).impl).toBe("wasm");
  });

  for (const impl of ["ts", "wasm"] as const) {
    describe(`search (${impl})`, () => {
      test("finds the first nonce meeting each difficulty 0…12, none when the range stops just short", () => {
        const prefix = random(128);
        const kernel = new PowKernel(prefix, impl);
        expect(kernel.impl).toBe(impl);
        for (let d = 0; d <= 12; d++) {
          const hi = d * 977;
          const lo = 1000 + d; // not a multiple of 4: the SIMD lanes start off-grid
          const i = kernel.searchWords(lo, hi, 1 << 16, d);
          expect(i).toBe(firstMatch(prefix, BigInt(lo) + (BigInt(hi) << 32n), i + 1, d));
          // The match is the last nonce of the range, or just past its end (masked SIMD lanes must not report it).
          expect(kernel.searchWords(lo, hi, i + 1, d)).toBe(i);
          expect(kernel.searchWords(lo, hi, i, d)).toBe(-1);
        }
      });

      test("counts across the low-word wrap and the 2^64 wrap", () => {
        const prefix = random(128);
        const kernel = new PowKernel(prefix, impl);
        for (const d of [2, 4, 6]) {
          const i = kernel.searchWords(TWO_32 - 41, 3, 400, d);
          expect(i).toBe(firstMatch(prefix, BigInt(TWO_32 - 41) + 3n * BigInt(TWO_32), 400, d));
          const top = (1n << 64n) - 21n;
          const j = firstMatch(prefix, top, 400, d);
          const expected = j < 0 ? null : toHex(nonceBytes(...nonceWords((top + BigInt(j)) & 0xffffffffffffffffn)));
          const nonce = kernel.search(top, 400, d);
          expect(nonce === null ? null : toHex(nonce)).toBe(expected);
        }
      });

      test("difficulties past 32 bits find nothing in a small range and never return a wrong nonce", () => {
        const kernel = new PowKernel(random(128), impl);
        expect(kernel.searchWords(0, 0, 1 << 16, 33)).toBe(-1);
        expect(kernel.search(5, 1 << 16, 64)).toBeNull();
      });
    });
  }
});

describe("pow-worker runJob", () => {
  test("returns a verified nonce from its own slice and stops when the control word names another job", () => {
    const control = new Int32Array(new SharedArrayBuffer(4));
    const prefix = random(128);
    const job: PowJobMessage = {
      type: "solve",
      jobId: 7,
      prefix,
      difficulty: 8,
      startLo: 0,
      startHi: 5,
      stride: 2,
      control,
    };
    Atomics.store(control, 0, 7);
    const reply = runJob(job);
    if (reply.type !== "done" || !reply.found) throw new Error("expected a solution");
    expect(reply.hi).toBe(5);
    expect(reply.attempts).toBe(reply.lo + 1);
    expect(verifyPow(prefix, nonceBytes(reply.lo, reply.hi), 8)).toBe(true);
    Atomics.store(control, 0, 8);
    expect(runJob(job)).toMatchObject({ type: "done", found: false, attempts: 0 });
  });
});

describe("PowPool", () => {
  const pool = new PowPool({ size: 2 });
  afterAll(() => pool.close());

  test("solves difficulties 0…10 with nonces verifyPow accepts", async () => {
    for (let d = 0; d <= 10; d++) {
      const prefix = random(128);
      const solution = await pool.solve(prefix, d);
      expect(solution.nonce.length).toBe(8);
      expect(verifyPow(prefix, solution.nonce, d)).toBe(true);
      if (d > 0) expect(solution.attempts).toBeGreaterThan(0);
    }
    const stats = pool.stats();
    expect(stats.solved).toBe(11);
    expect(stats.attemptsPerSecond).toBeGreaterThan(0);
  });

  test("an abort rejects with the signal's reason, stops the workers, and the pool solves afterwards", async () => {
    // 48 bits: never solved in this test's lifetime, so only the abort (a handshake-style deadline) can end it.
    const pending = pool.solve(random(128), 48, AbortSignal.timeout(50));
    const rejected = rejection(pending);
    expect(pool.running).toBe(1);
    expect(await rejected).toHaveProperty("name", "TimeoutError");
    // The workers stop on their own (no newer job supersedes this one) and report back.
    await waitFor(() => pool.running === 0, "the workers to stop");
    const prefix = random(128);
    expect(verifyPow(prefix, (await pool.solve(prefix, 10)).nonce, 10)).toBe(true);
  });

  test("an already-aborted signal rejects without work", async () => {
    const reason = new Error("too late");
    await expect(pool.solve(random(128), 10, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(pool.running).toBe(0);
  });

  test("concurrent solves both succeed, and a queued solve can be cancelled", async () => {
    const [p1, p2, p3] = [random(128), random(128), random(128)];
    const controller = new AbortController();
    const a = pool.solve(p1, 11);
    const cancelled = pool.solve(p3, 48, controller.signal);
    const b = pool.solve(p2, 11);
    const rejected = rejection(cancelled);
    controller.abort(new Error("cancelled in queue"));
    const [ra, rb] = await Promise.all([a, b]);
    expect(verifyPow(p1, ra.nonce, 11)).toBe(true);
    expect(verifyPow(p2, rb.nonce, 11)).toBe(true);
    expect(await rejected).toHaveProperty("message", "cancelled in queue");
  });

  test("rejects bad arguments", async () => {
    await expect(pool.solve(new Uint8Array(64), 8)).rejects.toThrow(RangeError);
    await expect(pool.solve(random(128), 65)).rejects.toThrow(RangeError);
    await expect(pool.solve(random(128), -1)).rejects.toThrow(RangeError);
  });

  test("close rejects open solves and later ones", async () => {
    const own = new PowPool({ size: 1 });
    const open = own.solve(random(128), 48);
    await waitFor(() => own.running === 1, "the job to start");
    const rejected = rejection(open);
    await own.close();
    expect(await rejected).toHaveProperty("message", "PowPool closed");
    await expect(own.solve(random(128), 4)).rejects.toThrow("PowPool closed");
  });

  test("idle workers end after idleMs, a busy pool keeps them, and the next solve starts them again", async () => {
    const own = new PowPool({ size: 2, idleMs: 100 });
    expect(own.workerCount).toBe(0); // lazy
    await own.solve(random(128), 6);
    expect(own.workerCount).toBe(2);
    await waitFor(() => own.workerCount === 0, "the idle workers to end");
    // A long solve outlives idleMs: the workers stay while it runs (2.5 idle periods: the check of a non-event).
    const long = own.solve(random(128), 48);
    await waitFor(() => own.running === 1, "the long job to start");
    await Bun.sleep(250);
    expect(own.workerCount).toBe(2);
    const rejected = rejection(long);
    await own.close();
    expect(await rejected).toHaveProperty("message", "PowPool closed");
    // And after an idle spell a pool solves again, with fresh workers.
    const again = new PowPool({ size: 1, idleMs: 50 });
    const prefix = random(128);
    await again.solve(prefix, 4);
    await waitFor(() => again.workerCount === 0, "the idle worker to end");
    const solution = await again.solve(prefix, 8);
    expect(verifyPow(prefix, solution.nonce, 8)).toBe(true);
    expect(again.workerCount).toBe(1);
    await again.close();
  });

  test("a crashed worker fails its solve and the pool starts afresh", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pow-crash-"));
    const crashing = new PowPool({ size: 2, workerUrl: new URL(`file://${join(dir, "crashing-worker.ts")}`) });
    try {
      // The real worker, except that a prefix starting with 0xee makes it throw (an uncaught error in the thread).
      writeFileSync(
        join(dir, "crashing-worker.ts"),
        `import ${JSON.stringify(join(import.meta.dir, "../../src/p2p/pow-worker.ts"))};\n` +
          `const real = self.onmessage;\n` +
          `self.onmessage = (e) => { if (e.data.prefix[0] === 0xee) throw new Error("boom"); real(e); };\n`,
      );
      const poison = new Uint8Array(128).fill(0xee);
      expect(await rejection(crashing.solve(poison, 8))).toHaveProperty("message", expect.stringContaining("boom"));
      const prefix = random(128);
      prefix[0] = 1;
      expect(verifyPow(prefix, (await crashing.solve(prefix, 8)).nonce, 8)).toBe(true);
    } finally {
      await crashing.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an idle pool does not keep the process alive", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pow-unref-"));
    try {
      const script = join(dir, "idle.ts");
      const poolPath = join(import.meta.dir, "../../src/p2p/pow-pool.ts");
      writeFileSync(
        script,
        `import { PowPool } from ${JSON.stringify(poolPath)};\n` +
          `const pool = new PowPool({ size: 1 });\n` +
          `const s = await pool.solve(new Uint8Array(128), 6);\n` +
          `console.log("solved", s.nonce.length);\n`,
      );
      const child = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "pipe" });
      // An idle pool that kept the process alive would hang the child: kill it well inside the test's budget.
      const killer = setTimeout(() => child.kill(), 8_000);
      const code = await child.exited;
      clearTimeout(killer);
      expect(await new Response(child.stdout).text()).toBe("solved 8\n");
      expect(code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 15_000);
});
