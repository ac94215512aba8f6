/**
 * Whether the pool's worker threads may take downloads now, by measured
 * load: a worker pays only when the main thread is saturated and a core is
 * idle for it, and only if the job then goes faster. On a machine whose
 * other core is busy (the image server on the same machine, other work) a
 * worker adds a heap, its messages and smaller socket reads to every byte,
 * and the job goes slower than on one thread.
 *
 * - `solo`: the main thread downloads alone (a worker started before takes
 *   no new work).
 * - `trial`: for two windows in a row the main thread was busy ≥ 90% of its
 *   time and the machine had ≥ 0.75 of a core idle (short of CPU). Workers
 *   take work for `TRIAL_MS`; then the bytes per second downloaded are
 *   compared with the last two solo windows.
 * - straight to `on`: the main thread was not saturated but had all its
 *   connections in use ≥ 75% of a window (short of connections: its share
 *   of `perHost` is smaller than one thread's would be, far servers). The
 *   workers' connections are the gain, and a thread with time to spare pays
 *   the hand-off; without them the default would have half the connections
 *   of `--threads 1`.
 * - `on`: the trial downloaded ≥ 10% more per second: workers keep taking
 *   work. Otherwise back to `solo`, and the next trial waits 5 s, doubling up
 *   to a minute.
 *
 * The load is sampled as downloads complete (no timer of its own), once a
 * window: the main thread's event-loop utilisation, and the idle time of all
 * cores from `os.cpus()`.
 */
import { cpus } from 'node:os';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

export type GovernorMode = 'solo' | 'trial' | 'on';

/** One sample of the machine: idle and total CPU time over all cores (ms). */
export type CpuTimes = { readonly idle: number; readonly total: number };

/** What the governor reads; tests give their own. */
export type LoadProbe = {
  readonly now: () => number;
  /** The main thread's event-loop utilisation since `since` (as performance.eventLoopUtilization). */
  readonly loop: (since?: EventLoopUtilization) => EventLoopUtilization;
  readonly cpuTimes: () => CpuTimes;
};

const WINDOW_MS = 250;
const TRIAL_MS = 1000;
/** Busy share of the main thread's event loop from which it is saturated. */
const SATURATED = 0.9;
/** Idle cores the machine must have for a worker to start. */
const IDLE_CORES = 0.75;
/** Share of a window's time the main thread had all its connections in use. */
const CONNECTIONS_FULL = 0.75;
/** How much faster a trial must download for workers to stay. */
const GAIN = 1.1;
const FIRST_BACKOFF_MS = 5000;
const MAX_BACKOFF_MS = 60_000;

export const machineProbe: LoadProbe = {
  now: () => performance.now(),
  loop: (since) => performance.eventLoopUtilization(since),
  cpuTimes: () => {
    let idle = 0;
    let total = 0;
    for (const { times } of cpus()) {
      idle += times.idle;
      total += times.user + times.nice + times.sys + times.idle + times.irq;
    }
    return { idle, total };
  },
};

export class ThreadGovernor {
  readonly #probe: LoadProbe;
  readonly #cores: number;
  #mode: GovernorMode = 'solo';
  #bytes = 0;
  #windowStart: number;
  #windowBytes = 0;
  /** `fullMs()` at the window's start. */
  #windowFullMs = 0;
  readonly #fullMs: () => number;
  #loop: EventLoopUtilization;
  #cpu: CpuTimes;
  /** Solo windows in a row short of CPU or connections, and the bytes per ms over the last two. */
  #saturatedRun = 0;
  #soloRates: number[] = [];
  /** When the trial's measured part began (its first window starts the worker: not counted). */
  #trialStart: number | undefined;
  #trialBytes = 0;
  #soloRate = 0;
  #nextTrialAt = 0;
  #backoffMs = FIRST_BACKOFF_MS;

  /**
   * @param fullMs How long, in all, the main thread has had all its
   *   connections in use (ms, by `probe.now()`).
   */
  constructor(fullMs: () => number, probe: LoadProbe = machineProbe) {
    this.#probe = probe;
    this.#fullMs = fullMs;
    this.#cores = Math.max(1, cpus().length);
    this.#windowStart = probe.now();
    this.#loop = probe.loop();
    this.#cpu = probe.cpuTimes();
  }

  get mode(): GovernorMode {
    return this.#mode;
  }

  /** Whether workers may take downloads now. */
  get workersWanted(): boolean {
    return this.#mode !== 'solo';
  }

  /** A download completed with `bytes` of body (on any thread). */
  completed(bytes: number): void {
    this.#bytes += bytes;
    this.#windowBytes += bytes;
    const now = this.#probe.now();
    const elapsed = now - this.#windowStart;
    if (elapsed >= WINDOW_MS) this.#endWindow(now, elapsed);
  }

  #endWindow(now: number, elapsed: number): void {
    const loop = this.#probe.loop(this.#loop);
    this.#loop = this.#probe.loop();
    const cpu = this.#probe.cpuTimes();
    const total = cpu.total - this.#cpu.total;
    const idleCores = total > 0 ? ((cpu.idle - this.#cpu.idle) / total) * this.#cores : 0;
    this.#cpu = cpu;
    const rate = this.#windowBytes / elapsed;
    const fullMs = this.#fullMs();
    const full = fullMs - this.#windowFullMs >= CONNECTIONS_FULL * elapsed;
    this.#windowFullMs = fullMs;
    this.#windowBytes = 0;
    this.#windowStart = now;
    switch (this.#mode) {
      case 'solo': {
        const saturated = loop.utilization >= SATURATED;
        if (!saturated && full) {
          // Short of connections with CPU to spare: the workers' shares are
          // the gain, and the hand-off costs a thread that has time for it.
          this.#mode = 'on';
          return;
        }
        const short = saturated && idleCores >= IDLE_CORES;
        this.#saturatedRun = short ? this.#saturatedRun + 1 : 0;
        this.#soloRates = short ? [...this.#soloRates.slice(-1), rate] : [];
        if (this.#saturatedRun >= 2 && now >= this.#nextTrialAt) {
          this.#soloRate = (this.#soloRates[0] ?? rate) / 2 + rate / 2;
          this.#mode = 'trial';
          this.#trialStart = undefined;
        }
        return;
      }
      case 'trial': {
        if (this.#trialStart === undefined) {
          this.#trialStart = now;
          this.#trialBytes = this.#bytes;
          return;
        }
        if (now - this.#trialStart < TRIAL_MS) return;
        const trialRate = (this.#bytes - this.#trialBytes) / (now - this.#trialStart);
        if (trialRate >= this.#soloRate * GAIN) {
          this.#mode = 'on';
          return;
        }
        this.#mode = 'solo';
        this.#saturatedRun = 0;
        this.#soloRates = [];
        this.#nextTrialAt = now + this.#backoffMs;
        this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
        return;
      }
      default:
    }
  }
}
