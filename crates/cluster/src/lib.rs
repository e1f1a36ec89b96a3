//! hotline-cluster: what several `hotline serve` nodes behind Kamailio share, through
//! PostgreSQL. The one-process hotline never uses it.
//!
//! - `lease`: each node renews a lease once a second ([`Cluster::start_lease`]); a node whose
//!   lease ran out is dead ([`Cluster::dead_runs`]). The database's clock decides, never a
//!   node's.
//! - `recordings_lock`: an advisory lock per node's recordings directory, so that a node's
//!   start-up repair and a survivor's adoption of the same directory never run at once.
//! - `queue`: one operator queue for the whole hotline behind the same
//!   [`QueueHandle`](hotline_queue::QueueHandle): a leader elected by an advisory lock runs
//!   the pure [`OperatorQueue`](hotline_queue::OperatorQueue), reads every node's inputs
//!   from `queue_log`, persists a checkpoint with each step, and tells each node its calls'
//!   events by `NOTIFY`.
//!
//! - `bindings`: the operators' softphone bindings each node's registrar holds
//!   (`sip_bindings`), so that any node can ring any registered operator.
//!
//! The tables are the store's migration `0003_cluster.sql`.

mod bindings;
mod error;
mod lease;
mod queue;
mod recordings_lock;

pub use bindings::{Published, SharedBinding};
pub use error::ClusterError;
pub use lease::DeadRun;
pub use recordings_lock::RecordingsLock;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// This node's handle on the cluster: its id, its lease, a pool of its own.
#[derive(Debug, Clone)]
pub struct Cluster {
    pool: PgPool,
    options: PgConnectOptions,
    node: String,
    lease: Duration,
    health: std::sync::Arc<lease::LeaseHealth>,
}

impl Cluster {
    /// A handle for node `node` on the PostgreSQL at `url`. Connects lazily: this fails only
    /// on a malformed URL, so a node starts while the database is away.
    pub fn connect(url: &str, node: &str, lease: Duration) -> Result<Cluster, ClusterError> {
        let options = PgConnectOptions::from_str(url)?.application_name("hotline-cluster");
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options.clone());
        Ok(Cluster {
            pool,
            options,
            node: node.to_owned(),
            lease,
            health: std::sync::Arc::default(),
        })
    }

    /// This node's id (`cluster.node_id`).
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// How long a lease lasts (`cluster.lease_secs`).
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The pool, for the cluster's other parts in the binary.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A pool of one connection for a `LISTEN` (which holds its connection for good), so that
    /// listeners never take connections from the queries of calls and leases.
    pub(crate) fn listen_pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(self.options.clone())
    }

    /// Options for a dedicated connection (the queue leader's lock, `LISTEN`).
    pub(crate) fn connect_options(&self) -> &PgConnectOptions {
        &self.options
    }
}
