/**
 * Know before you run, and follow along after: `validate`, `status --watch`,
 * the counts in `--json`, the summary after Ctrl-C, a table that fits 80
 * columns, and the progress line's figures.
 *
 * @module-tag e2e
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { renderProgress } from '../src/cli/progress.js';
import type { ResultsDocument } from '../src/types.js';
import { spawnCli, waitForResults } from './helpers/cli.js';
import { caseBed } from './helpers/case-bed.js';
import { runJobHere, runMain, withEnv } from './helpers/main.js';

const STORE_MASTER = new URL('../fixtures/store-master.csv', import.meta.url).pathname;

const bed = caseBed('follow');

type Visit = { store_id: string; image_url: string[] };

function writeManifest(name: string, visits: Visit[]): string {
  const path = join(bed.dir, name);
  writeFileSync(path, JSON.stringify({ count: visits.length, visits }));
  return path;
}

const url = (path: string): string => bed.server.url(path);
const FAST = ['--gpu-delay', '0', '--retries', '0'];

describe('imgjob validate', () => {
  it('prints stores, images, merged visits and hosts, downloads nothing, exit 0', async () => {
    const manifest = writeManifest('m.json', [
      { store_id: 'S00339218', image_url: [url('/img/a.png'), url('/img/b.png')] },
      { store_id: 'S01408764', image_url: ['http://127.0.0.2:9/x.jpg'] },
      { store_id: 'S00339218', image_url: [url('/img/c.png')] },
      { store_id: 'NOPE', image_url: [url('/img/d.png')] },
    ]);
    const { code, stdout, stderr } = await runMain([
      'validate',
      manifest,
      '--store-master',
      STORE_MASTER,
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const host = new URL(bed.server.origin).host;
    expect(stdout).toBe(
      [
        `${manifest}: valid`,
        '  3 stores, 5 images, 4 visits (1 visit merged into the store of an earlier visit)',
        `  2 hosts: ${host} (4 images), 127.0.0.2:9 (1 image)`,
        '  store master: 1 store not in it, which run fails: NOPE',
        '',
      ].join('\n'),
    );
    expect(bed.server.requests).toHaveLength(0);
  });

  it('reports every problem of every manifest with exit 2, like run', async () => {
    const bad = writeManifest('bad.json', [{ store_id: '', image_url: ['ftp://x/y.png'] }]);
    const good = writeManifest('good.json', [{ store_id: 'S', image_url: [url('/img/a.png')] }]);
    const { code, stdout, stderr } = await runMain(['validate', good, bad]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(`${bad}: visits[0].store_id`);
    expect(stderr).toContain(`${bad}: visits[0].image_url[0]`);
    const missing = await runMain(['validate', good, '--store-master', join(bed.dir, 'none.csv')]);
    expect(missing.code).toBe(2);
  });

  it('prints JSON with --json', async () => {
    const manifest = writeManifest('m.json', [{ store_id: 'S', image_url: [url('/img/a.png')] }]);
    const { code, stdout } = await runMain(['validate', manifest, '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      stores: 1,
      images: 1,
      visits: 1,
      merged_visits: 0,
      hosts: { [new URL(bed.server.origin).host]: 1 },
    });
  });
});

describe('--json counts and results_path', () => {
  it('run --json and status --json add counts and results_path; the three fields keep their meaning', async () => {
    const manifest = writeManifest('m.json', [
      { store_id: 'OK', image_url: [url('/img/image.png'), url('/img/image.gif')] },
      { store_id: 'BAD', image_url: [url('/status/404'), url('/img/image.webp')] },
    ]);
    const out = join(bed.dir, 'm.results.json');
    const run = await runJobHere(['run', manifest, ...FAST, '--json']);
    expect(run.code).toBe(1);
    const document = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(Object.keys(document)).toEqual(['status', 'job_id', 'error', 'counts', 'results_path']);
    expect(document).toMatchObject({
      status: 'failed',
      error: [{ store_id: 'BAD' }],
      counts: { stores: 2, images: 4, done: 2, failed: 1, skipped: 1, pending: 0 },
      results_path: out,
    });
    const status = await runMain(['status', out, '--json']);
    expect(status.code).toBe(1);
    expect(JSON.parse(status.stdout)).toEqual(document);
  });
});

describe('imgjob status --watch', () => {
  it('follows a running job until it ends, then exits with its code', async () => {
    const gate = bed.server.gate('watch');
    const manifest = writeManifest('m.json', [
      { store_id: 'S1', image_url: [url('/img/image.png'), url('/gate/watch/image.gif')] },
      { store_id: 'S2', image_url: [url('/status/404')] },
    ]);
    const out = join(bed.dir, 'm.results.json');
    // The job in this process; the watch, what the user runs, as a process.
    const run = runJobHere(['run', manifest, ...FAST]);
    await gate.reached;
    await waitForResults(out, (document) => document.counts.done === 1);
    const watch = spawnCli(['status', '--watch', '--interval', '50', out], { cwd: bed.dir });
    // One line per change while it runs…
    await watch.waitForOutput(
      /ongoing — 3 images \(1 done, 1 failed, 0 skipped, 1 pending\)/,
      'stdout',
    );
    expect(watch.done).toBe(false);
    gate.open();
    // …and the whole view at the end, with the job's exit code.
    const watched = await watch.exited;
    expect(watched.code).toBe(1);
    expect(watched.stdout).toMatch(/failed — 3 images \(2 done, 1 failed, 0 skipped\)/);
    expect(watched.stdout).toContain('✗ S2: image 1 of 1');
    expect((await run).code).toBe(1);
  });

  it('stops with exit 3 when nobody writes the job any more', async () => {
    bed.server.gate('killed');
    const manifest = writeManifest('m.json', [
      { store_id: 'S1', image_url: [url('/gate/killed/image.gif')] },
    ]);
    const out = join(bed.dir, 'm.results.json');
    const run = spawnCli(['run', manifest, ...FAST], { cwd: bed.dir, env: { CI: '1' } });
    await waitForResults(out, (document) => document.writer !== undefined, { run });
    await run.kill('SIGKILL');
    const watched = await runMain(['status', '--watch', '--interval', '50', out]);
    expect(watched.code).toBe(3);
    expect(watched.stdout).toContain('is not running (killed?)');
  });
});

describe('after Ctrl-C', () => {
  it('says "interrupted", not "ongoing", and still lists the failed stores', async () => {
    bed.server.gate('ctrl-c');
    const manifest = writeManifest('m.json', [
      { store_id: 'HELD', image_url: [url('/gate/ctrl-c/image.gif')] },
      { store_id: 'BROKEN', image_url: [url('/status/404')] },
    ]);
    const out = join(bed.dir, 'm.results.json');
    const run = spawnCli(['run', manifest, ...FAST], { cwd: bed.dir, env: { CI: '1' } });
    await waitForResults(
      out,
      (document) => document.stores.some((store) => store.status === 'failed'),
      { run },
    );
    const { code, stdout } = await run.kill('SIGINT');
    expect(code).toBe(130);
    expect(stdout).toMatch(/: interrupted — 2 images \(0 done, 1 failed, 0 skipped, 1 pending\)/);
    expect(stdout).not.toMatch(/: ongoing —/);
    expect(stdout).toContain('✗ BROKEN: image 1 of 1');
    const status = await runMain(['status', out]);
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(/: interrupted —/);
    expect(status.stdout).toContain('✗ BROKEN: image 1 of 1');
  });
});

describe('the table fits the terminal', () => {
  it('has no row wider than 80 columns, cuts errors in the table and keeps them whole elsewhere', async () => {
    const longPath = `/status/404?${'why-'.repeat(40)}`;
    const manifest = writeManifest('m.json', [
      { store_id: 'S-WITH-A-RATHER-LONG-IDENTIFIER-0001', image_url: [url(longPath)] },
      { store_id: 'S2', image_url: [url('/img/image.png')] },
    ]);
    const out = join(bed.dir, 'm.results.json');
    // In this process: the output is piped (captured), so COLUMNS sets the width.
    const columns80 = { COLUMNS: '80', NO_COLOR: '1' };
    const run = await withEnv(columns80, () => runJobHere(['run', manifest, ...FAST]));
    expect(run.code).toBe(1);
    const table = run.stdout.split('\n').filter((line) => /^[┌│└]/.test(line));
    expect(table.length).toBeGreaterThanOrEqual(4);
    for (const line of table) expect(Array.from(line).length, line).toBeLessThanOrEqual(80);
    expect(table.join('\n')).toContain('…');
    const full = (JSON.parse(readFileSync(out, 'utf8')) as ResultsDocument).stores[0]?.error ?? '';
    expect(full).toContain('why-'.repeat(40));
    // The list under the table, the file and status --json keep the whole text.
    expect(run.stdout).toContain(full);
    const status = await runMain(['status', out, '--json']);
    expect((JSON.parse(status.stdout) as { error: { error: string }[] }).error[0]?.error).toBe(
      full,
    );
    const shown = await withEnv(columns80, () => runMain(['status', out]));
    for (const line of shown.stdout.split('\n').filter((row) => /^[┌│└]/.test(row)))
      expect(Array.from(line).length, line).toBeLessThanOrEqual(80);
  });
});

describe('progress figures', () => {
  it('shows bytes per second, running stores and an ETA over the pending images only', () => {
    const line = renderProgress({
      stores: 10,
      storesFinished: 3,
      storesRunning: 4,
      images: 400,
      settled: 150,
      failed: 2,
      pending: 250,
      // 100 images really downloaded in 10 s (50 of the 150 were skipped: no work).
      worked: 100,
      bytes: 42_000_000,
      seconds: 10,
    });
    expect(line).toBe(
      'stores 3/10 (4 running) · images 150/400 · 2 failed · 10.0 img/s · 4.2 MB/s · ETA 25s',
    );
  });
});
