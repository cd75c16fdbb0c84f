/**
 * `gossip status`: reads GET /status from a node's control address and shows it as a table. Fetching is thin;
 * rendering is a pure function of the NodeStatus document (src/control/status.ts).
 */
import { formatHostPort, type HostPort } from "../address.ts";
import type { NodeStatus } from "../control/status.ts";
import { ToolFailure } from "../errors.ts";

/** Where `gossip status` looks without --control or a config that names one. Nodes serve nothing there unless
 *  their config sets gossip.control_address (README "CLI"). */
export const DEFAULT_CONTROL_ADDRESS = "127.0.0.1:9001";

export async function fetchStatus(control: HostPort, timeoutMs = 3000): Promise<NodeStatus> {
  const url = `http://${formatHostPort(control)}/status`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new ToolFailure("control-unreachable", `cannot reach the control address ${formatHostPort(control)} (${(e as Error).message}); is gossip.control_address set in the node's config?`);
  }
  if (!res.ok) throw new ToolFailure("control-error", `${url} answered ${res.status} ${res.statusText}`);
  let doc: unknown;
  try {
    doc = await res.json();
  } catch (e) {
    throw new ToolFailure("not-a-status", `${url} did not answer JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || typeof (doc as NodeStatus).peer_id !== "string" || !Array.isArray((doc as NodeStatus).links)) {
    throw new ToolFailure("not-a-status", `${url} is not a gossip status document`);
  }
  return doc as NodeStatus;
}

export function renderStatus(s: NodeStatus): string {
  const failed = Object.entries(s.handshakes.failed).sort(([a], [b]) => (a < b ? -1 : 1));
  const failedTotal = failed.reduce((n, [, v]) => n + v, 0);
  const rows: [string, string][] = [
    ["peer id", s.peer_id],
    ["version", `${s.version} (commit ${s.commit})`],
    ["uptime", duration(s.uptime_seconds)],
    ["api", s.listen.api],
    ["p2p", s.listen.p2p],
    ["control", s.listen.control ?? "-"],
    ["links", String(s.links.length)],
    ["subscriptions", s.subscriptions.map((x) => `${x.data_type} (${x.subscribers})`).join(", ") || "none"],
    ["api clients", String(s.api_connections)],
    ["validations", `${s.validations_outstanding} outstanding`],
    ["cache", `${s.cache.items}/${s.cache.capacity} items, ${s.cache.seen_ids} seen IDs`],
    ["candidates", `${s.membership.candidates} known, ${s.membership.dialing} dialing`],
    [
      "handshakes",
      `${s.handshakes.completed} completed, ${failedTotal} failed` +
        (failed.length ? ` (${failed.map(([k, v]) => `${k} ${v}`).join(", ")})` : "") +
        `, ${s.handshakes.pending} pending`,
    ],
    ...(s.bans ? [["bans", `${s.bans.banned} now, ${s.bans.by_score} by score since the start`] as [string, string]] : []),
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  let out = rows.map(([k, v]) => k.padEnd(width) + v).join("\n") + "\n";
  if (s.links.length > 0) {
    // The broadcast-tree role is shown when the node has trees (older nodes' documents have no role).
    const roles = s.links.some((l) => l.role !== undefined);
    // Likewise the peer score (older nodes' documents have none).
    const scores = s.links.some((l) => l.score !== undefined);
    const table = [
      ["PEER", "ADDRESS", "DIR", "AGE", "IN", "OUT", "DROPPED", ...(roles ? ["ROLE"] : []), ...(scores ? ["SCORE"] : [])],
      ...s.links.map((l) => [
        l.peer_id.slice(0, 16),
        l.address,
        l.inbound ? "in" : "out",
        duration(l.age_seconds),
        bytes(l.bytes_in),
        bytes(l.bytes_out),
        String(l.dropped),
        ...(roles ? [l.role ?? "-"] : []),
        ...(scores ? [l.score === undefined ? "-" : l.score.toFixed(1)] : []),
      ]),
    ];
    const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
    out += "\n" + table.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]! + 2))).join("")).join("\n") + "\n";
  }
  return out;
}

export function duration(seconds: number): string {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m ${String(sec).padStart(2, "0")}s`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
