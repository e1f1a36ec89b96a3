//! Cluster mode's recordings: the node's own start-up repair and the adoption of a dead
//! node's unfinished recordings.
//!
//! - **Own repair**: at start a node lists what an earlier run of it left in
//!   `<root>/recordings/<node>/` (before it takes calls, so nothing of this run is in the
//!   list), then, holding the advisory lock on its recordings directory (waiting for an
//!   adoption of it in progress to end), repairs and enters that list. Another node's
//!   directory is never touched at start.
//! - **Adoption**: every [`ADOPT_EVERY`] each node asks for dead runs
//!   ([`Cluster::dead_runs`]: lease ran out, nobody adopted them). For one, it waits while
//!   the dead node's directory has files written within the last lease (perhaps a node alive
//!   but cut from the database), tries the lock on that directory, claims the run
//!   ([`Cluster::claim_adoption`]: one survivor wins; a node that came back, i.e. a new run,
//!   cannot be claimed), repairs the `.part` files (audio up to the last data written stays),
//!   hashes them, enters them with their call (sidecar) tagged `repaired` and `adopted` with a
//!   `recording-adopted` call event, and records the adoption as done.
//!
//! When the dead node comes back its own repair waits for the lock, then finds what the
//! adoption left (nothing: every `.part` renamed, every sidecar consumed); the store's
//! recording insert is idempotent on the id besides.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hotline_cluster::{Cluster, DeadRun};
use hotline_store::{Timestamp, WriterHandle};

use crate::config::Config;
use crate::layout::Layout;
use crate::metrics::Metrics;
use crate::recordings::{self, Leftovers, Owner};

/// How often a node looks for dead runs to adopt.
pub(crate) const ADOPT_EVERY: Duration = Duration::from_secs(1);
/// How long the own repair waits before trying the lock again while the database is away.
const LOCK_RETRY: Duration = Duration::from_secs(2);

/// At start, before calls are taken: the one-process hotline repairs what a crash left in its
/// recordings (at once); a cluster node starts its lease, its own repair and adoption
/// ([`start`]).
pub(crate) fn start_storage(
    cluster: Option<&Cluster>,
    config: &Config,
    writer: &WriterHandle,
    metrics: &Arc<Metrics>,
) {
    let layout = Layout::of(config);
    // No call of this run started before now: the calls still open from before are an
    // earlier run's, cut by its end.
    let run_start = Timestamp::now();
    match cluster {
        Some(cluster) => start(cluster, layout, writer.clone(), metrics.clone(), run_start),
        None => {
            let repaired = recordings::repair_on_start(&layout, writer);
            if repaired > 0 {
                tracing::warn!(
                    repaired,
                    "partial recordings repaired at start-up and entered in the store"
                );
            }
            // After the repaired recordings in the writer's queue: their times count.
            writer.close_interrupted(None, run_start, CLOSED_AT_START);
        }
    }
}

/// The `interrupted` event of a call a restart closed.
const CLOSED_AT_START: &str =
    "the hotline stopped during the call (crash, kill or power loss); closed at the next start";

/// The `interrupted` event of a call of a dead node, closed by the node that adopted it.
fn closed_by_adoption(dead: &str, by: &str) -> String {
    format!("node {dead} stopped during the call; closed by node {by} after its lease ran out")
}

/// Starts a cluster node's storage side: its lease, the repair of what its earlier run left
/// (listed now, before calls are taken; repaired under the lock in a task) and the adoption
/// task. Call before the SIP task takes calls.
fn start(
    cluster: &Cluster,
    layout: Layout,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
    run_start: Timestamp,
) {
    cluster.start_lease();
    let own = recordings::leftovers(&layout.own_recordings(), Duration::ZERO, SystemTime::now());
    tokio::spawn(repair_own(
        cluster.clone(),
        layout.clone(),
        own,
        writer.clone(),
        metrics.clone(),
        run_start,
    ));
    tokio::spawn(adopt_forever(cluster.clone(), layout, writer, metrics));
}

