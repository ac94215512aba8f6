// @ts-check
/**
 * The reference for throughput: the least a Node program can do to fetch
 * and measure the same images. `workers` async workers pull the next URL of
 * one shared list, over ONE undici Agent (`connections: workers`), read the
 * whole body (`full`) or `Range: bytes=0-65535` (`range`), and run image-size
 * on the first 64 KiB. No retries, no deadline, no results file.
 *
 *   node bench/loop.js <urls.json> <full|range> [workers]
 *
 * prints `{ "images", "bytes", "ms" }` on stdout (`ms` from the first
 * request to the last body; the bench times the whole process from outside,
 * as it does imgjob). Any failure exits 1.
 */
import { readFile } from 'node:fs/promises';
import process from 'node:process';

import { imageSize } from 'image-size';
import { Agent, request } from 'undici';

/** image-size reads the head only; this much of it is kept. */
const HEAD_BYTES = 64 * 1024;

const [urlsFile, mode = 'full', workersText = '64'] = process.argv.slice(2);
if (!urlsFile || (mode !== 'full' && mode !== 'range')) {
  console.error('usage: node bench/loop.js <urls.json> <full|range> [workers]');
  process.exit(2);
}
const urls = /** @type {string[]} */ (JSON.parse(await readFile(urlsFile, 'utf8')));
const workers = Number(workersText);
const agent = new Agent({ connections: workers });
const headers = mode === 'range' ? { range: `bytes=0-${HEAD_BYTES - 1}` } : {};
let next = 0;
let bytes = 0;

const started = performance.now();
await Promise.all(Array.from({ length: workers }, worker));
const ms = performance.now() - started;
await agent.close();
process.stdout.write(`${JSON.stringify({ images: urls.length, bytes, ms })}\n`);

async function worker() {
  for (let url = urls[next++]; url !== undefined; url = urls[next++]) {
    const { statusCode, body } = await request(url, { dispatcher: agent, headers });
    if (statusCode !== 200 && statusCode !== 206) throw new Error(`${url}: HTTP ${statusCode}`);
    /** @type {Buffer[]} */
    const head = [];
    let held = 0;
    for await (const chunk of /** @type {AsyncIterable<Buffer>} */ (body)) {
      bytes += chunk.length;
      if (held < HEAD_BYTES) {
        head.push(chunk);
        held += chunk.length;
      }
    }
    const { width, height } = imageSize(Buffer.concat(head, held));
    if (!(width > 0 && height > 0)) throw new Error(`${url}: no dimensions`);
  }
}
