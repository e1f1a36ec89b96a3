//! The StoreWriter: group commit, the spool while the database is away, exactly-once replay,
//! a spool that outlives the writer, a full channel, refused ops; and PostgreSQL really cut away
//! (through a TCP proxy) in the middle of calls.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{PgSchema, Proxy, TestSink};
use hotline_store::{
    CallFilter, CallStore, CallUpdate, Caller, Disposition, NewCall, NewRecording, OpSink,
    RecordingKind, RecordingStatus, StoreWriter, Timestamp, WriterConfig, WriterHandle,
};

/// Ops [`simulate_call`] submits.
const OPS_PER_CALL: u64 = 7;
const EVENTS_PER_CALL: usize = 3;

fn config(dir: &Path) -> WriterConfig {
    WriterConfig {
        retry_interval: Duration::from_millis(50),
        db_timeout: Duration::from_secs(5),
        ..WriterConfig::new(dir)
    }
}

fn call_id(i: usize) -> String {
    format!("call-{i:04}")
}

/// What the call path of one call writes: a row, events, updates, a recording.
fn simulate_call(h: &WriterHandle, i: usize) -> String {
    let id = call_id(i);
    let t = Timestamp::from_unix_millis(1_793_536_496_000 + i as i64 * 1000);
    let reference = h.insert_call(NewCall {
        id: id.clone(),
        sip_call_id: format!("sip-{i}@trunk"),
        reference: None,
        started_at: t,
        trunk_source: Some("192.0.2.1:5060".into()),
        called_number: Some("1818".into()),
        caller: Caller::Pseudonym(format!("{i:064}")),
        node: None,
    });
    h.add_call_event(&id, t.add_millis(10), "answered", "");
    h.add_call_event(&id, t.add_millis(20), "digit", "2");
    h.update_call(
        &id,
        CallUpdate {
            answered_at: Some(t.add_millis(10)),
            language: Some("es".into()),
            path: Some(vec!["language".into(), "main".into(), "message".into()]),
            ..Default::default()
        },
    );
    h.add_call_event(&id, t.add_millis(30), "recorded", "");
    h.insert_recording(NewRecording {
        id: format!("rec-{i:04}"),
        call_id: id.clone(),
        kind: RecordingKind::Message,
        path: format!("recordings/rec-{i:04}.wav"),
        created_at: t.add_millis(40),
        duration_ms: 5000,
        bytes: 80_044,
        sha256: "ab".repeat(32),
        status: RecordingStatus::New,
        tags: vec![],
        notes: String::new(),
    });
    h.update_call(
        &id,
        CallUpdate {
            ended_at: Some(t.add_millis(50)),
            disposition: Some(Disposition::Message),
            ..Default::default()
        },
    );
    reference
}

/// Every simulated call is in the store exactly once, complete.
async fn assert_calls(store: &dyn CallStore, calls: usize) {
    let listed = store
        .list_calls(&CallFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), calls, "calls in the store");
    for i in 0..calls {
        let d = store
            .get_call(&call_id(i))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("call {i} missing"));
        let kinds: Vec<&str> = d.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["answered", "digit", "recorded"][..EVENTS_PER_CALL],
            "events of call {i}"
        );
        assert_eq!(
            d.call.recordings,
            [format!("rec-{i:04}")],
            "recordings of call {i}"
        );
        assert_eq!(d.call.disposition, Some(Disposition::Message));
        assert_eq!(d.call.language.as_deref(), Some("es"));
        assert_eq!(d.call.path, ["language", "main", "message"]);
        assert!(d.call.answered_at.is_some() && d.call.ended_at.is_some());
    }
}

fn spool_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("spool").join(hotline_store::SPOOL_FILE))
        .map(|m| m.len())
        .unwrap_or(0)
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn group_commit_puts_many_ops_in_few_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sqlite_store(dir.path()).await;
    let sink = TestSink::new(store.clone());
    let writer = StoreWriter::start(
        sink.clone(),
        WriterConfig {
            max_batch: 256,
            max_delay: Duration::from_millis(20),
            ..config(dir.path())
        },
    )
    .unwrap();
    let h = writer.handle();
    let calls = 150;
    for i in 0..calls {
        simulate_call(&h, i);
    }
    assert!(h.wait_idle(Duration::from_secs(30)).await);
    let ops = calls as u64 * OPS_PER_CALL;
    assert_eq!(sink.ops.load(Ordering::SeqCst), ops);
    let batches = sink.batches.load(Ordering::SeqCst);
    assert!(batches <= ops / 50, "{ops} ops took {batches} transactions");
    let backlog = writer.shutdown().await;
    assert_eq!(
        (backlog.committed, backlog.batches, backlog.rejected),
        (ops, batches, 0)
    );
    assert_calls(&*store, calls).await;
}

