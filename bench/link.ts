/**
 * `bun run bench link`: handshake time over real loopback TCP (difficulty 0 and 16, PoW on the worker pool), handshakes
 * per second at difficulty 0, the AEAD cost per frame of the transport cipher (64 B and 1 KiB), and payload MB/s
 * through one established link (encode, encrypt, frame, TCP, decrypt, decode) against a raw Bun loopback socket
 * sending frames of the same size with no crypto. Medians of several runs; numbers, never assertions.
 */
import { silentLogger } from "../src/log.ts";
import { CipherState } from "../src/p2p/noise.ts";
import { TransportCipher } from "../src/p2p/cipher.ts";
import { generateEd25519Pem, loadIdentity } from "../src/p2p/identity.ts";
import { PowPool } from "../src/p2p/pow-pool.ts";
import { Transport } from "../src/p2p/transport.ts";
import { FrameReader, encodeFrame } from "../src/p2p/frame.ts";
import { encodeLinkMessage } from "../src/p2p/wire.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function handshakeMs(pow: PowPool, difficulty: number, count: number): Promise<number[]> {
  const responder = new Transport({
    identity: loadIdentity(generateEd25519Pem()),
    host: "127.0.0.1",
    port: 0,
    difficulty,
    maxDifficulty: 24,
    pow,
    log: silentLogger,
  });
  await responder.start();
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const initiator = new Transport({ identity: loadIdentity(generateEd25519Pem()), host: "127.0.0.1", port: 0, difficulty: 0, maxDifficulty: 24, pow, log: silentLogger });
    await initiator.start();
    const t0 = performance.now();
    await initiator.dial("127.0.0.1", responder.port);
    times.push(performance.now() - t0);
    await initiator.stop();
  }
  await responder.stop();
  return times;
}

function aeadNsPerFrame(size: number, frames: number): number {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const send = new TransportCipher(new CipherState(key));
  const recv = new TransportCipher(new CipherState(key));
  const plaintext = crypto.getRandomValues(new Uint8Array(size));
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < frames; i++) recv.decrypt(send.encrypt(plaintext));
  return (Bun.nanoseconds() - t0) / frames;
}

/** Sequential dials at difficulty 0 for about `seconds`: handshakes completed per second. */
async function handshakesPerSecond(pow: PowPool, seconds: number): Promise<number> {
  const opts = { host: "127.0.0.1", port: 0, difficulty: 0, maxDifficulty: 24, pow, log: silentLogger };
  const responder = new Transport({ identity: loadIdentity(generateEd25519Pem()), ...opts });
  const initiator = new Transport({ identity: loadIdentity(generateEd25519Pem()), ...opts });
  await responder.start();
  await initiator.start();
  let done = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const peer = await initiator.dial("127.0.0.1", responder.port);
    initiator.disconnect(peer, "bench");
    done++;
  }
  const rate = done / ((performance.now() - t0) / 1000);
  await initiator.stop();
  await responder.stop();
  return rate;
}

/** Keeps `window` frames in flight: `send(i)` sends frame i; resolves once `count` arrived (as counted by `received`). */
async function pump(count: number, window: number, send: (i: number) => void, received: () => number, waitMore: () => Promise<void>): Promise<void> {
  let sent = 0;
  while (received() < count) {
    while (sent < count && sent - received() < window) send(sent++);
    await waitMore();
  }
}

/** Payload MB/s through one encrypted link: Payload messages of `size` data bytes, a window of frames in flight. */
async function linkMBps(pow: PowPool, size: number, count: number): Promise<number> {
  const opts = { host: "127.0.0.1", port: 0, difficulty: 0, maxDifficulty: 24, pow, log: silentLogger };
  const a = new Transport({ identity: loadIdentity(generateEd25519Pem()), ...opts });
  const b = new Transport({ identity: loadIdentity(generateEd25519Pem()), ...opts });
  await a.start();
  await b.start();
  let got = 0;
  let wake = () => {};
  b.events = { linkUp() {}, linkDown() {}, message: () => void (++got % 64 === 0 && wake()) };
  const peer = await a.dial("127.0.0.1", b.port);
  const payload = encodeLinkMessage({
    kind: { $case: "payload", value: { messageId: new Uint8Array(32), ttl: 0, dataType: 1, data: new Uint8Array(size) } },
  });
  const t0 = performance.now();
  await pump(count, 512, () => a.send(peer, payload), () => got, () => new Promise<void>((r) => ((wake = r), setTimeout(r, 5))));
  const mbps = (count * size) / 1e6 / ((performance.now() - t0) / 1000);
  await a.stop();
  await b.stop();
  return mbps;
}

