import { expect, test } from "bun:test";
import { admitLink, type AdmissionInput } from "../../src/p2p/admission.ts";
import { LinkErrorCode } from "../../src/p2p/proto/gossip.ts";

const base: AdmissionInput = {
  localId: "bb",
  peerId: "cc",
  inbound: true,
  initiatorId: "cc",
  remoteHost: "10.0.0.7",
  banned: false,
  existingInitiatorId: undefined,
  acceptInbound: () => true,
  inboundFromHost: 0,
  maxInboundPerIp: 8,
  limitLoopback: false,
};
const reason = (over: Partial<AdmissionInput>) => {
  const a = admitLink({ ...base, ...over });
  return a.kind === "refuse" ? a.reason : a.kind;
};

test("rules apply in order: self, banned, duplicate, inbound cap (with referrals), per-IP cap", () => {
  expect(reason({})).toBe("accept");
  expect(reason({ peerId: "bb", banned: true })).toBe("self-connection");
  expect(reason({ banned: true, existingInitiatorId: "cc" })).toBe("peer-banned");
  expect(reason({ existingInitiatorId: "bb", acceptInbound: () => false })).toBe("duplicate");
  expect(admitLink({ ...base, acceptInbound: () => false, inboundFromHost: 99 })).toEqual({
    kind: "refuse",
    code: LinkErrorCode.TOO_MANY_LINKS,
    reason: "too-many-links",
    referrals: true,
  });
  expect(reason({ inboundFromHost: 8 })).toBe("too-many-from-ip");
  expect(reason({ inboundFromHost: 7 })).toBe("accept");
});

test("outbound links skip the inbound rules; loopback is exempt from the per-IP cap unless asked", () => {
  let asked = false;
  expect(reason({ inbound: false, initiatorId: "bb", acceptInbound: () => (asked = true) && false, inboundFromHost: 99 })).toBe("accept");
  expect(asked).toBe(false);
  expect(reason({ remoteHost: "127.0.0.1", inboundFromHost: 50 })).toBe("accept");
  expect(reason({ remoteHost: "::1", inboundFromHost: 50, limitLoopback: true })).toBe("too-many-from-ip");
});

test("simultaneous open: both ends keep the link initiated by the lower ID", () => {
  // We are bb, the peer is cc. Our dial (initiator bb) meets its dial (initiator cc): bb < cc, so bb's link stays.
  expect(admitLink({ ...base, initiatorId: "bb", existingInitiatorId: "cc" })).toEqual({ kind: "duplicate", keepNew: true });
  expect(admitLink({ ...base, initiatorId: "cc", existingInitiatorId: "bb" })).toEqual({ kind: "duplicate", keepNew: false });
  // The same initiator twice (a redial): keep the link we have.
  expect(admitLink({ ...base, initiatorId: "cc", existingInitiatorId: "cc" })).toEqual({ kind: "duplicate", keepNew: false });
});
