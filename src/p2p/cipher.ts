/**
 * One direction of an established link: the CipherState that Noise's Split() produced, with a counter nonce and a
 * REKEY every `rekeyInterval` frames (both ends count frames, so they rekey at the same message without talking).
 * It runs once per frame, so encryption writes straight into the buffer that will be sent, with room for the frame
 * header in front.
 *
 * It must never reuse a nonce or go on after a failed decryption: a failure throws P2PProtocolError("decrypt-failed")
 * and the link is closed by its owner.
 */
import { REKEY_INTERVAL_FRAMES } from "../defaults.ts";
import { CipherState, TAG_LEN } from "./noise.ts";

/** Rekey after this many frames per direction. */
export const DEFAULT_REKEY_INTERVAL = REKEY_INTERVAL_FRAMES;

export interface TransportCipherOptions {
  /** Frames per key; tests lower it to cross the boundary quickly. */
  rekeyInterval?: number;
}

const EMPTY = new Uint8Array(0);

export class TransportCipher {
  static readonly TAG_BYTES = TAG_LEN;
  private readonly rekeyInterval: number;
  /** Frames under the current key. */
  private sinceRekey = 0;

  constructor(
    private readonly state: CipherState,
    options: TransportCipherOptions = {},
  ) {
    if (!state.hasKey()) throw new RangeError("TransportCipher needs a keyed CipherState");
    this.rekeyInterval = options.rekeyInterval ?? DEFAULT_REKEY_INTERVAL;
    if (!Number.isInteger(this.rekeyInterval) || this.rekeyInterval < 1) throw new RangeError("rekeyInterval must be ≥ 1");
  }

  /** Frames processed in this direction (the next nonce). */
  get counter(): bigint {
    return this.state.counter;
  }

  /**
   * Ciphertext (plaintext length + 16) for the next nonce, placed after `headroom` bytes that the caller fills
   * (typically the 4-byte frame length), in one allocation.
   */
  encrypt(plaintext: Uint8Array, headroom = 0): Uint8Array {
    const out = new Uint8Array(headroom + plaintext.length + TAG_LEN);
    this.state.encryptWithAd(EMPTY, plaintext, headroom === 0 ? out : out.subarray(headroom));
    this.afterMessage();
    return out;
  }

  /** Plaintext of the next frame; throws P2PProtocolError("decrypt-failed") if it was not sealed by our peer. */
  decrypt(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.state.decryptWithAd(EMPTY, ciphertext);
    this.afterMessage();
    return plaintext;
  }

  private afterMessage(): void {
    if (++this.sinceRekey === this.rekeyInterval) {
      this.sinceRekey = 0;
      this.state.rekey();
    }
  }
}
