/**
 * One error type per boundary, each with a reason code that logs and metrics use.
 * Never throw strings; never let a peer's or module's bytes raise anything else out of a decoder.
 */
import type { HandshakeFailure, P2PErrorCode } from "./p2p/reasons.ts";

/** A local module broke the VoidPhone API: its connection is closed. */
export class ApiProtocolError extends Error {
  override readonly name = "ApiProtocolError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A peer broke the P2P protocol (framing, handshake, crypto, protobuf): its link is closed. */
export class P2PProtocolError extends Error {
  override readonly name = "P2PProtocolError";
  constructor(
    readonly code: P2PErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A dial did not give a link (Transport.dial rejects with it): `code` says why, `cause` holds the underlying error. */
export class DialError extends Error {
  override readonly name = "DialError";
  constructor(
    readonly code: HandshakeFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The configuration is unusable: the program stops with exit code 2 before anything listens. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly file: string,
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${file}: ${key}: ${problem}`);
  }
}

/** The command line is wrong (unknown flag, missing or bad value): the CLI prints the problem and the usage, exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** A CLI tool could not do its job at run time (node unreachable, connection lost, bad status document): one line
 *  on stderr, exit 1. `code` names the condition: connect-failed, connect-timeout, connection-lost,
 *  control-unreachable, control-error, not-a-status. */
export class ToolFailure extends Error {
  override readonly name = "ToolFailure";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Our VoidPhone API client (src/client/api-client.ts) could not reach a node's API: connect-failed, connect-timeout. */
export class ApiClientError extends Error {
  override readonly name = "ApiClientError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Why an RPS QUERY gave no peer (src/api/rps.ts). */
export type RpsErrorCode =
  | "connect-failed" // nothing listens at the RPS address, or the connection broke
  | "timeout" // no RPS PEER within the query's time
  | "closed" // RPS closed the connection before a whole answer
  | "malformed-reply" // bytes that are no VoidPhone API message (the codec's reason is in the message)
  | "unexpected-reply" // a well-formed message other than RPS PEER
  | "no-gossip-port" // the peer runs no Gossip module that RPS knows of
  | "bad-hostkey"; // the peer's hostkey does not parse: its ID is unknown, so it is never dialed unpinned

/** The RPS module gave no usable peer: that one query fails (membership tries again later); nothing is closed. */
export class RpsError extends Error {
  override readonly name = "RpsError";
  constructor(
    readonly code: RpsErrorCode,
    message: string,
  ) {
    super(message);
  }
}
