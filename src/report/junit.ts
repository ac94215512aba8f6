/**
 * The JUnit XML report, in the shape Jenkins, GitLab, Azure DevOps and the
 * GitHub test-report actions read (the Ant/Jenkins JUnit schema): one
 * `testsuite` per job, one `testcase` per store, a `failure` carrying the
 * store's error, `skipped` for a store that did not run (fail-fast) or had
 * not finished (a report of an ongoing job).
 */
import { hostname } from 'node:os';

import type { ImageResult, StoreResult, StoreStatus } from '../types.js';
import { storeErrorText } from '../shared/job-rules.js';
import type { ReportJob } from './report-job.js';
import { activeSeconds } from '../shared/timeline.js';
import { outsideText } from '../shared/outside-text.js';

/** One suite per job; a streamed job is read once, its stores summed up as they pass. */
export async function* junitReport(jobs: readonly ReportJob[]): AsyncGenerator<string> {
  const suites: Suite[] = [];
  for (const [position, job] of jobs.entries()) suites.push(await suiteOf(job, position));
  const sum = (key: 'tests' | 'failures' | 'skipped' | 'time'): number =>
    suites.reduce((total, suite) => total + suite[key], 0);
  yield '<?xml version="1.0" encoding="UTF-8"?>\n';
  yield `<testsuites name="imgjob" tests="${sum('tests')}" failures="${sum('failures')}" errors="0" skipped="${sum('skipped')}" time="${seconds(sum('time'))}">\n`;
  for (const suite of suites) yield* suite.xml();
  yield '</testsuites>\n';
}

type Suite = {
  readonly tests: number;
  readonly failures: number;
  readonly skipped: number;
  /** Milliseconds. */
  readonly time: number;
  xml(): Generator<string>;
};

/** What a test case tells of a store: its images are summed up, not kept. */
type Case = {
  readonly store_id: string;
  readonly status: StoreStatus;
  readonly error: string | undefined;
  /** GPU and download time of its done images. */
  readonly ms: number;
  /** Its first failed image. */
  readonly failed: Extract<ImageResult, { status: 'failed' }> | undefined;
  readonly skippedImages: number;
};

function caseOf(store: StoreResult): Case {
  let ms = 0;
  let failed: Case['failed'];
  let skippedImages = 0;
  for (const image of store.images) {
    if (image.status === 'done') ms += image.gpu_ms + image.download_ms;
    else if (image.status === 'failed') failed ??= image;
    else if (image.status === 'skipped') skippedImages++;
  }
  return {
    store_id: store.store_id,
    status: store.status,
    error: store.error,
    ms,
    failed,
    skippedImages,
  };
}

async function suiteOf(job: ReportJob, position: number): Promise<Suite> {
  const cases: Case[] = [];
  for await (const store of job.stores()) cases.push(caseOf(store));
  // Read after the stores: a streamed job's head is final then.
  const document = job.head;
  const { counts } = document;
  const failures = cases.filter((store) => store.status === 'failed').length;
  const skipped = cases.filter(
    (store) => store.status !== 'failed' && store.status !== 'completed',
  ).length;
  const end = Date.parse(document.finished_at ?? document.updated_at);
  // Over the time the job ran: a resumed job's pause is no test time.
  const active = activeSeconds(document.timeline);
  const time =
    active === undefined ? Math.max(0, end - Date.parse(document.created_at)) : active * 1000;
  const className = `imgjob.job_${document.job_id.replace(/[^\w-]/g, '_')}`;
  const properties: [string, string | number][] = [
    ['job_id', document.job_id],
    ['status', document.status],
    ['manifest_source', document.manifest_source],
    ['images', counts.images],
    ['images_done', counts.done],
    ['images_failed', counts.failed],
    ['images_skipped', counts.skipped],
    ['images_pending', counts.pending],
    ['gpu_delay', document.options.gpu_delay],
  ];
  return {
    tests: cases.length,
    failures,
    skipped,
    time,
    *xml() {
      yield `  <testsuite name="${attr(`job ${document.job_id}`)}" id="${position}" package="imgjob" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${seconds(time)}" timestamp="${timestamp(document.created_at)}" hostname="${attr(document.writer?.host ?? hostname())}">\n`;
      yield '    <properties>\n';
      for (const [name, value] of properties)
        yield `      <property name="${name}" value="${attr(String(value))}"/>\n`;
      yield '    </properties>\n';
      for (const store of cases) yield testCase(store, className, document.status);
      const summary =
        `job ${outsideText(document.job_id)} ${document.status}: ${counts.done} of ${counts.images} images done, ` +
        `${counts.failed} failed, ${counts.skipped} skipped, ${counts.pending} pending`;
      yield `    <system-out>${text(summary)}</system-out>\n`;
      yield '    <system-err></system-err>\n';
      yield '  </testsuite>\n';
    },
  };
}

function testCase(store: Case, className: string, jobStatus: string): string {
  const open = `    <testcase name="${attr(store.store_id)}" classname="${attr(className)}" time="${seconds(store.ms)}"`;
  if (store.status === 'completed') return `${open}/>\n`;
  let body: string;
  if (store.status === 'failed') {
    const image = store.failed;
    const error = storeErrorText(store.error);
    const code = image ? image.code : 'E_STORE';
    body = `      <failure message="${attr(error)}" type="${attr(code)}">${text(failureText(store, error, image))}</failure>\n`;
  } else if (store.status === 'skipped') {
    body = '      <skipped message="not run: the job stopped at a failed store (--fail-fast)"/>\n';
  } else {
    const why =
      jobStatus === 'ongoing' ? 'the job was ongoing when this report was written' : 'not run';
    body = `      <skipped message="${attr(`${store.status}: ${why}`)}"/>\n`;
  }
  return `${open}>\n${body}    </testcase>\n`;
}

function failureText(store: Case, error: string, image: ImageResult | undefined): string {
  const lines = [outsideText(error)];
  if (image) lines.push(`image: ${outsideText(image.url)}`);
  if (store.skippedImages > 0) lines.push(`${store.skippedImages} later image(s) skipped`);
  return lines.join('\n');
}

/** `2024-11-15T10:00:03`: the schema's timestamp has no zone and no fraction (it is UTC). */
function timestamp(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '1970-01-01T00:00:00' : date.toISOString().slice(0, 19);
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

/** XML 1.0 allows neither most control characters nor lone surrogates, even escaped. */
function xmlChars(value: string): string {
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    const allowed =
      code === 0x9 ||
      code === 0xa ||
      code === 0xd ||
      (code >= 0x20 && code <= 0xd7ff) ||
      (code >= 0xe000 && code <= 0xfffd) ||
      code >= 0x10000;
    out += allowed ? char : '\uFFFD';
  }
  return out;
}

function text(value: string): string {
  return xmlChars(value).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Attribute values are one line each, and CI pages show them in logs: controls escaped. */
function attr(value: string): string {
  return text(outsideText(value)).replace(/"/g, '&quot;');
}
