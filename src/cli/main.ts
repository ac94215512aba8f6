import { existsSync } from 'node:fs';

import { Command, CommanderError } from 'commander';

import { InputError, QueueUnavailableError } from '../utils/errors.js';
import { packageVersion } from '../utils/package-root.js';
import { addReportCommand } from './commands/report.js';
import { addRunCommand } from './commands/run.js';
import { addServeCommand } from './commands/serve.js';
import { addStatusCommand } from './commands/status.js';
import { addValidateCommand } from './commands/validate.js';
import { addWorkerCommand } from './commands/worker.js';
import { addQueueCommand } from './commands/queue.js';
import { EXIT, quote, type CliIo } from './io.js';
import { outsideText } from '../shared/outside-text.js';

/**
 * Runs the CLI on `argv` (as `process.argv`) and returns the exit code. The
 * one place that turns errors into exit codes: bad input is 2 with one line
 * per problem; anything else is a bug, 70, with a line asking for a report.
 */
export async function main(argv: readonly string[], io: CliIo = process): Promise<number> {
  // `imgjob status x | head -1`: a reader that leaves early is no error; the
  // results file, not stdout, is what a run must finish.
  io.stdout.on('error', ignoreClosedPipe);
  // A terminal that hung up (SIGHUP) fails writes with EIO: the run still
  // saves its results and exits 129.
  io.stderr.on('error', ignoreClosedPipe);
  let exitCode: number = EXIT.completed;
  const program = buildProgram(argv, io, (code) => {
    exitCode = code;
  });
  const mixUp = commandHint(program, argv);
  if (mixUp) {
    io.stderr.write(`imgjob: ${mixUp}\n`);
    return EXIT.usage;
  }
  try {
    // `-v` as many tools spell it, beside commander's `-V, --version`.
    await program.parseAsync(argv[2] === '-v' ? [...argv.slice(0, 2), '--version'] : argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end with code 0; every other parse error is usage.
      return error.exitCode === 0 ? EXIT.completed : EXIT.usage;
    }
    if (error instanceof InputError) {
      // Problems quote what the user's files hold: shown with controls escaped.
      for (const line of error.problems) io.stderr.write(`imgjob: ${outsideText(line)}\n`);
      return EXIT.usage;
    }
    if (error instanceof QueueUnavailableError) {
      io.stderr.write(`imgjob: ${error.message}\n`);
      return EXIT.tempfail;
    }
    reportBug(error, argv, io);
    return EXIT.internal;
  }
  return exitCode;
}

function buildProgram(
  argv: readonly string[],
  io: CliIo,
  setExit: (code: number) => void,
): Command {
  const program = new Command('imgjob')
    .description(
      'Batch processor for store-image jobs: download, measure, perimeter, simulated GPU.',
    )
    .version(packageVersion(), '-V, --version', 'output the version number (also -v)')
    .option('--debug', 'print the stack of an internal error (also DEBUG=imgjob)')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });

  addRunCommand(program, io, setExit, argv);
  addStatusCommand(program, io, setExit);
  addValidateCommand(program, io, setExit);
  addServeCommand(program, io, setExit);
  addWorkerCommand(program, io, setExit);
  addQueueCommand(program, io, setExit);
  addReportCommand(program, io, setExit);

  program.addHelpText(
    'after',
    `
Examples:
  imgjob run manifest.json                       # → manifest.results.json + a table
  imgjob run a.json b.json --out-dir out --json  # two jobs at once, status JSON per line
  imgjob run manifest.json --resume              # continue after a crash or Ctrl-C
  imgjob run manifest.json --retry-failed        # take up the failed stores again
  imgjob validate manifest.json                  # check it, download nothing
  imgjob status manifest.results.json            # where does the job stand?
  imgjob status --watch manifest.results.json    # follow it until it ends
  imgjob queue status --queue redis://host/0     # the jobs and workers of a --queue

Exit codes: 0 completed · 1 failed · 2 bad input or usage · 3 (status) unfinished
            70 internal error (a bug: please report it)
            75 the queue's Redis stayed unusable past --queue-wait (results saved, resumable)
            129 stopped by SIGHUP · 130 by SIGINT · 143 by SIGTERM (results saved, resumable)`,
  );
  return program;
}

/** A bug: one line and where to report it; the stack only when asked for. */
function reportBug(error: unknown, argv: readonly string[], io: CliIo): void {
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  io.stderr.write(
    `imgjob: internal error: ${message}\n` +
      'imgjob: this is a bug in imgjob; please report it with the command you ran' +
      ' (the results file, if any, is resumable)\n',
  );
  const debug = argv.includes('--debug') || /(^|,)imgjob(,|$)/.test(process.env.DEBUG ?? '');
  if (debug && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
  else io.stderr.write('imgjob: run with --debug (or DEBUG=imgjob) to see the stack\n');
}

function ignoreClosedPipe(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED' && error.code !== 'EIO')
    throw error;
}

/** `imgjob m.json`: a file where a command belongs, most likely a manifest to run. */
function commandHint(program: Command, argv: readonly string[]): string | undefined {
  const first = argv[2];
  if (first === undefined || first.startsWith('-') || first === 'help') return undefined;
  if (program.commands.some((command) => command.name() === first)) return undefined;
  if (!/\.json$/i.test(first) && !existsSync(first)) return undefined;
  const command = /\.results\.json$/i.test(first) ? 'status' : 'run';
  return `unknown command '${first}'; did you mean \`imgjob ${command} ${[first, ...argv.slice(3)].map(quote).join(' ')}\`?`;
}