/// Repairs `found` (this node's leftovers at start) holding the lock on its directory, then
/// closes the calls the earlier run of this node left open (started before `run_start`).
async fn repair_own(
    cluster: Cluster,
    layout: Layout,
    found: Leftovers,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
    run_start: Timestamp,
) {
    let node = cluster.node_id().to_owned();
    if found.is_empty() {
        tracing::info!(node = %node, "no recordings of an earlier run to repair");
        writer.close_interrupted(Some(&node), run_start, CLOSED_AT_START);
        return;
    }
    let lock = loop {
        match cluster.lock_recordings(&node).await {
            Ok(lock) => break lock,
            Err(e) => {
                metrics.cluster_storage_errors.inc();
                tracing::warn!(node = %node, error = %e, parts = found.parts.len(), "cannot take the lock on this node's recordings; their repair waits for the database");
                tokio::time::sleep(LOCK_RETRY).await;
            }
        }
    };
    let dir = layout.own_recordings();
    let w = writer.clone();
    let done = tokio::task::spawn_blocking(move || {
        recordings::repair_leftovers(&layout, &dir, &found, &w, Owner::Own)
    })
    .await;
    release(lock, &metrics).await;
    writer.close_interrupted(Some(&node), run_start, CLOSED_AT_START);
    match done {
        Ok(done) => {
            if done.failed > 0 {
                metrics.cluster_storage_errors.add(done.failed as u64);
            }
            tracing::warn!(
                node = %node,
                repaired = done.repaired,
                entered = done.entered,
                failed = done.failed,
                "recordings of an earlier run repaired"
            );
        }
        Err(e) => {
            metrics.cluster_storage_errors.inc();
            tracing::error!(node = %node, error = %e, "the repair of this node's recordings failed");
        }
    }
}

