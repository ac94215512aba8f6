/**
 * `imgjob report` and `run --report`, end to end through the built CLI:
 * the JUnit file passes a JUnit schema (xmllint), the CSV round-trips
 * through csv-parse, exit codes follow `status`, and a live or killed run's
 * file is reported as it stands.
 *
 * @module-tag e2e
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parse } from 'csv-parse/sync';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { loadResults } from '../src/results/reader.js';
import type { ResultsDocument } from '../src/types.js';
import { spawnCli, stopAll, waitForResults } from './helpers/cli.js';
import { runJobHere, runMain } from './helpers/main.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

const XSD = fileURLToPath(new URL('fixtures/junit.xsd', import.meta.url));
const folder = mkdtempSync(join(tmpdir(), 'imgjob-report-'));
let images: FaultServer;
/** A finished, failed job with hostile store ids, URLs and error texts. */
let failedResults: string;
let failed: ResultsDocument;

// Control characters are refused in store ids; every other hostile byte is allowed.
const HOSTILE_STORE = 'S,"quoted" <img src=x onerror=alert(1)></script>&\'';

function writeManifest(name: string, visits: { store_id: string; image_url: string[] }[]): string {
  const path = join(folder, `${name}.json`);
  writeFileSync(path, JSON.stringify({ count: visits.length, visits }));
  return path;
}

