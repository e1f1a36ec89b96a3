-- no-transaction
-- Calls a crash left open are closed at the next start as `interrupted` (a new disposition),
-- and a cluster node closes only its own calls or a dead node's: calls get the node that took
-- them (`node`, NULL for the one-process hotline).
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt by SQLite's own
-- procedure (https://sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema
-- Changes"): foreign keys off (PRAGMA foreign_keys is ignored inside a transaction, hence
-- `no-transaction` above and the explicit BEGIN/COMMIT), new table, copy, drop, rename,
-- indexes again, check the keys, commit. With the keys off the drop does not cascade to the
-- events, recordings, notes and callbacks that refer to the calls; the rename makes them refer
-- to the new table.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE calls_new (
    id            TEXT PRIMARY KEY NOT NULL,
    sip_call_id   TEXT NOT NULL,
    reference     TEXT NOT NULL UNIQUE,
    started_at    INTEGER NOT NULL,
    answered_at   INTEGER,
    ended_at      INTEGER,
    trunk_source  TEXT,
    called_number TEXT,
    caller_kind   TEXT NOT NULL DEFAULT 'none' CHECK (caller_kind IN ('pseudonym', 'number', 'none')),
    caller        TEXT,
    language      TEXT,
    path          TEXT NOT NULL DEFAULT '[]',
    disposition   TEXT CHECK (disposition IN ('message', 'operator', 'abandoned', 'rejected', 'failed', 'interrupted')),
    queue_wait_ms INTEGER,
    operator      TEXT,
    marks         TEXT NOT NULL DEFAULT '[]',
    answers       TEXT NOT NULL DEFAULT '[]',
    node          TEXT
);
INSERT INTO calls_new (id, sip_call_id, reference, started_at, answered_at, ended_at, trunk_source,
    called_number, caller_kind, caller, language, path, disposition, queue_wait_ms, operator,
    marks, answers)
SELECT id, sip_call_id, reference, started_at, answered_at, ended_at, trunk_source,
    called_number, caller_kind, caller, language, path, disposition, queue_wait_ms, operator,
    marks, answers
FROM calls;
DROP TABLE calls;
ALTER TABLE calls_new RENAME TO calls;
CREATE INDEX calls_started_at ON calls (started_at DESC, id DESC);
CREATE INDEX calls_sip_call_id ON calls (sip_call_id);
CREATE INDEX calls_caller ON calls (caller) WHERE caller IS NOT NULL;
CREATE INDEX calls_caller_started ON calls (caller_kind, caller, started_at) WHERE caller IS NOT NULL;
-- The calls still open, for the close at start.
CREATE INDEX calls_open ON calls (started_at) WHERE ended_at IS NULL;
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
