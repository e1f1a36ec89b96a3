//! The lock on one node's recordings directory: a PostgreSQL session advisory lock keyed by
//! the node's id, held on a connection of its own for as long as a repair runs. The node's
//! own start-up repair waits for it ([`Cluster::lock_recordings`]); a survivor adopting a dead
//! node's recordings only tries it ([`Cluster::try_lock_recordings`]), so an adoption and the
//! owner's repair of the same directory never run at once.
//!
//! The lock ends with its connection: [`RecordingsLock::release`], dropping the guard, or the
//! process dying (the server ends the session) all free it.

use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

use crate::{Cluster, ClusterError};

/// How long opening the lock's connection may take before the database counts as away.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

// The key of a node's lock: `hashtext('hotline-recordings:' || node)` in each query below.
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtext('hotline-recordings:' || $1))";
const LOCK: &str = "SELECT pg_advisory_lock(hashtext('hotline-recordings:' || $1))";
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtext('hotline-recordings:' || $1))";

/// A held lock on a node's recordings directory (see the module docs).
#[derive(Debug)]
pub struct RecordingsLock {
    conn: PgConnection,
    node: String,
}

impl RecordingsLock {
    /// The node whose recordings are locked.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// Unlocks and closes the connection. An error here still frees the lock: the session
    /// ends with the connection.
    pub async fn release(mut self) -> Result<(), ClusterError> {
        let unlocked: Result<bool, sqlx::Error> = sqlx::query_scalar(UNLOCK)
            .bind(&self.node)
            .fetch_one(&mut self.conn)
            .await;
        let closed = self.conn.close().await;
        unlocked?;
        closed?;
        Ok(())
    }
}

impl Cluster {
    /// Locks `node`'s recordings directory, waiting while another node holds the lock (an
    /// adoption in progress). Fails if the database is away.
    pub async fn lock_recordings(&self, node: &str) -> Result<RecordingsLock, ClusterError> {
        let mut conn = self.lock_connection().await?;
        sqlx::query(LOCK).bind(node).execute(&mut conn).await?;
        Ok(RecordingsLock {
            conn,
            node: node.to_owned(),
        })
    }

    /// Locks `node`'s recordings directory if nobody holds it; `None` if somebody does.
    pub async fn try_lock_recordings(
        &self,
        node: &str,
    ) -> Result<Option<RecordingsLock>, ClusterError> {
        let mut conn = self.lock_connection().await?;
        let got: bool = sqlx::query_scalar(TRY_LOCK)
            .bind(node)
            .fetch_one(&mut conn)
            .await?;
        if got {
            Ok(Some(RecordingsLock {
                conn,
                node: node.to_owned(),
            }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    async fn lock_connection(&self) -> Result<PgConnection, ClusterError> {
        match tokio::time::timeout(
            CONNECT_TIMEOUT,
            PgConnection::connect_with(self.connect_options()),
        )
        .await
        {
            Ok(conn) => Ok(conn?),
            Err(_) => Err(ClusterError::Database(sqlx::Error::Io(
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting for the recordings lock timed out",
                ),
            ))),
        }
    }
}
