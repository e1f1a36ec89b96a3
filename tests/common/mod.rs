//! End-to-end harness: runs `hotline serve` on free ports with a temporary config and data
//! directory, and drives it with sipp scenarios from `tests/sipp/`.
//!
//! Every test starts its own server (port 0, its own temp dir), so tests run in parallel.
//! Failures carry what is needed to diagnose them: sipp's exit status, stderr, error log and
//! message trace, and the server's output.

// Not every test binary that includes this module uses every helper.
#![allow(dead_code)]

pub(crate) mod audio;
pub(crate) mod cluster;
pub(crate) mod http;
pub(crate) mod json;
pub(crate) mod kamailio;
pub(crate) mod pcap;
pub(crate) mod pg;
pub(crate) mod softphone;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// How long `hotline serve` may take to print its listener lines.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// sipp's own global timeout (`-timeout 30s -timeout_error`).
const SIPP_TIMEOUT_SECS: u64 = 30;
/// The harness kills a sipp that outlives its own timeout by this much.
const SIPP_HARD_TIMEOUT: Duration = Duration::from_secs(SIPP_TIMEOUT_SECS + 15);
/// How often bounded wait loops look again.
const POLL: Duration = Duration::from_millis(20);
/// How much of a long log goes into a failure message.
const LOG_TAIL: usize = 12_000;

/// The workspace root (`tests/sipp` and the default relative paths live there).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/sipp/<name>.xml`.
pub(crate) fn scenario_path(name: &str) -> PathBuf {
    workspace_root()
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

/// The keys of the config file the tests care about. `t1_ms` defaults to 100 here (not the
/// server's 500) so that 64*T1 timeouts take 6.4 s.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) answer_delay_ms: Option<u64>,
    pub(crate) t1_ms: u64,
    pub(crate) max_calls: Option<u32>,
    pub(crate) retry_after_secs: Option<u32>,
    pub(crate) max_duration_secs: Option<u64>,
    pub(crate) grace_secs: Option<u64>,
    /// More `[sip]` lines (`key = value`).
    pub(crate) sip_lines: Vec<String>,
    /// More sections, as TOML text appended to the file.
    pub(crate) sections: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            answer_delay_ms: None,
            t1_ms: 100,
            max_calls: None,
            retry_after_secs: None,
            max_duration_secs: None,
            grace_secs: None,
            sip_lines: Vec::new(),
            sections: String::new(),
        }
    }
}

impl Config {
    pub(crate) fn answer_delay_ms(mut self, ms: u64) -> Self {
        self.answer_delay_ms = Some(ms);
        self
    }
    pub(crate) fn max_calls(mut self, n: u32) -> Self {
        self.max_calls = Some(n);
        self
    }
    pub(crate) fn retry_after_secs(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
    pub(crate) fn max_duration_secs(mut self, secs: u64) -> Self {
        self.max_duration_secs = Some(secs);
        self
    }
    pub(crate) fn grace_secs(mut self, secs: u64) -> Self {
        self.grace_secs = Some(secs);
        self
    }
    /// A `key = value` line for `[sip]`.
    pub(crate) fn sip_line(mut self, line: &str) -> Self {
        self.sip_lines.push(line.to_owned());
        self
    }
    /// TOML sections of their own (`[queue]\nring_timeout_secs = 4\n`).
    pub(crate) fn sections(mut self, text: &str) -> Self {
        self.sections.push_str(text);
        self
    }

    /// The TOML text of the config file.
    pub(crate) fn to_toml(&self) -> String {
        let mut s = String::from("[sip]\n");
        let _ = writeln!(s, "t1_ms = {}", self.t1_ms);
        if let Some(v) = self.answer_delay_ms {
            let _ = writeln!(s, "answer_delay_ms = {v}");
        }
        if let Some(v) = self.max_calls {
            let _ = writeln!(s, "max_calls = {v}");
        }
        if let Some(v) = self.retry_after_secs {
            let _ = writeln!(s, "retry_after_secs = {v}");
        }
        for line in &self.sip_lines {
            let _ = writeln!(s, "{line}");
        }
        if let Some(v) = self.max_duration_secs {
            let _ = writeln!(s, "\n[calls]\nmax_duration_secs = {v}");
        }
        if let Some(v) = self.grace_secs {
            let _ = writeln!(s, "\n[shutdown]\ngrace_secs = {v}");
        }
        if !self.sections.is_empty() {
            let _ = writeln!(s, "\n{}", self.sections);
        }
        // RUST_LOG, when set, wins over this.
        s.push_str("\n[log]\nfilter = \"info,hotline=debug,hotline_sip=debug\"\n");
        s
    }
}

/// Output of a child process collected by reader threads, in arrival order.
#[derive(Debug, Clone, Default)]
struct SharedLog(Arc<Mutex<String>>);

impl SharedLog {
    fn push(&self, stream: &str, line: &str) {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(log, "[{stream}] {line}");
    }
    fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Removes ANSI escape sequences (colours), in case the server writes them anyway.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The last `max` bytes of `s` (on a char boundary), marked when cut.
pub(crate) fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("[... {start} bytes cut ...]\n{}", &s[start..])
}

/// One listener line printed by `hotline serve`.
#[derive(Debug)]
enum Listener {
    SipUdp(SocketAddr),
    SipTcp(SocketAddr),
    Http(String),
}

fn parse_listener(line: &str) -> Option<Listener> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("sip udp ") {
        return rest.trim().parse().ok().map(Listener::SipUdp);
    }
    if let Some(rest) = line.strip_prefix("sip tcp ") {
        return rest.trim().parse().ok().map(Listener::SipTcp);
    }
    if let Some(rest) = line.strip_prefix("http ") {
        let url = rest.trim();
        if url.starts_with("http://") || url.starts_with("https://") {
            return Some(Listener::Http(url.to_owned()));
        }
    }
    None
}

