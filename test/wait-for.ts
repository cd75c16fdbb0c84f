/**
 * The one way tests wait: poll a condition until it holds, instead of sleeping a guessed time. Test-only.
 * Never a timed assertion: the timeout only bounds a wait that should end far sooner, and its message says what was
 * awaited.
 */

/**
 * Polls `condition` (sync or async) every `intervalMs` until it returns a truthy value, and resolves with that value;
 * rejects with "timed out waiting for <what>" after `timeoutMs`. A condition that throws counts as not yet.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  timeoutMs = 3000,
  what = "condition",
  intervalMs = 5,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      const why = lastError === undefined ? "" : ` (last error: ${(lastError as Error)?.message ?? lastError})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await Bun.sleep(intervalMs);
  }
}
