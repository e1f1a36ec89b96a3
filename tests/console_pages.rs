//! The console's pages in a real browser: headless Debian Chromium driven by playwright-core
//! (`tests/browser/`), against `hotline serve` with a supervisor, an operator and an admin.
//!
//! Each spec is a Node script `tests/browser/<name>.mjs`, run as `node tests/browser/<name>.mjs`
//! with the server's URL and the users' credentials in its environment ([`Console::env`], listed
//! in `tests/browser/README.md`); it exits non-zero with its story on failure, and this test
//! then fails with that output and the server's. Screenshots of every page a spec visits go to
//! `target/screenshots/`.
//!
//! Adding a spec is one line in a test below: `console.run_spec("recordings.mjs", &[])`, with
//! extra variables in the slice (`&call.env()` for the specs about a recorded message).
//!
//! Node.js (20 or later), `/usr/bin/chromium` and `tests/browser/node_modules` come from
//! `bash .ci/run`; without them these tests fail, saying so: they never pass without a browser.

mod common;

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::http;
use common::json::{self, Json};
use common::pcap::{RATE, Timeline};
use common::{Config, PcapScenario, RunningSipp, Server, Setup, SippRun, tail, workspace_root};

/// How long one spec may run before it is killed (with its Chromium).
const SPEC_TIMEOUT: Duration = Duration::from_secs(240);
/// How long sipp may take to get a call established (its ACK sent).
const ESTABLISH: Duration = Duration::from_secs(10);
/// How long the writer may take to store a call's outcome and recording after its end.
const STORED: Duration = Duration::from_secs(20);
/// The Node.js major version playwright-core needs.
const NODE_MAJOR: u32 = 20;
/// How much of a spec's output goes into a failure message.
const OUTPUT_TAIL: usize = 16_000;

/// The console users every spec has, with their passwords (10 characters at least).
const SUP: (&str, &str) = ("sup", "sup-password-1");
const OP: (&str, &str) = ("ana", "ana-password-1");
const ADMIN: (&str, &str) = ("root", "root-password-1");

/// The message call of [`Console::message_call`] on the caller's timeline (ms after the ACK):
/// "2" (Quechua) and "2" (leave a message) as RFC 4733 events, then the tones after the beep
/// (the recording starts 11.5-13.9 s after the first packet: welcome cut, notice, instructions,
/// beep), `#`, and the BYE while the reference number is read back.
const KEY_LANGUAGE_AT_MS: u32 = 1_000;
const KEY_MESSAGE_AT_MS: u32 = 2_000;
const TONES_AT_MS: u32 = 14_000;
const TONES_MS: u32 = 4_000;
const HASH_AT_MS: u32 = 18_500;
const MESSAGE_HOLD_MS: u64 = 21_000;

/// A caller who asks for an operator (as in tests/operator_calls.rs): "1" during the welcome,
/// "3" during the recording notice (ms after the ACK).
const OPERATOR_KEY_1_AT_MS: u32 = 1_500;
const OPERATOR_KEY_3_AT_MS: u32 = 3_000;
/// The keypad caller of [`keypad_answers_and_quick_exit`] (ms after the ACK; no operator is
/// signed in, so the queue sends the caller to the message):
/// "1" Spanish (the welcome barges in), "4" "4" two wrong keys in the main menu (after the
/// recording notice) lead to "if you cannot talk, press 1"; "1", then the four questions
/// answered with keys; keypad-thanks plays to its end (9 s), the queue has nobody, "2" leaves a
/// message; tones after the beep; the quick-exit key `*` while recording; the BYE during the
/// decoy.
const KEYPAD_KEYS: &[(u32, char)] = &[
    (1_000, '1'),
    (7_000, '4'),
    (8_500, '4'),
    (10_000, '1'),
    (11_000, '1'),
    (12_000, '2'),
    (13_000, '1'),
    (14_000, '5'),
    (26_000, '2'),
];
const KEYPAD_TONES_AT_MS: u32 = 32_000;
const KEYPAD_TONES_MS: u32 = 6_000;
const QUICK_EXIT_AT_MS: u32 = 38_500;
const KEYPAD_HOLD_MS: u64 = 44_000;

