/**
 * Resolves once `check` holds, looking every 10 ms; fails after `timeoutMs`,
 * naming `what` (a function: read when it fails, e.g. the last state seen).
 * For waits outside a test, where `expect.poll` cannot run (a hook), and
 * for helpers that return what they waited for.
 */
export async function until(
  check: () => Promise<boolean> | boolean,
  what: string | (() => string),
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
