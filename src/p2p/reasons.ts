/**
 * The P2P layer's closed sets of reason codes, one name per condition: what a P2PProtocolError says a peer's bytes
 * did wrong, why a connection did not become a link, and why a link closed. Logs ("handshake failed", "link down"),
 * the gossip_handshakes_failed_total label and dial rejections use exactly these names (kebab-case).
 * Only types and tiny pure helpers here: nothing that holds state or does I/O.
 */
import { LinkErrorCode } from "./proto/gossip.ts";

/** Framing (frame.ts). `reader-dead`: bytes fed to a reader that already failed (never reaches a log: the first
 *  failure closes the connection). */
export type FrameErrorCode = "empty-frame" | "frame-too-large" | "reader-dead";

/** Protobuf (wire.ts). */
export type DecodeErrorCode = "undecodable" | "unknown-message" | "malformed" | "non-canonical";

/** Noise and the transport ciphers (noise.ts, cipher.ts). */
export type CryptoErrorCode = "decrypt-failed" | "nonce-exhausted" | "bad-point";

/** The handshake's own checks (handshake.ts, and connection.ts for a frame that comes while we solve the work). */
export type HandshakeErrorCode =
  | "bad-version"
  | "bad-pow"
  | "difficulty-too-high"
  | "unexpected-peer"
  | "self-connection"
  | "id-mismatch"
  | "bad-signature"
  /** The peer's identity proof of work (IdentityProof.identity_nonce) is missing or below what we demand. */
  | "weak-identity"
  | "out-of-order"
  | "handshake-dead"
  | "unexpected-frame";

/** Every code a P2PProtocolError carries: the peer's bytes broke the protocol. */
export type P2PErrorCode = FrameErrorCode | DecodeErrorCode | CryptoErrorCode | HandshakeErrorCode;

/** An authenticated peer that admission refuses (admission.ts); its link is closed with a LinkError. */
export type RefusalReason = "self-connection" | "peer-banned" | "too-many-links" | "too-many-from-ip";

/** Ends that are nobody's protocol violation. `internal-error`: a bug of ours surfaced while handling a peer. */
export type EndReason = "closed-by-peer" | "socket-error" | "shutting-down" | "internal-error";

/**
 * Why a connection did not become a link: "handshake failed" / "handshake refused" logs, the handshakesFailed
 * stats (gossip_handshakes_failed_total), and DialError.code.
 */
export type HandshakeFailure =
  | P2PErrorCode
  | RefusalReason
  | EndReason
  | "connect-failed"
  | "handshake-timeout"
  | "too-many-pending"
  /** Its pending slot went to a newcomer from an address with a smaller share, before any proof of work arrived. */
  | "handshake-evicted"
  | "pow-failed";

/** The peer's LinkError just before it closed: the code's name (its number if it is not one we know). */
export type RemoteErrorReason = `remote-error:${keyof typeof LinkErrorCode | number}`;

export function remoteError(code: number): RemoteErrorReason {
  const name = LinkErrorCode[code] as keyof typeof LinkErrorCode | undefined;
  return `remote-error:${name ?? code}`;
}

declare const ownerReasonBrand: unique symbol;
/** A reason the transport's owner gave to Transport.disconnect() (the gossip layer's own codes, e.g. a ban): opaque
 *  here and passed through as it is. */
export type OwnerReason = string & { readonly [ownerReasonBrand]: true };

export const ownerReason = (text: string): OwnerReason => text as OwnerReason;

/** Protocol errors that can end an established link (the handshake's own codes cannot). */
export type LinkProtocolCode = FrameErrorCode | DecodeErrorCode | "decrypt-failed" | "nonce-exhausted";

/** Why a link closed ("link down", or "link closed" for a refused or replaced duplicate; TransportEvents.linkDown). */
export type CloseReason =
  | LinkProtocolCode
  | RefusalReason
  | EndReason
  | RemoteErrorReason
  | OwnerReason
  | "idle-timeout"
  | "send-buffer-full"
  | "duplicate-link";