const hasXmllint = (() => {
  try {
    execFileSync('xmllint', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function validateJunit(path: string): void {
  if (!hasXmllint) {
    if (process.env.CI) throw new Error('xmllint is missing: CI must check the JUnit schema');
    return;
  }
  // Throws (non-zero exit) with xmllint's message when the file does not validate.
  execFileSync('xmllint', ['--noout', '--schema', XSD, path], { stdio: 'pipe' });
}

beforeAll(async () => {
  if (!hasXmllint && !process.env.CI)
    console.warn(
      'report.test.ts: xmllint not found (apt-get install libxml2-utils): schema checks skipped',
    );
  images = await startFaultServer();
  const manifest = writeManifest('failed', [
    { store_id: 'S1', image_url: [images.url('/png/1/a.png'), images.url('/png/1/b.png')] },
    {
      store_id: HOSTILE_STORE,
      image_url: [
        images.url('/png/2/a,"b".png'),
        images.url('/missing/</script><script>alert(1)</script>.png'),
        images.url('/png/2/c.png'),
      ],
    },
  ]);
  failedResults = join(folder, 'failed.results.json');
  const run = await runJobHere([
    'run',
    manifest,
    '-o',
    failedResults,
    '--gpu-delay',
    '0',
    '--retries',
    '0',
  ]);
  expect(run.code, run.stderr).toBe(1);
  failed = await loadResults(failedResults);
});

afterEach(stopAll);

afterAll(async () => {
  await images.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('imgjob report --junit', () => {
  it('writes one suite per job, one case per store, a failure with the store error, valid against the JUnit schema', async () => {
    const out = join(folder, 'junit.xml');
    const { code, stderr } = await runMain(['report', failedResults, '--junit', out]);
    expect(code, stderr).toBe(0);
    validateJunit(out);
    const xml = readFileSync(out, 'utf8');
    expect(xml.match(/<testsuite /g)).toHaveLength(1);
    expect(xml.match(/<testcase /g)).toHaveLength(2);
    expect(xml.match(/<failure /g)).toHaveLength(1);
    expect(xml).toContain('tests="2" failures="1" errors="0" skipped="0"');
    // The hostile store id is escaped, never raw markup.
    expect(xml).not.toContain('<img');
    expect(xml).toContain(
      `name="S,&quot;quoted&quot; &lt;img src=x onerror=alert(1)&gt;&lt;/script&gt;&amp;'"`,
    );
    const error = failed.stores[1]?.error ?? '';
    expect(error).toMatch(/HTTP 404/);
    expect(xml).toContain(
      `type="E_HTTP_STATUS">${error.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}`,
    );
  });

  it('exits 1 for a failed job with --strict, after writing the report all the same', async () => {
    const out = join(folder, 'strict.xml');
    const { code, stderr } = await runMain(['report', failedResults, '--junit', out, '--strict']);
    expect(code).toBe(1);
    expect(stderr).toBe(`imgjob: wrote ${out}\n`);
    validateJunit(out);
  });

  it('writes several jobs as several suites, to stdout with -', async () => {
    const { code, stdout } = await runMain([
      'report',
      failedResults,
      failedResults,
      '--junit',
      '-',
    ]);
    // Written as asked: 0, failed jobs or not (a `set -e` script goes on to upload it).
    expect(code).toBe(0);
    expect(stdout.match(/<testsuite /g)).toHaveLength(2);
    const out = join(folder, 'two.xml');
    writeFileSync(out, stdout);
    validateJunit(out);
  });
});

describe('imgjob report --csv', () => {
  it('writes one row per image that csv-parse reads back to the results file', async () => {
    const { code, stdout } = await runMain(['report', failedResults, '--csv', '-']);
    expect(code).toBe(0);
    expect(stdout.endsWith('\r\n')).toBe(true);
    const rows = parse<Record<string, string>>(stdout, { columns: true });
    const expected = failed.stores.flatMap((store) =>
      store.images.map((image, index) => ({
        store_id: store.store_id,
        index: String(index + 1),
        url: image.url,
        status: image.status,
        width: image.status === 'done' ? String(image.width) : '',
        height: image.status === 'done' ? String(image.height) : '',
        perimeter: image.status === 'done' ? String(image.perimeter) : '',
        bytes: image.status === 'done' ? String(image.bytes) : '',
        gpu_ms: image.status === 'done' ? String(image.gpu_ms) : '',
        error: image.status === 'failed' ? image.error : '',
        job_id: failed.job_id,
      })),
    );
    expect(rows).toEqual(expected);
    expect(rows.map((row) => row.status)).toEqual(['done', 'done', 'done', 'failed', 'skipped']);
    expect(rows[2]?.store_id).toBe(HOSTILE_STORE);
  });
});

describe('imgjob report: exit codes and files', () => {
  it('exits 0 for a completed job and writes every report it is asked for', async () => {
    const manifest = writeManifest('ok', [
      { store_id: 'A', image_url: [images.url('/png/ok.png')] },
    ]);
    const results = join(folder, 'ok.results.json');
    expect((await runJobHere(['run', manifest, '-o', results, '--gpu-delay', '0'])).code).toBe(0);
    // Exit code and files, through main() (report-data.test.ts runs `report` on a pty).
    const [html, junit, csv] = ['ok.html', 'ok.xml', 'ok.csv'].map((name) => join(folder, name));
    const run = await runMain([
      'report',
      results,
      '--html',
      html ?? '',
      '--junit',
      junit ?? '',
      '--csv',
      csv ?? '',
    ]);
    expect(run.code, run.stderr).toBe(0);
    for (const path of [html, junit, csv]) expect(existsSync(path ?? '')).toBe(true);
    expect(readFileSync(html ?? '', 'utf8')).toMatch(/^<!doctype html>/);
  });

  it('exits 2 with one line for a file that is not a results file, and for no report asked', async () => {
    const bogus = join(folder, 'bogus.json');
    writeFileSync(bogus, '{"hello": 1}');
    const bad = await runMain(['report', bogus, '--csv', '-']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual([
      `imgjob: ${bogus} is not an imgjob results file`,
    ]);
    const missing = await runMain(['report', join(folder, 'nope.json'), '--csv', '-']);
    expect(missing.code).toBe(2);
    const none = await runMain(['report', failedResults]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give at least one of --html, --junit, --csv');
    const twice = await runMain(['report', failedResults, '--csv', '-', '--junit', '-']);
    expect(twice.code).toBe(2);
  });

  it.each([
    ['without counts', (doc: Record<string, unknown>) => delete doc.counts, 'counts: missing'],
    [
      'with an image of an unknown status',
      (doc: { stores: { images: { status: string }[] }[] }) => {
        const [image] = doc.stores[0]?.images ?? [];
        if (image) image.status = 'weird';
      },
      'stores[0].images[0].status: expected one of pending, done, failed, skipped, got "weird"',
    ],
    [
      'with a done image without its size',
      (doc: { stores: { images: Record<string, unknown>[] }[] }) => {
        const [image] = doc.stores[0]?.images ?? [];
        if (image) Object.assign(image, { status: 'done', width: '640' });
      },
      'stores[0].images[0].width: expected a whole number ≥ 0, got "640"',
    ],
  ])(
    'refuses a results file %s: status and every report exit 2 naming the first problem, never 70',
    async (name, spoil, problem) => {
      const document = JSON.parse(readFileSync(failedResults, 'utf8')) as never;
      (spoil as (doc: never) => void)(document);
      const hostile = join(folder, `${name.replaceAll(' ', '-')}.results.json`);
      writeFileSync(hostile, JSON.stringify(document));
      const line = `imgjob: ${hostile} is not a valid imgjob results file: ${problem}\n`;
      for (const args of [
        ['status', hostile],
        ['status', hostile, '--json'],
        ['report', hostile, '--junit', join(folder, 'hostile.xml')],
        ['report', hostile, '--html', '-'],
        ['report', hostile, '--csv', '-'],
      ]) {
        const result = await runMain(args);
        expect(result, args.join(' ')).toMatchObject({ code: 2, stdout: '', stderr: line });
      }
    },
  );

  it('reports a live run as ongoing (exit 3), then the killed and resumed file as it stands', async () => {
    const manifest = writeManifest('live', [
      {
        store_id: 'L1',
        image_url: [images.url('/png/l1.png'), images.url('/gate/live/png/l1.png')],
      },
      { store_id: 'L2', image_url: [images.url('/png/l2.png')] },
    ]);
    const results = join(folder, 'live.results.json');
    const run = spawnCli(['run', manifest, '-o', results, '--gpu-delay', '0']);
    await waitForResults(results, (doc) => doc.counts.done === 2, { run });

    const junit = join(folder, 'live.xml');
    const live = await runMain(['report', results, '--csv', '-', '--junit', junit]);
    expect(live.code, live.stderr).toBe(0);
    expect(live.stderr).toContain('still ongoing');
    expect(live.stderr).toContain(`imgjob: wrote ${junit}\n`);
    const strict = await runMain(['report', results, '--csv', '-', '--strict']);
    expect(strict.code).toBe(3);
    expect(live.stdout).toContain('pending');
    validateJunit(junit);
    expect(readFileSync(junit, 'utf8')).toContain(
      'the job was ongoing when this report was written',
    );

    await run.kill('SIGKILL');
    const killed = await runMain(['report', results, '--csv', '-']);
    expect(killed.code).toBe(0);
    const status = await runMain(['status', results, '--json']);
    expect(status.code).toBe(3);

    images.gate('live').open();
    const resumed = await runJobHere([
      'run',
      manifest,
      '-o',
      results,
      '--gpu-delay',
      '0',
      '--resume',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = await runMain(['report', results, '--csv', '-']);
    expect(after.code).toBe(0);
    const rows = parse<Record<string, string>>(after.stdout, { columns: true });
    expect(rows.map((row) => `${row.store_id}:${row.status}`)).toEqual([
      'L1:done',
      'L1:done',
      'L2:done',
    ]);
  });
});

describe('imgjob run --report', () => {
  it('writes the reports at the end of the run', async () => {
    const manifest = writeManifest('run-report', [
      { store_id: 'R', image_url: [images.url('/png/r.png')] },
    ]);
    const [html, junit, csv] = ['r.html', 'r.xml', 'r.csv'].map((name) => join(folder, name));
    const spec = `html:${html ?? ''},junit:${junit ?? ''},csv:${csv ?? ''}`;
    const run = await runJobHere([
      'run',
      manifest,
      '--force',
      '--gpu-delay',
      '0',
      '--report',
      spec,
    ]);
    expect(run.code, run.stderr).toBe(0);
    // One wording for a file written, in run --report as in report.
    expect(run.stderr).toContain(`imgjob: wrote ${junit ?? ''}\n`);
    validateJunit(junit ?? '');
    expect(readFileSync(csv ?? '', 'utf8').split('\r\n')).toHaveLength(3);
    expect(readFileSync(html ?? '', 'utf8')).toContain('id="imgjob-data"');
  });

  it('refuses a bad --report before any download (exit 2)', async () => {
    images.reset();
    const manifest = writeManifest('bad-report', [
      { store_id: 'B', image_url: [images.url('/png/b.png')] },
    ]);
    const run = await runJobHere([
      'run',
      manifest,
      '--force',
      '--gpu-delay',
      '0',
      '--report',
      'pdf:x.pdf',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--report: expected kind:file');
    expect(images.requests).toEqual([]);
  });
});