/// The caller of [`a_booked_callback_on_the_desk`]: the number presented (never to be seen
/// on a page), and its keys (pjsua2's `--dtmf-script`, `key@ms` after the answer): 1 Spanish,
/// 3 an operator (kept through the recording notice), then in the queue 3 callback, 1 safe,
/// 1 as soon as possible, 1 confirm.
const CALLBACK_NUMBER: &str = "51987654321";
const CALLBACK_KEYS: &str = "1@1500,3@3000,3@10000,1@12500,1@15000,1@17500";

/// How long an operator's softphone may take to show registered in `/api/queue`.
const REGISTERED: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// The specs

/// Sign-in (a wrong password, each role's home, `next`), sign-out, the 403 page.
#[test]
fn signin_and_roles() {
    let console = Console::start();
    console.run_spec("signin.mjs", &[]);
}

/// One recorded Quechua message; the specs about recordings run after it, with its reference,
/// call id and recording id in CALL_REFERENCE, CALL_ID and RECORDING_ID.
#[test]
fn a_recorded_message() {
    let console = Console::start();
    let call = console.message_call();
    println!(
        "message call: reference {}, call {}, recording {}",
        call.reference, call.call_id, call.recording_id
    );
    // The variables reach a spec (which finds the call through the API).
    console.run_spec("harness.mjs", &call.env());
    // The specs about this call:
    console.run_spec("recordings.mjs", &call.env());
}

