/**
 * The metrics endpoint of `run --metrics-port` and `worker --metrics-port`:
 * a small HTTP server that answers `GET /metrics` (and HEAD) in the
 * Prometheus text format, and 404 to anything else. `serve` answers the
 * same route on its own port (metricsAnswer).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Registry } from 'prom-client';

import { InputError } from '../utils/errors.js';

export type MetricsServer = {
  /** `http://127.0.0.1:9464/metrics` */
  readonly url: string;
  close(): Promise<void>;
};

/** The exposition text of a registry and its content type, for whoever answers. */
export async function metricsAnswer(registry: Registry): Promise<MetricsAnswer> {
  return { contentType: registry.contentType, text: await registry.metrics() };
}

export type MetricsAnswer = { readonly contentType: string; readonly text: string };

/** Answers a scrape (HEAD: the headers only). */
export function sendMetrics(
  req: IncomingMessage,
  res: ServerResponse,
  answer: MetricsAnswer,
): void {
  res.writeHead(200, {
    'content-type': answer.contentType,
    'content-length': Buffer.byteLength(answer.text),
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : answer.text);
}

/**
 * Listens on `host:port` (port 0 picks a free one).
 * @throws {InputError} `E_USAGE` when the address cannot be used (taken, not ours).
 */
export async function startMetricsServer(
  registry: Registry,
  host: string,
  port: number,
): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if ((req.method === 'GET' || req.method === 'HEAD') && path === '/metrics') {
      metricsAnswer(registry).then(
        (answer) => {
          sendMetrics(req, res, answer);
        },
        (error: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(`metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found: the metrics are at /metrics\n');
  });
  // A scrape must never keep a finished run alive.
  server.unref();
  await listen(server, host, port);
  const { port: bound } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${bound}/metrics`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const why =
        error.code === 'EADDRINUSE'
          ? 'the port is taken'
          : error.code === 'EADDRNOTAVAIL'
            ? 'not an address of this machine'
            : error.code === 'EACCES'
              ? 'permission denied'
              : error.message;
      reject(
        new InputError('E_USAGE', `cannot serve metrics on ${host}:${port}: ${why}`, {
          cause: error,
        }),
      );
    });
    server.listen(port, host, () => {
      resolve();
    });
  });
}
