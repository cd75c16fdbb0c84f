/**
 * One authenticated, encrypted peer link, after the handshake (connection.ts runs that and feeds this its frames):
 * frames are encrypted with the per-direction transport ciphers, queued against a byte bound, and kept alive with
 * Ping/Pong. A message to an idle link is written at once; under load a turn's messages share a Batch frame. Its
 * owner may pause handing messages up (flow control: connection.ts stops reading the socket). Any decryption failure, oversize frame or undecodable message closes the link without a reply (a byte
 * stream cannot be resynchronised). It never touches a socket (bytes go to a SendQueue, and `end` closes the stream)
 * and never interprets payloads: it hands decoded LinkMessages up.
 */
import { BATCH_MAX_BYTES } from "../defaults.ts";
import { P2PProtocolError } from "../errors.ts";
import type { SendQueue } from "../net/send-queue.ts";
import { TurnPacer, type TurnEnder } from "../net/turn-end.ts";
import type { TransportCipher } from "./cipher.ts";
import { FRAME_HEADER_BYTES, writeFrameHeader } from "./frame.ts";
import { LinkErrorCode, type LinkMessage } from "./proto/gossip.ts";
import { remoteError, type CloseReason } from "./reasons.ts";
import {
  FEATURE_ROOTS,
  FEATURE_TREES,
  FEATURE_VIEWS,
  LINK_KIND_FIELD,
  decodeLinkMessage,
  encodeBatch,
  encodeLinkMessage,
  isRootField,
  isTreeField,
  isViewField,
  linkKindField,
  unpackBatch,
} from "./wire.ts";

export interface LinkOptions {
  /** Bytes that may wait in the send queue; droppable messages past it are dropped, others close the link. */
  sendBufferBytes: number;
  pingIntervalMs: number;
  /** No frame received for this long: the peer is gone. */
  idleTimeoutMs: number;
}

export interface LinkDescription {
  peerId: string;
  remoteHost: string;
  remotePort: number;
  /** The port the peer listens on for P2P, as it told us in the handshake (0 if unknown). */
  listenPort: number;
  inbound: boolean;
  /** ID of the side that dialed: decides which link survives a simultaneous open. */
  initiatorId: string;
  /** Feature bits both sides offered in the handshake (wire.ts FEATURE_*): what this link may carry. */
  features: number;
  /** The handshake's last round trip, ms: M1 sent → M2 received at the initiator, M2 sent → M3 received at the
   *  responder (the peer's handshake work, a DH and a signature, included: about a millisecond). */
  rttMs?: number;
}

/** Whether the link carries broadcast-tree messages (both sides offered FEATURE_TREES). */
export function speaksTrees(d: LinkDescription): boolean {
  return (d.features & FEATURE_TREES) !== 0;
}

/** Whether the link carries rooted-tree adverts (both sides offered FEATURE_TREES and FEATURE_ROOTS). */
export function speaksRoots(d: LinkDescription): boolean {
  return (d.features & FEATURE_TREES) !== 0 && (d.features & FEATURE_ROOTS) !== 0;
}

/** Whether the link carries membership-view messages (both sides offered FEATURE_VIEWS). */
export function speaksViews(d: LinkDescription): boolean {
  return (d.features & FEATURE_VIEWS) !== 0;
}

/** Slots of the per-kind counters: a first byte's `>> 3` (wire.ts linkKindField) is below 32. */
const KIND_SLOTS = 32;

