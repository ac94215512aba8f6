import { styleText } from 'node:util';

export type Paint = {
  readonly red: (text: string) => string;
  readonly green: (text: string) => string;
  readonly yellow: (text: string) => string;
  readonly dim: (text: string) => string;
  readonly bold: (text: string) => string;
};

const identity = (text: string): string => text;
export const noColor: Paint = {
  red: identity,
  green: identity,
  yellow: identity,
  dim: identity,
  bold: identity,
};

/**
 * Colours by `util.styleText`. Whether to colour at all is decided before
 * (`paintFor`: NO_COLOR, FORCE_COLOR, a terminal, for the stream written to),
 * so its own check is off: it looks at stdout whatever the stream, and Node
 * 20 before 20.19 has no such check at all.
 */
export function ansiPaint(): Paint {
  const style =
    (format: 'red' | 'green' | 'yellow' | 'dim' | 'bold') =>
    (text: string): string =>
      styleText(format, text, { validateStream: false });
  return {
    red: style('red'),
    green: style('green'),
    yellow: style('yellow'),
    dim: style('dim'),
    bold: style('bold'),
  };
}

/**
 * Colours for a stream. `FORCE_COLOR` (any value but `0`/`false`) colours
 * even piped output and wins over `NO_COLOR`, as in Node itself; `NO_COLOR`
 * (any non-empty value) turns colour off; otherwise colours go only to a
 * terminal that has them.
 */
export function paintFor(stream: NodeJS.WriteStream, env = process.env): Paint {
  return wantsColor(stream, env) ? ansiPaint() : noColor;
}

export function wantsColor(stream: NodeJS.WriteStream, env = process.env): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force.toLowerCase() !== 'false';
  if (env.NO_COLOR) return false;
  return isTerminal(stream) && stream.hasColors();
}

/**
 * Columns a table on `stream` may use: the terminal's width when it has a
 * real one, else `COLUMNS`, else 80 (piped output reads well in a pager).
 */
export function outputWidth(stream: NodeJS.WriteStream, env = process.env): number {
  const columns = isTerminal(stream) ? (stream.columns as number | undefined) : undefined;
  if (columns !== undefined && columns >= 20) return columns;
  const fromEnv = Number(env.COLUMNS);
  return Number.isInteger(fromEnv) && fromEnv >= 20 ? fromEnv : 80;
}

/** Node types `isTTY` as boolean; on a pipe or a file it is undefined. */
export function isTerminal(stream: { readonly isTTY?: boolean | undefined }): boolean {
  return stream.isTTY ?? false;
}