#[tokio::test]
async fn an_outage_spools_and_the_replay_writes_every_row_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sqlite_store(dir.path()).await;
    let sink = TestSink::new(store.clone());
    let writer = StoreWriter::start(sink.clone(), config(dir.path())).unwrap();
    let h = writer.handle();
    for i in 0..10 {
        simulate_call(&h, i);
    }
    assert!(h.wait_idle(Duration::from_secs(10)).await);
    sink.down.store(true, Ordering::SeqCst);
    for i in 10..20 {
        simulate_call(&h, i);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    wait_for("ops spooled", Duration::from_secs(10), || {
        let b = h.backlog();
        !b.database_ok && b.queued == 0 && b.spooled == 10 * OPS_PER_CALL
    })
    .await;
    assert!(spool_len(dir.path()) > 0);
    sink.down.store(false, Ordering::SeqCst);
    for i in 20..30 {
        simulate_call(&h, i);
    }
    assert!(
        h.wait_idle(Duration::from_secs(10)).await,
        "{:?}",
        h.backlog()
    );
    let b = writer.shutdown().await;
    assert!(b.database_ok);
    assert_eq!(
        (b.spooled, b.rejected, b.committed),
        (0, 0, 30 * OPS_PER_CALL)
    );
    assert_eq!(spool_len(dir.path()), 0, "spool truncated after the replay");
    assert_calls(&*store, 30).await;
}

#[tokio::test]
async fn lost_commit_acknowledgements_do_not_duplicate_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sqlite_store(dir.path()).await;
    let sink = TestSink::new(store.clone());
    // The first three transactions commit, then the writer hears "connection lost": it spools
    // them and replays them. The op-id ledger makes the replays no-ops.
    sink.lose_acks.store(3, Ordering::SeqCst);
    let writer = StoreWriter::start(
        sink.clone(),
        WriterConfig {
            max_delay: Duration::ZERO,
            ..config(dir.path())
        },
    )
    .unwrap();
    let h = writer.handle();
    for i in 0..12 {
        simulate_call(&h, i);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(h.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(sink.lose_acks.load(Ordering::SeqCst), 0);
    assert!(
        sink.ops.load(Ordering::SeqCst) > 12 * OPS_PER_CALL,
        "some ops were sent twice"
    );
    writer.shutdown().await;
    assert_calls(&*store, 12).await;
}

#[tokio::test]
async fn the_spool_outlives_the_writer_and_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sqlite_store(dir.path()).await;
    let sink = TestSink::new(store.clone());
    sink.down.store(true, Ordering::SeqCst);
    let writer = StoreWriter::start(sink.clone(), config(dir.path())).unwrap();
    let h = writer.handle();
    for i in 0..8 {
        simulate_call(&h, i);
    }
    let b = writer.shutdown().await;
    assert_eq!((b.queued, b.spooled), (0, 8 * OPS_PER_CALL));
    // A write submitted after shutdown is spooled directly.
    h.add_call_event(&call_id(0), Timestamp::now(), "late", "");
    // A crash in the middle of an append leaves half a line.
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("spool").join(hotline_store::SPOOL_FILE))
            .unwrap();
        f.write_all(br#"{"op_id":"01J","op":{"add_call_ev"#)
            .unwrap();
    }
    assert_eq!(
        store
            .list_calls(&CallFilter::default())
            .await
            .unwrap()
            .len(),
        0
    );

    // A new writer (a restarted process) replays it all.
    let sink = TestSink::new(store.clone());
    let writer = StoreWriter::start(sink.clone(), config(dir.path())).unwrap();
    assert_eq!(writer.backlog().spooled, 8 * OPS_PER_CALL + 1);
    let h = writer.handle();
    assert!(
        h.wait_idle(Duration::from_secs(10)).await,
        "{:?}",
        h.backlog()
    );
    writer.shutdown().await;
    assert_eq!(spool_len(dir.path()), 0);
    let d = store.get_call(&call_id(0)).await.unwrap().unwrap();
    let kinds: Vec<&str> = d.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["answered", "digit", "recorded", "late"]);
    let rejected =
        std::fs::read_to_string(dir.path().join("spool").join(hotline_store::REJECTED_FILE))
            .unwrap();
    assert_eq!(rejected.lines().count(), 1);
    assert!(rejected.contains("torn line"), "{rejected}");
    let calls = store
        .list_calls(&CallFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(calls.len(), 8);
    for i in 1..8 {
        assert_eq!(
            store
                .get_call(&call_id(i))
                .await
                .unwrap()
                .unwrap()
                .events
                .len(),
            EVENTS_PER_CALL
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("spool")), 0o700);
        assert_eq!(
            mode(&dir.path().join("spool").join(hotline_store::SPOOL_FILE)),
            0o600
        );
        assert_eq!(
            mode(&dir.path().join("spool").join(hotline_store::REJECTED_FILE)),
            0o600
        );
    }
}

