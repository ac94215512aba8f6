/**
 * `npm run demo` is the README's first command: it must end with exit 0 on a
 * fresh clone, offline. It spawns the built CLI against its own fixture server.
 *
 * @module-tag e2e
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { expect, it } from 'vitest';

const run = promisify(execFile);
const DEMO = fileURLToPath(new URL('../scripts/demo.js', import.meta.url));

it('npm run demo runs its job, status and report, and exits 0', async () => {
  const { stdout } = await run(process.execPath, [DEMO], { env: { ...process.env, CI: 'true' } });
  expect(stdout).toContain('As expected: exit code 1');
  expect(stdout).toMatch(/HTML report: .*demo\.report\.html/);
}, 60_000);
