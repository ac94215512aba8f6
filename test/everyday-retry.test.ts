/**
 * `--retry-failed`: after an outage, only what failed (and what fail-fast
 * skipped) is taken up again; done images are kept and never requested
 * twice; the job id stays. Counted at a real server with routes that fail
 * until they come back.
 *
 * @module-tag e2e
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { addEngineOptions, engineOptionsOf, type EngineFlags } from '../src/cli/options.js';
import type { ResultsDocument } from '../src/types.js';
import { runCli } from './helpers/cli.js';
import { runJobHere, runMain, type MainResult } from './helpers/main.js';
import { caseBed } from './helpers/case-bed.js';

const bed = caseBed('retry');

/** `imgjob <args>` through main() in this process: no case here is about the process. */
const imgjob = (args: string[]): Promise<MainResult> =>
  args[0] === 'run' ? runJobHere(args) : runMain(args);

const writeManifest = (stores: Record<string, string[]>): string => bed.writeManifest(stores);

const readResults = (path: string): ResultsDocument =>
  JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument;

/** Paths requested since `from` (an index into the server's request log). */
const requestedSince = (from: number): string[] =>
  bed.server.requests.slice(from).map((request) => request.path);

const FAST = ['--gpu-delay', '0', '--retries', '0', '--seed', '7'];

describe('--retry-failed', () => {
  it('reopens failed stores from their failed image, keeps done results and the job id', async () => {
    // `/flaky/1/…` is down for its first request, then serves: an outage.
    const manifest = writeManifest({
      A: ['/img/image.png', '/flaky/1/a/image.gif', '/img/baseline.jpg'],
      B: ['/img/image.webp'],
      C: ['/flaky/1/c/image.bmp', '/img/progressive.jpg'],
    });
    const out = join(bed.dir, 'm.results.json');
    // A process: the hint repeats the command line as the user typed it.
    const first = await runCli(['run', manifest, ...FAST], { cwd: bed.dir, env: { CI: '1' } });
    expect(first.code).toBe(1);
    expect(first.stderr).toContain(
      `imgjob: 2 stores failed; once the cause is fixed, take them up again with: imgjob run ${manifest} ${FAST.join(' ')} --retry-failed`,
    );
    const failed = readResults(out);
    expect(failed.stores.map((store) => store.status)).toEqual(['failed', 'completed', 'failed']);
    expect(failed.stores[0]?.images.map((image) => image.status)).toEqual([
      'done',
      'failed',
      'skipped',
    ]);

    const before = bed.server.requests.length;
    const retry = await imgjob(['run', manifest, ...FAST, '--retry-failed']);
    expect(retry.code, retry.stderr).toBe(0);
    // Only the failed images and the ones skipped after them; never a done one.
    expect(requestedSince(before).sort()).toEqual(
      [
        '/flaky/1/a/image.gif',
        '/img/baseline.jpg',
        '/flaky/1/c/image.bmp',
        '/img/progressive.jpg',
      ].sort(),
    );
    const done = readResults(out);
    expect(done.job_id).toBe(failed.job_id);
    expect(done.status).toBe('completed');
    expect(done.counts).toMatchObject({ done: 6, failed: 0, skipped: 0, pending: 0 });
    // The done results of the first run are the same records, untouched.
    expect(done.stores[0]?.images[0]).toEqual(failed.stores[0]?.images[0]);
    expect(done.stores[1]).toEqual(failed.stores[1]);
    expect(done.error).toBeUndefined();
  });

  it('reopens the stores fail-fast skipped, which were never requested', async () => {
    const manifest = writeManifest({
      X: ['/flaky/1/x/image.png'],
      Y: ['/img/image.gif'],
      Z: ['/img/image.webp'],
    });
    const out = join(bed.dir, 'm.results.json');
    // One store at a time: X fails first, and fail-fast skips Y and Z.
    const args = ['run', manifest, ...FAST, '--fail-fast', '-c', '1'];
    expect((await imgjob(args)).code).toBe(1);
    expect(readResults(out).stores.map((store) => store.status)).toEqual([
      'failed',
      'skipped',
      'skipped',
    ]);
    expect(requestedSince(0)).toEqual(['/flaky/1/x/image.png']);

    const before = bed.server.requests.length;
    const retry = await imgjob([...args, '--resume', '--retry-failed']);
    expect(retry.code, retry.stderr).toBe(0);
    expect(requestedSince(before).sort()).toEqual(
      ['/flaky/1/x/image.png', '/img/image.gif', '/img/image.webp'].sort(),
    );
    expect(readResults(out).stores.map((store) => store.status)).toEqual([
      'completed',
      'completed',
      'completed',
    ]);
  });

  it('without --retry-failed, --resume leaves a failed job as it is and requests nothing', async () => {
    const manifest = writeManifest({ A: ['/img/image.png', '/flaky/1/r/image.gif'] });
    expect((await imgjob(['run', manifest, ...FAST])).code).toBe(1);
    const before = bed.server.requests.length;
    expect((await imgjob(['run', manifest, ...FAST, '--resume'])).code).toBe(1);
    expect(requestedSince(before)).toEqual([]);
  });

  it('refuses --retry-failed with --force (exit 2)', async () => {
    const manifest = writeManifest({ A: ['/img/image.png'] });
    const { code, stderr } = await imgjob(['run', manifest, '--force', '--retry-failed']);
    expect(code).toBe(2);
    expect(stderr).toBe('imgjob: --force and --retry-failed cannot be used together\n');
  });
});

describe('--retry-wait', () => {
  it('is a documented option with its cap, and 0 retries at once', async () => {
    const help = await imgjob(['run', '--help']);
    expect(help.stdout).toMatch(/--retry-wait <ms>\s+backoff base: retry n waits/);
    expect(help.stdout).toMatch(/each wait at most 30 s/);
    const manifest = writeManifest({ A: ['/flaky/2/w/image.png'] });
    const run = await imgjob([
      'run',
      manifest,
      '--gpu-delay',
      '0',
      '--retries',
      '2',
      '--retry-wait',
      '0',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(requestedSince(0)).toHaveLength(3);
    const bad = await imgjob(['run', manifest, '--retry-wait', '-5']);
    expect(bad.code).toBe(2);
  });

  it('reaches the download options as the backoff base (250 ms by default)', () => {
    const parse = (args: string[]): EngineFlags =>
      addEngineOptions(new Command('x').exitOverride())
        .parse(args, { from: 'user' })
        .opts<EngineFlags>();
    expect(engineOptionsOf(parse(['--retry-wait', '1234'])).retryBaseMs).toBe(1234);
    expect(engineOptionsOf(parse([])).retryBaseMs).toBe(250);
  });
});
