// Feature negotiation on a connection pair in memory (test/p2p/memory-pair.ts): what each side offers in its
// encrypted IdentityProof, what the link then carries, and what happens to broadcast-tree messages on a link that
// did not negotiate them (never sent by us; closing it as unknown when a peer sends one anyway).
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import type { LinkMessage } from "../../src/p2p/proto/gossip.ts";
import { FEATURE_TREES, LINK_KIND_FIELD, SUPPORTED_FEATURES, encodeBatch, encodeLinkMessage } from "../../src/p2p/wire.ts";
import { waitFor } from "../wait-for.ts";
import { memoryPair, nextTurn, payloadTexts, sealAs, type PairOptions, type Side } from "./memory-pair.ts";

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
  test("both sides offer trees: both links carry them, and every tree kind arrives in order, also inside a Batch", async () => {
    const { dialer, listener } = await linked({});
    expect([dialer.link!.info.features, listener.link!.info.features]).toEqual([FEATURE_TREES, FEATURE_TREES]);
    expect([dialer.session!.remoteFeatures, listener.session!.remoteFeatures]).toEqual([SUPPORTED_FEATURES, SUPPORTED_FEATURES]);
    for (const m of [...treeMessages, text("after")]) expect(dialer.link!.send(m)).toBe(true); // one turn: one Batch
    await waitFor(() => listener.messages.length === 5, 3000, "five messages");
    expect(listener.messages.slice(0, 4)).toEqual(treeMessages);
    expect(payloadTexts(listener)).toEqual(["after"]);
    expect(dialer.link!.framesOut).toBe(1);
    expect(TREE_FIELDS.map((f) => listener.link!.receivedByKind[f])).toEqual([1, 1, 1, 1]);
    expect(TREE_FIELDS.map((f) => dialer.link!.sentByKind[f])).toEqual([1, 1, 1, 1]);
    expect(listener.link!.receivedByKind[LINK_KIND_FIELD.payload]).toBe(1);
  });

  // An older node sends no features at all: offering 0 produces exactly its IdentityProof bytes.
  for (const older of ["dialer", "listener"] as const) {
    test(`the ${older} offers nothing (an older node): neither link carries trees, neither side sends one, items flow`, async () => {
      const pair = await linked({ [older]: { features: 0 } });
      const { dialer, listener } = pair;
      expect([dialer.link!.info.features, listener.link!.info.features]).toEqual([0, 0]);
      expect(pair[older === "dialer" ? "listener" : "dialer"].session!.remoteFeatures).toBe(0);
      for (const side of [dialer, listener]) {
        for (const m of treeMessages) expect(side.link!.send(m)).toBe(false);
        expect(side.link!.send(text(`from ${side === dialer ? "dialer" : "listener"}`))).toBe(true);
      }
      await waitFor(() => payloadTexts(listener).length === 1 && payloadTexts(dialer).length === 1, 3000, "the items");
      await nextTurn();
      for (const side of [dialer, listener]) {
        expect(treeCount(side.link!.sentByKind)).toBe(0);
        expect(treeCount(side.link!.receivedByKind)).toBe(0);
        expect(side.closeReason).toBeUndefined();
      }
    });
  }

  test("feature bits we do not know are ignored: the link carries only what both sides speak", async () => {
    const { dialer, listener } = await linked({ dialer: { features: 0xffff_ffff } });
    expect(listener.session!.remoteFeatures).toBe(0xffff_ffff);
    expect([dialer.link!.info.features, listener.link!.info.features]).toEqual([FEATURE_TREES, FEATURE_TREES]);
  });

  for (const batched of [false, true]) {
    test(`a tree message on a link that did not negotiate trees${batched ? ", inside a Batch" : ""}: unknown-message, nothing after it`, async () => {
      const pair = await linked({ listener: { features: 0 } });
      const { dialer, listener } = pair;
      const [before, graft, after] = [text("before"), treeMessages[1]!, text("after")].map(encodeLinkMessage);
      // Sealed by hand (the dialer's own link would refuse to send it), in nonce order.
      const frames = batched ? [sealAs(dialer, encodeBatch([before!, graft!, after!]))] : [before!, graft!, after!].map((m) => sealAs(dialer, m));
      for (const f of frames) dialer.out.inject(f);
      await waitFor(() => listener.closeReason && dialer.closeReason, 3000, "both sides to end");
      expect([listener.closeReason, dialer.closeReason]).toEqual(["unknown-message", "closed-by-peer"]);
      expect(payloadTexts(listener)).toEqual(["before"]);
    });
  }
});
