/**
 * `gossip subscribe`: subscribes to data types through the VoidPhone API (GOSSIP NOTIFY) with the client library,
 * answers each NOTIFICATION with a VALIDATION and then prints it. The verdict is valid unless the --reject-if rule
 * matches, or, with --exec, what the validator command's exit status says (src/tools/exec-validator.ts). It is a
 * module like any other, so the node waits for its answers before passing items on.
 *
 * Must never: answer a notification twice, or answer one the validator gave no verdict on because we were stopping
 * (left unanswered, the node counts it "unanswered" and blames no peer).
 */
import type { HostPort } from "../address.ts";
import type { Notification } from "../client/gossip-client.ts";
import { ApiClientError, ToolFailure } from "../errors.ts";
import { connectToNode } from "./connect.ts";
import { formatNotification, matchable, showData } from "./data-format.ts";
import { ExecValidator, type ExecValidatorOptions, type ExecVerdict } from "./exec-validator.ts";

export interface SubscribeOptions {
  api: HostPort;
  dataTypes: number[];
  /** Answer invalid when this matches the data (as text, or as hex when it is not printable). */
  rejectIf?: RegExp;
  /** Ask a command instead (exclusive with rejectIf). */
  exec?: ExecValidatorOptions;
  json: boolean;
  /** Stop after this many notifications have been answered. */
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
  const client = await connectToNode(opts.api);
  const validator = opts.exec ? new ExecValidator(opts.exec) : undefined;
  const decide = async (n: Notification, text: string): Promise<ExecVerdict | undefined> => {
    if (validator) return validator.validate(n.dataType, n.data);
    return opts.rejectIf?.test(text) ? { valid: false, reason: "--reject-if matched" } : { valid: true };
  };
  let taken = 0;
  let answered = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  if (opts.signal?.aborted) finish();
  opts.signal?.addEventListener("abort", () => finish(), { once: true });

  const handle = async (n: Notification) => {
    const shown = showData(n.data);
    const verdict = await decide(n, matchable(shown));
    if (verdict === undefined) return; // stopped meanwhile: leave it unanswered
    n.answer(verdict.valid);
    opts.print(formatNotification({ dataType: n.dataType, size: n.data.length, valid: verdict.valid, shown }, opts.json));
    if (!verdict.valid && validator) opts.note(`--exec rejected type=${n.dataType} size=${n.data.length}: ${verdict.reason}`);
    if (opts.count !== undefined && ++answered >= opts.count) finish();
  };

  client.subscribe(...opts.dataTypes);
  opts.note(`subscribed to type ${opts.dataTypes.join(", ")} at ${client.address}` + (opts.exec ? `, validating with: ${opts.exec.command}` : ""));
  let lost: ApiClientError | undefined;
  const reading = (async () => {
    for await (const n of client.notifications()) {
      if (opts.count !== undefined && taken >= opts.count) continue; // past --count: not ours to answer
      taken++;
      void handle(n);
    }
  })().catch((e: unknown) => {
    if (!(e instanceof ApiClientError)) throw e;
    lost = e;
    finish();
  });

  await done;
  validator?.stop();
  if (lost !== undefined) throw new ToolFailure("connection-lost", lost.message);
  await client.close(); // the last VALIDATION must reach the node before we go
  await reading;
}
