//! The queue leader: one node at a time runs the hotline's [`OperatorQueue`].
//!
//! Every node campaigns: it holds a connection of its own blocked in
//! `pg_advisory_lock(LEADER_LOCK)`. The one that gets the lock restores the queue from the
//! last checkpoint (`queue_leader`), then loops: apply the inputs logged since
//! (`queue_log`, in order), fire due timers, cancel the calls of nodes whose run is over
//! (dead, or restarted), derive who is registered from the shared bindings, and commit one
//! transaction per step on the lock's connection: the events for each node
//! (`queue_outbox`), the new checkpoint, and a `NOTIFY` per node. If that connection dies
//! (kill -9, a network cut) PostgreSQL frees the lock at once and the next node leads from
//! the last committed step: an event is told once, or its step is redone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hotline_queue::{CallId, OperatorName, OperatorQueue, QueueConfig};
use serde::{Deserialize, Serialize};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnection, PgListener};

use super::wire::{Input, Output};
use super::{INBOX_CHANNEL, node_channel};
use crate::{Cluster, ClusterError};

/// The advisory lock whose holder leads the queue (any constant the hotline owns).
const LEADER_LOCK: i64 = 0x686f_746c_696e_6501;
/// Inputs applied per step at most.
const BATCH: i64 = 500;
/// How often the leader looks at nodes and bindings, and at the log without a NOTIFY.
const TICK: Duration = Duration::from_millis(500);
/// Outbox rows older than this are deleted (nodes read theirs within a second).
const OUTBOX_KEEP_SECS: f64 = 3600.0;

/// What the leader persists: the queue and where each queued call lives.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct LeaderState {
    pub(crate) queue: hotline_queue::Checkpoint,
    /// call → (node, run): whose call it is.
    pub(crate) calls: BTreeMap<String, (String, i64)>,
}

/// The `queue_leader` row: the state, the last input applied, how old it is.
pub(crate) async fn load(
    pool: &sqlx::PgPool,
) -> Result<Option<(LeaderState, i64, Duration)>, ClusterError> {
    let row: Option<(serde_json::Value, i64, f64)> = sqlx::query_as(
        "SELECT state, applied_seq, extract(epoch from (now() - updated_at))::float8 \
         FROM queue_leader WHERE id = 1",
    )
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(None),
        Some((state, seq, age)) => Ok(Some((
            serde_json::from_value(state)?,
            seq,
            Duration::from_secs_f64(age.max(0.0)),
        ))),
    }
}

