/** The journal of a results file: every change since its snapshot. */
export function journalPathOf(path: string): string {
  return `${path}.journal`;
}

/** The journal of the snapshot being replaced; replayed before the current one. */
export function oldJournalPathOf(path: string): string {
  return `${path}.journal.old`;
}

/** The lock of a results file: held by the one run writing it. */
export function lockPathOf(path: string): string {
  return `${path}.lock`;
}
