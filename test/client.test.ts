/**
 * The module author's side of the API against real in-process nodes: the client library as its package entry
 * (`gossip/client`), and the Python reader printed in README "Writing a module", each directly and through a relay
 * that re-cuts the node's byte stream (messages split into 1–3 byte reads, or two whole messages in one write),
 * which is what a busy node's output looks like to a module.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClientError, connect, type Notification } from "gossip/client";
import type { GossipNode } from "../src/node.ts";
import { createHarness } from "./net-harness.ts";
import { waitFor } from "./wait-for.ts";

const h = createHarness();
const relays: TCPSocketListener<RelayConn>[] = [];
const PYTHON = Bun.which("python3");
if (PYTHON === null) console.warn("test/client.test.ts: the Python reader cases are skipped: no python3");
/** Two or three nodes with real handshakes, and a Python interpreter for some cases. */
const CLIENT_TEST_TIMEOUT = 20_000;

afterEach(async () => {
  for (const r of relays.splice(0)) r.stop(true);
  await h.cleanup();
});
afterAll(() => h.close());

async function linkedPair(): Promise<{ a: GossipNode; b: GossipNode }> {
  const a = await h.node();
  const b = await h.node({ bootstrapPort: a.transport.port });
  await waitFor(() => a.transport.linked().length === 1 && b.transport.linked().length === 1, 4000, "link");
  return { a, b };
}

interface RelayConn {
  upstream?: Socket<undefined>;
  pending: Uint8Array[];
}

/**
 * A TCP relay in front of a node's API. Module → node bytes pass as they come. Node → module bytes are held and
 * re-cut: in mode "merge", every `merged` whole messages go out in one write; in mode "split"
 * every message leaves in pieces of 1–3 bytes, a few milliseconds apart, so the module's reads end mid-message.
 */
function recuttingRelay(apiPort: number, mode: "split" | "merge", merged = 2) {
  const stats = { writes: 0, messages: 0, mergedWrites: 0 };
  const listener = Bun.listen<RelayConn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      async open(down) {
        down.data = { pending: [] };
        let held = new Uint8Array(0);
        let sending = Promise.resolve();
        const release = (bytes: Uint8Array) => {
          sending = sending.then(async () => {
            if (mode === "merge") {
              stats.writes++;
              stats.mergedWrites++;
              down.write(bytes);
              return;
            }
            for (let i = 0; i < bytes.length; ) {
              const n = 1 + ((i * 7) % 3);
              down.write(bytes.subarray(i, i + n));
              stats.writes++;
              i += n;
              await Bun.sleep(2);
            }
          });
        };
        const up = await Bun.connect<undefined>({
          hostname: "127.0.0.1",
          port: apiPort,
          socket: {
            data(_s, chunk) {
              const all = new Uint8Array(held.length + chunk.length);
              all.set(held);
              all.set(chunk, held.length);
              // Cut off whole messages (groups of `merged` in merge mode); keep the rest until it is whole.
              let start = 0;
              for (;;) {
                let end = start;
                let count = 0;
                while (all.length - end >= 2 && (mode === "split" || count < merged)) {
                  const size = (all[end]! << 8) | all[end + 1]!;
                  if (all.length - end < size) break;
                  end += size;
                  count++;
                }
                if (count === 0 || (mode === "merge" && count < merged)) break;
                stats.messages += count;
                release(all.slice(start, end));
                start = end;
              }
              held = all.slice(start);
            },
            close: () => void down.end(),
          },
        });
        down.data.upstream = up;
        for (const p of down.data.pending.splice(0)) up.write(p);
      },
      data(down, chunk) {
        if (down.data.upstream) down.data.upstream.write(chunk);
        else down.data.pending.push(new Uint8Array(chunk));
      },
      close(down) {
        down.data.upstream?.end();
      },
    },
  });
  relays.push(listener);
  return { port: listener.port, stats };
}

test("gossip/client: subscribe, announce, notifications answered valid/invalid; a second answer throws; the node counts them", async () => {
  const { a, b } = await linkedPair();
  const sub = await connect(`127.0.0.1:${b.api.port}`);
  sub.subscribe(31);
  await waitFor(() => b.api.hasSubscribers(31), 3000, "subscription");
  const pub = await connect(a.api.port);
  for (const text of ["first", "spam second", "third"]) pub.announce(31, text, { ttl: 0 });
  await pub.close();
  // Notifications that arrive before anyone iterates are kept, in order.
  await waitFor(() => sub.stats().waiting === 3, 4000, "three notifications waiting");
  const got: Notification[] = [];
  for await (const n of sub.notifications()) {
    got.push(n);
    if (n.text.startsWith("spam")) n.invalid();
    else n.valid();
    expect(() => n.valid()).toThrow(ApiClientError);
    if (got.length === 3) break;
  }
  expect(got.map((n) => [n.dataType, n.text, n.answered])).toEqual([[31, "first", true], [31, "spam second", true], [31, "third", true]]);
  await waitFor(() => b.broadcaster.stats().valid === 2 && b.broadcaster.stats().invalid === 1, 4000, "the node's verdicts");
  expect(b.api.stats().connections).toBe(1); // no second VALIDATION reached the node: still connected
  await sub.close();
}, CLIENT_TEST_TIMEOUT);

