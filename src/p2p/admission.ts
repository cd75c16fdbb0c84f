/**
 * Whether an authenticated peer becomes a link: the admission rules in the order they apply, as a pure function of
 * what the transport knows at that moment, so they are tested without sockets. Never refuses a duplicate: a second
 * link to a linked peer is settled by the simultaneous-open rule instead (both sides keep the link initiated by the
 * lower ID, so they agree without talking).
 */
import { isLoopback } from "../address.ts";
import { LinkErrorCode } from "./proto/gossip.ts";
import type { RefusalReason } from "./reasons.ts";

export interface AdmissionInput {
  localId: string;
  peerId: string;
  inbound: boolean;
  /** Who dialed this connection. */
  initiatorId: string;
  remoteHost: string;
  banned: boolean;
  /** The initiator of the link we already have to this peer, if any. */
  existingInitiatorId: string | undefined;
  /** Asked only for inbound links that reach that rule (membership's inbound cap). */
  acceptInbound: () => boolean;
  /** Inbound links we hold from `remoteHost` now. */
  inboundFromHost: number;
  maxInboundPerIp: number;
  /** Apply the per-IP cap to loopback too (tests); by default local nodes sharing 127.0.0.1 are exempt. */
  limitLoopback: boolean;
}

export type Admission =
  | { kind: "accept" }
  | { kind: "duplicate"; keepNew: boolean }
  | { kind: "refuse"; code: LinkErrorCode; reason: RefusalReason; referrals: boolean };

const refuse = (code: LinkErrorCode, reason: RefusalReason, referrals = false): Admission => ({ kind: "refuse", code, reason, referrals });

export function admitLink(a: AdmissionInput): Admission {
  if (a.peerId === a.localId) return refuse(LinkErrorCode.DUPLICATE_LINK, "self-connection");
  if (a.banned) return refuse(LinkErrorCode.MISBEHAVIOUR, "peer-banned");
  if (a.existingInitiatorId !== undefined) {
    return { kind: "duplicate", keepNew: a.existingInitiatorId !== a.initiatorId && a.initiatorId < a.existingInitiatorId };
  }
  if (!a.inbound) return { kind: "accept" };
  // A newcomer turned away for lack of room is told where else to go.
  if (!a.acceptInbound()) return refuse(LinkErrorCode.TOO_MANY_LINKS, "too-many-links", true);
  if (a.inboundFromHost >= a.maxInboundPerIp && (a.limitLoopback || !isLoopback(a.remoteHost))) {
    return refuse(LinkErrorCode.TOO_MANY_LINKS, "too-many-from-ip");
  }
  return { kind: "accept" };
}