/// A server's temp dir, config file, data dir and environment, made before it starts, so
/// that admin commands (`hotline user add`, `hotline token create`, ...) can run first against
/// the same config, data dir and database.
#[derive(Debug)]
pub(crate) struct Setup {
    config_text: String,
    config_path: PathBuf,
    data_dir: PathBuf,
    /// Extra environment for the server and the admin commands (e.g. `DATABASE_URL`).
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Setup {
    /// A temp dir with the config file and an empty `data/`.
    pub(crate) fn new(config: &Config) -> Setup {
        Self::new_in(config, None)
    }

    /// Like [`Setup::new`], on the data dir `data_dir` if given (shared by several servers,
    /// or another server's, to see what it left behind); the caller keeps it alive.
    pub(crate) fn new_in(config: &Config, data_dir: Option<&Path>) -> Setup {
        let dir = tempfile::Builder::new()
            .prefix("hotline-e2e-")
            .tempdir()
            .expect("create a temp dir for the server");
        let config_text = config.to_toml();
        let config_path = dir.path().join("hotline.toml");
        std::fs::write(&config_path, &config_text).expect("write the config file");
        let data_dir = data_dir.map_or_else(|| dir.path().join("data"), Path::to_path_buf);
        std::fs::create_dir_all(&data_dir).expect("create the data dir");
        Setup {
            config_text,
            config_path,
            data_dir,
            env: Vec::new(),
            dir,
        }
    }

    /// Sets an environment variable for the server and the admin commands. Without
    /// `DATABASE_URL` here, both run on the SQLite file in the data dir, whatever the
    /// caller's environment says.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Setup {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The `--data-dir`.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `hotline` with this setup's binary, working dir and environment.
    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotline"));
        cmd.current_dir(workspace_root())
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            // Hermetic: the SQLite file in the data dir unless `env` says otherwise.
            .env_remove("DATABASE_URL")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `hotline ARGS --config <file> --data-dir <dir>` to its end (bounded: killed after
    /// 60 s), with `stdin` as its standard input.
    pub(crate) fn admin(&self, args: &[&str], stdin: Option<&str>) -> AdminRun {
        use std::io::Write as _;
        const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
        let mut cmd = self.command();
        cmd.args(args)
            .arg("--config")
            .arg(&self.config_path)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let command = format!("hotline {}", args.join(" "));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            let _ = input.write_all(text.as_bytes());
        }
        let log = SharedLog::default();
        spawn_reader(
            child.stdout.take().expect("piped"),
            "out",
            log.clone(),
            None,
        );
        spawn_reader(
            child.stderr.take().expect("piped"),
            "err",
            log.clone(),
            None,
        );
        let deadline = Instant::now() + ADMIN_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Err(e) => panic!("waiting for {command}: {e}"),
            }
        };
        // The readers finish once the pipes close (the child is gone); bounded anyway.
        let settle = Instant::now() + Duration::from_secs(2);
        let mut text = log.text();
        while Instant::now() < settle {
            thread::sleep(POLL);
            let again = log.text();
            if again == text {
                break;
            }
            text = again;
        }
        let mut stdout = String::new();
        for line in text.lines() {
            if let Some(l) = line.strip_prefix("[out] ") {
                stdout.push_str(l);
                stdout.push('\n');
            }
        }
        AdminRun {
            command,
            status,
            stdout,
            output: text,
        }
    }

    /// Starts `hotline serve --config <file> --sip 127.0.0.1:0 --http 127.0.0.1:0
    /// --data-dir <dir>` and waits for its three listener lines.
    pub(crate) fn start(self) -> Server {
        self.start_at("127.0.0.1:0")
    }

    /// Like [`Setup::start`] with `--sip sip` (a fixed address: a node started again where
    /// a proxy already knows it).
    pub(crate) fn start_at(self, sip: &str) -> Server {
        let Setup {
            config_text,
            config_path,
            data_dir,
            env: _,
            dir: _,
        } = &self;
        let mut cmd = self.command();
        cmd.arg("serve")
            .arg("--config")
            .arg(config_path)
            .args(["--sip", sip, "--http", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let bin = env!("CARGO_BIN_EXE_hotline");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));

        let log = SharedLog::default();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        spawn_reader(stdout, "out", log.clone(), Some(tx));
        spawn_reader(stderr, "err", log.clone(), None);

        let mut udp = None;
        let mut tcp = None;
        let mut http = None;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while udp.is_none() || tcp.is_none() || http.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Listener::SipUdp(a)) => udp = Some(a),
                Ok(Listener::SipTcp(a)) => tcp = Some(a),
                Ok(Listener::Http(u)) => http = Some(u),
                Err(e) => {
                    let why = match e {
                        mpsc::RecvTimeoutError::Timeout => {
                            format!("no listener lines within {STARTUP_TIMEOUT:?}")
                        }
                        mpsc::RecvTimeoutError::Disconnected => {
                            "stdout closed before the listener lines".to_owned()
                        }
                    };
                    let _ = child.kill();
                    let status = child.wait();
                    // Let the reader threads drain what is left.
                    thread::sleep(Duration::from_millis(100));
                    panic!(
                        "hotline serve did not start: {why} (exit: {status:?}; got udp={udp:?} \
                         tcp={tcp:?} http={http:?})\n--- config:\n{config_text}\n--- server \
                         output:\n{}",
                        tail(&log.text(), LOG_TAIL)
                    );
                }
            }
        }
        Server {
            child,
            exit: None,
            udp: udp.expect("checked"),
            tcp: tcp.expect("checked"),
            http: http.expect("checked"),
            log,
            config_text: self.config_text,
            data_dir: self.data_dir,
            dir: self.dir,
        }
    }
}