export class Link implements TurnEnder {
  readonly openedAt = Date.now();
  bytesIn = 0;
  bytesOut = 0;
  droppedMessages = 0;
  /** Frames from the peer that decrypted. */
  framesIn = 0;
  /** When the tick last saw a new frame (frames are counted, not timed: no clock read per frame). */
  private lastReceived = Date.now();
  private bytesInAtTick = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  private pingCounter = 0n;
  /** Encoded messages of this event-loop turn, in order, not yet sealed and handed to the send queue. */
  private corked: Uint8Array[] = [];
  private corkedBytes = 0;
  private readonly pacer = new TurnPacer(this);
  /** Frames sealed and messages carried (the ratio is how much batching saves). */
  framesOut = 0;
  messagesOut = 0;
  /** Messages queued and received, by LinkMessage field number (wire.ts LINK_KIND_FIELD; Batch entries counted one
   *  by one, the Batch itself not). */
  readonly sentByKind: number[] = new Array<number>(KIND_SLOTS).fill(0);
  readonly receivedByKind: number[] = new Array<number>(KIND_SLOTS).fill(0);
  closed = false;
  private readonly trees: boolean;
  private readonly roots: boolean;
  private readonly views: boolean;
  private pausedReading = false;
  /** Messages of a Batch that arrived after pause(), handed up on resume(). */
  private held: LinkMessage[] = [];

  constructor(
    readonly info: LinkDescription,
    private readonly queue: SendQueue,
    /** Ends the byte stream once what is queued has gone (the connection's sink). */
    private readonly end: () => void,
    private readonly sendCipher: TransportCipher,
    private readonly recvCipher: TransportCipher,
    private readonly options: LinkOptions,
    private readonly onMessage: (link: Link, message: LinkMessage) => void,
    private readonly onClose: (link: Link, reason: CloseReason) => void,
  ) {
    this.timer = setInterval(() => this.tick(), Math.min(options.pingIntervalMs, options.idleTimeoutMs));
    this.trees = speaksTrees(info);
    this.roots = speaksRoots(info);
    this.views = speaksViews(info);
  }

  /** Bytes handed to this link and not yet taken by the kernel (this turn's messages included). */
  get queuedBytes(): number {
    return this.queue.pending + this.corkedBytes;
  }

  /**
   * Queues one message for this turn's frame. Returns false if it was dropped: the link is closed, the message is of a
   * kind this link did not negotiate (a broadcast-tree or view kind to a peer that does not speak it would close the
   * link there), or, when droppable, the buffer is full.
   */
  send(message: LinkMessage | Uint8Array, droppable = false): boolean {
    if (this.closed) return false;
    const plaintext = message instanceof Uint8Array ? message : encodeLinkMessage(message);
    const field = linkKindField(plaintext);
    if (!this.negotiated(field)) return false;
    if (droppable && this.queue.pending + this.corkedBytes + plaintext.length > this.options.sendBufferBytes) {
      this.droppedMessages++;
      return false;
    }
    this.sentByKind[field]!++;
    // A message to an idle link leaves at once (net/turn-end.ts TurnPacer); the others wait for the end of the turn,
    // when those for this peer are sealed together (one AEAD call and one frame per Batch instead of per message)
    // and leave in one write.
    if (this.pacer.message(this.corked.length === 0 && this.queue.pending === 0)) {
      this.write([plaintext]);
      return true;
    }
    this.corked.push(plaintext);
    this.corkedBytes += plaintext.length;
    return true;
  }

  /** The end of the turn (net/turn-end.ts): this turn's messages leave. */
  endTurn(): void {
    this.pacer.turnEnded();
    this.uncork();
  }

  /** Seals this turn's messages into frames and hands them to the send queue in one write (turn end, and close). */
  uncork(): void {
    if (this.corked.length === 0) return;
    const messages = this.corked;
    this.corked = [];
    this.corkedBytes = 0;
    this.write(messages);
  }