for (const mode of ["split", "merge"] as const) {
  test(`gossip/client through a relay that ${mode === "split" ? "splits every message into 1-3 byte reads" : "merges two messages per write"}: every notification whole`, async () => {
    const { a, b } = await linkedPair();
    const relay = recuttingRelay(b.api.port, mode);
    const sub = await connect(relay.port);
    sub.subscribe(32);
    await waitFor(() => b.api.hasSubscribers(32), 3000, "subscription through the relay");
    const pub = await connect(a.api.port);
    const sent = Array.from({ length: 6 }, (_, i) => `item ${i} ` + "x".repeat(i * 40));
    for (const text of sent) pub.announce(32, text);
    const got: string[] = [];
    for await (const n of sub.notifications()) {
      got.push(n.text);
      n.valid();
      if (got.length === sent.length) break;
    }
    expect(got.sort()).toEqual([...sent].sort()); // arrival order from a peer may differ from the announcer's
    await waitFor(() => b.broadcaster.stats().valid === sent.length, 4000, "every answer through the relay");
    if (mode === "split") expect(relay.stats.writes).toBeGreaterThan(sent.length * 10);
    else expect(relay.stats.mergedWrites).toBe(sent.length / 2);
    await pub.close();
    await sub.close();
  }, CLIENT_TEST_TIMEOUT);
}

test("gossip/client: the iterator throws connection-lost when the node goes away, and ends when we close", async () => {
  const n = await h.node();
  const mine = await connect(n.api.port);
  mine.subscribe(33);
  const ended = (async () => {
    for await (const x of mine.notifications()) x.valid();
    return "ended";
  })();
  await waitFor(() => n.api.hasSubscribers(33), 3000, "subscription");
  await mine.close();
  expect(await ended).toBe("ended");

  const lost = await connect(n.api.port);
  const failing = (async () => {
    for await (const x of lost.notifications()) x.valid();
  })();
  await waitFor(() => n.api.stats().connections === 1, 3000, "connected");
  await h.stop(n);
  const e = await failing.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(ApiClientError);
  expect((e as ApiClientError).code).toBe("connection-lost");
  await expect(connect("nowhere")).rejects.toMatchObject({ code: "bad-address" });
}, CLIENT_TEST_TIMEOUT);

/** The ```python block of README "Writing a module", as a file. */
function readmePythonModule(): string {
  const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Writing a module"));
  const code = /```python\n([\s\S]*?)```/.exec(section)?.[1];
  if (code === undefined) throw new Error("README 'Writing a module' has no python block");
  const path = join(mkdtempSync(join(tmpdir(), "gossip-python-")), "module.py");
  writeFileSync(path, code);
  return path;
}

for (const via of ["direct", "split", "merge"] as const) {
  test.skipIf(PYTHON === null)(`README's Python reader (${via === "direct" ? "directly on the node" : `through a relay that ${via}s`}): every notification whole, answered, spam rejected`, async () => {
    const { a, b } = await linkedPair();
    const port = via === "direct" ? b.api.port : recuttingRelay(b.api.port, via).port;
    const sent = ["hello", "spam spam", "a longer item " + "y".repeat(300), "bye"].map((t, i) => `${i}:${t}`);
    // The validator's rule in the README rejects data starting with "spam": make one item do so.
    sent[1] = "spam " + sent[1];
    const py = Bun.spawn([PYTHON!, readmePythonModule(), "127.0.0.1", String(port), "34", String(sent.length)], { stdout: "pipe", stderr: "pipe" });
    try {
      await waitFor(() => b.api.hasSubscribers(34), 5000, "the Python module subscribed");
      const pub = await connect(a.api.port);
      for (const text of sent) pub.announce(34, text);
      await pub.close();
      const [out, err, code] = await Promise.all([new Response(py.stdout).text(), new Response(py.stderr).text(), py.exited]);
      expect({ code, err }).toEqual({ code: 0, err: "" });
      const lines = out.trim().split("\n").sort();
      const expected = sent.map((t) => `type=34 size=${t.length} valid=${t.startsWith("spam") ? "False" : "True"} data=${t}`).sort();
      expect(lines).toEqual(expected);
      await waitFor(() => b.broadcaster.stats().valid === 3 && b.broadcaster.stats().invalid === 1, 4000, "the Python answers counted");
    } finally {
      py.kill();
    }
  }, CLIENT_TEST_TIMEOUT);
}