/// A finished admin command (`hotline user add`, ...).
#[derive(Debug)]
pub(crate) struct AdminRun {
    pub(crate) command: String,
    /// `None`: killed after its timeout.
    pub(crate) status: Option<ExitStatus>,
    /// Its standard output.
    pub(crate) stdout: String,
    /// Its standard output and error, tagged per line.
    pub(crate) output: String,
}

impl AdminRun {
    /// Panics with its output unless it exited 0; returns its standard output.
    #[track_caller]
    pub(crate) fn expect_ok(&self) -> &str {
        assert!(
            self.status.is_some_and(|s| s.success()),
            "`{}` failed ({}):\n{}",
            self.command,
            self.status
                .map_or_else(|| "killed after 60 s".to_owned(), |s| s.to_string()),
            tail(&self.output, LOG_TAIL)
        );
        &self.stdout
    }
}

/// What a failure message shows of the servers a test runs.
pub(crate) trait Report {
    /// The servers' logs and settings, for a failure message.
    fn report(&self) -> String;
}

impl Report for Server {
    fn report(&self) -> String {
        Server::report(self)
    }
}

/// A running `hotline serve`, killed on drop.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    exit: Option<ExitStatus>,
    /// The `sip udp` listener.
    pub(crate) udp: SocketAddr,
    /// The `sip tcp` listener.
    pub(crate) tcp: SocketAddr,
    /// The `http` listener, e.g. `http://127.0.0.1:40123`.
    pub(crate) http: String,
    log: SharedLog,
    config_text: String,
    data_dir: PathBuf,
    // Dropped last: the config file and the data dir.
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts `hotline serve --config <temp file> --sip 127.0.0.1:0 --http 127.0.0.1:0
    /// --data-dir <temp dir>` and waits for its three listener lines.
    pub(crate) fn start(config: &Config) -> Server {
        Self::start_in(config, None)
    }

    /// Like [`Server::start`], on an existing data dir (another server's, to see what it
    /// left behind); the caller keeps that directory alive.
    pub(crate) fn start_with_data_dir(config: &Config, data_dir: &Path) -> Server {
        Self::start_in(config, Some(data_dir))
    }

    fn start_in(config: &Config, data_dir: Option<&Path>) -> Server {
        Setup::new_in(config, data_dir).start()
    }

    /// Everything the server wrote so far (stdout and stderr, tagged per line).
    pub(crate) fn log(&self) -> String {
        self.log.text()
    }

    /// The config file the server runs with.
    pub(crate) fn config_text(&self) -> &str {
        &self.config_text
    }

    /// The temp dir holding the config file and `data/`.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `--data-dir` the server runs with.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Sends SIGKILL (`kill -KILL`): the server stops dead, as in a crash.
    pub(crate) fn sigkill(&self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -KILL {} failed: {status}",
            self.pid()
        );
    }

    /// Sends SIGTERM (with `kill -TERM`, to avoid a libc dependency).
    pub(crate) fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
    }

    /// Waits up to `timeout` for the server to exit; `None` if it is still running.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exit {
            return Some(status);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exit = Some(status);
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) => return None,
                Err(e) => panic!("waiting for hotline: {e}"),
            }
        }
    }

    /// How many bytes of output the server has written so far (for [`Server::wait_for_log`]).
    pub(crate) fn log_len(&self) -> usize {
        self.log().len()
    }

    /// Waits up to `timeout` until the server's output after byte `since` contains any of
    /// `needles` (case-insensitive). Returns whether it did.
    pub(crate) fn wait_for_log(&self, since: usize, needles: &[&str], timeout: Duration) -> bool {
        let needles: Vec<String> = needles.iter().map(|n| n.to_lowercase()).collect();
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            let log = log.get(since..).unwrap_or("").to_lowercase();
            if needles.iter().any(|n| log.contains(n)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// A sipp run of `tests/sipp/<scenario>.xml` against this server (UDP unless `.tcp()`).
    pub(crate) fn sipp(&self, scenario: &str) -> Sipp<'_> {
        Sipp::toward(self.udp, self.tcp, scenario)
    }

    /// A sipp run of a scenario file outside `tests/sipp/` (one written at test time);
    /// `label` names it in reports and temp dirs.
    pub(crate) fn sipp_file(&self, label: &str, file: &Path) -> Sipp<'_> {
        Sipp {
            file: Some(file.to_path_buf()),
            ..self.sipp(label)
        }
    }

    /// The server's side of a failure message.
    pub(crate) fn report(&self) -> String {
        format!(
            "--- hotline config:\n{}--- hotline output (pid {}, sip udp {}, sip tcp {}, {}):\n{}",
            self.config_text,
            self.pid(),
            self.udp,
            self.tcp,
            self.http,
            tail(&self.log(), LOG_TAIL)
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Copies a child's output into `log` line by line (lossy UTF-8, so a bad byte never stops the
/// draining and blocks the child), and sends the listener lines to `tx` if given.
fn spawn_reader(
    out: impl Read + Send + 'static,
    stream: &'static str,
    log: SharedLog,
    tx: Option<mpsc::Sender<Listener>>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line =
                        strip_ansi(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']));
                    log.push(stream, &line);
                    if let (Some(tx), Some(l)) = (&tx, parse_listener(&line)) {
                        // The receiver is gone once the server is up; later lines are only logged.
                        let _ = tx.send(l);
                    }
                }
            }
        }
    });
}

