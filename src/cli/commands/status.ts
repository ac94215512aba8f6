import type { Command } from 'commander';

import { isWriterAlive, loadResults } from '../../results/reader.js';
import { statusDocument } from '../../results/status-document.js';
import type { ResultsDocument } from '../../types.js';
import { quote, worstExit, type CliIo } from '../io.js';
import { DEFAULTS } from '../options.js';
import { paintFor } from '../paint.js';
import { renderErrors, renderStoreTable, renderSummary } from '../render.js';

type StatusFlags = { json?: boolean };

/** `imgjob status <results>`: where a job stands, also while it runs. */
export function addStatusCommand(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): Command {
  return program
    .command('status')
    .description('where does a job stand? (works while it runs)')
    .argument('<results>', 'a results file written by imgjob run')
    .option('--json', 'print the status JSON of the job')
    .action(async (path: string, flags: StatusFlags) => {
      setExit(await statusCommand(path, flags, io));
    });
}

async function statusCommand(path: string, flags: StatusFlags, io: CliIo): Promise<number> {
  const document = await loadResults(path);
  if (flags.json) {
    io.stdout.write(`${JSON.stringify(statusDocument(document))}\n`);
  } else {
    const paint = paintFor(io.stdout);
    io.stdout.write(`${renderSummary(document, paint)}\n`);
    if (document.status === 'ongoing') io.stdout.write(`${describeWriter(document, path)}\n`);
    io.stdout.write(`${renderStoreTable(document, { paint })}\n`);
    const errors = renderErrors(document, paint);
    if (errors) io.stdout.write(`${errors}\n`);
  }
  return worstExit([document.status]);
}

function describeWriter(document: ResultsDocument, path: string): string {
  if (isWriterAlive(document)) {
    return `running (pid ${document.writer?.pid ?? '?'}); run this again to see it progress`;
  }
  const how = document.interrupted ? 'was interrupted' : 'is not running (killed?)';
  return `the run ${how}; continue it with: ${resumeHint(document, path)}`;
}

/** The `run --resume` command that continues a job, with the options it was made with. */
function resumeHint(document: ResultsDocument, path: string): string {
  const { options } = document;
  const args = ['imgjob', 'run', document.manifest_source, '-o', path, '--resume'];
  args.push('--gpu-delay', options.gpu_delay);
  if (options.seed !== null) args.push('--seed', String(options.seed));
  if (options.header_only) args.push('--header-only');
  if (options.max_bytes !== DEFAULTS.maxBytes) args.push('--max-bytes', String(options.max_bytes));
  if (options.store_master !== null) args.push('--store-master', '<the same store master>');
  return args.map(quote).join(' ');
}
