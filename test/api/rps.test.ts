import { afterEach, describe, expect, test } from "bun:test";
import type { TCPSocketListener } from "bun";
import { encodeAnnounce, encodeRpsPeer } from "../../src/api/codec.ts";
import { queryRps } from "../../src/api/rps.ts";
import { RpsError } from "../../src/errors.ts";
import { waitFor } from "./client.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

interface FakeRps {
  port: number;
  queries: string[];
  open: () => number;
}

const listeners: TCPSocketListener<unknown>[] = [];
afterEach(() => {
  for (const l of listeners.splice(0)) l.stop(true);
});

/**
 * A tiny RPS module: on each RPS QUERY it writes `reply` (in `chunks` pieces, a few ms apart), then closes if `end`.
 * `reply` undefined: never answers.
 */
function fakeRps(reply: Uint8Array | undefined, { chunks = 1, end = false } = {}): FakeRps {
  const queries: string[] = [];
  let open = 0;
  const listener = Bun.listen<unknown>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open: () => void open++,
      close: () => void open--,
      data: async (socket, chunk) => {
        queries.push(Buffer.from(chunk).toString("hex"));
        if (reply === undefined) return;
        const step = Math.ceil(reply.length / chunks);
        for (let at = 0; at < reply.length; at += step) {
          socket.write(reply.subarray(at, at + step));
          if (chunks > 1) await Bun.sleep(2);
        }
        if (end) socket.end();
      },
    },
  });
  listeners.push(listener as TCPSocketListener<unknown>);
  return { port: listener.port, queries, open: () => open };
}

/** The code of the RpsError `p` rejects with, and the codec's reason in its message for a malformed reply. */
async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    expect(error).toBeInstanceOf(RpsError);
    const { code, message } = error as RpsError;
    return code === "malformed-reply" ? `${code}: ${message.split(":")[0]}` : code;
  }
  throw new Error("resolved");
}

describe("queryRps", () => {
  test("IPv4 peer from hand-written RPS PEER bytes, delivered in pieces", async () => {
    // port 6001, 2 records (NSE 520→7003, Gossip 500→7002), IPv4, 192.0.2.7, hostkey 30 82 01 0a
    const reply = hex("0018 021d 1771 02 00 0208 1b5b 01f4 1b5a c0000207 3082010a");
    const rps = fakeRps(reply, { chunks: 5 });
    const peer = await queryRps({ host: "127.0.0.1", port: rps.port }, 2000);
    expect(peer).toEqual({ host: "192.0.2.7", gossipPort: 7002, port: 6001, hostkeyDer: hex("3082010a") });
    expect(rps.queries).toEqual(["0004021c"]);
    await waitFor(() => rps.open() === 0, 2000, "the query connection to close");
  });

  test("IPv6 peer", async () => {
    const reply = hex("001f 021d 0001 01 01 01f4 0fa1 20010db8000000000000000000000042 aabbcc");
    const rps = fakeRps(reply);
    const peer = await queryRps({ host: "127.0.0.1", port: rps.port }, 2000);
    expect(peer).toEqual({ host: "2001:db8::42", gossipPort: 4001, port: 1, hostkeyDer: hex("aabbcc") });
  });

  test("a peer without a Gossip (500) portmap record is refused", async () => {
    const reply = encodeRpsPeer({
      port: 6001,
      portmap: [{ moduleId: 520, port: 7003 }],
      address: "192.0.2.7",
      hostkeyDer: hex("3082"),
    });
    const rps = fakeRps(reply);
    expect(await rejection(queryRps({ host: "127.0.0.1", port: rps.port }, 2000))).toBe("no-gossip-port");
  });

  test("garbage replies reject with RpsError, never the API's error type", async () => {
    const cases: [Uint8Array, string][] = [
      [hex("0002 021d"), "malformed-reply: size-too-small"],
      [hex("0008 021d 0001 05 00"), "malformed-reply: size-mismatch"], // claims 5 portmap records it does not have
      [hex("0008 0001 0000 0000"), "malformed-reply: unknown-type"],
      [encodeAnnounce({ ttl: 1, dataType: 1, data: hex("00") }), "unexpected-reply"],
      [new TextEncoder().encode("garbage\n"), "closed"], // a size of 0x6761 that never completes
    ];
    for (const [reply, code] of cases) {
      const rps = fakeRps(reply, { end: true });
      expect(await rejection(queryRps({ host: "127.0.0.1", port: rps.port }, 2000))).toBe(code);
    }
  });

  test("no answer in time; nobody listening", async () => {
    const silent = fakeRps(undefined);
    expect(await rejection(queryRps({ host: "127.0.0.1", port: silent.port }, 100))).toBe("timeout");
    await waitFor(() => silent.open() === 0, 2000, "the timed-out connection to close");

    const gone = fakeRps(undefined);
    listeners.pop()!.stop(true);
    expect(await rejection(queryRps({ host: "127.0.0.1", port: gone.port }, 2000))).toBe("connect-failed");
  });
});