/// A local SIP port for sipp (`-p`), free for both UDP and TCP right now. Left to itself,
/// sipp tries 5060..5119 in turn, which many sipps in parallel (or anything else on 5060)
/// can exhaust.
pub(crate) fn free_sip_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on 127.0.0.1");
        let port = udp.local_addr().expect("local address").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

/// sipp's media port (`-mp`): an even port P with P and P+2 free for UDP right now (sipp binds
/// audio on P and video on P+2). Left to itself sipp tries 6000, 6002, ... 100 times, which
/// ~50 sipps at once exhaust; given `-mp` it tries only that port, so it comes from the
/// kernel's ephemeral range (away from the server's RTP range) rather than a guess.
fn free_media_port() -> u16 {
    for _ in 0..100 {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on 127.0.0.1");
        let port = probe.local_addr().expect("local address").port() & !1;
        drop(probe);
        let Some(video) = port.checked_add(2) else {
            continue;
        };
        if let (Ok(_audio), Ok(_video)) = (
            UdpSocket::bind(("127.0.0.1", port)),
            UdpSocket::bind(("127.0.0.1", video)),
        ) {
            return port;
        }
    }
    panic!("no free UDP port pair P, P+2 on 127.0.0.1 for sipp's media");
}

/// SIP transport for sipp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `-t u1`, to the server's `sip udp` address.
    Udp,
    /// `-t t1`, to the server's `sip tcp` address.
    Tcp,
}