#[tokio::test]
async fn a_full_channel_spills_to_the_spool_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sqlite_store(dir.path()).await;
    let sink = TestSink::new(store.clone());
    sink.delay_ms.store(100, Ordering::SeqCst);
    let writer = StoreWriter::start(
        sink.clone(),
        WriterConfig {
            channel_capacity: 4,
            max_batch: 8,
            ..config(dir.path())
        },
    )
    .unwrap();
    let h = writer.handle();
    let mut max_spooled = 0;
    for i in 0..40 {
        simulate_call(&h, i);
        max_spooled = max_spooled.max(h.backlog().spooled);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    wait_for("spilled ops", Duration::from_secs(10), || {
        max_spooled = max_spooled.max(h.backlog().spooled);
        max_spooled > 0
    })
    .await;
    sink.delay_ms.store(0, Ordering::SeqCst);
    assert!(
        h.wait_idle(Duration::from_secs(20)).await,
        "{:?}",
        h.backlog()
    );
    let b = writer.shutdown().await;
    assert_eq!(b.rejected, 0);
    assert_calls(&*store, 40).await;
}

#[tokio::test]
async fn refused_ops_are_set_aside_and_the_rest_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sqlite_store(dir.path()).await;
    let writer = StoreWriter::start(
        store.clone(),
        WriterConfig {
            max_delay: Duration::from_millis(50),
            ..config(dir.path())
        },
    )
    .unwrap();
    let h = writer.handle();
    simulate_call(&h, 0);
    h.update_call(
        "no-such-call",
        CallUpdate {
            language: Some("qu".into()),
            ..Default::default()
        },
    );
    h.add_call_event("no-such-call", Timestamp::now(), "x", "");
    simulate_call(&h, 1);
    assert!(h.wait_idle(Duration::from_secs(10)).await);
    let b = writer.shutdown().await;
    assert_eq!(b.rejected, 2);
    assert_eq!(b.committed, 2 * OPS_PER_CALL);
    assert_calls(&*store, 2).await;
    let rejected =
        std::fs::read_to_string(dir.path().join("spool").join(hotline_store::REJECTED_FILE))
            .unwrap();
    assert_eq!(rejected.lines().count(), 2);
    assert!(rejected.contains("no-such-call"));
}

#[tokio::test]
async fn calls_get_reserved_reference_numbers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sqlite_store(dir.path()).await;
    let writer = StoreWriter::start(
        store.clone(),
        WriterConfig {
            reference_pool: 16,
            ..config(dir.path())
        },
    )
    .unwrap();
    let h = writer.handle();
    // The writer fills its pool when it starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refs: Vec<String> = (0..40).map(|i| simulate_call(&h, i)).collect();
    assert!(h.wait_idle(Duration::from_secs(10)).await);
    writer.shutdown().await;
    let distinct: std::collections::HashSet<&String> = refs.iter().collect();
    assert_eq!(distinct.len(), 40);
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(
            &store
                .get_call(&call_id(i))
                .await
                .unwrap()
                .unwrap()
                .call
                .reference,
            r
        );
    }
    assert_calls(&*store, 40).await;
    // 40 calls from a pool of 16 refilled at half: at most the first refill's latency may have
    // forced a made-up number, and then only if the writer was slow.
    assert!(h.unreserved_references() < 40);
}

