/**
 * imgjob's own Redis scripts, laid out as BullMQ lays out its own: one file
 * per script in `lua/` beside this module, named `<name>-<number of
 * keys>.lua`, opening with a comment that names every KEYS and ARGV entry.
 *
 * They are read at run time from beside whichever copy of this module runs:
 * `src/queue/lua/` under the tests, `dist/queue/lua/` for tsc's output (the
 * library) and `dist/lua/` for the bundled command line, whose chunks sit at
 * `dist/` (`scripts/lua-files.js` copies them there at build time).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { Redis } from 'ioredis';

/** The scripts in `lua/`, by file name. */
export type ScriptFile = 'report-3' | 'claimLease-1' | 'releaseLease-1';

/**
 * Runs the script on its connection: `keys` fill KEYS (as many as the file
 * name says), `args` fill ARGV. EVALSHA, then EVAL if Redis does not know the
 * script (a restart, a failover).
 */
export type RedisScript<Answer> = (
  keys: readonly string[],
  args: readonly (string | number)[],
) => Promise<Answer>;

const texts = new Map<ScriptFile, string>();

/**
 * The script `file` on `redis`. A missing file is an incomplete installation
 * (a bug of the package): it throws at once, not at the first report.
 */
export function redisScript<Answer>(redis: Redis, file: ScriptFile): RedisScript<Answer> {
  const [name = file, keys] = file.split('-');
  const numberOfKeys = Number(keys);
  const command = `imgjob_${name}`;
  if (!(command in redis)) {
    redis.defineCommand(command, { numberOfKeys, lua: scriptText(file) });
  }
  const run = (
    redis as unknown as Record<string, (...args: (string | number)[]) => Promise<Answer>>
  )[command];
  if (run === undefined) throw new Error(`ioredis did not define the command ${command}`);
  return (keyList, args) => {
    if (keyList.length !== numberOfKeys) {
      throw new Error(`${file}.lua takes ${numberOfKeys} key(s), given ${keyList.length}`);
    }
    return run.call(redis, ...keyList, ...args);
  };
}

function scriptText(file: ScriptFile): string {
  let text = texts.get(file);
  if (text === undefined) {
    const url = new URL(`./lua/${file}.lua`, import.meta.url);
    try {
      text = readFileSync(url, 'utf8');
    } catch (error) {
      throw new Error(
        `imgjob's Redis script ${fileURLToPath(url)} is missing: this installation of imgjob is incomplete`,
        { cause: error },
      );
    }
    texts.set(file, text);
  }
  return text;
}
