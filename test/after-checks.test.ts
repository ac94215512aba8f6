/**
 * The time-bound files' wait for npm test's checks (test/helpers/after-checks.ts):
 * it lasts while scripts/test.js holds its socket, and not a moment when
 * nothing listens.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { checksEnded } from './helpers/after-checks.js';

const dir = mkdtempSync(join(tmpdir(), 'imgjob-after-checks-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('waiting for the checks', () => {
  it('lasts until the socket closes', async () => {
    const path = join(dir, 'checks.sock');
    const held: Socket[] = [];
    const server = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const connected = once(server, 'connection');
    let ended = false;
    const waiting = checksEnded(path).then(() => {
      ended = true;
    });
    await connected;
    // Connected, and the checks go on: still waiting.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(ended).toBe(false);
    server.close();
    for (const socket of held) socket.destroy();
    await waiting;
    expect(ended).toBe(true);
  });

  it('ends at once when nothing listens, or outside npm test', async () => {
    await checksEnded(join(dir, 'nobody.sock'));
    await checksEnded('');
  });
});
