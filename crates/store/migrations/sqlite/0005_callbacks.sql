-- Safe callbacks (issue 12), SQLite. Keep in step with ../postgres/0005_callbacks.sql.

-- A caller asked, in call `call_id`, to be called back. `number_sealed` is the caller's number
-- encrypted by the hotline (XChaCha20-Poly1305: nonce then ciphertext; the key is in a file
-- outside the data dir); it is set to NULL in the same statement that ends the callback, and
-- the check below refuses an ended row that still holds it. Times are unix milliseconds.
CREATE TABLE callbacks (
    id            TEXT PRIMARY KEY NOT NULL,
    call_id       TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    pseudonym     TEXT,
    language      TEXT,
    window_name   TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    number_sealed BLOB,
    created_at    INTEGER NOT NULL,
    next_at       INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    claimed_by    TEXT,
    claimed_at    INTEGER,
    ended_at      INTEGER,
    cancelled_by  TEXT,
    CHECK (state IN ('pending', 'placing', 'done', 'given-up', 'expired', 'cancelled')),
    CHECK (number_sealed IS NULL OR state IN ('pending', 'placing')),
    CHECK (number_sealed IS NOT NULL OR state NOT IN ('pending', 'placing'))
);
CREATE INDEX callbacks_open ON callbacks (state, next_at);
CREATE INDEX callbacks_call ON callbacks (call_id);
