//! [`ClusterError`].

/// What went wrong talking to the cluster's database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The database did not answer or refused the query.
    #[error("cluster database: {0}")]
    Database(#[from] sqlx::Error),
    /// Another run took this node's lease: `cluster.node_id` is given to two nodes.
    #[error("another run holds the lease of node {0}: is cluster.node_id given to two nodes?")]
    LeaseTaken(String),
    /// A row the cluster wrote could not be read back (another version's format).
    #[error("cluster state: {0}")]
    Format(#[from] serde_json::Error),
}
