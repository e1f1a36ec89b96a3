-- hotline store schema, PostgreSQL. Timestamps: BIGINT milliseconds since the Unix epoch, UTC
-- (to_timestamp(col / 1000.0) to read them). JSON lists: JSONB arrays.
-- Keep in step with ../sqlite/0001_init.sql.

CREATE TABLE calls (
    id            TEXT PRIMARY KEY,
    sip_call_id   TEXT NOT NULL,
    reference     TEXT NOT NULL UNIQUE,
    started_at    BIGINT NOT NULL,
    answered_at   BIGINT,
    ended_at      BIGINT,
    trunk_source  TEXT,
    called_number TEXT,
    caller_kind   TEXT NOT NULL DEFAULT 'none' CHECK (caller_kind IN ('pseudonym', 'number', 'none')),
    caller        TEXT,
    language      TEXT,
    path          JSONB NOT NULL DEFAULT '[]',
    disposition   TEXT CHECK (disposition IN ('message', 'operator', 'abandoned', 'rejected', 'failed')),
    queue_wait_ms BIGINT,
    operator      TEXT
);
CREATE INDEX calls_started_at ON calls (started_at DESC, id DESC);
CREATE INDEX calls_sip_call_id ON calls (sip_call_id);
CREATE INDEX calls_caller ON calls (caller) WHERE caller IS NOT NULL;

CREATE TABLE call_events (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    at      BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX call_events_call ON call_events (call_id, at, seq);

CREATE TABLE recordings (
    id          TEXT PRIMARY KEY,
    call_id     TEXT NOT NULL REFERENCES calls (id),
    kind        TEXT NOT NULL CHECK (kind IN ('message', 'conversation')),
    path        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'reviewed', 'referred', 'closed')),
    tags        JSONB NOT NULL DEFAULT '[]',
    notes       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX recordings_created_at ON recordings (created_at DESC, id DESC);
CREATE INDEX recordings_call ON recordings (call_id);
CREATE INDEX recordings_status ON recordings (status, created_at DESC);

CREATE TABLE users (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('operator', 'supervisor', 'admin')),
    password_hash  TEXT NOT NULL,
    sip_ha1_md5    TEXT,
    sip_ha1_sha256 TEXT,
    languages      JSONB NOT NULL DEFAULT '[]',
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT NOT NULL
);

-- Only the SHA-256 of a token is stored.
CREATE TABLE api_tokens (
    token_sha256 TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    label        TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_name);

-- Append-only: no foreign keys (a line outlives its user or recording), no updates.
CREATE TABLE audit_log (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    at           BIGINT NOT NULL,
    user_name    TEXT,
    action       TEXT NOT NULL,
    recording_id TEXT,
    source       TEXT,
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at DESC, seq DESC);
CREATE INDEX audit_log_recording ON audit_log (recording_id) WHERE recording_id IS NOT NULL;
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- The writer's op-id ledger: an op id seen here is not applied again (replays after a lost
-- commit acknowledgement). Pruned after 30 days.
CREATE TABLE applied_ops (
    op_id      TEXT PRIMARY KEY,
    applied_at BIGINT NOT NULL
);
CREATE INDEX applied_ops_at ON applied_ops (applied_at);

-- Reference numbers handed to writers ahead of time, so a call gets its number without waiting
-- for the database. Deleted when a call takes one; unused ones expire.
CREATE TABLE reference_reservations (
    reference   TEXT PRIMARY KEY,
    reserved_at BIGINT NOT NULL
);
