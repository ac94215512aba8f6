/**
 * `--queue` URLs are checked at the door, and their credentials never reach
 * a message (no Redis needed here).
 */
import { describe, expect, it } from 'vitest';

import { parseRedisUrl, redactText } from '../src/queue/redis-url.js';
import { InputError } from '../src/utils/errors.js';

function problemOf(text: string): string {
  try {
    parseRedisUrl(text);
  } catch (error) {
    if (error instanceof InputError) return error.message;
    throw error;
  }
  throw new Error(`${text} was accepted`);
}

describe('parseRedisUrl', () => {
  it('takes redis:// and rediss:// with a database number, naming them without credentials', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379/0')).toEqual({
      url: 'redis://127.0.0.1:6379/0',
      safe: 'redis://127.0.0.1:6379/0',
      tls: false,
      db: 0,
    });
    const tls = parseRedisUrl('rediss://app:s3cr3t-pw@cache.example.com:6380/2');
    expect(tls.tls).toBe(true);
    expect(tls.db).toBe(2);
    expect(tls.safe).toBe('rediss://***:***@cache.example.com:6380/2');
    expect(parseRedisUrl('redis://:only-pass@h/').safe).toBe('redis://:***@h/');
  });

  it('refuses other schemes, no host and a path that is not a database number, hiding the password', () => {
    expect(problemOf('http://:pw12345@h:6379/0')).toBe(
      '--queue: expected a redis:// or rediss:// URL, got `http://:***@h:6379/0`',
    );
    expect(problemOf('redis://:pw12345@h:6379/queue')).toContain('must be a database number');
    expect(problemOf('redis://:pw12345@h:6379/queue')).not.toContain('pw12345');
    expect(problemOf('not a url :pw12345@')).toMatch(/^--queue: expected a Redis URL/);
    expect(problemOf('redis://:pw%zz12@h:6379/0')).toBe(
      '--queue: the password in redis://:***@h:6379/0 holds a malformed %-escape: write a % in it as %25',
    );
  });

  it('hides a password given as a query parameter', () => {
    expect(parseRedisUrl('redis://h:6379/0?password=hunter2hunter2').safe).toBe(
      'redis://h:6379/0?password=***',
    );
  });
});

describe('redactText', () => {
  it('hides the password and user of the URL it is given, and any credentials in a Redis URL', () => {
    const url = 'redis://queue-user:hunter2hunter2@10.0.0.5:6379/0';
    expect(redactText('WRONGPASS for queue-user with hunter2hunter2', url)).toBe(
      'WRONGPASS for *** with ***',
    );
    expect(redactText('cannot use rediss://a:b@host:1/0 now')).toBe(
      'cannot use rediss://***:***@host:1/0 now',
    );
    expect(redactText('imgjob run m.json --queue redis://:pw@h:1/0?password=pw')).toBe(
      'imgjob run m.json --queue redis://:***@h:1/0?password=***',
    );
  });
});
