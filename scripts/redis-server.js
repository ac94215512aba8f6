// @ts-check
/**
 * A real `redis-server` on a free loopback port, with no persistence and
 * `maxmemory-policy noeviction` (what imgjob requires), for the queue tests
 * and the cluster benchmark.
 *
 * ```js
 * const redis = await startRedis(binary);   // redis.url = redis://127.0.0.1:<port>/0
 * await redis.restart();                    // stops it and starts it again, empty
 * await redis.stop();
 * ```
 */
import { spawn, spawnSync } from 'node:child_process';

import { freePort } from './free-port.js';

/**
 * @typedef {object} RedisServer
 * @property {number} port
 * @property {string} url `redis://127.0.0.1:<port>/0`
 * @property {(db: number) => string} urlFor The URL of database `db`.
 * @property {() => Promise<void>} restart Stops the server and starts a fresh, empty one on the same port.
 * @property {() => Promise<void>} stop
 */

const CANDIDATES = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'];

/** @type {{ readonly path: string | undefined } | undefined} */
let lookedUp;

/**
 * The redis-server binary, or undefined when this machine has none. Looked
 * up once per process: each look spawns `redis-server --version` (~20 ms of
 * CPU from a big test worker), and a test worker asks for every queue file.
 * @returns {string | undefined}
 */
export function redisServerPath() {
  lookedUp ??= { path: findRedisServer() };
  return lookedUp.path;
}

/** @returns {string | undefined} */
function findRedisServer() {
  for (const path of CANDIDATES) {
    if (spawnSync(path, ['--version'], { stdio: 'ignore' }).status === 0) return path;
  }
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

/**
 * @param {string} binary
 * @returns {Promise<RedisServer>}
 */
export async function startRedis(binary) {
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

/**
 * @param {string} binary
 * @param {number} port
 * @returns {Promise<import('node:child_process').ChildProcess>}
 */
async function launch(binary, port) {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', ''];
  args.push('--appendonly', 'no', '--maxmemory-policy', 'noeviction');
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise((resolve, reject) => {
    let output = '';
    /** @param {Buffer} chunk */
    const onData = (chunk) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve(undefined);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      reject(new Error(`redis-server exited (${String(code)}) before it was ready:\n${output}`));
    });
  });
  return child;
}

/** @param {import('node:child_process').ChildProcess} child */
async function halt(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}
