import { availableParallelism } from 'node:os';

import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Files that hold the issue's own time bounds (an event-loop hold under
 * 100 ms, an answer under 1 s, a live file's news at least every 1.5 s).
 * They measure imgjob, not the machine, only when nothing else competes for
 * the cores: they run after the other files (a later group), one at a time
 * in one worker, whose setup file collects the garbage of the file before
 * (none is left to collect mid-measure); under `npm test` it also waits for
 * the checks to end (test/helpers/after-checks.ts).
 */
const ALONE = [
  'test/serve-submit-hold.test.ts',
  'test/live-file.test.ts',
  'test/serve-cancel.test.ts',
  'test/serve-streams.test.ts',
  'test/dashboard-search.test.ts',
];

/**
 * Files whose time is a child process's own progress, which the other
 * files' load slows many times over: npm's pack and install of the package
 * (~8 s of CPU, one step after another; 25-35 s among the other files) and
 * serve-freeze's server running 25,000 refused stores (2.8 s alone, 16-22 s
 * among the others). They run first, beside the checks of npm test only,
 * before the other files start.
 */
const FIRST = ['test/everyday-install.test.ts', 'test/serve-freeze.test.ts'];

/**
 * Files that replace a module (`vi.mock`): they need a module graph of their
 * own, which every other file shares with the files before it in its worker.
 */
const ISOLATED = ['test/measure.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // The tests' processes talk to servers on 127.0.0.1 they start themselves,
    // never to a public TLS server, so the machine's extra CA bundle is left
    // out of their environment: Node reads the file at every start, ~50 ms of
    // CPU per process for a 220 KB bundle, and the run spawns ~370 of them.
    // The https case sets its own (download-proxy.test.ts).
    env: { NODE_EXTRA_CA_CERTS: '' },
    // A worker runs file after file in one process and one module graph:
    // a fresh process and a fresh import of vitest, the helpers and src/ for
    // every file cost ~0.3 s of CPU each (measured: see the README). What
    // the files share is process state, which none of them leaves changed
    // (no chdir, no env or signal handler left behind); the ones that
    // replace a module run isolated.
    isolate: false,
    // Vitest's default is one worker fewer than the cores: one on a 2-core
    // machine, and the files then run one after another although most of
    // their time is spent waiting on a spawned imgjob, Redis or a browser.
    // Two files per core keep the cores busy (measured: see the README).
    maxWorkers: 2 * availableParallelism(),
    tags: [
      {
        name: 'e2e',
        description:
          'end to end: spawns the built CLI, a browser or Redis (seconds each); `npm run test:unit` leaves them out',
      },
    ],
    projects: [
      {
        extends: true,
        test: { name: 'first', include: FIRST, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: {
          name: 'shared',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...FIRST, ...ALONE, ...ISOLATED],
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'isolated',
          include: ISOLATED,
          isolate: true,
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'alone',
          include: ALONE,
          setupFiles: ['test/helpers/after-checks.ts'],
          // One module graph for the five: a fresh fork and import cost each
          // file 0.3-1 s before its first hook (the project took 20.1-25.6 s
          // so, against 24.7-27.9 s with a fork per file: 4 pairs, quiet).
          isolate: false,
          execArgv: ['--expose-gc'],
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
