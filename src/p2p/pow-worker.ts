/**
 * Bun Worker entry of the PoW pool (pow-pool.ts): searches one slice of the nonce space per job with PowKernel.
 *
 * Worker k of n searches the nonces whose high word is start.hi, start.hi + stride, … (low word 0..2^32-1 each), in
 * batches; between batches it reads the pool's shared control word and stops as soon as it no longer names its job
 * (another worker found a nonce, the job was cancelled, or a newer job started). It must never block on anything but
 * its own batch, and it never decides the outcome: it reports what it found and how many attempts it made.
 * Built into the single binary as an extra entry point (bun-notes.md); keep it free of main-thread imports.
 */
import { PowKernel } from "./pow-kernel.ts";

/** Attempts between two looks at the control word: a few milliseconds, so cancellation is prompt. */
export const POW_BATCH = 1 << 16;
const TWO_32 = 0x1_0000_0000;

export interface PowJobMessage {
  type: "solve";
  jobId: number;
  prefix: Uint8Array;
  difficulty: number;
  /** Low and high word of the first nonce to try. */
  startLo: number;
  startHi: number;
  /** Added to the high word each time the low word wraps: the number of workers sharing the job. */
  stride: number;
  /** Shared Int32Array(1): the id of the job the pool wants worked on now (0 = none). */
  control: Int32Array;
}

export type PowWorkerReply =
  | { type: "done"; jobId: number; found: true; lo: number; hi: number; attempts: number; ms: number }
  | { type: "done"; jobId: number; found: false; attempts: number; ms: number }
  | { type: "error"; jobId: number; message: string };

/** One job, run to a solution or until the control word says stop. Pure apart from the clock. */
export function runJob(job: PowJobMessage): PowWorkerReply {
  const started = performance.now();
  const kernel = new PowKernel(job.prefix);
  let lo = job.startLo >>> 0;
  let hi = job.startHi >>> 0;
  let attempts = 0;
  while (Atomics.load(job.control, 0) === job.jobId) {
    const n = Math.min(POW_BATCH, TWO_32 - lo);
    const i = kernel.searchWords(lo, hi, n, job.difficulty);
    if (i >= 0) {
      attempts += i + 1;
      return { type: "done", jobId: job.jobId, found: true, lo: lo + i, hi, attempts, ms: performance.now() - started };
    }
    attempts += n;
    lo += n;
    if (lo === TWO_32) {
      lo = 0;
      hi = (hi + job.stride) >>> 0;
    }
  }
  return { type: "done", jobId: job.jobId, found: false, attempts, ms: performance.now() - started };
}

declare const self: Worker;

// Only when loaded as a worker: importing this file for its types or runJob must not install a handler.
if (typeof Bun !== "undefined" && !Bun.isMainThread) {
  self.onmessage = (event: MessageEvent<PowJobMessage>) => {
    const job = event.data;
    let reply: PowWorkerReply;
    try {
      reply = runJob(job);
    } catch (err) {
      reply = { type: "error", jobId: job?.jobId ?? 0, message: err instanceof Error ? err.message : String(err) };
    }
    self.postMessage(reply);
  };
}
