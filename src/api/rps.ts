/**
 * Client for the local RPS module: RPS QUERY → one RPS PEER, turned into an endpoint Gossip can dial.
 *
 * One short TCP connection per query: queries are rare (membership refilling its links), and a fresh connection has
 * no state to repair when the RPS module restarts or answers garbage. Must never: resolve without a Gossip port,
 * settle twice, leave a socket or timer behind, or reject with anything but ApiProtocolError.
 */
import type { Socket } from "bun";
import type { HostPort } from "../address.ts";
import { ApiProtocolError } from "../errors.ts";
import { GOSSIP_MODULE_ID, decodeMessage, encodeRpsQuery } from "./codec.ts";
import { MessageReader } from "./reader.ts";

export interface RpsPeer {
  /** The peer's IP address as text (dotted IPv4 or RFC 5952 IPv6). */
  host: string;
  /** Its Gossip P2P port: the portmap record with module ID 500. */
  gossipPort: number;
  /** The P2P port RPS itself saw the peer on. */
  port: number;
  /** DER SubjectPublicKeyInfo of the peer's hostkey: BLAKE3 of it is the peer ID we must find when dialing. */
  hostkeyDer: Uint8Array;
  ipv6: boolean;
}

/**
 * Asks the RPS module at `addr` for a random peer. Rejects with ApiProtocolError: connect-failed, timeout, closed
 * (no answer before the connection closed), a codec code for malformed bytes, unexpected-type (not an RPS PEER),
 * no-gossip-port (the peer runs no Gossip module that RPS knows of).
 */
export function queryRps(addr: HostPort, timeoutMs: number): Promise<RpsPeer> {
  return new Promise<RpsPeer>((resolve, reject) => {
    const reader = new MessageReader();
    let socket: Socket<undefined> | undefined;
    let done = false;

    const finish = (result: RpsPeer | ApiProtocolError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket?.terminate();
      if (result instanceof ApiProtocolError) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(
      () => finish(new ApiProtocolError("timeout", `RPS at ${addr.host}:${addr.port} did not answer in ${timeoutMs} ms`)),
      timeoutMs,
    );

    Bun.connect({
      hostname: addr.host,
      port: addr.port,
      socket: {
        open(s) {
          socket = s;
          if (done) s.terminate();
          else s.write(encodeRpsQuery());
        },
        data(_s, chunk) {
          try {
            const messages = reader.push(chunk);
            if (messages.length > 0) finish(toPeer(messages[0]));
          } catch (error) {
            finish(error instanceof ApiProtocolError ? error : new ApiProtocolError("bad-reply", String(error)));
          }
        },
        close() {
          finish(new ApiProtocolError("closed", "RPS closed the connection before answering"));
        },
        error(_s, error) {
          finish(new ApiProtocolError("connect-failed", error.message));
        },
        connectError(_s, error) {
          finish(new ApiProtocolError("connect-failed", error.message));
        },
      },
    }).then(
      (s) => {
        socket = s;
        if (done) s.terminate();
      },
      (error: Error) => finish(new ApiProtocolError("connect-failed", error.message)),
    );
  });
}

function toPeer(bytes: Uint8Array): RpsPeer {
  const message = decodeMessage(bytes);
  if (message.kind !== "rps-peer") throw new ApiProtocolError("unexpected-type", `RPS answered ${message.kind}`);
  const gossip = message.portmap.find((m) => m.moduleId === GOSSIP_MODULE_ID);
  if (gossip === undefined) throw new ApiProtocolError("no-gossip-port", "RPS PEER has no portmap record for 500");
  return {
    host: message.address,
    gossipPort: gossip.port,
    port: message.port,
    hostkeyDer: new Uint8Array(message.hostkeyDer), // a copy, not a view of the socket chunk
    ipv6: message.address.includes(":"),
  };
}
