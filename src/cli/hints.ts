/**
 * Hints for the usual mix-ups: a results file given to `run`, a manifest
 * given to `status`, a manifest given to `imgjob` with no command. Each
 * looks only at the start of the file, and only after the command already
 * failed, so a right command pays nothing.
 */
import { openSync, readSync, closeSync } from 'node:fs';

import { InputError } from '../utils/errors.js';
import { quote } from './io.js';

const PEEK_BYTES = 4096;

/** The hint for `imgjob run <file>` when the file is an imgjob results file. */
export function resultsFileHint(path: string): string | undefined {
  if (path === '-' || !/"tool"\s*:\s*"imgjob"/.test(peek(path))) return undefined;
  return `${path}: this is an imgjob results file; did you mean \`imgjob status ${quote(path)}\`?`;
}

/**
 * `error`, with a hint for each manifest path that is really a results
 * file — first, since the schema errors below it only say the same thing
 * less helpfully.
 */
export function withResultsFileHints(error: unknown, manifests: readonly string[]): unknown {
  if (!(error instanceof InputError)) return error;
  const hints = manifests.flatMap((path) => resultsFileHint(path) ?? []);
  return hints.length > 0 ? new InputError(error.code, [...hints, ...error.problems]) : error;
}

/** The hint for `imgjob status <file>` when the file looks like a manifest. */
export function manifestHint(path: string): string | undefined {
  const head = peek(path);
  if (!/"visits"\s*:/.test(head) && !/^\s*\{\s*"count"\s*:/.test(head)) return undefined;
  return `${path} looks like a manifest; did you mean \`imgjob run ${quote(path)}\`?`;
}

// The first bytes of a file; '' when it cannot be read (the command's own
// error already says why).
function peek(path: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buffer = Buffer.alloc(PEEK_BYTES);
    return buffer.toString('utf8', 0, readSync(fd, buffer, 0, PEEK_BYTES, 0));
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
