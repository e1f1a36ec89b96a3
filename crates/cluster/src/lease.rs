//! Node leases: each node renews its row in `cluster_nodes` once a second; a node whose
//! heartbeat is older than the lease is dead. The database's clock (`now()`) decides, so
//! clock skew between nodes never makes a live node look dead.
//!
//! A node that itself could not reach the database judges nobody until it has renewed its
//! own lease for a whole lease again: after a database outage every node's heartbeat is
//! old, and nobody may adopt the recordings of a node that is in fact alive.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Cluster, ClusterError};

/// How often a node renews its lease.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);

/// A run of a node that ended without a clean stop (its lease ran out) and whose
/// unfinished work nobody has adopted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadRun {
    /// The dead node's id.
    pub node_id: String,
    /// When that run started (unix ms, database clock): the run's identity.
    pub started_at: i64,
}

/// What this node knows of its own lease.
#[derive(Debug, Default)]
pub(crate) struct LeaseHealth {
    /// This run's `started_at`, once registered.
    run: Mutex<Option<i64>>,
    /// Since when every renewal succeeded (`None`: the last one failed).
    healthy_since: Mutex<Option<Instant>>,
    /// The last renewal that succeeded.
    renewed_at: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Cluster {
    /// Registers this run in `cluster_nodes` and renews its lease every second, in a task of
    /// its own, for as long as the runtime runs. A database that is away is retried each
    /// second.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start_lease(&self) {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let ok = match cluster.renew().await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "cluster lease not renewed");
                        false
                    }
                };
                let now = Instant::now();
                let mut since = lock(&cluster.health.healthy_since);
                if ok {
                    since.get_or_insert(now);
                    *lock(&cluster.health.renewed_at) = Some(now);
                } else {
                    *since = None;
                }
            }
        });
    }

    async fn renew(&self) -> Result<(), ClusterError> {
        let run = *lock(&self.health.run);
        match run {
            None => {
                let started: i64 = sqlx::query_scalar(
                    "INSERT INTO cluster_nodes (node_id, started_at, heartbeat_at) \
                     VALUES ($1, (extract(epoch from clock_timestamp()) * 1000)::bigint, now()) \
                     ON CONFLICT (node_id) DO UPDATE \
                     SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at \
                     RETURNING started_at",
                )
                .bind(&self.node)
                .fetch_one(&self.pool)
                .await?;
                *lock(&self.health.run) = Some(started);
                tracing::info!(node = %self.node, started_at = started, "cluster lease taken");
            }
            Some(run) => {
                let n = sqlx::query(
                    "UPDATE cluster_nodes SET heartbeat_at = now() \
                     WHERE node_id = $1 AND started_at = $2",
                )
                .bind(&self.node)
                .bind(run)
                .execute(&self.pool)
                .await?
                .rows_affected();
                if n == 0 {
                    return Err(ClusterError::LeaseTaken(self.node.clone()));
                }
            }
        }
        Ok(())
    }

    /// This run's `started_at`, once its lease was taken.
    pub fn run_started_at(&self) -> Option<i64> {
        *lock(&self.health.run)
    }

    /// Whether this node renewed its lease within the lease time: while it does not, other
    /// nodes may take it for dead.
    pub fn lease_held(&self) -> bool {
        lock(&self.health.renewed_at).is_some_and(|t| t.elapsed() < self.lease)
    }

    /// Whether this node may judge others: it has renewed its own lease without a failure
    /// for at least a whole lease.
    pub(crate) fn may_judge(&self) -> bool {
        lock(&self.health.healthy_since).is_some_and(|t| t.elapsed() >= self.lease)
    }

    /// Runs of other nodes whose lease ran out and that nobody adopted yet. Empty while this
    /// node may not judge (see the module docs).
    pub async fn dead_runs(&self) -> Result<Vec<DeadRun>, ClusterError> {
        if !self.may_judge() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT n.node_id, n.started_at FROM cluster_nodes n \
             WHERE n.node_id <> $1 \
               AND n.heartbeat_at < now() - make_interval(secs => $2) \
               AND NOT EXISTS (SELECT 1 FROM cluster_adoptions a \
                               WHERE a.node_id = n.node_id AND a.started_at = n.started_at \
                                 AND (a.done_at IS NOT NULL OR EXISTS ( \
                                      SELECT 1 FROM cluster_nodes m \
                                      WHERE m.node_id = a.adopted_by \
                                        AND m.started_at = a.adopter_run \
                                        AND m.heartbeat_at >= now() - make_interval(secs => $2)))) \
             ORDER BY n.node_id",
        )
        .bind(&self.node)
        .bind(self.lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(node_id, started_at)| DeadRun {
                node_id,
                started_at,
            })
            .collect())
    }

    /// Nodes whose lease is current (this one included, if it renewed).
    pub async fn live_nodes(&self) -> Result<Vec<String>, ClusterError> {
        Ok(sqlx::query_scalar(
            "SELECT node_id FROM cluster_nodes \
             WHERE heartbeat_at >= now() - make_interval(secs => $1) ORDER BY node_id",
        )
        .bind(self.lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Claims the adoption of `run`'s unfinished work for this node. `false`: another live
    /// node holds the claim or finished it, the node came back (a new run) in the meantime,
    /// or this node has no lease yet. A claim whose adopter died before it was done is taken
    /// over.
    pub async fn claim_adoption(&self, run: &DeadRun) -> Result<bool, ClusterError> {
        let Some(me) = self.run_started_at() else {
            return Ok(false);
        };
        let n = sqlx::query(
            "INSERT INTO cluster_adoptions (node_id, started_at, adopted_by, adopter_run, adopted_at) \
             SELECT $1, $2, $3, $5, now() WHERE EXISTS ( \
                 SELECT 1 FROM cluster_nodes WHERE node_id = $1 AND started_at = $2 \
                   AND heartbeat_at < now() - make_interval(secs => $4)) \
             ON CONFLICT (node_id, started_at) DO UPDATE SET \
                 adopted_by = excluded.adopted_by, adopter_run = excluded.adopter_run, \
                 adopted_at = excluded.adopted_at \
             WHERE cluster_adoptions.done_at IS NULL AND NOT EXISTS ( \
                 SELECT 1 FROM cluster_nodes m \
                 WHERE m.node_id = cluster_adoptions.adopted_by \
                   AND m.started_at = cluster_adoptions.adopter_run \
                   AND m.heartbeat_at >= now() - make_interval(secs => $4))",
        )
        .bind(&run.node_id)
        .bind(run.started_at)
        .bind(&self.node)
        .bind(self.lease.as_secs_f64())
        .bind(me)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Records how many recordings the adoption of `run` entered in the store.
    pub async fn adoption_done(&self, run: &DeadRun, recordings: u32) -> Result<(), ClusterError> {
        sqlx::query(
            "UPDATE cluster_adoptions SET recordings = $3, done_at = now() \
             WHERE node_id = $1 AND started_at = $2",
        )
        .bind(&run.node_id)
        .bind(run.started_at)
        .bind(i32::try_from(recordings).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