/// A caller who cannot talk answers the keypad questions, leaves a message and presses the
/// quick-exit key while recording (a real call through sipp, nothing seeded): `safety.mjs`
/// checks the API (supervisor and operator), the recording page (the answers, the quick-exit
/// warning, the marks in words, in Spanish and English) and the board's count of quick exits.
#[test]
fn keypad_answers_and_quick_exit() {
    let console = Console::start();
    let mut timeline = Timeline::new();
    for &(at, key) in KEYPAD_KEYS {
        timeline.until(at).digit(key, 100);
    }
    timeline
        .until(KEYPAD_TONES_AT_MS)
        .audio(&tones(KEYPAD_TONES_MS));
    timeline
        .until(QUICK_EXIT_AT_MS)
        .digit('*', 100)
        .silence(500);
    let (_scenario, sipp) = console.spawn_caller(&timeline, KEYPAD_HOLD_MS);
    let run = sipp.expect_sent("ACK", ESTABLISH, &console.server).wait();
    run.assert_passed(&console.server);
    let call = console.stored_call(&run, "marked quick-exit, with a recording", |c| {
        c.get("marks")
            .strings()
            .is_some_and(|m| m.contains(&"quick-exit"))
            && c.get("recordings").strings().is_some_and(|r| !r.is_empty())
    });
    let field = |key: &str| call.get(key).as_str().unwrap_or_default().to_owned();
    let recording = call
        .get("recordings")
        .strings()
        .and_then(|r| r.first().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    println!(
        "keypad call {}: reference {}, recording {recording}, marks {:?}, answers {}",
        field("id"),
        field("reference"),
        call.get("marks").strings(),
        call.get("answers").as_array().map_or(0, <[Json]>::len)
    );
    console.run_spec(
        "safety.mjs",
        &[
            ("CALL_ID", &field("id")),
            ("CALL_REFERENCE", &field("reference")),
            ("RECORDING_ID", &recording),
        ],
    );
}

/// The harness fails a failing spec: non-zero exit, its message, a NAME-FAILED.png screenshot;
/// and a spec's `signal()` reaches this side while it runs.
#[test]
fn a_failing_spec_fails() {
    let console = Console::start();
    // Its own screenshot dir: another test may run harness.mjs meanwhile.
    let shots = tempfile::tempdir().expect("temp dir for screenshots");
    let shots_dir = shots.path().display().to_string();
    let failed_shot = shots.path().join("harness-FAILED.png");
    let mut running = console.spawn_spec(
        "harness.mjs",
        &[("HARNESS_FAIL", "1"), ("HOTLINE_SCREENSHOTS", &shots_dir)],
    );
    running.wait_signal("ready", Duration::from_secs(60), &console.server);
    let run = running.wait();
    assert!(
        !run.status.success() && !run.killed,
        "a failing spec exited {} (killed: {})\n{}",
        run.status,
        run.killed,
        run.report()
    );
    assert!(
        run.output
            .contains("FAILED: spec harness, at step \"a deliberate failure\"")
            && run.output.contains("deliberate failure (HARNESS_FAIL=1)"),
        "a failing spec did not say what failed\n{}",
        run.report()
    );
    assert!(
        failed_shot.is_file(),
        "a failing spec left no screenshot {}\n{}",
        failed_shot.display(),
        run.report()
    );
}

/// The operator's desk and the supervisors' board, live: ana's softphone registers (pjsua2,
/// never answering), she sets herself available, then paused, in the page; a caller who asks
/// for an operator then waits in the queue and shows on /operator and /board without a reload.
#[test]
fn operator_desk_and_board_live() {
    let console = Console::start_with(
        &Config::default().sections("[queue]\nwrap_up_secs = 0\nposition_every_secs = 0\n"),
    );
    let _phone = Softphone::register(&console, OP);
    let mut running = console.spawn_spec("operator.mjs", &[("OP_SOFTPHONE", "1")]);
    running.wait_signal("paused", Duration::from_secs(90), &console.server);
    // Keys 1 (Spanish) and 3 (an operator), then waits; hangs up 30 s after the ACK.
    let mut timeline = Timeline::new();
    timeline.until(OPERATOR_KEY_1_AT_MS).digit('1', 100);
    timeline
        .until(OPERATOR_KEY_3_AT_MS)
        .digit('3', 100)
        .silence(500);
    let (_scenario, caller) = console.spawn_caller(&timeline, 30_000);
    let spec = running.wait();
    let call = caller.wait();
    spec.assert_passed(&console.server);
    call.assert_passed(&console.server);
    println!("{}", spec.output);
}

// ---------------------------------------------------------------------------------------
// What a spec needs on this machine

/// `tests/browser`.
fn browser_dir() -> PathBuf {
    workspace_root().join("tests/browser")
}

/// The browser the specs drive: `$CHROMIUM`, else Debian's.
fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

const HOW_TO_INSTALL: &str = "run `bash .ci/run` as root (it installs nodejs and chromium from \
                              Debian's packages and runs `npm ci` in tests/browser), or \
                              `apt-get install -y nodejs chromium && (cd tests/browser && npm ci)`";

/// Panics, saying what is missing and how to install it, unless node (20 or later), Chromium
/// and tests/browser/node_modules (the version package.json pins) are there.
fn check_prerequisites() {
    let node = Command::new("node").arg("--version").output();
    let version = match node {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => panic!(
            "`node --version` failed ({}): {}\nThe browser tests need Node.js {NODE_MAJOR} or \
             later: {HOW_TO_INSTALL}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "node is missing ({e}): the browser tests need Node.js {NODE_MAJOR} or later: \
             {HOW_TO_INSTALL}"
        ),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= NODE_MAJOR,
        "node {version} is too old: playwright-core needs Node.js {NODE_MAJOR} or later"
    );

    let chromium = chromium_path();
    assert!(
        chromium.is_file(),
        "{} is missing: the browser tests drive Debian's Chromium: {HOW_TO_INSTALL}",
        chromium.display()
    );

    let manifest = browser_dir().join("package.json");
    let pinned = std::fs::read_to_string(&manifest)
        .ok()
        .and_then(|t| json::parse(&t).ok())
        .and_then(|j| {
            j.get("dependencies")
                .get("playwright-core")
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("{} pins no playwright-core version", manifest.display()));
    let installed_manifest = browser_dir().join("node_modules/playwright-core/package.json");
    let installed = std::fs::read_to_string(&installed_manifest)
        .ok()
        .and_then(|t| json::parse(&t).ok())
        .and_then(|j| j.get("version").as_str().map(str::to_owned));
    match installed {
        None => panic!(
            "tests/browser/node_modules has no playwright-core ({} missing): run `cd \
             tests/browser && npm ci` (or `bash .ci/run`)",
            installed_manifest.display()
        ),
        Some(v) if v != pinned => panic!(
            "tests/browser/node_modules has playwright-core {v}, package.json pins {pinned}: run \
             `cd tests/browser && npm ci` (or `bash .ci/run`)"
        ),
        Some(_) => {}
    }
}

// ---------------------------------------------------------------------------------------
// The server and its users

/// A running `hotline serve` with the specs' users, and the environment every spec gets.
struct Console {
    server: Server,
    /// HOTLINE_URL, the users and their passwords, SUP_TOKEN, ...
    env: Vec<(String, String)>,
}

impl Console {
    /// Checks the prerequisites, creates the users (`sup` supervisor, `ana` operator, `root`
    /// admin) and a token for `sup`, starts the server.
    fn start() -> Console {
        Self::start_with(&Config::default())
    }

    /// Like [`Console::start`] with a config of its own.
    fn start_with(config: &Config) -> Console {
        check_prerequisites();
        let setup = Setup::new(config);
        for ((name, password), role) in [(SUP, "supervisor"), (OP, "operator"), (ADMIN, "admin")] {
            setup
                .admin(
                    &["user", "add", name, "--role", role, "--password-stdin"],
                    Some(&format!("{password}\n")),
                )
                .expect_ok();
        }
        let token = setup
            .admin(&["token", "create", SUP.0], None)
            .expect_ok()
            .trim()
            .to_owned();
        assert!(
            token.len() >= 20 && !token.contains(char::is_whitespace),
            "`hotline token create {}` printed {token:?}, not one token",
            SUP.0
        );
        let server = setup.start();
        let routes: Vec<String> = hotline_console::page_routes()
            .into_iter()
            .map(|(method, path)| format!("{method} {path}"))
            .collect();
        let screenshots = workspace_root().join("target/screenshots");
        let env = [
            ("HOTLINE_URL", server.http.clone()),
            ("HOTLINE_DATA_DIR", server.data_dir().display().to_string()),
            ("HOTLINE_PAGE_ROUTES", routes.join("\n")),
            ("HOTLINE_SCREENSHOTS", screenshots.display().to_string()),
            ("SUP_USER", SUP.0.to_owned()),
            ("SUP_PASSWORD", SUP.1.to_owned()),
            ("SUP_TOKEN", token),
            ("OP_USER", OP.0.to_owned()),
            ("OP_PASSWORD", OP.1.to_owned()),
            ("ADMIN_USER", ADMIN.0.to_owned()),
            ("ADMIN_PASSWORD", ADMIN.1.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Console { server, env }
    }

    /// The value of one of the specs' variables (`SUP_TOKEN`, ...).
    fn var(&self, key: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Runs `tests/browser/<spec>` to its end with the specs' environment plus `extra`; panics
    /// with its output and the server's unless it exits 0.
    #[track_caller]
    fn run_spec(&self, spec: &str, extra: &[(&str, &str)]) {
        let run = self.spawn_spec(spec, extra).wait();
        run.assert_passed(&self.server);
        println!("{}", run.output);
    }

    /// Starts `tests/browser/<spec>` and returns at once (to make calls while it watches a
    /// page; see [`RunningSpec::wait_signal`]).
    fn spawn_spec(&self, spec: &str, extra: &[(&str, &str)]) -> RunningSpec {
        let path = browser_dir().join(spec);
        assert!(path.is_file(), "no spec {}", path.display());
        let name = spec.trim_end_matches(".mjs");
        // A passing run leaves no stale failure screenshots of an earlier one.
        let shots = extra
            .iter()
            .find(|(k, _)| *k == "HOTLINE_SCREENSHOTS")
            .map_or_else(|| self.var("HOTLINE_SCREENSHOTS"), |(_, v)| v);
        if let Ok(entries) = std::fs::read_dir(shots) {
            let prefix = format!("{name}-FAILED");
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("spec-{name}-"))
            .tempdir()
            .expect("temp dir for a spec's output");
        let output = dir.path().join("output.log");
        let out = File::create(&output).expect("the spec's output file");
        let err = out.try_clone().expect("clone the output file");
        let child = Command::new("node")
            .arg(&path)
            .current_dir(workspace_root())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(extra.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group, so a timeout kills Chromium with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run node {}: {e}\n{HOW_TO_INSTALL}", path.display())
            });
        RunningSpec {
            child: Some(child),
            spec: spec.to_owned(),
            output,
            started: Instant::now(),
            _dir: dir,
        }
    }

    /// Starts a sipp caller whose RTP is `timeline` (keys, tones, silence), up for `hold_ms`
    /// after its ACK, then BYE. Keep the returned scenario until sipp is done.
    fn spawn_caller(&self, timeline: &Timeline, hold_ms: u64) -> (PcapScenario, RunningSipp) {
        let scenario = PcapScenario::new("uac_media_pcap", timeline);
        let sipp = scenario.spawn(&self.server, hold_ms);
        (scenario, sipp)
    }

    /// A Quechua caller leaves a 4 s message of tones: "2", "2" as RFC 4733 events, the tones
    /// after the beep, `#`, BYE during the read-back (about 25 s in all). Returns the call once
    /// the API lists it with disposition `message` and its recording.
    #[track_caller]
    fn message_call(&self) -> MessageCall {
        let mut timeline = Timeline::new();
        timeline.until(KEY_LANGUAGE_AT_MS).digit('2', 100);
        timeline.until(KEY_MESSAGE_AT_MS).digit('2', 100);
        timeline.until(TONES_AT_MS).audio(&tones(TONES_MS));
        timeline.until(HASH_AT_MS).digit('#', 100).silence(500);
        let (_scenario, sipp) = self.spawn_caller(&timeline, MESSAGE_HOLD_MS);
        let run = sipp.expect_sent("ACK", ESTABLISH, &self.server).wait();
        run.assert_passed(&self.server);
        let c = self.stored_call(&run, "with a disposition and a recording", |c| {
            c.get("disposition").as_str().is_some()
                && c.get("recordings").strings().is_some_and(|r| !r.is_empty())
        });
        let field = |key: &str| c.get(key).as_str().unwrap_or_default().to_owned();
        let call = MessageCall {
            reference: field("reference"),
            call_id: field("id"),
            recording_id: c
                .get("recordings")
                .strings()
                .and_then(|r| r.first().map(|s| (*s).to_owned()))
                .unwrap_or_default(),
            disposition: field("disposition"),
        };
        assert!(
            call.disposition == "message"
                && call.reference.len() == 6
                && call.reference.bytes().all(|b| b.is_ascii_digit()),
            "the message call is stored as {call:?}, not a message with a 6-digit reference\n{}{}",
            run.report(),
            self.server.report()
        );
        call
    }

    /// The call of sipp's `run` (by its INVITE's Call-ID) as `/api/calls` lists it, once
    /// `ready` holds for it (`want` says what that is); panics after [`STORED`].
    #[track_caller]
    fn stored_call(&self, run: &SippRun, want: &str, ready: impl Fn(&Json) -> bool) -> Json {
        let sip_call_id = run
            .messages()
            .iter()
            .find(|m| m.sent && m.method() == Some("INVITE"))
            .and_then(|m| m.header("Call-ID"))
            .map(str::to_owned);
        run.check(
            &self.server,
            sip_call_id.is_some(),
            "no INVITE Call-ID in sipp's trace",
        );
        let sip_call_id = sip_call_id.expect("checked");
        let path = format!("/api/calls?sip_call_id={}", http::encode(&sip_call_id));
        let auth = format!("Bearer {}", self.var("SUP_TOKEN"));
        let deadline = Instant::now() + STORED;
        loop {
            let r = http::request(
                &self.server.http,
                "GET",
                &path,
                &[("Authorization", &auth)],
                None,
            )
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.server.report()));
            let call: Option<Json> = (r.status == 200)
                .then(|| {
                    r.json()
                        .get("calls")
                        .as_array()
                        .and_then(|c| c.first().cloned())
                })
                .flatten();
            if let Some(call) = call.filter(|c| ready(c)) {
                return call;
            }
            assert!(
                Instant::now() < deadline,
                "within {STORED:?} of its end, {path} does not show the call {want}: HTTP {}\n{}\n{}{}",
                r.status,
                r.describe(),
                run.report(),
                self.server.report()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A call left by [`Console::message_call`], as the API lists it.
#[derive(Debug, Clone)]
struct MessageCall {
    /// The 6-digit reference read to the caller.
    reference: String,
    /// The API's call id.
    call_id: String,
    /// Its one recording.
    recording_id: String,
    disposition: String,
}

impl MessageCall {
    /// CALL_REFERENCE, CALL_ID and RECORDING_ID, for [`Console::run_spec`].
    fn env(&self) -> [(&'static str, &str); 3] {
        [
            ("CALL_REFERENCE", self.reference.as_str()),
            ("CALL_ID", self.call_id.as_str()),
            ("RECORDING_ID", self.recording_id.as_str()),
        ]
    }
}

/// `ms` of a caller "speaking": 440 Hz and 660 Hz in turns of 250 ms (no DTMF pair).
fn tones(ms: u32) -> Vec<i16> {
    let n = (ms * RATE / 1000) as usize;
    let turn = (RATE / 4) as usize;
    (0..n)
        .map(|i| {
            let f = if (i / turn).is_multiple_of(2) {
                440.0
            } else {
                660.0
            };
            let t = i as f64 / f64::from(RATE);
            (6000.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i16
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// An operator's softphone

/// `tests/peers/operator.py` (pjsua2) registered as an operator and never answering; stopped
/// on drop. Its output goes to a file, shown when registration fails.
struct Softphone {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Softphone {
    /// Registers `user` with its password over UDP, and waits until `/api/queue` shows it
    /// registered.
    #[track_caller]
    fn register(console: &Console, (user, password): (&str, &str)) -> Softphone {
        let python = std::env::var_os("PJSUA2_PYTHON").map_or_else(
            || workspace_root().join("target/pjsua2-venv/bin/python"),
            PathBuf::from,
        );
        assert!(
            python.exists(),
            "no pjsua2 python at {}: run `bash tests/peers/setup.sh` (or set PJSUA2_PYTHON)",
            python.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("softphone-")
            .tempdir()
            .expect("temp dir for the softphone's output");
        let log = dir.path().join("softphone.log");
        let out = File::create(&log).expect("the softphone's output file");
        let err = out.try_clone().expect("clone the output file");
        let child = Command::new(python)
            .arg("-I")
            .arg(workspace_root().join("tests/peers/operator.py"))
            .args(["--registrar", &format!("sip:{}", console.server.udp)])
            .args(["--user", user, "--password", password])
            .args([
                "--domain",
                "hotline.local",
                "--timeout-s",
                "200",
                "--never-answer",
            ])
            .current_dir(workspace_root())
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start the softphone: {e}"));
        let phone = Softphone { child, _dir: dir };
        let auth = format!("Bearer {}", console.var("SUP_TOKEN"));
        let deadline = Instant::now() + REGISTERED;
        loop {
            let registered = http::request(
                &console.server.http,
                "GET",
                "/api/queue",
                &[("Authorization", &auth)],
                None,
            )
            .ok()
            .filter(|r| r.status == 200)
            .is_some_and(|r| {
                r.json()
                    .get("operators")
                    .as_array()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| {
                        o.get("name").as_str() == Some(user)
                            && o.get("registered") == &Json::Bool(true)
                    })
            });
            if registered {
                return phone;
            }
            assert!(
                Instant::now() < deadline,
                "{user}'s softphone does not show registered in /api/queue within \
                 {REGISTERED:?}\n--- softphone:\n{}\n{}",
                tail(&read_lossy(&log), OUTPUT_TAIL),
                console.server.report()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Softphone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// A spec's run

/// A spec in progress; killed (with its Chromium) on drop if still running.
struct RunningSpec {
    child: Option<Child>,
    spec: String,
    /// Its stdout and stderr, interleaved.
    output: PathBuf,
    started: Instant,
    _dir: tempfile::TempDir,
}

impl RunningSpec {
    /// Its output so far.
    fn output(&self) -> String {
        read_lossy(&self.output)
    }

    /// Waits up to `timeout` for the spec to call `signal(tag)` (a line `HOTLINE-SIGNAL tag`);
    /// panics with its output if it does not, or ends first.
    #[track_caller]
    fn wait_signal(&mut self, tag: &str, timeout: Duration, server: &Server) {
        let line = format!("HOTLINE-SIGNAL {tag}");
        let deadline = Instant::now() + timeout;
        loop {
            if self.output().lines().any(|l| l.trim() == line) {
                return;
            }
            let ended = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if ended || Instant::now() >= deadline {
                let run = self.finish(Duration::ZERO);
                panic!(
                    "spec {} {} before signalling {tag:?}\n{}{}",
                    run.spec,
                    if ended { "ended" } else { "ran out of time" },
                    run.report(),
                    server.report()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the spec to end (killing it after [`SPEC_TIMEOUT`]).
    fn wait(mut self) -> SpecRun {
        self.finish(SPEC_TIMEOUT)
    }

    fn finish(&mut self, limit: Duration) -> SpecRun {
        let mut child = self.child.take().expect("finished once");
        let deadline = self.started + limit;
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Ok(None) => {
                    killed = true;
                    kill_group(&mut child);
                    break child.wait().expect("wait for the killed spec");
                }
                Err(e) => panic!("waiting for spec {}: {e}", self.spec),
            }
        };
        SpecRun {
            spec: self.spec.clone(),
            status,
            killed,
            elapsed: self.started.elapsed(),
            output: self.output(),
        }
    }
}

impl Drop for RunningSpec {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
            let _ = child.wait();
        }
    }
}

/// A callback booked by a real call, on the desk: ana's softphone registers (never
/// answering) and she is paused, so a pjsua2 caller from [`CALLBACK_NUMBER`] waits in the
/// queue, presses 3 (call me back), 1 (safe), 1 (as soon as possible), 1 (confirm) and is
/// hung up on after "booked". `callbacks.mjs` then checks ana's desk (the row, no number, no
/// Cancel, her cancel refused), the supervisor's (Cancel, the row gone), the API, and ana's
/// open desk dropping the row; this side checks the table: cancelled, the number deleted.
#[test]
fn a_booked_callback_on_the_desk() {
    // The key file outside the data dir (the config refuses it inside).
    let keys = tempfile::tempdir().expect("temp dir for the callback key");
    let key_file = keys.path().join("callback.key");
    std::fs::write(&key_file, "5a".repeat(32)).expect("write the callback key");
    let gateway = common::free_sip_port();
    let console = Console::start_with(
        &Config::default()
            .sip_line("user_agent = \"pbx\"")
            .sections(&format!(
                "[queue]\nwrap_up_secs = 0\nposition_every_secs = 0\n\n\
             [callback]\ngateway = \"127.0.0.1:{gateway}\"\ncaller_id = \"5550100\"\n\
             display_name = \"Servicios\"\nkey_file = \"{}\"\n",
                key_file.display()
            )),
    );
    let _phone = Softphone::register(&console, OP);
    let auth = format!("Bearer {}", console.var("SUP_TOKEN"));
    let api = |method: &str, path: &str, body: Option<&str>| -> Json {
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let r = http::request(
            &console.server.http,
            method,
            path,
            &headers,
            body.map(str::as_bytes),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", console.server.report()));
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {}\n{}",
            r.describe(),
            console.server.report()
        );
        if r.text().trim().is_empty() {
            Json::Null
        } else {
            r.json()
        }
    };
    api(
        "PUT",
        "/api/operators/ana/status",
        Some(r#"{"status":"paused"}"#),
    );
    let mut caller = common::softphone::Softphone::start(
        "caller",
        &[
            "--call".to_owned(),
            format!("sip:0800232323@{}", console.server.udp),
            "--user".to_owned(),
            CALLBACK_NUMBER.to_owned(),
            "--domain".to_owned(),
            "127.0.0.1".to_owned(),
            "--dtmf-script".to_owned(),
            CALLBACK_KEYS.to_owned(),
            "--timeout-s".to_owned(),
            "60".to_owned(),
        ],
    );
    assert!(
        caller.wait_exit(Duration::from_secs(60)).is_some(),
        "the caller is still on: the flow did not hang up after the booking\n{}\n{}",
        caller.report(),
        console.server.report()
    );
    // The booking, as the desk's API lists it, and the call marked `callback`.
    let deadline = Instant::now() + STORED;
    let (callback, call) = loop {
        let listed = api("GET", "/api/callbacks", None);
        let first = listed
            .get("callbacks")
            .as_array()
            .and_then(|c| c.first().cloned());
        let call = first.as_ref().map(|cb| {
            let call_id = cb.get("call_id").as_str().unwrap_or_default().to_owned();
            api("GET", &format!("/api/calls/{call_id}"), None)
        });
        if let (Some(cb), Some(call)) = (first, call)
            && call
                .get("marks")
                .strings()
                .is_some_and(|m| m.contains(&"callback"))
        {
            break (cb, call);
        }
        assert!(
            Instant::now() < deadline,
            "no callback listed with its call marked `callback` within {STORED:?}: {listed:?}\n{}\n{}",
            caller.report(),
            console.server.report()
        );
        thread::sleep(Duration::from_millis(200));
    };
    let field = |j: &Json, key: &str| j.get(key).as_str().unwrap_or_default().to_owned();
    let id = field(&callback, "id");
    assert_eq!(field(&callback, "window"), "asap", "{callback:?}");
    assert_eq!(field(&call, "disposition"), "abandoned", "{call:?}");
    println!(
        "callback {id} of call {} (reference {}), {}",
        field(&call, "id"),
        field(&call, "reference"),
        field(&callback, "state")
    );
    console.run_spec(
        "callbacks.mjs",
        &[
            ("CALLBACK_ID", &id),
            ("CALL_ID", &field(&call, "id")),
            ("CALL_REFERENCE", &field(&call, "reference")),
            ("CALLBACK_WINDOW", "asap"),
            ("CALLER_NUMBER", CALLBACK_NUMBER),
        ],
    );
    // The table: cancelled by the supervisor, the number deleted.
    let db = console.server.data_dir().join("hotline.db");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg(format!(
            "SELECT state, cancelled_by, number_sealed IS NULL FROM callbacks WHERE id = '{id}'"
        ))
        .output()
        .expect("sqlite3 (apt-get install sqlite3)");
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("cancelled|{}|1", SUP.0)
    );
}

/// SIGKILL to a spec's process group (node and its Chromium).
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
}

/// A finished spec.
#[derive(Debug)]
struct SpecRun {
    spec: String,
    status: ExitStatus,
    /// The harness killed it after [`SPEC_TIMEOUT`].
    killed: bool,
    elapsed: Duration,
    output: String,
}

impl SpecRun {
    fn report(&self) -> String {
        format!(
            "--- spec tests/browser/{}: {}{} after {:.1?} (screenshots in target/screenshots/)\n\
             --- its output:\n{}\n",
            self.spec,
            self.status,
            if self.killed {
                " (killed by the harness)"
            } else {
                ""
            },
            self.elapsed,
            tail(&self.output, OUTPUT_TAIL)
        )
    }

    #[track_caller]
    fn assert_passed(&self, server: &Server) {
        assert!(
            self.status.success() && !self.killed,
            "browser spec {} failed\n{}{}",
            self.spec,
            self.report(),
            server.report()
        );
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
