/**
 * A real `redis-server` for the queue tests, on a free loopback port, with
 * no persistence and `maxmemory-policy noeviction` (what imgjob requires).
 *
 * ```ts
 * const redis = await startRedis();   // redis.url = redis://127.0.0.1:<port>/0
 * await redis.restart();              // stops it and starts it again, empty
 * await redis.stop();
 * ```
 *
 * `redisServerPath()` finds the binary. Under CI=true a missing one fails
 * the suite (`requireRedis()` throws); elsewhere the queue tests skip with
 * one line saying how to enable them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export type RedisServer = {
  readonly port: number;
  /** `redis://127.0.0.1:<port>/0` */
  readonly url: string;
  /** The URL of database `db`: a test of its own, so a failed one leaves nothing in another's queue. */
  urlFor(db: number): string;
  /** Stops the server and starts a fresh, empty one on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
};

const CANDIDATES = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'];

/** The redis-server binary, or undefined when this machine has none. */
export function redisServerPath(): string | undefined {
  for (const path of CANDIDATES) {
    if (spawnSync(path, ['--version']).status === 0) return path;
  }
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

/**
 * Whether the queue tests can run here. Without redis-server: under CI it
 * throws (a missing service must not pass as green); elsewhere it prints one
 * line and returns false, so the file skips.
 */
export function requireRedis(): boolean {
  if (redisServerPath() !== undefined) return true;
  if (process.env.CI === 'true') {
    throw new Error(
      'redis-server is missing: the queue tests need it (apt-get install -y redis-server)',
    );
  }
  console.warn(
    'queue tests skipped: no redis-server on this machine (apt-get install redis-server to run them)',
  );
  return false;
}

export async function startRedis(): Promise<RedisServer> {
  const binary = redisServerPath();
  if (!binary) throw new Error('redis-server is missing');
  const port = await freePort();
  let child = await launch(binary, port);
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    urlFor: (db) => `redis://127.0.0.1:${port}/${db}`,
    async restart() {
      await halt(child);
      child = await launch(binary, port);
    },
    async stop() {
      await halt(child);
    },
  };
}

async function launch(binary: string, port: number): Promise<ChildProcess> {
  const child = spawn(
    binary,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`));
    });
  });
  return child;
}

async function halt(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}
