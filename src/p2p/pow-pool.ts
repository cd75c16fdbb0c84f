/**
 * A pool of Bun Workers that solves handshake proofs of work off the event loop (docs/pow.md).
 *
 * Workers are started lazily and reused; idle for `idleMs` they end, and the next solve starts them again. One job
 * runs at a time on all of them (later solves queue, FIFO):
 * worker k searches the nonces whose high word is k, k + size, …, so the slices never overlap. A shared control word
 * names the job the workers should be on; the first solution, a cancellation (AbortSignal, e.g. the handshake
 * deadline) or the next job changes it, and every worker stops within one batch. A solve resolves once every worker
 * of the job has reported, so `attempts` counts all hashes tried; an abort rejects at once. Idle workers are
 * unref'd, so an idle pool never keeps the process alive. This module must never block the event loop and never
 * returns a nonce that verifyPow rejects.
 */
import { POW_MAX_DIFFICULTY, POW_NONCE_BYTES, POW_PREFIX_BYTES, verifyPow } from "./pow-input.ts";
import { nonceBytes } from "./pow-kernel.ts";
import type { PowJobMessage, PowWorkerReply } from "./pow-worker.ts";
import { existsSync } from "node:fs";
import { POW_WORKER_IDLE_MS } from "../defaults.ts";
import { fileURLToPath } from "node:url";

export interface PowSolution {
  nonce: Uint8Array;
  /** Hashes tried by all workers for this job. */
  attempts: number;
  /** Wall time from the solve() call to the answer, queueing included. */
  ms: number;
}

export interface PowPoolStats {
  solved: number;
  /** Every hash the workers reported, solved, cancelled or superseded jobs alike. */
  attempts: number;
  /** attempts / wall time the pool had a job running: the pool's throughput. 0 before any work. */
  attemptsPerSecond: number;
}

export interface PowPoolOptions {
  /** Worker count; defaults to navigator.hardwareConcurrency. */
  size?: number;
  /** Where the worker entry is; defaults to powWorkerUrl(). */
  workerUrl?: URL;
  /** Idle workers end after this long (default POW_WORKER_IDLE_MS); Infinity keeps them. */
  idleMs?: number;
}

/**
 * The worker entry beside this file. In a `bun build --compile` binary every module's import.meta.url is the main
 * entry's, at the root of the entry points' common folder, and the worker entry (built to .js) sits in its own
 * subfolder there: look for it where this source tree puts it (src/cli.ts → src/p2p/pow-worker.ts).
 */
export function powWorkerUrl(): URL {
  // Keep this exact form: `bun build --compile` maps it to the worker entry point (bun-notes.md).
  const url = new URL("./pow-worker.ts", import.meta.url);
  if (!url.href.includes("/$bunfs/")) return url;
  for (const candidate of ["./pow-worker.js", "./p2p/pow-worker.js"]) {
    const inBinary = new URL(candidate, import.meta.url);
    if (existsSync(fileURLToPath(inBinary))) return inBinary;
  }
  return url;
}

interface Job {
  id: number;
  prefix: Uint8Array;
  difficulty: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  resolve: (solution: PowSolution) => void;
  reject: (reason: unknown) => void;
  calledAt: number;
  startedAt: number;
  /** Workers that have not yet reported on this job. */
  pending: number;
  attempts: number;
  found: Uint8Array | null;
  settled: boolean;
}

function closedError(): DOMException {
  return new DOMException("PowPool closed", "AbortError");
}

export class PowPool {
  readonly #size: number;
  readonly #workerUrl: URL;
  #workers: Worker[] | null = null;
  readonly #idleMs: number;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Workers told to end (idle), until their threads have: close() waits for them too. */
  #retiring: Promise<void>[] = [];
  /** The id of the job workers should be on (0 = none); read by workers between batches. */
  readonly #control = new Int32Array(new SharedArrayBuffer(4));
  readonly #queue: Job[] = [];
  /** Jobs handed to workers whose replies are still due, by id. */
  readonly #running = new Map<number, Job>();
  #active: Job | null = null;
  #nextId = 1;
  #closed = false;
  #solved = 0;
  #attempts = 0;
  #busyMs = 0;

