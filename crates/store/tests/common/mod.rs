//! Fixtures shared by the store's integration tests: a SQLite file in a temp dir, a fresh
//! PostgreSQL schema per test (dropped at the end, even on panic), a TCP proxy that can cut the
//! database away, and a sink wrapper that fails on demand.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hotline_store::{
    BatchError, CallStore, Envelope, OpSink, PgSettings, PgStore, SqliteSettings, SqliteStore,
    StoreError, Timestamp,
};
use sqlx::Connection as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The PostgreSQL the tests use: `HOTLINE_TEST_PG_URL`, else the local server CI provides.
pub fn pg_url() -> String {
    std::env::var("HOTLINE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(0);
    let id = hotline_store::new_id().to_ascii_lowercase();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        &id[16..]
    )
}

/// A schema made for one test and dropped when this is dropped.
#[derive(Debug)]
pub struct PgSchema {
    pub url: String,
    pub name: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        let url = pg_url();
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {url}: {e}\n\
                 The store's contract tests run against PostgreSQL as well as SQLite. Start it \
                 (CI has it at 127.0.0.1:5432, trust auth, database `test`; check with \
                 `psql -h 127.0.0.1 -U postgres -d test -c 'select 1'`) or point \
                 HOTLINE_TEST_PG_URL at one."
            )
        });
        let name = unique_name("hotline_test");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .expect("create test schema");
        let _ = conn.close().await;
        PgSchema { url, name }
    }

    pub fn settings(&self) -> PgSettings {
        PgSettings {
            schema: Some(self.name.clone()),
            ..PgSettings::default()
        }
    }

    /// A migrated store in this schema.
    pub async fn store(&self) -> Arc<PgStore> {
        let store = Arc::new(PgStore::connect(&self.url, &self.settings()).expect("pg store"));
        store.migrate().await.expect("migrate postgres");
        store
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime (and while panicking): use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                    let _ = sqlx::query("SET lock_timeout = '10s'")
                        .execute(&mut conn)
                        .await;
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    )))
                    .execute(&mut conn)
                    .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// A migrated SQLite store in a temp dir.
pub async fn sqlite_store(dir: &std::path::Path) -> Arc<SqliteStore> {
    let store = Arc::new(
        SqliteStore::open(&dir.join("hotline.db"), &SqliteSettings::default())
            .await
            .expect("sqlite store"),
    );
    store.migrate().await.expect("migrate sqlite");
    store
}

/// A TCP proxy in front of the database that the test can cut (every connection closed, new
/// ones closed on arrival) and restore. The real server is never touched.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    relays: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
    pub accepted: Arc<AtomicU64>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let relays: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accepted = Arc::new(AtomicU64::new(0));
        let accept = tokio::spawn({
            let (up, relays, accepted) = (up.clone(), relays.clone(), accepted.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    accepted.fetch_add(1, Ordering::Relaxed);
                    let relay = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    let mut relays = relays.lock().unwrap();
                    relays.retain(|r| !r.is_finished());
                    relays.push(relay);
                }
            }
        });
        Proxy {
            addr,
            up,
            relays,
            accept,
            accepted,
        }
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for relay in self.relays.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

fn unavailable(what: &str) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        format!("test: {what}"),
    )))
}

/// A sink in front of a real store that counts transactions and fails on demand.
#[derive(Debug)]
pub struct TestSink {
    pub inner: Arc<dyn CallStore>,
    /// While set, every call fails as if the database were unreachable.
    pub down: AtomicBool,
    /// Commits made through this sink.
    pub batches: AtomicU64,
    /// Ops in those commits.
    pub ops: AtomicU64,
    /// The next N batches commit, then report a lost connection (the acknowledgement is lost).
    pub lose_acks: AtomicU32,
    /// Milliseconds each batch takes on top of the real work.
    pub delay_ms: AtomicU64,
}

impl TestSink {
    pub fn new(inner: Arc<dyn CallStore>) -> Arc<TestSink> {
        Arc::new(TestSink {
            inner,
            down: AtomicBool::new(false),
            batches: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            lose_acks: AtomicU32::new(0),
            delay_ms: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl OpSink for TestSink {
    async fn apply_batch(&self, ops: &[Envelope], now: Timestamp) -> Result<(), BatchError> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(BatchError {
                index: None,
                error: unavailable("database down"),
            });
        }
        self.inner.apply_batch(ops, now).await?;
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.ops.fetch_add(ops.len() as u64, Ordering::SeqCst);
        if self
            .lose_acks
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(BatchError {
                index: None,
                error: unavailable("connection lost after commit"),
            });
        }
        Ok(())
    }

    async fn reserve_references(
        &self,
        n: usize,
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(unavailable("database down"));
        }
        self.inner.reserve_references(n, now).await
    }

    async fn prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(unavailable("database down"));
        }
        self.inner.prune(before).await
    }
}