/// A sipp invocation being set up.
#[derive(Debug)]
pub(crate) struct Sipp<'a> {
    /// Where the scenario's requests go, over UDP and over TCP.
    udp: SocketAddr,
    tcp: SocketAddr,
    /// Ties a run to the server it was made for (none with [`Sipp::toward`]).
    _server: std::marker::PhantomData<&'a Server>,
    scenario: String,
    /// The scenario file, if not `tests/sipp/<scenario>.xml`.
    file: Option<PathBuf>,
    transport: Transport,
    duration_ms: Option<u64>,
    extra: Vec<String>,
}

impl Sipp<'_> {
    /// A sipp run of `tests/sipp/<scenario>.xml` toward any SIP address (a proxy in front of
    /// the servers): `udp` for UDP, `tcp` with `.tcp()`.
    pub(crate) fn toward(udp: SocketAddr, tcp: SocketAddr, scenario: &str) -> Self {
        Sipp {
            udp,
            tcp,
            _server: std::marker::PhantomData,
            scenario: scenario.to_owned(),
            file: None,
            transport: Transport::Udp,
            duration_ms: None,
            extra: Vec::new(),
        }
    }

    /// Over TCP (`-t t1`) to the server's TCP listener.
    pub(crate) fn tcp(mut self) -> Self {
        self.transport = Transport::Tcp;
        self
    }

    /// sipp's `-d`: the length of a scenario's `<pause/>`, in ms.
    pub(crate) fn duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = Some(ms);
        self
    }

    /// Any other sipp arguments.
    pub(crate) fn arg(mut self, arg: &str) -> Self {
        self.extra.push(arg.to_owned());
        self
    }

    /// Starts sipp and returns at once.
    ///
    /// The local ports sipp needs are picked free just before, but something else can take
    /// one in between; sipp then exits at once with 254 ("Unable to bind ..."), before
    /// sending anything, and is started again on fresh ports.
    pub(crate) fn spawn(self) -> RunningSipp {
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let mut running = self.start_once();
            if attempt == ATTEMPTS || !running.failed_to_bind() {
                return running;
            }
        }
        unreachable!("the last attempt returns");
    }

    fn start_once(&self) -> RunningSipp {
        let path = self
            .file
            .clone()
            .unwrap_or_else(|| scenario_path(&self.scenario));
        assert!(path.is_file(), "no scenario {}", path.display());
        let dir = tempfile::Builder::new()
            .prefix(&format!("sipp-{}-", self.scenario))
            .tempdir()
            .expect("create a temp dir for sipp");
        let remote = match self.transport {
            Transport::Udp => self.udp,
            Transport::Tcp => self.tcp,
        };
        let mut args: Vec<String> = vec![
            "-sf".into(),
            path.display().to_string(),
            "-i".into(),
            "127.0.0.1".into(),
            "-mi".into(),
            "127.0.0.1".into(),
            "-p".into(),
            free_sip_port().to_string(),
            "-mp".into(),
            free_media_port().to_string(),
            "-t".into(),
            match self.transport {
                Transport::Udp => "u1".into(),
                Transport::Tcp => "t1".into(),
            },
            "-m".into(),
            "1".into(),
            "-timeout".into(),
            format!("{SIPP_TIMEOUT_SECS}s"),
            "-timeout_error".into(),
            "-nostdin".into(),
            "-trace_err".into(),
            "-error_file".into(),
            dir.path().join("errors.log").display().to_string(),
            "-trace_msg".into(),
            "-message_file".into(),
            dir.path().join("messages.log").display().to_string(),
            "-s".into(),
            "ivr".into(),
        ];
        if let Some(ms) = self.duration_ms {
            args.push("-d".into());
            args.push(ms.to_string());
        }
        args.extend(self.extra.iter().cloned());
        args.push(remote.to_string());

        let stdout = std::fs::File::create(dir.path().join("stdout.log")).expect("sipp stdout");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("sipp stderr");
        let child = Command::new("sipp")
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run sipp ({e}); install it: apt-get install sip-tester \
                     (sipp 3.6.1)"
                )
            });
        RunningSipp {
            child: Some(child),
            scenario: self.scenario.clone(),
            command: format!("sipp {}", args.join(" ")),
            started: Instant::now(),
            dir,
        }
    }

    /// Runs sipp to the end.
    pub(crate) fn run(self) -> SippRun {
        self.spawn().wait()
    }
}

