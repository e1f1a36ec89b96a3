//! The SQL shared by both backends, written once as a macro over the concrete sqlx database type.
//!
//! Both dialects take `$N` placeholders, `ON CONFLICT DO NOTHING`, `COALESCE` and `LIMIT`, and
//! both schemas have the same tables and column names, so one text serves both. What differs
//! (connect options, how a write transaction begins, JSONB vs TEXT for lists) lives in
//! `sqlite.rs` and `postgres.rs` and the migrations. Generic code over `sqlx::Database` would need
//! a dozen higher-ranked bounds per function; a macro over concrete types keeps the code plain.

use rand::Rng;

use crate::model::{Caller, Recording, User};
use crate::time::Timestamp;
use crate::zone::Zone;

/// Columns of a call, from `calls c`.
pub(crate) const CALL_COLUMNS: &str = "c.id, c.sip_call_id, c.reference, c.started_at, \
    c.answered_at, c.ended_at, c.trunk_source, c.called_number, c.caller_kind, c.caller, \
    c.language, c.disposition, c.path, c.queue_wait_ms, c.operator, c.marks, c.answers";

/// Columns of a recording with its call's language, from `recordings r JOIN calls c`.
pub(crate) const RECORDING_COLUMNS: &str = "r.id, r.call_id, r.kind, r.path, r.created_at, \
    r.duration_ms, r.bytes, r.sha256, r.status, r.tags, r.notes, c.language";

pub(crate) const USER_COLUMNS: &str = "name, role, password_hash, sip_ha1_md5, sip_ha1_sha256, \
    languages, disabled, created_at";

pub(crate) const AUDIT_COLUMNS: &str =
    "id, at, user_name AS \"user\", action, recording_id, source, detail";

pub(crate) const SESSION_COLUMNS: &str = "id_hash, user_name AS \"user\", csrf, created_at, \
    last_seen, expires_at, source";

pub(crate) const NOTE_COLUMNS: &str = "id, call_id, author, at, text";

/// A `LIKE … ESCAPE '\'` pattern matching `text` as a lowercase substring.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// One quarter hour's calls of one language and disposition (see [`daily_from_quarters`]).
#[derive(sqlx::FromRow)]
pub(crate) struct QuarterStatRow {
    quarter: i64,
    language: Option<String>,
    disposition: Option<crate::model::Disposition>,
    calls: i64,
    queue_wait_count: i64,
    queue_wait_ms_sum: i64,
    queue_wait_ms_max: i64,
}

/// Sums quarter-hour rows into `zone`'s days, ordered by day, language and disposition
/// (`None` first). A UTC quarter hour lies on one local day in every zone (see [`Zone`]).
pub(crate) fn daily_from_quarters(
    rows: Vec<QuarterStatRow>,
    zone: &Zone,
) -> Vec<crate::model::DailyStat> {
    use std::collections::BTreeMap;
    type Key = (String, Option<String>, Option<&'static str>);
    let mut days: BTreeMap<Key, crate::model::DailyStat> = BTreeMap::new();
    for r in rows {
        let start = Timestamp::from_unix_millis(r.quarter.saturating_mul(Zone::QUARTER_MS));
        let day = zone.day_of(start);
        let key = (
            day.clone(),
            r.language.clone(),
            r.disposition.map(|d| d.as_str()),
        );
        let d = days.entry(key).or_insert_with(|| crate::model::DailyStat {
            day,
            language: r.language,
            disposition: r.disposition,
            calls: 0,
            queue_wait_count: 0,
            queue_wait_ms_sum: 0,
            queue_wait_ms_max: 0,
        });
        d.calls += u64::try_from(r.calls).unwrap_or(0);
        d.queue_wait_count += u64::try_from(r.queue_wait_count).unwrap_or(0);
        d.queue_wait_ms_sum = d.queue_wait_ms_sum.saturating_add(r.queue_wait_ms_sum);
        d.queue_wait_ms_max = d.queue_wait_ms_max.max(r.queue_wait_ms_max);
    }
    days.into_values().collect()
}

/// How many candidate numbers to try before giving up on finding a free reference.
pub(crate) const REFERENCE_ATTEMPTS: usize = 64;

/// A random 6-digit reference (100000–999999: no leading zero to misread).
pub(crate) fn random_reference() -> String {
    rand::rng().random_range(100_000..1_000_000u32).to_string()
}

#[derive(sqlx::FromRow)]
pub(crate) struct CallRow {
    pub(crate) id: String,
    pub(crate) sip_call_id: String,
    pub(crate) reference: String,
    pub(crate) started_at: Timestamp,
    pub(crate) answered_at: Option<Timestamp>,
    pub(crate) ended_at: Option<Timestamp>,
    pub(crate) trunk_source: Option<String>,
    pub(crate) called_number: Option<String>,
    pub(crate) caller_kind: String,
    pub(crate) caller: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) disposition: Option<crate::model::Disposition>,
    #[sqlx(json)]
    pub(crate) path: Vec<String>,
    pub(crate) queue_wait_ms: Option<i64>,
    pub(crate) operator: Option<String>,
    #[sqlx(json)]
    pub(crate) marks: Vec<String>,
    #[sqlx(json)]
    pub(crate) answers: Vec<crate::model::Answer>,
}

