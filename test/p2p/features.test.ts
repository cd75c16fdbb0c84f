// Feature negotiation on a connection pair in memory (test/p2p/memory-pair.ts): what each side offers in its
// encrypted IdentityProof, what the link then carries, and what happens to broadcast-tree and membership-view
// messages on a link that did not negotiate them (never sent by us; closing it as unknown when a peer sends one
// anyway). Also: a link's last messages (a DISCONNECT, its LinkError) reach the peer behind a backlog.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import type { LinkMessage } from "../../src/p2p/proto/gossip.ts";
import { LINK_CLOSE_LINGER_MS } from "../../src/defaults.ts";
import { LinkErrorCode } from "../../src/p2p/proto/gossip.ts";
import { ownerReason } from "../../src/p2p/reasons.ts";
import { FEATURE_TREES, FEATURE_VIEWS, LINK_KIND_FIELD, SUPPORTED_FEATURES, encodeBatch, encodeLinkMessage } from "../../src/p2p/wire.ts";
import { waitFor } from "../wait-for.ts";
import { memoryPair, nextTurn, payloadTexts, sealAs, type PairOptions, type Side } from "./memory-pair.ts";
import { VIEW_FIELDS, viewCount, viewMessages } from "./view-messages.ts";

const prefix = () => randomBytes(8);
const treeMessages: LinkMessage[] = [
  { kind: { $case: "ihave", value: { entries: [{ idPrefix: prefix(), dataType: 1337, hops: 3 }] } } },
  { kind: { $case: "graft", value: { idPrefix: [prefix()] } } },
  { kind: { $case: "prune", value: {} } },
  { kind: { $case: "dontHave", value: { idPrefix: [prefix(), prefix()] } } },
];
const TREE_FIELDS = [LINK_KIND_FIELD.ihave, LINK_KIND_FIELD.graft, LINK_KIND_FIELD.prune, LINK_KIND_FIELD.dontHave];
const text = (t: string): LinkMessage => ({
  kind: { $case: "payload", value: { messageId: randomBytes(32), ttl: 3, dataType: 540, data: new TextEncoder().encode(t), hops: 2 } },
});
const treeCount = (counts: number[]) => TREE_FIELDS.reduce((n, f) => n + counts[f]!, 0);

async function linked(options: PairOptions): Promise<{ dialer: Side; listener: Side }> {
  const pair = memoryPair(options);
  await waitFor(() => pair.dialer.link && pair.listener.link, 3000, "both links up");
  return pair;
}

