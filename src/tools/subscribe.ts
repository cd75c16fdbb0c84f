/**
 * `gossip subscribe`: subscribes to data types through the VoidPhone API (GOSSIP NOTIFY), prints each NOTIFICATION
 * and answers it with a VALIDATION: valid unless the --reject-if rule matches. It is a module like any other, so the
 * node waits for its answers before passing items on; it answers before printing (the answers of one event-loop turn
 * leave together, src/client/api-client.ts).
 */
import type { HostPort } from "../address.ts";
import { ToolFailure } from "../errors.ts";
import { connectToNode } from "./connect.ts";
import { formatNotification, matchable, showData } from "./data-format.ts";

export interface SubscribeOptions {
  api: HostPort;
  dataTypes: number[];
  /** Answer invalid when this matches the data (as text, or as hex when it is not printable). */
  rejectIf?: RegExp;
  json: boolean;
  /** Stop after this many notifications. */
  count?: number;
  /** One line per notification (no newline). */
  print: (line: string) => void;
  /** Progress notes for a person watching (stderr). */
  note: (line: string) => void;
  /** Aborting ends the subscription normally (SIGINT, SIGTERM). */
  signal?: AbortSignal;
}

/** Resolves when done (count reached or aborted); throws ToolFailure if the node cannot be reached or goes away. */
export async function subscribe(opts: SubscribeOptions): Promise<void> {
  const conn = await connectToNode(opts.api);
  let seen = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));

  conn.onMessage = (m) => {
    if (m.kind !== "notification" || (opts.count !== undefined && seen >= opts.count)) return;
    const shown = showData(m.data);
    const valid = !(opts.rejectIf?.test(matchable(shown)) ?? false);
    conn.validate(m.messageId, valid);
    opts.print(formatNotification({ dataType: m.dataType, size: m.data.length, valid, shown }, opts.json));
    seen++;
    if (opts.count !== undefined && seen >= opts.count) finish();
  };
  for (const dataType of opts.dataTypes) conn.subscribe(dataType);
  opts.note(`subscribed to type ${opts.dataTypes.join(", ")} at ${conn.address}`);

  const aborted = new Promise<void>((resolve) => {
    if (opts.signal?.aborted) resolve();
    opts.signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  const lost = conn.closed.then((reason) => reason);
  const outcome = await Promise.race([done.then(() => "done" as const), aborted.then(() => "done" as const), lost]);
  if (outcome !== "done") throw new ToolFailure("connection-lost", `connection to the node at ${conn.address} lost (${outcome})`);
  await conn.end(); // the last VALIDATION must reach the node before we go
}
