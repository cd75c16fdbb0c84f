import { expect, test } from "bun:test";
import { TurnWriter } from "../../src/net/turn-writer.ts";
import { waitFor } from "../wait-for.ts";

/** A socket stand-in that records each write; `takes` bytes per write (Infinity: all). */
function recorder(takes = Infinity) {
  const writes: number[][] = [];
  return {
    writes,
    write(bytes: Uint8Array): number {
      const n = Math.min(bytes.length, takes);
      writes.push([...bytes.subarray(0, n)]);
      return n;
    },
  };
}
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

test("a message to an idle socket is written at once; the rest of the turn leaves in one write at its end", async () => {
  const socket = recorder();
  const w = new TurnWriter(socket, 1024);
  expect(w.write(Uint8Array.of(1))).toBe(true);
  expect(socket.writes).toEqual([[1]]); // no turn of latency
  w.write(Uint8Array.of(2));
  w.write(Uint8Array.of(3, 4));
  expect(socket.writes.length).toBe(1);
  expect(w.pending).toBe(3);
  await turn();
  expect(socket.writes).toEqual([[1], [2, 3, 4]]);
  expect(w.empty).toBe(true);
});

test("after a busy turn the first message of the next turn waits too (one write per turn under load)", async () => {
  const socket = recorder();
  const w = new TurnWriter(socket, 1024);
  w.write(Uint8Array.of(1));
  w.write(Uint8Array.of(2));
  await turn();
  w.write(Uint8Array.of(3));
  expect(socket.writes).toEqual([[1], [2]]);
  await turn();
  expect(socket.writes).toEqual([[1], [2], [3]]);
  // A quiet turn (one message) makes it idle again: the next message goes at once.
  await turn();
  w.write(Uint8Array.of(4));
  expect(socket.writes.at(-1)).toEqual([4]);
});

test("the bound counts this turn's messages and the kernel's backlog; past it nothing is written", async () => {
  const socket = recorder(2); // the kernel takes 2 bytes per write
  const w = new TurnWriter(socket, 8);
  expect(w.write(Uint8Array.of(1, 2, 3, 4))).toBe(true); // 2 written, 2 queued
  expect(w.write(Uint8Array.of(5, 6, 7))).toBe(true); // held: 5 pending
  expect(w.write(Uint8Array.of(8, 9, 10, 11))).toBe(false); // 9 > 8
  expect(w.pending).toBe(5);
  await turn();
  w.flush(); // drain
  w.flush();
  w.flush();
  expect(socket.writes.flat()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  expect(w.empty).toBe(true);
});

test("on a real socket, a burst written in one turn arrives whole and in order", async () => {
  const received: number[] = [];
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: { data: (_s, chunk) => void received.push(...chunk) },
  });
  const client = await Bun.connect({ hostname: "127.0.0.1", port: server.port, socket: { data() {}, drain: () => w.flush() } });
  const w = new TurnWriter(client, 1 << 20);
  const expected: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const m = Uint8Array.of(i & 0xff, (i >> 8) & 0xff, 7);
    expected.push(...m);
    expect(w.write(m)).toBe(true);
  }
  await waitFor(() => received.length === expected.length);
  expect(received).toEqual(expected);
  client.end();
  server.stop(true);
});
