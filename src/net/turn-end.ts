/**
 * One setImmediate per event-loop turn for every writer that holds messages until the turn ends (links sealing a
 * turn's messages into one frame, API connections writing them in one write): each registers once per turn and is
 * told when the turn is over, in the order they registered.
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
