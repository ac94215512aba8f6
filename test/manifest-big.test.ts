/**
 * A 200,000-image job read as a stream: the same job, with the same digest,
 * from each form, and a peak memory that the text a manifest carries does
 * not raise (a whole-document parse holds that text).
 *
 * @module-tag e2e
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

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

  it('is the same job, with the same digest, in each form', async () => {
    const forms = spell(visits);
    const jobs = [];
    for (const [form, text] of Object.entries(forms)) {
      const path = join(dir, `big.${form === 'rp' ? 'json' : form}`);
      writeFileSync(path, text);
      jobs.push(await readManifest(path));
    }
    const [rp, ...flat] = jobs as [JobInput, ...JobInput[]];
    expect(rp.imageCount).toBe(200_000);
    expect(rp.stores).toHaveLength(2_000);
    // The digest is the sha256 of the canonical manifest: the same visits, stores and URLs.
    for (const job of flat) expect(job.digest).toBe(rp.digest);
    // The same stores, images and visit times: a run of each gives the same results.
    for (const job of flat) expect(job.stores).toEqual(rp.stores);
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
    const plain = join(dir, 'plain.json');
    const noted = join(dir, 'noted.json');
    writeFileSync(plain, spell(visits).rp);
    const note = 'n'.repeat(1_500);
    writeFileSync(noted, spell(visits.map((visit) => ({ ...visit, note }))).rp);
    const peak = async (path: string): Promise<number> => {
      const { code, stdout, stderr } = await runCli(['validate', '--json', path], {
        env: { IMGJOB_STATS: '1' },
      });
      expect(code, stderr).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ images: 200_000 });
      const stats = /imgjob: stats (\{.*\})/.exec(stderr)?.[1] ?? '{}';
      return (JSON.parse(stats) as { max_rss_kb: number }).max_rss_kb / 1024;
    };
    const [plainMb, notedMb] = [await peak(plain), await peak(noted)];
    expect(notedMb - plainMb).toBeLessThan(15);
  }, 30_000);
});
