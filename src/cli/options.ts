/**
 * The options `run` and `serve` share: one definition, so their flags,
 * defaults, help and messages cannot drift apart.
 */
import { availableParallelism } from 'node:os';

import { InvalidArgumentError, Option, type Command } from 'commander';

import { DOWNLOAD_DEFAULTS } from '../download/defaults.js';
import { formatGpuDelay, parseGpuDelay } from '../engine/gpu-delay.js';
import { RUN_DEFAULTS } from '../engine/run-options.js';
import { LOG_FORMATS } from '../log/event-log.js';
import { INPUT_FORMATS } from '../input/manifest-parser.js';
import type { GpuDelay } from '../types.js';
import { addNetworkOptions, networkOptionsOf, type NetworkFlags } from './network-options.js';

/** The flags' defaults are the library's own: `--help` shows what a library caller gets. */
export const DEFAULTS = {
  ...RUN_DEFAULTS,
  /** `--gpu-delay` as its help shows it. */
  gpuDelayText: formatGpuDelay(RUN_DEFAULTS.gpuDelay),
  /** Longest single backoff wait (also caps a server's Retry-After), in ms. */
  retryMaxMs: DOWNLOAD_DEFAULTS.retryMaxMs,
} as const;

/** The shared flags as commander hands them over. */
export type EngineFlags = NetworkFlags & {
  concurrency: number;
  gpuDelay: GpuDelay;
  seed?: number;
  storeMaster?: string;
  retries: number;
  retryWait: number;
  timeout: number;
  maxBytes: number;
  perHost: number;
  headerOnly?: boolean;
  threads: number;
};

/** Adds the processing options (concurrency, GPU, downloads) to a command. */
export function addEngineOptions(command: Command): Command {
  command
    .addOption(
      intOption(
        '-c, --concurrency <n>',
        'most stores in flight at once, over all jobs',
        DEFAULTS.concurrency,
        1,
      ),
    )
    .addOption(
      new Option('--gpu-delay <ms|min-max>', 'simulated GPU time per image; 0 turns it off')
        .default(DEFAULTS.gpuDelay, DEFAULTS.gpuDelayText)
        .argParser(gpuDelayArgument),
    )
    .addOption(intOption('--seed <n>', 'makes the random GPU delays reproducible', undefined, 0))
    .option(
      '--store-master <csv>',
      'validate store ids against a store master (AreaCode,StoreName,StoreID)',
    )
    .addOption(
      intOption(
        '--retries <n>',
        'retries of a transient failure (network error, timeout, 408, 429, 5xx)',
        DEFAULTS.retries,
        0,
      ),
    )
    .addOption(
      intOption(
        '--retry-wait <ms>',
        `backoff base: retry n waits a random time up to <ms> × 2^(n-1), each wait at most ${DEFAULTS.retryMaxMs / 1000} s`,
        DEFAULTS.retryBaseMs,
        0,
      ),
    )
    .addOption(
      intOption(
        '--timeout <ms>',
        'limit for one whole download attempt (connect, headers and body)',
        DEFAULTS.timeoutMs,
        1,
      ),
    )
    .addOption(
      intOption('--max-bytes <n>', 'largest image accepted, in bytes', DEFAULTS.maxBytes, 1),
    )
    .option('--header-only', 'read only the bytes the dimensions need (a Range request first)')
    .addOption(
      intOption('--per-host <n>', 'most connections open to one host at once', DEFAULTS.perHost, 1),
    )
    .addOption(threadsOption());
  return addNetworkOptions(command);
}

/** `--input-format`, for the commands that read manifests (`run`, `validate`). */
export function inputFormatOption(): Option {
  return new Option(
    '--input-format <form>',
    "the manifests' form (default: by extension: .jsonl JSON Lines, .csv CSV, else the Retail Pulse JSON)",
  ).choices(INPUT_FORMATS);
}

/** `--threads <n>`, for every command that downloads (`run`, `worker`). */
export function threadsOption(): Option {
  return intOption(
    '--threads <n>',
    'threads for downloads and measuring (1: all on the main thread)',
    undefined,
    1,
  ).default(availableParallelism(), 'one per core');
}

