//! Kamailio in front of the test's nodes: Debian's `kamailio` with the shipped
//! `deploy/kamailio/kamailio.cfg`, on 127.0.0.1 and a free port, with a dispatcher list of the
//! given node addresses and the given trunk sources, all through the config's `-A` defines.
//! Unprivileged and in the foreground (`-DD -E`), its control socket, pid file and list in a temp
//! dir; its output captured for failure messages; stopped (its whole process group) on drop.
//!
//! No `kamailio` binary: the test is skipped with a note, unless `CI` is set, where that is a
//! failure (`.ci/run` installs it).

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{LOG_TAIL, POLL, SharedLog, free_sip_port, spawn_reader, tail, workspace_root};

/// Where Debian installs it.
const KAMAILIO: &str = "/usr/sbin/kamailio";
/// How long Kamailio may take to answer its first OPTIONS.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// The shipped config.
pub(crate) fn config_path() -> PathBuf {
    workspace_root().join("deploy/kamailio/kamailio.cfg")
}

/// The `kamailio` binary, if installed. Missing with `CI` set: a failure.
#[track_caller]
pub(crate) fn binary() -> Option<PathBuf> {
    let found = [PathBuf::from(KAMAILIO)]
        .into_iter()
        .chain(
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join("kamailio"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "kamailio is needed for this test (CI is set): apt-get install kamailio"
        );
        eprintln!(
            "SKIPPED: no kamailio binary (apt-get install kamailio); set CI to make this a failure"
        );
    }
    found
}

/// A running Kamailio; stopped on drop.
#[derive(Debug)]
pub(crate) struct Kamailio {
    child: Child,
    /// Its SIP address (UDP and TCP on the same port).
    pub(crate) addr: SocketAddr,
    nodes: Vec<SocketAddr>,
    command: String,
    log: SharedLog,
    // Dropped last: the dispatcher list, the control socket, the pid file.
    dir: tempfile::TempDir,
}

impl Kamailio {
    /// Starts Kamailio with the shipped config, dispatching over `nodes` (their `sip udp`
    /// addresses) and taking calls from `trunk_sources` (CIDR, e.g. `127.0.0.1/32`), and
    /// waits until it answers an OPTIONS. `None` (after a note) if kamailio is not installed
    /// and `CI` is not set.
    #[track_caller]
    pub(crate) fn start(nodes: &[SocketAddr], trunk_sources: &[&str]) -> Option<Kamailio> {
        let bin = binary()?;
        let dir = tempfile::Builder::new()
            .prefix("hotline-kamailio-")
            .tempdir()
            .expect("temp dir for kamailio");
        let list = dir.path().join("dispatcher.list");
        let mut text = String::from("# written by tests/common/kamailio.rs\n");
        for n in nodes {
            text.push_str(&format!("1 sip:{n} 0 0\n"));
        }
        std::fs::write(&list, text).expect("write the dispatcher list");
        let port = free_sip_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let defines = [
            format!("LISTEN_UDP=udp:{addr}"),
            format!("LISTEN_TCP=tcp:{addr}"),
            format!("DISPATCHER_LIST=\"{}\"", list.display()),
            format!("TRUNK_SOURCES=\"{}\"", trunk_sources.join(",")),
            format!(
                "CTL_SOCKET=\"unix:{}\"",
                dir.path().join("kamailio_ctl").display()
            ),
            // Two cores shared with everything else.
            "CHILDREN=2".to_owned(),
        ];
        let mut cmd = Command::new(&bin);
        cmd.arg("-DD")
            .arg("-E")
            .arg("-f")
            .arg(config_path())
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-w")
            .arg(dir.path());
        for d in &defines {
            cmd.arg("-A").arg(d);
        }
        // Its own process group: its workers are stopped with it.
        cmd.process_group(0)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let command = format!("{} {:?}", bin.display(), cmd.get_args().collect::<Vec<_>>());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
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
        let mut kamailio = Kamailio {
            child,
            addr,
            nodes: nodes.to_vec(),
            command,
            log,
            dir,
        };
        kamailio.wait_ready();
        Some(kamailio)
    }

    /// Polls with OPTIONS (from 127.0.0.1, a trunk source in the tests) until Kamailio
    /// answers 200 itself; panics with its output if it exits or does not answer within the
    /// startup timeout.
    #[track_caller]
    fn wait_ready(&mut self) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let local = socket.local_addr().expect("local address");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut n = 0;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            n += 1;
            let options = format!(
                "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKready{n};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=probe{n}\r\nTo: <sip:{addr}>\r\n\
                 Call-ID: ready-{n}-{local}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n",
                addr = self.addr
            );
            let _ = socket.send_to(options.as_bytes(), self.addr);
            if let Ok((len, _)) = socket.recv_from(&mut buf)
                && buf[..len].starts_with(b"SIP/2.0 200")
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("kamailio exited at start-up: {status}\n{}", self.report());
            }
        }
        panic!(
            "kamailio did not answer OPTIONS within {STARTUP_TIMEOUT:?}\n{}",
            self.report()
        );
    }

    /// Everything Kamailio wrote so far.
    pub(crate) fn log(&self) -> String {
        self.log.text()
    }

    /// Waits up to `timeout` until Kamailio's output after byte `since` contains `needle`.
    pub(crate) fn wait_for_log(&self, since: usize, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().get(since..).is_some_and(|l| l.contains(needle)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// The temp dir with the dispatcher list.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kamailio's side of a failure message.
    pub(crate) fn report(&self) -> String {
        format!(
            "--- kamailio (pid {}, {}, nodes {:?}):\n--- command: {}\n--- kamailio output:\n{}",
            self.child.id(),
            self.addr,
            self.nodes,
            self.command,
            tail(&self.log(), LOG_TAIL)
        )
    }

    /// Sends `signal` to Kamailio's process group.
    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // TERM lets the main process stop its workers; KILL the group if it does not.
        self.signal_group("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(POLL);
        }
        self.signal_group("-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
