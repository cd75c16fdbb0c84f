/**
 * One P2P connection's phase machine, without a socket: Hello → handshake → link. It is fed the bytes received
 * (`receive`), told when its byte sink has room again (`drained`) or when the stream is gone (`closed`), and writes
 * cleartext handshake frames, then the Link's sealed frames, to a ByteSink through one bounded SendQueue. The
 * handshake has a deadline; the responder's proof-of-work check and the Noise steps are the pure machines of
 * handshake.ts. Transport (transport.ts) runs one per TCP socket; tests wire two of them sink to receive, in memory.
 * It never decides whether an authenticated peer may stay (the owner does, on `established`) and never logs.
 */
import { LINK_CLOSE_LINGER_MS } from "../defaults.ts";
import { P2PProtocolError } from "../errors.ts";
import { SendQueue } from "../net/send-queue.ts";
import { FrameReader, encodeFrame } from "./frame.ts";
import { InitiatorHandshake, ResponderHandshake, type HandshakeResult } from "./handshake.ts";
import type { Identity, StaticKeyPair } from "./identity.ts";
import { Link, type LinkDescription, type LinkOptions } from "./link.ts";
import type { LinkMessage } from "./proto/gossip.ts";
import type { CloseReason, HandshakeFailure } from "./reasons.ts";

/** Where a connection's bytes go: a Bun socket in production, the other connection's `receive` in a test. */
export interface ByteSink {
  /** Takes what it can now and returns how many bytes it took (like Bun's socket.write); the connection keeps the
   *  rest queued and writes it when told `drained()`. */
  write(bytes: Uint8Array): number;
  /** Ends the stream after what was written (a FIN). */
  end(): void;
  /** Stops and restarts reading from the peer (a Bun socket's pause/resume): TCP then slows the peer down. */
  pause?(): void;
  resume?(): void;
}

/** What solves the initiator's proof of work (the worker pool in production). */
export interface PowSolver {
  solve(prefix: Uint8Array, difficulty: number, signal?: AbortSignal): Promise<{ nonce: Uint8Array }>;
}

/** The responder (accepted the connection) demands work; the initiator (dialed) does it. */
export type ConnectionRole =
  | { inbound: true; difficulty: number }
  | { inbound: false; maxDifficulty: number; pow: PowSolver; expectedPeerId?: string };

export interface ConnectionOptions extends LinkOptions {
  role: ConnectionRole;
  identity: Identity;
  staticKeys: StaticKeyPair;
  /** Our P2P listen port, told to the peer inside the handshake (0: we do not listen). */
  listenPort: number;
  /** Frames per direction between rekeys (both ends must agree); undefined = the default. */
  rekeyInterval?: number;
  /** Feature bits we offer (wire.ts FEATURE_*); the link gets those the peer offered too. Default none. */
  features?: number;
  /** Identity proof-of-work bits demanded of the peer (src/p2p/identity-pow.ts); 0 or unset: none. */
  identityDifficulty?: number;
  handshakeTimeoutMs: number;
  /** The peer's address as we see it (a dial: the address dialed). */
  remote: { host: string; port: number };
}

export interface ConnectionEvents {
  /** The handshake authenticated the peer and `link` is up; the owner admits it or closes it. */
  established(connection: Connection, link: Link, session: HandshakeResult): void;
  /** The connection ended before becoming a link (once). `error` is the underlying error, if any. */
  failed(connection: Connection, reason: HandshakeFailure, error?: Error): void;
  message(link: Link, message: LinkMessage): void;
  /** The link closed (once). */
  linkClosed(link: Link, reason: CloseReason): void;
}

/** Initiator: hello → solving → response → link. Responder: init → final → link. */
export type ConnectionPhase = "hello" | "solving" | "response" | "init" | "final" | "link" | "closed";

