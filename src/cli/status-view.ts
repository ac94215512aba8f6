/**
 * What `imgjob status` shows (src/cli/commands/status.ts defines the
 * command): a job read from its results file, once, or redrawn while it runs.
 */
import { setTimeout as delay } from 'node:timers/promises';

import { isWriterAlive } from '../results/reader.js';
import { ResultsStream, type JobSummary } from '../results/results-stream.js';
import { InputError } from '../utils/errors.js';
import { outsideText } from '../shared/outside-text.js';
import type { StatusFlags } from './commands/status.js';
import { manifestHint } from './hints.js';
import { networkLines } from './network-line.js';
import { quote, STOP_SIGNALS, worstExit, type CliIo, type StopSignal } from './io.js';
import { jobJsonLine } from './job-json.js';
import { DEFAULTS } from './options.js';
import { isTerminal, outputWidth, paintFor } from './paint.js';
import { renderErrors, renderStoreTable, renderSummary, TABLE_CHROME_LINES } from './render.js';
import { screenLines, WatchScreen, wrapWords } from './watch-screen.js';

/** `imgjob status`: the job as its results file has it, once or until it ends (`--watch`). */
export async function showStatus(path: string, flags: StatusFlags, io: CliIo): Promise<number> {
  let document = await load(path);
  if (!flags.watch) {
    io.stdout.write(render(document, path, flags, io.stdout));
    return worstExit([document.status]);
  }
  // Watching: a terminal gets one screen redrawn in place, like watch(1);
  // a pipe or a log gets one line (or JSON document) per change, then the
  // whole view at the end.
  const screen = isTerminal(io.stdout) && !flags.json ? new WatchScreen(io.stdout) : undefined;
  const stop = new AbortController();
  const onSignal = (signal: StopSignal): void => {
    stop.abort(signal);
  };
  const signals = Object.keys(STOP_SIGNALS) as StopSignal[];
  for (const signal of signals) process.on(signal, onSignal);
  let shown = '';
  let loadMs = 0;
  try {
    for (;;) {
      const running = document.status === 'ongoing' && isWriterAlive(document);
      if (!running) break;
      const view = screen ? frame(document, io.stdout, screen) : brief(document, path, flags);
      if (view !== shown) {
        if (screen) screen.draw(view);
        else io.stdout.write(view);
        shown = view;
      }
      try {
        // A big job takes a while to read: reading it back to back would keep a core busy.
        await delay(Math.max(flags.interval, loadMs), undefined, { signal: stop.signal });
      } catch {
        // Ctrl-C: the screen goes back as it was, the job runs on.
        screen?.close();
        return STOP_SIGNALS[stop.signal.reason as StopSignal];
      }
      const started = performance.now();
      document = await load(path);
      loadMs = performance.now() - started;
    }
  } finally {
    screen?.close();
    for (const signal of signals) process.off(signal, onSignal);
  }
  // Ended, or nobody writes it any more (killed, interrupted): the whole view, kept in the scrollback.
  io.stdout.write(render(document, path, flags, io.stdout));
  return worstExit([document.status]);
}

/** One screen of a watched job: the summary first, then as many stores as the terminal has rows for. */
function frame(document: JobSummary, stream: NodeJS.WriteStream, screen: WatchScreen): string {
  const { columns, rows } = screen.size;
  const paint = paintFor(stream);
  const summary = `${wrapWords(renderSummary(document, paint), columns)}\n`;
  const room = rows - screenLines(summary, columns) - TABLE_CHROME_LINES;
  return `${summary}${renderStoreTable(document, { paint, width: columns, maxRows: room })}\n`;
}

/** The job as it stands, read store by store: a job of ten million images is never whole in memory here. */
async function load(path: string): Promise<JobSummary> {
  try {
    const stream = await ResultsStream.open(path);
    try {
      return await stream.summary();
    } finally {
      await stream.close();
    }
  } catch (error) {
    const hint = error instanceof InputError ? manifestHint(path) : undefined;
    throw hint && error instanceof InputError
      ? new InputError(error.code, [...error.problems, hint])
      : error;
  }
}

function render(
  document: JobSummary,
  path: string,
  flags: StatusFlags,
  stream: NodeJS.WriteStream,
): string {
  if (flags.json) return jobJsonLine(document, path);
  const paint = paintFor(stream);
  let text = `${renderSummary(document, paint)}\n`;
  // While watching, "run this again" is what is happening already.
  const live = isWriterAlive(document);
  if (document.status === 'ongoing' && !(flags.watch && live))
    text += `${describeWriter(document, path)}\n`;
  if (document.status === 'ongoing' && live) text += networkLines(document.network);
  const table = renderStoreTable(document, { paint, width: outputWidth(stream) });
  if (table) text += `${table}\n`;
  const errors = renderErrors(document, paint);
  if (errors) text += `${errors}\n`;
  return text;
}

/** One line per change while watching through a pipe. */
function brief(document: JobSummary, path: string, flags: StatusFlags): string {
  if (flags.json) return jobJsonLine(document, path);
  return `${renderSummary(document)}\n`;
}

function describeWriter(document: JobSummary, path: string): string {
  if (isWriterAlive(document)) {
    return `running (pid ${document.writer?.pid ?? '?'}); run this again (or with --watch) to see it progress`;
  }
  const how = document.interrupted ? 'was interrupted' : 'is not running (killed?)';
  return `the run ${how}; continue it with: ${resumeHint(document, path)}`;
}

/** The `run --resume` command that continues a job, with the options it was made with. */
function resumeHint(document: JobSummary, path: string): string {
  const { options } = document;
  const args = ['imgjob', 'run', outsideText(document.manifest_source), '-o', path, '--resume'];
  args.push('--gpu-delay', options.gpu_delay);
  if (options.seed !== null) args.push('--seed', String(options.seed));
  if (options.header_only) args.push('--header-only');
  if (options.max_bytes !== DEFAULTS.maxBytes) args.push('--max-bytes', String(options.max_bytes));
  if (options.store_master !== null) args.push('--store-master', '<the same store master>');
  // Its stores run on workers: resumed without the queue, they would be
  // downloaded again here. The password is the user's to fill in.
  if (document.queue !== undefined) args.push('--queue', document.queue);
  return args.map(quote).join(' ');
}
