/**
 * A results file that cannot be written for a reason the user can fix (a
 * full disk, a quota, permissions, a read-only or vanished folder) is not a
 * bug: it gets one line that names the file and what to do (exit 2). Any
 * other I/O error stays what it is, an internal error (exit 70).
 */
import { formatBytes } from '../shared/bytes.js';
import { InputError } from '../utils/errors.js';

/** Saving stopped for a reason the user can fix; what was saved is resumable. */
export class ResultsSaveError extends InputError {
  /** The errno code that stopped it: `ENOSPC`, `EACCES`, … */
  readonly errno: string;

  constructor(message: string, errno: string, options?: ErrorOptions) {
    super('E_RESULTS_FILE', message, options);
    this.errno = errno;
  }
}

const THEN_RESUME = 'then run the same command with --resume';

/**
 * The error a failed save of `path` ends the run with: a ResultsSaveError
 * when the user can fix the cause, else `error` itself.
 * @param neededBytes About how much room a whole snapshot takes.
 */
export function saveErrorOf(error: unknown, path: string, neededBytes: number): Error {
  if (error instanceof ResultsSaveError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const cannot = `cannot save ${path}`;
  const room = `needs about ${formatBytes(neededBytes, 'up')} free`;
  switch (code) {
    case 'ENOSPC':
      return new ResultsSaveError(
        `${cannot}: disk full (${room}); free some space, ${THEN_RESUME}`,
        code,
        { cause: error },
      );
    case 'EDQUOT':
      return new ResultsSaveError(
        `${cannot}: disk quota exceeded (${room}); free some space, ${THEN_RESUME}`,
        code,
        { cause: error },
      );
    case 'EACCES':
    case 'EPERM':
      return new ResultsSaveError(
        `${cannot}: permission denied; make its folder writable, ${THEN_RESUME}`,
        code,
        { cause: error },
      );
    case 'EROFS':
      return new ResultsSaveError(
        `${cannot}: the file system is read-only; remount it writable, ${THEN_RESUME}`,
        code,
        { cause: error },
      );
    case 'ENOENT':
    case 'ENOTDIR':
      return new ResultsSaveError(
        `${cannot}: its folder was removed or replaced; restore it, ${THEN_RESUME}`,
        code,
        { cause: error },
      );
    default:
      return error instanceof Error ? error : new Error(String(error));
  }
}