export class Connection {
  phase: ConnectionPhase;
  /** Set once the handshake completed. */
  link: Link | undefined;
  private readonly reader = new FrameReader();
  private readonly queue: SendQueue;
  private readonly responder?: ResponderHandshake;
  private readonly initiator?: InitiatorHandshake;
  private deadline?: ReturnType<typeof setTimeout>;
  private solving?: AbortController;
  /** When the frame whose answer ends the handshake left (M1 at the initiator, M2 at the responder), and the round
   *  trip measured from it (LinkDescription.rttMs). */
  private roundTripFrom = NaN;
  private rttMs: number | undefined = undefined;
  /** A closed link whose last frames still wait in the queue: the stream ends once they are out, or at this timer. */
  private lingering?: ReturnType<typeof setTimeout>;
  /** Frames that arrived while the link was paused (at most the rest of the chunk being read), in order. */
  private heldFrames: Uint8Array[] = [];

  constructor(
    private readonly sink: ByteSink,
    private readonly options: ConnectionOptions,
    private readonly events: ConnectionEvents,
  ) {
    this.queue = new SendQueue(sink, options.sendBufferBytes);
    const common = {
      identity: options.identity,
      staticKeys: options.staticKeys,
      listenPort: options.listenPort,
      rekeyInterval: options.rekeyInterval,
      features: options.features,
      identityDifficulty: options.identityDifficulty,
    };
    const role = options.role;
    if (role.inbound) {
      this.responder = new ResponderHandshake({ ...common, difficulty: role.difficulty });
      this.phase = "init";
    } else {
      this.initiator = new InitiatorHandshake({ ...common, maxDifficulty: role.maxDifficulty, expectedPeerId: role.expectedPeerId });
      this.phase = "hello";
    }
  }

  get inbound(): boolean {
    return this.options.role.inbound;
  }

  /** A responder still waiting for the initiator's proof of work (M1): the connection has cost its opener nothing. */
  get awaitingWork(): boolean {
    return this.options.role.inbound && this.phase === "init";
  }

  /** Diffie-Hellman operations the responder performed (0 until a valid proof of work arrived). */
  get dhCount(): number {
    return this.responder?.dhCount ?? 0;
  }

  /** Starts the handshake deadline; the responder sends its Hello. */
  start(): void {
    this.deadline = setTimeout(() => this.fail("handshake-timeout"), this.options.handshakeTimeoutMs);
    if (this.responder) this.queue.write(encodeFrame(this.responder.hello()));
  }

  /** Bytes received, in order, in chunks of any size. The chunk must not be reused by the caller (bodies may be views). */
  receive(chunk: Uint8Array): void {
    if (this.phase === "closed") return;
    let bodies: Uint8Array[];
    try {
      bodies = this.reader.push(chunk);
    } catch (e) {
      this.protocolFailure(e);
      return;
    }
    for (const body of bodies) {
      if ((this.phase as ConnectionPhase) === "closed") return; // an earlier frame of this chunk ended it
      if (this.link) {
        if (this.link.paused) this.heldFrames.push(body);
        else this.link.receiveFrame(body);
        continue;
      }
      try {
        this.handshakeStep(body);
      } catch (e) {
        this.protocolFailure(e);
        return;
      }
    }
  }

  /**
   * Flow control for the owner: stop handing the link's messages up (from the next one, also within a frame or a
   * chunk already read) and stop reading the socket, so that TCP makes the peer wait instead of us buffering or
   * dropping. Holds at most what was read already (one chunk). The link's idle timeout still runs: pause briefly.
   */
  pauseReading(): void {
    if (this.link === undefined || this.link.paused || this.phase === "closed") return;
    this.link.pause();
    this.sink.pause?.();
  }

  /** Hands up what was held, in order (until paused again), then reads the socket again. */
  resumeReading(): void {
    const link = this.link;
    if (link === undefined || !link.paused) return;
    link.resume();
    while (this.heldFrames.length > 0 && !link.paused && this.phase === "link") link.receiveFrame(this.heldFrames.shift()!);
    if (!link.paused && this.phase === "link") this.sink.resume?.();
  }

  /** The sink has room again: write what waited. */
  drained(): void {
    this.queue.flush();
    if (this.lingering !== undefined && this.queue.empty) this.endNow();
  }

  /** The byte stream is gone (the peer closed, or the socket failed). */
  closed(reason: "closed-by-peer" | "socket-error" = "closed-by-peer"): void {
    this.stopLingering();
    if (this.phase === "closed") return;
    if (this.link) this.link.close(reason);
    else this.fail(reason);
  }

  /** Ends a connection that is still in its handshake; a no-op once it is a link (close that through `link`). */
  abort(reason: HandshakeFailure): void {
    if (!this.link) this.fail(reason);
  }

