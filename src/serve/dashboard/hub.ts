/**
 * The live side of the dashboard: turns what changed into numbered events,
 * and writes each event once per subscribed stream. 50 open tabs cost 50
 * socket writes per change, not 50 database reads.
 *
 * Topics: `jobs` (rows of the jobs list that changed: one timer for the whole
 * server asks the database every `intervalMs` for the rows written since its
 * last look) and `job:<id>` (the store and image results of one job that
 * changed: the running job tells them as they happen, see job-watch.ts; a job
 * page costs nothing while its job is idle). A stream opens with a
 * `hello` event; one that came back with a `Last-Event-ID` the log still
 * covers gets what it missed, any other is told to load afresh
 * (`hello.resumed: false`). Comments keep idle streams alive; `close()`
 * ends every stream with a `bye` event.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { JobDelta } from '../../shared/api-shapes.js';
import type { ProgressSample } from '../../types.js';
import { withDefaults, type Defaults } from '../../utils/with-defaults.js';
import { SERVE_DEFAULTS } from '../defaults.js';
import { EventLog } from './event-log.js';
import { EventStream, formatEvent } from './event-stream.js';
import type { JobQuery, JobRow } from './job-query.js';
import { JobWatch, type JobChanges, type WatchedJob } from './job-watch.js';
import { clientAddress, StreamBudget } from './stream-budget.js';

export type JobSource = {
  /** The job if it runs now, to follow its changes. */
  running(id: number): WatchedJob | undefined;
};

export type HubOptions = {
  /** How often the jobs list is looked at. @default 500 */
  readonly intervalMs?: number | undefined;
  /**
   * Longest a running job's change waits before a job page hears of it: the
   * changes within it go out as one event. @default 250
   */
  readonly coalesceMs?: number | undefined;
  /** Comment lines on idle streams, so proxies and browsers keep them. @default 15000 */
  readonly heartbeatMs?: number | undefined;
  /** What browsers wait before they reconnect. @default 1000 */
  readonly retryMs?: number | undefined;
  /** Least time between two `jobs` events. @default 1000 */
  readonly jobsEveryMs?: number | undefined;
  /** How long a job is still watched after its last stream closed (for a resume). @default 120000 */
  readonly lingerMs?: number | undefined;
  /** Throughput samples kept per job (older ones are thinned out). @default 600 */
  readonly maxSamples?: number | undefined;
  /** Most streams one client address may hold (429 beyond). @default 16 */
  readonly maxStreamsPerClient?: number | undefined;
  /** Most streams over all clients (429 beyond). @default 256 */
  readonly maxStreams?: number | undefined;
  /**
   * A stream open this long is ended; the browser reconnects at once with its
   * Last-Event-ID and misses nothing. No connection is held for ever. @default 600000
   */
  readonly streamMaxAgeMs?: number | undefined;
};

/** Every hub option's default, laid under what the server is given. */
const HUB_DEFAULTS: Defaults<HubOptions> = {
  intervalMs: 500,
  coalesceMs: 250,
  heartbeatMs: 15_000,
  retryMs: 1000,
  jobsEveryMs: 1000,
  lingerMs: 120_000,
  maxSamples: 600,
  maxStreamsPerClient: SERVE_DEFAULTS.streams.maxPerClient,
  maxStreams: SERVE_DEFAULTS.streams.max,
  streamMaxAgeMs: SERVE_DEFAULTS.streams.maxAgeMs,
};

/** What a refused stream waits before it tries again, in seconds. */
const STREAM_RETRY_AFTER_S = 10;

export class EventHub {
  readonly #jobs: JobQuery;
  readonly #source: JobSource;
  readonly #log = new EventLog();
  readonly #streams = new Set<EventStream>();
  readonly #watches = new Map<number, JobWatch>();
  /** Watches without a stream, and since when: kept a while, so a client that comes back resumes. */
  readonly #unwatched = new Map<number, number>();
  readonly #lingerMs: number;
  readonly #samples = new Map<number, ProgressSample[]>();
  readonly #known = new Map<number, string>();
  readonly #retryMs: number;
  readonly #coalesceMs: number;
  readonly #maxSamples: number;
  readonly #budget: StreamBudget;
  readonly #maxAgeMs: number;
  readonly #ticker: NodeJS.Timeout;
  readonly #heartbeat: NodeJS.Timeout;
  #ongoing = new Set<number>();
  /** Job rows changed since the last `jobs` event. */
  readonly #unsent = new Map<number, JobRow>();
  readonly #jobsEveryMs: number;
  #jobsSentAt = 0;
  /** In the idle mode of `#idleTick`. */
  #idle = false;
  #sampledAt = 0;
  /** When the jobs were last looked at (epoch ms). */
  #lookedAt = 0;
  /** When a stream was last open (0: never). */
  #lastStreamAt = 0;
  #maxSeen: number;
  #closed = false;

