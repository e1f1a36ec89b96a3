//! The embedded default: one SQLite file in the data dir, WAL.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::pool::PoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::callback_sql::impl_callbacks;
use crate::sql::impl_store;

const BACKEND: Backend = Backend::Sqlite;

fn db(e: sqlx::Error) -> StoreError {
    StoreError::classify(BACKEND, e)
}

/// How hard a commit waits for the disk (SQLite `PRAGMA synchronous`, in WAL mode).
///
/// The default is `FULL`: a message's row must survive a power cut as its WAV file does (the
/// recorder fsyncs it). Group commit pays the fsync once per batch, so it costs little: measured
/// here, 9 400–12 300 ops/s through the writer with `FULL` against 25 300 with `NORMAL`, for a
/// load of a few ops per call. `?synchronous=normal` in the URL picks `NORMAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteDurability {
    /// `NORMAL`: a commit survives a crash of the process; a power cut or kernel crash may undo
    /// the last commits (the WAL is synced at checkpoints).
    Normal,
    /// `FULL`: a commit is on disk when it returns (one fsync per commit; the writer's group
    /// commit pays it once per batch).
    #[default]
    Full,
}

/// Settings for [`SqliteStore::open`].
#[derive(Debug, Clone)]
pub struct SqliteSettings {
    pub durability: SqliteDurability,
    /// How long a connection waits for another's write lock.
    pub busy_timeout: Duration,
    pub max_connections: u32,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        SqliteSettings {
            durability: SqliteDurability::default(),
            busy_timeout: Duration::from_secs(5),
            max_connections: 4,
        }
    }
}

/// A [`CallStore`] in a SQLite file: WAL, `synchronous` per [`SqliteDurability`] (`FULL` by
/// default), a 5 s busy timeout, foreign keys on, created if missing.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::Pool<Sqlite>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed, with its directory) the database file at `path`.
    pub async fn open(path: &Path, settings: &SqliteSettings) -> Result<SqliteStore, StoreError> {
        Self::open_with(SqliteConnectOptions::new().filename(path), settings).await
    }

    /// Opens `sqlite://PATH[?params]`. Besides sqlx's parameters (`mode`, `cache`, `vfs`, …),
    /// `synchronous=normal|full` sets [`SqliteDurability`].
    pub async fn connect(url: &str, settings: &SqliteSettings) -> Result<SqliteStore, StoreError> {
        let mut settings = settings.clone();
        let (base, params) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        for param in params.split('&').filter(|p| !p.is_empty()) {
            match param.split_once('=') {
                Some(("synchronous", v)) => {
                    settings.durability = match v.to_ascii_lowercase().as_str() {
                        "normal" => SqliteDurability::Normal,
                        "full" => SqliteDurability::Full,
                        _ => {
                            return Err(StoreError::Invalid(format!(
                                "synchronous must be normal or full, not {v:?}"
                            )));
                        }
                    }
                }
                _ => kept.push(param),
            }
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let options = SqliteConnectOptions::from_str(&url).map_err(db)?;
        Self::open_with(options, &settings).await
    }

    async fn open_with(
        options: SqliteConnectOptions,
        settings: &SqliteSettings,
    ) -> Result<SqliteStore, StoreError> {
        let path = options.get_filename().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| db(sqlx::Error::Io(e)))?;
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match settings.durability {
                SqliteDurability::Normal => SqliteSynchronous::Normal,
                SqliteDurability::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(settings.busy_timeout)
            .foreign_keys(true);
        let pool = PoolOptions::<Sqlite>::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(db)?;
        Ok(SqliteStore { pool, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `BEGIN IMMEDIATE`: take the write lock up front, so the busy timeout applies to it and a
    /// transaction never fails half-way on an upgrade from read to write.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }
}

impl_store!(SqliteStore, Sqlite);
impl_callbacks!(SqliteStore, Sqlite);
