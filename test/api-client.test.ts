/**
 * The shared VoidPhone API client (src/client/api-client.ts) against a raw TCP server on 127.0.0.1 that plays the node
 * byte by byte, so the framing cases a real node produces only by chance happen every time: a message split over
 * many reads, several messages in one read, a size field that can never be resynchronised. Also: answers, and that
 * they leave before end() closes, the send bound, and connection failures as ApiClientError.
 */
import { afterEach, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { MessageReader } from "../src/api/reader.ts";
import { decodeMessage, encodeNotification, type ApiMessage } from "../src/api/codec.ts";
import { ApiClient } from "../src/client/api-client.ts";
import { ApiClientError } from "../src/errors.ts";
import { waitFor } from "./wait-for.ts";

/** A fake node: records the whole messages it receives, and lets the test write raw bytes. */
interface RawNode {
  port: number;
  received: ApiMessage[];
  peer(): Socket<undefined>;
  ended: () => boolean;
}

let server: TCPSocketListener<undefined> | undefined;
const clients: ApiClient[] = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  server?.stop(true);
  server = undefined;
});

async function rawNode(): Promise<RawNode> {
  const reader = new MessageReader();
  const received: ApiMessage[] = [];
  let socket: Socket<undefined> | undefined;
  let ended = false;
  server = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open: (s) => void (socket = s),
      data: (_s, chunk) => {
        for (const m of reader.push(chunk)) received.push(decodeMessage(m));
      },
      end: (s) => {
        ended = true;
        s.end();
      },
      close: () => void (ended = true),
    },
  });
  return {
    port: server.port,
    received,
    peer: () => socket!,
    ended: () => ended,
  };
}

async function connected(node: RawNode): Promise<ApiClient> {
  const c = await ApiClient.connect(node.port);
  clients.push(c);
  await waitFor(() => node.peer() !== undefined, 3000, "the server's side of the connection");
  return c;
}

const notification = (messageId: number, text: string) =>
  encodeNotification({ messageId, dataType: 7, data: new TextEncoder().encode(text) });

test("a message split over many reads and several in one read come out whole and in order", async () => {
  const node = await rawNode();
  const c = await connected(node);
  const split = notification(1, "split across reads");
  // One byte per write, each after the client has read the previous one: every read holds one byte.
  for (let i = 0; i < split.length; i++) {
    node.peer().write(split.subarray(i, i + 1));
    await waitFor(() => c.stats().bytesReceived === i + 1, 3000, `byte ${i}`);
  }
  node.peer().write(Buffer.concat([notification(2, "two"), notification(3, "in one read"), notification(4, "x").subarray(0, 3)]));
  await waitFor(() => c.queued === 3, 3000, "three whole messages");
  node.peer().write(notification(4, "x").subarray(3));
  const texts: string[] = [];
  for (let i = 0; i < 4; i++) {
    const m = await c.nextMessage();
    if (m.kind !== "notification") throw new Error(`expected a notification, got ${m.kind}`);
    texts.push(`${m.messageId}:${new TextDecoder().decode(m.data)}`);
  }
  expect(texts).toEqual(["1:split across reads", "2:two", "3:in one read", "4:x"]);
  expect(c.stats()).toMatchObject({ messages: 4, notifications: 4 });
});

test("answerNotifications: every NOTIFICATION answered in order, valid unless the verdict is false", async () => {
  const node = await rawNode();
  const c = await connected(node);
  c.answerNotifications((n) => new TextDecoder().decode(n.data) !== "bad");
  node.peer().write(Buffer.concat([notification(10, "good"), notification(11, "bad"), notification(12, "fine")]));
  await waitFor(() => node.received.length === 3, 3000, "three answers");
  expect(node.received).toEqual([
    { kind: "validation", messageId: 10, valid: true },
    { kind: "validation", messageId: 11, valid: false },
    { kind: "validation", messageId: 12, valid: true },
  ]);
});

test("end() sends what is queued, answers included, before it closes; then the client is closed", async () => {
  const node = await rawNode();
  const c = await connected(node);
  c.subscribe(7);
  c.announce(7, new TextEncoder().encode("last words"), 3);
  c.validate(99, false);
  await c.end();
  expect(c.isClosed).toBe(true);
  await waitFor(() => node.ended(), 3000, "the server to see the end");
  expect(node.received.map((m) => m.kind)).toEqual(["notify", "announce", "validation"]);
  expect(node.received[1]).toMatchObject({ kind: "announce", ttl: 3, dataType: 7 });
  expect(node.received[2]).toEqual({ kind: "validation", messageId: 99, valid: false });
});

test("a size field below 4 from the node closes the connection with its reason; next() then rejects", async () => {
  const node = await rawNode();
  const c = await connected(node);
  node.peer().write(new Uint8Array([0, 2, 1, 244]));
  expect(await c.waitClosed()).toBe("bad-message:size-too-small");
  await expect(c.next(100)).rejects.toThrow("connection closed (bad-message:size-too-small)");
});

test("the node closing is reported as closed-by-node, after the messages it sent first", async () => {
  const node = await rawNode();
  const c = await connected(node);
  node.peer().end(notification(5, "goodbye"));
  expect(await c.waitClosed()).toBe("closed-by-node");
  const m = await c.nextMessage();
  expect(m).toMatchObject({ kind: "notification", messageId: 5 });
});

test("past sendLimit unsent bytes the client closes rather than buffer without end", async () => {
  const node = await rawNode();
  const c = await ApiClient.connect(node.port, { sendLimit: 1 << 20 });
  clients.push(c);
  await waitFor(() => node.peer() !== undefined, 3000, "the server's side");
  node.peer().pause(); // the "node" stops reading: the kernel buffers fill, then our queue
  const big = new Uint8Array(60_000);
  await waitFor(
    () => {
      for (let i = 0; i < 16 && !c.isClosed; i++) c.announce(1, big);
      return c.isClosed;
    },
    10_000,
    "the send limit",
  );
  expect(await c.closed).toBe("send-limit");
});

test("nothing listening: connect rejects with ApiClientError connect-failed, naming the address", async () => {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  const failure = await ApiClient.connect(port).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(ApiClientError);
  expect((failure as ApiClientError).code).toBe("connect-failed");
  expect((failure as ApiClientError).message).toContain(`cannot connect to the API at 127.0.0.1:${port}`);
});
