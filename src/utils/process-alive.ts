import { readFileSync } from 'node:fs';

/**
 * Whether a process of this host with `pid` is running: the one rule for a
 * lock's holder, a results file's writer and a queue lease's holder.
 * A process killed but not yet waited for by its parent (a zombie) still
 * answers `kill(pid, 0)`, yet it holds no file and never runs again, so it
 * is not alive: a run killed under a parent that is slow to reap it (an
 * init that reaps late, a supervisor that never does) leaves its lock and
 * its results free at once. Linux says so in /proc; elsewhere the signal
 * test alone decides.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !hasEnded(pid);
}

/** Whether /proc shows `pid` as a zombie (`Z`) or dead (`X`); false where there is no /proc. */
function hasEnded(pid: number): boolean {
  const state = processState(pid);
  return state === 'Z' || state === 'X';
}

/**
 * The state letter /proc gives `pid` (`R`, `S`, `Z` for a zombie, …), or
 * undefined where there is no such process or no /proc.
 */
export function processState(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${String(pid)}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // `pid (comm) state …`: the name may hold spaces and parentheses, so the state follows the last ')'.
  return stat.charAt(stat.lastIndexOf(')') + 2);
}
