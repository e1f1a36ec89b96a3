//! Two `hotline serve` nodes, `a` and `b`, on one PostgreSQL database and one storage root
//! (`--data-dir`), as in a cluster behind Kamailio (sipp calls a node directly here):
//!
//! 1. `dead_node_recordings_are_adopted_once`, through Kamailio (the shipped cfg): ten
//!    callers leave messages on node a (node b is not up yet, so Kamailio sends every call to
//!    a); b starts; a is killed (-9) mid-message; new calls through Kamailio are answered by b
//!    within 2 s of the kill; after a's lease (3 s) node b repairs the ten `.part` files,
//!    enters them with their calls, tagged `repaired` and `adopted`, each as long as its
//!    caller had talked at the kill (within a second); b's API lists them and serves their
//!    audio. Then a comes back on the same data dir: nothing is repaired, renamed or entered
//!    twice.
//! 2. `a_starting_node_leaves_a_live_nodes_recordings_alone`: b starts while a records three
//!    messages; b's start-up repair does not touch them, and a finishes them whole.
//! 3. `postgres_away_spools_per_node_and_adopts_nobody`: both nodes reach PostgreSQL through
//!    a TCP proxy cut for 10 s during calls: calls are answered on both, each node spools in
//!    `<data_dir>/nodes/<id>/spool`, every call row is in the database exactly once after,
//!    and no node adopts the other's recordings (both leases ran out during the cut).
//!
//! 4. `recordings_lock_serializes_repair_and_adoption`: the advisory lock on a node's
//!    recordings directory, directly.
//! 5. `a_node_back_at_once_repairs_its_own_recordings`: a killed node restarted within its
//!    lease repairs its own `.part` files under its lock; nobody adopts them.
//!
//! PostgreSQL: `postgres@127.0.0.1:5432`, a fresh database per test.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::json::Json;
use common::kamailio::Kamailio;
use common::pcap::Timeline;
use common::pg::{PG_PORT, PgDatabase, Proxy};
use common::{Config, PcapScenario, RunningSipp, Server, Setup, Sipp, workspace_root};
use sha2::{Digest, Sha256};

/// The lease of the nodes in these tests (`cluster.lease_secs`).
const LEASE_SECS: u64 = 3;
/// When the caller starts to speak (ms since the ACK); the recording starts ~12.8 s in.
const SPEECH_AT_MS: u32 = 14_000;
/// When the caller of test 2 presses `#`.
const HASH_AT_MS: u32 = 21_000;

// ---------------------------------------------------------------------------------------
// Nodes

/// The config of node `node` on the database at `url`.
/// Media admission never refuses here (every limit at 100 %): these tests run many nodes on
/// two shared cores, where a node would refuse calls for the machine's load now and then
/// (tests/media_calls.rs tests admission).
fn node_config(node: &str, url: &str) -> Config {
    Config::default().sections(&format!(
        "[storage]\ndatabase_url = \"{url}\"\n\n[cluster]\nnode_id = \"{node}\"\nlease_secs = \
         {LEASE_SECS}\n[media]\nmax_cpu_percent = 100\nmax_busy_percent = 100\nmax_late_percent = 100\nmax_backlog_percent = 100\n"
    ))
}

/// Starts node `node` on the shared storage root and waits until it holds its lease.
#[track_caller]
fn start_node(node: &str, url: &str, root: &Path) -> Server {
    let server = Server::start_with_data_dir(&node_config(node, url), root);
    assert!(
        wait_log_line(&server, &["cluster lease taken"], Duration::from_secs(30)).is_some(),
        "node {node} did not take its lease\n{}",
        server.report()
    );
    server
}

/// [`start_node`] with its SIP on `sip` (an address Kamailio already lists).
#[track_caller]
fn start_node_at(node: &str, url: &str, root: &Path, sip: SocketAddr) -> Server {
    let server = Setup::new_in(&node_config(node, url), Some(root)).start_at(&sip.to_string());
    assert!(
        wait_log_line(&server, &["cluster lease taken"], Duration::from_secs(30)).is_some(),
        "node {node} did not take its lease\n{}",
        server.report()
    );
    server
}

/// A supervisor's API token (the users are in the shared database).
fn supervisor_token(url: &str) -> String {
    let setup = Setup::new(&node_config("b", url));
    setup
        .admin(&["user", "add", "sam", "--role", "supervisor"], None)
        .expect_ok();
    let created = setup.admin(&["token", "create", "sam"], None);
    created.expect_ok().trim().to_owned()
}

