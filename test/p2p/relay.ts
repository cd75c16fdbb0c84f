/**
 * A TCP relay client → relay → target on 127.0.0.1 for tests that play a hostile or stalled network in the middle:
 * `tamper` sees (and may change) every chunk the client sends; `client()` is the socket facing the client.
 */
import type { Socket, TCPSocketListener } from "bun";

type Side = { upstream?: Socket<undefined>; buffered: Uint8Array[] };

export function startRelay(targetPort: number, tamper: (chunk: Uint8Array) => void = () => {}) {
  let client: Socket<Side> | undefined;
  const listener: TCPSocketListener<Side> = Bun.listen<Side>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        const side: Side = { buffered: [] };
        socket.data = side;
        client = socket;
        void Bun.connect({
          hostname: "127.0.0.1",
          port: targetPort,
          socket: {
            open(up) {
              side.upstream = up;
              for (const chunk of side.buffered.splice(0)) up.write(chunk);
            },
            data(_up, chunk) {
              socket.write(chunk);
            },
            close() {
              socket.end();
            },
          },
        });
      },
      data(socket, chunk) {
        tamper(chunk);
        if (socket.data.upstream) socket.data.upstream.write(chunk);
        else socket.data.buffered.push(chunk);
      },
      close(socket) {
        socket.data.upstream?.end();
      },
    },
  });
  return { port: listener.port, client: () => client, stop: () => listener.stop(true) };
}
