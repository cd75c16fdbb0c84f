/**
 * Client for the local RPS module: RPS QUERY → one RPS PEER, turned into an endpoint Gossip can dial.
 *
 * One short TCP connection per query: queries are rare (membership refilling its links), and a fresh connection has
 * no state to repair when the RPS module restarts or answers garbage. Must never: resolve without a Gossip port,
 * settle twice, leave a socket or timer behind, or reject with anything but RpsError.
 */
import type { Socket } from "bun";
import type { HostPort } from "../address.ts";
import { RPS_QUERY_TIMEOUT_MS } from "../defaults.ts";
import { ApiProtocolError, RpsError } from "../errors.ts";
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
}

/** Asks the RPS module at `addr` for a random peer. Rejects with RpsError (its codes: src/errors.ts). */
export function queryRps(addr: HostPort, timeoutMs = RPS_QUERY_TIMEOUT_MS): Promise<RpsPeer> {
  return new Promise<RpsPeer>((resolve, reject) => {
    const reader = new MessageReader();
    let socket: Socket<undefined> | undefined;
    let done = false;

    const finish = (result: RpsPeer | RpsError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket?.terminate();
      if (result instanceof RpsError) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(
      () => finish(new RpsError("timeout", `RPS at ${addr.host}:${addr.port} did not answer in ${timeoutMs} ms`)),
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
            finish(asRpsError(error));
          }
        },
        close() {
          finish(new RpsError("closed", "RPS closed the connection before answering"));
        },
        error(_s, error) {
          finish(new RpsError("connect-failed", error.message));
        },
        connectError(_s, error) {
          finish(new RpsError("connect-failed", error.message));
        },
      },
    }).then(
      (s) => {
        socket = s;
        if (done) s.terminate();
      },
      (error: Error) => finish(new RpsError("connect-failed", error.message)),
    );
  });
}

/** The codec's and reader's ApiProtocolError (bytes that are no API message) becomes this boundary's error. */
function asRpsError(error: unknown): RpsError {
  if (error instanceof RpsError) return error;
  if (error instanceof ApiProtocolError) return new RpsError("malformed-reply", `${error.code}: ${error.message}`);
  return new RpsError("malformed-reply", String(error));
}

function toPeer(bytes: Uint8Array): RpsPeer {
  const message = decodeMessage(bytes);
  if (message.kind !== "rps-peer") throw new RpsError("unexpected-reply", `RPS answered ${message.kind}`);
  const gossip = message.portmap.find((m) => m.moduleId === GOSSIP_MODULE_ID);
  if (gossip === undefined) throw new RpsError("no-gossip-port", "RPS PEER has no portmap record for 500");
  return {
    host: message.address,
    gossipPort: gossip.port,
    port: message.port,
    hostkeyDer: new Uint8Array(message.hostkeyDer), // a copy, not a view of the socket chunk
  };
}
