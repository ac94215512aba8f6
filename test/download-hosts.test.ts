import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { DnsCache, type Resolved } from '../src/download/dns-cache.js';
import { HostBoard, type Release } from '../src/download/hosts.js';

/** Whether `promise` has settled, after the microtasks queued so far. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await vi.advanceTimersByTimeAsync(0);
  return done;
}

/** A turn on `host`, once the board has given it (turns are given on the next turn of the loop). */
async function take(board: HostBoard, host: string, retry = false): Promise<Release> {
  const turn = board.turn(host, undefined, retry);
  await vi.advanceTimersByTimeAsync(0);
  return turn;
}

describe('HostBoard', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('pauses every turn on a host for its Retry-After, and only on that host', async () => {
    const board = new HostBoard({ perHost: 4, maxPauseMs: 30_000, defer: queueMicrotask });
    const first = await take(board, 'a.test');
    board.record('a.test', { ok: false, status: 429, retryAfterMs: 2000 });
    first();
    const waiting = board.turn('a.test', undefined, false);
    expect(await settled(board.turn('b.test', undefined, false))).toBe(true);
    expect(board.paused()).toEqual({ total: 1, by_status: { '429': 1 } });
    await vi.advanceTimersByTimeAsync(1999);
    expect(await settled(waiting)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled(waiting)).toBe(true);
    expect(board.paused().total).toBe(0);
  });

  it('caps a pause at maxPauseMs', async () => {
    const board = new HostBoard({ perHost: 4, maxPauseMs: 500, defer: queueMicrotask });
    board.record('a.test', { ok: false, status: 503, retryAfterMs: 3_600_000 });
    const waiting = board.turn('a.test', undefined, false);
    await vi.advanceTimersByTimeAsync(500);
    expect(await settled(waiting)).toBe(true);
  });

  it('halves a host’s concurrency on a 503 without Retry-After, regrows it by one per success, never above perHost', async () => {
    const board = new HostBoard({ perHost: 8, maxPauseMs: 30_000, defer: queueMicrotask });
    board.record('a.test', { ok: false, status: 503, retryAfterMs: undefined });
    const held: Release[] = [];
    for (let i = 0; i < 4; i++) held.push(await take(board, 'a.test'));
    const fifth = board.turn('a.test', undefined, false);
    expect(await settled(fifth)).toBe(false);
    board.record('a.test', { ok: true });
    expect(await settled(fifth)).toBe(true);
    // Down to 1 at the least, whatever the number of answers.
    for (let i = 0; i < 10; i++)
      board.record('a.test', { ok: false, status: 429, retryAfterMs: undefined });
    for (const release of held) release();
    (await fifth)();
    const one = await take(board, 'a.test');
    const two = board.turn('a.test', undefined, false);
    expect(await settled(two)).toBe(false);
    one();
    expect(await settled(two)).toBe(true);
    for (let i = 0; i < 20; i++) board.record('a.test', { ok: true });
    const all: Release[] = [await two];
    for (let i = 0; i < 7; i++) all.push(await take(board, 'a.test'));
    expect(await settled(board.turn('a.test', undefined, false))).toBe(false);
  });

  it('gives a retry the first turn after a pause, before the requests queued behind it', async () => {
    const board = new HostBoard({ perHost: 1, maxPauseMs: 30_000, defer: queueMicrotask });
    const order: string[] = [];
    const first = await take(board, 'a.test');
    board.record('a.test', { ok: false, status: 429, retryAfterMs: 1000 });
    first();
    const queued = board.turn('a.test', undefined, false).then((release) => {
      order.push('queued');
      release();
    });
    const retry = board.turn('a.test', undefined, true).then((release) => {
      order.push('retry');
      release();
    });
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all([queued, retry]);
    expect(order).toEqual(['retry', 'queued']);
    expect(board.summary()).toEqual([
      { host: 'a.test', requests: 1, status_429: 1, status_503: 0 },
    ]);
  });
});

describe('DnsCache', () => {
  it('looks a name up once per TTL, shares a lookup in flight, and keeps a failure for 5 s', async () => {
    let now = 0;
    const asked: string[] = [];
    const cache = new DnsCache({
      now: () => now,
      resolve: (hostname): Promise<Resolved> => {
        asked.push(hostname);
        if (hostname === 'gone.test') return Promise.reject(new Error('ENOTFOUND gone.test'));
        return Promise.resolve({ addresses: [{ address: '127.0.0.9', family: 4 }], ttlMs: 60_000 });
      },
    });
    await Promise.all([cache.resolve('a.test'), cache.resolve('A.test'), cache.resolve('a.test')]);
    now = 59_999;
    await cache.resolve('a.test');
    expect(asked).toEqual(['a.test']);
    now = 60_000;
    await cache.resolve('a.test');
    expect(asked).toEqual(['a.test', 'a.test']);
    await expect(cache.resolve('gone.test')).rejects.toThrow('ENOTFOUND');
    now += 4_999;
    await expect(cache.resolve('gone.test')).rejects.toThrow('ENOTFOUND');
    expect(asked.filter((name) => name === 'gone.test')).toHaveLength(1);
    now += 1;
    await expect(cache.resolve('gone.test')).rejects.toThrow('ENOTFOUND');
    expect(asked.filter((name) => name === 'gone.test')).toHaveLength(2);
    expect(cache.lookups).toBe(4);
  });
});
