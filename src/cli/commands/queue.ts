/**
 * `imgjob queue status|clean --queue <redis-url>`: a look at what the queue
 * holds (jobs, their stores waiting, active or stalled, the workers), and
 * the removal of jobs' keys nobody will resume.
 */
import type { Command } from 'commander';

import type { QueueOverview } from '../../queue/admin.js';
import { EXIT, type CliIo } from '../io.js';

type QueueFlags = { queue: string; json?: boolean };
type CleanFlags = QueueFlags & { job?: string };

export function addQueueCommand(
  program: Command,
  io: Pick<CliIo, 'stdout' | 'stderr'>,
  setExit: (code: number) => void,
): Command {
  const queue = program
    .command('queue')
    .description('look at the shared queue of --queue runs: its jobs, stores and workers');
  queue
    .command('status')
    .description('list the jobs on the queue (stores waiting, active, stalled) and its workers')
    .requiredOption('--queue <redis-url>', 'the shared queue: redis://[:password@]host:6379/0')
    .option('--json', 'print the overview as one JSON document')
    .action(async (flags: QueueFlags) => {
      const [{ queueOverview }, { parseRedisUrl }] = await Promise.all([
        import('../../queue/admin.js'),
        import('../../queue/redis-url.js'),
      ]);
      const overview = await queueOverview(parseRedisUrl(flags.queue));
      io.stdout.write(flags.json ? `${JSON.stringify(overview)}\n` : renderOverview(overview));
      setExit(EXIT.completed);
    });
  queue
    .command('clean')
    .description(
      "remove a job's keys from Redis now (--job), or those of every job no coordinator runs",
    )
    .requiredOption('--queue <redis-url>', 'the shared queue: redis://[:password@]host:6379/0')
    .option('--job <id>', 'the job (its id as `imgjob queue status` lists it)')
    .addHelpText(
      'after',
      `
A job stopped unfinished keeps its keys for --queue-retention (default 7 days)
so that --resume finds what workers reported meanwhile; after a clean, --resume
hands its unfinished stores out again from the results file. A job whose
coordinator runs is left alone.`,
    )
    .action(async (flags: CleanFlags) => {
      const [{ cleanQueue }, { parseRedisUrl }] = await Promise.all([
        import('../../queue/admin.js'),
        import('../../queue/redis-url.js'),
      ]);
      const cleaned = await cleanQueue(parseRedisUrl(flags.queue), flags.job);
      for (const job of cleaned) {
        io.stdout.write(
          `removed job ${job.job_id}: ${job.keys} key(s), ${job.stores} queued store(s)\n`,
        );
      }
      if (cleaned.length === 0)
        io.stdout.write('nothing to clean: every job has its coordinator\n');
      setExit(EXIT.completed);
    });
  return queue;
}

function renderOverview(overview: QueueOverview): string {
  const lines = [`queue ${overview.redis} (prefix imgjob)`];
  if (overview.jobs.length === 0) lines.push('jobs: none');
  else {
    lines.push('jobs:');
    for (const job of overview.jobs) {
      const by = job.coordinator
        ? `coordinator ${job.coordinator.host} (pid ${job.coordinator.pid})`
        : 'no coordinator';
      const expiry =
        job.expires_in_s === null ? '' : `; keys expire in ${formatSeconds(job.expires_in_s)}`;
      lines.push(`  ${job.job_id}: ${by}${expiry}`);
      lines.push(
        `    stores: ${job.waiting} waiting, ${job.active} active, ${job.stalled} stalled, ${job.failed} failed; ${job.unread} results unread`,
      );
    }
  }
  if (overview.workers.length === 0) lines.push('workers: none on this queue');
  else {
    lines.push('workers:');
    for (const worker of overview.workers) {
      lines.push(
        `  ${worker.host} (pid ${worker.pid})  ${worker.running.length + worker.other_stores} of ${worker.slots} slot(s) busy`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 129_600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}
