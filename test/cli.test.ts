/**
 * End-to-end: the CLI against a real HTTP server on 127.0.0.1. Assertions are
 * on exit codes, stdout, stderr, the results file and what the server saw —
 * never on timing. The built CLI is spawned where the process is the point
 * (a job as a user starts it, standard input and the current folder, a
 * second process holding the file); the rest runs main() in this process.
 *
 * @module-tag e2e
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import type { ImageResult, ResultsDocument } from '../src/types.js';
import { runCli as runCliIn, type CliResult } from './helpers/cli.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { runJobHere, runMain } from './helpers/main.js';

const STORE_MASTER = new URL('../fixtures/store-master.csv', import.meta.url).pathname;
const EXPECTED = JSON.parse(
  readFileSync(new URL('../fixtures/images/expected.json', import.meta.url), 'utf8'),
) as Record<string, { width: number; height: number; type: string }>;

const runCli = (
  args: string[],
  options: { stdin?: string; cwd?: string } = {},
): Promise<CliResult> => runCliIn(args, { cwd: dir, env: { CI: '1' }, ...options });

type Visit = { store_id: string; image_url: string[]; visit_time?: string };

function writeManifest(name: string, visits: Visit[], count = visits.length): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ count, visits }));
  return path;
}

function readResults(path: string): ResultsDocument {
  return JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument;
}

const FAST = ['--gpu-delay', '0', '--retries', '0', '--timeout', '5000'];

let server: FaultServer;
let dir: string;
let caseNumber = 0;
const img = (name: string): string => server.url(`/img/${name}`);

beforeAll(async () => {
  server = await startFaultServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  dir = mkdtempSync(join(tmpdir(), `imgjob-cli-${++caseNumber}-`));
});

describe('imgjob run', () => {
  it('measures every fixture format and records its perimeter, exit 0', async () => {
    const names = Object.keys(EXPECTED);
    const manifest = writeManifest('formats.json', [{ store_id: 'S1', image_url: names.map(img) }]);
    const { code, stdout, stderr } = await runCli(['run', manifest, ...FAST]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('completed');

    const results = readResults(join(dir, 'formats.results.json'));
    expect(results.status).toBe('completed');
    const images = results.stores[0]?.images ?? [];
    expect(images).toHaveLength(names.length);
    images.forEach((image, index) => {
      const expected = EXPECTED[names[index] ?? ''];
      expect(image).toMatchObject({
        status: 'done',
        width: expected?.width,
        height: expected?.height,
        perimeter: 2 * ((expected?.width ?? 0) + (expected?.height ?? 0)),
        type: expected?.type,
        gpu_ms: 0,
      });
    });
  });

  it('stops a store at its first failure: later images skipped and never requested', async () => {
    const manifest = writeManifest('stop.json', [
      {
        store_id: 'S1',
        image_url: [
          img('image.png'),
          server.url('/status/404'),
          img('image.gif'),
          img('image.bmp'),
        ],
      },
      { store_id: 'S2', image_url: [img('image.webp')] },
    ]);
    const { code, stdout } = await runJobHere(['run', manifest, ...FAST]);
    expect(code).toBe(1);
    expect(stdout).toContain('HTTP 404');

    const results = readResults(join(dir, 'stop.results.json'));
    expect(results.status).toBe('failed');
    expect(results.stores[0]?.images.map((image) => image.status)).toEqual([
      'done',
      'failed',
      'skipped',
      'skipped',
    ]);
    expect(results.stores[1]?.status).toBe('completed');
    expect(results.error).toEqual([
      { store_id: 'S1', error: expect.stringContaining('/status/404') as unknown },
    ]);
    expect(server.requestsTo('/img/image.gif')).toHaveLength(0);
    expect(server.requestsTo('/img/image.bmp')).toHaveLength(0);
  });

  it('runs stores concurrently and the images of a store strictly in order', async () => {
    const gateA = server.gate('a');
    const gateB = server.gate('b');
    const manifest = writeManifest('concurrent.json', [
      {
        store_id: 'A',
        image_url: [server.url('/gate/a/image.png'), img('baseline.jpg'), img('image.gif')],
      },
      { store_id: 'B', image_url: [server.url('/gate/b/image.webp'), img('image.bmp')] },
    ]);
    const running = runJobHere(['run', manifest, ...FAST]);
    // Both stores' first images are at the server before either is answered.
    await Promise.all([gateA.reached, gateB.reached]);
    expect(server.requestsTo('/img/')).toHaveLength(0);
    gateA.open();
    gateB.open();
    expect((await running).code).toBe(0);

    const order = (paths: string[]) => paths.map((path) => server.requestsTo(path)[0]?.seq ?? -1);
    const storeA = order(['/gate/a/image.png', '/img/baseline.jpg', '/img/image.gif']);
    expect([...storeA].sort((x, y) => x - y)).toEqual(storeA);
    expect(order(['/gate/b/image.webp', '/img/image.bmp'])[1]).toBeGreaterThan(0);
  });

  it('merges the visits of one store_id into one store, in manifest order', async () => {
    const manifest = writeManifest('merge.json', [
      { store_id: 'S1', image_url: [img('image.png')], visit_time: '2024-11-15T10:00:00Z' },
      { store_id: 'S2', image_url: [img('image.gif')] },
      {
        store_id: 'S1',
        image_url: [img('image.bmp'), img('image.webp')],
        visit_time: '2024-11-15T11:00:00Z',
      },
    ]);
    expect((await runJobHere(['run', manifest, ...FAST])).code).toBe(0);
    const results = readResults(join(dir, 'merge.results.json'));
    expect(results.stores.map((store) => store.store_id)).toEqual(['S1', 'S2']);
    expect(results.stores[0]?.images.map((image) => image.url)).toEqual([
      img('image.png'),
      img('image.bmp'),
      img('image.webp'),
    ]);
    expect(results.stores[0]?.visit_times).toEqual([
      '2024-11-15T10:00:00Z',
      '2024-11-15T11:00:00Z',
    ]);
  });

  it('fails a store missing from the store master, downloading none of its images', async () => {
    const manifest = writeManifest('master.json', [
      { store_id: 'S00339218', image_url: [img('image.png')] },
      { store_id: 'NOPE', image_url: [img('image.gif'), img('image.bmp')] },
    ]);
    const { code } = await runJobHere(['run', manifest, ...FAST, '--store-master', STORE_MASTER]);
    expect(code).toBe(1);
    const results = readResults(join(dir, 'master.results.json'));
    expect(results.error).toEqual([
      { store_id: 'NOPE', error: expect.stringContaining('not in the store master') as unknown },
    ]);
    expect(results.stores[1]?.images.map((image) => image.status)).toEqual(['skipped', 'skipped']);
    expect(server.requestsTo('/img/image.gif')).toHaveLength(0);
  });

  it('refuses a missing store master with exit 2 before any download', async () => {
    const manifest = writeManifest('m.json', [{ store_id: 'S', image_url: [img('image.png')] }]);
    const { code, stderr } = await runJobHere([
      'run',
      manifest,
      ...FAST,
      '--store-master',
      join(dir, 'none.csv'),
    ]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^imgjob: .*store master.*no such file\n$/);
    expect(server.requests).toHaveLength(0);
    expect(existsSync(join(dir, 'm.results.json'))).toBe(false);
  });

  it('completes an empty job (count 0) at once', async () => {
    const manifest = writeManifest('empty.json', []);
    const { code, stdout } = await runJobHere(['run', manifest, '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ status: 'completed' });
  });

  it('reads a manifest from stdin and writes results.json in the current folder', async () => {
    const manifest = JSON.stringify({
      count: 1,
      visits: [{ store_id: 'S', image_url: [img('image.png')] }],
    });
    const { code } = await runCli(['run', '-', ...FAST], { stdin: manifest });
    expect(code).toBe(0);
    expect(readResults(join(dir, 'results.json')).status).toBe('completed');
  });

  it('runs several manifests as jobs into --out-dir, --json one line each in manifest order, worst exit', async () => {
    const good = writeManifest('good.json', [{ store_id: 'G', image_url: [img('image.png')] }]);
    const bad = writeManifest('bad.json', [
      { store_id: 'B', image_url: [server.url('/status/500')] },
    ]);
    const out = join(dir, 'out');
    const { code, stdout } = await runJobHere([
      'run',
      good,
      bad,
      '--out-dir',
      out,
      '--json',
      ...FAST,
    ]);
    expect(code).toBe(1);
    const lines = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    // The Retail Pulse fields, then the counts and where the file is.
    expect(lines[0]).toEqual({
      status: 'completed',
      job_id: readResults(join(out, 'good.results.json')).job_id,
      counts: readResults(join(out, 'good.results.json')).counts,
      results_path: join(out, 'good.results.json'),
    });
    expect(lines[1]).toEqual({
      status: 'failed',
      job_id: readResults(join(out, 'bad.results.json')).job_id,
      error: [{ store_id: 'B', error: expect.stringContaining('HTTP 500') as unknown }],
      counts: readResults(join(out, 'bad.results.json')).counts,
      results_path: join(out, 'bad.results.json'),
    });
  });

  it('with --fail-fast, skips the remaining stores of the failed job', async () => {
    const manifest = writeManifest('ff.json', [
      { store_id: 'F', image_url: [server.url('/status/404')] },
      { store_id: 'L', image_url: [img('image.png'), img('image.gif')] },
    ]);
    const { code, stdout } = await runJobHere([
      'run',
      manifest,
      ...FAST,
      '-c',
      '1',
      '--fail-fast',
      '--json',
    ]);
    expect(code).toBe(1);
    // With one slot the longer store runs first; the failed one stops the job after it.
    const status = JSON.parse(stdout) as { error: unknown[] };
    expect(status.error).toHaveLength(1);
    const results = readResults(join(dir, 'ff.results.json'));
    expect(results.stores.find((store) => store.store_id === 'F')?.status).toBe('failed');
  });

  it('prints nothing but the JSON documents on stdout with --json', async () => {
    const manifest = writeManifest('quiet.json', [
      { store_id: 'S', image_url: [img('image.png')] },
    ]);
    const { code, stdout } = await runJobHere(['run', manifest, '--json', ...FAST]);
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(Object.keys(JSON.parse(stdout) as object)).toEqual([
      'status',
      'job_id',
      'counts',
      'results_path',
    ]);
  });

  it('refuses to overwrite an existing results file without --force, and overwrites with it', async () => {
    const manifest = writeManifest('again.json', [
      { store_id: 'S', image_url: [img('image.png')] },
    ]);
    expect((await runJobHere(['run', manifest, ...FAST])).code).toBe(0);
    const path = join(dir, 'again.results.json');
    const before = readFileSync(path, 'utf8');

    const refused = await runJobHere(['run', manifest, ...FAST]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('already exists');
    expect(readFileSync(path, 'utf8')).toBe(before);

    expect((await runJobHere(['run', manifest, ...FAST, '--force'])).code).toBe(0);
    expect(readResults(path).job_id).not.toBe((JSON.parse(before) as ResultsDocument).job_id);
  });

  it('refuses --force and --resume over a results file that a running imgjob is writing', async () => {
    const gate = server.gate('busy');
    const manifest = writeManifest('busy.json', [
      { store_id: 'S', image_url: [server.url('/gate/busy/image.png')] },
    ]);
    const running = runCli(['run', manifest, ...FAST]);
    await gate.reached;
    for (const flag of ['--force', '--resume']) {
      const refused = await runJobHere(['run', manifest, ...FAST, flag]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/being written by a running imgjob \(pid \d+\)/);
    }
    gate.open();
    expect((await running).code).toBe(0);
  });

  it('gives every image the same GPU delay for the same --seed, whatever the concurrency', async () => {
    const manifest = writeManifest('seed.json', [
      { store_id: 'S1', image_url: [img('image.png'), img('image.gif'), img('image.bmp')] },
      { store_id: 'S2', image_url: [img('image.webp'), img('baseline.jpg')] },
    ]);
    const gpu = async (args: string[]): Promise<number[]> => {
      const out = join(dir, `${args.join('')}.json`);
      expect(
        (
          await runJobHere([
            'run',
            manifest,
            '-o',
            out,
            '--seed',
            '42',
            '--gpu-delay',
            '1-20',
            ...args,
          ])
        ).code,
      ).toBe(0);
      return readResults(out).stores.flatMap((store) =>
        store.images.map((image: ImageResult) => (image.status === 'done' ? image.gpu_ms : -1)),
      );
    };
    const first = await gpu(['-c', '1']);
    expect(await gpu(['-c', '8'])).toEqual(first);
    expect(first.every((ms) => ms >= 1 && ms <= 20)).toBe(true);
  });
});

describe('bad input and usage: exit 2, one line per problem, no stack trace, no results file', () => {
  // In-process through main(): the exit code and the lines are main's. The
  // process itself (the code the shell sees, nothing else on stderr) is
  // proved once, spawned, at the end.
  const cases: [string, unknown, RegExp][] = [
    [
      'count mismatch',
      { count: 2, visits: [{ store_id: 'S', image_url: ['http://a/1.jpg'] }] },
      /count: 2 does not match the 1 visit/,
    ],
    [
      'empty store_id',
      { count: 1, visits: [{ store_id: '', image_url: ['http://a/1.jpg'] }] },
      /visits\[0\]\.store_id: /,
    ],
    [
      'relative URL',
      { count: 1, visits: [{ store_id: 'S', image_url: ['http://a/1.jpg', '/x.jpg'] }] },
      /visits\[0\]\.image_url\[1\]: not an http\(s\) URL/,
    ],
    [
      'ftp URL',
      { count: 1, visits: [{ store_id: 'S', image_url: ['ftp://a/1.jpg'] }] },
      /visits\[0\]\.image_url\[0\]: not an http\(s\) URL/,
    ],
    [
      'empty image_url',
      { count: 1, visits: [{ store_id: 'S', image_url: [] }] },
      /visits\[0\]\.image_url: /,
    ],
    ['missing visits', { count: 0 }, /visits: /],
    ['not an object', [1, 2], /\(root\)|expected an object/],
  ];
  it.each(cases)('%s', async (_name, manifest, message) => {
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify(manifest));
    const { code, stdout, stderr } = await runMain(['run', path]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(dir, 'bad.results.json'))).toBe(false);
  });

  it('reports every problem of a file, each naming its place', async () => {
    const path = new URL('../fixtures/manifests/invalid.json', import.meta.url).pathname;
    const { code, stderr } = await runMain(['run', path, '-o', join(dir, 'x.json')]);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n').length).toBeGreaterThanOrEqual(5);
    for (const line of stderr.trim().split('\n'))
      expect(line).toMatch(/^imgjob: .*invalid\.json: (count|visits\[\d\])/);
  });

  it('rejects invalid JSON with its position', async () => {
    const path = join(dir, 'broken.json');
    writeFileSync(path, '{"count": 1,\n "visits": [}');
    const { code, stderr } = await runMain(['run', path]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/line 2/);
  });

  it.each([
    [['run', 'x.json', '-c', '0'], /concurrency/],
    [['run', 'x.json', '--gpu-delay', '400-100'], /gpu-delay/],
    [['run', 'x.json', '--retries', 'many'], /retries/],
    [['run'], /missing required argument/],
    [['frobnicate'], /unknown command/],
    [['run', 'a.json', 'b.json', '-o', 'x.json'], /ONE job/],
  ])('usage error %j', async (args, message) => {
    for (const name of ['x.json', 'a.json', 'b.json']) writeManifest(name, []);
    const inDir = args.map((arg) => (arg.endsWith('.json') ? join(dir, arg) : arg));
    const { code, stderr } = await runMain(inDir);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('shows the defaults in --help and the version with --version', async () => {
    const help = await runMain(['run', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--concurrency <n>[\s\S]*default: 32/);
    expect(help.stdout).toMatch(/default: 100-400/);
    const version = await runMain(['--version']);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('as a process: exit 2, the problem on one stderr line, nothing on stdout', async () => {
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify({ count: 0 }));
    const bad = await runCli(['run', path]);
    expect(bad).toMatchObject({ code: 2, signal: null, stdout: '' });
    expect(bad.stderr).toMatch(/^imgjob: .*visits: .*\n$/);
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command/);
    expect(unknown.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('imgjob status', () => {
  it('prints the summary and the Retail Pulse JSON of a finished job with its exit code', async () => {
    const manifest = writeManifest('st.json', [
      { store_id: 'S', image_url: [server.url('/status/404')] },
    ]);
    await runJobHere(['run', manifest, ...FAST]);
    const path = join(dir, 'st.results.json');
    const text = await runMain(['status', path]);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('failed');
    expect(text.stdout).toContain('HTTP 404');
    const json = await runMain(['status', path, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({
      status: 'failed',
      job_id: readResults(path).job_id,
      error: [{ store_id: 'S', error: expect.stringContaining('HTTP 404') as unknown }],
      counts: { stores: 1, images: 1, done: 0, failed: 1, skipped: 0, pending: 0 },
      results_path: path,
    });
  });

  it('refuses a file that is not an imgjob results file with exit 2', async () => {
    const path = join(dir, 'foreign.json');
    writeFileSync(path, '{"hello": "world"}');
    const { code, stderr } = await runMain(['status', path]);
    expect(code).toBe(2);
    expect(stderr).toContain('not an imgjob results file');
    const damaged = join(dir, 'damaged.json');
    const header = {
      tool: 'imgjob',
      schema_version: 1,
      job_id: 'j',
      manifest_digest: 'd',
      options: {},
    };
    writeFileSync(
      damaged,
      JSON.stringify({ ...header, stores: [{ store_id: 'S', status: 'odd', images: [] }] }),
    );
    expect((await runMain(['status', damaged])).code).toBe(2);
    expect((await runMain(['status', join(dir, 'missing.json')])).code).toBe(2);
  });
});
