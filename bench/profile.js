// @ts-check
/**
 * Reads a V8 `.cpuprofile` (`node --cpu-prof`) and sums it up: the top
 * functions by self time, self time by module, and the time spent saving the
 * results file (every sample with a `dist/results/writer.js` or
 * `dist/utils/atomic-file.js` frame on its stack).
 *
 *   node bench/profile.js <file.cpuprofile> [top]
 *
 * A sample is charged the time since the previous one, so time blocked in a
 * synchronous call (an fsync) lands on the stack that made the call.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

/**
 * @typedef {object} ProfileNode
 * @property {number} id
 * @property {{ functionName: string, url: string, lineNumber: number }} callFrame
 * @property {number[]} [children]
 */

/** @typedef {{ nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }} CpuProfile */

/**
 * @typedef {object} ProfileSummary
 * @property {number} durationMs From the profile's start to its end.
 * @property {{ name: string, selfMs: number, share: number }[]} top Functions by self time.
 * @property {{ name: string, selfMs: number, share: number }[]} modules Self time by module.
 * @property {{ snapshotMs: number, finalMs: number, journalMs: number, otherMs: number }} results
 *   Inclusive time in the results file writer: throttled snapshots, the final
 *   save at the end of the job, journal lines, anything else in the writer.
 */

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, top = '15'] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node bench/profile.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(formatSummary(await summariseProfile(file, Number(top))));
}

/**
 * @param {string} file
 * @param {number} [top]
 * @returns {Promise<ProfileSummary>}
 */
export async function summariseProfile(file, top = 15) {
  const profile = /** @type {CpuProfile} */ (JSON.parse(await readFile(file, 'utf8')));
  /** @type {Map<number, ProfileNode>} */
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  /** @type {Map<number, number>} */
  const parentOf = new Map();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parentOf.set(child, node.id);

  /** @type {Map<string, number>} */
  const selfByFunction = new Map();
  /** @type {Map<string, number>} */
  const selfByModule = new Map();
  const results = { snapshotMs: 0, finalMs: 0, journalMs: 0, otherMs: 0 };
  profile.samples.forEach((id, index) => {
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    const node = byId.get(id);
    if (!node) return;
    add(selfByFunction, functionLabel(node), ms);
    add(selfByModule, moduleLabel(node.callFrame.url, node.callFrame.functionName), ms);
    const part = resultsPart(id, byId, parentOf);
    if (part) results[part] += ms;
  });
  const durationMs = (profile.endTime - profile.startTime) / 1000;
  return {
    durationMs,
    top: ranked(selfByFunction, durationMs).slice(0, top),
    modules: ranked(selfByModule, durationMs).slice(0, top),
    results,
  };
}

/**
 * @param {ProfileSummary} summary
 * @returns {string}
 */
export function formatSummary(summary) {
  /** @param {{ name: string, selfMs: number, share: number }} row */
  const line = (row) =>
    `  ${row.selfMs.toFixed(0).padStart(7)} ms ${(row.share * 100).toFixed(1).padStart(5)}%  ${row.name}`;
  const { snapshotMs, finalMs, journalMs, otherMs } = summary.results;
  return [
    `profile of ${(summary.durationMs / 1000).toFixed(2)} s; top self time:`,
    ...summary.top.map(line),
    'self time by module:',
    ...summary.modules.map(line),
    `results file: snapshots ${snapshotMs.toFixed(0)} ms, final save ${finalMs.toFixed(0)} ms, journal ${journalMs.toFixed(0)} ms, other ${otherMs.toFixed(0)} ms`,
  ].join('\n');
}

/** Functions of the results writer and the atomic file (src/results/writer.ts, src/utils/atomic-file.ts). */
const WRITER_FUNCTIONS = new Set([
  '#maybeSnapshot',
  '#snapshotInBackground',
  '#saveNow',
  '#document',
  '#snapshot',
  '#write',
  '#append',
  '#flush',
  '#rotateJournal',
  '#removeJournals',
  'stageFile',
  'documentPieces',
  'commit',
  'commitSync',
]);

/**
 * Which part of the results writer a sample's stack is in, if any.
 *
 * @param {number} id
 * @param {Map<number, ProfileNode>} byId
 * @param {Map<number, number>} parentOf
 * @returns {'snapshotMs' | 'finalMs' | 'journalMs' | 'otherMs' | undefined}
 */
function resultsPart(id, byId, parentOf) {
  // The command line is bundled (scripts/bundle.js): frames are told by their
  // function names, which the bundle keeps, not by their file.
  const names = new Set();
  for (let at = /** @type {number | undefined} */ (id); at !== undefined; at = parentOf.get(at)) {
    const frame = byId.get(at)?.callFrame;
    if (frame?.url.includes('/dist/')) names.add(frame.functionName);
  }
  if (![...WRITER_FUNCTIONS].some((name) => names.has(name))) return undefined;
  if (names.has('close')) return 'finalMs';
  if (
    names.has('#snapshotInBackground') ||
    names.has('commit') ||
    names.has('#saveNow') ||
    // A snapshot's text is spelled between its writes, where only #write is on the stack.
    names.has('#write')
  ) {
    return 'snapshotMs';
  }
  if (names.has('#append') || names.has('#flush')) return 'journalMs';
  return 'otherMs';
}

/**
 * @param {ProfileNode} node
 * @returns {string}
 */
function functionLabel(node) {
  const { functionName, url, lineNumber } = node.callFrame;
  if (!url) return functionName || '(anonymous)';
  return `${functionName || '(anonymous)'} ${moduleLabel(url, functionName)}/${basename(url)}:${lineNumber + 1}`;
}

/**
 * `undici`, `imgjob`, `node:internal/streams`, `(garbage collector)`…
 *
 * @param {string} url
 * @param {string} functionName
 * @returns {string}
 */
function moduleLabel(url, functionName) {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg?.[1]) return pkg[1];
  if (url.includes('/dist/')) return 'imgjob';
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return basename(url);
}

/**
 * @param {Map<string, number>} map
 * @param {string} key
 * @param {number} ms
 */
function add(map, key, ms) {
  map.set(key, (map.get(key) ?? 0) + ms);
}

/**
 * @param {Map<string, number>} map
 * @param {number} totalMs
 * @returns {{ name: string, selfMs: number, share: number }[]}
 */
function ranked(map, totalMs) {
  return [...map]
    .map(([name, selfMs]) => ({ name, selfMs, share: totalMs > 0 ? selfMs / totalMs : 0 }))
    .sort((a, b) => b.selfMs - a.selfMs);
}
