/**
 * Waiting for a pattern in output that grows, for a process (`spawnCli`) or
 * an in-process worker (`startWorkerHere`) alike: resolves with the text
 * once it matches; fails at once when its producer is done without it, and
 * after `timeoutMs` otherwise. The producer calls every watcher it holds
 * whenever its text grows or it ends.
 */
export type WaitOptions = {
  /** Give up after this long. @default 10_000 */
  readonly timeoutMs?: number;
};

/** Output a test reads as it grows: a spawned imgjob's (`CliRun`) or an in-process worker's. */
export type GrowingOutput = {
  readonly stdout: string;
  readonly stderr: string;
  /** Whether no more output will come (the process exited, the worker stopped). */
  readonly done: boolean;
  /** Resolves with the output so far once `stream` matches `pattern`. */
  waitForOutput(
    pattern: RegExp | string,
    stream?: 'stdout' | 'stderr',
    options?: WaitOptions,
  ): Promise<string>;
};

export type TextSource = {
  /** The text so far. */
  readonly text: () => string;
  /** Whether no more text will come. */
  readonly done: () => boolean;
  /** The checks to call on each change; the wait adds its own, and removes it when settled. */
  readonly watchers: Set<() => void>;
  /** What the failures say after their first line: the producer's output, say. */
  readonly describe: () => string;
  /** Who the failures name: `imgjob's stderr`, `the worker`. */
  readonly what: string;
};

export function waitForText(
  source: TextSource,
  pattern: RegExp | string,
  timeoutMs = 10_000,
): Promise<string> {
  const matches = (text: string): boolean =>
    typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text);
  return new Promise<string>((resolve, reject) => {
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      source.watchers.delete(check);
      if (error) reject(error);
      else resolve(source.text());
    };
    const check = (): void => {
      if (matches(source.text())) finish();
      else if (source.done()) {
        finish(
          new Error(`${source.what} ended before showing ${String(pattern)}\n${source.describe()}`),
        );
      }
    };
    const timer = setTimeout(() => {
      finish(
        new Error(
          `timed out waiting for ${source.what} to show ${String(pattern)}\n${source.describe()}`,
        ),
      );
    }, timeoutMs);
    source.watchers.add(check);
    check();
  });
}
