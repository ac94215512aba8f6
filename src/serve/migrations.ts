/**
 * The schema of the serve database, as an ordered list of migrations. The
 * database's `user_version` counts the ones applied; each runs in its own
 * transaction, so a crash mid-upgrade leaves the previous version intact.
 * Append only: a released migration is never edited.
 */
import type { Database } from 'better-sqlite3';

export const MIGRATIONS: readonly string[] = [
  // 1: jobs, their stores and images, as JobState holds them.
  `
  CREATE TABLE jobs (
    -- AUTOINCREMENT: an id is never handed out twice, even after a crash.
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    status          TEXT    NOT NULL CHECK (status IN ('ongoing', 'completed', 'failed')),
    -- The manifest as validated (canonical JSON): a restart rebuilds the job from it.
    manifest        TEXT    NOT NULL,
    manifest_source TEXT    NOT NULL,
    manifest_digest TEXT    NOT NULL,
    -- ResultOptions (JSON): the options that change what the job records.
    options         TEXT    NOT NULL,
    store_count     INTEGER NOT NULL,
    image_count     INTEGER NOT NULL,
    done            INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    skipped         INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    finished_at     TEXT
  );
  -- A restart looks for the unfinished jobs only.
  CREATE INDEX jobs_ongoing ON jobs (id) WHERE status = 'ongoing';

  CREATE TABLE stores (
    job_id      INTEGER NOT NULL REFERENCES jobs (id),
    idx         INTEGER NOT NULL,
    store_id    TEXT    NOT NULL,
    status      TEXT    NOT NULL
                CHECK (status IN ('pending', 'ongoing', 'completed', 'failed', 'skipped')),
    error       TEXT,
    visit_times TEXT,
    PRIMARY KEY (job_id, idx)
  ) WITHOUT ROWID;

  CREATE TABLE images (
    job_id    INTEGER NOT NULL,
    store_idx INTEGER NOT NULL,
    idx       INTEGER NOT NULL,
    url       TEXT    NOT NULL,
    status    TEXT    NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'skipped')),
    -- The recorded ImageResult without its url (JSON), once it has one.
    result    TEXT,
    PRIMARY KEY (job_id, store_idx, idx),
    FOREIGN KEY (job_id, store_idx) REFERENCES stores (job_id, idx)
  ) WITHOUT ROWID;
  `,
];

/**
 * Brings `db` up to the latest schema.
 * @throws {Error} when the database was made by a newer imgjob.
 */
export function migrate(db: Database, migrations: readonly string[] = MIGRATIONS): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new Error(
      `its schema version is ${current}, newer than this imgjob knows (${migrations.length}); use a newer imgjob`,
    );
  }
  migrations.slice(current).forEach((sql, offset) => {
    db.transaction(() => {
      db.exec(sql);
      // PRAGMA takes no bound parameters; the value is our own integer.
      db.pragma(`user_version = ${current + offset + 1}`);
    })();
  });
}
