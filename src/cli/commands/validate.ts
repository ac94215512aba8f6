import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

import type { Command } from 'commander';

import type { InputFormat } from '../../input/manifest-parser.js';
import type { JobInput } from '../../types.js';
import { withResultsFileHints } from '../hints.js';
import { inputFormatOption } from '../options.js';
import { EXIT, type CliIo } from '../io.js';
import { plural } from '../../utils/plural.js';

type ValidateFlags = { storeMaster?: string; json?: boolean; inputFormat?: InputFormat };

/** What `validate` learnt of one manifest. */
export type ManifestFacts = {
  readonly source: string;
  readonly visits: number;
  readonly stores: number;
  readonly images: number;
  /** Visits that joined the store of an earlier visit (same store_id). */
  readonly merged_visits: number;
  /** Images per host (`host:port`), most first. */
  readonly hosts: Readonly<Record<string, number>>;
  /** Store ids the store master does not know: `run` fails these stores. */
  readonly unknown_stores: readonly string[];
};

/**
 * `imgjob validate <manifests...>`: every check `run` makes before its first
 * download (manifest rules, stdin once, the store master), and nothing else:
 * no download, no results file. Exit 0 when `run` would start, 2 when not.
 */
export function addValidateCommand(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): Command {
  return program
    .command('validate')
    .description('check manifests as run would, and download nothing: stores, images, hosts')
    .argument('<manifests...>', 'manifest files (JSON, JSON Lines or CSV), or - for standard input')
    .addOption(inputFormatOption())
    .option('--store-master <csv>', 'also check the store ids against a store master')
    .option('--json', 'print what was found as JSON, one document per manifest and line')
    .action(async (manifests: string[], flags: ValidateFlags) => {
      setExit(await validateCommand(manifests, flags, io));
    });
}

async function validateCommand(
  manifests: string[],
  flags: ValidateFlags,
  io: CliIo,
): Promise<number> {
  const { readManifests } = await import('../../run/admission.js');
  // The same order as `run`: the store master first, then every manifest,
  // each problem reported (InputError → exit 2 in main).
  let storeMaster: ReadonlySet<string> | undefined;
  if (flags.storeMaster) {
    // Loaded on use: the CSV parser, for --store-master only.
    const { readStoreMaster } = await import('../../input/store-master.js');
    storeMaster = await readStoreMaster(flags.storeMaster);
  }
  const inputs = await readManifests(manifests, io.stdin, flags.inputFormat).catch(
    (error: unknown) => {
      throw withResultsFileHints(error, manifests);
    },
  );
  for (const input of inputs) {
    const facts = factsOf(input, storeMaster);
    io.stdout.write(
      flags.json ? `${JSON.stringify(facts)}\n` : describe(facts, resultsNote(input), flags),
    );
  }
  // For the tests and the benchmark: what reading the manifests cost at most.
  if (process.env.IMGJOB_STATS === '1') {
    const stats = { max_rss_kb: process.resourceUsage().maxRSS };
    io.stderr.write(`imgjob: stats ${JSON.stringify(stats)}\n`);
  }
  return EXIT.completed;
}

export function factsOf(input: JobInput, storeMaster?: ReadonlySet<string>): ManifestFacts {
  const hosts = new Map<string, number>();
  for (const store of input.stores) {
    for (const url of store.urls) {
      const host = new URL(url).host;
      hosts.set(host, (hosts.get(host) ?? 0) + 1);
    }
  }
  return {
    source: input.source,
    visits: input.visits.length,
    stores: input.stores.length,
    images: input.imageCount,
    merged_visits: input.visits.length - input.stores.length,
    hosts: Object.fromEntries([...hosts].sort((a, b) => b[1] - a[1])),
    unknown_stores: storeMaster
      ? input.stores.filter((store) => !storeMaster.has(store.storeId)).map((s) => s.storeId)
      : [],
  };
}

const HOSTS_SHOWN = 5;

function describe(facts: ManifestFacts, results: string | undefined, flags: ValidateFlags): string {
  const name = facts.source === '-' ? 'stdin' : facts.source;
  const merged =
    facts.merged_visits > 0
      ? ` (${plural(facts.merged_visits, 'visit')} merged into the store of an earlier visit)`
      : '';
  const hosts = Object.entries(facts.hosts);
  const hostText = hosts
    .slice(0, HOSTS_SHOWN)
    .map(([host, count]) => `${host} (${plural(count, 'image')})`)
    .join(', ');
  const moreHosts = hosts.length > HOSTS_SHOWN ? `, and ${hosts.length - HOSTS_SHOWN} more` : '';
  const lines = [
    `${name}: valid`,
    `  ${plural(facts.stores, 'store')}, ${plural(facts.images, 'image')}, ${plural(facts.visits, 'visit')}${merged}`,
    `  ${plural(hosts.length, 'host')}${hosts.length > 0 ? `: ${hostText}${moreHosts}` : ''}`,
  ];
  if (flags.storeMaster) {
    const unknown = facts.unknown_stores;
    lines.push(
      unknown.length === 0
        ? `  store master: every store is in it`
        : `  store master: ${plural(unknown.length, 'store')} not in it, which run fails: ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ', …' : ''}`,
    );
  }
  if (results) lines.push(`  ${results}`);
  return `${lines.join('\n')}\n`;
}

// Where `run` (without -o/--out-dir) would write, and whether it is taken.
function resultsNote(input: JobInput): string | undefined {
  if (input.source === '-') return undefined;
  const name = `${basename(input.source).replace(/\.json$/i, '')}.results.json`;
  const path = join(dirname(resolve(input.source)), name);
  return existsSync(path)
    ? `results: ${path} exists (run needs --resume, --retry-failed or --force)`
    : undefined;
}
