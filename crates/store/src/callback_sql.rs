//! The callbacks' SQL, shared by both backends like [`crate::sql`]: a macro over the concrete
//! sqlx database type, invoked next to `impl_store!` (it uses that module's `Conn` and `db`).

/// Columns of a callback with its call's reference, from `callbacks b JOIN calls c`.
pub(crate) const CALLBACK_COLUMNS: &str = "b.id, b.call_id, c.reference, b.pseudonym, \
    b.language, b.window_name, b.state, b.attempts, b.created_at, b.next_at, b.expires_at, \
    b.ended_at, b.cancelled_by, (b.number_sealed IS NOT NULL) AS has_number";

/// Implements [`crate::CallbackStore`] for `$store` and its `insert_callback_in` (the writer's
/// op).
macro_rules! impl_callbacks {
    ($store:ident, $db:ty) => {
        use $crate::callback::{Callback, CallbackState, CallbackStore, ClaimedCallback, NewCallback};
        use $crate::callback_sql::CALLBACK_COLUMNS;

        impl $store {
            pub(crate) async fn insert_callback_in(
                conn: &mut Conn,
                b: &NewCallback,
            ) -> Result<(), StoreError> {
                if b.id.trim().is_empty() {
                    return Err(StoreError::Invalid("callback id is empty".into()));
                }
                let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM calls WHERE id = $1")
                    .bind(&b.call_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(format!("call {}", b.call_id)));
                }
                sqlx::query(
                    "INSERT INTO callbacks (id, call_id, pseudonym, language, window_name, state, \
                     attempts, number_sealed, created_at, next_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                )
                .bind(&b.id)
                .bind(&b.call_id)
                .bind(&b.pseudonym)
                .bind(&b.language)
                .bind(&b.window)
                .bind(&b.number_sealed)
                .bind(b.created_at)
                .bind(b.next_at)
                .bind(b.expires_at)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
                Ok(())
            }

            async fn callback_by_id(
                conn: &mut Conn,
                id: &str,
            ) -> Result<Option<Callback>, StoreError> {
                sqlx::query_as::<_, Callback>(sqlx::AssertSqlSafe(format!(
                    "SELECT {CALLBACK_COLUMNS} FROM callbacks b JOIN calls c ON c.id = b.call_id \
                     WHERE b.id = $1"
                )))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)
            }
        }

        #[async_trait]
        impl CallbackStore for $store {
            async fn insert_callback(&self, b: &NewCallback) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                Self::insert_callback_in(&mut tx, b).await?;
                tx.commit().await.map_err(db)
            }

            async fn get_callback(&self, id: &str) -> Result<Option<Callback>, StoreError> {
                let mut conn = self.pool.acquire().await.map_err(db)?;
                Self::callback_by_id(&mut conn, id).await
            }

            async fn open_callbacks(&self, limit: u32) -> Result<Vec<Callback>, StoreError> {
                sqlx::query_as::<_, Callback>(sqlx::AssertSqlSafe(format!(
                    "SELECT {CALLBACK_COLUMNS} FROM callbacks b JOIN calls c ON c.id = b.call_id \
                     WHERE b.state IN ('pending', 'placing') ORDER BY b.next_at, b.id LIMIT $1"
                )))
                .bind($crate::model::clamp_limit(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db)
            }

            async fn claim_callback(
                &self,
                id: &str,
                node: &str,
                now: Timestamp,
            ) -> Result<Option<ClaimedCallback>, StoreError> {
                let mut tx = self.begin_write().await?;
                // One statement decides: of two nodes claiming, the second matches no row.
                let sealed: Option<Option<Vec<u8>>> = sqlx::query_scalar(
                    "UPDATE callbacks SET state = 'placing', claimed_by = $2, claimed_at = $3 \
                     WHERE id = $1 AND state = 'pending' RETURNING number_sealed",
                )
                .bind(id)
                .bind(node)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                let Some(Some(number_sealed)) = sealed else {
                    tx.rollback().await.map_err(db)?;
                    return Ok(None);
                };
                let callback = Self::callback_by_id(&mut tx, id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("callback {id}")))?;
                tx.commit().await.map_err(db)?;
                Ok(Some(ClaimedCallback {
                    callback,
                    number_sealed,
                }))
            }

            async fn retry_callback(
                &self,
                id: &str,
                attempts: i64,
                next_at: Timestamp,
            ) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "UPDATE callbacks SET state = 'pending', attempts = $2, next_at = $3, \
                     claimed_by = NULL, claimed_at = NULL WHERE id = $1 AND state = 'placing'",
                )
                .bind(id)
                .bind(attempts)
                .bind(next_at)
                .execute(&self.pool)
                .await
                .map_err(db)?
                .rows_affected();
                Ok(n == 1)
            }

            async fn end_callback(
                &self,
                id: &str,
                state: CallbackState,
                attempts: Option<i64>,
                now: Timestamp,
                cancelled_by: Option<&str>,
            ) -> Result<bool, StoreError> {
                if !state.is_final() {
                    return Err(StoreError::Invalid(format!("{state} is not an end")));
                }
                // The number goes in the same statement as the state: no ended row keeps it.
                let n = sqlx::query(
                    "UPDATE callbacks SET state = $2, attempts = COALESCE($3, attempts), \
                     ended_at = $4, cancelled_by = $5, number_sealed = NULL, claimed_by = NULL, \
                     claimed_at = NULL WHERE id = $1 AND state IN ('pending', 'placing')",
                )
                .bind(id)
                .bind(state)
                .bind(attempts)
                .bind(now)
                .bind(cancelled_by)
                .execute(&self.pool)
                .await
                .map_err(db)?
                .rows_affected();
                Ok(n == 1)
            }

            async fn release_stale_callbacks(
                &self,
                claimed_before: Timestamp,
            ) -> Result<u64, StoreError> {
                let n = sqlx::query(
                    "UPDATE callbacks SET state = 'pending', claimed_by = NULL, claimed_at = NULL \
                     WHERE state = 'placing' AND claimed_at < $1",
                )
                .bind(claimed_before)
                .execute(&self.pool)
                .await
                .map_err(db)?
                .rows_affected();
                Ok(n)
            }
        }
    };
}

pub(crate) use impl_callbacks;
