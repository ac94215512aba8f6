/**
 * Where reports go: `--html f`, `--junit f`, `--csv f`, `--jsonl f`,
 * `--parquet f` of `imgjob report`, or `--report html:f,junit:f,…` of
 * `imgjob run`; `-` is stdout.
 */
import { InputError } from '../utils/errors.js';

export type ReportKind = 'html' | 'junit' | 'csv' | 'jsonl' | 'parquet';
export type ReportTarget = { readonly kind: ReportKind; readonly path: string };

export const REPORT_KINDS: readonly ReportKind[] = ['html', 'junit', 'csv', 'jsonl', 'parquet'];

/**
 * Parses `html:out.html,junit:out.xml`.
 * @throws {InputError} `E_USAGE` naming what is wrong.
 */
export function parseReportTargets(spec: string): ReportTarget[] {
  const targets = spec.split(',').map((part): ReportTarget => {
    const match = /^([a-z]+):(.+)$/.exec(part.trim());
    const kind = match?.[1] as ReportKind | undefined;
    if (!match || kind === undefined || !REPORT_KINDS.includes(kind))
      throw new InputError(
        'E_USAGE',
        `--report: expected kind:file with kind html, junit, csv, jsonl or parquet (as html:report.html,junit:report.xml), got ${JSON.stringify(part)}`,
      );
    return { kind, path: match[2] ?? '' };
  });
  return checkTargets(targets, '--report');
}

/** One file per kind, stdout at most once. */
export function checkTargets(targets: ReportTarget[], option: string): ReportTarget[] {
  const kinds = new Set<ReportKind>();
  for (const target of targets) {
    if (kinds.has(target.kind))
      throw new InputError('E_USAGE', `${option}: ${target.kind} is given twice`);
    kinds.add(target.kind);
  }
  if (targets.filter((target) => target.path === '-').length > 1)
    throw new InputError('E_USAGE', `${option}: only one report can go to stdout (-)`);
  return targets;
}
