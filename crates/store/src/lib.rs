//! hotline-store: what the hotline remembers, and how it writes without ever holding up a call.
//!
//! - [`CallStore`]: calls, call events, recordings, users, API tokens and the audit log, in
//!   SQLite ([`SqliteStore`], the embedded default: a WAL file in the data dir) or PostgreSQL
//!   ([`PgStore`], production). [`connect`] picks one from the URL. Both run the same SQL text
//!   (runtime `sqlx` queries, `$N` placeholders) against their own migrations
//!   (`migrations/{sqlite,postgres}`, embedded, applied by [`CallStore::migrate`]); one contract
//!   test suite (`tests/contract.rs`) runs against both.
//! - [`StoreWriter`]: the write path of a call. One task, group commit, and an append-only spool
//!   while the database is away; see [`writer`].
//! - [`CallbackStore`]: safe callbacks, their caller's number only sealed and deleted when
//!   they end (see `callback.rs`).
//! - [`privacy`]: what is kept of a calling number (a keyed pseudonym by default).
//!
//! # Choices
//! - **Async trait**: `#[async_trait]`, so the console and the binary can hold
//!   `Arc<dyn CallStore>` (native `async fn` in traits is not dyn-compatible). The cost, one boxed
//!   future per call, is noise next to a database round trip.
//! - **Time**: [`Timestamp`], UTC milliseconds, stored as `BIGINT` in both databases (one SQL
//!   text, integer date filters); RFC 3339 in JSON. Days are the hotline's ([`Zone`],
//!   `America/Lima` by default), never the database's.
//! - **Ids**: the caller makes them ([`new_id`], ULIDs), so a row can be referred to before it is
//!   written; inserts are idempotent on them.
//! - **Reference numbers**: 6 digits (100000–999999), unique over all calls. The store picks a
//!   free one with retries ([`CallStore::insert_call`] with `reference: None`); the writer keeps a
//!   pool reserved ahead ([`OpSink::reserve_references`]) so a call learns its number at once.
//!
//! The store never logs a calling number; no axum, no sockets of its own (sqlx owns its
//! connections).

use std::sync::Arc;

use async_trait::async_trait;

mod callback;
mod callback_sql;
mod error;
mod id;
mod model;
mod ops;
mod postgres;
pub mod privacy;
mod spool;
mod sql;
mod sqlite;
mod time;
pub mod writer;
mod zone;

pub use callback::{Callback, CallbackState, CallbackStore, ClaimedCallback, NewCallback};
pub use error::StoreError;
pub use id::{is_id, new_id, new_id_at};
pub use model::{
    Answer, ApiToken, AuditEntry, AuditFilter, Call, CallDetail, CallEvent, CallFilter, CallNote,
    CallUpdate, Caller, DEFAULT_LIMIT, DailyStat, Disposition, MAX_LIMIT, NewApiToken,
    NewAuditEntry, NewCall, NewCallEvent, NewCallNote, NewRecording, NewSession, NewUser,
    Recording, RecordingFilter, RecordingKind, RecordingStatus, RecordingUpdate, Role, Session,
    TokenHash, UnknownValue, User, UserUpdate,
};
pub use ops::{BatchError, Envelope, OpSink, Write};
pub use postgres::{PgSettings, PgStore};
pub use privacy::{CallerIdPolicy, CallerPrivacy, Secret, load_or_create_secret, pseudonym};
pub use spool::{REJECTED_FILE, SPOOL_FILE};
pub use sqlite::{SqliteDurability, SqliteSettings, SqliteStore};
pub use time::{ParseTimestampError, Timestamp};
pub use writer::{Backlog, StoreWriter, WriterConfig, WriterHandle};
pub use zone::{UnknownZone, Zone};

/// Which database a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// From a URL's scheme: `sqlite:` or `postgres:`/`postgresql:`.
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// Everything the hotline reads and writes. Writes from the call path go through
/// [`StoreWriter`] instead (as [`Write`] ops applied by [`OpSink::apply_batch`]); the console
/// reads and makes its own writes (users, tokens, reviews, audit) directly.
///
/// Errors: [`StoreError::NotFound`] for a missing row an operation needs,
/// [`StoreError::Conflict`] for a taken unique key, [`StoreError::Unavailable`] when the database
/// cannot be reached.
#[async_trait]
pub trait CallStore: OpSink + CallbackStore {
    fn backend(&self) -> Backend;

    /// Applies pending migrations (`hotline migrate`, and `serve` at start).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Checks the database answers (/healthz).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the connections (pending operations finish first).
    async fn close(&self);

    /// Inserts a call; returns its reference number (the one given, or a free one the store
    /// picked). Idempotent: inserting the same id again returns the stored reference.
    async fn insert_call(&self, call: &NewCall) -> Result<String, StoreError>;

    /// Sets the `Some` fields of a call.
    async fn update_call(&self, id: &str, update: &CallUpdate) -> Result<(), StoreError>;

    /// Adds an event to a call (idempotent on the event id).
    async fn add_call_event(&self, event: &NewCallEvent) -> Result<(), StoreError>;

    /// Calls, newest first, with their recording ids.
    async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<Call>, StoreError>;

    /// One call with its events (in order) and recording ids.
    async fn get_call(&self, id: &str) -> Result<Option<CallDetail>, StoreError>;

    /// Inserts a recording of an existing call (idempotent on the id).
    async fn insert_recording(&self, recording: &NewRecording) -> Result<(), StoreError>;

    /// Sets the `Some` fields of a recording's review; returns the recording.
    async fn update_recording(
        &self,
        id: &str,
        update: &RecordingUpdate,
    ) -> Result<Recording, StoreError>;

