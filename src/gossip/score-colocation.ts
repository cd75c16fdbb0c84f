/**
 * IP colocation for the peer score: which "place" a linked peer comes from (its IPv4 address, or the /64 of its IPv6
 * address, since one host or customer usually holds a whole /64), and how many linked peers share each place. Pure
 * bookkeeping over link up/down; never looks anything up on the network.
 */
import { isLoopback } from "../address.ts";
import type { PeerId } from "./ports.ts";

/** The colocation key of a host: "4:a.b.c.d" or "6:xxxx:xxxx:xxxx:xxxx" (the /64), or undefined for a host that is
 *  not an IP literal (a name: nothing to compare). IPv4-mapped IPv6 counts as IPv4. */
export function colocationKey(host: string): string | undefined {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(h);
  if (mapped) return `4:${mapped[1]}`;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) return `4:${h}`;
  if (!h.includes(":")) return undefined;
  const groups = expandIpv6(h.split("%")[0]!);
  return groups === undefined ? undefined : `6:${groups.slice(0, 4).join(":")}`;
}

/** The eight hextets of an IPv6 literal, lowercase without leading zeros; undefined if it is not one. */
function expandIpv6(h: string): string[] | undefined {
  const halves = h.toLowerCase().split("::");
  if (halves.length > 2) return undefined;
  const part = (s: string) => (s === "" ? [] : s.split(":"));
  const head = part(halves[0]!);
  const tail = halves.length === 2 ? part(halves[1]!) : [];
  // An embedded IPv4 tail (e.g. 64:ff9b::1.2.3.4) takes two hextets.
  const last = tail.length > 0 ? tail : head;
  if (last.length > 0 && last[last.length - 1]!.includes(".")) last.splice(last.length - 1, 1, "0", "0");
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return all.map((g) => String(parseInt(g, 16).toString(16)));
}

/** Linked peers per colocation key. Loopback peers are not counted unless `countLoopback` (tests on 127.0.0.1). */
export class Colocation {
  private readonly keyOf = new Map<PeerId, string>();
  private readonly count = new Map<string, number>();

  constructor(private readonly countLoopback: boolean) {}

  linkUp(peer: PeerId, host: string): void {
    this.linkDown(peer);
    if (!this.countLoopback && isLoopback(host)) return;
    const key = colocationKey(host);
    if (key === undefined) return;
    this.keyOf.set(peer, key);
    this.count.set(key, (this.count.get(key) ?? 0) + 1);
  }

  linkDown(peer: PeerId): void {
    const key = this.keyOf.get(peer);
    if (key === undefined) return;
    this.keyOf.delete(peer);
    const n = (this.count.get(key) ?? 1) - 1;
    if (n <= 0) this.count.delete(key);
    else this.count.set(key, n);
  }

  /** Linked peers (this one included) from the same place as `peer`; 0 when it is not linked or not counted. */
  sharing(peer: PeerId): number {
    const key = this.keyOf.get(peer);
    return key === undefined ? 0 : (this.count.get(key) ?? 0);
  }

  get linked(): number {
    return this.keyOf.size;
  }
}
