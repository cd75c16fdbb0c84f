/**
 * A P2P peer for hostile tests on a raw TCP socket. Its honest handshake and link are the production Connection
 * (src/p2p/connection.ts) over that socket; around it, low-level hooks let a test read the node's cleartext
 * handshake frames, stall a handshake step, and write whatever it likes — honest frames sealed with the session's
 * cipher, tampered, reordered, duplicated or truncated ones, hand-made protobuf — while recording what the node sends.
 */
import type { Socket } from "bun";
import { LINK_IDLE_TIMEOUT_MS, LINK_PING_INTERVAL_MS } from "../../src/defaults.ts";
import { Connection, type ByteSink } from "../../src/p2p/connection.ts";
import { FrameReader, encodeFrame, FRAME_HEADER_BYTES, writeFrameHeader } from "../../src/p2p/frame.ts";
import type { HandshakeResult } from "../../src/p2p/handshake.ts";
import { generateEd25519Pem, generateStaticKeyPair, loadIdentity, type Identity, type StaticKeyPair } from "../../src/p2p/identity.ts";
import type { LinkMessage, Payload } from "../../src/p2p/proto/gossip.ts";
import type { CloseReason } from "../../src/p2p/reasons.ts";
import { encodeLinkMessage } from "../../src/p2p/wire.ts";
import { itemId } from "../../src/gossip/item-id.ts";
import { waitFor } from "../wait-for.ts";
import { inlineSolver, solvePow } from "../p2p/solve-pow.ts";

export { solvePow };

export interface RawPeerOptions {
  identity?: Identity;
  staticKeys?: StaticKeyPair;
  /** Must match the node's, or the link dies at the first rekey. */
  rekeyInterval?: number;
  /** The listen port the handshake claims (0: none); a lying peer may claim the node's own. */
  listenPort?: number;
  /** Feature bits offered in the handshake (src/p2p/wire.ts FEATURE_*); default none, like a node that predates them. */
  features?: number;
}

export function newIdentity(): Identity {
  return loadIdentity(generateEd25519Pem());
}

/** A Payload with its true ID (unless `id` is given). */
export function payload(dataType: number, data: string | Uint8Array, ttl = 0, id?: Uint8Array): LinkMessage {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const value: Payload = { messageId: id ?? itemId(dataType, bytes), ttl, dataType, data: bytes };
  return { kind: { $case: "payload", value } };
}

export class RawPeer {
  readonly identity: Identity;
  readonly staticKeys: StaticKeyPair;
  /** Link messages received once the session is up (pings are answered by the link and not listed). */
  readonly messages: LinkMessage[] = [];
  /** Bodies of every frame this peer sent, handshake frames included (for replays). */
  readonly sentFrames: Uint8Array[] = [];
  session: HandshakeResult | undefined;
  /** The socket closed. */
  closed = false;
  /** Why our side of the link closed: a node frame that did not decrypt or decode (there should never be one), the
   *  node's LinkError, or the node hanging up. */
  linkClosedReason: CloseReason | undefined;
  private connection: Connection | undefined;
  /** Before a Connection runs: what the node sent, raw (to replay into it) and as cleartext frames (nextFrame). */
  private readonly early: Uint8Array[] = [];
  private readonly handshakeFrames: Uint8Array[] = [];
  private readonly reader = new FrameReader();
  private socket!: Socket<undefined>;
  private readonly outbox: Uint8Array[] = [];

  private constructor(private readonly options: RawPeerOptions) {
    this.identity = options.identity ?? newIdentity();
    this.staticKeys = options.staticKeys ?? generateStaticKeyPair();
  }