    /// Recordings, newest first.
    async fn list_recordings(&self, filter: &RecordingFilter)
    -> Result<Vec<Recording>, StoreError>;

    async fn get_recording(&self, id: &str) -> Result<Option<Recording>, StoreError>;

    /// Creates a user ([`StoreError::Conflict`] if the name is taken).
    async fn create_user(&self, user: &NewUser) -> Result<(), StoreError>;

    async fn get_user(&self, name: &str) -> Result<Option<User>, StoreError>;

    /// All users, by name.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;

    /// Sets the `Some` fields of a user; returns the user.
    async fn update_user(&self, name: &str, update: &UserUpdate) -> Result<User, StoreError>;

    /// Stores a token's hash for a user ([`StoreError::NotFound`] if there is no such user).
    async fn create_api_token(&self, token: &NewApiToken) -> Result<(), StoreError>;

    /// The token with this hash (hash what the client sent with [`TokenHash::of`]).
    async fn find_api_token(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError>;

    /// A user's tokens, oldest first.
    async fn list_api_tokens(&self, user: &str) -> Result<Vec<ApiToken>, StoreError>;

    /// Revokes a token; returns whether it existed.
    async fn delete_api_token(&self, hash: &TokenHash) -> Result<bool, StoreError>;

    /// Appends to the audit log (idempotent on the entry id). There is no update.
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError>;

    /// Audit lines, newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;

    /// Stores a console sign-in ([`StoreError::NotFound`] if there is no such user,
    /// [`StoreError::Conflict`] if a session with this `id_hash` exists).
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;

    /// The session with this token hash, whatever its age: the caller checks `expires_at` and
    /// its own idle limit against `last_seen` (and whether the user is still enabled).
    async fn get_session(&self, id_hash: &str) -> Result<Option<Session>, StoreError>;

    /// Records activity on a session: `last_seen` becomes `last_seen` if that is later (it never
    /// goes back). [`StoreError::NotFound`] if the session is gone (signed out, purged).
    async fn touch_session(&self, id_hash: &str, last_seen: Timestamp) -> Result<(), StoreError>;

    /// Ends a session (sign-out); returns whether it existed.
    async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError>;

    /// Ends every session of a user (password change, disabled account); returns how many.
    async fn delete_user_sessions(&self, user: &str) -> Result<u64, StoreError>;

    /// Deletes sessions idle since before `idle_before` (`last_seen < idle_before`) or past
    /// their end (`expires_at <= now`); returns how many.
    async fn purge_sessions(
        &self,
        idle_before: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Adds a case note to a call ([`StoreError::NotFound`] if there is no such call). Idempotent
    /// on the note id: adding the same id again changes nothing.
    async fn add_call_note(&self, note: &NewCallNote) -> Result<(), StoreError>;

    /// A call's case notes, oldest first (none for an unknown call).
    async fn list_call_notes(&self, call_id: &str) -> Result<Vec<CallNote>, StoreError>;

    /// How many calls from this caller (same stored kind and value: pseudonym by default)
    /// started before `before` (0 for [`Caller::Absent`]). Pass the current call's `started_at`
    /// to count its earlier calls.
    async fn count_calls_by_caller(
        &self,
        caller: &Caller,
        before: Timestamp,
    ) -> Result<u64, StoreError>;

    /// How many calls with this caller and this mark (`silent`) started before
    /// `before`: repeated silent calls, which often come before a victim talks.
    async fn count_marked_calls_by_caller(
        &self,
        caller: &Caller,
        mark: &str,
        before: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Calls started at or after `since`, counted by day of `zone` (the hotline's time zone),
    /// language and disposition, with their queue waits; ordered by day, then language and
    /// disposition (`None` first). Only non-empty buckets appear. Meant for the last 30 days
    /// (the database returns at most quarter hours × languages × dispositions rows).
    async fn daily_stats(
        &self,
        since: Timestamp,
        zone: &Zone,
    ) -> Result<Vec<DailyStat>, StoreError>;
}

/// Tuning for [`connect_with`].
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub sqlite: SqliteSettings,
    pub postgres: PgSettings,
}

/// Opens the store a URL names: `sqlite://PATH` (file created if missing; `synchronous=FULL`
/// unless the URL says `?synchronous=normal`) or `postgres://USER@HOST[:PORT]/DB` (connects
/// lazily). Does not migrate: call [`CallStore::migrate`].
pub async fn connect(url: &str) -> Result<Arc<dyn CallStore>, StoreError> {
    connect_with(url, &ConnectOptions::default()).await
}

/// [`connect`] with settings.
pub async fn connect_with(
    url: &str,
    options: &ConnectOptions,
) -> Result<Arc<dyn CallStore>, StoreError> {
    match Backend::of_url(url) {
        Some(Backend::Sqlite) => Ok(Arc::new(SqliteStore::connect(url, &options.sqlite).await?)),
        Some(Backend::Postgres) => Ok(Arc::new(PgStore::connect(url, &options.postgres)?)),
        None => Err(StoreError::Invalid(format!(
            "database URL must start with sqlite:// or postgres://, not {:?}",
            redact_url(url)
        ))),
    }
}

/// A URL with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::of_url("sqlite:///var/lib/hotline/hotline.db"),
            Some(Backend::Sqlite)
        );
        assert_eq!(Backend::of_url("sqlite:hotline.db"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::of_url("postgres://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("postgresql://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("mysql://u@h/db"), None);
        assert_eq!(Backend::of_url("nothing"), None);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite:///x.db"), "sqlite:///x.db");
    }
}
