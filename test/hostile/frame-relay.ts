/**
 * A TCP relay dialer → relay → target on 127.0.0.1 that parses frames in both directions and lets a test change any
 * frame body in transit (a man in the middle of the handshake). Frames are counted per connection and direction:
 * toTarget 0 = M1, 1 = M3; toDialer 0 = Hello, 1 = M2.
 */
import type { Socket, TCPSocketListener } from "bun";
import { SendQueue } from "../../src/net/send-queue.ts";
import { FrameReader, encodeFrame } from "../../src/p2p/frame.ts";

export type Direction = "toTarget" | "toDialer";
export type FrameTamper = (direction: Direction, index: number, body: Uint8Array) => Uint8Array;

interface Pipe {
  reader: FrameReader;
  frames: number;
  out?: SendQueue;
  waiting: Uint8Array[];
  socket?: Socket<unknown>;
}

interface Side {
  toTarget: Pipe;
  toDialer: Pipe;
  upstream?: Socket<unknown>;
}

const pipe = (): Pipe => ({ reader: new FrameReader(), frames: 0, waiting: [] });

export function startFrameRelay(targetPort: number) {
  let tamper: FrameTamper = (_d, _i, body) => body;
  const open = new Set<Socket<Side>>();

  const forward = (side: Side, direction: Direction, chunk: Uint8Array, close: () => void) => {
    const p = side[direction];
    let bodies: Uint8Array[];
    try {
      bodies = p.reader.push(chunk);
    } catch {
      close();
      return;
    }
    for (const body of bodies) {
      const frame = encodeFrame(tamper(direction, p.frames++, Uint8Array.from(body)));
      if (p.out) p.out.write(frame);
      else p.waiting.push(frame);
    }
  };

  const listener: TCPSocketListener<Side> = Bun.listen<Side>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(dialer) {
        const side: Side = { toTarget: pipe(), toDialer: pipe() };
        dialer.data = side;
        open.add(dialer);
        side.toDialer.out = new SendQueue(dialer as Socket<unknown>, 1 << 24);
        void Bun.connect({
          hostname: "127.0.0.1",
          port: targetPort,
          socket: {
            open(up) {
              side.upstream = up as Socket<unknown>;
              side.toTarget.out = new SendQueue(up as Socket<unknown>, 1 << 24);
              for (const frame of side.toTarget.waiting.splice(0)) side.toTarget.out.write(frame);
            },
            data: (_up, chunk) => forward(side, "toDialer", chunk, () => dialer.end()),
            drain: () => side.toTarget.out?.flush(),
            close: () => void dialer.end(),
            error: () => void dialer.end(),
          },
        }).catch(() => dialer.end());
      },
      data: (dialer, chunk) => forward(dialer.data, "toTarget", chunk, () => dialer.end()),
      drain: (dialer) => dialer.data.toDialer.out?.flush(),
      close(dialer) {
        open.delete(dialer);
        dialer.data.upstream?.end();
      },
      error: (dialer) => void dialer.end(),
    },
  });

  return {
    port: listener.port,
    setTamper(t: FrameTamper) {
      tamper = t;
    },
    /** Connections currently relayed. */
    get connections() {
      return open.size;
    },
    stop: () => listener.stop(true),
  };
}
