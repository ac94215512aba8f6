/**
 * The thread pool's governor: workers take downloads only while the main
 * thread is saturated and a core is idle, and keep them only when the job
 * then goes faster. Driven by a probe of its own: a clock, the main thread's
 * event-loop utilisation and the machine's idle time, as the test sets them.
 */
import { cpus } from 'node:os';
import type { EventLoopUtilization } from 'node:perf_hooks';

import { describe, expect, it } from 'vitest';

import { ThreadGovernor, type LoadProbe } from '../src/download/threads/governor.js';

/** A machine whose main-thread busy share and idle cores the test sets for each window. */
function machine() {
  const cores = Math.max(1, cpus().length);
  const state = { now: 0, active: 0, idle: 0, cpuIdle: 0, cpuTotal: 0, fullMs: 0 };
  const probe: LoadProbe = {
    now: () => state.now,
    loop: (since?: EventLoopUtilization) => {
      const now = { idle: state.idle, active: state.active, utilization: 0 };
      if (!since) return now;
      const idle = now.idle - since.idle;
      const active = now.active - since.active;
      return { idle, active, utilization: active / (idle + active || 1) };
    },
    cpuTimes: () => ({ idle: state.cpuIdle, total: state.cpuTotal }),
  };
  return {
    probe,
    /** Time the main thread had all its connections in use. */
    fullMs: () => state.fullMs,
    /** `ms` pass with the main thread `busy` (0–1), `idleCores` idle, `bytes` downloaded, its connections all in use or not. */
    pass: (
      governor: ThreadGovernor,
      ms: number,
      load: { busy: number; idleCores: number },
      bytes: number,
      mainFull = false,
    ): void => {
      state.now += ms;
      state.active += ms * load.busy;
      state.idle += ms * (1 - load.busy);
      state.cpuTotal += ms * cores;
      state.cpuIdle += ms * load.idleCores;
      if (mainFull) state.fullMs += ms;
      governor.completed(bytes);
    },
  };
}

const SATURATED_IDLE_CORE = { busy: 0.97, idleCores: 1 };

describe('the thread governor', () => {
  it('keeps workers off while the main thread has time to spare, or no core is idle', () => {
    const { probe, fullMs, pass } = machine();
    const governor = new ThreadGovernor(fullMs, probe);
    for (let window = 0; window < 8; window++)
      pass(governor, 250, { busy: 0.5, idleCores: 1 }, 1e6);
    expect(governor.mode).toBe('solo');
    for (let window = 0; window < 8; window++)
      pass(governor, 250, { busy: 0.99, idleCores: 0.3 }, 1e6);
    expect(governor.mode).toBe('solo');
    expect(governor.workersWanted).toBe(false);
  });

  it('tries workers once the main thread is saturated with a core idle, and keeps them when the job goes faster', () => {
    const { probe, fullMs, pass } = machine();
    const governor = new ThreadGovernor(fullMs, probe);
    pass(governor, 250, SATURATED_IDLE_CORE, 1e6);
    expect(governor.mode).toBe('solo');
    pass(governor, 250, SATURATED_IDLE_CORE, 1e6);
    expect(governor.mode).toBe('trial');
    expect(governor.workersWanted).toBe(true);
    // The trial: 1.5× the solo rate for over a second.
    for (let window = 0; window < 6; window++) pass(governor, 250, SATURATED_IDLE_CORE, 1.5e6);
    expect(governor.mode).toBe('on');
  });

  it('takes work back from workers that do not pay, and tries again only after a back-off', () => {
    const { probe, fullMs, pass } = machine();
    const governor = new ThreadGovernor(fullMs, probe);
    pass(governor, 250, SATURATED_IDLE_CORE, 1e6);
    pass(governor, 250, SATURATED_IDLE_CORE, 1e6);
    expect(governor.mode).toBe('trial');
    // The trial is no faster: the other core was not free after all.
    for (let window = 0; window < 6; window++) pass(governor, 250, SATURATED_IDLE_CORE, 1e6);
    expect(governor.mode).toBe('solo');
    // Saturated with a core idle again, but within the 5 s back-off: still alone.
    for (let window = 0; window < 8; window++) pass(governor, 250, SATURATED_IDLE_CORE, 1e6);
    expect(governor.mode).toBe('solo');
    for (let window = 0; window < 12; window++) pass(governor, 250, SATURATED_IDLE_CORE, 1e6);
    expect(governor.mode).toBe('trial');
  });
  it('gives workers work at once when the main thread is short of connections rather than CPU', () => {
    const { probe, fullMs, pass } = machine();
    const governor = new ThreadGovernor(fullMs, probe);
    const waiting = { busy: 0.3, idleCores: 0 };
    // Far servers: the main thread mostly waits, with all its connections in use.
    pass(governor, 250, waiting, 1e6);
    expect(governor.mode).toBe('solo');
    pass(governor, 250, waiting, 1e6, true);
    expect(governor.mode).toBe('on');
  });

  it('does not try workers for connections while the main thread is saturated without an idle core', () => {
    const { probe, fullMs, pass } = machine();
    const governor = new ThreadGovernor(fullMs, probe);
    for (let window = 0; window < 8; window++) {
      pass(governor, 250, { busy: 0.99, idleCores: 0.1 }, 1e6, true);
    }
    expect(governor.mode).toBe('solo');
  });
});
