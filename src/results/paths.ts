/** The journal of a results file: every change since its snapshot. */
export function journalPathOf(path: string): string {
  return `${path}.journal`;
}

/** The journal of the snapshot being replaced; replayed before the current one. */
export function oldJournalPathOf(path: string): string {
  return `${path}.journal.old`;
}