/** The same frames (length ‖ `size + 16 + 38` bytes, like a sealed Payload) over a raw loopback socket: no crypto. */
async function rawMBps(size: number, count: number): Promise<number> {
  const body = new Uint8Array(size + 38 + 16); // protobuf Payload overhead + AEAD tag, so bytes on the wire match
  const frame = encodeFrame(body);
  let got = 0;
  let wake = () => {};
  const reader = new FrameReader(); // one connection
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data: (_s, chunk) => {
        got += reader.push(chunk).length;
        wake();
      },
    },
  });
  const pending: Uint8Array[] = [];
  const client = await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port,
    socket: {
      data() {},
      drain: (s) => {
        while (pending.length > 0) {
          const n = s.write(pending[0]!);
          if (n < pending[0]!.length) {
            pending[0] = pending[0]!.subarray(Math.max(0, n));
            return;
          }
          pending.shift();
        }
      },
    },
  });
  const send = () => {
    if (pending.length > 0) return void pending.push(frame);
    const n = client.write(frame);
    if (n < frame.length) pending.push(frame.subarray(Math.max(0, n)));
  };
  const t0 = performance.now();
  await pump(count, 512, send, () => got, () => new Promise<void>((r) => ((wake = r), setTimeout(r, 5))));
  const mbps = (count * size) / 1e6 / ((performance.now() - t0) / 1000);
  client.end();
  server.stop(true);
  return mbps;
}

export async function benchLink(): Promise<void> {
  const pow = new PowPool();
  console.log(`cores reported: ${navigator.hardwareConcurrency} (this machine gives about one)`);
  for (const d of [0, 16]) {
    await handshakeMs(pow, d, 3); // warm-up
    const runs = await handshakeMs(pow, d, 21);
    console.log(`handshake d=${d}: median ${median(runs).toFixed(2)} ms, min ${Math.min(...runs).toFixed(2)}, max ${Math.max(...runs).toFixed(2)} (21 dials, loopback TCP)`);
  }
  await handshakesPerSecond(pow, 0.3); // warm-up
  const rates = [0, 1, 2].map(() => 0);
  for (let i = 0; i < 3; i++) rates[i] = await handshakesPerSecond(pow, 1);
  console.log(`handshakes/s at d=0 (sequential dials, loopback TCP): median ${median(rates).toFixed(0)} (runs ${rates.map((r) => r.toFixed(0)).join(", ")})`);
  for (const size of [64, 1024]) {
    const count = size === 64 ? 40_000 : 20_000;
    await linkMBps(pow, size, count / 4); // warm-up
    await rawMBps(size, count / 4);
    const link: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < 3; i++) {
      link.push(await linkMBps(pow, size, count));
      raw.push(await rawMBps(size, count));
    }
    const l = median(link);
    const r = median(raw);
    console.log(
      `one link, ${size} B payloads: ${l.toFixed(1)} MB/s (${((l * 1e6) / size / 1000).toFixed(0)} k msg/s) encrypted vs ` +
        `${r.toFixed(1)} MB/s raw Bun socket, same frame sizes, no crypto (${((100 * l) / r).toFixed(0)}%)`,
    );
  }
  await pow.close();
  for (const size of [64, 1024]) {
    aeadNsPerFrame(size, 20_000); // warm-up
    const runs = [0, 1, 2, 3, 4].map(() => aeadNsPerFrame(size, 50_000));
    const ns = median(runs);
    console.log(`AEAD ${size} B frame (encrypt + decrypt): median ${(ns / 1000).toFixed(2)} µs, ${((size / ns) * 1000).toFixed(1)} MB/s`);
  }
}

if (import.meta.main) await benchLink();
