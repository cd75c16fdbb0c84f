/**
 * A hand-driven P2P peer for hostile tests: a raw TCP socket on which the test runs the real handshake (src/p2p/
 * handshake.ts) step by step or at once, and then writes whatever it likes — honest frames, tampered, reordered,
 * duplicated or truncated ones, hand-made protobuf — while recording what the node sends back.
 */
import type { Socket } from "bun";
import { FrameReader, encodeFrame, FRAME_HEADER_BYTES, writeFrameHeader } from "../../src/p2p/frame.ts";
import { InitiatorHandshake, type HandshakeResult } from "../../src/p2p/handshake.ts";
import { generateEd25519Pem, generateStaticKeyPair, loadIdentity, type Identity, type StaticKeyPair } from "../../src/p2p/identity.ts";
import { leadingZeroBits, powDigest } from "../../src/p2p/pow-input.ts";
import type { LinkMessage, Payload } from "../../src/p2p/proto/gossip.ts";
import { decodeLinkMessage, encodeLinkMessage, unpackBatch } from "../../src/p2p/wire.ts";
import { itemId } from "../../src/gossip/item-id.ts";
import { waitFor } from "../api/client.ts";

export interface RawPeerOptions {
  identity?: Identity;
  staticKeys?: StaticKeyPair;
  /** Must match the node's, or the link dies at the first rekey. */
  rekeyInterval?: number;
}

/** The first nonce whose digest has ≥ `difficulty` leading zero bits (and fewer than `below`, to fake weak work). */
export function solvePow(prefix: Uint8Array, difficulty: number, below = 257): Uint8Array {
  const nonce = new Uint8Array(8);
  const view = new DataView(nonce.buffer);
  for (let i = 0n; ; i++) {
    view.setBigUint64(0, i);
    const bits = leadingZeroBits(powDigest(prefix, nonce));
    if (bits >= difficulty && bits < below) return nonce;
  }
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
  /** Link messages received once the session is up, decrypted. */
  readonly messages: LinkMessage[] = [];
  /** Frames from the node that decrypted (one frame may carry a Batch of several messages). */
  framesIn = 0;
  /** Bodies of every frame this peer sent (for replays). */
  readonly sentFrames: Uint8Array[] = [];
  session: HandshakeResult | undefined;
  closed = false;
  /** Frames from the node that did not decrypt or decode (there should never be any). */
  readonly errors: Error[] = [];
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
        close: () => void (peer.closed = true),
        error: () => void (peer.closed = true),
      },
    });
    return peer;
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

  /** The next cleartext handshake frame body the node sent. */
  async nextFrame(timeoutMs = 3000): Promise<Uint8Array> {
    await waitFor(() => this.handshakeFrames.length > 0 || this.closed, timeoutMs, "a handshake frame");
    const body = this.handshakeFrames.shift();
    if (body === undefined) throw new Error("closed before the frame arrived");
    return body;
  }

  /** An honest initiator's handshake; the hooks run before M1 and before M3 (to stall there). */
  async handshake(hooks: { beforeInit?: () => Promise<void>; beforeFinal?: () => Promise<void> } = {}): Promise<HandshakeResult> {
    const initiator = new InitiatorHandshake({
      identity: this.identity,
      staticKeys: this.staticKeys,
      maxDifficulty: 12,
      rekeyInterval: this.options.rekeyInterval,
    });
    const { powPrefix, difficulty } = initiator.recvHello(await this.nextFrame());
    await hooks.beforeInit?.();
    this.sendFrame(initiator.init(solvePow(powPrefix, difficulty)));
    const { send, result } = initiator.recvResponse(await this.nextFrame());
    await hooks.beforeFinal?.();
    this.session = result;
    this.sendFrame(send);
    return result;
  }

  /** One encrypted frame for `message` (or raw plaintext bytes), not written yet; it takes the next nonce. */
  seal(message: LinkMessage | Uint8Array): Uint8Array {
    const plaintext = message instanceof Uint8Array ? message : encodeLinkMessage(message);
    return writeFrameHeader(this.session!.sendCipher.encrypt(plaintext, FRAME_HEADER_BYTES));
  }

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

  pause(): void {
    this.socket.pause();
  }

  /** A graceful close (FIN). */
  close(): void {
    this.socket.end();
  }

  private received(chunk: Uint8Array): void {
    let bodies: Uint8Array[];
    try {
      bodies = this.reader.push(chunk);
    } catch {
      this.socket.terminate();
      return;
    }
    for (const body of bodies) {
      if (this.session === undefined) {
        this.handshakeFrames.push(body);
        continue;
      }
      let messages: LinkMessage[];
      try {
        const plaintext = this.session.recvCipher.decrypt(body);
        this.framesIn++;
        const message = decodeLinkMessage(plaintext);
        // What the node queued for us within one turn arrives as one Batch frame.
        messages = message.kind?.$case === "batch" ? unpackBatch(message.kind.value) : [message];
      } catch (e) {
        // The node's frames are honest: a failure here is for the test to see.
        this.errors.push(e as Error);
        this.socket.terminate();
        return;
      }
      for (const message of messages) {
        this.messages.push(message);
        // Answer liveness checks like any honest peer, so a long-lived observer is not dropped as idle.
        if (message.kind?.$case === "ping" && !this.closed) this.send({ kind: { $case: "pong", value: { nonce: message.kind.value.nonce } } });
      }
    }
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
