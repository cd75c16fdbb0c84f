/**
 * `bun run bench link`: handshake time over real loopback TCP (difficulty 0 and 16, PoW on the worker pool) and the
 * AEAD cost per frame of the transport cipher (64 B and 1 KiB). Medians of several runs; numbers, never assertions.
 */
import { silentLogger } from "../src/log.ts";
import { CipherState } from "../src/p2p/noise.ts";
import { TransportCipher } from "../src/p2p/cipher.ts";
import { generateEd25519Pem, loadIdentity } from "../src/p2p/identity.ts";
import { PowPool } from "../src/p2p/pow-pool.ts";
import { Transport } from "../src/p2p/transport.ts";

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

export async function benchLink(): Promise<void> {
  const pow = new PowPool();
  console.log(`cores reported: ${navigator.hardwareConcurrency} (this machine gives about one)`);
  for (const d of [0, 16]) {
    await handshakeMs(pow, d, 3); // warm-up
    const runs = await handshakeMs(pow, d, 21);
    console.log(`handshake d=${d}: median ${median(runs).toFixed(2)} ms, min ${Math.min(...runs).toFixed(2)}, max ${Math.max(...runs).toFixed(2)} (21 dials, loopback TCP)`);
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
