/**
 * Hostile manifests through the real CLI: whatever comes in, imgjob answers
 * with exit 0, 1 or 2 and a message — never a crash or a stack trace. (The
 * parser itself is fuzzed by thousands of cases in manifest-fuzz.test.ts;
 * this checks the whole program on a few dozen: in this process through
 * main(), and a few as processes.)
 *
 * @module-tag e2e
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from './helpers/cli.js';
import { runJobHere, type MainResult } from './helpers/main.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

let server: FaultServer;
const dir = mkdtempSync(join(tmpdir(), 'imgjob-fuzz-'));

beforeAll(async () => {
  server = await startFaultServer();
});
afterAll(async () => {
  await server.close();
});

/** Image URLs: only this machine's server (good, failing, hostile) or plain junk. */
const imageUrl = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc
      .constantFrom(
        '/img/image.png',
        '/img/image.gif',
        '/status/404',
        '/status/500',
        '/html',
        '/truncate/10/image.png',
        '/redirect/7/image.png',
        '/redirect-to?location=file:///etc/passwd',
      )
      .map((path) => server.url(path)),
    fc.constantFrom('ftp://127.0.0.1/x', 'relative.jpg', '', 'http://', 'javascript:alert(1)'),
    fc.anything(),
  );

const visit = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.record(
      {
        store_id: fc.oneof(fc.constantFrom('S1', 'S2', 'S3'), fc.string(), fc.anything()),
        image_url: fc.oneof(fc.array(imageUrl(), { maxLength: 4 }), fc.anything()),
        visit_time: fc.oneof(fc.string(), fc.anything()),
      },
      { requiredKeys: [] },
    ),
    fc.anything(),
  );

const manifestText = (): fc.Arbitrary<string> =>
  fc.oneof(
    fc
      .record(
        { count: fc.oneof(fc.nat(6), fc.anything()), visits: fc.array(visit(), { maxLength: 5 }) },
        { requiredKeys: [] },
      )
      .map((manifest) => JSON.stringify(manifest)),
    fc
      .array(visit(), { maxLength: 4 })
      .map((visits) => JSON.stringify({ count: visits.length, visits })),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.json(),
  );

const ARGS = ['--gpu-delay', '0', '--retries', '0', '--timeout', '2000', '--json', '--force'];

/** Writes the case, runs it through `run`, and checks the answer. */
function property(run: (args: string[]) => Promise<MainResult>, tag: string) {
  let case_ = 0;
  return fc.asyncProperty(manifestText(), async (text) => {
    const path = join(dir, `${tag}${++case_}.json`);
    writeFileSync(path, text);
    const { code, stdout, stderr } = await run(['run', path, ...ARGS]);
    expect([0, 1, 2]).toContain(code);
    expect(stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
    if (code === 2) expect(stderr).toMatch(/^imgjob: /);
    else expect(JSON.parse(stdout)).toHaveProperty('status', code === 0 ? 'completed' : 'failed');
  });
}

describe('the CLI on random and mutated manifests', () => {
  // In this process, where an error that escapes main() fails the test file too.
  it('always exits 0, 1 or 2 with a message and never prints a stack trace', async () => {
    await fc.assert(property(runJobHere, 'm'), { numRuns: 30, seed: 20261127 });
  });

  // A few as processes: the exit code the OS sees, and a stack trace on a real stderr.
  it('as a process too', async () => {
    await fc.assert(
      property((args) => runCli(args, { env: { CI: '1' } }), 'p'),
      { numRuns: 6, seed: 20261207 },
    );
  });
});
