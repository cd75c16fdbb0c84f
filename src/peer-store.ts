/**
 * The peer store: a small JSON file beside the hostkey listing peers that completed a handshake with us (ID, dialable
 * address, last seen), so that a restarted node can rejoin when its bootstrappers are down.
 *
 * Bounded (the most recently seen `maxPeers`), written atomically (temporary file, fsync, rename) at most once per
 * `saveDelayMs`, and at close. Must never crash or stop the node: a missing file is an empty store, a corrupt one
 * logs a warning and is ignored (and replaced at the next save), a failed write logs a warning. Temporary files left
 * by a process killed mid-save are removed at the next load.
 */
import { closeSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { PEER_STORE_MAX_PEERS, PEER_STORE_SAVE_DELAY_MS } from "./defaults.ts";
import type { Logger } from "./log.ts";

export interface StoredPeer {
  /** Hex peer ID (64 characters). */
  id: string;
  host: string;
  /** The port the peer listens on for P2P. */
  port: number;
  /** Unix milliseconds when a link to it was last up. */
  lastSeen: number;
}

export interface PeerStoreOptions {
  path: string;
  log: Logger;
  maxPeers?: number;
  saveDelayMs?: number;
  now?: () => number;
}

const FORMAT_VERSION = 1;
const ID = /^[0-9a-f]{64}$/;

/** `/x/node1.pem` → `/x/node1.peers.json`: one store per hostkey, so nodes sharing a folder do not share a store. */
export function peerStorePathFor(hostkeyPath: string): string {
  const name = basename(hostkeyPath, extname(hostkeyPath));
  return join(dirname(hostkeyPath), `${name}.peers.json`);
}

export class PeerStore {
  readonly path: string;
  private readonly log: Logger;
  private readonly maxPeers: number;
  private readonly saveDelayMs: number;
  private readonly now: () => number;
  /** By ID; insertion order is irrelevant, eviction goes by lastSeen. */
  private readonly peers = new Map<string, StoredPeer>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private dirty = false;

  constructor(opts: PeerStoreOptions) {
    this.path = opts.path;
    this.log = opts.log;
    this.maxPeers = opts.maxPeers ?? PEER_STORE_MAX_PEERS;
    this.saveDelayMs = opts.saveDelayMs ?? PEER_STORE_SAVE_DELAY_MS;
    this.now = opts.now ?? Date.now;
  }

  /** Reads the file (replacing what is in memory); returns the peers, most recently seen first. Never throws.
   *  First removes the temporary files of saves that never finished (a process killed mid-save). */
  load(): StoredPeer[] {
    this.peers.clear();
    this.removeAbandonedTemporaries();
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.log.warn("peer store ignored", { reason: "unreadable", path: this.path, error: e as Error });
      return [];
    }
    const { peers, problem } = parsePeerStore(text);
    if (problem !== undefined) {
      this.log.warn("peer store ignored", { reason: "corrupt", path: this.path, problem });
      return [];
    }
    for (const p of peers) this.put(p);
    this.log.debug("peer store loaded", { path: this.path, peers: this.peers.size });
    return this.list();
  }

  list(): StoredPeer[] {
    return [...this.peers.values()].sort((a, b) => b.lastSeen - a.lastSeen);
  }

  /** A peer we are linked to now: remember it (or refresh it) and save soon. */
  record(peer: { id: string; host: string; port: number }): void {
    if (!ID.test(peer.id) || !validAddress(peer.host, peer.port)) return; // e.g. an inbound peer that gave no port
    this.put({ id: peer.id, host: peer.host, port: peer.port, lastSeen: this.now() });
    this.scheduleSave();
  }

  /** A known peer was still linked until now (its link just went down). */
  touch(id: string): void {
    const p = this.peers.get(id);
    if (p === undefined) return;
    p.lastSeen = this.now();
    this.scheduleSave();
  }

  /** Writes now if anything changed. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.dirty) return;
    this.dirty = false;
    const tmp = `${this.path}.tmp-${process.pid}`;
    try {
      const fd = openSync(tmp, "w", 0o600);
      try {
        writeSync(fd, serializePeerStore(this.list()));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path); // atomic: readers see the old file or the new one, never half of one
    } catch (e) {
      this.log.warn("peer store not saved", { path: this.path, error: e as Error });
      rmSync(tmp, { force: true });
    }
  }

  close(): void {
    this.flush();
  }

  /** `<store>.tmp-<pid>` files whose process is gone (or is us: we have not saved yet) are leftovers of a kill
   *  during a save; a live process's file may be its save in progress and is left alone. */
  private removeAbandonedTemporaries(): void {
    const prefix = `${basename(this.path)}.tmp-`;
    let names: string[];
    try {
      names = readdirSync(dirname(this.path));
    } catch {
      return; // no folder yet: nothing was ever saved here
    }
    for (const name of names) {
      if (!name.startsWith(prefix)) continue;
      const pid = Number(name.slice(prefix.length));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) continue;
      const path = join(dirname(this.path), name);
      try {
        rmSync(path, { force: true });
        this.log.info("peer store temporary removed", { path });
      } catch (e) {
        this.log.warn("peer store temporary not removed", { path, error: e as Error });
      }
    }
  }

  private put(p: StoredPeer): void {
    this.peers.delete(p.id);
    this.peers.set(p.id, p);
    while (this.peers.size > this.maxPeers) {
      let oldest: StoredPeer | undefined;
      for (const q of this.peers.values()) if (oldest === undefined || q.lastSeen < oldest.lastSeen) oldest = q;
      this.peers.delete(oldest!.id);
    }
  }

  private scheduleSave(): void {
    this.dirty = true;
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => this.flush(), this.saveDelayMs);
    this.timer.unref?.();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // alive, someone else's
  }
}

function validAddress(host: unknown, port: unknown): boolean {
  return typeof host === "string" && host.length > 0 && host.length <= 255 && Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535;
}

export function serializePeerStore(peers: readonly StoredPeer[]): string {
  const entries = peers.map((p) => ({ id: p.id, host: p.host, port: p.port, last_seen: new Date(p.lastSeen).toISOString() }));
  return JSON.stringify({ version: FORMAT_VERSION, peers: entries }, null, 1) + "\n";
}

/** Parses the file; a problem with the whole file is reported, single bad entries are skipped. */
export function parsePeerStore(text: string): { peers: StoredPeer[]; problem?: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { peers: [], problem: `not JSON: ${(e as Error).message}` };
  }
  if (typeof doc !== "object" || doc === null || !Array.isArray((doc as { peers?: unknown }).peers)) {
    return { peers: [], problem: "expected an object with a peers list" };
  }
  if ((doc as { version?: unknown }).version !== FORMAT_VERSION) return { peers: [], problem: "unknown version" };
  const peers: StoredPeer[] = [];
  for (const e of (doc as { peers: unknown[] }).peers) {
    if (typeof e !== "object" || e === null) continue;
    const { id, host, port, last_seen } = e as Record<string, unknown>;
    const lastSeen = typeof last_seen === "string" ? Date.parse(last_seen) : NaN;
    if (typeof id !== "string" || !ID.test(id) || !validAddress(host, port) || !Number.isFinite(lastSeen)) continue;
    peers.push({ id, host: host as string, port: port as number, lastSeen });
  }
  return { peers };
}
