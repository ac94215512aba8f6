// @ts-check
/**
 * The bench's outputs: the table on the terminal, `bench/out/report.json`,
 * and (with `--write-md`) the results section of BENCHMARKS.md, between its
 * `bench:results` markers, formatted by Prettier so `prettier --check` stays
 * clean.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem, availableParallelism } from 'node:os';
import process from 'node:process';

/** @typedef {import('./figures.js').Figure} Figure */

/**
 * @typedef {object} Machine
 * @property {number} nproc
 * @property {string} cpu
 * @property {string} node
 * @property {string} os
 * @property {number} memoryGb
 * @property {number[]} [loadAtStart] 1, 5 and 15 minute load averages when the bench started.
 */

/**
 * @typedef {object} Report
 * @property {string} date ISO time the run ended.
 * @property {boolean} quick
 * @property {number} runs Repetitions of each workload.
 * @property {Machine} machine
 * @property {string} rssBy How peak RSS was measured.
 * @property {number} startupMs Median wall time of `imgjob --version`.
 * @property {Figure[]} figures
 * @property {Record<string, unknown>} workloads Every repetition's raw measurements.
 * @property {Record<string, import('./profile.js').ProfileSummary>} profiles
 */

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';

/** @returns {Machine} */
export function describeMachine() {
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    os: `${process.platform} ${release()}`,
    memoryGb: Math.round(totalmem() / 2 ** 30),
  };
}

/**
 * The figures as an aligned text table.
 *
 * @param {readonly Figure[]} figures
 * @returns {string}
 */
export function renderTable(figures) {
  const rows = [
    ['workload', 'figure', 'value', 'target', 'met'],
    ...figures.map((figure) => [
      figure.workload,
      figure.name,
      figure.shown,
      figure.target,
      verdict(figure),
    ]),
  ];
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * Replaces the results section of BENCHMARKS.md with this report.
 *
 * @param {string} path
 * @param {Report} report
 */
export async function writeMarkdown(path, report) {
  const text = await readFile(path, 'utf8');
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  if (from < 0 || to < from) throw new Error(`${path} has no ${START} … ${END} section to fill`);
  const updated = `${text.slice(0, from + START.length)}\n\n${markdownSection(report)}\n\n${text.slice(to)}`;
  const prettier = await import('prettier');
  const config = (await prettier.resolveConfig(path)) ?? {};
  await writeFile(path, await prettier.format(updated, { ...config, filepath: path }));
}

/**
 * @param {Report} report
 * @returns {string}
 */
function markdownSection(report) {
  const { machine } = report;
  const size = report.quick ? 'quick (smaller workloads)' : 'full size';
  const runs = report.runs === 1 ? '1 run' : `median of ${report.runs} runs`;
  const rows = report.figures.map(
    (figure) =>
      `| ${figure.workload} | ${figure.name} | ${figure.shown} | ${figure.target} | ${verdict(figure)} |`,
  );
  const w4 = report.profiles['W4'];
  const profile = w4
    ? [
        '',
        `Top self time in the profiled W4 run (\`node --cpu-prof\`, ${(w4.durationMs / 1000).toFixed(1)} s):`,
        '',
        '```text',
        ...w4.top
          .slice(0, 10)
          .map(
            (row) =>
              `${row.selfMs.toFixed(0).padStart(6)} ms ${(row.share * 100).toFixed(1).padStart(5)}%  ${row.name}`,
          ),
        '```',
      ]
    : [];
  return [
    `Last run: ${report.date.slice(0, 16).replace('T', ' ')} UTC, ${size}, ${runs}.`,
    `Machine: ${machine.cpu}, nproc ${machine.nproc}, ${machine.memoryGb} GiB RAM, ${machine.os}, Node ${machine.node}${machine.loadAtStart ? `; load average ${machine.loadAtStart.join(' / ')} when it started` : ''}.`,
    `Peak RSS by ${report.rssBy === 'gnu-time' ? 'GNU time (`%M`)' : 'polling /proc/<pid>/status (VmHWM)'};`,
    `imgjob's own start-up (\`imgjob --version\`) takes ${report.startupMs.toFixed(0)} ms and is inside every wall time.`,
    '',
    '| Workload | Figure | Value | Target | Met |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    ...profile,
  ].join('\n');
}

/**
 * @param {Figure} figure
 * @returns {string}
 */
function verdict(figure) {
  if (figure.met === undefined) return '';
  return figure.met ? 'yes' : 'NO';
}