  /** Seals messages into as few frames as BATCH_MAX_BYTES allows and writes them in one write. */
  private write(messages: Uint8Array[]): void {
    const frames: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < messages.length; ) {
      let bytes = messages[i]!.length;
      let j = i + 1;
      while (j < messages.length && bytes + messages[j]!.length <= BATCH_MAX_BYTES) bytes += messages[j++]!.length;
      // Ciphertext lands after room for the length prefix: one allocation per frame.
      const frame = writeFrameHeader(this.sendCipher.encrypt(encodeBatch(messages.slice(i, j)), FRAME_HEADER_BYTES));
      frames.push(frame);
      total += frame.length;
      i = j;
    }
    this.framesOut += frames.length;
    this.messagesOut += messages.length;
    this.bytesOut += total;
    // Droppable messages were bounded in send(); only messages that may not be dropped can overflow here.
    if (!this.queue.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, total)) && !this.closed) {
      this.close("send-buffer-full");
    }
  }

  /** One whole frame body (ciphertext) from the frame reader. */
  receiveFrame(body: Uint8Array): void {
    if (this.closed) return;
    this.bytesIn += body.length + 4;
    let message: LinkMessage;
    try {
      const plaintext = this.recvCipher.decrypt(body);
      this.framesIn++;
      message = decodeLinkMessage(plaintext);
    } catch (e) {
      this.close(protocolCode(e));
      return;
    }
    if (message.kind?.$case === "batch") {
      let inner: LinkMessage[];
      try {
        inner = unpackBatch(message.kind.value);
      } catch (e) {
        this.close(protocolCode(e));
        return;
      }
      for (let i = 0; i < inner.length && !this.closed; i++) {
        if (this.paused) {
          this.held.push(...inner.slice(i));
          return;
        }
        this.handle(inner[i]!);
      }
      return;
    }
    this.handle(message);
  }

  /** Whether messages from the peer are held rather than handed up (pause()/resume(); connection.ts holds whole
   *  frames meanwhile and stops reading the socket). */
  get paused(): boolean {
    return this.pausedReading;
  }

  /** Stops handing messages up, from the next one on (also in the middle of a Batch: the rest waits, in order). */
  pause(): void {
    this.pausedReading = true;
  }

  /** Hands up what waited, in order, until paused again. */
  resume(): void {
    this.pausedReading = false;
    while (this.held.length > 0 && !this.pausedReading && !this.closed) this.handle(this.held.shift()!);
  }

  private handle(message: LinkMessage): void {
    const kind = message.kind;
    const field = LINK_KIND_FIELD[kind!.$case]; // decodeLinkMessage never gives a message of no kind
    this.receivedByKind[field]!++;
    // A kind this link did not negotiate is what a node that does not know it would see: unknown, and the end.
    if (!this.negotiated(field)) {
      this.close("unknown-message");
      return;
    }
    if (kind?.$case === "ping") {
      this.send({ kind: { $case: "pong", value: { nonce: kind.value.nonce } } });
      return;
    }
    if (kind?.$case === "pong") return;
    if (kind?.$case === "error") {
      this.close(remoteError(kind.value.code));
      return;
    }
    this.onMessage(this, message);
  }

  /** Whether this link may carry messages of the kind with this field number (a known kind, decoded or our own). */
  private negotiated(field: number): boolean {
    return (this.trees || !isTreeField(field)) && (this.views || !isViewField(field)) && (this.roots || !isRootField(field));
  }

  /** Sends a LinkError (best effort) and closes. */
  closeWithError(code: LinkErrorCode, reason: CloseReason): void {
    if (!this.closed) this.send({ kind: { $case: "error", value: { code, message: reason } } });
    this.close(reason);
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.uncork();
    this.queue.flush();
    this.end();
    this.onClose(this, reason);
  }

  private tick(): void {
    const now = Date.now();
    if (this.bytesIn !== this.bytesInAtTick) {
      this.bytesInAtTick = this.bytesIn;
      this.lastReceived = now;
    }
    if (now - this.lastReceived > this.options.idleTimeoutMs) {
      this.close("idle-timeout");
      return;
    }
    this.send({ kind: { $case: "ping", value: { nonce: ++this.pingCounter } } });
  }
}

/** A decoder's P2PProtocolError code; anything else it threw is our bug, not the peer's. */
function protocolCode(e: unknown): CloseReason {
  if (e instanceof P2PProtocolError) return e.code as CloseReason;
  return "internal-error";
}
