/**
 * `imgjob serve` put together: the database, one downloader (behind the
 * address guard), one JobService, the HTTP API — and a close() that takes
 * them down in the order that loses nothing.
 */
import type { LookupFunction } from 'node:net';

import type { Database } from 'better-sqlite3';

import {
  createDownloader,
  type Downloader,
  type DownloaderOptions,
} from '../download/downloader.js';
import { createStoreDeps, resultOptionsOf, type StoreMaster } from '../engine/job-setup.js';
import type { Sleep } from '../utils/sleep.js';
import type { RunOptions } from '../types.js';
import { createAddressGuard, guardedConnector, type AddressGuard } from './address-guard.js';
import { createApi } from './api.js';
import { createDashboard, type Dashboard, type DashboardOptions } from './dashboard/index.js';
import type { BatchWriterOptions } from './batch-writer.js';
import { openDatabase } from './db.js';
import { createHttpServer, listen } from './http.js';
import { SERVE_DEFAULTS } from './defaults.js';
import { JobService } from './job-service.js';

export type ServeConfig = {
  /** @default '127.0.0.1' */
  readonly host?: string | undefined;
  /** `0` picks a free port. @default 8080 */
  readonly port?: number | undefined;
  /** The SQLite file; created when missing. */
  readonly dbPath: string;
  /** The run options every job gets. */
  readonly options: Omit<RunOptions, 'storeMaster' | 'failFast'>;
  /** Known store ids, and where they came from (for messages). */
  readonly storeMaster?: StoreMaster | undefined;
  /**
   * Let image URLs reach loopback, private, link-local and metadata addresses.
   * @default false
   */
  readonly allowPrivate?: boolean | undefined;
  /**
   * Largest request body, in bytes.
   * @default 16 MiB
   */
  readonly maxBodyBytes?: number | undefined;
  /** Replaces the address policy (tests: let exactly their own server through). */
  readonly addressGuard?: AddressGuard | undefined;
  /** Replaces DNS for the guarded connections (tests). */
  readonly lookup?: LookupFunction | undefined;
  /** Replaces the GPU sleep (tests, benchmarks). */
  readonly sleep?: Sleep | undefined;
  readonly writer?: Omit<BatchWriterOptions, 'onError'> | undefined;
  /** Dashboard timings (tests) and the queue's workers, for its Workers panel. */
  readonly dashboard?: Omit<DashboardOptions, 'db' | 'jobs'> | undefined;
  /** Where the server reports what nobody waits for (stderr in the CLI). */
  readonly log?: ((line: string) => void) | undefined;
};

export type RunningServer = {
  /** `http://127.0.0.1:8080` */
  readonly url: string;
  /** Jobs taken up again from the database. */
  readonly resumed: readonly number[];
  /** Jobs that could not be resumed, or resumed under other options. */
  readonly warnings: readonly string[];
  readonly service: JobService;
  /** The dashboard at `/` and its event streams. */
  readonly dashboard: Dashboard;
  /**
   * Graceful stop: no new connections, no new jobs or images, the running
   * stores stopped, every change written, the database closed. Jobs left
   * ongoing resume at the next start. Calling it again is harmless.
   */
  close(): Promise<void>;
};

/**
 * Opens the database, resumes its unfinished jobs and starts listening.
 * @throws {InputError} `E_USAGE` when the database or the address cannot be used.
 */
export async function startServer(config: ServeConfig): Promise<RunningServer> {
  const log = config.log ?? (() => undefined);
  const onError = (message: string, error: unknown): void => {
    log(`${message}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  };
  const db = openDatabase(config.dbPath);
  const downloader = createDownloader(downloaderOptions(config));
  const { options } = config;
  const service = new JobService(db, {
    concurrency: options.concurrency,
    resultOptions: resultOptionsOf(options, config.storeMaster?.ids),
    deps: createStoreDeps({
      fetchImage: (url, signal) => downloader.fetchImage(url, signal),
      gpuDelay: options.gpuDelay,
      seed: options.seed,
      storeMaster: config.storeMaster,
      sleep: config.sleep,
    }),
    writer: config.writer,
    onError,
  });
  let closing: Promise<void> | undefined;
  const dashboard = createDashboard({ db, jobs: service, ...config.dashboard });
  const http = createHttpServer(createApi(service, dashboard.route), {
    maxBodyBytes: config.maxBodyBytes ?? SERVE_DEFAULTS.maxBodyBytes,
    onError,
    closing: () => closing !== undefined,
  });
  let url: string;
  try {
    url = await listen(
      http,
      config.host ?? SERVE_DEFAULTS.host,
      config.port ?? SERVE_DEFAULTS.port,
    );
  } catch (error) {
    dashboard.close();
    await shutDown(service, downloader, db);
    throw error;
  }
  // After listen, in the same tick: no request is answered before the jobs are back.
  const { resumed, warnings } = service.resume();

  return {
    url,
    resumed,
    warnings,
    service,
    dashboard,
    close: () =>
      (closing ??= (async () => {
        dashboard.close();
        const closed = new Promise<void>((resolve) => {
          http.close(() => {
            resolve();
          });
        });
        const grace = setTimeout(() => {
          http.closeAllConnections();
        }, SERVE_DEFAULTS.closeGraceMs);
        await service.close();
        // Answers in progress may still read the database: let them end first.
        await closed;
        clearTimeout(grace);
        await shutDown(service, downloader, db);
      })()),
  };
}

async function shutDown(service: JobService, downloader: Downloader, db: Database): Promise<void> {
  await service.close();
  await downloader.close();
  db.close();
}

function downloaderOptions(config: ServeConfig): DownloaderOptions {
  const { options } = config;
  const guard =
    config.addressGuard ??
    (config.allowPrivate ? undefined : createAddressGuard({ allowPrivate: false }));
  if (guard === undefined) return options;
  // undici's own connect timeout gets the attempt's deadline, as download.ts sets it.
  const connect = guardedConnector(guard, {
    lookup: config.lookup,
    connect: { timeout: options.timeoutMs },
  });
  return { ...options, connect };
}
