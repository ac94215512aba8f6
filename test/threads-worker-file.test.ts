/**
 * The download threads' module is started from a file (dist/worker.js in
 * the bundle, dist/download/threads/worker.js in tsc's output). A package
 * without it is broken: the command says so and exits 70 (a bug), instead of
 * running every job on one thread unnoticed. Tested on a copy of the built
 * package with the file taken out; the build itself must hold both files.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
let server: FaultServer;
let copy: string;

beforeAll(async () => {
  server = await startFaultServer();
  copy = mkdtempSync(join(tmpdir(), 'imgjob-no-worker-'));
  for (const part of ['bin', 'dist']) linkTree(join(repo, part), join(copy, part));
  copyFileSync(join(repo, 'package.json'), join(copy, 'package.json'));
  symlinkSync(join(repo, 'node_modules'), join(copy, 'node_modules'));
  rmSync(join(copy, 'dist/worker.js'));
  rmSync(join(copy, 'dist/download/threads/worker.js'));
});
afterAll(async () => {
  await server.close();
  rmSync(copy, { recursive: true, force: true });
});

/**
 * The files of `from` at `to`, hard-linked where the file system allows:
 * a copy of dist's 14 MB cost ~0.5 s of CPU. Not symlinks: Node would
 * resolve them, and the copy's modules would find the repo's files beside
 * them. Source maps and declarations stay out.
 */
function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) linkTree(source, target);
    else if (!/\.(map|d\.ts)$/.test(entry.name)) {
      try {
        linkSync(source, target);
      } catch {
        copyFileSync(source, target);
      }
    }
  }
}

function runCopy(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return runNode([join(copy, 'bin/imgjob.js'), ...args]);
}

function runNode(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { env: { ...process.env, NO_COLOR: '1' } },
      (error, _stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr });
      },
    );
  });
}

describe("the download threads' module", () => {
  it('is in the build, beside the bundle and beside the pool', () => {
    expect(existsSync(join(repo, 'dist/worker.js'))).toBe(true);
    expect(existsSync(join(repo, 'dist/download/threads/worker.js'))).toBe(true);
  });

  it('missing: `run` with threads exits 70 naming the file; --threads 1 still runs', async () => {
    const manifest = join(copy, 'one.json');
    const image = server.url('/img/image.png');
    writeFileSync(
      manifest,
      JSON.stringify({ count: 1, visits: [{ store_id: 'S1', image_url: [image] }] }),
    );
    const args = ['run', manifest, '-o', join(copy, 'r.json'), '--force', '--gpu-delay', '0'];
    const threaded = await runCopy([...args, '--threads', '2']);
    expect(threaded.code).toBe(70);
    expect(threaded.stderr).toContain(
      `the download threads' module is missing: ${join(copy, 'dist/worker.js')}`,
    );
    expect(threaded.stderr).toContain('--threads 1 runs without it');
    expect(threaded.stderr).toContain('please report it');
    expect(threaded.stderr).not.toMatch(/^\s+at /m);
    const alone = await runCopy([...args, '--threads', '1']);
    expect(alone).toMatchObject({ code: 0 });
  });

  it('missing: the library refuses a downloader with threads at once', async () => {
    // In a process of its own: the copy's modules are plain Node, not vitest's.
    const script = `
      const { createDownloader } = await import(${JSON.stringify(join(copy, 'dist/download/downloader.js'))});
      const options = { timeoutMs: 5000, maxBytes: 1e6, retries: 0, perHost: 4, headerOnly: false };
      await createDownloader({ ...options, threads: 1 }).close();
      createDownloader({ ...options, threads: 2 });`;
    const { code, stderr } = await runNode(['--input-type=module', '-e', script]);
    expect(code).toBe(1);
    expect(stderr).toContain(
      `the download threads' module is missing: ${join(copy, 'dist/download/threads/worker.js')}`,
    );
  });
});
