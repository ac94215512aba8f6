/** A count per state; a state left out counts 0. */
export type StateCounts = Readonly<Partial<Record<string, number>>>;

/** Counts by state summed over several jobs (`imgjob_stores`, `imgjob_jobs`). */
export function sumCounts(counts: Iterable<StateCounts>): Record<string, number> {
  const total: Record<string, number> = {};
  for (const each of counts) {
    for (const [state, count] of Object.entries(each)) {
      total[state] = (total[state] ?? 0) + (count ?? 0);
    }
  }
  return total;
}