/// Campaigns for the lead, leads while it holds it, campaigns again when it loses it. Runs
/// for as long as the runtime.
pub(crate) async fn campaign(cluster: Cluster, config: QueueConfig) {
    loop {
        match PgConnection::connect_with(cluster.connect_options()).await {
            Ok(mut conn) => {
                // The server notices a leader whose host vanished (no FIN, no RST) within
                // seconds, not after the kernel's hours of TCP keep-alive, and frees the lock.
                for set in [
                    "SET tcp_keepalives_idle = 2",
                    "SET tcp_keepalives_interval = 1",
                    "SET tcp_keepalives_count = 3",
                    "SET tcp_user_timeout = 5000",
                ] {
                    let _ = sqlx::query(set).execute(&mut conn).await;
                }
                let locked = sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(LEADER_LOCK)
                    .execute(&mut conn)
                    .await;
                match locked {
                    Ok(_) => {
                        tracing::info!(node = %cluster.node_id(), "this node now leads the operator queue");
                        let why = Leader::start(&cluster, &config, conn).await;
                        match why {
                            Ok(never) => match never {},
                            Err(e) => {
                                tracing::warn!(error = %e, "this node no longer leads the operator queue");
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "queue leader campaign interrupted"),
                }
            }
            Err(e) => tracing::debug!(error = %e, "queue leader campaign: database away"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[derive(Debug)]
struct Leader {
    cluster: Cluster,
    conn: PgConnection,
    queue: OperatorQueue,
    calls: BTreeMap<String, (String, i64)>,
    applied: i64,
    /// Operators the bindings say are registered (what the queue was told).
    registered: BTreeSet<String>,
    /// Outbox rows made outside the queue's events (calls of ended runs), for the next commit.
    told: Vec<(String, String, serde_json::Value)>,
}

/// Never constructed: [`Leader::start`] only returns with an error.
enum Never {}

impl Leader {
    async fn start(
        cluster: &Cluster,
        config: &QueueConfig,
        conn: PgConnection,
    ) -> Result<Never, ClusterError> {
        let now = Instant::now();
        let (queue, calls, applied) = match load(cluster.pool()).await? {
            Some((state, seq, age)) => {
                let then = now.checked_sub(age).unwrap_or(now);
                (
                    OperatorQueue::restore(config.clone(), &state.queue, then),
                    state.calls,
                    seq,
                )
            }
            None => (OperatorQueue::new(config.clone()), BTreeMap::new(), 0),
        };
        let registered = queue
            .snapshot(now)
            .operators
            .into_iter()
            .filter(|o| o.registered)
            .map(|o| o.name.into_string())
            .collect();
        let mut leader = Leader {
            cluster: cluster.clone(),
            conn,
            queue,
            calls,
            applied,
            registered,
            told: Vec::new(),
        };
        let mut listener = PgListener::connect_with(&cluster.listen_pool()).await?;
        listener.listen(INBOX_CHANNEL).await?;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune = Instant::now();
        loop {
            leader.step().await?;
            if last_prune.elapsed() > Duration::from_secs(60) {
                leader.prune().await?;
                last_prune = Instant::now();
            }
            let wake = leader.queue.poll_timeout();
            tokio::select! {
                n = listener.try_recv() => { n?; }
                () = sleep_until(wake) => {}
                _ = tick.tick() => {}
            }
        }
    }

    /// One step: inputs, timers, nodes, bindings; then one commit of what came out.
    async fn step(&mut self) -> Result<(), ClusterError> {
        let rows: Vec<(i64, String, serde_json::Value)> = sqlx::query_as(
            "SELECT seq, node_id, input FROM queue_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(self.applied)
        .bind(BATCH)
        .fetch_all(self.cluster.pool())
        .await?;
        let now = Instant::now();
        let mut changed = !rows.is_empty();
        for (seq, node, input) in rows {
            self.applied = seq;
            match serde_json::from_value::<Input>(input) {
                Ok(input) => {
                    if let Input::Enqueue { call, run, .. } = &input {
                        self.calls.insert(call.clone(), (node.clone(), *run));
                    }
                    if let Input::Ended { operator } = &input
                        && !self.on_call_of(operator, &node, now)
                    {
                        // A report from a node whose call with this operator the queue already
                        // ended (the node's run was taken for over): it must not end the
                        // operator's next conversation.
                        tracing::info!(operator = %operator, node = %node, "call-ended report for a call the queue no longer has; ignored");
                        continue;
                    }
                    input.apply(&mut self.queue, now);
                }
                Err(e) => tracing::error!(seq, error = %e, "queue input not understood; skipped"),
            }
        }
        if self.queue.poll_timeout().is_some_and(|t| t <= now) {
            self.queue.handle_timeout(now);
            changed = true;
        }
        changed |= self.end_calls_of_gone_runs(now).await?;
        changed |= self.sync_registrations(now).await?;
        let mut out: Vec<(String, String, serde_json::Value)> = std::mem::take(&mut self.told);
        changed |= !out.is_empty();
        while let Some(event) = self.queue.poll_event() {
            changed = true;
            let Some((call, o)) = Output::of(&event) else {
                continue;
            };
            // A call's node is known until the call leaves (below), so its last events too.
            if let Some((node, _)) = self.calls.get(call.as_str()) {
                out.push((node.clone(), call.into_string(), serde_json::to_value(&o)?));
            }
        }
        // Forget where calls were once the queue let them go.
        let queue = &self.queue;
        self.calls
            .retain(|c, _| queue.contains_call(&CallId::from(c.as_str())));
        if changed {
            self.commit(&out, now).await?;
        }
        Ok(())
    }

    /// Calls whose node's run is over (lease ran out, or the node started again) are gone:
    /// cancel them, which also ends an operator's conversation with one.
    async fn end_calls_of_gone_runs(&mut self, now: Instant) -> Result<bool, ClusterError> {
        if self.calls.is_empty() {
            return Ok(false);
        }
        let runs = self.cluster.current_runs().await?;
        let gone: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, (node, run))| runs.get(node).is_none_or(|r| r != run))
            .map(|(c, _)| c.clone())
            .collect();
        for call in &gone {
            let node = self.calls[call].0.clone();
            tracing::warn!(call = %call, node = %node, "queued call's node is gone; call leaves the queue");
            self.queue.cancel(now, CallId::from(call.as_str()));
            // Should the node be alive after all (cut from the database longer than its
            // lease), its caller hears that the queue let them go instead of waiting on.
            let no = Output::NoOperator {
                reason: hotline_queue::NoOperatorReason::NobodyLoggedIn
                    .as_str()
                    .to_owned(),
            };
            self.told
                .push((node, call.clone(), serde_json::to_value(&no)?));
        }
        Ok(!gone.is_empty())
    }

    /// Whether `operator` is on a call the queue holds for `node`.
    fn on_call_of(&self, operator: &str, node: &str, now: Instant) -> bool {
        self.queue
            .snapshot(now)
            .operators
            .into_iter()
            .find(|o| o.name.as_str() == operator)
            .and_then(|o| o.current_call)
            .is_some_and(|c| self.calls.get(c.as_str()).is_some_and(|(n, _)| n == node))
    }

    /// An operator is registered while some node holds a binding of theirs that has not
    /// expired (whichever node: any node can ring it through Kamailio).
    async fn sync_registrations(&mut self, now: Instant) -> Result<bool, ClusterError> {
        let bound: BTreeSet<String> = sqlx::query_scalar(
            "SELECT DISTINCT operator FROM sip_bindings WHERE expires_at > now()",
        )
        .fetch_all(self.cluster.pool())
        .await?
        .into_iter()
        .collect();
        if bound == self.registered {
            return Ok(false);
        }
        for name in bound.difference(&self.registered) {
            self.queue
                .registration(now, OperatorName::from(name.as_str()), true);
        }
        for name in self.registered.difference(&bound) {
            self.queue
                .registration(now, OperatorName::from(name.as_str()), false);
        }
        self.registered = bound;
        Ok(true)
    }

    /// The events, the checkpoint and the wake-ups, in one transaction on the lock's
    /// connection: if this node lost the lead, it fails.
    async fn commit(
        &mut self,
        out: &[(String, String, serde_json::Value)],
        now: Instant,
    ) -> Result<(), ClusterError> {
        let state = LeaderState {
            queue: self.queue.checkpoint(now),
            calls: self.calls.clone(),
        };
        let state = serde_json::to_value(&state)?;
        let mut tx = self.conn.begin().await?;
        let (nodes, calls, events): (Vec<&str>, Vec<&str>, Vec<&serde_json::Value>) = out
            .iter()
            .map(|(n, c, e)| (n.as_str(), c.as_str(), e))
            .fold((vec![], vec![], vec![]), |mut acc, (n, c, e)| {
                acc.0.push(n);
                acc.1.push(c);
                acc.2.push(e);
                acc
            });
        if !out.is_empty() {
            sqlx::query(
                "INSERT INTO queue_outbox (node_id, call_id, event) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])",
            )
            .bind(&nodes)
            .bind(&calls)
            .bind(&events)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO queue_leader (id, node_id, applied_seq, state, updated_at) \
             VALUES (1, $1, $2, $3, now()) ON CONFLICT (id) DO UPDATE SET \
             node_id = excluded.node_id, applied_seq = excluded.applied_seq, \
             state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(self.cluster.node_id())
        .bind(self.applied)
        .bind(&state)
        .execute(&mut *tx)
        .await?;
        let told: BTreeSet<&str> = nodes.iter().copied().collect();
        for node in told {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(node_channel(node))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drops outbox rows nobody needs and log rows already in the checkpoint.
    async fn prune(&mut self) -> Result<(), ClusterError> {
        sqlx::query("DELETE FROM queue_outbox WHERE at < now() - make_interval(secs => $1)")
            .bind(OUTBOX_KEEP_SECS)
            .execute(&mut self.conn)
            .await?;
        sqlx::query("DELETE FROM queue_log WHERE seq <= $1")
            .bind(self.applied)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

impl Cluster {
    /// Each node's current run, for the nodes whose lease holds (empty while this node may
    /// not judge others: then nobody's calls are taken for gone).
    pub(crate) async fn current_runs(&self) -> Result<HashMap<String, i64>, ClusterError> {
        let rows: Vec<(String, i64, bool)> = sqlx::query_as(
            "SELECT node_id, started_at, heartbeat_at < now() - make_interval(secs => $1) \
             FROM cluster_nodes",
        )
        .bind(self.lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        let judge = self.may_judge();
        Ok(rows
            .into_iter()
            .filter(|(_, _, dead)| !(judge && *dead))
            .map(|(node, run, _)| (node, run))
            .collect())
    }
}
