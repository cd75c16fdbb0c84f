// The gossip core's view messages as link messages and back (src/peer-messages.ts): every kind survives
// encode → bytes → strict decode → dispatch unchanged, and what the wire cannot carry is cut to its bounds or left
// out before it is sent, never sent for the peer to refuse (a message out of bounds closes the link there).
import { describe, expect, test } from "bun:test";
import type { PeerAddress, PeerEvents, ViewMessage } from "../src/gossip/ports.ts";
import { dispatch, peerListMessage, viewLinkMessage } from "../src/peer-messages.ts";
import type { LinkMessage } from "../src/p2p/proto/gossip.ts";
import { MAX_VIEW_ENTRIES, MAX_VIEW_TTL, decodeLinkMessage, encodeLinkMessage } from "../src/p2p/wire.ts";

const ID = "ab".repeat(32);
const addr = (port: number, id?: string): PeerAddress => (id === undefined ? { host: "127.0.0.1", port } : { host: "127.0.0.1", port, id });

/** What the peer's core would be told after the message crossed the wire. */
function acrossTheWire(m: LinkMessage): ViewMessage[] {
  const got: ViewMessage[] = [];
  const events = { views: (_from: string, v: ViewMessage) => void got.push(v) } as unknown as PeerEvents;
  dispatch(events, "peer", decodeLinkMessage(encodeLinkMessage(m)));
  return got;
}

describe("view messages on the wire", () => {
  const kinds: ViewMessage[] = [
    { kind: "join" },
    { kind: "forward-join", peer: addr(6001, ID), ttl: 6 },
    { kind: "neighbor", high: true },
    { kind: "neighbor", high: false },
    { kind: "disconnect" },
    { kind: "shuffle", id: 0x7fff_fffe, ttl: 5, entries: [addr(6002, ID), addr(6003)] },
    { kind: "shuffle", id: 3, ttl: 4, origin: addr(6004, ID), entries: [] },
    { kind: "shuffle-reply", id: 3, entries: [addr(6005), addr(6006, ID)] },
  ];

  test("every kind arrives as it was sent", () => {
    for (const v of kinds) expect(acrossTheWire(viewLinkMessage(v)!.message)).toEqual([v]);
  });

  test("the walks may be dropped under load; JOIN, NEIGHBOR and DISCONNECT may not", () => {
    expect(kinds.map((v) => viewLinkMessage(v)!.droppable)).toEqual([false, true, false, false, false, true, true, true]);
  });

  test("lists are cut to 16 entries, walks to 16 hops, and addresses the wire cannot carry are left out", () => {
    const bad = [addr(0), { host: "", port: 1 }, { host: "é".repeat(127), port: 1 }, { host: "h", port: 70000 }, { host: "h", port: 1, id: "xyz" }];
    const good = Array.from({ length: 20 }, (_, i) => addr(7000 + i));
    const [shuffled] = acrossTheWire(viewLinkMessage({ kind: "shuffle", id: 9, ttl: 40, origin: addr(0), entries: [...bad, ...good] })!.message);
    expect(shuffled).toEqual({ kind: "shuffle", id: 9, ttl: MAX_VIEW_TTL, entries: good.slice(0, MAX_VIEW_ENTRIES) });
    const [reply] = acrossTheWire(viewLinkMessage({ kind: "shuffle-reply", id: 9, entries: [...good, ...bad] })!.message);
    expect(reply).toEqual({ kind: "shuffle-reply", id: 9, entries: good.slice(0, MAX_VIEW_ENTRIES) });
    expect(viewLinkMessage({ kind: "forward-join", peer: addr(0, ID), ttl: 3 })).toBeUndefined();
    const [walk] = acrossTheWire(viewLinkMessage({ kind: "forward-join", peer: addr(1, ID), ttl: -2 })!.message);
    expect(walk).toEqual({ kind: "forward-join", peer: addr(1, ID), ttl: 0 });
    // Peer exchange takes the same care.
    const list = decodeLinkMessage(encodeLinkMessage(peerListMessage([...bad, addr(6001, ID)])));
    expect(list.kind).toEqual({ $case: "peerList", value: { peers: [{ host: "127.0.0.1", port: 6001, id: Buffer.from(ID, "hex") }] } });
  });
});