// ---------------------------------------------------------------------------------------
// Logs

fn log_line<'a>(log: &'a str, needles: &[&str]) -> Option<&'a str> {
    log.lines().find(|l| needles.iter().all(|n| l.contains(n)))
}

fn log_lines<'a>(log: &'a str, needles: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect()
}

/// Waits (bounded) for a log line containing every one of `needles`.
fn wait_log_line(server: &Server, needles: &[&str], timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(l) = log_line(&server.log(), needles) {
            return Some(l.to_owned());
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until at least `n` log lines contain every one of `needles`.
fn wait_log_lines(server: &Server, needles: &[&str], n: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let log = server.log();
        let lines = log_lines(&log, needles);
        if lines.len() >= n || Instant::now() >= deadline {
            return lines.into_iter().map(str::to_owned).collect();
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The time of a log line (`[err] 2026-11-29T00:38:10.376493Z  INFO …`), in seconds since
/// 1970 (UTC).
fn log_time(line: &str) -> Option<f64> {
    let stamp = line
        .split_whitespace()
        .find(|w| w.len() >= 20 && w.as_bytes()[4] == b'-' && w.contains('T'))?;
    let stamp = stamp.trim_end_matches('Z');
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-').map(|v| v.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let h: f64 = t.next()?.parse().ok()?;
    let min: f64 = t.next()?.parse().ok()?;
    let s: f64 = t.next()?.parse().ok()?;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s)
}

/// The value of `key=` in a log line (quotes removed).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[at..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.split('"').next();
    }
    rest.split_whitespace().next()
}

/// Recording id → when it started (s since 1970), from `recording a message` lines.
fn recording_starts(server: &Server) -> BTreeMap<String, f64> {
    log_lines(&server.log(), &["recording a message"])
        .into_iter()
        .filter_map(|l| Some((field(l, "recording")?.to_owned(), log_time(l)?)))
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------
// Files

/// `.wav`, `.wav.part` and `.call` files under `root`, recursively, sorted.
fn files(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>) {
    let (mut wavs, mut parts, mut calls) = (Vec::new(), Vec::new(), Vec::new());
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(".wav.part") {
                parts.push(path);
            } else if name.ends_with(".wav") {
                wavs.push(path);
            } else if name.ends_with(".call") {
                calls.push(path);
            }
        }
    }
    wavs.sort();
    parts.sort();
    calls.sort();
    (wavs, parts, calls)
}