  static async connect(port: number, options: RawPeerOptions = {}): Promise<RawPeer> {
    const peer = new RawPeer(options);
    peer.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, chunk) => peer.received(chunk),
        drain: () => peer.flush(),
        close: () => peer.gone(),
        error: () => peer.gone(),
      },
    });
    return peer;
  }

  /** Frames from the node that decrypted (one frame may carry a Batch of several messages). */
  get framesIn(): number {
    return this.connection?.link?.framesIn ?? 0;
  }

  /** Writes bytes as they are (queued in order if the kernel does not take them at once). */
  write(bytes: Uint8Array): void {
    this.outbox.push(bytes);
    if (this.outbox.length === 1) this.flush();
  }

  sendFrame(body: Uint8Array): void {
    this.sentFrames.push(body);
    this.write(encodeFrame(body));
  }

  /** The next cleartext handshake frame body the node sent (for handshakes crafted by hand). */
  async nextFrame(timeoutMs = 3000): Promise<Uint8Array> {
    await waitFor(() => this.handshakeFrames.length > 0 || this.closed, timeoutMs, "a handshake frame");
    const body = this.handshakeFrames.shift();
    if (body === undefined) throw new Error("closed before the frame arrived");
    return body;
  }

  /**
   * An honest initiator's handshake by the production Connection; the hooks run before M1 and before M3 goes out (to
   * stall there). Resolves once our side is done and M3 has been written; rejects if our side failed.
   */
  async handshake(hooks: { beforeInit?: () => Promise<void>; beforeFinal?: () => Promise<void> } = {}): Promise<HandshakeResult> {
    let writes = 0;
    let held: Uint8Array[] | undefined;
    let released: Promise<void> = Promise.resolve();
    // Our handshake frames are whole frames in one write each: M1, then M3. M3 and anything after it wait for the hook.
    const sink: ByteSink = {
      write: (bytes) => {
        if (++writes <= 2) this.sentFrames.push(bytes.slice(FRAME_HEADER_BYTES));
        if (writes === 2 && hooks.beforeFinal) {
          held = [];
          released = hooks.beforeFinal().then(() => {
            for (const b of held!.splice(0)) this.write(b);
            held = undefined;
          });
        }
        if (held) held.push(Uint8Array.from(bytes));
        else this.write(Uint8Array.from(bytes));
        return bytes.length;
      },
      end: () => void released.then(() => this.socket.end()),
    };
    const session = await new Promise<HandshakeResult>((resolve, reject) => {
      this.connection = new Connection(
        sink,
        {
          role: { inbound: false, maxDifficulty: 12, pow: inlineSolver(hooks.beforeInit) },
          identity: this.identity,
          staticKeys: this.staticKeys,
          listenPort: this.options.listenPort ?? 0,
          rekeyInterval: this.options.rekeyInterval,
          features: this.options.features,
          handshakeTimeoutMs: 60_000,
          remote: { host: "127.0.0.1", port: this.socket.remotePort },
          sendBufferBytes: 1 << 30,
          pingIntervalMs: LINK_PING_INTERVAL_MS,
          idleTimeoutMs: LINK_IDLE_TIMEOUT_MS,
        },
        {
          established: (_c, _link, result) => {
            this.session = result;
            resolve(result);
          },
          failed: (_c, reason, error) => reject(error ?? new Error(`handshake failed: ${reason}`)),
          message: (_link, message) => void this.messages.push(message),
          linkClosed: (_link, reason) => void (this.linkClosedReason = reason),
        },
      );
      this.connection.start();
      for (const chunk of this.early.splice(0)) this.connection.receive(chunk);
      if (this.closed) this.connection.closed();
    });
    await released;
    return session;
  }

  /** One encrypted frame for `message` (or raw plaintext bytes), not written yet; it takes the next nonce. */
  seal(message: LinkMessage | Uint8Array): Uint8Array {
    const plaintext = message instanceof Uint8Array ? message : encodeLinkMessage(message);
    return writeFrameHeader(this.session!.sendCipher.encrypt(plaintext, FRAME_HEADER_BYTES));
  }

  /** One frame for `message`, sealed and written now (not batched by the link). */
  send(message: LinkMessage | Uint8Array): void {
    this.write(this.seal(message));
  }

  payloads(dataType?: number): Payload[] {
    const out: Payload[] = [];
    for (const m of this.messages) {
      if (m.kind?.$case === "payload" && (dataType === undefined || m.kind.value.dataType === dataType)) out.push(m.kind.value);
    }
    return out;
  }

  async waitClosed(timeoutMs = 3000): Promise<void> {
    await waitFor(() => this.closed, timeoutMs, "the node to close the connection");
  }

  /** Stops reading (the node's frames pile up in its send queue and the kernel buffers). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** A graceful close (FIN). */
  close(): void {
    this.socket.end();
  }

  private received(chunk: Uint8Array): void {
    if (this.connection) {
      this.connection.receive(chunk);
      return;
    }
    this.early.push(chunk);
    try {
      this.handshakeFrames.push(...this.reader.push(chunk));
    } catch {
      this.socket.terminate();
    }
  }

  private gone(): void {
    this.closed = true;
    this.connection?.closed();
  }

  private flush(): void {
    while (this.outbox.length > 0) {
      const head = this.outbox[0]!;
      const written = Math.max(0, this.socket.write(head));
      if (written < head.length) {
        this.outbox[0] = head.subarray(written);
        return;
      }
      this.outbox.shift();
    }
  }
}
