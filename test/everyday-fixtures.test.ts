/** `npm run fixtures`: the fixture server on its own, for running the sample manifests by hand. *
 * @module-tag e2e
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, describe, expect, it } from 'vitest';

import { runJobHere } from './helpers/main.js';

const SCRIPT = fileURLToPath(new URL('../scripts/fixtures.js', import.meta.url));
const DEMO = fileURLToPath(new URL('../fixtures/manifests/demo.json', import.meta.url));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** Starts the script; resolves with its first line of output (stdout or stderr) and the child. */
function start(env: Record<string, string>): Promise<{ line: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [SCRIPT], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let text = '';
    const take = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      if (text.includes('\n')) resolve({ line: text.split('\n')[0] ?? '', child });
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('exit', () => {
      reject(new Error(`fixtures script exited: ${text}`));
    });
  });
}

describe('npm run fixtures', () => {
  it('serves fixtures/ so that the demo manifest runs against it', async () => {
    const { line } = await start({ PORT: '0' });
    const origin = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1];
    expect(origin, line).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'imgjob-fixtures-'));
    const manifest = join(dir, 'demo.json');
    writeFileSync(
      manifest,
      readFileSync(DEMO, 'utf8').replaceAll('http://127.0.0.1:8765', origin ?? ''),
    );
    // The script is what this file is about: the run goes through main() here.
    const { code, stdout } = await runJobHere(['run', manifest, '--gpu-delay', '0', '--json']);
    // The demo's one broken store (a 404 on purpose); every other image is served.
    expect(code).toBe(1);
    expect(JSON.parse(stdout)).toMatchObject({
      error: [{ store_id: 'RP00001' }],
      counts: { images: 14, done: 11, failed: 1, skipped: 2 },
    });
  });

  it('listens on the port the sample manifests name, or says it is taken', async () => {
    const port = /"http:\/\/127\.0\.0\.1:(\d+)\//.exec(readFileSync(DEMO, 'utf8'))?.[1];
    expect(port).toBe('8765');
    const { line } = await start({}).catch((error: unknown) => ({ line: String(error) }));
    expect(line).toMatch(
      /127\.0\.0\.1:8765 \(Ctrl-C stops it\)|port 8765 of 127\.0\.0\.1 is taken/,
    );
  });
});