#[tokio::test]
async fn old_reservations_are_not_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sqlite_store(dir.path()).await;
    // Reservations are pruned after `prune_after`; the writer gives out none older than half that.
    let writer = StoreWriter::start(
        store.clone(),
        WriterConfig {
            reference_pool: 8,
            prune_after: Duration::from_millis(1200),
            ..config(dir.path())
        },
    )
    .unwrap();
    let h = writer.handle();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The whole pool is stale now: a made-up number, and a refill.
    simulate_call(&h, 0);
    assert_eq!(h.unreserved_references(), 1);
    let mut i = 1;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let before = h.unreserved_references();
        simulate_call(&h, i);
        i += 1;
        if h.unreserved_references() == before {
            break; // a reserved number again: the pool was refilled
        }
        assert!(i < 50, "the pool was never refilled");
    }
    assert!(h.wait_idle(Duration::from_secs(10)).await);
    writer.shutdown().await;
    assert_calls(&*store, i).await;
}

/// The real thing: PostgreSQL goes away (every connection cut, new ones refused) while calls are
/// going on, and comes back. Every row arrives, once.
#[tokio::test]
async fn postgres_cut_away_mid_calls_every_row_arrives_exactly_once() {
    let schema = PgSchema::create().await;
    let direct = schema.store().await; // migrated, not through the proxy
    let target: std::net::SocketAddr = {
        let url = common::pg_url();
        let hostport = url
            .split('@')
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        tokio::net::lookup_host(hostport)
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let proxy = Proxy::start(target).await;
    let url = format!(
        "postgres://postgres@{}/{}",
        proxy.addr,
        common::pg_url().rsplit('/').next().unwrap()
    );
    let via_proxy = Arc::new(
        hotline_store::PgStore::connect(
            &url,
            &hotline_store::PgSettings {
                acquire_timeout: Duration::from_secs(1),
                ..schema.settings()
            },
        )
        .unwrap(),
    );
    via_proxy.ping().await.expect("through the proxy");
    let dir = tempfile::tempdir().unwrap();
    let writer = StoreWriter::start(via_proxy.clone(), config(dir.path())).unwrap();
    let h = writer.handle();

    let calls = 60;
    let mut spooled_during_outage = 0;
    for i in 0..calls {
        if i == 20 {
            proxy.cut();
        }
        if i == 40 {
            wait_for("the outage to be noticed", Duration::from_secs(10), || {
                !h.backlog().database_ok
            })
            .await;
            spooled_during_outage = h.backlog().spooled;
            proxy.restore();
        }
        simulate_call(&h, i);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        spooled_during_outage > 0,
        "nothing was spooled while PostgreSQL was away"
    );
    assert!(
        h.wait_idle(Duration::from_secs(30)).await,
        "{:?}",
        h.backlog()
    );
    let b = writer.shutdown().await;
    assert!(b.database_ok);
    assert_eq!((b.spooled, b.rejected), (0, 0));
    assert_eq!(spool_len(dir.path()), 0);
    assert!(
        proxy.accepted.load(Ordering::Relaxed) >= 2,
        "reconnected after the cut"
    );
    assert_calls(&*direct, calls).await;
    via_proxy.close().await;
    direct.close().await;
}

#[tokio::test]
async fn postgres_group_commit_and_replay_of_lost_acks() {
    let schema = PgSchema::create().await;
    let store = schema.store().await;
    let sink = TestSink::new(store.clone());
    sink.lose_acks.store(2, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let writer = StoreWriter::start(sink.clone(), config(dir.path())).unwrap();
    let h = writer.handle();
    for i in 0..50 {
        simulate_call(&h, i);
    }
    assert!(
        h.wait_idle(Duration::from_secs(30)).await,
        "{:?}",
        h.backlog()
    );
    writer.shutdown().await;
    assert!(sink.batches.load(Ordering::SeqCst) < 50 * OPS_PER_CALL / 10);
    assert_calls(&*store, 50).await;
    // The ledger knows every op.
    let pruned = store
        .prune(Timestamp::from_unix_millis(i64::MAX))
        .await
        .unwrap();
    assert!(pruned >= 50 * OPS_PER_CALL, "{pruned}");
    store.close().await;
}
