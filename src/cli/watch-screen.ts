/**
 * A full-screen view redrawn in place, as watch(1) and top(1) draw: on the
 * terminal's alternate screen, so the frames leave no scrollback behind and
 * the shell's screen comes back as it was. Each frame is cut to the
 * terminal's height by its caller; lines are cleared to their end, so a
 * shorter frame leaves nothing of the one before.
 */
import { stripVTControlCharacters } from 'node:util';

const ENTER = '\u001b[?1049h\u001b[?25l';
const LEAVE = '\u001b[?25h\u001b[?1049l';
const HOME = '\u001b[H';
const CLEAR_LINE_END = '\u001b[K';
const CLEAR_BELOW = '\u001b[J';

export class WatchScreen {
  readonly #stream: NodeJS.WriteStream;
  #open = false;

  constructor(stream: NodeJS.WriteStream) {
    this.#stream = stream;
  }

  /** The terminal's size now (80×24 when it reports none). */
  get size(): { readonly columns: number; readonly rows: number } {
    const columns = this.#stream.columns as number | undefined;
    const rows = this.#stream.rows as number | undefined;
    return { columns: columns || 80, rows: rows || 24 };
  }

  draw(frame: string): void {
    if (!this.#open) {
      this.#stream.write(ENTER);
      this.#open = true;
    }
    const lines = frame.replace(/\n$/, '').split('\n');
    this.#stream.write(
      `${HOME}${lines.join(`${CLEAR_LINE_END}\n`)}${CLEAR_LINE_END}${CLEAR_BELOW}`,
    );
  }

  /** Back to the shell's screen; safe to call twice. */
  close(): void {
    if (!this.#open) return;
    this.#stream.write(LEAVE);
    this.#open = false;
  }
}

/** `text` wrapped at spaces to lines of at most `columns` (a longer word is cut). */
export function wrapWords(text: string, columns: number): string {
  const lines: string[] = [];
  let line = '';
  const words = text
    .split(' ')
    .flatMap((word) =>
      stripVTControlCharacters(word).length > columns
        ? (word.match(new RegExp(`.{1,${columns}}`, 'gu')) ?? [word])
        : [word],
    );
  for (const word of words) {
    const next = line === '' ? word : `${line} ${word}`;
    if (line !== '' && Array.from(stripVTControlCharacters(next)).length > columns) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  lines.push(line);
  return lines.join('\n');
}

/** Rows `text` takes on a terminal `columns` wide, its long lines wrapped. */
export function screenLines(text: string, columns: number): number {
  return text
    .replace(/\n$/, '')
    .split('\n')
    .reduce(
      (sum, line) =>
        sum + Math.max(1, Math.ceil(Array.from(stripVTControlCharacters(line)).length / columns)),
      0,
    );
}
