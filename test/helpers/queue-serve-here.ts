/**
 * `imgjob serve` in this process: `startServer()` of src/serve, what the
 * command starts, with the options `imgjob serve --allow-private
 * --gpu-delay … --seed … [--queue <url>]` gives it and its log lines kept
 * as the command prints them (`imgjob: …`). For the cases where what the
 * server answers or records is the point, not its process: a spawned
 * `serve --queue` costs ~0.7 s of CPU (Node, SQLite, BullMQ). What only a
 * process shows — kill -9, a signal, its exit code — stays with
 * `spawnServe()` of ./cli.js.
 *
 * ```ts
 * const serveHere = serversHere(); // at the top of the file
 * const served = await serveHere(db, { gpuDelay: '0', queue: url });
 * await submitOk(served.url, manifest);
 * await served.close(); // as on SIGTERM: unfinished jobs resume at the next start
 * ```
 */
import { afterAll } from 'vitest';

import { parseGpuDelay } from '../../src/engine/gpu-delay.js';
import { startServer, type RunningServer } from '../../src/serve/server.js';

export type ServeHereOptions = {
  /** As `--gpu-delay`: `20`, `0-20`. */
  readonly gpuDelay: string;
  /** As `--seed`. */
  readonly seed?: number | undefined;
  /** As `--queue`: the stores run on workers through this Redis. */
  readonly queue?: string | undefined;
};

export type ServedHere = {
  readonly url: string;
  /** The log lines so far, as the command prints them on stderr. */
  readonly log: string;
  /** The graceful stop of SIGINT/SIGTERM. */
  close(): Promise<void>;
};

/**
 * The file's starter of servers here; those a failed case left running close
 * after the file. Call it at the top of the file.
 */
export function serversHere(): (db: string, options: ServeHereOptions) => Promise<ServedHere> {
  const running = new Set<RunningServer>();
  afterAll(async () => {
    await Promise.all([...running].map((server) => server.close()));
  });
  return async (db, options) => {
    const gpuDelay = parseGpuDelay(options.gpuDelay);
    if (gpuDelay === undefined) throw new Error(`not a --gpu-delay: ${options.gpuDelay}`);
    let log = '';
    const server = await startServer({
      port: 0,
      dbPath: db,
      // The command's defaults but the GPU time and seed; threads: 1 is the default.
      options: { gpuDelay, seed: options.seed },
      allowPrivate: true,
      log: (line) => {
        log += `imgjob: ${line}\n`;
      },
      queue: options.queue,
    });
    running.add(server);
    return {
      url: server.url,
      get log() {
        return log;
      },
      close: async () => {
        await server.close();
        running.delete(server);
      },
    };
  };
}