/// The adoption task: every [`ADOPT_EVERY`], each dead run in turn.
async fn adopt_forever(
    cluster: Cluster,
    layout: Layout,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
) {
    let mut tick = tokio::time::interval(ADOPT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Runs already reported as waiting for fresh files (one line each, not one a second).
    let mut waiting: HashSet<(String, i64)> = HashSet::new();
    let mut db_ok = true;
    loop {
        tick.tick().await;
        let runs = match cluster.dead_runs().await {
            Ok(runs) => {
                db_ok = true;
                runs
            }
            Err(e) => {
                // The lease task already warns every second; one line per outage here.
                if std::mem::replace(&mut db_ok, false) {
                    metrics.cluster_storage_errors.inc();
                    tracing::warn!(error = %e, "cannot look for dead nodes to adopt");
                }
                continue;
            }
        };
        for run in runs {
            adopt(&cluster, &layout, &run, &writer, &metrics, &mut waiting).await;
        }
    }
}

/// One attempt at adopting `run`'s recordings (see the module docs).
async fn adopt(
    cluster: &Cluster,
    layout: &Layout,
    run: &DeadRun,
    writer: &WriterHandle,
    metrics: &Metrics,
    waiting: &mut HashSet<(String, i64)>,
) {
    let dead = run.node_id.as_str();
    let Some(dir) = layout.recordings_of(dead) else {
        if waiting.insert((run.node_id.clone(), run.started_at)) {
            metrics.cluster_storage_errors.inc();
            tracing::error!(node = ?dead, "a dead node's id is not a node id; its recordings are not adopted");
        }
        return;
    };
    let lease = cluster.lease();
    let Some(found) = list(&dir, lease).await else {
        metrics.cluster_storage_errors.inc();
        return;
    };
    if !found.fresh.is_empty() {
        if waiting.insert((run.node_id.clone(), run.started_at)) {
            tracing::warn!(
                node = dead,
                fresh = found.fresh.len(),
                "a node's lease ran out but files in its recordings were written within the lease; adoption waits"
            );
        }
        return;
    }
    let lock = match cluster.try_lock_recordings(dead).await {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            tracing::debug!(
                node = dead,
                "the node's recordings are locked (its own repair or another adoption)"
            );
            return;
        }
        Err(e) => {
            metrics.cluster_storage_errors.inc();
            tracing::warn!(node = dead, error = %e, "cannot take the lock on a dead node's recordings");
            return;
        }
    };
    // Before the claim: a node that comes back after it starts its calls later.
    let claimed_at = Timestamp::now();
    match cluster.claim_adoption(run).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(
                node = dead,
                "adoption claimed by another node, or the node came back"
            );
            release(lock, metrics).await;
            return;
        }
        Err(e) => {
            metrics.cluster_storage_errors.inc();
            tracing::warn!(node = dead, error = %e, "cannot claim the adoption of a dead node's recordings");
            release(lock, metrics).await;
            return;
        }
    }
    waiting.remove(&(run.node_id.clone(), run.started_at));
    let began = Instant::now();
    if found.is_empty() {
        // A node stopped cleanly (or one that had nothing open): its run is closed, quietly.
        tracing::info!(
            node = dead,
            started_at = run.started_at,
            "a node's lease ran out with no unfinished recordings; its run is marked adopted"
        );
    } else {
        tracing::warn!(
            node = dead,
            started_at = run.started_at,
            by = cluster.node_id(),
            parts = found.parts.len(),
            "adopting the unfinished recordings of a dead node"
        );
    }
    // Again, under the lock: what is there now.
    let found = list(&dir, lease).await.unwrap_or_else(|| {
        // Nothing listed: nothing repaired now; the node's own repair takes it when it
        // comes back.
        metrics.cluster_storage_errors.inc();
        Leftovers::default()
    });
    if !found.fresh.is_empty() {
        metrics.cluster_storage_errors.inc();
        tracing::warn!(
            node = dead,
            fresh = found.fresh.len(),
            "files of the adopted node written within the lease are left alone"
        );
    }
    let (l, w, by, who) = (
        layout.clone(),
        writer.clone(),
        cluster.node_id().to_owned(),
        dead.to_owned(),
    );
    let done = tokio::task::spawn_blocking(move || {
        let owner = Owner::Adopted {
            by: &by,
            dead: &who,
        };
        recordings::repair_leftovers(&l, &dir, &found, &w, owner)
    })
    .await;
    let done = match done {
        Ok(done) => done,
        Err(e) => {
            metrics.cluster_storage_errors.inc();
            tracing::error!(node = dead, error = %e, "the adoption's repair failed; the files are kept");
            release(lock, metrics).await;
            return;
        }
    };
    // The dead run's calls, after its recordings (and their events) in the writer's queue.
    writer.close_interrupted(
        Some(dead),
        claimed_at,
        &closed_by_adoption(dead, cluster.node_id()),
    );
    metrics.cluster_adoptions.inc();
    metrics.cluster_adopted_recordings.add(done.entered as u64);
    if done.failed > 0 {
        metrics.cluster_storage_errors.add(done.failed as u64);
    }
    let entered = u32::try_from(done.entered).unwrap_or(u32::MAX);
    if let Err(e) = cluster.adoption_done(run, entered).await {
        metrics.cluster_storage_errors.inc();
        tracing::warn!(node = dead, error = %e, "adoption done but not recorded as done");
    }
    release(lock, metrics).await;
    tracing::warn!(
        node = dead,
        repaired = done.repaired,
        entered = done.entered,
        failed = done.failed,
        ms = began.elapsed().as_millis() as u64,
        "adoption of a dead node's recordings done"
    );
}

/// [`recordings::leftovers`] of `dir` on the blocking pool (an NFS directory may be slow);
/// `None` if the listing panicked (logged).
async fn list(dir: &std::path::Path, quiet: Duration) -> Option<Leftovers> {
    let dir = dir.to_path_buf();
    match tokio::task::spawn_blocking(move || recordings::leftovers(&dir, quiet, SystemTime::now()))
        .await
    {
        Ok(found) => Some(found),
        Err(e) => {
            tracing::error!(error = %e, "listing a node's recordings failed");
            None
        }
    }
}

async fn release(lock: hotline_cluster::RecordingsLock, metrics: &Metrics) {
    let node = lock.node_id().to_owned();
    if let Err(e) = lock.release().await {
        metrics.cluster_storage_errors.inc();
        tracing::warn!(node = %node, error = %e, "recordings lock not released cleanly (it ends with its connection)");
    }
}