  constructor(options: PowPoolOptions = {}) {
    const size = options.size ?? navigator.hardwareConcurrency ?? 1;
    if (!Number.isInteger(size) || size < 1 || size > 1024) throw new RangeError(`PowPool: bad size ${size}`);
    this.#size = size;
    this.#workerUrl = options.workerUrl ?? powWorkerUrl();
    this.#idleMs = options.idleMs ?? POW_WORKER_IDLE_MS;
  }

  /** Worker threads running now (0 before the first solve and after an idle spell). */
  get workerCount(): number {
    return this.#workers?.length ?? 0;
  }

  get size(): number {
    return this.#size;
  }

  /** Jobs whose workers have not all reported back yet (a cancelled job stays here until they have stopped). */
  get running(): number {
    return this.#running.size;
  }

  /** Finds a nonce with ≥ `difficulty` leading zero bits of BLAKE3(prefix ‖ nonce). Rejects with signal.reason. */
  solve(prefix: Uint8Array, difficulty: number, signal?: AbortSignal): Promise<PowSolution> {
    const calledAt = performance.now();
    if (!(prefix instanceof Uint8Array) || prefix.length !== POW_PREFIX_BYTES) {
      return Promise.reject(new RangeError(`PowPool: prefix must be ${POW_PREFIX_BYTES} bytes`));
    }
    if (!Number.isInteger(difficulty) || difficulty < 0 || difficulty > POW_MAX_DIFFICULTY) {
      return Promise.reject(new RangeError(`PowPool: difficulty must be an integer in 0..${POW_MAX_DIFFICULTY}`));
    }
    if (this.#closed) return Promise.reject(closedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    // Every nonce meets difficulty 0: no hash, no worker.
    if (difficulty === 0) {
      this.#solved++;
      return Promise.resolve({ nonce: new Uint8Array(POW_NONCE_BYTES), attempts: 0, ms: performance.now() - calledAt });
    }
    return new Promise<PowSolution>((resolve, reject) => {
      const job: Job = {
        id: this.#nextId++,
        prefix: prefix.slice(),
        difficulty,
        signal,
        onAbort: undefined,
        resolve,
        reject,
        calledAt,
        startedAt: 0,
        pending: 0,
        attempts: 0,
        found: null,
        settled: false,
      };
      if (signal) {
        job.onAbort = () => this.#fail(job, signal.reason);
        signal.addEventListener("abort", job.onAbort, { once: true });
      }
      this.#queue.push(job);
      this.#pump();
    });
  }

  stats(): PowPoolStats {
    return {
      solved: this.#solved,
      attempts: this.#attempts,
      attemptsPerSecond: this.#busyMs > 0 ? (this.#attempts / this.#busyMs) * 1000 : 0,
    };
  }

  /** Rejects every open solve, stops the workers and waits until their threads have ended. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const job of [...this.#queue]) this.#fail(job, closedError());
    if (this.#active) this.#fail(this.#active, closedError());
    for (const job of this.#running.values()) this.#fail(job, closedError());
    Atomics.store(this.#control, 0, 0);
    clearTimeout(this.#idleTimer);
    const workers = this.#workers ?? [];
    this.#workers = null;
    await Promise.all([...workers.map((w) => this.#terminate(w)), ...this.#retiring]);
  }

  #terminate(worker: Worker): Promise<void> {
    return new Promise<void>((resolve) => {
      worker.addEventListener("close", () => resolve(), { once: true });
      worker.terminate();
    });
  }

  #spawn(): Worker[] {
    if (this.#workers) return this.#workers;
    const workers: Worker[] = [];
    for (let k = 0; k < this.#size; k++) {
      const worker = new Worker(this.#workerUrl);
      worker.onmessage = (event: MessageEvent<PowWorkerReply>) => this.#onReply(event.data);
      worker.onerror = (event: ErrorEvent) => this.#onCrash(event);
      workers.push(worker);
    }
    this.#workers = workers;
    return workers;
  }

  #pump(): void {
    if (this.#active || this.#closed) return this.#updateRef();
    const job = this.#queue.shift();
    if (!job) return this.#updateRef();
    const workers = this.#spawn();
    this.#active = job;
    this.#running.set(job.id, job);
    job.startedAt = performance.now();
    job.pending = workers.length;
    Atomics.store(this.#control, 0, job.id);
    workers.forEach((worker, k) => {
      const message: PowJobMessage = {
        type: "solve",
        jobId: job.id,
        prefix: job.prefix,
        difficulty: job.difficulty,
        startLo: 0,
        startHi: k,
        stride: workers.length,
        control: this.#control,
      };
      worker.postMessage(message);
    });
    this.#updateRef();
  }

  #onReply(reply: PowWorkerReply): void {
    const job = this.#running.get(reply.jobId);
    if (!job) return;
    job.pending--;
    if (reply.type === "error") {
      this.#fail(job, new Error(`PoW worker failed: ${reply.message}`));
    } else {
      job.attempts += reply.attempts;
      this.#attempts += reply.attempts;
      if (reply.found && !job.found && !job.settled) {
        job.found = nonceBytes(reply.lo, reply.hi);
        this.#release(job); // stop the other workers now, start the next job
      }
    }
    if (job.pending > 0) return;
    this.#running.delete(job.id);
    this.#busyMs += performance.now() - job.startedAt;
    if (job.settled) return this.#updateRef();
    if (job.found && verifyPow(job.prefix, job.found, job.difficulty)) {
      this.#settle(job);
      this.#solved++;
      job.resolve({ nonce: job.found, attempts: job.attempts, ms: performance.now() - job.calledAt });
    } else if (job.found) {
      this.#fail(job, new Error("PoW kernel returned a nonce that verifyPow rejects"));
    } else {
      // Every worker stopped without a solution and nobody cancelled: only an exhausted space does that.
      this.#fail(job, new Error("PoW nonce space exhausted"));
    }
    this.#updateRef();
  }

  /** The job no longer needs the workers: point them at the next one (or none). */
  #release(job: Job): void {
    Atomics.compareExchange(this.#control, 0, job.id, 0);
    if (this.#active === job) {
      this.#active = null;
      this.#pump();
    }
  }

  #settle(job: Job): void {
    job.settled = true;
    if (job.onAbort) job.signal?.removeEventListener("abort", job.onAbort);
  }

