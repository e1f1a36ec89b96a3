//! An operator's (or a caller's) softphone: PJSIP's `pjsua2-python` running
//! `tests/peers/operator.py`, its JSON events collected. The venv comes from
//! `tests/peers/setup.sh` (`.ci/run` runs it and exports `PJSUA2_PYTHON`).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::json::Json;
use super::{Report, workspace_root};

pub(crate) fn python() -> PathBuf {
    let path = std::env::var_os("PJSUA2_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/pjsua2-venv/bin/python"));
    assert!(
        path.exists(),
        "no pjsua2 python at {}: run `bash tests/peers/setup.sh` (or set PJSUA2_PYTHON)",
        path.display()
    );
    path
}

/// `tests/peers/operator.py` running, its JSON events collected.
pub(crate) struct Softphone {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Json>>>,
    stderr: Arc<Mutex<String>>,
}

impl Softphone {
    pub(crate) fn start(label: &str, args: &[String]) -> Softphone {
        let mut child = Command::new(python())
            .arg("-I")
            .arg(workspace_root().join("tests/peers/operator.py"))
            .args(args)
            .current_dir(workspace_root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {label}: {e}"));
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("piped");
        let ev = events.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(j) = super::json::parse(&line) {
                    ev.lock().unwrap().push(j);
                }
            }
        });
        let err = child.stderr.take().expect("piped");
        let log = stderr.clone();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let stdin = child.stdin.take();
        Softphone {
            label: label.to_owned(),
            child,
            stdin,
            events,
            stderr,
        }
    }

    /// An operator softphone registering as `user@domain` with `password` at `registrar`
    /// (a hotline node, or the proxy in front), UDP.
    pub(crate) fn operator(
        registrar: SocketAddr,
        user: &str,
        password: &str,
        domain: &str,
        extra: &[&str],
    ) -> Softphone {
        let mut args: Vec<String> = [
            "--registrar",
            &format!("sip:{registrar}"),
            "--user",
            user,
            "--password",
            password,
            "--domain",
            domain,
            "--timeout-s",
            "110",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Softphone::start(user, &args)
    }

    pub(crate) fn events(&self) -> Vec<Json> {
        self.events.lock().unwrap().clone()
    }

    pub(crate) fn find(&self, event: &str) -> Option<Json> {
        self.events()
            .into_iter()
            .find(|e| e.get("event").as_str() == Some(event))
    }

    /// The first `event`, waiting up to `timeout`; panics with both sides' story.
    #[track_caller]
    pub(crate) fn wait(&self, event: &str, timeout: Duration, server: &impl Report) -> Json {
        let end = Instant::now() + timeout;
        loop {
            if let Some(e) = self.find(event) {
                return e;
            }
            assert!(
                Instant::now() < end,
                "{}: no `{event}` event in {timeout:?}\n{}\n{}",
                self.label,
                self.report(),
                server.report()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn command(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{line}");
            let _ = s.flush();
        }
    }

    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub(crate) fn report(&self) -> String {
        let events: Vec<String> = self.events().iter().map(|e| format!("{e:?}")).collect();
        let err = self.stderr.lock().unwrap().clone();
        let tail: String = err
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        format!(
            "--- {} events:\n{}\n--- {} stderr (tail):\n{tail}",
            self.label,
            events.join("\n"),
            self.label
        )
    }
}

impl Drop for Softphone {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.command("quit");
            if self.wait_exit(Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}
