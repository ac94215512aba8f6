import { availableParallelism } from 'node:os';

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
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
  },
});