impl CallRow {
    pub(crate) fn into_call(self, recordings: Vec<String>) -> crate::model::Call {
        crate::model::Call {
            caller: Caller::from_columns(&self.caller_kind, self.caller),
            id: self.id,
            sip_call_id: self.sip_call_id,
            reference: self.reference,
            started_at: self.started_at,
            answered_at: self.answered_at,
            ended_at: self.ended_at,
            trunk_source: self.trunk_source,
            called_number: self.called_number,
            language: self.language,
            disposition: self.disposition,
            path: self.path,
            queue_wait_ms: self.queue_wait_ms,
            operator: self.operator,
            recordings,
            marks: self.marks,
            answers: self.answers,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RecordingRow {
    id: String,
    call_id: String,
    kind: crate::model::RecordingKind,
    path: String,
    created_at: Timestamp,
    duration_ms: i64,
    bytes: i64,
    sha256: String,
    status: crate::model::RecordingStatus,
    #[sqlx(json)]
    tags: Vec<String>,
    notes: String,
    language: Option<String>,
}

impl From<RecordingRow> for Recording {
    fn from(r: RecordingRow) -> Recording {
        Recording {
            id: r.id,
            call_id: r.call_id,
            kind: r.kind,
            path: r.path,
            created_at: r.created_at,
            duration_ms: r.duration_ms,
            bytes: r.bytes,
            sha256: r.sha256,
            status: r.status,
            tags: r.tags,
            notes: r.notes,
            language: r.language,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    name: String,
    role: crate::model::Role,
    password_hash: String,
    sip_ha1_md5: Option<String>,
    sip_ha1_sha256: Option<String>,
    #[sqlx(json)]
    languages: Vec<String>,
    disabled: bool,
    created_at: Timestamp,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> User {
        User {
            name: u.name,
            role: u.role,
            password_hash: u.password_hash,
            sip_ha1_md5: u.sip_ha1_md5,
            sip_ha1_sha256: u.sip_ha1_sha256,
            languages: u.languages,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiTokenRow {
    pub(crate) token_sha256: String,
    pub(crate) user_name: String,
    pub(crate) label: String,
    pub(crate) created_at: Timestamp,
}

/// Implements the shared part of [`crate::CallStore`] and [`crate::OpSink`] for `$store`, whose
/// `pool` field is a `sqlx::Pool<$db>` and which has `const BACKEND`, `fn db(sqlx::Error)`,
/// `async fn begin_write(&self)` and `async fn run_migrations(&self)`.
macro_rules! impl_store {
    ($store:ident, $db:ty) => {
        type Conn = <$db as sqlx::Database>::Connection;

        use std::collections::HashMap;

        use async_trait::async_trait;
        use sqlx::types::Json;
        use sqlx::{Connection as _, QueryBuilder};

        use $crate::error::StoreError;
        use $crate::model::{
            clamp_limit, ApiToken, AuditEntry, AuditFilter, Call, CallDetail, CallEvent,
            CallFilter, CallNote, CallUpdate, Caller, DailyStat, NewApiToken, NewAuditEntry, NewCall, NewCallEvent,
            NewCallNote, NewRecording, NewSession, NewUser, Recording, RecordingFilter,
            RecordingUpdate, Session, TokenHash, User, UserUpdate,
        };
        use $crate::ops::{BatchError, Envelope, OpSink, Write};
        use $crate::sql::{
            like_pattern, random_reference, ApiTokenRow, CallRow, RecordingRow, UserRow, AUDIT_COLUMNS,
            CALL_COLUMNS, NOTE_COLUMNS, RECORDING_COLUMNS, REFERENCE_ATTEMPTS, SESSION_COLUMNS,
            USER_COLUMNS,
        };
        use $crate::time::Timestamp;
        use $crate::{Backend, CallStore};

        fn not_empty(what: &str, v: &str) -> Result<(), StoreError> {
            if v.trim().is_empty() {
                Err(StoreError::Invalid(format!("{what} is empty")))
            } else {
                Ok(())
            }
        }

        impl $store {
            /// A candidate reference that no call uses and nobody has reserved.
            async fn fresh_reference(conn: &mut Conn) -> Result<String, StoreError> {
                for _ in 0..REFERENCE_ATTEMPTS {
                    let candidate = random_reference();
                    let taken: Option<i32> = sqlx::query_scalar(
                        "SELECT 1 FROM calls WHERE reference = $1 \
                         UNION ALL SELECT 1 FROM reference_reservations WHERE reference = $1",
                    )
                    .bind(&candidate)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                    if taken.is_none() {
                        return Ok(candidate);
                    }
                }
                Err(StoreError::Conflict("no free reference number found".into()))
            }

            async fn insert_call_in(conn: &mut Conn, call: &NewCall) -> Result<String, StoreError> {
                not_empty("call id", &call.id)?;
                let mut reference = match &call.reference {
                    Some(r) => {
                        // Taken from the pool (or made up while the database was away): the
                        // reservation, if any, is used up.
                        sqlx::query("DELETE FROM reference_reservations WHERE reference = $1")
                            .bind(r)
                            .execute(&mut *conn)
                            .await
                            .map_err(db)?;
                        r.clone()
                    }
                    None => Self::fresh_reference(conn).await?,
                };
                for _ in 0..REFERENCE_ATTEMPTS {
                    let inserted = sqlx::query(
                        "INSERT INTO calls (id, sip_call_id, reference, started_at, trunk_source, \
                         called_number, caller_kind, caller, node) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                    )
                    .bind(&call.id)
                    .bind(&call.sip_call_id)
                    .bind(&reference)
                    .bind(call.started_at)
                    .bind(&call.trunk_source)
                    .bind(&call.called_number)
                    .bind(call.caller.kind_str())
                    .bind(call.caller.value())
                    .bind(&call.node)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?
                    .rows_affected();
                    if inserted == 1 {
                        if let Some(asked) = call.reference.as_ref().filter(|r| **r != reference) {
                            // The number given out was taken by another call (possible only for
                            // a number made up while the database was away): keep a trace of
                            // what the caller may have been told.
                            Self::add_event_in(
                                conn,
                                &NewCallEvent {
                                    id: $crate::id::new_id(),
                                    call_id: call.id.clone(),
                                    at: call.started_at,
                                    kind: "reference_reassigned".into(),
                                    detail: format!(
                                        "reference {asked} was already taken; the caller may have been told {asked}"
                                    ),
                                },
                            )
                            .await?;
                            tracing::warn!(call_id = %call.id, "reference number reassigned after a collision");
                        }
                        return Ok(reference);
                    }
                    let existing: Option<String> =
                        sqlx::query_scalar("SELECT reference FROM calls WHERE id = $1")
                            .bind(&call.id)
                            .fetch_optional(&mut *conn)
                            .await
                            .map_err(db)?;
                    if let Some(existing) = existing {
                        // The same call again (a replay): nothing to do.
                        return Ok(existing);
                    }
                    reference = Self::fresh_reference(conn).await?;
                }
                Err(StoreError::Conflict("no free reference number found".into()))
            }

            async fn update_call_in(
                conn: &mut Conn,
                id: &str,
                u: &CallUpdate,
            ) -> Result<(), StoreError> {
                let n = sqlx::query(
                    "UPDATE calls SET answered_at = COALESCE($2, answered_at), \
                     ended_at = COALESCE($3, ended_at), language = COALESCE($4, language), \
                     path = COALESCE($5, path), disposition = COALESCE($6, disposition), \
                     queue_wait_ms = COALESCE($7, queue_wait_ms), operator = COALESCE($8, operator), \
                     marks = COALESCE($9, marks), answers = COALESCE($10, answers) \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(u.answered_at)
                .bind(u.ended_at)
                .bind(&u.language)
                .bind(u.path.as_ref().map(Json))
                .bind(u.disposition)
                .bind(u.queue_wait_ms)
                .bind(&u.operator)
                .bind(u.marks.as_ref().map(Json))
                .bind(u.answers.as_ref().map(Json))
                .execute(&mut *conn)
                .await
                .map_err(db)?
                .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("call {id}")));
                }
                Ok(())
            }

            async fn add_event_in(conn: &mut Conn, e: &NewCallEvent) -> Result<(), StoreError> {
                not_empty("event id", &e.id)?;
                let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM calls WHERE id = $1")
                    .bind(&e.call_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(format!("call {}", e.call_id)));
                }
                sqlx::query(
                    "INSERT INTO call_events (id, call_id, at, kind, detail) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(&e.id)
                .bind(&e.call_id)
                .bind(e.at)
                .bind(&e.kind)
                .bind(&e.detail)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
                Ok(())
            }

            async fn insert_recording_in(
                conn: &mut Conn,
                r: &NewRecording,
            ) -> Result<(), StoreError> {
                not_empty("recording id", &r.id)?;
                let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM calls WHERE id = $1")
                    .bind(&r.call_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(format!("call {}", r.call_id)));
                }
                sqlx::query(
                    "INSERT INTO recordings (id, call_id, kind, path, created_at, duration_ms, \
                     bytes, sha256, status, tags, notes) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                )
                .bind(&r.id)
                .bind(&r.call_id)
                .bind(r.kind)
                .bind(&r.path)
                .bind(r.created_at)
                .bind(r.duration_ms)
                .bind(r.bytes)
                .bind(&r.sha256)
                .bind(r.status)
                .bind(Json(&r.tags))
                .bind(&r.notes)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
                Ok(())
            }

            async fn update_recording_in(
                conn: &mut Conn,
                id: &str,
                u: &RecordingUpdate,
            ) -> Result<(), StoreError> {
                let n = sqlx::query(
                    "UPDATE recordings SET status = COALESCE($2, status), \
                     tags = COALESCE($3, tags), notes = COALESCE($4, notes) WHERE id = $1",
                )
                .bind(id)
                .bind(u.status)
                .bind(u.tags.as_ref().map(Json))
                .bind(&u.notes)
                .execute(&mut *conn)
                .await
                .map_err(db)?
                .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("recording {id}")));
                }
                Ok(())
            }

            async fn append_audit_in(conn: &mut Conn, a: &NewAuditEntry) -> Result<(), StoreError> {
                not_empty("audit id", &a.id)?;
                not_empty("audit action", &a.action)?;
                sqlx::query(
                    "INSERT INTO audit_log (id, at, user_name, action, recording_id, source, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(&a.id)
                .bind(a.at)
                .bind(&a.user)
                .bind(&a.action)
                .bind(&a.recording_id)
                .bind(&a.source)
                .bind(&a.detail)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
                Ok(())
            }

            async fn apply_in(
                conn: &mut Conn,
                env: &Envelope,
                now: Timestamp,
            ) -> Result<(), StoreError> {
                let fresh = sqlx::query(
                    "INSERT INTO applied_ops (op_id, applied_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(&env.op_id)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(db)?
                .rows_affected()
                    == 1;
                if !fresh {
                    return Ok(());
                }
                match &env.op {
                    Write::InsertCall(c) => Self::insert_call_in(conn, c).await.map(drop),
                    Write::UpdateCall { id, update } => Self::update_call_in(conn, id, update).await,
                    Write::AddCallEvent(e) => Self::add_event_in(conn, e).await,
                    Write::InsertRecording(r) => Self::insert_recording_in(conn, r).await,
                    Write::UpdateRecording { id, update } => {
                        Self::update_recording_in(conn, id, update).await
                    }
                    Write::AppendAudit(a) => Self::append_audit_in(conn, a).await,
                    Write::InsertCallback(b) => Self::insert_callback_in(conn, b).await,
                    Write::CloseInterrupted { node, before, detail } => {
                        Self::close_interrupted_in(conn, node.as_deref(), *before, detail)
                            .await
                            .map(drop)
                    }
                }
            }

            /// See [`Write::CloseInterrupted`]; returns how many calls it closed.
            async fn close_interrupted_in(
                conn: &mut Conn,
                node: Option<&str>,
                before: Timestamp,
                detail: &str,
            ) -> Result<u64, StoreError> {
                // Which calls: open, older than the new run, this node's ('' for none).
                const OPEN: &str = "c.ended_at IS NULL AND c.started_at < $1 \
                                    AND COALESCE(c.node, '') = $2";
                // Their last trace: the latest event, else the start.
                const LAST: &str = "COALESCE((SELECT MAX(e.at) FROM call_events e \
                                    WHERE e.call_id = c.id), c.started_at)";
                let node = node.unwrap_or("");
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO call_events (id, call_id, at, kind, detail) \
                     SELECT 'interrupted-' || c.id, c.id, {LAST}, 'interrupted', $3 \
                     FROM calls c WHERE {OPEN} ON CONFLICT DO NOTHING"
                )))
                .bind(before)
                .bind(node)
                .bind(detail)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
                let closed = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE calls SET ended_at = (SELECT {LAST} FROM calls c WHERE c.id = calls.id), \
                     disposition = COALESCE(disposition, 'interrupted') \
                     WHERE id IN (SELECT c.id FROM calls c WHERE {OPEN})"
                )))
                .bind(before)
                .bind(node)
                .execute(&mut *conn)
                .await
                .map_err(db)?
                .rows_affected();
                Ok(closed)
            }

            async fn recording_ids(
                &self,
                call_ids: &[&str],
            ) -> Result<HashMap<String, Vec<String>>, StoreError> {
                let mut map: HashMap<String, Vec<String>> = HashMap::new();
                if call_ids.is_empty() {
                    return Ok(map);
                }
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT call_id, id FROM recordings WHERE call_id IN (",
                );
                let mut list = qb.separated(", ");
                for id in call_ids {
                    list.push_bind(*id);
                }
                qb.push(") ORDER BY created_at, id");
                let rows: Vec<(String, String)> =
                    qb.build_query_as().fetch_all(&self.pool).await.map_err(db)?;
                for (call_id, id) in rows {
                    map.entry(call_id).or_default().push(id);
                }
                Ok(map)
            }
        }

        #[async_trait]
        impl OpSink for $store {
            async fn apply_batch(&self, ops: &[Envelope], now: Timestamp) -> Result<(), BatchError> {
                let mut tx = self.begin_write().await.map_err(BatchError::whole)?;
                for (i, env) in ops.iter().enumerate() {
                    Self::apply_in(&mut tx, env, now)
                        .await
                        .map_err(|error| BatchError { index: Some(i), error })?;
                }
                tx.commit().await.map_err(|e| BatchError::whole(db(e)))
            }

            async fn reserve_references(
                &self,
                n: usize,
                now: Timestamp,
            ) -> Result<Vec<String>, StoreError> {
                let mut got: Vec<String> = Vec::with_capacity(n);
                if n == 0 {
                    return Ok(got);
                }
                let mut tx = self.begin_write().await?;
                for _ in 0..n.saturating_mul(4).saturating_add(REFERENCE_ATTEMPTS) {
                    if got.len() == n {
                        break;
                    }
                    let candidate = random_reference();
                    let n = sqlx::query(
                        "INSERT INTO reference_reservations (reference, reserved_at) \
                         SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM calls WHERE reference = $1) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&candidate)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
                    if n == 1 {
                        got.push(candidate);
                    }
                }
                tx.commit().await.map_err(db)?;
                Ok(got)
            }

            async fn prune(&self, before: Timestamp) -> Result<u64, StoreError> {
                let mut tx = self.begin_write().await?;
                let a = sqlx::query("DELETE FROM applied_ops WHERE applied_at < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
                let b = sqlx::query("DELETE FROM reference_reservations WHERE reserved_at < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
                tx.commit().await.map_err(db)?;
                Ok(a + b)
            }
        }

        #[async_trait]
        impl CallStore for $store {
            fn backend(&self) -> Backend {
                BACKEND
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                self.run_migrations().await
            }

            async fn ping(&self) -> Result<(), StoreError> {
                let mut conn = self.pool.acquire().await.map_err(db)?;
                conn.ping().await.map_err(db)
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn insert_call(&self, call: &NewCall) -> Result<String, StoreError> {
                let mut tx = self.begin_write().await?;
                let reference = Self::insert_call_in(&mut tx, call).await?;
                tx.commit().await.map_err(db)?;
                Ok(reference)
            }

            async fn update_call(&self, id: &str, update: &CallUpdate) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                Self::update_call_in(&mut tx, id, update).await?;
                tx.commit().await.map_err(db)
            }

            async fn add_call_event(&self, event: &NewCallEvent) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                Self::add_event_in(&mut tx, event).await?;
                tx.commit().await.map_err(db)
            }

            async fn list_calls(&self, f: &CallFilter) -> Result<Vec<Call>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {CALL_COLUMNS} FROM calls c WHERE 1 = 1"
                ));
                if let Some(v) = &f.sip_call_id {
                    qb.push(" AND c.sip_call_id = ").push_bind(v.as_str());
                }
                if let Some(v) = &f.reference {
                    qb.push(" AND c.reference = ").push_bind(v.as_str());
                }
                if let Some(v) = f.started_before {
                    qb.push(" AND c.started_at < ").push_bind(v);
                }
                if let Some(v) = f.started_since {
                    qb.push(" AND c.started_at >= ").push_bind(v);
                }
                match f.ended {
                    Some(true) => {
                        qb.push(" AND c.ended_at IS NOT NULL");
                    }
                    Some(false) => {
                        qb.push(" AND c.ended_at IS NULL");
                    }
                    None => {}
                }
                qb.push(" ORDER BY c.started_at DESC, c.id DESC LIMIT ")
                    .push_bind(clamp_limit(f.limit));
                let rows: Vec<CallRow> = qb.build_query_as().fetch_all(&self.pool).await.map_err(db)?;
                let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
                let mut recordings = self.recording_ids(&ids).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        let recs = recordings.remove(&r.id).unwrap_or_default();
                        r.into_call(recs)
                    })
                    .collect())
            }

            async fn get_call(&self, id: &str) -> Result<Option<CallDetail>, StoreError> {
                let row: Option<CallRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {CALL_COLUMNS} FROM calls c WHERE c.id = $1"
                )))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
                let Some(row) = row else { return Ok(None) };
                let recordings = self.recording_ids(&[id]).await?.remove(id).unwrap_or_default();
                let events: Vec<CallEvent> = sqlx::query_as(
                    "SELECT at, kind, detail FROM call_events WHERE call_id = $1 ORDER BY at, seq",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                Ok(Some(CallDetail { call: row.into_call(recordings), events }))
            }

            async fn insert_recording(&self, rec: &NewRecording) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                Self::insert_recording_in(&mut tx, rec).await?;
                tx.commit().await.map_err(db)
            }

            async fn update_recording(
                &self,
                id: &str,
                update: &RecordingUpdate,
            ) -> Result<Recording, StoreError> {
                let mut tx = self.begin_write().await?;
                Self::update_recording_in(&mut tx, id, update).await?;
                tx.commit().await.map_err(db)?;
                self.get_recording(id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("recording {id}")))
            }

            async fn list_recordings(
                &self,
                f: &RecordingFilter,
            ) -> Result<Vec<Recording>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {RECORDING_COLUMNS} FROM recordings r JOIN calls c ON c.id = r.call_id \
                     WHERE 1 = 1"
                ));
                if let Some(v) = f.status {
                    qb.push(" AND r.status = ").push_bind(v);
                }
                if let Some(v) = f.kind {
                    qb.push(" AND r.kind = ").push_bind(v);
                }
                if let Some(v) = &f.language {
                    qb.push(" AND c.language = ").push_bind(v.as_str());
                }
                if let Some(v) = &f.call_id {
                    qb.push(" AND r.call_id = ").push_bind(v.as_str());
                }
                if let Some(v) = f.since {
                    qb.push(" AND r.created_at >= ").push_bind(v);
                }
                if let Some(v) = f.until {
                    qb.push(" AND r.created_at < ").push_bind(v);
                }
                qb.push(" ORDER BY r.created_at DESC, r.id DESC LIMIT ")
                    .push_bind(clamp_limit(f.limit));
                let rows: Vec<RecordingRow> =
                    qb.build_query_as().fetch_all(&self.pool).await.map_err(db)?;
                Ok(rows.into_iter().map(Recording::from).collect())
            }

            async fn get_recording(&self, id: &str) -> Result<Option<Recording>, StoreError> {
                let row: Option<RecordingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {RECORDING_COLUMNS} FROM recordings r JOIN calls c ON c.id = r.call_id \
                     WHERE r.id = $1"
                )))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
                Ok(row.map(Recording::from))
            }

            async fn create_user(&self, u: &NewUser) -> Result<(), StoreError> {
                not_empty("user name", &u.name)?;
                not_empty("password hash", &u.password_hash)?;
                sqlx::query(
                    "INSERT INTO users (name, role, password_hash, sip_ha1_md5, sip_ha1_sha256, \
                     languages, disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&u.name)
                .bind(u.role)
                .bind(&u.password_hash)
                .bind(&u.sip_ha1_md5)
                .bind(&u.sip_ha1_sha256)
                .bind(Json(&u.languages))
                .bind(false)
                .bind(u.created_at)
                .execute(&self.pool)
                .await
                .map_err(db)
                .map_err(|e| match e {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("user {}", u.name)),
                    e => e,
                })?;
                Ok(())
            }

            async fn get_user(&self, name: &str) -> Result<Option<User>, StoreError> {
                let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE name = $1"
                )))
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
                Ok(row.map(User::from))
            }

            async fn list_users(&self) -> Result<Vec<User>, StoreError> {
                let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY name"
                )))
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                Ok(rows.into_iter().map(User::from).collect())
            }

            async fn update_user(&self, name: &str, u: &UserUpdate) -> Result<User, StoreError> {
                let n = sqlx::query(
                    "UPDATE users SET role = COALESCE($2, role), \
                     password_hash = COALESCE($3, password_hash), \
                     sip_ha1_md5 = COALESCE($4, sip_ha1_md5), \
                     sip_ha1_sha256 = COALESCE($5, sip_ha1_sha256), \
                     languages = COALESCE($6, languages), disabled = COALESCE($7, disabled) \
                     WHERE name = $1",
                )
                .bind(name)
                .bind(u.role)
                .bind(&u.password_hash)
                .bind(&u.sip_ha1_md5)
                .bind(&u.sip_ha1_sha256)
                .bind(u.languages.as_ref().map(Json))
                .bind(u.disabled)
                .execute(&self.pool)
                .await
                .map_err(db)?
                .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("user {name}")));
                }
                self.get_user(name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("user {name}")))
            }

            async fn create_api_token(&self, t: &NewApiToken) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                let user: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE name = $1")
                    .bind(&t.user)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                if user.is_none() {
                    return Err(StoreError::NotFound(format!("user {}", t.user)));
                }
                sqlx::query(
                    "INSERT INTO api_tokens (token_sha256, user_name, label, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(t.hash.as_str())
                .bind(&t.user)
                .bind(&t.label)
                .bind(t.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db)
                .map_err(|e| match e {
                    StoreError::Conflict(_) => StoreError::Conflict("that token exists".into()),
                    e => e,
                })?;
                tx.commit().await.map_err(db)
            }

            async fn find_api_token(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
                let row: Option<ApiTokenRow> = sqlx::query_as(
                    "SELECT token_sha256, user_name, label, created_at FROM api_tokens \
                     WHERE token_sha256 = $1",
                )
                .bind(hash.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
                Ok(row.and_then(token_from_row))
            }

            async fn list_api_tokens(&self, user: &str) -> Result<Vec<ApiToken>, StoreError> {
                let rows: Vec<ApiTokenRow> = sqlx::query_as(
                    "SELECT token_sha256, user_name, label, created_at FROM api_tokens \
                     WHERE user_name = $1 ORDER BY created_at, token_sha256",
                )
                .bind(user)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                Ok(rows.into_iter().filter_map(token_from_row).collect())
            }

            async fn delete_api_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
                let n = sqlx::query("DELETE FROM api_tokens WHERE token_sha256 = $1")
                    .bind(hash.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn append_audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                Self::append_audit_in(&mut tx, entry).await?;
                tx.commit().await.map_err(db)
            }

            async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1"
                ));
                if let Some(v) = &f.user {
                    qb.push(" AND user_name = ").push_bind(v.as_str());
                }
                if let Some(v) = &f.recording_id {
                    qb.push(" AND recording_id = ").push_bind(v.as_str());
                }
                if let Some(v) = &f.action {
                    qb.push(" AND action = ").push_bind(v.as_str());
                }
                if let Some(v) = f.since {
                    qb.push(" AND at >= ").push_bind(v);
                }
                if let Some(v) = f.until {
                    qb.push(" AND at < ").push_bind(v);
                }
                if let Some(v) = &f.text {
                    let pattern = like_pattern(v);
                    let columns =
                        ["COALESCE(user_name, '')", "action", "COALESCE(recording_id, '')",
                         "COALESCE(source, '')", "detail"];
                    qb.push(" AND (");
                    for (i, column) in columns.iter().enumerate() {
                        if i > 0 {
                            qb.push(" OR ");
                        }
                        qb.push(format!("LOWER({column}) LIKE "))
                            .push_bind(pattern.clone())
                            .push(" ESCAPE '\\'");
                    }
                    qb.push(")");
                }
                qb.push(" ORDER BY at DESC, seq DESC LIMIT ").push_bind(clamp_limit(f.limit));
                qb.build_query_as().fetch_all(&self.pool).await.map_err(db)
            }

            async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
                not_empty("session id hash", &s.id_hash)?;
                not_empty("session csrf token", &s.csrf)?;
                let mut tx = self.begin_write().await?;
                let user: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE name = $1")
                    .bind(&s.user)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                if user.is_none() {
                    return Err(StoreError::NotFound(format!("user {}", s.user)));
                }
                sqlx::query(
                    "INSERT INTO console_sessions (id_hash, user_name, csrf, created_at, \
                     last_seen, expires_at, source) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&s.id_hash)
                .bind(&s.user)
                .bind(&s.csrf)
                .bind(s.created_at)
                .bind(s.last_seen)
                .bind(s.expires_at)
                .bind(&s.source)
                .execute(&mut *tx)
                .await
                .map_err(db)
                .map_err(|e| match e {
                    StoreError::Conflict(_) => StoreError::Conflict("that session exists".into()),
                    e => e,
                })?;
                tx.commit().await.map_err(db)
            }

            async fn get_session(&self, id_hash: &str) -> Result<Option<Session>, StoreError> {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {SESSION_COLUMNS} FROM console_sessions WHERE id_hash = $1"
                )))
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)
            }

            async fn touch_session(
                &self,
                id_hash: &str,
                last_seen: Timestamp,
            ) -> Result<(), StoreError> {
                let n = sqlx::query(
                    "UPDATE console_sessions SET last_seen = \
                     CASE WHEN last_seen < $2 THEN $2 ELSE last_seen END WHERE id_hash = $1",
                )
                .bind(id_hash)
                .bind(last_seen)
                .execute(&self.pool)
                .await
                .map_err(db)?
                .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound("session".into()));
                }
                Ok(())
            }

            async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
                let n = sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn delete_user_sessions(&self, user: &str) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM console_sessions WHERE user_name = $1")
                    .bind(user)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?
                    .rows_affected())
            }

            async fn purge_sessions(
                &self,
                idle_before: Timestamp,
                now: Timestamp,
            ) -> Result<u64, StoreError> {
                Ok(sqlx::query(
                    "DELETE FROM console_sessions WHERE last_seen < $1 OR expires_at <= $2",
                )
                .bind(idle_before)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(db)?
                .rows_affected())
            }

            async fn add_call_note(&self, n: &NewCallNote) -> Result<(), StoreError> {
                not_empty("note id", &n.id)?;
                not_empty("note author", &n.author)?;
                not_empty("note text", &n.text)?;
                let mut tx = self.begin_write().await?;
                let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM calls WHERE id = $1")
                    .bind(&n.call_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(format!("call {}", n.call_id)));
                }
                sqlx::query(
                    "INSERT INTO call_notes (id, call_id, author, at, text) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(&n.id)
                .bind(&n.call_id)
                .bind(&n.author)
                .bind(n.at)
                .bind(&n.text)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                tx.commit().await.map_err(db)
            }

            async fn count_calls_by_caller(
                &self,
                caller: &Caller,
                before: Timestamp,
            ) -> Result<u64, StoreError> {
                let Some(value) = caller.value() else { return Ok(0) };
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM calls \
                     WHERE caller_kind = $1 AND caller = $2 AND started_at < $3",
                )
                .bind(caller.kind_str())
                .bind(value)
                .bind(before)
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn count_marked_calls_by_caller(
                &self,
                caller: &Caller,
                mark: &str,
                before: Timestamp,
            ) -> Result<u64, StoreError> {
                let Some(value) = caller.value() else { return Ok(0) };
                // `marks` is a JSON list of plain words: its text holds `"mark"` exactly
                // when the list does (both dialects print JSON strings quoted).
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM calls \
                     WHERE caller_kind = $1 AND caller = $2 AND started_at < $3 \
                     AND CAST(marks AS TEXT) LIKE $4",
                )
                .bind(caller.kind_str())
                .bind(value)
                .bind(before)
                .bind(format!("%\"{mark}\"%"))
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn daily_stats(
                &self,
                since: Timestamp,
                zone: &$crate::Zone,
            ) -> Result<Vec<DailyStat>, StoreError> {
                // Counted by UTC quarter hour in SQL (an integer division: timestamps are ms
                // since the epoch, so both dialects run the same text), summed into the zone's
                // days here.
                let rows: Vec<$crate::sql::QuarterStatRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT c.started_at / {quarter} AS quarter, c.language, c.disposition, \
                     COUNT(*) AS calls, COUNT(c.queue_wait_ms) AS queue_wait_count, \
                     CAST(COALESCE(SUM(c.queue_wait_ms), 0) AS BIGINT) AS queue_wait_ms_sum, \
                     CAST(COALESCE(MAX(c.queue_wait_ms), 0) AS BIGINT) AS queue_wait_ms_max \
                     FROM calls c WHERE c.started_at >= $1 \
                     GROUP BY c.started_at / {quarter}, c.language, c.disposition",
                    quarter = $crate::Zone::QUARTER_MS,
                )))
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                Ok($crate::sql::daily_from_quarters(rows, zone))
            }

            async fn list_call_notes(&self, call_id: &str) -> Result<Vec<CallNote>, StoreError> {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {NOTE_COLUMNS} FROM call_notes WHERE call_id = $1 ORDER BY at, seq"
                )))
                .bind(call_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db)
            }
        }

        fn token_from_row(r: ApiTokenRow) -> Option<ApiToken> {
            Some(ApiToken {
                hash: TokenHash::from_hex(&r.token_sha256)?,
                user: r.user_name,
                label: r.label,
                created_at: r.created_at,
            })
        }
    };
}

pub(crate) use impl_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards_and_lowercases() {
        assert_eq!(like_pattern("Login"), "%login%");
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(like_pattern(""), "%%");
    }
}
