//! [`ClusterError`].

/// What went wrong talking to the cluster's database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The database did not answer or refused the query.
    #[error("cluster database: {0}")]
    Database(#[from] sqlx::Error),
    /// A row the cluster wrote could not be read back (another version's format).
    #[error("cluster state: {0}")]
    Format(#[from] serde_json::Error),
}
