/**
 * One open server-sent-events response: writes events as the SSE format
 * wants them, and gives up on a client that stops reading (its buffer past
 * a limit) rather than hold the server's memory for it — the client comes
 * back with its Last-Event-ID and picks up where it was.
 */
import type { ServerResponse } from 'node:http';

/** Most bytes waiting for one slow client before it is dropped. */
const MAX_BUFFERED = 4 * 1024 * 1024;

export class EventStream {
  readonly topics: ReadonlySet<string>;
  readonly #res: ServerResponse;
  #open = true;

  constructor(res: ServerResponse, topics: ReadonlySet<string>, retryMs: number) {
    this.#res = res;
    this.topics = topics;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    res.socket?.setNoDelay(true);
    res.write(`retry: ${retryMs}\n\n`);
  }

  get open(): boolean {
    return this.#open && !this.#res.destroyed;
  }

  /** Writes text already in the SSE format (see `formatEvent`). */
  write(text: string): void {
    if (!this.open) return;
    if (this.#res.writableLength > MAX_BUFFERED) {
      this.#open = false;
      this.#res.destroy();
      return;
    }
    this.#res.write(text);
  }

  /** Ends the response; the last words (a `bye` event) first, when given. */
  end(last?: string): void {
    if (!this.open) return;
    this.#open = false;
    this.#res.end(last);
  }
}

/** An event in the SSE wire format; `data` is JSON, so it holds no newline. */
export function formatEvent(event: string, data: unknown, id?: string): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
