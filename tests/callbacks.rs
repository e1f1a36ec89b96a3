//! Safe callbacks, end to end, on SQLite and on PostgreSQL. A pjsua2 caller (number
//! 51987654321) waits in the queue while the only operator is paused, presses 3 (call me
//! back), 1 (the number is safe), 1 (as soon as an operator is free), 1 (confirm) and hears
//! the booking; the hotline hangs up. Then:
//!
//! 1. `…_placed_operator_first_then_the_carrier_…`: ana goes available; her softphone rings
//!    with `CALLBACK ES <reference>` (never the number), she answers and hears the safety
//!    script; only then (at least the script's length later) does a sipp UAS acting as the
//!    carrier at `callback.gateway` get the INVITE: `sip:51987654321@<gateway>`, From the
//!    neutral caller ID and display name, nothing naming the hotline; it challenges with
//!    401, checks the digest of the second INVITE (`verifyauth`), answers and plays a
//!    1000 Hz tone, which ana hears (bridged). Ana hangs up; the carrier gets our BYE; the
//!    callback is `done` and its number is gone from the database (SQL on the table).
//! 2. `…_no_answer_is_retried_then_given_up_…`: the carrier rings and never answers: each
//!    attempt is cancelled after the ring timeout (no voicemail can pick up), retried once,
//!    then given up; the number is deleted.
//!
//! 3. `a_supervisor_cancels_…`: the API's cancel (403 for an operator, 409 the second time).
//! 4. `a_booking_the_store_refuses_…`: an SQLite trigger refuses the insert: the caller is not
//!    told "booked", hears that it failed and waits in the queue again; nothing stored.
//!
//! Every attempt is an event of the original call (`GET /api/calls/{id}`); a booked call is
//! marked `callback`, and its events say `callback-requested` before `callback-booked`.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::json::Json;
use common::pg::PgDatabase;
use common::softphone::Softphone as Peer;
use common::{Config, Server, Setup, free_sip_port, http, workspace_root};

const DOMAIN: &str = "hotline.local";
const OP_PASSWORD: &str = "op-softphone-pw";
const NUMBER: &str = "51987654321";
const EVENT: Duration = Duration::from_secs(30);
/// Keys after the caller's call is confirmed: 1 Spanish, 3 operator (kept through the
/// notice), then in the queue 3 callback, 1 safe, 1 asap, 1 confirm.
const KEYS: &str = "1@1500,3@3000,3@10000,1@12500,1@15000,1@17500";

/// Where the test reads the callbacks table.
enum Db {
    Sqlite(PathBuf),
    Pg(PgDatabase),
}

impl Db {
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        match self {
            Db::Pg(db) => db.rows(sql),
            Db::Sqlite(path) => {
                let out = Command::new("sqlite3")
                    .arg(path)
                    .arg(sql)
                    .output()
                    .expect("sqlite3 (apt-get install sqlite3)");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| l.split('|').map(str::to_owned).collect())
                    .collect()
            }
        }
    }

    /// Each callback: state, attempts, the sealed number in hex (empty when NULL).
    fn callbacks(&self) -> Vec<(String, String, String)> {
        let hex = match self {
            Db::Pg(_) => "COALESCE(encode(number_sealed, 'hex'), '')",
            Db::Sqlite(_) => "COALESCE(hex(number_sealed), '')",
        };
        self.rows(&format!(
            "SELECT state, attempts, {hex} FROM callbacks ORDER BY created_at"
        ))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].to_lowercase()))
        .collect()
    }
}

/// The sipp UAS that plays the carrier's gateway.
struct Carrier {
    child: Child,
    dir: tempfile::TempDir,
}

