-- Console sign-in sessions and case notes on calls, SQLite. Keep in step with
-- ../postgres/0002_console.sql.

-- A signed-in console user. Only the SHA-256 (hex) of the cookie's secret token is stored: a copy
-- of this table does not let anyone sign in. Deleting a user ends their sessions.
CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY NOT NULL,
    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    source     TEXT
);
CREATE INDEX console_sessions_user ON console_sessions (user_name);
CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen);
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);

-- Case notes operators write on a call. `author` is a user name, kept as text (no foreign key):
-- a note outlives its author's account.
CREATE TABLE call_notes (
    seq     INTEGER PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    author  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    text    TEXT NOT NULL
);
CREATE INDEX call_notes_call ON call_notes (call_id, at, seq);

-- Repeat callers: calls from one caller before a time.
CREATE INDEX calls_caller_started ON calls (caller_kind, caller, started_at) WHERE caller IS NOT NULL;