/// A sipp process in progress; killed on drop if still running.
#[derive(Debug)]
pub(crate) struct RunningSipp {
    child: Option<Child>,
    scenario: String,
    command: String,
    started: Instant,
    dir: tempfile::TempDir,
}

impl RunningSipp {
    /// Waits (bounded) until sipp has sent its first message or exited; true if it exited
    /// because a local port was taken (exit 254, "Unable to bind").
    fn failed_to_bind(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let stderr = read_or_empty(&self.dir.path().join("stderr.log"));
                    return status.code() == Some(254) && stderr.contains("Unable to bind");
                }
                Ok(None) => {}
                Err(_) => return false,
            }
            let log = read_or_empty(&self.dir.path().join("messages.log"));
            if log.contains("message sent") || Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// sipp's message trace so far.
    pub(crate) fn messages(&self) -> Vec<TracedMessage> {
        parse_message_log(&read_or_empty(&self.dir.path().join("messages.log")))
    }

    /// Waits up to `timeout` until sipp has sent a request with `method` (e.g. the ACK that
    /// makes the call established). Returns whether it did.
    pub(crate) fn wait_until_sent(&self, method: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .messages()
                .iter()
                .any(|m| m.sent && m.method() == Some(method))
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// Waits up to `timeout` until sipp has received a `code` response to `method` (e.g. the
    /// 200 that answers its first INVITE). Returns whether it did.
    pub(crate) fn wait_until_received(&self, code: u16, method: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .messages()
                .iter()
                .any(|m| !m.sent && m.is_response(code, method))
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// Waits up to `timeout` until sipp has sent `method`; if it has not, stops sipp and panics
    /// with its story and the server's.
    #[track_caller]
    pub(crate) fn expect_sent(self, method: &str, timeout: Duration, server: &Server) -> Self {
        if self.wait_until_sent(method, timeout) {
            return self;
        }
        let run = self.stop();
        run.check(
            server,
            false,
            &format!("sipp did not send {method} within {timeout:?}"),
        );
        unreachable!("check panics");
    }

    /// Kills sipp now and collects what it wrote.
    pub(crate) fn stop(self) -> SippRun {
        self.finish(Duration::ZERO)
    }

    /// Waits for sipp to exit (killing it after its own timeout plus a margin).
    pub(crate) fn wait(self) -> SippRun {
        self.finish(SIPP_HARD_TIMEOUT)
    }

    fn finish(mut self, limit: Duration) -> SippRun {
        let mut child = self.child.take().expect("waited once");
        let deadline = self.started + limit;
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) => {
                    killed = true;
                    let _ = child.kill();
                    break child.wait().expect("wait for killed sipp");
                }
                Err(e) => panic!("waiting for sipp: {e}"),
            }
        };
        let elapsed = self.started.elapsed();
        let read = |name: &str| read_or_empty(&self.dir.path().join(name));
        SippRun {
            scenario: self.scenario.clone(),
            command: self.command.clone(),
            status,
            killed,
            elapsed,
            stdout: read("stdout.log"),
            stderr: read("stderr.log"),
            errors: read("errors.log"),
            message_log: read("messages.log"),
        }
    }
}

