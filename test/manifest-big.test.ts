/**
 * A 200,000-image job read as a stream: the same job, with the same digest,
 * from each form, and a peak memory that the text a manifest carries does
 * not raise (a whole-document parse holds that text).
 *
 * @module-tag e2e
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { canonicalManifest, readManifest } from '../src/input/manifest.js';
import type { JobInput } from '../src/types.js';
import { runCli, stopAll } from './helpers/cli.js';
import { spell, type Visit } from './helpers/manifest-forms.js';

const dir = mkdtempSync(join(tmpdir(), 'imgjob-big-'));
afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('a 200,000-image job', () => {
  const visits: Visit[] = [];
  for (let visit = 0; visit < 20_000; visit++) {
    // Stores take turns, so a store's visits are apart in the file.
    const store = `S${String(visit % 2_000).padStart(5, '0')}`;
    const image_url = Array.from(
      { length: 10 },
      (_, k) => `http://127.0.0.1:9/img/${visit}/${k}.png?w=${k}`,
    );
    visits.push(
      visit % 7 === 0
        ? { store_id: store, image_url }
        : { store_id: store, image_url, visit_time: `2024-11-15T10:00:${visit}Z` },
    );
  }

  // Spelled once: the Retail Pulse JSON is also the plain manifest of the peak-memory case.
  const forms = spell(visits);
  const pathOf = (form: string): string => join(dir, `big.${form === 'rp' ? 'json' : form}`);
  beforeAll(() => {
    for (const [form, text] of Object.entries(forms)) writeFileSync(pathOf(form), text);
  });

  it('is the same job, with the same digest, in each form', async () => {
    const jobs = [];
    for (const form of Object.keys(forms)) jobs.push(await readManifest(pathOf(form)));
    const [rp, ...flat] = jobs as [JobInput, ...JobInput[]];
    expect(rp.imageCount).toBe(200_000);
    expect(rp.stores).toHaveLength(2_000);
    // The digest is the sha256 of the canonical manifest: the same visits, stores and URLs.
    for (const job of flat) expect(job.digest).toBe(rp.digest);
    // The same stores, images and visit times: a run of each gives the same
    // results. (By digest: deep equality of 200,000 URLs took seconds.)
    const stores = storesDigest(rp);
    for (const job of flat) expect(storesDigest(job)).toBe(stores);
    // …spelled as imgjob always spelled it: results files of earlier versions still resume.
    const sorted = visits.map(({ store_id, image_url, visit_time }) => ({
      image_url,
      store_id,
      visit_time,
    }));
    expect(canonicalManifest(rp)).toBe(JSON.stringify({ count: visits.length, visits: sorted }));
  });

  it('validates in a peak memory that the text a manifest carries does not raise', async () => {
    // The same job twice, the second with 1.5 KB of ignored text per visit
    // (30 MB in all). A whole-document parse holds that text at least once
    // (it measured +60 MB); a streamed one drops it as it goes.
    const plain = pathOf('rp');
    const noted = join(dir, 'noted.json');
    const note = 'n'.repeat(1_500);
    const notedVisits = visits.map((visit) => ({ ...visit, note }));
    writeFileSync(noted, JSON.stringify({ count: notedVisits.length, visits: notedVisits }));
    const peak = async (path: string): Promise<number> => {
      const { code, stdout, stderr } = await runCli(['validate', '--json', path], {
        env: { IMGJOB_STATS: '1' },
      });
      expect(code, stderr).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ images: 200_000 });
      const stats = /imgjob: stats (\{.*\})/.exec(stderr)?.[1] ?? '{}';
      return (JSON.parse(stats) as { max_rss_kb: number }).max_rss_kb / 1024;
    };
    const [plainMb, notedMb] = await Promise.all([peak(plain), peak(noted)]);
    expect(notedMb - plainMb).toBeLessThan(15);
  }, 30_000);
});

/** sha256 of a job's stores as JSON (a store's URLs as an array). */
function storesDigest(job: JobInput): string {
  return createHash('sha256').update(JSON.stringify(job.stores)).digest('hex');
}
