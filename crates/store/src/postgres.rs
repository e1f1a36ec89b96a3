//! Production: PostgreSQL (shared by several hotline nodes).

use std::str::FromStr;
use std::time::Duration;

use sqlx::Postgres;
use sqlx::pool::PoolOptions;
use sqlx::postgres::PgConnectOptions;

use crate::callback_sql::impl_callbacks;
use crate::sql::impl_store;

const BACKEND: Backend = Backend::Postgres;

fn db(e: sqlx::Error) -> StoreError {
    StoreError::classify(BACKEND, e)
}

/// Settings for [`PgStore::connect`].
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Schema to use instead of the URL user's default (`SET search_path`); tests use a fresh one.
    pub schema: Option<String>,
    pub max_connections: u32,
    /// How long to wait for a connection before the database counts as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PgSettings {
    fn default() -> Self {
        PgSettings {
            schema: None,
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`CallStore`] in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: sqlx::Pool<Postgres>,
}

impl PgStore {
    /// A pool for `postgres://USER@HOST:PORT/DB` (name the user: sqlx-postgres 0.9 does not fall
    /// back to `$USER`). Connects lazily: this fails only on a malformed URL, so `serve` starts
    /// (and spools) while the database is away; [`CallStore::ping`] and [`CallStore::migrate`]
    /// tell whether it is there.
    pub fn connect(url: &str, settings: &PgSettings) -> Result<PgStore, StoreError> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(db)?
            .application_name("hotline");
        if let Some(schema) = &settings.schema {
            if !schema
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_')
                || schema.is_empty()
            {
                return Err(StoreError::Invalid(format!("schema name {schema:?}")));
            }
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = PoolOptions::<Postgres>::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options);
        Ok(PgStore { pool })
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(db)
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }
}

impl_store!(PgStore, Postgres);
impl_callbacks!(PgStore, Postgres);
