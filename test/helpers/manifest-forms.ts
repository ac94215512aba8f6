/** One job spelled in each manifest form, for the tests of the forms. */

export type Visit = { store_id: string; image_url: string[]; visit_time?: string };

/** The Retail Pulse JSON, JSON Lines and CSV of the same visits. */
export function spell(visits: readonly Visit[]): { rp: string; jsonl: string; csv: string } {
  const rows = visits.flatMap((visit) =>
    visit.image_url.map((url) => `${visit.store_id},${url},${visit.visit_time ?? ''}`),
  );
  return {
    rp: JSON.stringify({ count: visits.length, visits }),
    jsonl: `${visits.map((visit) => JSON.stringify(visit)).join('\n')}\n`,
    csv: `store_id,image_url,visit_time\n${rows.join('\n')}\n`,
  };
}
