/**
 * What a BullMQ worker says when the lock of a job it runs is gone: the lock
 * expired (the worker froze), another worker took the job up, or Redis lost
 * it. imgjob says so once in its own words (`lost lock  store …`), so none of
 * it is a queue error to print. Told apart by what BullMQ gives for it, never
 * by its wording (test/queue-lock-key.test.ts checks both against BullMQ):
 *
 * - a completion or a move BullMQ refused: an Error whose `code` is one of
 *   BullMQ's `ErrorCode`s for a job or lock that is not this worker's;
 * - a renewal that failed: BullMQ emits `lockRenewalFailed` with the job ids,
 *   then at once one plain Error each (those carry no code).
 */
import { ErrorCode, type Worker } from 'bullmq';

const LOCK_GONE: ReadonlySet<unknown> = new Set([
  ErrorCode.JobNotExist,
  ErrorCode.JobLockNotExist,
  ErrorCode.JobLockMismatch,
]);

/** Whether BullMQ refused a command because the job's lock is not the worker's any more. */
export function isLockGone(error: unknown): boolean {
  return error instanceof Error && LOCK_GONE.has((error as Error & { code?: unknown }).code);
}

/**
 * Listens to `worker` and returns the test for its `error` events: true for
 * what only says a lock is gone. Register it before the `error` listener that
 * asks it.
 */
export function watchLockLoss(worker: Pick<Worker, 'on'>): (error: unknown) => boolean {
  let renewalErrors = 0;
  worker.on('lockRenewalFailed', (jobIds) => {
    renewalErrors += jobIds.length;
    // Its errors follow in the same turn; nothing later is one of them.
    queueMicrotask(() => {
      renewalErrors = 0;
    });
  });
  return (error) => {
    if (renewalErrors > 0) {
      renewalErrors--;
      return true;
    }
    return isLockGone(error);
  };
}