describe("feature negotiation", () => {
  test("both sides offer trees and views: both links carry them, and every kind arrives in order, also inside a Batch", async () => {
    const { dialer, listener } = await linked({});
    expect([dialer.link!.info.features, listener.link!.info.features]).toEqual([SUPPORTED_FEATURES, SUPPORTED_FEATURES]);
    expect([dialer.session!.remoteFeatures, listener.session!.remoteFeatures]).toEqual([SUPPORTED_FEATURES, SUPPORTED_FEATURES]);
    const all = [...treeMessages, ...viewMessages];
    for (const m of [...all, text("after")]) expect(dialer.link!.send(m)).toBe(true); // one turn: the first at once, one Batch
    await waitFor(() => listener.messages.length === all.length + 1, 3000, "every message");
    expect(listener.messages.slice(0, all.length)).toEqual(all);
    expect(payloadTexts(listener)).toEqual(["after"]);
    expect(dialer.link!.framesOut).toBe(2);
    expect(TREE_FIELDS.map((f) => listener.link!.receivedByKind[f])).toEqual([1, 1, 1, 1]);
    expect(TREE_FIELDS.map((f) => dialer.link!.sentByKind[f])).toEqual([1, 1, 1, 1]);
    // Shuffle (16) and ShuffleReply (17) have two-byte tags: counted under their own field, not folded onto 0 and 1.
    expect(VIEW_FIELDS.map((f) => listener.link!.receivedByKind[f])).toEqual([1, 1, 2, 1, 2, 1]);
    expect(VIEW_FIELDS.map((f) => dialer.link!.sentByKind[f])).toEqual([1, 1, 2, 1, 2, 1]);
    expect(listener.link!.receivedByKind[LINK_KIND_FIELD.payload]).toBe(1);
    expect([listener.link!.receivedByKind[0], listener.link!.receivedByKind[1]]).toEqual([0, 1]);
  });

  test("a side that offers trees only (a classic node): the link carries trees, and no view message either way", async () => {
    const { dialer, listener } = await linked({ listener: { features: FEATURE_TREES } });
    expect([dialer.link!.info.features, listener.link!.info.features]).toEqual([FEATURE_TREES, FEATURE_TREES]);
    for (const side of [dialer, listener]) {
      for (const m of viewMessages) expect(side.link!.send(m)).toBe(false);
      expect(side.link!.send(treeMessages[2]!)).toBe(true);
    }
    await waitFor(() => dialer.messages.length === 1 && listener.messages.length === 1, 3000, "a PRUNE each way");
    await nextTurn();
    for (const side of [dialer, listener]) {
      expect([viewCount(side.link!.sentByKind), viewCount(side.link!.receivedByKind)]).toEqual([0, 0]);
      expect(side.closeReason).toBeUndefined();
    }
  });

  // An older node sends no features at all: offering 0 produces exactly its IdentityProof bytes.
  for (const older of ["dialer", "listener"] as const) {
    test(`the ${older} offers nothing (an older node): neither link carries trees, neither side sends one, items flow`, async () => {
      const pair = await linked({ [older]: { features: 0 } });
      const { dialer, listener } = pair;
      expect([dialer.link!.info.features, listener.link!.info.features]).toEqual([0, 0]);
      expect(pair[older === "dialer" ? "listener" : "dialer"].session!.remoteFeatures).toBe(0);
      for (const side of [dialer, listener]) {
        for (const m of [...treeMessages, ...viewMessages]) expect(side.link!.send(m)).toBe(false);
        expect(side.link!.send(text(`from ${side === dialer ? "dialer" : "listener"}`))).toBe(true);
      }
      await waitFor(() => payloadTexts(listener).length === 1 && payloadTexts(dialer).length === 1, 3000, "the items");
      await nextTurn();
      for (const side of [dialer, listener]) {
        expect(treeCount(side.link!.sentByKind)).toBe(0);
        expect(treeCount(side.link!.receivedByKind)).toBe(0);
        expect([viewCount(side.link!.sentByKind), viewCount(side.link!.receivedByKind)]).toEqual([0, 0]);
        expect(side.closeReason).toBeUndefined();
      }
    });
  }

  test("feature bits we do not know are ignored: the link carries only what both sides speak", async () => {
    const { dialer, listener } = await linked({ dialer: { features: 0xffff_ffff } });
    expect(listener.session!.remoteFeatures).toBe(0xffff_ffff);
    expect([dialer.link!.info.features, listener.link!.info.features]).toEqual([SUPPORTED_FEATURES, SUPPORTED_FEATURES]);
  });

  const strangers: [string, LinkMessage, number][] = [
    ["a tree message on a link that did not negotiate trees", treeMessages[1]!, FEATURE_VIEWS],
    ["a view message (Shuffle, a two-byte tag) on a link that did not negotiate views", viewMessages[5]!, FEATURE_TREES],
    ["a view message (Disconnect) on a link that did not negotiate views", viewMessages[4]!, FEATURE_TREES],
  ];
  for (const [what, stranger, listenerFeatures] of strangers) for (const batched of [false, true]) {
    test(`${what}${batched ? ", inside a Batch" : ""}: unknown-message, nothing after it`, async () => {
      const pair = await linked({ listener: { features: listenerFeatures } });
      const { dialer, listener } = pair;
      const [before, graft, after] = [text("before"), stranger, text("after")].map(encodeLinkMessage);
      // Sealed by hand (the dialer's own link would refuse to send it), in nonce order.
      const frames = batched ? [sealAs(dialer, encodeBatch([before!, graft!, after!]))] : [before!, graft!, after!].map((m) => sealAs(dialer, m));
      for (const f of frames) dialer.out.inject(f);
      await waitFor(() => listener.closeReason && dialer.closeReason, 3000, "both sides to end");
      expect([listener.closeReason, dialer.closeReason]).toEqual(["unknown-message", "closed-by-peer"]);
      expect(payloadTexts(listener)).toEqual(["before"]);
    });
  }
});

describe("a link's last messages", () => {
  /** The dialer's sink takes nothing while `n` items pile up in its send queue, then the DISCONNECT and the close. */
  async function closedBehindBacklog(n: number) {
    const pair = await linked({});
    const { dialer } = pair;
    dialer.out.paused = true;
    for (let i = 0; i < n; i++) expect(dialer.link!.send(text(`item ${i}`))).toBe(true);
    await nextTurn(); // sealed and queued behind the paused sink
    expect(dialer.link!.queuedBytes).toBeGreaterThan(0);
    // What HyParView does when its view is full: DISCONNECT, then disconnect() (a LinkError and the close).
    expect(dialer.link!.send(viewMessages[4]!)).toBe(true);
    dialer.link!.closeWithError(LinkErrorCode.MISBEHAVIOUR, ownerReason("view-full"));
    expect(dialer.closeReason).toBe(ownerReason("view-full"));
    return pair;
  }

  test("a DISCONNECT and the LinkError sent as a link closes behind a backlog reach the peer once the backlog drains", async () => {
    const { dialer, listener } = await closedBehindBacklog(200);
    expect(dialer.out.ended).toBe(false); // the stream waits for the queue
    dialer.out.paused = false;
    dialer.connection.drained();
    await waitFor(() => listener.closeReason !== undefined, 3000, "the listener's side to close");
    expect(payloadTexts(listener)).toEqual(Array.from({ length: 200 }, (_, i) => `item ${i}`));
    expect(listener.messages.at(-1)).toEqual(viewMessages[4]!);
    expect(listener.closeReason).toBe("remote-error:MISBEHAVIOUR");
    expect(dialer.out.ended).toBe(true);
  });

  test(`a peer that never reads: the stream ends ${LINK_CLOSE_LINGER_MS} ms after the close without the rest`, async () => {
    const { dialer, listener } = await closedBehindBacklog(50);
    await waitFor(() => dialer.out.ended, LINK_CLOSE_LINGER_MS + 3000, "the stream to end");
    await waitFor(() => listener.closeReason !== undefined, 3000, "the listener's side to close");
    expect(listener.closeReason).toBe("closed-by-peer");
    expect(payloadTexts(listener)).toEqual([]);
  });
});
