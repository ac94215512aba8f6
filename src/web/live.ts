/**
 * The tab's one live connection: a single EventSource at a time, on the
 * topics of the view shown. A view gives `load` (fetch its data afresh) and
 * handlers for events; events that come while `load` runs wait and are
 * applied after it, so nothing between the snapshot and the stream is lost.
 *
 * - `hello {resumed: false}`: the view loads afresh; `resumed: true` means
 *   the server sends what was missed (Last-Event-ID).
 * - Paused closes the stream and keeps the last id; Live reopens with it, so
 *   the server replays what happened meanwhile (or says to load afresh).
 * - No EventSource, or a stream that keeps failing: poll `load` instead.
 * - `bye`: the server is shutting down; try again a little later.
 */
import type { JobDelta, JobRow, Overview } from './model.js';

export type LiveView = {
  /** `GET /api/events?job=<id>` when set: that job's events too. */
  readonly job?: string | undefined;
  load(): Promise<void>;
  /** `more`: rows that changed too but were not sent (only the newest are). */
  onJobs?(rows: readonly JobRow[], more: number, totals: Overview['totals'] | undefined): void;
  onJob?(delta: JobDelta): void;
};

export type ConnectionState = 'live' | 'connecting' | 'polling' | 'paused' | 'offline';

const POLL_MS = 2000;
/** Failures in a row, without a hello between them, before polling takes over. */
const FAILURES_BEFORE_POLLING = 3;

export class Live {
  #view: LiveView | undefined;
  #source: EventSource | undefined;
  #lastId: string | undefined;
  #paused = false;
  #failures = 0;
  #poll: number | undefined;
  #retry: number | undefined;
  #loading = false;
  #again = false;
  #queue: MessageEvent<string>[] = [];
  readonly #onState: (state: ConnectionState) => void;

  constructor(onState: (state: ConnectionState) => void) {
    this.#onState = onState;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Shows `view`: loads it, then follows it live (unless paused). */
  show(view: LiveView): void {
    this.#stop();
    this.#view = view;
    this.#lastId = undefined;
    this.#failures = 0;
    // Live, the stream's hello triggers the load: a snapshot taken after the
    // stream began misses nothing that the stream does not carry.
    if (!this.#paused) this.#connect();
    else {
      void this.#load();
      this.#onState('paused');
    }
  }

  /** Loads the view afresh (after it acted on its job); events meanwhile wait and follow. */
  reload(): Promise<void> {
    return this.#load();
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#stop();
    this.#onState('paused');
  }

  /** Back to live: the server replays what was missed since the last event seen. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#lastId === undefined) void this.#load();
    this.#connect();
  }

  #connect(): void {
    const view = this.#view;
    if (view === undefined) return;
    if (typeof EventSource === 'undefined') {
      this.#startPolling();
      return;
    }
    const params = new URLSearchParams();
    if (view.job !== undefined) params.set('job', view.job);
    // A new EventSource sends no Last-Event-ID header: the id goes in the query.
    if (this.#lastId !== undefined) params.set('last_event_id', this.#lastId);
    const query = params.toString();
    const source = new EventSource(`/api/events${query ? `?${query}` : ''}`);
    this.#source = source;
    this.#onState('connecting');
    source.addEventListener('hello', (event) => {
      this.#failures = 0;
      this.#stopPolling();
      this.#onState('live');
      const { resumed } = JSON.parse(event.data as string) as { resumed: boolean };
      this.#lastId = event.lastEventId || this.#lastId;
      if (!resumed) void this.#load();
    });
    for (const name of ['jobs', 'job'] as const) {
      source.addEventListener(name, (event) => {
        this.#receive(event as MessageEvent<string>);
      });
    }
    source.addEventListener('bye', () => {
      this.#stop();
      this.#onState('offline');
      this.#retry = window.setTimeout(() => {
        this.#connect();
      }, 3000);
    });
    source.addEventListener('error', () => {
      if (source !== this.#source) return;
      this.#failures++;
      if (source.readyState === EventSource.CLOSED || this.#failures >= FAILURES_BEFORE_POLLING) {
        source.close();
        this.#source = undefined;
        this.#startPolling();
        // Keep trying the stream now and then: polling is the fallback, not the plan.
        this.#retry = window.setTimeout(() => {
          this.#failures = 0;
          this.#connect();
        }, 10_000);
      } else this.#onState('connecting');
    });
  }

  #receive(event: MessageEvent<string>): void {
    if (event.lastEventId) this.#lastId = event.lastEventId;
    if (this.#loading) this.#queue.push(event);
    else this.#apply(event);
  }

  #apply(event: MessageEvent<string>): void {
    const data = JSON.parse(event.data) as unknown;
    if (event.type === 'jobs') {
      const { jobs, more, totals } = data as {
        jobs: JobRow[];
        more?: number;
        totals?: Overview['totals'];
      };
      this.#view?.onJobs?.(jobs, more ?? 0, totals);
    } else if (event.type === 'job') this.#view?.onJob?.(data as JobDelta);
  }

  async #load(): Promise<void> {
    const view = this.#view;
    if (view === undefined) return;
    if (this.#loading) {
      this.#again = true;
      return;
    }
    this.#loading = true;
    try {
      await view.load();
    } catch {
      this.#onState('offline');
    } finally {
      this.#loading = false;
      const queued = this.#queue.splice(0);
      if (view === this.#view) for (const event of queued) this.#apply(event);
      if (this.#again) {
        this.#again = false;
        void this.#load();
      }
    }
  }

  #startPolling(): void {
    this.#onState('polling');
    this.#poll ??= window.setInterval(() => {
      void this.#load();
    }, POLL_MS);
  }

  #stopPolling(): void {
    window.clearInterval(this.#poll);
    this.#poll = undefined;
  }

  #stop(): void {
    this.#source?.close();
    this.#source = undefined;
    this.#stopPolling();
    window.clearTimeout(this.#retry);
    this.#queue = [];
  }
}