impl Drop for RunningSipp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read_or_empty(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let mut bytes = Vec::new();
        if f.read_to_end(&mut bytes).is_ok() {
            s = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    s
}

/// A finished sipp run.
#[derive(Debug)]
pub(crate) struct SippRun {
    pub(crate) scenario: String,
    pub(crate) command: String,
    /// 0: every call passed; 1: a call failed; 97, 99, 255, 254: see `man sipp`.
    pub(crate) status: ExitStatus,
    /// The harness killed sipp after its own timeout did not end it.
    pub(crate) killed: bool,
    pub(crate) elapsed: Duration,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) errors: String,
    pub(crate) message_log: String,
}

impl SippRun {
    pub(crate) fn passed(&self) -> bool {
        self.status.success() && !self.killed
    }

    /// The SIP messages sipp sent and received, in order.
    pub(crate) fn messages(&self) -> Vec<TracedMessage> {
        parse_message_log(&self.message_log)
    }

    /// Everything about this run, for a failure message.
    pub(crate) fn report(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "--- sipp {}: {}{} after {:.2?}\n--- command: {}",
            self.scenario,
            self.status,
            if self.killed {
                " (killed by the harness)"
            } else {
                ""
            },
            self.elapsed,
            self.command
        );
        let _ = writeln!(s, "--- sipp stderr:\n{}", tail(&self.stderr, 4000));
        let _ = writeln!(s, "--- sipp errors.log:\n{}", tail(&self.errors, 6000));
        let _ = writeln!(
            s,
            "--- sipp messages.log:\n{}",
            tail(&self.message_log, LOG_TAIL)
        );
        let _ = writeln!(s, "--- sipp stdout (tail):\n{}", tail(&self.stdout, 1500));
        s
    }

    /// Panics with sipp's and the server's story unless sipp passed.
    #[track_caller]
    pub(crate) fn assert_passed(&self, server: &Server) {
        assert!(
            self.passed(),
            "sipp scenario {} failed\n{}{}",
            self.scenario,
            self.report(),
            server.report()
        );
    }

    /// Panics with `what`, sipp's and the server's story unless `cond`.
    #[track_caller]
    pub(crate) fn check(&self, server: &Server, cond: bool, what: &str) {
        assert!(
            cond,
            "{} ({}): {what}\n{}{}",
            self.scenario,
            if self.passed() {
                "sipp passed"
            } else {
                "sipp FAILED"
            },
            self.report(),
            server.report()
        );
    }
}

/// One SIP message from sipp's `-trace_msg` log.
#[derive(Debug, Clone)]
pub(crate) struct TracedMessage {
    /// sipp sent it (else it received it).
    pub(crate) sent: bool,
    /// Seconds since midnight when sipp logged it.
    pub(crate) at: f64,
    /// The message, lines without `\r`.
    pub(crate) text: String,
}

impl TracedMessage {
    pub(crate) fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    /// The request method, if a request.
    pub(crate) fn method(&self) -> Option<&str> {
        let first = self.start_line();
        if first.starts_with("SIP/2.0") {
            None
        } else {
            first.split_whitespace().next()
        }
    }

    /// The status code, if a response.
    pub(crate) fn status(&self) -> Option<u16> {
        let rest = self.start_line().strip_prefix("SIP/2.0 ")?;
        rest.split_whitespace().next()?.parse().ok()
    }

    /// The first header with this name (case-insensitive; compact forms not handled).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        for line in self.text.lines().skip(1) {
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case(name)
            {
                return Some(v.trim());
            }
        }
        None
    }

    /// The method in CSeq.
    pub(crate) fn cseq_method(&self) -> Option<&str> {
        self.header("CSeq")?.split_whitespace().nth(1)
    }

    /// The `tag` parameter of the To header.
    pub(crate) fn tag_in_to(&self) -> Option<&str> {
        tag_param(self.header("To")?)
    }

    /// The `tag` parameter of the From header.
    pub(crate) fn tag_in_from(&self) -> Option<&str> {
        tag_param(self.header("From")?)
    }

    /// A received (or sent) response `code` to a request `method`.
    pub(crate) fn is_response(&self, code: u16, method: &str) -> bool {
        self.status() == Some(code) && self.cseq_method() == Some(method)
    }
}

