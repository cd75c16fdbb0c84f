/** The reason code of the P2PProtocolError an action throws; fails the test if it throws nothing or something else. */
import { P2PProtocolError } from "../../src/errors.ts";

export function codeOf(action: () => unknown): string {
  try {
    action();
  } catch (e) {
    if (e instanceof P2PProtocolError) return e.code;
    throw e;
  }
  throw new Error("expected a P2PProtocolError");
}
