/**
 * The table of outstanding NOTIFICATIONs: 16-bit message IDs handed to connections, grouped in rounds (one item's
 * NOTIFICATIONs to all its subscribers), each round settled once, with one verdict, by its answers or its timeout.
 * The table is shared fairly: each of the `sharers` subscribed connections may hold an equal share of it, so a module
 * that stops answering costs the items of other modules nothing (docs/decisions.md, "Validation fairness"). One that
 * let a NOTIFICATION time out is "stalled" until it answers anything again: waiting for it is pointless.
 *
 * No sockets: the server tells it what it sent and what came back; time only through the injected timers.
 * Must never: hand out an ID still outstanding on this node, hold more than `maxOutstanding` IDs or give a connection
 * more than its share, apply an answer to an ID other than the one it names or from a connection it was not given
 * to, settle a round twice, or remember more than `lateAnswerMemory` late IDs per connection.
 */
import { Fifo } from "../util/fifo.ts";

/** Every subscriber said valid; one said invalid; or no verdict (timeout, a subscriber went away, no room). */
export type ValidationVerdict = "valid" | "invalid" | "unanswered";

/** What an answer from a connection turned out to be: the answer awaited, a late one (ignored), or a violation. */
export type AnswerOutcome = "applied" | "late" | "unknown";

export interface ValidationTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Milliseconds, monotonic (for how long a round took). */
  now(): number;
}

export const realTimers: ValidationTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as Timer | undefined),
  now: () => performance.now(),
};

export interface ValidationTableOptions {
  /** Node-wide bound on IDs awaiting an answer; at most 65535 (IDs are 16 bits). */
  maxOutstanding: number;
  /** A round still unanswered after this settles "unanswered". */
  timeoutMs: number;
  /** Timed-out IDs remembered per connection, so that their late answers are ignored rather than violations. */
  lateAnswerMemory: number;
  timers?: ValidationTimers;
}

/** Called once when a round settles, with how long it took. */
export type RoundListener = (verdict: ValidationVerdict, ms: number) => void;

/** One round, as the server sees it: open while NOTIFICATIONs are being issued, then settled once. */
export interface ValidationRound {
  readonly settled: boolean;
}

interface Round extends ValidationRound {
  settled: boolean;
  ids: Set<number>;
  /** Set for an item from a peer: the first answer that is not "valid" decides it. Unset for local announce copies,
   *  whose answers are consumed but decide nothing. */
  listener: RoundListener | undefined;
  /** seal() was called: no more IDs will join, so the last answer may settle it. */
  sealed: boolean;
  startedAt: number;
}

interface ConnState {
  /** IDs given to the connection whose answer is awaited. */
  awaiting: Set<number>;
  /** IDs given to it that timed out or stopped mattering; oldest first. */
  late: Set<number>;
  /** One of its IDs timed out and it has not answered anything since. */
  stalled: boolean;
}

export class ValidationTable<C> {
  private readonly maxOutstanding: number;
  private readonly timeoutMs: number;
  private readonly lateAnswerMemory: number;
  private readonly timers: ValidationTimers;
  private readonly entries = new Map<number, { conn: C; round: Round }>();
  private readonly conns = new Map<C, ConnState>();
  private nextId = 0;
  private sharers = 1;
  /** Rounds in the order they opened, which is their timeouts' order (one timeout for all): one timer, armed for the
   *  oldest unsettled round, instead of a timer per round (a setTimeout and a clearTimeout per item and subscriber
   *  set). Settled rounds leave from the head; those behind an unsettled one wait at most the timeout. */
  private readonly deadlines = new Fifo<Round>();
  private timer: unknown = undefined;

  constructor(options: ValidationTableOptions) {
    this.maxOutstanding = Math.max(0, Math.min(options.maxOutstanding, 0xffff));
    this.timeoutMs = options.timeoutMs;
    this.lateAnswerMemory = options.lateAnswerMemory;
    this.timers = options.timers ?? realTimers;
  }

  /** IDs awaiting an answer now. */
  get outstanding(): number {
    return this.entries.size;
  }

  /** Whether `n` more IDs fit under the node-wide bound now (shares aside). */
  hasRoom(n: number): boolean {
    return this.entries.size + n <= this.maxOutstanding;
  }

  /** How many connections share the table (the server's subscribed connections); each gets 1/n of it. */
  setSharers(n: number): void {
    this.sharers = Math.max(1, n);
  }

  /** The IDs one connection may hold at once: an equal share of the bound. */
  get share(): number {
    return Math.max(1, Math.floor(this.maxOutstanding / this.sharers));
  }

  /** IDs awaiting an answer from `conn`. */
  awaitedFrom(conn: C): number {
    return this.conns.get(conn)?.awaiting.size ?? 0;
  }

  /** Whether `conn` let a NOTIFICATION time out and has not answered since. */
  isStalled(conn: C): boolean {
    return this.conns.get(conn)?.stalled ?? false;
  }

  /** Whether one more ID for each of `conns` fits now: under the bound, and each within its share. */
  hasRoomFor(conns: readonly C[]): boolean {
    if (!this.hasRoom(conns.length)) return false;
    const share = this.share;
    for (const conn of conns) if (this.awaitedFrom(conn) >= share) return false;
    return true;
  }

