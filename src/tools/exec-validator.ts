/**
 * Validators in any language, for `gossip subscribe --exec CMD`: CMD runs under /bin/sh once per NOTIFICATION with
 * the item's data on its standard input and GOSSIP_DATA_TYPE and GOSSIP_SIZE in its environment; exit status 0 means
 * valid, anything else (another status, a signal, a failure to start, or no exit before the deadline) means invalid.
 * At most `concurrency` commands run at once; the others wait in arrival order, and the deadline counts from the
 * notification's arrival, so a queue cannot hold an answer past it.
 *
 * Must never: let a command outlive its deadline (it runs in its own process group, killed whole with SIGKILL), let
 * a command's output mix into the subscriber's stdout (its stdout goes to our stderr), or throw out of a verdict (a
 * command that cannot start is a rejection with its reason).
 */
import { spawn, type ChildProcess } from "node:child_process";

export interface ExecValidatorOptions {
  command: string;
  concurrency: number;
  timeoutMs: number;
}

/** valid, or why not: `exit 3`, `signal SIGSEGV`, `timeout 4000 ms`, `spawn failed: …`. */
export type ExecVerdict = { valid: true } | { valid: false; reason: string };

interface Job {
  dataType: number;
  data: Uint8Array;
  deadline: number;
  settle: (verdict: ExecVerdict | undefined) => void;
}

export class ExecValidator {
  private readonly queue: Job[] = [];
  private readonly running = new Set<ChildProcess>();
  private stopped = false;
  private runs = 0;

  constructor(private readonly opts: ExecValidatorOptions) {
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new RangeError("concurrency must be ≥ 1");
  }

  /** The verdict on one item; undefined if the validator was stopped before it came (the item stays unanswered). */
  validate(dataType: number, data: Uint8Array): Promise<ExecVerdict | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    return new Promise((settle) => {
      this.queue.push({ dataType, data, deadline: Date.now() + this.opts.timeoutMs, settle });
      this.pump();
    });
  }

  /** Kills every running command's process group; queued and running items get no verdict. */
  stop(): void {
    this.stopped = true;
    for (const job of this.queue.splice(0)) job.settle(undefined);
    for (const child of this.running) killGroup(child);
  }

  stats(): { running: number; queued: number; runs: number } {
    return { running: this.running.size, queued: this.queue.length, runs: this.runs };
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.opts.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      const left = job.deadline - Date.now();
      if (left <= 0) job.settle({ valid: false, reason: `timeout ${this.opts.timeoutMs} ms (waited for a free slot)` });
      else this.run(job, left);
    }
  }

  private run(job: Job, timeLeftMs: number): void {
    this.runs++;
    let child: ChildProcess;
    try {
      child = spawn("/bin/sh", ["-c", this.opts.command], {
        detached: true, // its own process group, so a timeout kills the whole pipeline
        stdio: ["pipe", 2, "inherit"],
        env: { ...process.env, GOSSIP_DATA_TYPE: String(job.dataType), GOSSIP_SIZE: String(job.data.length) },
      });
    } catch (e) {
      job.settle({ valid: false, reason: `spawn failed: ${(e as Error).message}` });
      return;
    }
    this.running.add(child);
    let verdict: ExecVerdict | undefined;
    const timer = setTimeout(() => {
      verdict = { valid: false, reason: `timeout ${this.opts.timeoutMs} ms` };
      killGroup(child);
    }, timeLeftMs);
    const finish = (v: ExecVerdict) => {
      clearTimeout(timer);
      if (!this.running.delete(child)) return; // already finished (error and exit both fire)
      job.settle(this.stopped ? undefined : (verdict ?? v));
      this.pump();
    };
    child.on("error", (e) => finish({ valid: false, reason: `spawn failed: ${e.message}` }));
    child.on("exit", (code, signal) => finish(code === 0 ? { valid: true } : { valid: false, reason: code !== null ? `exit ${code}` : `signal ${signal}` }));
    child.stdin!.on("error", () => {}); // a command that exits without reading its input is not our failure
    child.stdin!.end(job.data);
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // the group is gone already
  }
}
