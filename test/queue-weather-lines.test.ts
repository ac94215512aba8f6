/**
 * What the queue says of Redis's condition: each error reply a production
 * Redis gives for a while, and a lost connection, is weather to wait out,
 * said in one line when it starts or changes and one when it ends; anything
 * else is not weather. No Redis needed: these are the replies' texts.
 */
import { describe, expect, it } from 'vitest';

import { parseRedisUrl } from '../src/queue/redis-url.js';
import { conditionOf, describeCondition, RedisWeather } from '../src/queue/weather.js';

function replyError(message: string): Error {
  const error = new Error(message);
  error.name = 'ReplyError';
  return error;
}

function connectionError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 10.0.0.5:6379`), { code });
}

describe('conditionOf', () => {
  it('names the error replies a healthy Redis gives for a while, also from inside a script', () => {
    const replies: Record<string, string> = {
      "OOM command not allowed when used memory > 'maxmemory'.": 'answers OOM (maxmemory reached)',
      "READONLY You can't write against a read only replica.":
        'answers READONLY (it is a replica now: a failover?)',
      'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.':
        'answers MISCONF (it cannot save to its disk)',
      'LOADING Redis is loading the dataset in memory': 'answers LOADING (it is loading its data)',
      'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.':
        'answers BUSY (a script runs too long)',
      'NOSCRIPT No matching script. Please use EVAL.': 'answers NOSCRIPT (it lost its scripts)',
      "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.":
        'answers MASTERDOWN (the replica lost its master)',
      "ERR Error running script (call to f_1234): @user_script:3: -OOM command not allowed when used memory > 'maxmemory'":
        'answers OOM (maxmemory reached)',
    };
    for (const [message, said] of Object.entries(replies)) {
      const condition = conditionOf(replyError(message));
      expect(condition, message).toBeDefined();
      if (condition) expect(describeCondition(condition)).toBe(said);
    }
  });

  it('takes a lost or refused connection as weather, and other errors not', () => {
    expect(conditionOf(connectionError('ECONNREFUSED'))).toEqual({
      kind: 'unreachable',
      code: 'ECONNREFUSED',
    });
    expect(conditionOf(new Error('Connection is closed.'))).toEqual({
      kind: 'unreachable',
      code: 'connection closed',
    });
    for (const message of [
      'BUSYGROUP Consumer Group name already exists',
      'NOGROUP No such key or consumer group',
      'ERR wrong number of arguments',
      'Missing lock for job 1',
    ]) {
      expect(conditionOf(replyError(message)), message).toBeUndefined();
    }
  });
});

describe('RedisWeather', () => {
  it('says one line when Redis turns bad, one when what it answers changes, and one when it is back', () => {
    const lines: string[] = [];
    const weather = new RedisWeather(
      parseRedisUrl('redis://:hunter2hunter2@10.0.0.5:6379/0'),
      (line) => lines.push(line),
    );
    expect(weather.observe(connectionError('ECONNREFUSED'))).toBe(true);
    expect(weather.observe(connectionError('ECONNREFUSED'))).toBe(true);
    expect(
      weather.observe(replyError("OOM command not allowed when used memory > 'maxmemory'.")),
    ).toBe(true);
    expect(weather.observe(replyError('ERR unknown command'))).toBe(false);
    weather.clear();
    weather.clear();
    expect(lines).toEqual([
      'Redis unreachable at 10.0.0.5:6379 (ECONNREFUSED); retrying',
      'Redis answers OOM (maxmemory reached): waiting',
      'Redis back after 0 s',
    ]);
    expect(weather.current).toBeUndefined();
    expect(weather.redact(new Error('WRONGPASS hunter2hunter2\n    at stack'))).toBe(
      'WRONGPASS ***',
    );
  });
});