  /** A new round; `listener` set = an item whose verdict someone awaits. Issue its IDs, then seal() it. */
  open(listener?: RoundListener): ValidationRound {
    const round: Round = { settled: false, ids: new Set(), listener, sealed: false, startedAt: this.timers.now() };
    this.deadlines.push(round);
    if (this.timer === undefined) this.timer = this.timers.setTimeout(() => this.expire(), this.timeoutMs);
    return round;
  }

  /**
   * The next free ID, now awaited from `conn` in `round`. Sequential, skipping outstanding IDs, so an ID comes back
   * as late as possible. The caller has checked hasRoomFor([conn]) and that the round is not settled.
   */
  issue(handle: ValidationRound, conn: C): number {
    const round = handle as Round;
    if (round.settled || round.sealed) throw new Error("ValidationTable: issue() on a settled or sealed round");
    if (!this.hasRoomFor([conn])) throw new Error("ValidationTable: issue() without room");
    let id = this.nextId;
    while (this.entries.has(id)) id = (id + 1) & 0xffff;
    this.nextId = (id + 1) & 0xffff;
    this.entries.set(id, { conn, round });
    round.ids.add(id);
    const state = this.stateOf(conn);
    state.awaiting.add(id);
    state.late.delete(id); // a new exchange under this ID supersedes an old, timed-out one
    return id;
  }

  /** No more IDs join the round; a round that issued none (its subscribers went away meanwhile) settles "unanswered". */
  seal(handle: ValidationRound): void {
    const round = handle as Round;
    round.sealed = true;
    if (!round.settled && round.ids.size === 0) this.settle(round, "unanswered");
  }

  /** A VALIDATION from `conn`. "unknown": the ID was never given to it, or already answered (a violation). */
  answer(conn: C, id: number, valid: boolean): AnswerOutcome {
    const state = this.conns.get(conn);
    if (this.entries.get(id)?.conn === conn) {
      state!.stalled = false; // it answers again
      this.resolve(id, valid ? "valid" : "invalid");
      return "applied";
    }
    if (state?.late.delete(id)) {
      state.stalled = false;
      return "late";
    }
    return "unknown";
  }

  /** The connection is gone: what it still owed counts as "unanswered", and its late IDs are forgotten. */
  forget(conn: C): void {
    const state = this.conns.get(conn);
    if (state === undefined) return;
    this.conns.delete(conn);
    for (const id of [...state.awaiting]) this.resolve(id, "unanswered");
  }

  /** The timer: rounds past their timeout settle "unanswered"; it is armed again for the next unsettled one. */
  private expire(): void {
    this.timer = undefined;
    const now = this.timers.now();
    for (let head = this.deadlines.peek(); head !== undefined; head = this.deadlines.peek()) {
      if (!head.settled && head.startedAt + this.timeoutMs > now) break;
      this.deadlines.shift();
      if (!head.settled) this.settle(head, "unanswered", true);
    }
    const next = this.deadlines.peek();
    if (next !== undefined && this.timer === undefined) {
      this.timer = this.timers.setTimeout(() => this.expire(), Math.max(0, next.startedAt + this.timeoutMs - now));
    }
  }

  /** Settled rounds leave the head of the deadline order; with none unsettled left, the timer goes too. */
  private dropSettledHeads(): void {
    while (this.deadlines.peek()?.settled) this.deadlines.shift();
    if (this.deadlines.length === 0 && this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private stateOf(conn: C): ConnState {
    let state = this.conns.get(conn);
    if (state === undefined) this.conns.set(conn, (state = { awaiting: new Set(), late: new Set(), stalled: false }));
    return state;
  }

  private resolve(id: number, verdict: ValidationVerdict): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    const { conn, round } = entry;
    this.entries.delete(id);
    this.conns.get(conn)?.awaiting.delete(id);
    round.ids.delete(id);
    // The first answer that is not "valid" decides an awaited round; otherwise it is valid once all have answered.
    if (verdict !== "valid" && round.listener !== undefined) this.settle(round, verdict);
    else if (round.ids.size === 0 && round.sealed) this.settle(round, "valid");
  }

  /** Ends a round; its IDs still awaited stop being outstanding, and their late answers will be ignored. `timedOut`:
   *  the connections that still owed an answer are stalled. */
  private settle(round: Round, verdict: ValidationVerdict, timedOut = false): void {
    if (round.settled) return;
    round.settled = true;
    this.dropSettledHeads();
    for (const id of round.ids) {
      const entry = this.entries.get(id);
      if (entry === undefined) continue;
      this.entries.delete(id);
      const state = this.conns.get(entry.conn);
      if (state === undefined) continue; // forgotten: nobody will answer
      state.awaiting.delete(id);
      if (timedOut) state.stalled = true;
      state.late.add(id);
      if (state.late.size > this.lateAnswerMemory) state.late.delete(state.late.values().next().value!);
    }
    round.ids.clear();
    round.listener?.(verdict, this.timers.now() - round.startedAt);
  }
}
