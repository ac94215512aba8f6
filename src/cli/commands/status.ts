import type { Command } from 'commander';

import { EXIT, type CliIo } from '../io.js';
import { intOption } from '../options.js';

export type StatusFlags = { json?: boolean; watch?: boolean; interval: number };

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
    .option('--json', 'print the status JSON of the job (with counts and results_path)')
    .option('-w, --watch', "redraw until the job ends, then exit with the job's code")
    .addOption(intOption('--interval <ms>', 'how often --watch reads the file', 1000, 50))
    .addHelpText(
      'after',
      `
Exit codes: ${EXIT.completed} completed · ${EXIT.failed} failed · ${EXIT.unfinished} still ongoing, or stopped unfinished (killed, interrupted) · ${EXIT.usage} not a results file, or bad usage · ${EXIT.sigint} --watch stopped by Ctrl-C.

On a terminal, --watch redraws one screen in place (the summary, then as many stores as fit); through a pipe it prints one line per change.

Examples:
  imgjob status job.results.json
  imgjob status job.results.json --watch
  imgjob status job.results.json --json | jq .counts`,
    )
    .action(async (path: string, flags: StatusFlags) => {
      // Loaded on use: the other commands start without the results reader and the table.
      const { showStatus } = await import('../status-view.js');
      setExit(await showStatus(path, flags, io));
    });
}