impl Carrier {
    fn start(scenario: &str, port: u16, calls: u32) -> Carrier {
        let dir = tempfile::tempdir().unwrap();
        // A raw µ-law 1000 Hz tone for rtp_stream (10 s).
        let tone: Vec<u8> = (0..80_000)
            .map(|i| {
                let t = f64::from(i) / 8000.0;
                ulaw((0.3 * 32767.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16)
            })
            .collect();
        std::fs::write(dir.path().join("tone1000.ulaw"), tone).unwrap();
        let media_port = free_sip_port();
        let child = Command::new("sipp")
            .args([
                "-sf",
                &workspace_root()
                    .join("tests/sipp")
                    .join(format!("{scenario}.xml"))
                    .display()
                    .to_string(),
            ])
            .args([
                "-i",
                "127.0.0.1",
                "-mi",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args([
                "-mp",
                &media_port.to_string(),
                "-t",
                "u1",
                "-m",
                &calls.to_string(),
            ])
            .args([
                "-timeout",
                "150s",
                "-timeout_error",
                "-nostdin",
                "-trace_msg",
                "-trace_err",
            ])
            .args(["-message_file", "messages.log", "-error_file", "errors.log"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .expect("sipp (apt-get install sip-tester)");
        Carrier { child, dir }
    }

    fn messages(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("messages.log")).unwrap_or_default()
    }

    fn report(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!(
            "--- carrier messages\n{}\n--- errors\n{}\n--- stderr\n{}",
            common::tail(&self.messages(), 12_000),
            read("errors.log"),
            read("stderr.log")
        )
    }

    /// INVITEs the carrier received, whole.
    fn invites(&self) -> Vec<String> {
        self.messages()
            .split("----------------------------------------------")
            .filter(|m| m.contains("message received") && m.contains("INVITE sip:"))
            .map(str::to_owned)
            .collect()
    }

    /// Waits for the end of the scenario; whether sipp passed.
    fn wait(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.success();
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        false
    }
}

impl Drop for Carrier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// G.711 µ-law of one sample.
fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = (s.min(32_635) + BIAS) as u32;
    let exponent = (31 - s.leading_zeros()).saturating_sub(7).min(7);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

struct Hotline {
    server: Server,
    token: String,
    db: Db,
    _keys: tempfile::TempDir,
}

fn start(postgres: bool, gateway: u16, callback: &str) -> Hotline {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("callback.key");
    std::fs::write(&key_file, "5a".repeat(32)).unwrap();
    let sections = format!(
        "[queue]\nring_timeout_secs = 15\nwrap_up_secs = 0\nposition_every_secs = 0\n\n\
         [callback]\ngateway = \"127.0.0.1:{gateway}\"\ncaller_id = \"5550100\"\n\
         display_name = \"Servicios\"\nkey_file = \"{}\"\n{callback}\n\
         [callback.windows]\nmorning = \"08:00-12:00\"\nafternoon = \"12:00-18:00\"\nevening = \"18:00-21:00\"\n",
        key_file.display()
    );
    let config = Config::default()
        .sip_line("user_agent = \"pbx\"")
        .sections(&sections);
    let mut setup = Setup::new(&config).env("CB_PASSWORD", "s3cret");
    let pg = postgres.then(PgDatabase::create);
    if let Some(db) = &pg {
        setup = setup.env("DATABASE_URL", &db.url());
    }
    for (name, role, pw) in [
        ("ana", "operator", OP_PASSWORD),
        ("sup", "supervisor", "sup-password-1"),
    ] {
        setup
            .admin(
                &["user", "add", name, "--role", role, "--password-stdin"],
                Some(&format!("{pw}\n")),
            )
            .expect_ok();
    }
    let token = setup
        .admin(&["token", "create", "sup"], None)
        .expect_ok()
        .trim()
        .to_owned();
    let sqlite = setup.data_dir().join("hotline.db");
    let server = setup.start();
    Hotline {
        server,
        token,
        db: match pg {
            Some(db) => Db::Pg(db),
            None => Db::Sqlite(sqlite),
        },
        _keys: keys,
    }
}

impl Hotline {
    #[track_caller]
    fn api(&self, method: &str, path: &str, body: Option<&str>) -> Json {
        let auth = format!("Bearer {}", self.token);
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let r = http::request(
            &self.server.http,
            method,
            path,
            &headers,
            body.map(str::as_bytes),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.server.report()));
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {}\n{}",
            r.describe(),
            self.server.report()
        );
        if r.text().trim().is_empty() {
            Json::Null
        } else {
            r.json()
        }
    }

    fn status(&self, status: &str) {
        self.api(
            "PUT",
            "/api/operators/ana/status",
            Some(&format!("{{\"status\":\"{status}\"}}")),
        );
    }

    /// Ana's softphone, registered and paused (logged in: callers wait for her).
    fn operator(&self, extra: &[&str]) -> Peer {
        let ana = Peer::operator(self.server.udp, "ana", OP_PASSWORD, DOMAIN, extra);
        ana.wait("registered", EVENT, &self.server);
        let end = Instant::now() + EVENT;
        loop {
            self.status("paused");
            let q = self.api("GET", "/api/queue", None);
            let registered = q
                .get("operators")
                .as_array()
                .unwrap_or_default()
                .iter()
                .any(|o| {
                    o.get("name").as_str() == Some("ana")
                        && o.get("registered") == &Json::Bool(true)
                });
            if registered {
                return ana;
            }
            assert!(
                Instant::now() < end,
                "ana never registered\n{}",
                self.server.report()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// A caller books an asap callback through the flow; returns the original call's id.
    fn book(&self) -> String {
        let mut caller = Peer::start(
            "caller",
            &[
                "--call".to_owned(),
                format!("sip:0800232323@{}", self.server.udp),
                "--user".to_owned(),
                NUMBER.to_owned(),
                "--domain".to_owned(),
                "127.0.0.1".to_owned(),
                "--dtmf-script".to_owned(),
                KEYS.to_owned(),
                "--timeout-s".to_owned(),
                "60".to_owned(),
            ],
        );
        // The flow says "booked" and hangs up.
        assert!(
            caller.wait_exit(Duration::from_secs(60)).is_some(),
            "caller still on\n{}\n{}",
            caller.report(),
            self.server.report()
        );
        let end = Instant::now() + EVENT;
        loop {
            let rows = self.db.callbacks();
            if let Some((state, _, sealed)) = rows.first() {
                // Due at once (asap): it may already wait in the queue for an operator.
                assert!(state == "pending" || state == "placing", "{state}");
                assert!(!sealed.is_empty(), "the sealed number is stored");
                assert!(
                    !sealed.contains(&hex(NUMBER)),
                    "the number in clear in the store"
                );
                break;
            }
            assert!(
                Instant::now() < end,
                "no callback booked\n{}\n{}",
                caller.report(),
                self.server.report()
            );
            thread::sleep(Duration::from_millis(100));
        }
        let calls = self.api("GET", "/api/calls?limit=1", None);
        let id = calls.get("calls").as_array().unwrap()[0]
            .get("id")
            .as_str()
            .unwrap()
            .to_owned();
        // Booked before the flow said so, and the call marked `callback` at its end.
        let end = Instant::now() + EVENT;
        loop {
            let call = self.api("GET", &format!("/api/calls/{id}"), None);
            let k = kinds(&call);
            let requested = k.iter().position(|k| k == "callback-requested");
            let booked = k.iter().position(|k| k == "callback-booked");
            assert!(
                requested.is_some() && requested < booked,
                "callback-requested, then callback-booked: {k:?}"
            );
            if call
                .get("marks")
                .strings()
                .is_some_and(|m| m.contains(&"callback"))
            {
                break;
            }
            assert!(
                Instant::now() < end,
                "the call is not marked callback: {call:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
        id
    }

    /// A caller confirms a callback that the store refuses (a trigger on the table): the
    /// flow says it failed and the caller waits for an operator again, still on the line.
    fn book_refused(&self) -> (String, Vec<String>) {
        let Db::Sqlite(path) = &self.db else {
            panic!("the refusal is made with an SQLite trigger");
        };
        let out = Command::new("sqlite3")
            .arg(path)
            .arg(
                "CREATE TRIGGER refuse_callbacks BEFORE INSERT ON callbacks \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
            )
            .output()
            .expect("sqlite3 (apt-get install sqlite3)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut caller = Peer::start(
            "caller",
            &[
                "--call".to_owned(),
                format!("sip:0800232323@{}", self.server.udp),
                "--user".to_owned(),
                NUMBER.to_owned(),
                "--domain".to_owned(),
                "127.0.0.1".to_owned(),
                "--dtmf-script".to_owned(),
                KEYS.to_owned(),
                "--timeout-s".to_owned(),
                "60".to_owned(),
            ],
        );
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let calls = self.api("GET", "/api/calls?limit=1", None);
            if let Some(call) = calls.get("calls").as_array().and_then(|c| c.first()) {
                let id = call.get("id").as_str().unwrap_or_default().to_owned();
                let call = self.api("GET", &format!("/api/calls/{id}"), None);
                let events: Vec<(String, String)> = call
                    .get("events")
                    .as_array()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        let f = |k: &str| e.get(k).as_str().unwrap_or_default().to_owned();
                        (f("kind"), f("detail"))
                    })
                    .collect();
                let failed = events
                    .iter()
                    .position(|(k, d)| k == "callback-failed" && d == "refused");
                // Back in the queue after "we could not book it".
                if let Some(at) = failed
                    && events[at..]
                        .iter()
                        .any(|(k, d)| k == "node" && d == "operator")
                {
                    assert!(
                        caller.wait_exit(Duration::from_millis(50)).is_none(),
                        "the hotline hung up on a caller whose callback failed\n{}",
                        caller.report()
                    );
                    return (id, events.into_iter().map(|(k, _)| k).collect());
                }
            }
            assert!(
                Instant::now() < end,
                "no refused booking followed by the queue\n{}\n{}",
                caller.report(),
                self.server.report()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_state(
        &self,
        state: &str,
        timeout: Duration,
        context: &dyn Fn() -> String,
    ) -> (String, String, String) {
        let end = Instant::now() + timeout;
        loop {
            if let Some(row) = self
                .db
                .callbacks()
                .into_iter()
                .next()
                .filter(|r| r.0 == state)
            {
                return row;
            }
            assert!(
                Instant::now() < end,
                "callback never {state}: {:?}\n{}\n{}",
                self.db.callbacks(),
                context(),
                self.server.report()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn kinds(call: &Json) -> Vec<String> {
    call.get("events")
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get("kind").as_str().map(str::to_owned))
        .collect()
}

fn placed_operator_first_then_the_carrier(postgres: bool) {
    let gateway = free_sip_port();
    let h = start(
        postgres,
        gateway,
        "username = \"trunk1\"\npassword_env = \"CB_PASSWORD\"\nring_timeout_secs = 10\n\
         retry_interval_secs = 1\nmax_attempts = 2\n",
    );
    let work = tempfile::tempdir().unwrap();
    let heard = work.path().join("ana-heard.wav");
    let ana = h.operator(&[
        "--answer-after-ms",
        "300",
        "--record",
        heard.to_str().unwrap(),
        "--hangup-after-ms",
        "26000",
    ]);
    let call_id = h.book();
    let server_log = h.server.log();
    assert!(
        !server_log.contains(NUMBER) && !server_log.contains(&NUMBER[2..]),
        "the number in the log"
    );

    // The desk's list: the original call's reference, never the number.
    let listed = h.api("GET", "/api/callbacks", None);
    let rows = listed
        .get("callbacks")
        .as_array()
        .unwrap_or_default()
        .to_vec();
    assert_eq!(rows.len(), 1, "{listed:?}");
    assert_eq!(rows[0].get("call_id").as_str(), Some(call_id.as_str()));
    assert_eq!(rows[0].get("window").as_str(), Some("asap"));
    assert_eq!(rows[0].get("language").as_str(), Some("es"));
    assert!(!format!("{listed:?}").contains(&NUMBER[2..]), "{listed:?}");

    let mut carrier = Carrier::start("uas_carrier_auth", gateway, 1);
    thread::sleep(Duration::from_millis(300));
    h.status("available");
    let incoming = ana.wait("incoming", EVENT, &h.server);
    let reference = h
        .api("GET", &format!("/api/calls/{call_id}"), None)
        .get("reference")
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        incoming.get("display").as_str(),
        Some(format!("CALLBACK ES {reference}").as_str()),
        "{incoming:?}"
    );
    assert!(
        !format!("{incoming:?}").contains(&NUMBER[2..]),
        "the number on the operator's phone: {incoming:?}"
    );
    ana.wait("confirmed", EVENT, &h.server);
    let answered = Instant::now();
    // Nobody rings the caller while the operator hears the script (17.9 s in Spanish).
    let end = Instant::now() + Duration::from_secs(40);
    while carrier.invites().is_empty() {
        assert!(
            Instant::now() < end,
            "the carrier got no INVITE\n{}\n{}",
            carrier.report(),
            h.server.report()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let waited = answered.elapsed();
    assert!(
        waited >= Duration::from_secs(15),
        "the caller was rung {waited:?} after the operator answered: before the safety script ended"
    );

    assert!(
        carrier.wait(Duration::from_secs(60)),
        "carrier scenario failed\n{}\n{}",
        carrier.report(),
        h.server.report()
    );
    let invites = carrier.invites();
    assert_eq!(
        invites.len(),
        2,
        "challenged, then authenticated\n{}",
        carrier.report()
    );
    for inv in &invites {
        let lower = inv.to_lowercase();
        assert!(
            inv.contains(&format!("INVITE sip:{NUMBER}@127.0.0.1:{gateway} SIP/2.0")),
            "{inv}"
        );
        assert!(inv.contains("From: \"Servicios\" <sip:5550100@"), "{inv}");
        assert!(
            !lower.contains("hotline"),
            "the hotline named toward the carrier:\n{inv}"
        );
    }
    assert!(
        invites[1].contains("Authorization: Digest"),
        "{}",
        invites[1]
    );

    ana.wait("recorded", EVENT, &h.server);
    let (state, attempts, sealed) = h.wait_state("done", EVENT, &|| carrier.report());
    assert_eq!(
        (attempts.as_str(), sealed.as_str()),
        ("1", ""),
        "the number is deleted"
    );
    assert_eq!(
        h.db.rows("SELECT COUNT(*) FROM callbacks WHERE number_sealed IS NOT NULL"),
        [["0"]]
    );
    assert_eq!(state, "done");

    // What ana heard at the end: the carrier's tone (the two legs bridged).
    let check = Command::new(common::softphone::python())
        .arg("-I")
        .arg(workspace_root().join("tests/peers/tone.py"))
        .args([
            "check",
            heard.to_str().unwrap(),
            "--present",
            "1000",
            "--absent",
            "400",
            "--min-share",
            "0.3",
            "--max-share",
            "0.05",
            "--skip-s",
            "20",
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "ana did not hear the caller's side: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let call = h.api("GET", &format!("/api/calls/{call_id}"), None);
    let k = kinds(&call);
    for want in [
        "callback-booked",
        "callback-attempt",
        "callback-answered",
        "callback-done",
    ] {
        assert!(k.iter().any(|x| x == want), "no {want} in {k:?}");
    }
    assert!(
        !format!("{call:?}").contains(&NUMBER[2..]),
        "the number in the call's history"
    );
    assert!(
        !h.server.log().contains(&NUMBER[2..]),
        "the number in the log"
    );
}

fn no_answer_is_retried_then_given_up(postgres: bool) {
    let gateway = free_sip_port();
    let h = start(
        postgres,
        gateway,
        "ring_timeout_secs = 2\nretry_interval_secs = 1\nmax_attempts = 2\nsafety_prompt = \"beep\"\n",
    );
    let mut ana = h.operator(&["--answer-after-ms", "300", "--calls", "2"]);
    let call_id = h.book();
    let mut carrier = Carrier::start("uas_carrier_no_answer", gateway, 2);
    thread::sleep(Duration::from_millis(300));
    h.status("available");
    let (_, attempts, sealed) = h.wait_state("given-up", Duration::from_secs(60), &|| {
        format!("{}\n{}", carrier.report(), ana.report())
    });
    assert_eq!(
        (attempts.as_str(), sealed.as_str()),
        ("2", ""),
        "two attempts, number deleted"
    );
    assert!(
        carrier.wait(Duration::from_secs(20)),
        "carrier scenario failed\n{}",
        carrier.report()
    );
    assert_eq!(carrier.invites().len(), 2);
    // Each attempt rang at most the ring timeout before its CANCEL: no voicemail.
    let call = h.api("GET", &format!("/api/calls/{call_id}"), None);
    let k = kinds(&call);
    assert_eq!(
        k.iter().filter(|x| *x == "callback-attempt").count(),
        2,
        "{k:?}"
    );
    assert_eq!(
        k.iter().filter(|x| *x == "callback-no-answer").count(),
        2,
        "{k:?}"
    );
    assert!(k.iter().any(|x| x == "callback-given-up"), "{k:?}");
    let _ = ana.wait_exit(Duration::from_secs(10));
}

/// A supervisor cancels a pending callback (an operator may not): audited, ended, number
/// deleted, told in the original call's history; a second cancel is 409.
#[test]
fn a_supervisor_cancels_a_pending_callback_and_the_number_is_deleted() {
    let h = start(false, free_sip_port(), "");
    let _ana = h.operator(&[]);
    let call_id = h.book();
    let listed = h.api("GET", "/api/callbacks", None);
    let id = listed.get("callbacks").as_array().unwrap()[0]
        .get("id")
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/callbacks/{id}/cancel");
    let op_token = {
        // An operator's token: refused.
        let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .current_dir(workspace_root())
            .args([
                "--config",
                h.server.dir().join("hotline.toml").to_str().unwrap(),
            ])
            .args(["--data-dir", h.server.data_dir().to_str().unwrap()])
            .args(["token", "create", "ana"])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let auth = format!("Bearer {op_token}");
    let r = http::request(
        &h.server.http,
        "POST",
        &path,
        &[("Authorization", auth.as_str())],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.describe());
    let done = h.api("POST", &path, None);
    assert_eq!(done.get("state").as_str(), Some("cancelled"), "{done:?}");
    let (_, _, sealed) = h.wait_state("cancelled", EVENT, &String::new);
    assert_eq!(sealed, "", "the number is deleted");
    let auth = format!("Bearer {}", h.token);
    let again = http::request(
        &h.server.http,
        "POST",
        &path,
        &[("Authorization", auth.as_str())],
        None,
    )
    .unwrap();
    assert_eq!(again.status, 409, "{}", again.describe());
    let call = h.api("GET", &format!("/api/calls/{call_id}"), None);
    assert!(
        kinds(&call).iter().any(|k| k == "callback-cancelled"),
        "{call:?}"
    );
    let audit = h.api("GET", "/api/audit?limit=10", None);
    assert!(
        format!("{audit:?}").contains("callback.cancel"),
        "{audit:?}"
    );
    assert!(
        h.api("GET", "/api/callbacks", None)
            .get("callbacks")
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The attempt that waited for an operator stopped: it left the queue.
    assert!(
        h.server
            .wait_for_log(0, &["stopping the attempt"], Duration::from_secs(5)),
        "{}",
        h.server.report()
    );
    let q = h.api("GET", "/api/queue", None);
    assert!(
        q.get("waiting").as_array().unwrap_or_default().is_empty(),
        "{q:?}"
    );
}

/// The store refuses the booking: the caller is not told "booked" (hears `callback-failed`
/// and waits for an operator again), nothing is in the table, the refusal is an event.
#[test]
fn a_booking_the_store_refuses_is_not_announced_and_the_caller_waits_again() {
    let h = start(false, free_sip_port(), "");
    let _ana = h.operator(&[]);
    let (call_id, kinds) = h.book_refused();
    assert!(
        !kinds.iter().any(|k| k == "callback-booked"),
        "{call_id}: {kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "callback-requested"), "{kinds:?}");
    assert!(h.db.callbacks().is_empty(), "{:?}", h.db.callbacks());
    assert!(
        h.server
            .wait_for_log(0, &["callback not booked"], Duration::from_secs(5)),
        "{}",
        h.server.report()
    );
    assert!(
        h.api("GET", "/api/callbacks", None)
            .get("callbacks")
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn sqlite_callback_placed_operator_first_then_the_carrier_and_the_number_deleted() {
    placed_operator_first_then_the_carrier(false);
}

#[test]
fn postgres_callback_placed_operator_first_then_the_carrier_and_the_number_deleted() {
    placed_operator_first_then_the_carrier(true);
}

#[test]
fn sqlite_callback_no_answer_is_retried_then_given_up_and_the_number_deleted() {
    no_answer_is_retried_then_given_up(false);
}

#[test]
fn postgres_callback_no_answer_is_retried_then_given_up_and_the_number_deleted() {
    no_answer_is_retried_then_given_up(true);
}
