//! The cluster's PostgreSQL parts against a real PostgreSQL (`postgres@127.0.0.1:5432`, a
//! fresh database per test): leases and who is dead, adoption claims, shared bindings.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hotline_cluster::{Cluster, DeadRun, Published, SharedBinding};

fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "PostgreSQL is needed at postgres@127.0.0.1:5432: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

struct Db(String);

impl Db {
    async fn create() -> Db {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "hotline_cluster_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        psql("postgres", &format!("CREATE DATABASE {name}"));
        let db = Db(name);
        hotline_store::connect(&db.url())
            .await
            .unwrap()
            .migrate()
            .await
            .unwrap();
        db
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.0)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0),
        );
    }
}

async fn until(timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_lease_runs_out_is_dead_once_and_adopted_once() {
    let db = Db::create().await;
    let lease = Duration::from_secs(2);
    let a = Cluster::connect(&db.url(), "a", lease).unwrap();
    let b = Cluster::connect(&db.url(), "b", lease).unwrap();
    a.start_lease();
    assert!(
        until(Duration::from_secs(5), async || a
            .run_started_at()
            .is_some())
        .await
    );
    // b's own lease is not a whole lease old: b judges nobody yet.
    b.start_lease();
    assert!(until(Duration::from_secs(5), async || b.lease_held()).await);
    assert_eq!(b.dead_runs().await.unwrap(), vec![]);
    assert_eq!(b.live_nodes().await.unwrap(), vec!["a", "b"]);

    // a stops renewing (as if killed): its heartbeat ages past the lease.
    let run = a.run_started_at().unwrap();
    psql(
        &db.0,
        "UPDATE cluster_nodes SET heartbeat_at = now() - interval '1 minute' WHERE node_id = 'a'",
    );
    // (a's task renews it again: stop that by giving the row another run.)
    psql(
        &db.0,
        &format!("UPDATE cluster_nodes SET started_at = {run} - 1 WHERE node_id = 'a'"),
    );
    let dead = DeadRun {
        node_id: "a".into(),
        started_at: run - 1,
    };
    assert!(
        until(Duration::from_secs(6), async || b
            .dead_runs()
            .await
            .unwrap()
            == vec![dead.clone()])
        .await,
        "b never saw a dead: {:?}",
        b.dead_runs().await
    );
    let c = Cluster::connect(&db.url(), "c", lease).unwrap();
    c.start_lease();
    assert!(
        until(Duration::from_secs(5), async || c
            .run_started_at()
            .is_some())
        .await
    );
    assert!(b.claim_adoption(&dead).await.unwrap());
    assert!(!c.claim_adoption(&dead).await.unwrap(), "claimed twice");
    // b dies before it is done: its claim lapses with its lease, and c takes it over.
    psql(
        &db.0,
        "UPDATE cluster_nodes SET started_at = started_at - 1, \
         heartbeat_at = now() - interval '1 minute' WHERE node_id = 'b'",
    );
    assert!(
        until(Duration::from_secs(6), async || c
            .dead_runs()
            .await
            .unwrap()
            .contains(&dead))
        .await,
        "an unfinished claim of a dead adopter keeps the run from everyone"
    );
    assert!(
        c.claim_adoption(&dead).await.unwrap(),
        "c could not take the claim over"
    );
    c.adoption_done(&dead, 3).await.unwrap();
    assert_eq!(
        psql(
            &db.0,
            "SELECT adopted_by || ' ' || recordings || ' ' || (done_at IS NOT NULL) \
             FROM cluster_adoptions"
        ),
        "c 3 true"
    );
    assert!(
        !b.claim_adoption(&dead).await.unwrap(),
        "a finished adoption was claimed again"
    );
    assert!(
        !c.dead_runs().await.unwrap().contains(&dead),
        "adopted runs are not dead again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_are_shared_and_a_restart_does_not_wipe_them() {
    let db = Db::create().await;
    let a = Cluster::connect(&db.url(), "a", Duration::from_secs(10)).unwrap();
    let b = Cluster::connect(&db.url(), "b", Duration::from_secs(10)).unwrap();
    let ana = SharedBinding {
        operator: "ana".into(),
        contact: "sip:ana@192.168.1.20:5062".into(),
        path: vec!["<sip:127.0.0.1:5070;lr;received=sip:192.168.1.20:5062>".into()],
        q: None,
        expires_in: Duration::from_secs(300),
    };
    let mut published = Published::default();
    a.publish_bindings(&mut published, std::slice::from_ref(&ana), 1_000)
        .await
        .unwrap();
    let seen = b.bindings_of("ana").await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, ana.path);
    assert!(seen[0].expires_in > Duration::from_secs(290));
    assert!(b.bindings_of("beto").await.unwrap().is_empty());

    // a restarts: a new run publishes an empty view; ana's binding stays.
    let mut fresh = Published::default();
    a.publish_bindings(&mut fresh, &[], 1_010).await.unwrap();
    assert_eq!(b.bindings_of("ana").await.unwrap().len(), 1);
    // a run that held it and lost it (expiry, un-REGISTER) removes it.
    a.publish_bindings(&mut published, &[], 1_020)
        .await
        .unwrap();
    assert!(b.bindings_of("ana").await.unwrap().is_empty());
    // An expired row is not a binding.
    let short = SharedBinding {
        expires_in: Duration::from_secs(1),
        ..ana
    };
    a.publish_bindings(&mut published, &[short], 1_030)
        .await
        .unwrap();
    assert!(
        until(Duration::from_secs(5), async || b
            .bindings_of("ana")
            .await
            .unwrap()
            .is_empty())
        .await
    );
}
