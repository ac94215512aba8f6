/**
 * The network flags of every command that downloads (`run`, `serve`,
 * `worker`): the proxy and curl's low-speed limit.
 */
import { Option, type Command } from 'commander';

import { proxySettings, type ProxySettings } from '../download/proxy.js';
import type { SpeedLimit } from '../download/attempt.js';
import { intOption } from './options.js';

/** What commander hands over for them. */
export type NetworkFlags = {
  proxy?: string;
  noProxy?: string;
  speedLimit?: number;
  speedTime?: number;
};

/** curl's defaults: `--speed-time` alone means under 1 byte/s; `--speed-limit` alone, for 30 s. */
const SPEED_DEFAULTS = { bytesPerSecond: 1, seconds: 30 } as const;

export function addNetworkOptions(command: Command): Command {
  // Commander reads any `--no-…` as the negation of another flag: this one is a flag of its own.
  const noProxy = new Option(
    '--no-proxy <list>',
    'hosts reached without the proxy: example.com,.example.org,host:8080 or * (default: NO_PROXY/no_proxy)',
  );
  noProxy.negate = false;
  return command
    .option(
      '--proxy <url>',
      'a proxy for every download: http://[user:password@]host:port, "" for none (default: HTTP_PROXY, HTTPS_PROXY, either case)',
    )
    .addOption(noProxy)
    .addOption(
      intOption(
        '--speed-limit <bytes/s>',
        `an attempt slower than this for --speed-time seconds is stopped and retried (curl's meaning)`,
        undefined,
        1,
      ),
    )
    .addOption(
      intOption(
        '--speed-time <s>',
        `seconds below --speed-limit before an attempt is stopped (default with --speed-limit: ${SPEED_DEFAULTS.seconds})`,
        undefined,
        1,
      ),
    );
}

/**
 * The downloader's network options of the flags and the environment.
 * @throws {InputError} `E_USAGE` for a proxy URL that cannot be used.
 */
export function networkOptionsOf(flags: NetworkFlags): {
  proxy: ProxySettings | undefined;
  speedLimit: SpeedLimit | undefined;
} {
  const limited = flags.speedLimit !== undefined || flags.speedTime !== undefined;
  return {
    proxy: proxySettings({ proxy: flags.proxy, noProxy: flags.noProxy }),
    speedLimit: limited
      ? {
          bytesPerSecond: flags.speedLimit ?? SPEED_DEFAULTS.bytesPerSecond,
          seconds: flags.speedTime ?? SPEED_DEFAULTS.seconds,
        }
      : undefined,
  };
}
