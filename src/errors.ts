/**
 * One error type per boundary, each with a reason code that logs and metrics use.
 * Never throw strings; never let a peer's or module's bytes raise anything else out of a decoder.
 */

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
    readonly code: string,
    message: string,
  ) {
    super(message);
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
