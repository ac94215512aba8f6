// @ts-check
/**
 * `npm run fixtures`: serves `fixtures/` on the loopback port that the sample
 * manifests in `fixtures/manifests/` name, so they can be run by hand:
 *
 *   npm run fixtures &
 *   imgjob run fixtures/manifests/demo.json -o /tmp/demo.results.json
 *
 * Runs until Ctrl-C. `PORT=<n>` overrides the port (the manifests then need
 * their URLs edited to match).
 */
import console from 'node:console';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';

import { startFixtureServer } from './fixture-server.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const manifests = join(fixtures, 'manifests');

const origin = new URL(manifestOrigin());
const port = Number(process.env.PORT ?? origin.port);
let server;
try {
  server = await startFixtureServer(fixtures, { host: origin.hostname, port });
} catch (error) {
  const busy = /** @type {NodeJS.ErrnoException} */ (error).code === 'EADDRINUSE';
  console.error(
    busy
      ? `fixtures: port ${port} of ${origin.hostname} is taken (another fixture server?); stop it, or PORT=<n> npm run fixtures and edit the manifests' URLs`
      : `fixtures: cannot listen on ${origin.hostname}:${port}: ${String(error)}`,
  );
  process.exit(2);
}
console.log(`fixtures: serving ${fixtures} on ${server.origin} (Ctrl-C stops it)`);
console.log('try, in another terminal:');
console.log('  imgjob validate fixtures/manifests/demo.json');
console.log('  imgjob run fixtures/manifests/demo.json -o demo.results.json');
const stop = () => {
  void server.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

/** The origin of the first image URL of the sample manifests (all share one). */
function manifestOrigin() {
  for (const name of readdirSync(manifests).sort()) {
    const text = readFileSync(join(manifests, name), 'utf8');
    const url = /"(https?:\/\/[^/"]+)\//.exec(text)?.[1];
    if (url) return url;
  }
  return 'http://127.0.0.1:8765';
}
