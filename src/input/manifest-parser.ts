/**
 * What every manifest form's reader does: take the text in chunks, as it
 * is read, and hand back the checked job at the end.
 */
import type { JobInput } from '../types.js';

export interface ManifestParser {
  /** @throws {ManifestError} as soon as the text cannot be read further (a syntax error). */
  push(chunk: string): void;
  /** @throws {ManifestError} listing every problem, one `place: what` line each. */
  end(): JobInput;
}

/** The forms a manifest comes in: the Retail Pulse JSON, JSON Lines, CSV. */
export const INPUT_FORMATS = ['rp', 'jsonl', 'csv'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/** The form of a manifest file by its extension: `.jsonl`, `.csv`, else the Retail Pulse JSON. */
export function inputFormatOf(path: string): InputFormat {
  if (/\.jsonl$/i.test(path)) return 'jsonl';
  if (/\.csv$/i.test(path)) return 'csv';
  return 'rp';
}
