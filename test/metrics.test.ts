/**
 * `/metrics` of `imgjob run --metrics-port` and `imgjob serve`, scraped while
 * a job runs (an image held at the fault server's gate keeps it running) and
 * after: every scrape passes `promtool check metrics`, counters only rise,
 * and the image counters equal the results the job recorded. `run` also
 * writes its events as JSON lines (--log-format json): jobs, stores, retries.
 * The run and the server run in this process (main(), startServer()): what
 * they serve and print is the point, no signal reaches them, and a spawned
 * imgjob costs ~0.4 s of CPU.
 *
 * @module-tag e2e
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadResults } from '../src/results/reader.js';
import { waitForResults } from './helpers/cli.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { runJobHere, runMain, type MainResult } from './helpers/main.js';
import { expectCountersRose, expectImagesOf, promtoolPath, scrape } from './helpers/metrics.js';
import { serversHere } from './helpers/queue-serve-here.js';
import { finished, results, submitOk, waitForJob } from './helpers/serve-client.js';
import { waitForText } from './helpers/text-wait.js';

const METRICS_DOC = readFileSync(new URL('../docs/metrics.md', import.meta.url), 'utf8');

let server: FaultServer;
let dir: string;
const serveHere = serversHere();

beforeAll(async () => {
  server = await startFaultServer();
  dir = mkdtempSync(join(tmpdir(), 'imgjob-metrics-'));
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function manifest(name: string, stores: readonly (readonly string[])[]): string {
  const visits = stores.map((paths, index) => ({
    store_id: `S${index + 1}`,
    image_url: paths.map((path) => server.url(path)),
  }));
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ count: visits.length, visits }));
  return path;
}

type LogLine = { event: string; level: string; msg: string; [field: string]: unknown };

describe('run --metrics-port', () => {
  it('counts what the job records, counters only rise, and every event is a JSON line', async () => {
    // Job A ends while job B waits at a gate: the run is still up to be scraped.
    const a = manifest('a', [
      ['/img/image.png', '/flaky/1/metrics-run/image.gif?fail=503'],
      ['/img/image.bmp', '/status/404', '/img/image.png'],
      ['/img/baseline.jpg'],
    ]);
    const b = manifest('b', [['/gate/metrics-run-b/image.png']]);
    const out = join(dir, 'run-out');
    const gate = server.gate('metrics-run-b');
    const run = runHere([
      'run',
      a,
      b,
      '--out-dir',
      out,
      '--gpu-delay',
      '1-9',
      '--seed',
      '5',
      '--retry-wait',
      '0',
      '--metrics-port',
      '0',
      '--log-format',
      'json',
    ]);
    const announced = await run.waitForStderr(/"event":"metrics_listening"/);
    const url = lines(announced).find((line) => line.event === 'metrics_listening')?.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const first = await scrape(String(url));

    const done = await waitForResults(join(out, 'a.results.json'), (document) =>
      Boolean(document.finished_at),
    );
    await gate.reached;
    const during = await scrape(String(url));
    expectCountersRose(first, during);
    expectImagesOf(during, [done]);
    expect(done.counts).toMatchObject({ done: 4, failed: 1, skipped: 1 });
    // The flaky GIF failed once with a 503 and was retried.
    expect(during.value('imgjob_retries_total', { code: 'E_HTTP_STATUS' })).toBe(1);
    expect(during.value('imgjob_jobs', { state: 'failed' })).toBe(1);
    expect(during.value('imgjob_jobs', { state: 'ongoing' })).toBe(1);
    expect(during.value('imgjob_stores', { state: 'completed' })).toBe(2);
    expect(during.value('imgjob_stores', { state: 'failed' })).toBe(1);
    expect(during.value('imgjob_stores', { state: 'ongoing' })).toBe(1);
    // First and final save of A, first of B at least.
    expect(during.value('imgjob_results_save_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(during.value('process_cpu_seconds_total')).toBeGreaterThan(0);
    for (const family of during.types.keys()) {
      if (family.startsWith('imgjob_')) expect(METRICS_DOC, family).toContain(`| \`${family}\``);
    }

    gate.open();
    const ended = await run.exited;
    expect(ended.code, ended.stderr).toBe(1);
    const events = lines(ended.stderr);
    const finishedA = events.find(
      (line) => line.event === 'job_finished' && line.results_path === join(out, 'a.results.json'),
    );
    expect(finishedA).toMatchObject({ level: 'info', status: 'failed', done: 4, failed: 1 });
    expect(events.filter((line) => line.event === 'job_submitted')).toHaveLength(2);
    expect(events.filter((line) => line.event === 'job_finished')).toHaveLength(2);
    const storeEnds = events.filter((line) => line.event === 'store_finished');
    expect(storeEnds.map((line) => line.status).sort()).toEqual([
      'completed',
      'completed',
      'completed',
      'failed',
    ]);
    expect(storeEnds.find((line) => line.status === 'failed')).toMatchObject({
      store_id: 'S2',
      images: 3,
      error: expect.stringContaining('HTTP 404') as unknown,
    });
    const retries = events.filter((line) => line.event === 'retry');
    expect(retries).toEqual([
      expect.objectContaining({ code: 'E_HTTP_STATUS', status: 503, attempt: 1 }),
    ]);
    const resultsB = await loadResults(join(out, 'b.results.json'));
    expect(resultsB.status).toBe('completed');
  });

  it('refuses a port that is taken with exit 2 and one line', async () => {
    const taken = Number(new URL(server.origin).port);
    const { code, stderr } = await runMain([
      'run',
      manifest('c', [['/img/image.png']]),
      '-o',
      join(dir, 'c.json'),
      '--metrics-port',
      String(taken),
      '--threads',
      '1',
    ]);
    expect(code).toBe(2);
    expect(stderr.trim()).toBe(
      `imgjob: cannot serve metrics on 127.0.0.1:${taken}: the port is taken`,
    );
  });
});

describe('serve /metrics', () => {
  it('is on the API port: counts a job while it runs and after, counters only rising', async () => {
    const served = await serveHere(join(dir, 'serve.db'), { gpuDelay: '2', seed: 3 });
    const { url } = served;
    const gate = server.gate('metrics-serve');
    const first = await scrape(`${url}/metrics`);
    const id = await submitOk(url, {
      count: 2,
      visits: [
        {
          store_id: 'S1',
          image_url: [server.url('/img/image.png'), server.url('/gate/metrics-serve/image.gif')],
        },
        { store_id: 'S2', image_url: [server.url('/status/500'), server.url('/img/image.png')] },
      ],
    });
    await gate.reached;
    const during = await scrape(`${url}/metrics`);
    expectCountersRose(first, during);
    expect(during.value('imgjob_jobs', { state: 'ongoing' })).toBe(1);
    expect(during.value('imgjob_stores', { state: 'ongoing' })).toBeGreaterThanOrEqual(1);

    gate.open();
    await waitForJob(url, id, finished);
    const after = await scrape(`${url}/metrics`);
    expectCountersRose(during, after);
    expectImagesOf(after, [await results(url, id)]);
    expect(after.value('imgjob_jobs', { state: 'failed' })).toBe(1);
    expect(after.value('imgjob_jobs', { state: 'ongoing' })).toBe(0);
    expect(after.value('imgjob_results_save_seconds_count')).toBeGreaterThan(0);
    await served.close();
  });
});

describe('docs/grafana-dashboard.json', () => {
  it('queries only documented metrics, in PromQL that promtool accepts', () => {
    const dashboard = JSON.parse(
      readFileSync(new URL('../docs/grafana-dashboard.json', import.meta.url), 'utf8'),
    ) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const queries = dashboard.panels.flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })),
    );
    expect(queries.length).toBeGreaterThan(10);
    for (const { panel, expr } of queries) {
      for (const [name] of expr.matchAll(/imgjob_[a-z_]+/g)) {
        const family = name.replace(/_bucket$/, '');
        expect(METRICS_DOC, `${panel}: ${family}`).toContain(`| \`${family}\``);
      }
    }
    const path = promtoolPath();
    if (path === undefined) return;
    // Grafana's variables as Prometheus would see them once Grafana filled them in.
    const rules = queries.map(({ expr }, index) => ({
      record: `imgjob_dashboard_${index}`,
      expr: expr.replaceAll('$__rate_interval', '5m').replaceAll(/\$(job|instance)/g, '.*'),
    }));
    const file = join(dir, 'dashboard-rules.json');
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    execFileSync(path, ['check', 'rules', file], { stdio: 'pipe' });
  });
});

/** `imgjob run <args>` through main() here, not awaited, its stderr read as it grows. */
function runHere(args: readonly string[]): {
  waitForStderr(pattern: RegExp): Promise<string>;
  readonly exited: Promise<MainResult>;
} {
  let stderr = '';
  let done = false;
  const watchers = new Set<() => void>();
  const grown = (): void => {
    for (const check of watchers) check();
  };
  const err = new PassThrough().setEncoding('utf8');
  err.on('data', (chunk: string) => {
    stderr += chunk;
    grown();
  });
  const exited = runJobHere(args, { stderr: err }).then((result) => {
    done = true;
    grown();
    return { ...result, stderr };
  });
  return {
    waitForStderr: (pattern) =>
      waitForText(
        {
          text: () => stderr,
          done: () => done,
          watchers,
          describe: () => stderr,
          what: 'imgjob run',
        },
        pattern,
        30_000,
      ),
    exited,
  };
}

function lines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LogLine);
}