/// The `tag` parameter of a From or To value (after the URI's closing `>`, if any).
fn tag_param(value: &str) -> Option<&str> {
    let params = value.rfind('>').map_or(value, |i| &value[i..]);
    let i = params.find(";tag=")?;
    let rest = &params[i + 5..];
    Some(rest.split([';', ' ', ',']).next().unwrap_or(rest).trim())
}

/// Parses sipp's message log:
/// `----------------------------------------------- 2026-11-29 00:02:44.271877`
/// `UDP message sent (511 bytes):` / `UDP message received [311] bytes :`, a blank line, the
/// message.
pub(crate) fn parse_message_log(log: &str) -> Vec<TracedMessage> {
    const SEP: &str = "----------------------------------------------- ";
    let mut out = Vec::new();
    for block in log.split(SEP).skip(1) {
        let mut lines = block.lines();
        let stamp = lines.next().unwrap_or("");
        let what = lines.next().unwrap_or("");
        let sent = if what.contains("message sent") {
            true
        } else if what.contains("message received") {
            false
        } else {
            continue;
        };
        let text: Vec<&str> = lines
            .map(|l| l.trim_end_matches('\r'))
            .skip_while(|l| l.trim().is_empty())
            .collect();
        out.push(TracedMessage {
            sent,
            at: seconds_of_day(stamp),
            text: text.join("\n").trim_end().to_owned(),
        });
    }
    out
}

/// `2026-11-29 00:02:44.271877` → seconds since midnight.
fn seconds_of_day(stamp: &str) -> f64 {
    let time = stamp.split_whitespace().nth(1).unwrap_or("");
    let mut parts = time.split(':');
    let h: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let m: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let s: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    h * 3600.0 + m * 60.0 + s
}

/// Seconds from `a` to `b` in sipp's log, across midnight if need be.
pub(crate) fn seconds_between(a: &TracedMessage, b: &TracedMessage) -> f64 {
    let d = b.at - a.at;
    if d < 0.0 { d + 86_400.0 } else { d }
}

/// `tests/sipp/<template>.xml` with its `@PCAP@` replaced by a pcap of `timeline` written
/// now (sipp reads the pcap when it loads the scenario, so the path cannot be a variable).
pub(crate) struct PcapScenario {
    /// Holds the pcap and the scenario until sipp is done.
    pub(crate) dir: tempfile::TempDir,
    name: String,
    xml: PathBuf,
}

impl PcapScenario {
    pub(crate) fn new(template: &str, timeline: &pcap::Timeline) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hotline-pcap-")
            .tempdir()
            .expect("temp dir for the pcap");
        let pcap_path = dir.path().join("caller.pcap");
        timeline
            .write_pcap(&pcap_path)
            .expect("write the caller's pcap");
        let text = std::fs::read_to_string(scenario_path(template))
            .unwrap_or_else(|e| panic!("read tests/sipp/{template}.xml: {e}"));
        assert!(text.contains("@PCAP@"), "{template}.xml has no @PCAP@");
        let xml = dir.path().join(format!("{template}.xml"));
        std::fs::write(
            &xml,
            text.replace("@PCAP@", &pcap_path.display().to_string()),
        )
        .expect("write the scenario");
        PcapScenario {
            dir,
            name: template.to_owned(),
            xml,
        }
    }

    /// Starts sipp with this scenario; the call stays up `hold_ms` after the ACK (0 with a
    /// scenario that waits for our BYE). sipp's own limit leaves a minute and a half beyond.
    pub(crate) fn spawn(&self, server: &Server, hold_ms: u64) -> RunningSipp {
        self.spawn_toward(server.udp, hold_ms)
    }

    /// [`PcapScenario::spawn`] toward any SIP address over UDP (a proxy in front of nodes).
    pub(crate) fn spawn_toward(&self, target: SocketAddr, hold_ms: u64) -> RunningSipp {
        let limit = hold_ms / 1000 + 90;
        Sipp {
            file: Some(self.xml.clone()),
            ..Sipp::toward(target, target, &self.name)
        }
        .duration_ms(hold_ms)
        // The harness's 30 s global timeout is too short for these calls.
        .arg("-timeout")
        .arg(&format!("{limit}s"))
        .spawn()
    }
}
