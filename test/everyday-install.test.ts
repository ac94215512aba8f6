/**
 * The package as a user gets it: `npm pack`, the tarball installed into an
 * empty prefix without the optional SQLite module, then `imgjob --version`,
 * a one-image job against a real server, `status`, and `serve` saying what
 * to install. Slow (npm installs from its registry or cache): one test.
 *
 * @module-tag e2e
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ResultsDocument } from '../src/types.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  version: string;
  optionalDependencies: Record<string, string>;
};

let server: FaultServer;
/** The install's folder: ~50 MB of node_modules, not to be left in /tmp. */
let installFolder: string | undefined;

beforeAll(async () => {
  server = await startFaultServer();
});
afterAll(async () => {
  await server.close();
  if (installFolder !== undefined) rmSync(installFolder, { recursive: true, force: true });
});

/** Runs a command to its end; a failing exit code is returned, not thrown. */
async function sh(
  file: string,
  args: readonly string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: '1', NO_COLOR: '1' };
  try {
    const { stdout, stderr } = await run(file, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

describe('npm pack → install into an empty prefix', () => {
  it('installs without better-sqlite3, runs a job, and serve says what to install', async () => {
    const work = mkdtempSync(join(tmpdir(), 'imgjob-install-'));
    installFolder = work;
    // The dist/ that npm test has built: packing must not run `prepare`, which
    // would rebuild dist/ under the feet of the files running beside this one.
    const packed = await sh(
      'npm',
      ['pack', '--ignore-scripts', '--pack-destination', work, '--silent'],
      REPO,
    );
    expect(packed.code, packed.stderr).toBe(0);
    const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
    expect(tarball).toBe(`imgjob-${pkg.version}.tgz`);

    const prefix = join(work, 'prefix');
    const installed = await sh(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--omit=optional',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        join(work, tarball ?? ''),
      ],
      work,
    );
    expect(installed.code, installed.stderr).toBe(0);
    expect(existsSync(join(prefix, 'node_modules', 'better-sqlite3'))).toBe(false);
    const imgjob = join(prefix, 'node_modules', '.bin', 'imgjob');

    const manifest = join(work, 'one.json');
    writeFileSync(
      manifest,
      JSON.stringify({
        count: 1,
        visits: [{ store_id: 'S1', image_url: [server.url('/img/image.png')] }],
      }),
    );
    // Three commands that do not depend on each other, side by side.
    const [version, job, serve] = await Promise.all([
      sh(imgjob, ['--version'], work),
      sh(imgjob, ['run', manifest, '--gpu-delay', '0'], work),
      sh(imgjob, ['serve', '--port', '0', '--db', join(work, 'x.db')], work),
    ]);
    expect(version).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    expect(job.code, job.stderr).toBe(0);
    const results = JSON.parse(
      readFileSync(join(work, 'one.results.json'), 'utf8'),
    ) as ResultsDocument;
    expect(results.stores[0]?.images[0]).toMatchObject({
      status: 'done',
      width: 50,
      height: 30,
      perimeter: 160,
    });
    expect(server.requestsTo('/img/image.png')).toHaveLength(1);
    const status = await sh(imgjob, ['status', join(work, 'one.results.json'), '--json'], work);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ status: 'completed' });

    expect(serve.code).toBe(2);
    expect(serve.stderr).toContain(
      'serve needs the SQLite module better-sqlite3, which is not installed',
    );
    // Installed into a project (the prefix): install it there, where Node finds it.
    const spec = `better-sqlite3@${pkg.optionalDependencies['better-sqlite3'] ?? ''}`;
    expect(serve.stderr).toContain(`npm install -g ${spec} for a global imgjob`);
    expect(serve.stderr).toContain(`else cd ${prefix} && npm install ${spec}\n`);
    expect(serve.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(work, 'x.db'))).toBe(false);
  }, 240_000);
});
