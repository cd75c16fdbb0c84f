/**
 * Two production Connections (src/p2p/connection.ts) wired sink to receive in memory, no sockets: a dialer
 * (initiator) and a listener (responder). Each direction is a MemoryPipe that delivers written bytes in order on a
 * later microtask, can stop taking bytes (a peer that does not read), can rewrite a write in transit, and turns
 * end() into the other side's closed(). Every event of both sides is recorded.
 */
import { LINK_IDLE_TIMEOUT_MS, LINK_PING_INTERVAL_MS, LINK_SEND_BUFFER_BYTES } from "../../src/defaults.ts";
import { Connection, type ByteSink, type ConnectionOptions, type ConnectionRole } from "../../src/p2p/connection.ts";
import { FRAME_HEADER_BYTES, writeFrameHeader } from "../../src/p2p/frame.ts";
import type { HandshakeResult } from "../../src/p2p/handshake.ts";
import { generateEd25519Pem, generateStaticKeyPair, loadIdentity, type Identity } from "../../src/p2p/identity.ts";
import type { Link } from "../../src/p2p/link.ts";
import type { LinkMessage } from "../../src/p2p/proto/gossip.ts";
import type { CloseReason, HandshakeFailure } from "../../src/p2p/reasons.ts";
import { SUPPORTED_FEATURES, encodeLinkMessage } from "../../src/p2p/wire.ts";
import { inlineSolver } from "./solve-pow.ts";

export class MemoryPipe implements ByteSink {
  /** The connection written bytes arrive at (set once both ends exist). */
  to!: Connection;
  /** While true, write() takes nothing (like a full kernel buffer); set false and call the writer's drained(). */
  paused = false;
  /** Rewrites (or, returning undefined, drops) each write before delivery. */
  tamper: ((bytes: Uint8Array, index: number) => Uint8Array | undefined) | undefined;
  ended = false;
  /** Writes taken so far. */
  writes = 0;
  /** The pipe the other way: our connection pausing its reading stops that pipe from taking bytes. */
  reverse!: MemoryPipe;

  write(bytes: Uint8Array): number {
    if (this.paused) return 0;
    const index = this.writes++;
    const copy = Uint8Array.from(bytes);
    if (!this.ended) {
      queueMicrotask(() => {
        const out = this.tamper ? this.tamper(copy, index) : copy;
        if (out !== undefined) this.to.receive(out);
      });
    }
    return bytes.length;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    queueMicrotask(() => this.to.closed("closed-by-peer"));
  }

  /** Our connection stops reading (ByteSink.pause): the other side's writes are not taken, as with a full socket. */
  pause(): void {
    this.reverse.paused = true;
  }

  resume(): void {
    this.reverse.paused = false;
    this.to.drained(); // the other side writes what waited
  }

  /** Bytes that arrive at `to` as if the other side had written them (after what is already on the way). */
  inject(bytes: Uint8Array): void {
    queueMicrotask(() => this.to.receive(bytes));
  }
}

/** One side's connection and everything it reported. */
export interface Side {
  connection: Connection;
  /** The pipe this side writes into. */
  out: MemoryPipe;
  identity: Identity;
  link?: Link;
  session?: HandshakeResult;
  failed?: HandshakeFailure;
  failedError?: Error;
  closeReason?: CloseReason;
  messages: LinkMessage[];
  /** Called with each message as it is handed up, after it was recorded (a test's own handler). */
  onMessage?: (message: LinkMessage) => void;
}

export interface PairOptions {
  /** Options for both sides (link timings, rekey interval, deadline). */
  both?: Partial<Omit<ConnectionOptions, "role" | "identity">>;
  dialer?: Partial<ConnectionOptions>;
  listener?: Partial<ConnectionOptions>;
  /** Responder difficulty (default 2). */
  difficulty?: number;
  dialerRole?: Partial<Extract<ConnectionRole, { inbound: false }>>;
}

export function newIdentity(): Identity {
  return loadIdentity(generateEd25519Pem());
}

export const DIALED = { host: "listener", port: 6001 };
export const SEEN = { host: "dialer", port: 50000 };

/** Starts both sides: the listener sends its Hello, the dialer answers. */
export function memoryPair(o: PairOptions = {}): { dialer: Side; listener: Side } {
  const base = (identity: Identity, role: ConnectionRole, listenPort: number, remote: ConnectionOptions["remote"]): ConnectionOptions => ({
    role,
    identity,
    staticKeys: generateStaticKeyPair(),
    listenPort,
    features: SUPPORTED_FEATURES, // everything we speak (a Transport offers views only with offerViews)
    handshakeTimeoutMs: 5_000,
    remote,
    sendBufferBytes: LINK_SEND_BUFFER_BYTES,
    pingIntervalMs: LINK_PING_INTERVAL_MS,
    idleTimeoutMs: LINK_IDLE_TIMEOUT_MS,
    ...o.both,
  });
  const dialerRole: ConnectionRole = { inbound: false, maxDifficulty: 8, pow: inlineSolver(), ...o.dialerRole };
  // The dialer listens on 7002 and dialed "listener":6001; the listener sees it at "dialer":50000.
  const dialerOptions = { ...base(o.dialer?.identity ?? newIdentity(), dialerRole, 7002, DIALED), ...o.dialer };
  const listenerRole: ConnectionRole = { inbound: true, difficulty: o.difficulty ?? 2 };
  const listenerOptions = { ...base(o.listener?.identity ?? newIdentity(), listenerRole, 6001, SEEN), ...o.listener };
  const dialer = side(dialerOptions);
  const listener = side(listenerOptions);
  dialer.out.to = listener.connection;
  listener.out.to = dialer.connection;
  dialer.out.reverse = listener.out;
  listener.out.reverse = dialer.out;
  listener.connection.start();
  dialer.connection.start();
  return { dialer, listener };
}

function side(options: ConnectionOptions): Side {
  const out = new MemoryPipe();
  const s = { out, identity: options.identity, messages: [] as LinkMessage[] } as Side;
  s.connection = new Connection(out, options, {
    established: (_c, link, session) => {
      s.link = link;
      s.session = session;
    },
    failed: (_c, reason, error) => {
      s.failed = reason;
      s.failedError = error;
    },
    message: (_l, message) => {
      s.messages.push(message);
      s.onMessage?.(message);
    },
    linkClosed: (_l, reason) => void (s.closeReason = reason),
  });
  return s;
}

/** A frame sealed with `from`'s send cipher (it takes the next nonce), not written: for bytes no honest link sends. */
export function sealAs(from: Side, plaintext: LinkMessage | Uint8Array): Uint8Array {
  const bytes = plaintext instanceof Uint8Array ? plaintext : encodeLinkMessage(plaintext);
  return writeFrameHeader(from.session!.sendCipher.encrypt(bytes, FRAME_HEADER_BYTES));
}

/** The texts of the payloads a side received, in order. */
export function payloadTexts(s: Side): string[] {
  return s.messages.flatMap((m) => (m.kind?.$case === "payload" ? [new TextDecoder().decode(m.kind.value.data)] : []));
}

/** Lets the links seal what this turn queued (messages sent within one event-loop turn share a frame). */
export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