/** `--log-format <text|json>`: how the command writes its events on stderr. */
export function logFormatOption(description: string): Option {
  return new Option('--log-format <format>', description).choices(LOG_FORMATS).default('text');
}

/** `--queue-retention <duration>`: how long a stopped, unfinished queue job keeps its keys (`run`, `serve`). */
export function queueRetentionOption(description: string): Option {
  return durationOption('--queue-retention <duration>', description, '7d');
}

/** The flags `--metrics-port` and `--metrics-host` (`run`, `worker`). */
export type MetricsFlags = { metricsPort?: number; metricsHost: string };

/** `--metrics-port <n>`: Prometheus metrics while the command runs (`run`, `worker`). */
export function metricsPortOption(): Option {
  return intOption(
    '--metrics-port <n>',
    'serve Prometheus metrics on http://<metrics-host>:<n>/metrics while it runs (0 picks a free port)',
    undefined,
    0,
    65_535,
  );
}

/** `--metrics-host <address>`: where `--metrics-port` listens. */
export function metricsHostOption(): Option {
  return new Option(
    '--metrics-host <address>',
    'address of the metrics endpoint (0.0.0.0 for a Prometheus on another machine)',
  ).default('127.0.0.1');
}

/** The engine options of the flags, as `runJobs` and the server take them. */
export function engineOptionsOf(flags: EngineFlags) {
  return {
    concurrency: flags.concurrency,
    gpuDelay: flags.gpuDelay,
    seed: flags.seed,
    retries: flags.retries,
    retryBaseMs: flags.retryWait,
    timeoutMs: flags.timeout,
    maxBytes: flags.maxBytes,
    headerOnly: flags.headerOnly ?? false,
    perHost: flags.perHost,
    threads: flags.threads,
    ...networkOptionsOf(flags),
  };
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** A duration option: `90s`, `10m`, `2h`, `7d` (a bare number is seconds); its value is in ms. */
export function durationOption(flags: string, description: string, fallback: string): Option {
  const name = /--([\w-]+)/.exec(flags)?.[1] ?? flags;
  const parse = (text: string): number => {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?$/.exec(text.trim());
    const ms = match ? Number(match[1]) * (DURATION_UNITS[match[2] ?? 's'] ?? 1_000) : NaN;
    if (!Number.isFinite(ms) || ms <= 0) {
      throw new InvalidArgumentError(
        `Expected \`${name}\` to be a duration like 90s, 10m, 2h or 7d, got \`${text}\``,
      );
    }
    return Math.round(ms);
  };
  return new Option(flags, description).argParser(parse).default(parse(fallback), fallback);
}

/** A whole-number option, checked at the door in p-queue's manner. */
export function intOption(
  flags: string,
  description: string,
  fallback: number | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): Option {
  const name = /--([\w-]+)/.exec(flags)?.[1] ?? flags;
  const option = new Option(flags, description).argParser((text: string) => {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) {
      throw new InvalidArgumentError(
        `Expected \`${name}\` to be a whole number from ${min} and up, got \`${text}\``,
      );
    }
    if (value > max) {
      throw new InvalidArgumentError(
        `Expected \`${name}\` to be a whole number from ${min} to ${max}, got \`${text}\``,
      );
    }
    return value;
  });
  return fallback === undefined ? option : option.default(fallback);
}

function gpuDelayArgument(text: string): GpuDelay {
  const range = parseGpuDelay(text);
  const [min, max] = text.trim().split('-').map(Number);
  if (!range && min !== undefined && max !== undefined && min > max) {
    throw new InvalidArgumentError(
      `Expected \`gpu-delay\` as min-max with min at most max, got \`${text}\` (min ${min} is above max ${max})`,
    );
  }
  if (!range) {
    throw new InvalidArgumentError(
      `Expected \`gpu-delay\` as milliseconds (250) or a range (100-400), got \`${text}\``,
    );
  }
  return range;
}