  constructor(jobs: JobQuery, source: JobSource, given: HubOptions = {}) {
    const options = withDefaults(given, HUB_DEFAULTS);
    this.#jobs = jobs;
    this.#source = source;
    this.#retryMs = options.retryMs;
    this.#coalesceMs = options.coalesceMs;
    this.#maxSamples = options.maxSamples;
    this.#lingerMs = options.lingerMs;
    this.#jobsEveryMs = options.jobsEveryMs;
    this.#budget = new StreamBudget({
      perClient: options.maxStreamsPerClient,
      total: options.maxStreams,
    });
    this.#maxAgeMs = options.streamMaxAgeMs;
    // Jobs that were there before: only their ongoing ones are watched.
    this.#maxSeen = jobs.page({ limit: 1 }).jobs.map(idOf)[0] ?? 0;
    this.#ongoing = new Set(jobs.progress().map((job) => job.id));
    this.#ticker = setInterval(() => {
      this.tick();
    }, options.intervalMs).unref();
    this.#heartbeat = setInterval(() => {
      for (const stream of this.#streams) stream.write(': heartbeat\n\n');
    }, options.heartbeatMs).unref();
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  /** Throughput samples of a job seen running by this server. */
  samples(id: number): readonly ProgressSample[] {
    return this.#samples.get(id) ?? [];
  }

  /** A finished job taken up again (the page's Retry): followed again as an ongoing one. */
  reopened(id: number): void {
    this.#ongoing.add(id);
    // It runs on a new state: a page that watches it follows that one from now.
    this.#watches.get(id)?.close();
    this.#watches.delete(id);
    if (this.#unwatched.has(id) || this.#hasStream(id)) this.#watch(id);
  }

  /** Takes a request for `GET /api/events` over: it becomes a stream until either side ends it. */
  connect(
    req: IncomingMessage,
    res: ServerResponse,
    job: number | undefined,
    lastId: string | undefined,
  ): void {
    if (this.#closed) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
      res.end('{"error":"the server is shutting down"}\n');
      return;
    }
    const client = clientAddress(req.socket.remoteAddress);
    const refusal = this.#budget.take(client);
    if (refusal !== undefined) {
      res.writeHead(429, {
        'content-type': 'application/json; charset=utf-8',
        'retry-after': String(STREAM_RETRY_AFTER_S),
        'cache-control': 'no-store',
        // The connection goes too: a refused client keeps no socket of ours.
        connection: 'close',
      });
      res.end(`${JSON.stringify({ error: refusal.reason })}\n`);
      return;
    }
    // A job page needs its job only; the jobs list, the rows of the list.
    const topics = new Set([job === undefined ? 'jobs' : `job:${job}`]);
    this.#lastStreamAt = Date.now();
    // Watching from before the hello: nothing between the two goes unseen.
    if (job !== undefined) {
      this.#unwatched.delete(job);
      this.#watch(job);
    }
    const stream = new EventStream(res, topics, this.#retryMs);
    this.#streams.add(stream);
    const expiry = setTimeout(() => {
      stream.end();
    }, this.#maxAgeMs).unref();
    req.on('close', () => {
      clearTimeout(expiry);
      this.#budget.release(client);
      this.#streams.delete(stream);
      this.#lastStreamAt = Date.now();
      if (job !== undefined) this.#unwatchIfUnused(job);
    });
    const missed = lastId === undefined ? undefined : this.#log.since(lastId, topics);
    // A resumed stream's hello keeps the client's id: dropped again before the
    // replay arrived, it still resumes from there.
    const helloId = missed === undefined ? this.#log.lastId : (lastId ?? this.#log.lastId);
    stream.write(formatEvent('hello', { resumed: missed !== undefined }, helloId));
    for (const event of missed ?? []) stream.write(event.text);
  }

  /** Looks at the jobs list once and sends the job changes waiting; the timer calls it, tests may too. */
  tick(): void {
    if (this.#closed) return;
    const now = Date.now();
    if (this.#streams.size === 0 && now - this.#lastStreamAt > this.#lingerMs) {
      this.#idleTick(now);
      return;
    }
    this.#idle = false;
    // A second of overlap: a write stamped just before the last look is not missed.
    const since = new Date(this.#lookedAt - 1000).toISOString();
    this.#lookedAt = now;
    const rows = this.#jobs.changed(this.#maxSeen, [...this.#ongoing], since);
    const changed = this.#unsent;
    for (const row of rows) {
      const id = idOf(row);
      this.#maxSeen = Math.max(this.#maxSeen, id);
      const { done, failed, skipped } = row.counts;
      // Work done: a cancel skips thousands of images at once, and is no burst of speed.
      // A job that ended is sampled at its end, not whenever a look happens to see it.
      const at =
        row.status === 'ongoing'
          ? now
          : Math.min(now, Date.parse(row.finished_at ?? row.updated_at) || now);
      this.#sample(id, [at, done + failed]);
      if (row.status === 'ongoing') this.#ongoing.add(id);
      else this.#ongoing.delete(id);
      // updated_at moves with every write of the job, stores ending included.
      const key = `${row.status} ${done} ${failed} ${skipped} ${row.updated_at}`;
      if (this.#known.get(id) === key) continue;
      if (row.status === 'ongoing') this.#known.set(id, key);
      else this.#known.delete(id);
      changed.set(id, row);
    }
    if (changed.size > 0 && now - this.#jobsSentAt >= this.#jobsEveryMs) {
      // The newest rows only: a list shows a page of them, and a client told
      // there was `more` reloads its page (at most once a second).
      const rows = [...changed.values()].sort(newestFirst);
      const sent = this.#jobs.withStoresDone(rows.slice(0, MAX_ROWS));
      this.#publish('jobs', 'jobs', {
        jobs: sent,
        more: rows.length - sent.length,
        totals: this.#jobs.totals(),
      });
      changed.clear();
      this.#jobsSentAt = now;
    }
    for (const [id, since] of this.#unwatched) {
      if (now - since < this.#lingerMs) continue;
      this.#unwatched.delete(id);
      this.#watches.get(id)?.close();
      this.#watches.delete(id);
    }
    for (const watch of this.#watches.values()) watch.flush();
  }

  /**
   * Nobody has watched for a while: only the throughput samples, once a
   * second, from one small query — a server without viewers pays next to
   * nothing. No events are made, so no stream can resume across this time.
   */
  #idleTick(now: number): void {
    if (!this.#idle) {
      this.#idle = true;
      this.#log.gap();
      this.#unsent.clear();
      this.#known.clear();
      for (const watch of this.#watches.values()) watch.close();
      this.#watches.clear();
      this.#unwatched.clear();
    }
    if (now - this.#sampledAt < 1000) return;
    this.#sampledAt = now;
    this.#lookedAt = now;
    const ongoing = new Set<number>();
    for (const { id, finished } of this.#jobs.progress()) {
      this.#sample(id, [now, finished]);
      ongoing.add(id);
    }
    this.#ongoing = ongoing;
  }

  /** Ends every stream with a `bye`; later connections get 503. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#ticker);
    clearInterval(this.#heartbeat);
    for (const watch of this.#watches.values()) watch.close();
    this.#watches.clear();
    const bye = formatEvent('bye', { reason: 'the server is shutting down' });
    for (const stream of this.#streams) stream.end(bye);
    this.#streams.clear();
  }

  /** Cuts every stream without a word, as a network drop would (tests of the resume). */
  dropStreams(): void {
    for (const stream of this.#streams) stream.end();
    this.#streams.clear();
  }

  #publish(topic: string, event: string, data: unknown): void {
    const logged = this.#log.append(topic, (id) => formatEvent(event, data, id));
    for (const stream of this.#streams) if (stream.topics.has(topic)) stream.write(logged.text);
  }

  /** Follows a job's changes (a job not running has none to follow). */
  #watch(id: number): void {
    if (this.#watches.has(id)) return;
    const job = this.#source.running(id);
    if (job === undefined || job.status !== 'ongoing') return;
    this.#watches.set(
      id,
      new JobWatch(job, this.#coalesceMs, (changes) => {
        this.#jobChanged(id, changes);
      }),
    );
  }

  #jobChanged(id: number, { changedAt, ...changes }: JobChanges): void {
    // Taken when the change happened: a job that ended is sampled at its end.
    const sample: ProgressSample = [changedAt, changes.counts.done + changes.counts.failed];
    this.#sample(id, sample);
    const delta: JobDelta = { ...changes, sample };
    this.#publish(`job:${id}`, 'job', delta);
  }

  #unwatchIfUnused(id: number): void {
    if (!this.#hasStream(id)) this.#unwatched.set(id, Date.now());
  }

  #hasStream(id: number): boolean {
    const topic = `job:${id}`;
    for (const stream of this.#streams) if (stream.topics.has(topic)) return true;
    return false;
  }

  #sample(id: number, sample: ProgressSample): void {
    let samples = this.#samples.get(id);
    // Times only move forward: an ended job's sample may predate the last
    // look, whose time then takes its count.
    const last = samples?.at(-1);
    if (samples !== undefined && last !== undefined && sample[0] <= last[0]) {
      samples[samples.length - 1] = [last[0], sample[1]];
      return;
    }
    if (samples === undefined) {
      samples = [];
      this.#samples.set(id, samples);
      // Bounded memory: only the samples of the most recent jobs are kept.
      if (this.#samples.size > 500)
        this.#samples.delete(this.#samples.keys().next().value as number);
    }
    samples.push(sample);
    // Thin out to every other sample: the chart keeps its span at half the detail.
    if (samples.length > this.#maxSamples)
      this.#samples.set(
        id,
        samples.filter((_, i) => i % 2 === 0 || i === samples.length - 1),
      );
  }
}

/** Most job rows one `jobs` event carries. */
const MAX_ROWS = 50;

function newestFirst(a: JobRow, b: JobRow): number {
  return idOf(b) - idOf(a);
}

function idOf(row: JobRow): number {
  return Number(row.job_id);
}
