// @ts-check
/**
 * The benchmark's image server when nginx is installed (Debian's
 * nginx-light): a static server that takes little CPU, so that imgjob's
 * threads compete with as little as possible on a small machine. Started
 * on a free loopback port with a config of its own (one worker, sendfile,
 * keep-alive, no access log), stopped after.
 *
 * It serves the same URLs as bench/server.js: `/<set>/<n>.<ext>` is a hard
 * link to file `n mod k` of the set, made for every URL of a manifest before
 * it runs (`serveUrls`). It keeps no counters: `stats()` answers NaN.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';

import { fileOf, IMAGE_SETS, parseImagePath } from './catalog.js';

import { freePort } from '../scripts/free-port.js';

export const NGINX = '/usr/sbin/nginx';

/** @typedef {import('./catalog.js').Catalog} Catalog */
/** @typedef {import('./server.js').ImageServer} ImageServer */

/** @returns {boolean} */
export function hasNginx() {
  return existsSync(NGINX);
}

/**
 * @param {Catalog} catalog
 * @returns {Promise<ImageServer>}
 */
export async function spawnNginx(catalog) {
  const dir = await mkdtemp(join(tmpdir(), 'imgjob-nginx-'));
  // nginx's worker may run as another user: it must reach the files.
  await chmod(dir, 0o755);
  const root = join(dir, 'root');
  for (const set of IMAGE_SETS) {
    await mkdir(join(root, '.files', set), { recursive: true });
    await mkdir(join(root, set), { recursive: true });
    for (const file of new Set(catalog[set])) {
      await writeFile(join(root, '.files', set, file.name), file.data);
    }
  }
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, config(dir, root, port));
  const child = spawn(NGINX, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise((done) => child.once('exit', done));
  await waitForPort(port, exited);
  /** @type {Set<string>} */
  const linked = new Set();
  return {
    origin: `http://127.0.0.1:${port}`,
    kind: 'nginx',
    pid: child.pid,
    stats: async () => ({ requests: NaN, partial: NaN, bytes: NaN, connections: NaN }),
    async serveUrls(urls) {
      for (const url of urls) {
        const path = new URL(url).pathname;
        if (linked.has(path)) continue;
        const place = parseImagePath(path);
        if (!place) throw new Error(`not a bench image URL: ${url}`);
        const file = fileOf(catalog, place.set, place.n);
        const target = join(root, path);
        const source = join(root, '.files', place.set, file.name);
        await link(source, target).catch(async (/** @type {NodeJS.ErrnoException} */ error) => {
          if (error.code === 'EEXIST') return;
          // ext4 allows 65,000 hard links to a file; W6's million URLs share a few files.
          if (error.code === 'EMLINK') return symlink(source, target);
          throw error;
        });
        linked.add(path);
      }
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * @param {string} dir
 * @param {string} root
 * @param {number} port
 */
function config(dir, root, port) {
  const asRoot = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${asRoot}worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  # Few descriptors: W4 has 100,000 URLs (hard links), more than a process may hold open.
  open_file_cache max=2000 inactive=20s;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  types { image/jpeg jpg; image/png png; image/webp webp; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${root};
    location / { }
  }
}
`;
}

/**
 * @param {number} port
 * @param {Promise<unknown>} exited
 */
async function waitForPort(port, exited) {
  let gone = false;
  void exited.then(() => (gone = true));
  for (let tries = 0; tries < 250; tries++) {
    if (gone) throw new Error('nginx exited before listening (see its messages above)');
    const open = await new Promise((done) => {
      const socket = createConnection(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        done(true);
      });
      socket.once('error', () => {
        done(false);
      });
    });
    if (open) return;
    await new Promise((done) => setTimeout(done, 20));
  }
  throw new Error(`nginx did not listen on port ${port}`);
}
