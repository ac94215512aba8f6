/**
 * Temp files, symlinks and output paths (issue 13 §4), and how errors end a
 * run (issue 8 §3): what a user can fix is one line and exit 2, found before
 * any download; a bug is exit 70 with no stack unless asked for.
 *
 * @module-tag e2e
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { lockPathOf } from '../src/results/paths.js';
import { loadResults } from '../src/results/reader.js';
import { runCli, stopAll } from './helpers/cli.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { runJobHere } from './helpers/main.js';
import { mountTmpfs, tmpfsSkipReason, type Tmpfs } from './helpers/tmpfs.js';

const ARGS = ['--gpu-delay', '0', '--retries', '0'];

let server: FaultServer;
let dir: string;
let manifest: string;
let manifestText: string;
beforeAll(async () => {
  server = await startFaultServer();
  dir = mkdtempSync(join(tmpdir(), 'imgjob-paths-'));
  manifest = join(dir, 'job.json');
  const visits = [
    { store_id: 'S1', image_url: [server.url('/img/image.png'), server.url('/img/image.gif')] },
  ];
  manifestText = JSON.stringify({ count: 1, visits });
  writeFileSync(manifest, manifestText);
});
afterAll(async () => {
  await stopAll();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function folder(name: string): string {
  const path = join(dir, name);
  mkdirSync(path);
  return path;
}

describe('temp files', () => {
  it('that dead runs left beside the results file are removed at start; a live run’s are kept', async () => {
    const out = join(folder('stale'), 'job.results.json');
    const dead = [
      '.job.results.json.4194305.tmp', // an older imgjob's name; above any pid
      '.job.results.json.4194306.0123456789abcdef.tmp',
    ];
    // The run is in this process: the live writer is another one, its parent.
    const live = `.job.results.json.${process.ppid}.fedcba9876543210.tmp`;
    const unrelated = ['.other.json.4194305.tmp', 'job.results.json.notes.tmp'];
    for (const name of [...dead, live, ...unrelated]) writeFileSync(join(out, '..', name), 'x');
    const result = await runJobHere(['run', manifest, '-o', out, ...ARGS]);
    expect(result.code, result.stderr).toBe(0);
    const left = readdirSync(join(out, '..')).sort();
    expect(left).toEqual([live, ...unrelated, 'job.results.json'].sort());
  });

  it('are never opened through a planted symlink: the file it points to is untouched', async () => {
    const work = folder('symlink');
    const out = join(work, 'job.results.json');
    const victim = join(work, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    // Every name an older imgjob would have used, and a lock and journal too:
    // the run is in this process, so its pid is known before it starts.
    for (const name of [
      `.job.results.json.${process.pid}.tmp`,
      'job.results.json.journal',
      'job.results.json.journal.old',
    ]) {
      symlinkSync(victim, join(work, name));
    }
    const result = await runJobHere(['run', '-', '-o', out, ...ARGS], { stdin: manifestText });
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect((await loadResults(out)).status).toBe('completed');
    expect(readdirSync(work).sort()).toEqual(['job.results.json', 'victim.txt']);
  });
});

describe('an output that cannot be written is found before any download: one line, exit 2', () => {
  it('a results path that is a folder', async () => {
    const out = folder('a-folder.json');
    const mark = server.requests.length;
    for (const extra of [[], ['--force'], ['--resume']]) {
      const result = await runJobHere(['run', manifest, '-o', out, ...ARGS, ...extra]);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`imgjob: cannot write ${out}: it is a folder, not a file\n`);
    }
    expect(server.requests.length).toBe(mark);
    expect(readdirSync(out)).toEqual([]);
  });

  const skipReason = process.getuid?.() === 0 ? tmpfsSkipReason() : undefined;
  it.skipIf(skipReason !== undefined)(
    'a folder that cannot be written (-o and --out-dir)',
    async () => {
      // Root writes through permissions: a read-only mount stops it too.
      let readOnly: Tmpfs | undefined;
      let locked: string;
      if (process.getuid?.() === 0) {
        readOnly = mountTmpfs('64k', { readOnly: true });
        locked = readOnly.dir;
      } else {
        locked = folder('read-only');
        chmodSync(locked, 0o555);
      }
      try {
        const mark = server.requests.length;
        const cases: [string[], RegExp][] = [
          [
            ['-o', join(locked, 'r.json')],
            /^imgjob: cannot write .*r\.json: (permission denied|the file system is read-only) in /,
          ],
          [
            ['--out-dir', locked],
            /^imgjob: cannot write .*job\.results\.json: (permission denied|the file system is read-only) in /,
          ],
          [['--out-dir', join(locked, 'sub')], /^imgjob: cannot create the output folder .*sub: /],
        ];
        for (const [flags, message] of cases) {
          const result = await runJobHere(['run', manifest, ...flags, ...ARGS]);
          expect(result.code, result.stderr).toBe(2);
          expect(result.stderr).toMatch(message);
          expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
        }
        expect(server.requests.length).toBe(mark);
      } finally {
        readOnly?.unmount();
      }
    },
  );
});

describe('an internal error', () => {
  it('exits 70 with a line asking for a report, no stack unless --debug; the lock goes', async () => {
    const out = join(folder('internal'), 'job.results.json');
    const env = { IMGJOB_TEST_INTERNAL_ERROR: '1' };
    const plain = await runCli(['run', manifest, '-o', out, ...ARGS], { env });
    expect(plain.code).toBe(70);
    expect(plain.stderr).toMatch(/^imgjob: internal error: injected internal error/);
    expect(plain.stderr).toContain('this is a bug in imgjob; please report it');
    expect(plain.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(lockPathOf(out))).toBe(false);

    const debug = await runCli(['--debug', 'run', manifest, '-o', out, '--force', ...ARGS], {
      env,
    });
    expect(debug.code).toBe(70);
    expect(debug.stderr).toMatch(/^\s+at .*run-jobs[-\w]*\.js/m);
  });

  it('an I/O error nobody can fix from outside (EIO) on the results file is one too, not a failed job', async () => {
    const out = join(folder('eio'), 'job.results.json');
    const result = await runCli(['run', manifest, '-o', out, ...ARGS], {
      env: { IMGJOB_TEST_WRITE_FAULT: 'EIO' },
    });
    expect(result.code).toBe(70);
    expect(result.stderr).toMatch(/^imgjob: internal error: EIO: injected write fault\n/);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(lockPathOf(out))).toBe(false);
  });

  it('while a full disk, or no permission, is no bug: exit 2 with what to do', async () => {
    const out = join(folder('enospc'), 'job.results.json');
    const result = await runCli(['run', manifest, '-o', out, ...ARGS], {
      env: { IMGJOB_TEST_WRITE_FAULT: 'ENOSPC' },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      new RegExp(
        `^imgjob: cannot save ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: disk full \\(needs about [\\d.]+ [KMG]?B free\\); free some space, then run the same command with --resume\\n$`,
      ),
    );
  });
});
