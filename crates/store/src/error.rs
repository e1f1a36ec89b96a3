//! [`StoreError`] and the sorting of database errors into "try again later" and "this write is
//! wrong".

use crate::Backend;

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is refusing work for now (connection refused or lost,
    /// pool timed out, server shutting down, disk full, SQLite busy). Retrying later may work:
    /// the writer spools.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// An operation took longer than its time limit; it may or may not have been applied.
    #[error("database operation timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// No row with that key.
    #[error("not found: {0}")]
    NotFound(String),
    /// A unique key is taken (a user name, a token).
    #[error("already exists: {0}")]
    Conflict(String),
    /// A value the store refuses (empty name, malformed id).
    #[error("invalid: {0}")]
    Invalid(String),
    /// Any other database error (constraint, type, SQL): retrying will not help.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether retrying later may succeed (the writer spools on these, and rejects the rest).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Timeout(_))
    }

    pub(crate) fn classify(backend: Backend, e: sqlx::Error) -> StoreError {
        use sqlx::Error as E;
        match &e {
            E::Io(_)
            | E::Tls(_)
            | E::Protocol(_)
            | E::PoolTimedOut
            | E::PoolClosed
            | E::WorkerCrashed
            | E::BeginFailed => StoreError::Unavailable(e),
            E::RowNotFound => StoreError::NotFound(e.to_string()),
            E::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                if transient_code(backend, &code) {
                    StoreError::Unavailable(e)
                } else if db.is_unique_violation() {
                    StoreError::Conflict(db.message().to_owned())
                } else {
                    StoreError::Database(e)
                }
            }
            _ => StoreError::Database(e),
        }
    }
}

fn transient_code(backend: Backend, code: &str) -> bool {
    match backend {
        // SQLSTATE classes: 08 connection exception, 53 insufficient resources (disk full, too
        // many connections), 57 operator intervention (shutdown, terminated backend), 58 system
        // error (I/O); 40001/40P01 serialization failure and deadlock; 25006 read-only
        // transaction (a standby during failover); 55P03 lock not available.
        Backend::Postgres => {
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code.starts_with("58")
                || matches!(code, "40001" | "40P01" | "25006" | "55P03")
        }
        // Extended result codes: the primary code is the low byte. BUSY, LOCKED, NOMEM, IOERR,
        // FULL, CANTOPEN, PROTOCOL.
        Backend::Sqlite => code
            .parse::<i32>()
            .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 7 | 10 | 13 | 14 | 15)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert!(transient_code(Backend::Postgres, "57P01"));
        assert!(transient_code(Backend::Postgres, "08006"));
        assert!(!transient_code(Backend::Postgres, "23505"));
        assert!(transient_code(Backend::Sqlite, "5"));
        assert!(transient_code(Backend::Sqlite, "517")); // SQLITE_BUSY_SNAPSHOT
        assert!(transient_code(Backend::Sqlite, "3338")); // SQLITE_IOERR_FSYNC
        assert!(!transient_code(Backend::Sqlite, "2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(!transient_code(Backend::Sqlite, "787")); // SQLITE_CONSTRAINT_FOREIGNKEY
    }
}
