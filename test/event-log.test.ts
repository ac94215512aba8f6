import { describe, expect, it } from 'vitest';

import { createEventLog, type LogFormat, type LogLevel } from '../src/log/event-log.js';
import { log, setEventLog } from '../src/log/process-log.js';
import { HostBoard } from '../src/download/hosts.js';

function capture(format: LogFormat, textLevel?: LogLevel) {
  const lines: string[] = [];
  const eventLog = createEventLog({
    format,
    textLevel,
    sink: (line) => lines.push(line),
    now: () => new Date('2026-12-07T10:00:00.000Z'),
  });
  return { lines, eventLog };
}

describe('the event log', () => {
  it('writes one JSON object per event with time, level, event, msg and the defined fields', () => {
    const { lines, eventLog } = capture('json');
    eventLog.event(
      'host_paused',
      'paused a.example for 30 s',
      { host: 'a.example', gone: undefined },
      'warn',
    );
    expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual([
      {
        time: '2026-12-07T10:00:00.000Z',
        level: 'warn',
        event: 'host_paused',
        msg: 'paused a.example for 30 s',
        host: 'a.example',
      },
    ]);
  });

  it('shows in text only the levels from textLevel up, warnings with their level', () => {
    const { lines, eventLog } = capture('text', 'notice');
    eventLog.event('store_finished', 'store S1 completed');
    eventLog.event('report_written', 'report written to r.html', {}, 'notice');
    eventLog.event('host_paused', 'paused a.example', {}, 'warn');
    expect(lines).toEqual(['report written to r.html', 'warn: paused a.example']);
    expect(eventLog.wants('info')).toBe(false);
  });

  it('JSON lines keep every level, whatever textLevel says', () => {
    const { lines, eventLog } = capture('json', 'error');
    eventLog.event('store_finished', 'store S1 completed');
    expect(lines).toHaveLength(1);
    expect(eventLog.wants('info')).toBe(true);
  });

  it('the process log goes nowhere until a command sets it, and back to nowhere after', () => {
    const { lines, eventLog } = capture('json');
    log.event('before', 'not seen');
    setEventLog(eventLog);
    log.event('during', 'seen');
    setEventLog(undefined);
    log.event('after', 'not seen');
    expect(lines.map((line) => (JSON.parse(line) as { event: string }).event)).toEqual(['during']);
  });

  it('says host_paused once when a Retry-After pauses a host, not again when a later answer extends it; a later pause is info', () => {
    const { lines, eventLog } = capture('json');
    let now = 1_000;
    const board = new HostBoard({ perHost: 4, maxPauseMs: 30_000, now: () => now });
    setEventLog(eventLog);
    try {
      board.record('a.example', { ok: false, status: 429, retryAfterMs: 5_000 });
      now += 1_000;
      board.record('a.example', { ok: false, status: 503, retryAfterMs: 9_000 });
      board.record('b.example', { ok: false, status: 503, retryAfterMs: undefined });
      now += 10_000;
      board.record('a.example', { ok: false, status: 429, retryAfterMs: 2_000 });
      board.close();
    } finally {
      setEventLog(undefined);
    }
    expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual([
      expect.objectContaining({
        level: 'warn',
        event: 'host_paused',
        host: 'a.example',
        status: 429,
        seconds: 5,
        pause: 1,
      }),
      expect.objectContaining({
        level: 'info',
        event: 'host_paused',
        msg: 'paused a.example again (pause 2) for 2 s: HTTP 429 with Retry-After',
        pause: 2,
      }),
    ]);
  });

  it("shows a host's first pause on run's terminal, not the ones after it", () => {
    const { lines, eventLog } = capture('text', 'notice');
    let now = 1_000;
    const board = new HostBoard({ perHost: 4, maxPauseMs: 30_000, now: () => now });
    setEventLog(eventLog);
    try {
      for (let pause = 0; pause < 3; pause++) {
        board.record('a.example', { ok: false, status: 429, retryAfterMs: 1_000 });
        now += 2_000;
      }
      board.close();
    } finally {
      setEventLog(undefined);
    }
    expect(lines).toEqual(['warn: paused a.example for 1 s: HTTP 429 with Retry-After']);
  });
});
