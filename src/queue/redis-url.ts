import { InputError } from '../utils/errors.js';

/** A checked Redis URL: what to connect to, and how to name it in messages. */
export type RedisTarget = {
  /** The URL as given: it may hold a password, so it is never printed. */
  readonly url: string;
  /** The URL with any user name and password replaced by `***`: for messages. */
  readonly safe: string;
  readonly tls: boolean;
};

/**
 * Checks a `--queue` URL at the door: `redis://` or `rediss://` (TLS), a
 * host, an optional database number. Its credentials never reach a message.
 */
export function parseRedisUrl(text: string): RedisTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw queueError(
      `--queue: expected a Redis URL like redis://host:6379/0 or rediss://:password@host:6380, got \`${redactText(text)}\``,
    );
  }
  const safe = redactUrl(url);
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw queueError(`--queue: expected a redis:// or rediss:// URL, got \`${safe}\``);
  }
  if (url.hostname === '') throw queueError(`--queue: ${safe} names no host`);
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,5}$/.test(db)) {
    throw queueError(`--queue: the path of ${safe} must be a database number (/0), got \`/${db}\``);
  }
  return { url: text, safe, tls: url.protocol === 'rediss:' };
}

/** `redis://:***@host:6379/0`: the URL with its credentials hidden. */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.username !== '') copy.username = '***';
  if (copy.password !== '') copy.password = '***';
  return copy.href;
}

/**
 * Hides anything that looks like credentials in free text: a message from
 * the Redis client may quote the URL it was given.
 */
export function redactText(text: string, secretUrl?: string): string {
  let out = text;
  if (secretUrl) {
    try {
      const url = new URL(secretUrl);
      for (const secret of [url.password, decodeURIComponent(url.password), url.username]) {
        if (secret.length >= 3) out = out.split(secret).join('***');
      }
    } catch {
      // Not a URL: nothing more to hide than the pattern below finds.
    }
  }
  return out.replace(/(rediss?:\/\/)[^@\s/]*@/gi, '$1***@');
}

export function queueError(message: string): InputError {
  return new InputError('E_QUEUE', message);
}