/// A 16-bit PCM WAV file's samples, its header checked against its length.
fn wav_samples(path: &Path) -> Result<(u16, Vec<i16>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    if bytes.len() < 44 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format!("{}: not a RIFF/WAVE file", path.display()));
    }
    if u32_at(4) as usize + 8 != bytes.len() {
        return Err(format!(
            "{}: RIFF size disagrees with the length",
            path.display()
        ));
    }
    let mut channels = None;
    let mut i = 12;
    while i + 8 <= bytes.len() {
        let size = u32_at(i + 4) as usize;
        let body = i + 8;
        match &bytes[i..i + 4] {
            b"fmt " => channels = Some(u16_at(body + 2)),
            b"data" => {
                if body + size != bytes.len() {
                    return Err(format!("{}: data chunk not to the end", path.display()));
                }
                let samples = bytes[body..]
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                return Ok((channels.ok_or("data before fmt")?, samples));
            }
            _ => {}
        }
        i = body + size + (size & 1);
    }
    Err(format!("{}: no data chunk", path.display()))
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the caller says: 5 s of the Spanish information prompt (8 kHz mono 16-bit).
fn speech() -> Vec<i16> {
    let path = workspace_root().join("prompts/es/information.wav");
    let (channels, samples) = wav_samples(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(channels, 1);
    assert!(
        samples.len() >= 4000 + 40_000,
        "information.wav is too short"
    );
    samples[4000..44_000].to_vec()
}

/// Quechua, "leave a message" (keys "2" "2" as RFC 4733 events), then speech; `#` at
/// [`HASH_AT_MS`] if `hash`, else speech and silence to well past the kill.
fn message_timeline(speech: &[i16], hash: bool) -> Timeline {
    let mut t = Timeline::new();
    t.until(1000);
    t.digit('2', 100);
    t.until(2000);
    t.digit('2', 100);
    t.until(SPEECH_AT_MS).audio(speech);
    if hash {
        t.until(HASH_AT_MS);
        t.digit('#', 100);
        t.silence(500);
    } else {
        t.audio(speech).silence(5000);
    }
    t
}

/// `n` message callers to `target` (a node, or Kamailio), `gap` apart.
fn callers(
    scenario: &PcapScenario,
    target: SocketAddr,
    n: usize,
    gap: Duration,
) -> Vec<RunningSipp> {
    (0..n)
        .map(|i| {
            if i > 0 {
                thread::sleep(gap);
            }
            scenario.spawn_toward(target, 40_000)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The API and metrics

fn get(server: &Server, path: &str, token: &str) -> common::http::Response {
    let auth = format!("Bearer {token}");
    common::http::request(&server.http, "GET", path, &[("Authorization", &auth)], None)
        .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", server.report()))
}

/// `GET /metrics`, the value of one metric without labels.
fn metric(server: &Server, name: &str) -> Option<f64> {
    let r = common::http::request(&server.http, "GET", "/metrics", &[], None).ok()?;
    r.text().lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok())?
    })
}

/// Waits (bounded) until the node's writer has nothing left and its database is up.
#[track_caller]
fn wait_drained(server: &Server, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let backlog = metric(server, "hotline_store_backlog");
        let up = metric(server, "hotline_store_database_up");
        if backlog == Some(0.0) && up == Some(1.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: /metrics still shows hotline_store_backlog {backlog:?}, \
             hotline_store_database_up {up:?}\n{}",
            server.report()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `sql`'s single value until `ok` (bounded); the last value.
fn wait_value(db: &PgDatabase, sql: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let v = db
            .rows(sql)
            .first()
            .and_then(|r| r.first().cloned())
            .unwrap_or_default();
        if ok(&v) || Instant::now() >= deadline {
            return v;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------
// 1. A node dies mid-message; a survivor adopts its recordings; it comes back

#[test]
fn dead_node_recordings_are_adopted_once() {
    /// Callers, and the time between their calls (so each has talked a different time).
    const CALLERS: usize = 10;
    const GAP: Duration = Duration::from_millis(300);
    /// How long after the last recording started node a is killed.
    const KILL_AFTER_LAST: Duration = Duration::from_secs(2);
    /// The allowed difference between a kept recording and the caller's talking time at
    /// the kill: the audio since the last header refresh and write (every 0.9 s of audio),
    /// what waited to be handed to the writer (100 ms) and in the reorder buffer (100 ms),
    /// and 300 ms for a loaded machine.
    const LOST_AT_MOST_MS: f64 = 900.0 + 100.0 + 100.0 + 300.0;
    const OVER_AT_MOST_MS: f64 = 300.0;

    let db = PgDatabase::create();
    let root = tempfile::Builder::new()
        .prefix("hotline-cluster-root-")
        .tempdir()
        .expect("storage root");
    let token = supervisor_token(&db.url());
    let a = start_node("a", &db.url(), root.path());
    // Node b's address is in Kamailio's list from the start, but b starts only once a holds
    // every call: Kamailio's keep-alives keep it out until then.
    let b_addr = SocketAddr::from(([127, 0, 0, 1], common::free_sip_port()));
    let Some(kamailio) = Kamailio::start(&[a.udp, b_addr], &["127.0.0.1/32"]) else {
        return;
    };
    assert!(
        kamailio.wait_for_log(
            0,
            &format!("hotline node down: sip:{b_addr}"),
            Duration::from_secs(10)
        ),
        "Kamailio never took the absent node b out\n{}",
        kamailio.report()
    );

    let scenario = PcapScenario::new("uac_media_pcap", &message_timeline(&speech(), false));
    let calls = callers(&scenario, kamailio.addr, CALLERS, GAP);
    // Every call is on a (b is out): then b starts, before a is killed.
    let on_a = wait_log_lines(&a, &["incoming call"], CALLERS, Duration::from_secs(30));
    assert_eq!(
        on_a.len(),
        CALLERS,
        "not every call reached node a\n{}\n{}",
        kamailio.report(),
        a.report()
    );
    let since = kamailio.log().len();
    let b = start_node_at("b", &db.url(), root.path(), b_addr);
    assert!(
        kamailio.wait_for_log(
            since,
            &format!("hotline node up: sip:{b_addr}"),
            Duration::from_secs(10)
        ),
        "Kamailio never took node b in\n{}",
        kamailio.report()
    );
    let started = wait_log_lines(
        &a,
        &["recording a message"],
        CALLERS,
        Duration::from_secs(60),
    );
    if started.len() != CALLERS {
        let runs: Vec<String> = calls.into_iter().map(|c| c.stop().report()).collect();
        panic!(
            "{} of {CALLERS} callers reached the recording on node a within 60 s\n{}\n{}",
            started.len(),
            runs.join("\n"),
            a.report()
        );
    }
    thread::sleep(KILL_AFTER_LAST);
    let mut a = a;
    let killed_at = unix_now();
    let kill = Instant::now();
    a.sigkill();
    // New calls, through Kamailio, one at a time: the first may meet the dead node.
    let after = Sipp::toward(kamailio.addr, kamailio.addr, "uac_call_bye")
        .duration_ms(200)
        .arg("-m")
        .arg("4")
        .arg("-r")
        .arg("10")
        .arg("-l")
        .arg("1")
        .spawn();
    let answered = after
        .wait_until_received(200, "INVITE", Duration::from_secs(10))
        .then(|| kill.elapsed());
    let after = after.wait();
    eprintln!(
        "kill -9 of node a mid-messages -> first new call answered through Kamailio: {answered:?}"
    );
    assert!(
        after.passed() && answered.is_some_and(|d| d < Duration::from_secs(2)),
        "new calls after the kill: first answered {answered:?} (limit 2 s)\n{}\n{}\n{}",
        after.report(),
        kamailio.report(),
        b.report()
    );
    assert!(
        a.wait_exit(Duration::from_secs(10)).is_some(),
        "node a did not die"
    );
    for c in calls {
        let _ = c.stop();
    }
    let starts = recording_starts(&a);
    assert_eq!(starts.len(), CALLERS, "{starts:?}");

    let a_dir = root.path().join("recordings/a");
    let (wavs, parts, sidecars) = files(&a_dir);
    assert!(
        wavs.is_empty() && parts.len() == CALLERS && sidecars.len() == CALLERS,
        "after the kill: expected {CALLERS} .part files with sidecars, no .wav: {wavs:?} \
         {parts:?} {sidecars:?}"
    );
    assert!(
        files(&root.path().join("recordings/b")).1.is_empty(),
        "node b recorded nothing"
    );

    // Node b adopts them once a's lease ran out.
    let adopted = wait_value(
        &db,
        "SELECT count(*) FROM recordings WHERE tags::text LIKE '%\"adopted\"%'",
        Duration::from_secs(40),
        |v| v == CALLERS.to_string(),
    );
    let adopted_after = kill.elapsed();
    assert_eq!(
        adopted,
        CALLERS.to_string(),
        "node b did not adopt a's recordings within 40 s of the kill\n--- node a:\n{}\n--- \
         node b:\n{}",
        a.report(),
        b.report()
    );
    let done = wait_log_line(
        &b,
        &["adoption of a dead node's recordings done"],
        Duration::from_secs(10),
    )
    .unwrap_or_else(|| panic!("no adoption line on b\n{}", b.report()));
    assert_eq!(field(&done, "node"), Some("a"), "{done}");
    eprintln!(
        "kill -> {CALLERS} recordings adopted in the database: {:.1} s (lease {LEASE_SECS} s); {done}",
        adopted_after.as_secs_f64()
    );

    // In the database: each with its call, node-qualified path, tags, and its length.
    let rows = db.rows(
        "SELECT r.id, r.path, r.duration_ms, r.sha256, r.tags::text, r.bytes, \
         (SELECT count(*) FROM calls c WHERE c.id = r.call_id) FROM recordings r ORDER BY r.id",
    );
    assert_eq!(rows.len(), CALLERS, "{rows:?}");
    let mut kept = Vec::new();
    for r in &rows {
        let (id, path, duration, sha, tags, bytes, calls) =
            (&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6]);
        assert_eq!(calls, "1", "recording {id} without its call: {r:?}");
        assert!(
            tags.contains("\"repaired\"") && tags.contains("\"adopted\""),
            "recording {id} tags {tags}"
        );
        assert!(
            path.starts_with("recordings/a/") && path.ends_with(&format!("/{id}.wav")),
            "recording {id} path {path}"
        );
        let file = root.path().join(path);
        let (channels, samples) = wav_samples(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(channels, 1);
        let file_ms = samples.len() as f64 / 8.0;
        let db_ms: f64 = duration.parse().expect("duration_ms");
        assert!(
            (file_ms - db_ms).abs() <= 1.0,
            "{id}: file {file_ms} ms, row {db_ms} ms"
        );
        assert_eq!(&sha256_hex(&file), sha, "{id}: SHA-256 of the file");
        assert_eq!(
            std::fs::metadata(&file)
                .map(|m| m.len().to_string())
                .ok()
                .as_ref(),
            Some(bytes),
            "{id}: bytes"
        );
        let start = starts[id.as_str()];
        let talked_ms = (killed_at - start) * 1000.0;
        kept.push(format!("{:.0}/{:.0}", db_ms, talked_ms));
        assert!(
            (talked_ms - LOST_AT_MOST_MS..=talked_ms + OVER_AT_MOST_MS).contains(&db_ms),
            "recording {id} keeps {db_ms} ms; its caller had talked {talked_ms:.0} ms at the \
             kill (expected at most {LOST_AT_MOST_MS} ms less)\n{}",
            b.report()
        );
    }
    eprintln!("kept/talked ms at the kill: {}", kept.join(" "));
    let (wavs, parts, sidecars) = files(&a_dir);
    assert!(
        wavs.len() == CALLERS && parts.is_empty() && sidecars.is_empty(),
        "after the adoption: {wavs:?} {parts:?} {sidecars:?}"
    );
    let events = db.rows(
        "SELECT count(*), count(DISTINCT call_id) FROM call_events \
         WHERE kind = 'recording-adopted' AND detail LIKE '%of node a adopted by node b%'",
    );
    assert_eq!(events[0], vec![CALLERS.to_string(), CALLERS.to_string()]);
    // a's calls are closed by b as interrupted, each ended at its message's last write; none
    // is left open, and none of b's own.
    let closed = wait_value(
        &db,
        "SELECT count(*) FROM calls WHERE node = 'a' AND disposition = 'interrupted' \
         AND ended_at IS NOT NULL AND EXISTS (SELECT 1 FROM call_events e \
         WHERE e.call_id = calls.id AND e.kind = 'interrupted' \
         AND e.detail LIKE '%node a stopped during the call; closed by node b%')",
        Duration::from_secs(10),
        |v| v == CALLERS.to_string(),
    );
    assert_eq!(closed, CALLERS.to_string(), "a's calls closed by b");
    let open = db.rows("SELECT count(*) FROM calls WHERE ended_at IS NULL");
    assert_eq!(open[0], vec!["0".to_owned()], "calls left in progress");
    let claims = db.rows("SELECT node_id, adopted_by, recordings FROM cluster_adoptions");
    assert_eq!(
        claims,
        vec![vec!["a".to_owned(), "b".to_owned(), CALLERS.to_string()]]
    );
    assert_eq!(
        metric(&b, "hotline_cluster_adopted_recordings_total"),
        Some(CALLERS as f64)
    );
    assert_eq!(
        metric(&b, "hotline_cluster_storage_errors_total"),
        Some(0.0)
    );

    // Node b's API lists them and serves a's audio from the shared root.
    let listed = get(&b, "/api/recordings?limit=50", &token);
    assert_eq!(listed.status, 200, "{}", listed.describe());
    let json = listed.json();
    let recs = json.get("recordings").as_array().unwrap_or(&[]).to_vec();
    let adopted_listed = recs
        .iter()
        .filter(|r| {
            r.get("tags")
                .strings()
                .is_some_and(|t| t.contains(&"adopted") && t.contains(&"repaired"))
        })
        .count();
    assert_eq!(adopted_listed, CALLERS, "{}", listed.text());
    let first: &Json = &recs[0];
    let id = first.get("id").as_str().expect("id").to_owned();
    let audio = get(&b, &format!("/api/recordings/{id}/audio"), &token);
    let row = rows
        .iter()
        .find(|r| r[0] == id)
        .expect("listed id in the rows");
    assert_eq!(audio.status, 200, "{}", audio.describe());
    assert_eq!(
        audio.body.len().to_string(),
        row[5],
        "audio of {id} from node b"
    );

    // Node a comes back on the same data dir: it finds nothing to repair, and nothing is
    // renamed, entered or adopted twice.
    let mut b = b;
    let names_before = wavs;
    let a2 = start_node("a", &db.url(), root.path());
    assert!(
        wait_log_line(
            &a2,
            &["no recordings of an earlier run to repair"],
            Duration::from_secs(10)
        )
        .is_some(),
        "node a did not report its (empty) start-up repair\n{}",
        a2.report()
    );
    // Long enough for b to misjudge a again if it would (a lease and more), bounded.
    let until = Instant::now() + Duration::from_secs(2 * LEASE_SECS + 2);
    while Instant::now() < until {
        thread::sleep(Duration::from_millis(200));
    }
    let (wavs, parts, sidecars) = files(&a_dir);
    assert_eq!(wavs, names_before, "files renamed after a came back");
    assert!(parts.is_empty() && sidecars.is_empty());
    let count = db.rows("SELECT count(*), count(DISTINCT id) FROM recordings");
    assert_eq!(count[0], vec![CALLERS.to_string(), CALLERS.to_string()]);
    assert_eq!(
        db.rows("SELECT count(*) FROM cluster_adoptions")[0][0],
        "1",
        "a's new run was adopted too"
    );
    assert!(
        log_line(&a2.log(), &["repaired and kept"]).is_none(),
        "node a repaired something again\n{}",
        a2.report()
    );
    b.sigterm();
    let _ = b.wait_exit(Duration::from_secs(20));
}

// ---------------------------------------------------------------------------------------
// 2. A node starting while another records

#[test]
fn a_starting_node_leaves_a_live_nodes_recordings_alone() {
    const CALLERS: usize = 3;
    let db = PgDatabase::create();
    let root = tempfile::Builder::new()
        .prefix("hotline-cluster-root-")
        .tempdir()
        .expect("storage root");
    let a = start_node("a", &db.url(), root.path());
    let scenario = PcapScenario::new("uac_media_pcap", &message_timeline(&speech(), true));
    let calls = callers(&scenario, a.udp, CALLERS, Duration::from_millis(300));
    let started = wait_log_lines(
        &a,
        &["recording a message"],
        CALLERS,
        Duration::from_secs(60),
    );
    assert_eq!(started.len(), CALLERS, "{}", a.report());
    let a_dir = root.path().join("recordings/a");
    let (_, parts_before, _) = files(&a_dir);
    assert_eq!(parts_before.len(), CALLERS, "{parts_before:?}");

    let b = start_node("b", &db.url(), root.path());
    assert!(
        wait_log_line(
            &b,
            &["no recordings of an earlier run to repair"],
            Duration::from_secs(10)
        )
        .is_some(),
        "{}",
        b.report()
    );
    let (wavs, parts, _) = files(&a_dir);
    assert!(
        wavs.is_empty() && parts == parts_before,
        "node b's start touched a's recordings in progress: {wavs:?} {parts:?}"
    );
    assert!(
        log_line(&b.log(), &["repaired"]).is_none(),
        "node b repaired something\n{}",
        b.report()
    );

    // Node a finishes them whole, with their `#`.
    let saved = wait_log_lines(&a, &["recording saved"], CALLERS, Duration::from_secs(40));
    assert_eq!(saved.len(), CALLERS, "{}", a.report());
    for c in calls {
        c.wait().assert_passed(&a);
    }
    let rows = wait_value(
        &db,
        "SELECT count(*) FROM recordings",
        Duration::from_secs(15),
        |v| v == CALLERS.to_string(),
    );
    assert_eq!(rows, CALLERS.to_string());
    let starts = recording_starts(&a);
    for r in db.rows("SELECT id, duration_ms, tags::text, path FROM recordings") {
        assert_eq!(r[2], "[]", "recording {} tagged {}", r[0], r[2]);
        assert!(r[3].starts_with("recordings/a/"), "{r:?}");
        // From the recording's start to the `#`, on the caller's clock: about 8 s.
        let ms: f64 = r[1].parse().expect("duration");
        assert!(
            (7000.0..=9500.0).contains(&ms),
            "recording {} holds {ms} ms, not the whole message\n{}",
            r[0],
            a.report()
        );
        assert!(starts.contains_key(&r[0]));
    }
    let (wavs, parts, sidecars) = files(&a_dir);
    assert_eq!(
        wavs,
        parts_before
            .iter()
            .map(|p| p.with_extension(""))
            .collect::<Vec<_>>(),
        "the finished recordings keep their names"
    );
    assert!(parts.is_empty() && sidecars.is_empty());
    assert_eq!(db.rows("SELECT count(*) FROM cluster_adoptions")[0][0], "0");
    assert_eq!(metric(&b, "hotline_cluster_adoptions_total"), Some(0.0));
}

// ---------------------------------------------------------------------------------------
// 3. PostgreSQL away for 10 s during calls on both nodes

#[test]
fn postgres_away_spools_per_node_and_adopts_nobody() {
    const CALLS: usize = 4;
    const CUT_FOR: Duration = Duration::from_secs(10);
    let db = PgDatabase::create();
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], PG_PORT)));
    let url = db.url_at(proxy.port());
    let root = tempfile::Builder::new()
        .prefix("hotline-cluster-root-")
        .tempdir()
        .expect("storage root");
    let a = start_node("a", &url, root.path());
    let b = start_node("b", &url, root.path());
    let short_calls = |server: &Server| {
        server
            .sipp("uac_call_bye")
            .duration_ms(2000)
            .arg("-r")
            .arg("2")
            .arg("-m")
            .arg(&CALLS.to_string())
            .spawn()
    };
    // A round before the cut, one during it.
    let before: Vec<_> = [&a, &b].iter().map(|s| short_calls(s)).collect();
    for (run, s) in before.into_iter().zip([&a, &b]) {
        run.wait().assert_passed(s);
    }
    wait_drained(&a, "a before the cut");
    wait_drained(&b, "b before the cut");

    proxy.cut();
    let cut = Instant::now();
    let during: Vec<_> = [&a, &b].iter().map(|s| short_calls(s)).collect();
    let spool = |node: &str| root.path().join(format!("nodes/{node}/spool/store.jsonl"));
    let spooled = |node: &str| std::fs::metadata(spool(node)).is_ok_and(|m| m.len() > 0);
    while !(spooled("a") && spooled("b")) && cut.elapsed() < CUT_FOR {
        thread::sleep(Duration::from_millis(100));
    }
    let both_spooled = spooled("a") && spooled("b");
    for (run, s) in during.into_iter().zip([&a, &b]) {
        run.wait().assert_passed(s);
    }
    while cut.elapsed() < CUT_FOR {
        thread::sleep(Duration::from_millis(100));
    }
    proxy.restore();
    assert!(
        both_spooled,
        "both nodes should spool in <data_dir>/nodes/<id>/spool during the cut: a {}, b {}",
        spooled("a"),
        spooled("b")
    );
    assert!(
        !root.path().join("spool").exists(),
        "a cluster node used the one-process spool <data_dir>/spool"
    );
    wait_drained(&a, "a after the cut");
    wait_drained(&b, "b after the cut");

    let total = 4 * CALLS;
    let calls = db.rows(
        "SELECT count(*), count(DISTINCT sip_call_id), count(*) FILTER (WHERE ended_at IS NOT \
         NULL AND answered_at IS NOT NULL) FROM calls",
    );
    assert_eq!(
        calls[0],
        vec![total.to_string(), total.to_string(), total.to_string()],
        "every call exactly once, answered and ended\n{}\n{}",
        a.report(),
        b.report()
    );

    // Both leases ran out during the cut; neither node may take the other for dead: wait
    // past the time a judgement would need (a lease of health plus a lease), then look.
    let until = Instant::now() + Duration::from_secs(2 * LEASE_SECS + 3);
    while Instant::now() < until {
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(db.rows("SELECT count(*) FROM cluster_adoptions")[0][0], "0");
    for (s, name) in [(&a, "a"), (&b, "b")] {
        assert!(
            log_line(&s.log(), &["adopting the unfinished recordings"]).is_none(),
            "node {name} adopted after the database outage\n{}",
            s.report()
        );
        assert_eq!(metric(s, "hotline_cluster_adoptions_total"), Some(0.0));
        assert!(
            log_line(&s.log(), &["cluster lease not renewed"]).is_some(),
            "node {name} never noticed the cut (the test would prove nothing)\n{}",
            s.report()
        );
    }
    let live = db.rows("SELECT node_id FROM cluster_nodes WHERE heartbeat_at > now() - interval '3 seconds' ORDER BY node_id");
    assert_eq!(live, vec![vec!["a".to_owned()], vec!["b".to_owned()]]);
}

// ---------------------------------------------------------------------------------------
// 5. A node killed and restarted at once repairs its own recordings

/// a is killed mid-message and restarted at once (its new lease taken within the old one):
/// its own start-up repair, under its lock, takes the `.part` files; b cannot adopt the old
/// run once a's new run replaced it. Every recording is entered once, tagged `repaired` only.
#[test]
fn a_node_back_at_once_repairs_its_own_recordings() {
    const CALLERS: usize = 3;
    let db = PgDatabase::create();
    let root = tempfile::Builder::new()
        .prefix("hotline-cluster-root-")
        .tempdir()
        .expect("storage root");
    let mut a = start_node("a", &db.url(), root.path());
    let b = start_node("b", &db.url(), root.path());
    let scenario = PcapScenario::new("uac_media_pcap", &message_timeline(&speech(), false));
    let calls = callers(&scenario, a.udp, CALLERS, Duration::from_millis(300));
    let started = wait_log_lines(
        &a,
        &["recording a message"],
        CALLERS,
        Duration::from_secs(60),
    );
    assert_eq!(started.len(), CALLERS, "{}", a.report());
    thread::sleep(Duration::from_secs(2));
    a.sigkill();
    let kill = Instant::now();
    assert!(a.wait_exit(Duration::from_secs(10)).is_some());
    let a_dir = root.path().join("recordings/a");
    let (_, parts, _) = files(&a_dir);
    assert_eq!(parts.len(), CALLERS, "{parts:?}");

    let a2 = start_node("a", &db.url(), root.path());
    let back_after = kill.elapsed();
    assert!(
        back_after < Duration::from_secs(LEASE_SECS),
        "premise: a's new lease {back_after:?} after the kill, not within the {LEASE_SECS} s \
         lease (machine too slow for this test)"
    );
    eprintln!("kill -> a's new lease: {back_after:?}");
    for c in calls {
        let _ = c.stop();
    }
    let repaired = wait_log_line(
        &a2,
        &["recordings of an earlier run repaired"],
        Duration::from_secs(20),
    )
    .unwrap_or_else(|| panic!("a did not repair its own recordings\n{}", a2.report()));
    assert_eq!(
        field(&repaired, "repaired"),
        Some(CALLERS.to_string().as_str()),
        "{repaired}"
    );
    let n = wait_value(
        &db,
        "SELECT count(*) FROM recordings",
        Duration::from_secs(15),
        |v| v == CALLERS.to_string(),
    );
    assert_eq!(n, CALLERS.to_string());
    // Past the time b would need to judge and adopt a's old run (bounded).
    let until = Instant::now() + Duration::from_secs(2 * LEASE_SECS + 2);
    while Instant::now() < until {
        thread::sleep(Duration::from_millis(200));
    }
    let rows = db.rows("SELECT id, tags::text FROM recordings ORDER BY id");
    assert_eq!(rows.len(), CALLERS, "{rows:?}");
    for r in &rows {
        assert!(
            r[1].contains("\"repaired\"") && !r[1].contains("\"adopted\""),
            "recording {} tagged {}",
            r[0],
            r[1]
        );
    }
    assert_eq!(db.rows("SELECT count(*) FROM cluster_adoptions")[0][0], "0");
    assert_eq!(metric(&b, "hotline_cluster_adoptions_total"), Some(0.0));
    let (wavs, parts, sidecars) = files(&a_dir);
    assert!(
        wavs.len() == CALLERS && parts.is_empty() && sidecars.is_empty(),
        "{wavs:?} {parts:?} {sidecars:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 4. The recordings lock itself

/// The advisory lock on a node's recordings: an adoption only tries it, the owner's repair
/// waits for it; another node's lock is another key; a dropped guard frees it.
#[test]
fn recordings_lock_serializes_repair_and_adoption() {
    let db = PgDatabase::create();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let lease = Duration::from_secs(LEASE_SECS);
    rt.block_on(async {
        // (The pools need the runtime.)
        let a = hotline_cluster::Cluster::connect(&db.url(), "a", lease).expect("cluster a");
        let b = hotline_cluster::Cluster::connect(&db.url(), "b", lease).expect("cluster b");
        // b adopts a's directory.
        let held = b
            .try_lock_recordings("a")
            .await
            .expect("database")
            .expect("nobody holds a's lock yet");
        assert_eq!(held.node_id(), "a");
        // A second adopter does not get it; b's own directory is another lock.
        let other = hotline_cluster::Cluster::connect(&db.url(), "c", lease).expect("cluster c");
        assert!(other.try_lock_recordings("a").await.expect("db").is_none());
        let own_b = other.try_lock_recordings("b").await.expect("db");
        assert!(own_b.is_some(), "b's lock is not a's");
        // a comes back: its repair waits for the adoption to end.
        let waiter = tokio::spawn({
            let a = a.clone();
            async move { a.lock_recordings("a").await }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !waiter.is_finished(),
            "a's repair did not wait for the adoption"
        );
        held.release().await.expect("release");
        let mine = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("a's repair got the lock once the adoption released it")
            .expect("task")
            .expect("database");
        assert!(other.try_lock_recordings("a").await.expect("db").is_none());
        // Dropped without release (a crash): the session ends, the lock with it.
        drop(mine);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(l) = other.try_lock_recordings("a").await.expect("db") {
                l.release().await.expect("release");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a dropped lock was not freed within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}
