import { InputError } from '../utils/errors.js';

/** A checked Redis URL: what to connect to, and how to name it in messages. */
export type RedisTarget = {
  /** The URL as given: it may hold a password, so it is never printed. */
  readonly url: string;
  /** The URL with any user name and password replaced by `***`: for messages. */
  readonly safe: string;
  readonly tls: boolean;
  /** The database number (the URL's path; 0 when it has none). */
  readonly db: number;
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
  for (const [part, value] of [
    ['user name', url.username],
    ['password', url.password],
  ] as const) {
    if (!decodes(value)) {
      throw queueError(
        `--queue: the ${part} in ${safe} holds a malformed %-escape: write a % in it as %25`,
      );
    }
  }
  return { url: text, safe, tls: url.protocol === 'rediss:', db: db === '' ? 0 : Number(db) };
}

/** `redis://:***@host:6379/0`: the URL with its credentials hidden. */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.username !== '') copy.username = '***';
  if (copy.password !== '') copy.password = '***';
  // ioredis also takes them as query parameters: `?password=…`.
  for (const name of [...copy.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) copy.searchParams.set(name, '***');
  }
  return copy.href.replace(/%2A%2A%2A/g, '***');
}

const SECRET_PARAM = /^(password|pass|username|user)$/i;

/**
 * Hides anything that looks like credentials in free text: a message from
 * the Redis client may quote the URL it was given.
 */
export function redactText(text: string, secretUrl?: string): string {
  let out = text;
  if (secretUrl) {
    try {
      const url = new URL(secretUrl);
      const decoded = decodes(url.password) ? decodeURIComponent(url.password) : url.password;
      for (const secret of [url.password, decoded, url.username]) {
        if (secret.length >= 3) out = out.split(secret).join('***');
      }
    } catch {
      // Not a URL: nothing more to hide than the pattern below finds.
    }
  }
  return out
    .replace(/(rediss?:\/\/)([^@\s/]*)@/gi, (_, scheme: string, credentials: string) => {
      const [user = '', password] = credentials.split(':');
      return `${scheme}${user === '' ? '' : '***'}${password === undefined ? '' : ':***'}@`;
    })
    .replace(/([?&](?:password|pass|username|user)=)[^&\s]*/gi, '$1***');
}

function decodes(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

export function queueError(message: string): InputError {
  return new InputError('E_QUEUE', message);
}