  #fail(job: Job, reason: unknown): void {
    if (job.settled) return;
    this.#settle(job);
    const queued = this.#queue.indexOf(job);
    if (queued >= 0) this.#queue.splice(queued, 1);
    this.#release(job);
    job.reject(reason);
    this.#updateRef();
  }

  /** A worker thread died: no reply will come from it, so fail what it was part of and start afresh. */
  #onCrash(event: ErrorEvent): void {
    const workers = this.#workers ?? [];
    this.#workers = null;
    Atomics.store(this.#control, 0, 0);
    const err = new Error(`PoW worker crashed: ${event.message}`);
    for (const job of [...this.#running.values()]) {
      this.#running.delete(job.id);
      this.#fail(job, err);
    }
    for (const worker of workers) worker.terminate();
    this.#pump();
  }

  /** Workers keep the process alive only while a solve is open; idle, they end after idleMs. */
  #updateRef(): void {
    if (!this.#workers) return;
    const busy = this.#active !== null || this.#queue.length > 0 || [...this.#running.values()].some((j) => !j.settled);
    for (const worker of this.#workers) (busy ? worker.ref() : worker.unref());
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (!busy && Number.isFinite(this.#idleMs)) {
      this.#idleTimer = setTimeout(() => this.#retire(), this.#idleMs);
      this.#idleTimer.unref();
    }
  }

  /** Ends idle workers (none busy: a job still running, even cancelled, keeps them until it reported). */
  #retire(): void {
    this.#idleTimer = undefined;
    if (!this.#workers || this.#closed || this.#active !== null || this.#queue.length > 0 || this.#running.size > 0) return;
    const workers = this.#workers;
    this.#workers = null;
    for (const w of workers) {
      w.onmessage = null; // nothing they could still say concerns a job
      w.onerror = null;
    }
    const ended = Promise.all(workers.map((w) => this.#terminate(w))).then(() => {
      this.#retiring = this.#retiring.filter((p) => p !== ended);
    });
    this.#retiring.push(ended);
  }
}