  private handshakeStep(body: Uint8Array): void {
    switch (this.phase) {
      case "hello": {
        const { powPrefix, difficulty } = this.initiator!.recvHello(body);
        this.phase = "solving";
        const abort = new AbortController();
        this.solving = abort;
        (this.options.role as { pow: PowSolver }).pow.solve(powPrefix, difficulty, abort.signal).then(
          ({ nonce }) => this.solved(nonce),
          (e: Error) => {
            if (this.phase === "solving") this.fail("pow-failed", e);
          },
        );
        return;
      }
      case "response": {
        this.rttMs = performance.now() - this.roundTripFrom;
        const { send, result } = this.initiator!.recvResponse(body);
        this.queue.write(encodeFrame(send));
        this.established(result);
        return;
      }
      case "init":
        this.queue.write(encodeFrame(this.responder!.recvInit(body)));
        this.roundTripFrom = performance.now();
        this.phase = "final";
        return;
      case "final":
        this.rttMs = performance.now() - this.roundTripFrom;
        this.established(this.responder!.recvFinal(body));
        return;
      default:
        // Only "solving" gets here: the responder must wait for our M1.
        throw new P2PProtocolError("unexpected-frame", `frame received while ${this.phase}`);
    }
  }

  private solved(nonce: Uint8Array): void {
    if (this.phase !== "solving") return;
    this.solving = undefined;
    try {
      this.queue.write(encodeFrame(this.initiator!.init(nonce)));
      this.roundTripFrom = performance.now();
      this.phase = "response";
    } catch (e) {
      this.protocolFailure(e);
    }
  }

  private established(session: HandshakeResult): void {
    this.clearDeadline();
    const peerId = session.remoteIdHex;
    const inbound = this.inbound;
    const { host, port } = this.options.remote;
    const info: LinkDescription = {
      peerId,
      remoteHost: host,
      remotePort: port,
      listenPort: inbound ? (session.remoteListenPort ?? 0) : port,
      inbound,
      initiatorId: inbound ? peerId : this.options.identity.idHex,
      features: (this.options.features ?? 0) & session.remoteFeatures,
      rttMs: this.rttMs,
    };
    const link = new Link(
      info,
      this.queue,
      () => this.endAfterQueue(),
      session.sendCipher,
      session.recvCipher,
      this.options,
      (l, message) => this.events.message(l, message),
      (l, reason) => {
        this.phase = "closed";
        this.events.linkClosed(l, reason);
      },
    );
    this.link = link;
    this.phase = "link";
    this.events.established(this, link, session);
  }

  private protocolFailure(e: unknown): void {
    // Peer bytes only ever raise P2PProtocolError (frame.ts, wire.ts, handshake.ts); anything else is our bug.
    const code = e instanceof P2PProtocolError ? e.code : "internal-error";
    if (this.link) this.link.close(code as CloseReason); // after the handshake only frame errors reach here
    else this.fail(code, e as Error);
  }

  /** Ends a connection that never became a link. */
  private fail(reason: HandshakeFailure, error?: Error): void {
    if (this.phase === "closed") return;
    this.phase = "closed";
    this.clearDeadline();
    this.solving?.abort();
    this.sink.end();
    this.events.failed(this, reason, error);
  }

  /**
   * A closing link's last messages (a DISCONNECT, the LinkError that follows it) sit behind whatever the queue holds
   * under load: end the stream only once they are out. A peer that does not read gets LINK_CLOSE_LINGER_MS; then
   * the rest is dropped. The timer does not keep the process alive.
   */
  private endAfterQueue(): void {
    this.queue.flush();
    if (this.queue.empty) {
      this.sink.end();
      return;
    }
    this.lingering = setTimeout(() => {
      this.queue.discard();
      this.endNow();
    }, LINK_CLOSE_LINGER_MS);
    this.lingering.unref?.();
  }

  private endNow(): void {
    this.stopLingering();
    this.sink.end();
  }

  private stopLingering(): void {
    clearTimeout(this.lingering);
    this.lingering = undefined;
  }

  private clearDeadline(): void {
    clearTimeout(this.deadline);
    this.deadline = undefined;
  }
}
