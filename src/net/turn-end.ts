/**
 * Writing per event-loop turn, for links (a turn's messages sealed into one frame) and API connections (a turn's
 * messages in one write): one setImmediate per turn for every writer that holds messages until the turn ends, told in
 * the order they registered; and the policy both follow (TurnPacer): a message to an idle writer leaves at once, no
 * turn of latency; the rest of the turn, and every message of a turn after a busy one, wait for the turn's end.
 */
export interface TurnEnder {
  endTurn(): void;
}

const waiting: TurnEnder[] = [];

/** Calls `w.endTurn()` once this turn's work is done; register at most once per turn (the caller keeps a flag). */
export function atTurnEnd(w: TurnEnder): void {
  if (waiting.push(w) === 1) setImmediate(endTurn);
}

function endTurn(): void {
  // An endTurn() may register a writer for the next turn: only those here now are told.
  const n = waiting.length;
  for (let i = 0; i < n; i++) waiting[i]!.endTurn();
  waiting.splice(0, n);
  if (waiting.length > 0) setImmediate(endTurn);
}

/** When a writer's message may leave at once, and its registration for the end of the turn. */
export class TurnPacer {
  private registered = false;
  private wroteThisTurn = false;
  private messagesThisTurn = 0;
  /** The last turn carried more than one message: under load the first of a turn waits too (one write per turn). */
  private busy = false;

  constructor(private readonly writer: TurnEnder) {}

  /** One more message this turn; true if it may be written at once (`idle`: nothing held or queued before it). */
  message(idle: boolean): boolean {
    this.messagesThisTurn++;
    if (!this.registered) {
      this.registered = true;
      atTurnEnd(this.writer);
    }
    if (this.busy || this.wroteThisTurn || !idle) return false;
    this.wroteThisTurn = true;
    return true;
  }

  /** Call at the start of the writer's endTurn. */
  turnEnded(): void {
    this.registered = false;
    this.wroteThisTurn = false;
    this.busy = this.messagesThisTurn > 1;
    this.messagesThisTurn = 0;
  }
}
