//! Group-commit throughput, measured rather than tested: run with
//! `cargo test -p hotline-store --release --test throughput -- --ignored --nocapture`.
//! Prints ops/s through the StoreWriter into SQLite (synchronous NORMAL and FULL) and
//! PostgreSQL, next to one op per transaction.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_store::{
    CallStore, Caller, NewCall, NewCallEvent, SqliteDurability, SqliteSettings, SqliteStore,
    StoreWriter, Timestamp, WriterConfig, new_id,
};

const CALLS: usize = 2_000;
const EVENTS_PER_CALL: usize = 9; // + 1 insert = 10 ops per call

async fn group_commit(name: &str, store: Arc<dyn CallStore>, channel_capacity: usize) {
    let dir = tempfile::tempdir().unwrap();
    let writer = StoreWriter::start(
        store.clone(),
        WriterConfig {
            channel_capacity,
            ..WriterConfig::new(dir.path())
        },
    )
    .unwrap();
    let h = writer.handle();
    tokio::time::sleep(Duration::from_millis(200)).await; // reference pool filled
    let t0 = Instant::now();
    for i in 0..CALLS {
        let id = format!("{name}-{i}");
        h.insert_call(NewCall {
            id: id.clone(),
            sip_call_id: id.clone(),
            reference: None,
            started_at: Timestamp::now(),
            trunk_source: None,
            called_number: None,
            caller: Caller::Pseudonym("00".repeat(32)),
            node: None,
        });
        for e in 0..EVENTS_PER_CALL {
            h.add_call_event(&id, Timestamp::now(), "event", &format!("{e}"));
        }
    }
    let submit = t0.elapsed();
    assert!(h.wait_idle(Duration::from_secs(600)).await);
    let total = t0.elapsed();
    let b = writer.shutdown().await;
    let ops = (CALLS * (EVENTS_PER_CALL + 1)) as f64;
    println!(
        "{name:<34} {ops:>7} ops in {:>6.2} s = {:>8.0} ops/s; {:>5} transactions (avg {:>5.1} ops); submit {:.1} µs/op",
        total.as_secs_f64(),
        ops / total.as_secs_f64(),
        b.batches,
        ops / b.batches.max(1) as f64,
        submit.as_secs_f64() * 1e6 / ops,
    );
}

async fn one_per_transaction(name: &str, store: Arc<dyn CallStore>) {
    let call = format!("{name}-single");
    store
        .insert_call(&NewCall {
            id: call.clone(),
            sip_call_id: call.clone(),
            reference: None,
            started_at: Timestamp::now(),
            trunk_source: None,
            called_number: None,
            caller: Caller::Absent,
            node: None,
        })
        .await
        .unwrap();
    let n = 300;
    let t0 = Instant::now();
    for _ in 0..n {
        let op = hotline_store::Envelope {
            op_id: new_id(),
            op: hotline_store::Write::AddCallEvent(NewCallEvent {
                id: new_id(),
                call_id: call.clone(),
                at: Timestamp::now(),
                kind: "event".into(),
                detail: String::new(),
            }),
        };
        store
            .apply_batch(std::slice::from_ref(&op), Timestamp::now())
            .await
            .unwrap();
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "{name:<34} {n:>7} ops in {s:>6.2} s = {:>8.0} ops/s (one op per transaction)",
        n as f64 / s
    );
}

async fn sqlite(durability: SqliteDurability, dir: &std::path::Path) -> Arc<dyn CallStore> {
    let s = SqliteStore::open(
        &dir.join("bench.db"),
        &SqliteSettings {
            durability,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.migrate().await.unwrap();
    Arc::new(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture, preferably --release"]
async fn group_commit_throughput() {
    for (label, durability) in [
        ("normal", SqliteDurability::Normal),
        ("full", SqliteDurability::Full),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(durability, dir.path()).await;
        one_per_transaction(&format!("sqlite synchronous={label}"), store.clone()).await;
        group_commit(
            &format!("sqlite synchronous={label}"),
            store.clone(),
            1 << 20,
        )
        .await;
        group_commit(
            &format!("sqlite {label} burst>channel"),
            store.clone(),
            8192,
        )
        .await;
        store.close().await;
    }
    let schema = common::PgSchema::create().await;
    let store: Arc<dyn CallStore> = schema.store().await;
    one_per_transaction("postgres", store.clone()).await;
    group_commit("postgres", store.clone(), 1 << 20).await;
    group_commit("postgres burst>channel", store.clone(), 8192).await;
    store.close().await;
}
