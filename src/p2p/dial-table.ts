/**
 * The dials a transport has in flight, by address (host:port): each settles exactly once, and settling removes it at
 * once, so a new dial of the address starts afresh while a second dial of it in flight shares the first's promise.
 * Pure bookkeeping: no sockets, no timers.
 */
import type { DialError } from "../errors.ts";

export interface PendingDial {
  promise: Promise<string>;
  resolve(id: string): void;
  reject(e: DialError): void;
}

export class DialTable {
  private readonly dials = new Map<string, PendingDial>();

  get(key: string): PendingDial | undefined {
    return this.dials.get(key);
  }

  get size(): number {
    return this.dials.size;
  }

  /** Every dial in flight (a copy: rejecting them removes them). */
  all(): PendingDial[] {
    return [...this.dials.values()];
  }

  /** A new dial of `key`, in the table until it settles. */
  start(key: string): PendingDial {
    let settle!: { resolve: (id: string) => void; reject: (e: DialError) => void };
    const promise = new Promise<string>((resolve, reject) => void (settle = { resolve, reject }));
    const dial: PendingDial = {
      promise,
      resolve: (id) => {
        if (this.dials.get(key) === dial) this.dials.delete(key);
        settle.resolve(id);
      },
      reject: (e) => {
        if (this.dials.get(key) === dial) this.dials.delete(key);
        settle.reject(e);
      },
    };
    this.dials.set(key, dial);
    return dial;
  }
}
