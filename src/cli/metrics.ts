/**
 * `--metrics-port` for `run` and `worker`: starts the endpoint, says where it
 * is, and hands back the tallies the command's pipeline counts into.
 * prom-client loads only here, only when the flag is given: `imgjob run`
 * without it starts as fast as ever.
 */
import type { EventLog } from '../log/event-log.js';
import type { MetricSources } from '../metrics/exposition.js';
import { Tallies } from '../metrics/tallies.js';
import type { MetricsServer } from '../metrics/server.js';
import type { MetricsFlags } from './options.js';

export type CommandMetrics = {
  readonly tallies: Tallies;
  close(): Promise<void>;
};

/** Undefined without `--metrics-port`. */
export async function startCommandMetrics(
  flags: MetricsFlags,
  log: EventLog,
  sources: () => Promise<MetricSources & { readonly close?: () => Promise<void> }>,
): Promise<CommandMetrics | undefined> {
  if (flags.metricsPort === undefined) return undefined;
  const from = await sources();
  const [{ createRegistry }, { startMetricsServer }] = await Promise.all([
    import('../metrics/exposition.js'),
    import('../metrics/server.js'),
  ]);
  const tallies = new Tallies();
  let server: MetricsServer;
  try {
    server = await startMetricsServer(
      createRegistry(tallies, from),
      flags.metricsHost,
      flags.metricsPort,
    );
  } catch (error) {
    await from.close?.();
    throw error;
  }
  // Tests and scripts read the address from this line (--metrics-port 0).
  log.event('metrics_listening', `metrics on ${server.url}`, { url: server.url }, 'notice');
  return {
    tallies,
    close: async () => {
      await server.close();
      await from.close?.();
    },
  };
}
