//! PostgreSQL for the end-to-end tests: a fresh database per test at
//! `postgres@127.0.0.1:5432` (trust auth, the server `.ci/run` checks), dropped at the end even
//! on failure, read with `psql`; and a TCP proxy to it that a test can cut and restore.
//! PostgreSQL not reachable: the tests that need it fail, saying so.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The PostgreSQL server the tests use (the one `.ci/run` checks).
pub(crate) const PG_HOST: &str = "127.0.0.1";
pub(crate) const PG_PORT: u16 = 5432;
pub(crate) const PG_USER: &str = "postgres";

/// Runs a command to its end, killing it after `limit`; (exit success, stdout, stderr).
pub(crate) fn run_bounded(mut cmd: Command, limit: Duration, what: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("temp dir for a command's output");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let mut err = read(&err_path);
    if status.is_none() {
        err.push_str(&format!("\n[killed after {limit:?}]"));
    }
    (status.is_some_and(|s| s.success()), read(&out_path), err)
}

/// `psql` on `database` at the real PostgreSQL (never through a proxy): unaligned, tuples
/// only, fields separated by `|`, stopping at the first error.
pub(crate) fn psql(database: &str, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1"])
        .args([
            "-h",
            PG_HOST,
            "-p",
            &PG_PORT.to_string(),
            "-U",
            PG_USER,
            "-d",
            database,
        ])
        .args(["-c", sql])
        .env("PGCONNECT_TIMEOUT", "5");
    let (ok, out, err) = run_bounded(cmd, Duration::from_secs(30), "psql");
    if ok {
        Ok(out)
    } else {
        Err(format!(
            "psql -d {database} -c {sql:?} failed: {}",
            err.trim()
        ))
    }
}

/// A database made for one test, dropped (connections forced out) when dropped, also when
/// the test fails.
#[derive(Debug)]
pub(crate) struct PgDatabase {
    /// The database's name (`hotline_e2e_<pid>_<n>`).
    pub(crate) name: String,
}

impl PgDatabase {
    #[track_caller]
    pub(crate) fn create() -> PgDatabase {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "hotline_e2e_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(e) = psql("postgres", &format!("CREATE DATABASE {name}")) {
            panic!(
                "PostgreSQL is needed for this test and is not usable at \
                 postgres://{PG_USER}@{PG_HOST}:{PG_PORT} (user {PG_USER}, no password; start it, \
                 e.g. `bash .ci/run` sets it up): {e}"
            );
        }
        PgDatabase { name }
    }

    /// The URL of this database at `port` on 127.0.0.1 (5432, or a proxy's).
    pub(crate) fn url_at(&self, port: u16) -> String {
        format!("postgres://{PG_USER}@{PG_HOST}:{port}/{}", self.name)
    }

    pub(crate) fn url(&self) -> String {
        self.url_at(PG_PORT)
    }

    /// A query's rows, each split at `|`.
    #[track_caller]
    pub(crate) fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let out = psql(&self.name, sql).unwrap_or_else(|e| panic!("{e}"));
        out.lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('|').map(str::to_owned).collect())
            .collect()
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Err(e) = psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

// ---------------------------------------------------------------------------------------
// A TCP proxy to PostgreSQL that can be cut

#[derive(Debug, Default)]
struct ProxyState {
    /// Cut: every connection closed, new ones closed at once.
    cut: AtomicBool,
    stop: AtomicBool,
    /// Both sockets of every open connection (clones, to shut them down).
    conns: Mutex<Vec<(TcpStream, TcpStream)>>,
    accepted: AtomicUsize,
    refused: AtomicUsize,
}

/// A thread accepting on 127.0.0.1:0 and piping each connection to `upstream`.
#[derive(Debug)]
pub(crate) struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

impl Proxy {
    pub(crate) fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = conn else { continue };
                if st.cut.load(Ordering::SeqCst) {
                    st.refused.fetch_add(1, Ordering::Relaxed);
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))
                else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                {
                    // Checked under the lock, so a cut cannot miss a connection.
                    let mut conns = st.conns.lock().unwrap_or_else(|e| e.into_inner());
                    if st.cut.load(Ordering::SeqCst) {
                        st.refused.fetch_add(1, Ordering::Relaxed);
                        let _ = client.shutdown(Shutdown::Both);
                        let _ = server.shutdown(Shutdown::Both);
                        continue;
                    }
                    conns.push((c3, s3));
                }
                st.accepted.fetch_add(1, Ordering::Relaxed);
                thread::spawn(move || pipe(client, s2));
                thread::spawn(move || pipe(server, c2));
            }
        });
        Proxy { addr, state }
    }

    /// Closes every connection; new ones are closed as soon as accepted.
    pub(crate) fn cut(&self) {
        let mut conns = self.state.conns.lock().unwrap_or_else(|e| e.into_inner());
        self.state.cut.store(true, Ordering::SeqCst);
        for (c, s) in conns.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Accepts and pipes connections again.
    pub(crate) fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections closed at once because the proxy was cut.
    pub(crate) fn refused(&self) -> usize {
        self.state.refused.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Copies `from` to `to` until either ends, then closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
