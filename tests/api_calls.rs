//! The JSON API of `hotline serve` after real calls, end to end, on SQLite and on PostgreSQL.
//!
//! 1. `message_call_*`: console users made with `hotline user add` and tokens with `hotline
//!    token create` (same config, data dir and `DATABASE_URL` as the server); then the Quechua
//!    message call of `media_calls.rs` (a): keys "2" "2" as RFC 4733 events, 5 s of speech,
//!    `#`, the caller stays to hear the reference number read back twice, BYE. Then, through
//!    the API: the call, its filters, its events, the recording listed, its audio (whole and a
//!    range, checked against the listed SHA-256 and duration and the message's length on the
//!    caller's timeline), the audit lines the supervisor's plays left, the operator's 403s,
//!    401 without a token, and a review by PATCH.
//! 2. `postgres_cut_mid_call_loses_nothing`: the server reaches PostgreSQL through a TCP proxy
//!    in this test; six short calls run and the proxy cuts every connection mid-call for 8 s.
//!    The calls go on; /healthz says the database is down meanwhile; once the proxy is back the
//!    writer's spool drains and the database (read directly, not through the proxy) holds
//!    every call exactly once, ended, with the same events as calls made without a cut.
//!
//! PostgreSQL: `postgres@127.0.0.1:5432`, a fresh database per test (`hotline_e2e_<pid>_<n>`),
//! dropped at the end even on failure. PostgreSQL not reachable: those tests fail, saying so.

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::http::{self, Response};
use common::json::Json;
use common::pcap::Timeline;
use common::pg::{PG_PORT, PgDatabase, Proxy};
use common::{Config, PcapScenario, RunningSipp, Server, Setup, SippRun, workspace_root};
use sha2::{Digest, Sha256};

/// How long to wait for sipp to get a call established (its ACK sent).
const ESTABLISH: Duration = Duration::from_secs(10);
/// How long the server may take to log a call's outcome, and the writer to store it.
const OUTCOME: Duration = Duration::from_secs(15);
/// The allowed error on the length of a recording.
const LENGTH_TOLERANCE_MS: f64 = 300.0;
/// When the caller starts to speak, and for how long (ms since the ACK).
const SPEECH_AT_MS: u32 = 14_000;
const SPEECH_MS: u32 = 5_000;
/// When the caller presses `#` to end the message.
const HASH_AT_MS: u32 = 21_000;
/// How long the caller stays after the ACK: the `#` at 21 s, then the Quechua "message saved"
/// (2.3 s), "your reference number is" (1.9 s), six digits (0.5-0.7 s each), "again" (1.4 s),
/// the six digits again: the main menu starts 33-35 s after the ACK (33.4 s measured). The BYE
/// comes after that, with a margin.
const HOLD_MS: u64 = 38_000;
/// The recording starts after this (prompts: 1.0 + 5.0 + 6.4 + 0.4 s); a range with a margin,
/// to check the log was read right.
const RECORDING_START_RANGE_MS: std::ops::Range<f64> = 11_500.0..13_900.0;

// ---------------------------------------------------------------------------------------
// Backends (PostgreSQL: common::pg)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// The default: the SQLite file in the data dir.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

// ---------------------------------------------------------------------------------------
// The API

/// One request as `token` (none: no `Authorization` header); panics if no answer comes.
#[track_caller]
fn api(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    headers.extend_from_slice(extra);
    http::request(
        &server.http,
        method,
        path,
        &headers,
        body.map(str::as_bytes),
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", server.report()))
}

#[track_caller]
fn get(server: &Server, path: &str, token: Option<&str>) -> Response {
    api(server, "GET", path, token, &[], None)
}

/// Panics with the request, the answer and the server's story unless `cond`.
#[track_caller]
fn check(server: &Server, cond: bool, what: &str, r: &Response) {
    assert!(
        cond,
        "{what}\n--- {} answered:\n{}\n{}",
        r.request,
        r.describe(),
        server.report()
    );
}

/// Panics unless the answer has `status` and a JSON `{"error": "..."}` body.
#[track_caller]
fn expect_error(server: &Server, r: &Response, status: u16) {
    check(server, r.status == status, &format!("expected {status}"), r);
    let is_error = json_of(&r.text()).is_some_and(|j| j.get("error").as_str().is_some());
    check(server, is_error, "expected a {\"error\": \"...\"} body", r);
}

fn json_of(text: &str) -> Option<Json> {
    common::json::parse(text).ok()
}

/// `GET /metrics`, the value of one metric without labels.
fn metric(server: &Server, name: &str) -> Option<f64> {
    let r = http::request(&server.http, "GET", "/metrics", &[], None).ok()?;
    r.text().lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok())?
    })
}

/// `GET /healthz`: its status and whether its `database` check was ok.
fn healthz(server: &Server) -> Option<(u16, Option<bool>)> {
    let r = http::request(&server.http, "GET", "/healthz", &[], None).ok()?;
    let db = json_of(&r.text()).and_then(|j| {
        j.get("checks").as_array()?.iter().find_map(|c| {
            (c.get("name").as_str() == Some("database")).then(|| match c.get("ok") {
                Json::Bool(b) => Some(*b),
                _ => None,
            })?
        })
    });
    Some((r.status, db))
}

/// RFC 3339 UTC (`2026-11-29T00:38:10.376Z`, fraction optional, `Z` or `+00:00`) → seconds
/// since 1970.
fn rfc3339_utc(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    if !(digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't'))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19))
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        frac = format!("0.{}", &r[..n]).parse().ok()?;
        rest = &r[n..];
    }
    if !(rest == "Z" || rest == "z" || rest == "+00:00") {
        return None;
    }
    log_time(&format!("x {}Z", &s[..19])).map(|t| t + frac)
}

// ---------------------------------------------------------------------------------------
// Audio files

/// A 16-bit PCM WAV file.
#[derive(Debug)]
struct Wav {
    format: u16,
    sample_rate: u32,
    channels: u16,
    bits: u16,
    samples: Vec<i16>,
}

impl Wav {
    fn duration_ms(&self) -> f64 {
        self.samples.len() as f64 * 1000.0
            / f64::from(self.sample_rate)
            / f64::from(self.channels.max(1))
    }
}

/// Parses a WAV file and checks that its header agrees with its length: the RIFF size is the
/// length less 8, the data chunk runs to the end.
fn parse_wav(bytes: &[u8]) -> Result<Wav, String> {
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let riff = u32_at(4) as usize;
    if riff + 8 != bytes.len() {
        return Err(format!(
            "RIFF size {riff} but the file has {} bytes (expected {})",
            bytes.len(),
            bytes.len() - 8
        ));
    }
    let mut fmt = None;
    let mut i = 12;
    while i + 8 <= bytes.len() {
        let id = &bytes[i..i + 4];
        let size = u32_at(i + 4) as usize;
        let body = i + 8;
        if id == b"fmt " {
            if size < 16 || body + size > bytes.len() {
                return Err("short fmt chunk".into());
            }
            fmt = Some((
                u16_at(body),
                u16_at(body + 2),
                u32_at(body + 4),
                u16_at(body + 14),
            ));
        } else if id == b"data" {
            let (format, channels, sample_rate, bits) = fmt.ok_or("data before fmt")?;
            if body + size != bytes.len() {
                return Err(format!(
                    "data chunk of {size} bytes at {body}, file of {} bytes",
                    bytes.len()
                ));
            }
            if bits != 16 || !size.is_multiple_of(2) {
                return Err(format!("{bits}-bit samples, data of {size} bytes"));
            }
            let samples = bytes[body..body + size]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return Ok(Wav {
                format,
                sample_rate,
                channels,
                bits,
                samples,
            });
        }
        i = body + size + (size & 1);
    }
    Err("no data chunk".into())
}

/// What the caller says: 5 s of speech from 0.5 s into the Spanish information prompt.
fn speech() -> Vec<i16> {
    let path = workspace_root().join("prompts/es/information.wav");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let wav = parse_wav(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        (wav.sample_rate, wav.channels),
        (8000, 1),
        "{}",
        path.display()
    );
    let from = 4000;
    let n = (SPEECH_MS * 8) as usize;
    assert!(
        wav.samples.len() >= from + n,
        "information.wav is too short"
    );
    wav.samples[from..from + n].to_vec()
}

// ---------------------------------------------------------------------------------------
// The server's log

/// The first line of `log` containing every one of `needles`.
fn log_line<'a>(log: &'a str, needles: &[&str]) -> Option<&'a str> {
    log.lines().find(|l| needles.iter().all(|n| l.contains(n)))
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
    // Days since 1970-01-01 (H. Hinnant's days_from_civil).
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

/// When the recording started on the pcap's timeline (ms since its first packet), from the
/// server's log.
fn recording_start_ms(server: &Server) -> f64 {
    let log = server.log();
    let learned = log_line(&log, &["RTP source learned"]).and_then(log_time);
    let started = log_line(&log, &["recording a message"]).and_then(log_time);
    let (Some(learned), Some(started)) = (learned, started) else {
        panic!(
            "no `RTP source learned` and `recording a message` lines with times in the log\n{}",
            server.report()
        );
    };
    let ms = (started - learned) * 1000.0;
    assert!(
        RECORDING_START_RANGE_MS.contains(&ms),
        "the recording started {ms:.0} ms after the first RTP packet; expected about \
         12 800 ms (welcome cut at 1 s, notice 5.0 s, instructions 6.4 s, beep 0.4 s)\n{}",
        server.report()
    );
    ms
}

// ---------------------------------------------------------------------------------------
// sipp

/// The caller of `media_calls.rs` (a): Quechua, "leave a message", speech, `#`.
fn message_timeline(speech: &[i16]) -> Timeline {
    let mut t = Timeline::new();
    t.until(1000).digit('2', 100);
    t.until(2000).digit('2', 100);
    t.until(SPEECH_AT_MS).audio(speech);
    t.until(HASH_AT_MS).digit('#', 100).silence(500);
    t
}

/// The Call-IDs of the INVITEs sipp sent, in order, once each.
fn invite_call_ids(run: &SippRun) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for m in run.messages() {
        if m.sent
            && m.method() == Some("INVITE")
            && let Some(id) = m.header("Call-ID")
            && !ids.iter().any(|i| i == id)
        {
            ids.push(id.to_owned());
        }
    }
    ids
}

/// The Call-IDs that got a 200 to their INVITE and a 200 to their BYE.
fn completed_call_ids(run: &SippRun) -> Vec<String> {
    let msgs = run.messages();
    let ok = |method: &str, id: &str| {
        msgs.iter()
            .any(|m| !m.sent && m.is_response(200, method) && m.header("Call-ID") == Some(id))
    };
    invite_call_ids(run)
        .into_iter()
        .filter(|id| ok("INVITE", id) && ok("BYE", id))
        .collect()
}

/// sipp's "Successful call" count (the cumulative column of its final statistics screen).
fn sipp_successful_calls(run: &SippRun) -> Option<u64> {
    let line = run
        .stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("Successful call"))?;
    line.split('|')
        .filter_map(|f| f.trim().parse::<u64>().ok())
        .next_back()
}

// ---------------------------------------------------------------------------------------
// 1. A message call, then the API

/// Creates a user with `hotline user add`, then a token with `hotline token create`.
fn user_and_token(setup: &Setup, name: &str, role: &str, password: Option<&str>) -> String {
    let mut args = vec!["user", "add", name, "--role", role];
    if password.is_some() {
        args.push("--password-stdin");
    }
    let added = setup.admin(&args, password.map(|p| format!("{p}\n")).as_deref());
    let out = added.expect_ok().to_owned();
    if password.is_none() {
        assert!(
            out.contains("password (shown once): "),
            "`{}` printed no generated password:\n{}",
            added.command,
            added.output
        );
    }
    let created = setup.admin(&["token", "create", name], None);
    let token = created.expect_ok().trim().to_owned();
    assert!(
        !token.is_empty() && !token.contains(char::is_whitespace) && token.len() >= 20,
        "`{}` printed {token:?}, not one token\n{}",
        created.command,
        created.output
    );
    token
}

fn message_call_through_the_api(backend: Backend) {
    let db = (backend == Backend::Postgres).then(PgDatabase::create);
    let mut setup = Setup::new(&Config::default());
    if let Some(db) = &db {
        setup = setup.env("DATABASE_URL", &db.url());
    }
    // Users and tokens first, with the server's config, data dir and database.
    let supervisor = user_and_token(&setup, "sofia", "supervisor", None);
    let operator = user_and_token(&setup, "oscar", "operator", Some("operator-secret-1"));
    if backend == Backend::Sqlite {
        assert!(
            setup.data_dir().join("hotline.db").is_file(),
            "the admin commands made no SQLite file in the data dir {}",
            setup.data_dir().display()
        );
    }
    let server = setup.start();
    let sup = Some(supervisor.as_str());
    let op = Some(operator.as_str());

    // No token, a bad token: 401 with a bearer challenge.
    for path in ["/api/calls?limit=10", "/api/recordings", "/api/audit"] {
        let r = get(&server, path, None);
        expect_error(&server, &r, 401);
        check(
            &server,
            r.header("www-authenticate")
                .is_some_and(|v| v.to_ascii_lowercase().starts_with("bearer")),
            "a 401 without WWW-Authenticate: Bearer",
            &r,
        );
        expect_error(&server, &get(&server, path, Some("not-a-token")), 401);
    }

    // The call.
    let speech = speech();
    let scenario = PcapScenario::new("uac_media_pcap", &message_timeline(&speech));
    let run = scenario
        .spawn(&server, HOLD_MS)
        .expect_sent("ACK", ESTABLISH, &server)
        .wait();
    run.assert_passed(&server);
    let call_ids = invite_call_ids(&run);
    run.check(
        &server,
        call_ids.len() == 1,
        &format!("expected one INVITE Call-ID in sipp's trace: {call_ids:?}"),
    );
    let sip_call_id = call_ids[0].clone();

    // What the caller heard: the reference the flow read, logged with the outcome.
    let outcome = wait_log_line(&server, &["call outcome"], OUTCOME);
    run.check(
        &server,
        outcome.is_some(),
        "no `call outcome` line in the log",
    );
    let outcome = outcome.expect("checked");
    let heard = field(&outcome, "reference").unwrap_or("").to_owned();
    run.check(
        &server,
        heard.len() == 6 && heard.bytes().all(|c| c.is_ascii_digit()),
        &format!("no 6-digit reference in the outcome line: {outcome}"),
    );
    // The caller stayed until the reference had been read twice: the flow went back to the
    // main menu (after `saved`) before the BYE.
    let logged_path = field(&outcome, "path").unwrap_or("").to_owned();
    let nodes: Vec<&str> = logged_path.split('>').collect();
    let saved_at = nodes.iter().position(|n| *n == "saved");
    run.check(
        &server,
        saved_at.is_some_and(|i| nodes.get(i + 1) == Some(&"main-menu")),
        &format!(
            "the caller hung up before the reference number was read twice (the path should \
             go on from `saved` to `main-menu`): {outcome}"
        ),
    );
    let start = recording_start_ms(&server);
    let expected_ms = f64::from(HASH_AT_MS) - start;

    // GET /api/calls: the call, once the writer has stored its outcome and recording.
    let deadline = Instant::now() + OUTCOME;
    let (list, call) = loop {
        let r = get(&server, "/api/calls?limit=10", sup);
        check(&server, r.status == 200, "GET /api/calls as supervisor", &r);
        let j = r.json();
        let found = j
            .get("calls")
            .as_array()
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("sip_call_id").as_str() == Some(&sip_call_id))
            })
            .cloned();
        if let Some(c) = &found
            && c.get("disposition").as_str().is_some()
            && c.get("recordings")
                .as_array()
                .is_some_and(|r| !r.is_empty())
        {
            break (r, c.clone());
        }
        if Instant::now() >= deadline {
            check(
                &server,
                false,
                &format!(
                    "within {OUTCOME:?} of the call's end, /api/calls does not show call \
                     {sip_call_id} with a disposition and a recording"
                ),
                &r,
            );
        }
        thread::sleep(Duration::from_millis(200));
    };
    let calls = list.json().get("calls").as_array().map_or(0, <[Json]>::len);
    check(
        &server,
        calls == 1,
        &format!("expected one call, got {calls}"),
        &list,
    );
    let id = call.get("id").as_str().unwrap_or("").to_owned();
    let reference = call.get("reference").as_str().unwrap_or("").to_owned();
    let desc = format!("the call in the list: {call}");
    check(&server, !id.is_empty(), &format!("no id: {desc}"), &list);
    check(
        &server,
        call.get("language").as_str() == Some("qu"),
        &format!("language is not \"qu\": {desc}"),
        &list,
    );
    check(
        &server,
        call.get("disposition").as_str() == Some("message"),
        &format!("disposition is not \"message\": {desc}"),
        &list,
    );
    check(
        &server,
        reference.len() == 6 && reference.bytes().all(|c| c.is_ascii_digit()),
        &format!("reference is not 6 digits: {desc}"),
        &list,
    );
    check(
        &server,
        reference == heard,
        &format!(
            "the API's reference {reference} is not the one read to the caller ({heard}, from \
             the log: {outcome})"
        ),
        &list,
    );
    let path = call.get("path").strings().unwrap_or_default();
    check(
        &server,
        path.contains(&"message") && path.first() == Some(&"welcome"),
        &format!("path does not start at welcome and include message: {desc}"),
        &list,
    );
    check(
        &server,
        path.join(">") == logged_path,
        &format!("path is not the one logged with the outcome ({logged_path}): {desc}"),
        &list,
    );
    let mut times = Vec::new();
    for key in ["started_at", "answered_at", "ended_at"] {
        let t = call.get(key).as_str().and_then(rfc3339_utc);
        check(
            &server,
            t.is_some(),
            &format!("{key} is not an RFC 3339 UTC timestamp: {desc}"),
            &list,
        );
        times.push(t.expect("checked"));
    }
    check(
        &server,
        times[0] <= times[1] && times[1] <= times[2] && times[2] - times[1] >= 30.0,
        &format!("started_at ≤ answered_at ≤ ended_at, at least 30 s answered: {desc}"),
        &list,
    );
    let recordings = call.get("recordings").strings().unwrap_or_default();
    check(
        &server,
        recordings.len() == 1,
        &format!("expected one recording id: {desc}"),
        &list,
    );
    let rec_id = recordings[0].to_owned();
    for key in ["queue_wait_ms", "operator"] {
        check(
            &server,
            call.has(key),
            &format!("no {key:?} key: {desc}"),
            &list,
        );
    }

    // The filters.
    let by_ref = get(&server, &format!("/api/calls?reference={reference}"), sup);
    let found: Vec<String> = by_ref
        .json()
        .get("calls")
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.get("id").as_str().map(str::to_owned))
        .collect();
    check(
        &server,
        by_ref.status == 200 && found == [id.clone()],
        "?reference= does not find exactly the call",
        &by_ref,
    );
    let by_sip = get(
        &server,
        &format!("/api/calls?sip_call_id={}", http::encode(&sip_call_id)),
        sup,
    );
    let found: Vec<String> = by_sip
        .json()
        .get("calls")
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.get("id").as_str().map(str::to_owned))
        .collect();
    check(
        &server,
        by_sip.status == 200 && found == [id.clone()],
        &format!("?sip_call_id={sip_call_id} does not find exactly the call"),
        &by_sip,
    );
    let none = get(&server, "/api/calls?reference=000001", sup);
    check(
        &server,
        none.status == 200
            && none
                .json()
                .get("calls")
                .as_array()
                .is_some_and(<[Json]>::is_empty),
        "?reference= of another number finds calls",
        &none,
    );

    // Operators read calls, without their recordings.
    let op_list = get(&server, "/api/calls?limit=10", op);
    let op_call = op_list
        .json()
        .get("calls")
        .as_array()
        .and_then(|c| c.first().cloned());
    check(
        &server,
        op_list.status == 200
            && op_call
                .as_ref()
                .is_some_and(|c| c.get("id").as_str() == Some(&id) && !c.has("recordings")),
        "an operator should see the call without its `recordings` key",
        &op_list,
    );

    // The recording, listed.
    let recs = get(&server, "/api/recordings?limit=10", sup);
    check(
        &server,
        recs.status == 200,
        "GET /api/recordings as supervisor",
        &recs,
    );
    let rec = recs.json().get("recordings").as_array().and_then(|r| {
        r.iter()
            .find(|r| r.get("id").as_str() == Some(&rec_id))
            .cloned()
    });
    check(
        &server,
        rec.is_some(),
        &format!("recording {rec_id} is not listed"),
        &recs,
    );
    let rec = rec.expect("checked");
    let rdesc = format!("the recording in the list: {rec}");
    check(
        &server,
        rec.get("call_id").as_str() == Some(&id),
        &format!("call_id is not {id}: {rdesc}"),
        &recs,
    );
    check(
        &server,
        rec.get("kind").as_str() == Some("message"),
        &format!("kind is not \"message\": {rdesc}"),
        &recs,
    );
    check(
        &server,
        rec.get("status").as_str() == Some("new"),
        &format!("status is not \"new\": {rdesc}"),
        &recs,
    );
    check(
        &server,
        rec.get("tags").as_array().is_some_and(<[Json]>::is_empty)
            && rec.get("notes").as_str() == Some(""),
        &format!("a new recording should have no tags and empty notes: {rdesc}"),
        &recs,
    );
    check(
        &server,
        rec.get("created_at")
            .as_str()
            .and_then(rfc3339_utc)
            .is_some(),
        &format!("created_at is not RFC 3339 UTC: {rdesc}"),
        &recs,
    );
    let sha = rec.get("sha256").as_str().unwrap_or("").to_owned();
    check(
        &server,
        sha.len() == 64
            && sha
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        &format!("sha256 is not 64 lower-case hex digits: {rdesc}"),
        &recs,
    );
    let duration_ms = rec.get("duration_ms").as_f64();
    check(
        &server,
        duration_ms.is_some(),
        &format!("no duration_ms: {rdesc}"),
        &recs,
    );
    let duration_ms = duration_ms.expect("checked");

    // The audio, whole.
    let audio_path = format!("/api/recordings/{rec_id}/audio");
    let audio = get(&server, &audio_path, sup);
    check(
        &server,
        audio.status == 200,
        "GET audio as supervisor",
        &audio,
    );
    check(
        &server,
        audio
            .header("content-type")
            .is_some_and(|v| v.starts_with("audio/wav")),
        "Content-Type is not audio/wav",
        &audio,
    );
    let wav = parse_wav(&audio.body);
    check(
        &server,
        wav.is_ok(),
        &format!("the audio is not a valid WAV: {wav:?}"),
        &audio,
    );
    let wav = wav.expect("checked");
    check(
        &server,
        (wav.format, wav.sample_rate, wav.channels, wav.bits) == (1, 8000, 1, 16),
        &format!(
            "the audio is format {}, {} Hz, {} channel(s), {}-bit; expected PCM (1) 8000 Hz mono \
             16-bit",
            wav.format, wav.sample_rate, wav.channels, wav.bits
        ),
        &audio,
    );
    let got_ms = wav.duration_ms();
    check(
        &server,
        (got_ms - duration_ms).abs() <= 1.0,
        &format!("the audio lasts {got_ms:.1} ms, the listing says duration_ms {duration_ms}"),
        &audio,
    );
    check(
        &server,
        (got_ms - expected_ms).abs() <= LENGTH_TOLERANCE_MS,
        &format!(
            "the audio lasts {got_ms:.0} ms; from the recording's start ({start:.0} ms into the \
             caller's pcap) to the # ({HASH_AT_MS} ms) is {expected_ms:.0} ms \
             (±{LENGTH_TOLERANCE_MS} ms)"
        ),
        &audio,
    );
    let digest: String = Sha256::digest(&audio.body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    check(
        &server,
        digest == sha,
        &format!("the audio's SHA-256 is {digest}, the listing says {sha}"),
        &audio,
    );
    check(
        &server,
        audio.header("etag") == Some(&format!("\"{sha}\"")),
        "the ETag is not the quoted SHA-256",
        &audio,
    );

    // A range: the 44-byte header.
    let part = api(
        &server,
        "GET",
        &audio_path,
        sup,
        &[("Range", "bytes=0-43")],
        None,
    );
    check(
        &server,
        part.status == 206,
        "Range bytes=0-43: expected 206",
        &part,
    );
    check(
        &server,
        part.body.len() == 44 && part.body[..] == audio.body[..44],
        &format!(
            "Range bytes=0-43: expected the first 44 bytes, got {}",
            part.body.len()
        ),
        &part,
    );
    check(
        &server,
        part.header("content-range") == Some(&format!("bytes 0-43/{}", audio.body.len())),
        "Range bytes=0-43: wrong Content-Range",
        &part,
    );

    // The audit log: both plays, by the supervisor.
    let audit = get(&server, "/api/audit?limit=100", sup);
    check(
        &server,
        audit.status == 200,
        "GET /api/audit as supervisor",
        &audit,
    );
    let entries = audit
        .json()
        .get("audit")
        .as_array()
        .map(<[Json]>::to_vec)
        .unwrap_or_default();
    let plays: Vec<&Json> = entries
        .iter()
        .filter(|e| e.get("action").as_str() == Some("recording.audio"))
        .collect();
    let by_sup = plays
        .iter()
        .filter(|e| {
            e.get("user").as_str() == Some("sofia")
                && e.get("recording_id").as_str() == Some(&rec_id)
        })
        .count();
    check(
        &server,
        by_sup == 2 && plays.len() == 2,
        &format!("expected two recording.audio lines, both by sofia for {rec_id}: {plays:?}"),
        &audit,
    );
    let details: Vec<&str> = plays
        .iter()
        .filter_map(|e| e.get("detail").as_str())
        .collect();
    check(
        &server,
        details.contains(&"full") && details.iter().any(|d| d.contains("bytes=0-43")),
        &format!("the audit details should say `full` and the range: {details:?}"),
        &audit,
    );
    check(
        &server,
        plays.iter().all(|e| {
            e.get("at").as_str().and_then(rfc3339_utc).is_some()
                && e.get("source")
                    .as_str()
                    .is_some_and(|s| s.contains("127.0.0.1"))
        }),
        "audit lines need an RFC 3339 time and the client's address",
        &audit,
    );

    // Operators: no recordings, no audio, no audit, and nothing audited for them.
    expect_error(&server, &get(&server, "/api/recordings", op), 403);
    let denied = get(&server, &audio_path, op);
    expect_error(&server, &denied, 403);
    check(
        &server,
        !denied.body.starts_with(b"RIFF")
            && denied
                .header("content-type")
                .is_some_and(|v| v.contains("json")),
        "the operator's 403 must carry no audio",
        &denied,
    );
    expect_error(&server, &get(&server, "/api/audit", op), 403);
    expect_error(&server, &get(&server, &audio_path, None), 401);
    let audit = get(&server, "/api/audit?limit=100", sup);
    let plays = audit
        .json()
        .get("audit")
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter(|e| e.get("action").as_str() == Some("recording.audio"))
        .count();
    check(
        &server,
        plays == 2,
        "the refused requests were audited as plays",
        &audit,
    );
    let patch_body = r#"{"status":"reviewed","tags":["urgent"],"notes":"called back"}"#;
    expect_error(
        &server,
        &api(
            &server,
            "PATCH",
            &format!("/api/recordings/{rec_id}"),
            op,
            &[],
            Some(patch_body),
        ),
        403,
    );

    // A review.
    let patched = api(
        &server,
        "PATCH",
        &format!("/api/recordings/{rec_id}"),
        sup,
        &[],
        Some(patch_body),
    );
    check(
        &server,
        (200..300).contains(&patched.status),
        "PATCH as supervisor",
        &patched,
    );
    let recs = get(&server, "/api/recordings?limit=10", sup);
    let rec = recs
        .json()
        .get("recordings")
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|r| r.get("id").as_str() == Some(&rec_id))
                .cloned()
        })
        .unwrap_or(Json::Null);
    check(
        &server,
        rec.get("status").as_str() == Some("reviewed")
            && rec.get("tags").strings() == Some(vec!["urgent"])
            && rec.get("notes").as_str() == Some("called back")
            && rec.get("sha256").as_str() == Some(&sha),
        &format!("after the PATCH the recording should be reviewed, tagged urgent, noted: {rec}"),
        &recs,
    );
    let audit = get(&server, "/api/audit?limit=100", sup);
    let updates = audit
        .json()
        .get("audit")
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter(|e| {
            e.get("action").as_str() == Some("recording.update")
                && e.get("user").as_str() == Some("sofia")
                && e.get("recording_id").as_str() == Some(&rec_id)
        })
        .count();
    check(
        &server,
        updates == 1,
        "expected one recording.update audit line by sofia",
        &audit,
    );

    // On PostgreSQL, the rows are really there.
    if let Some(db) = &db {
        let rows = db.rows("SELECT reference, sip_call_id FROM calls");
        assert_eq!(
            rows,
            vec![vec![reference.clone(), sip_call_id.clone()]],
            "the PostgreSQL database {} should hold the one call\n{}",
            db.name,
            server.report()
        );
    }

    // The call's events (last: see the report if this fails).
    let one = get(&server, &format!("/api/calls/{id}"), sup);
    check(&server, one.status == 200, "GET /api/calls/{id}", &one);
    let detail = one.json();
    check(
        &server,
        detail.get("id").as_str() == Some(&id)
            && detail.get("reference").as_str() == Some(&reference),
        "GET /api/calls/{id} is not the call",
        &one,
    );
    let events = detail.get("events").as_array().map(<[Json]>::to_vec);
    check(&server, events.is_some(), "no `events` array", &one);
    let events = events.expect("checked");
    check(
        &server,
        events.iter().all(|e| {
            e.get("at").as_str().and_then(rfc3339_utc).is_some()
                && e.get("kind").as_str().is_some_and(|k| !k.is_empty())
                && e.get("detail").as_str().is_some()
        }),
        "every event needs an RFC 3339 `at`, a `kind` and a `detail`",
        &one,
    );
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e.get("kind").as_str())
        .collect();
    check(
        &server,
        !events.is_empty(),
        &format!(
            "call {id} has no events: the flow's events (node, digit, language, \
             recording-started, recording-finished, hung-up, ...) are not stored"
        ),
        &one,
    );
    check(
        &server,
        kinds.contains(&"node")
            && kinds.contains(&"language")
            && kinds.contains(&"recording-finished"),
        &format!("the events should include node, language and recording-finished: {kinds:?}"),
        &one,
    );
    eprintln!(
        "{backend:?}: call {id} reference {reference} ({sip_call_id}), recording {rec_id} \
         {got_ms:.0} ms (expected {expected_ms:.0}), {} events",
        events.len()
    );
}

#[test]
fn message_call_sqlite() {
    message_call_through_the_api(Backend::Sqlite);
}

#[test]
fn message_call_postgres() {
    message_call_through_the_api(Backend::Postgres);
}

// ---------------------------------------------------------------------------------------
// 2. PostgreSQL cut away mid-call

/// Calls per sipp run.
const CALLS: usize = 6;
/// How long each call stays up after the ACK.
const CALL_MS: u64 = 3000;
/// When the proxy is cut, after sipp's first ACK.
const CUT_AFTER: Duration = Duration::from_secs(2);
/// How long it stays cut.
const CUT_FOR: Duration = Duration::from_secs(8);
/// How long the writer may take to drain its spool once the database is back.
const RECOVERY: Duration = Duration::from_secs(60);

/// `CALLS` calls at 2 per second, each `CALL_MS` long.
fn short_calls(server: &Server) -> RunningSipp {
    server
        .sipp("uac_call_bye")
        .duration_ms(CALL_MS)
        .arg("-r")
        .arg("2")
        .arg("-m")
        .arg(&CALLS.to_string())
        .spawn()
}

/// Checks that every call of a run was answered and ended with a 200 to its BYE.
#[track_caller]
fn expect_all_completed(server: &Server, run: &SippRun) -> Vec<String> {
    run.assert_passed(server);
    let successful = sipp_successful_calls(run);
    let completed = completed_call_ids(run);
    run.check(
        server,
        successful == Some(CALLS as u64) && completed.len() == CALLS,
        &format!(
            "expected {CALLS} successful calls: sipp counts {successful:?}, its trace shows \
             {} answered and ended",
            completed.len()
        ),
    );
    completed
}

/// Waits until the writer has nothing left and the database is up.
#[track_caller]
fn wait_drained(server: &Server, what: &str) {
    let deadline = Instant::now() + RECOVERY;
    loop {
        let backlog = metric(server, "hotline_store_backlog");
        let up = metric(server, "hotline_store_database_up");
        if backlog == Some(0.0) && up == Some(1.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: within {RECOVERY:?} /metrics still shows hotline_store_backlog {backlog:?}, \
             hotline_store_database_up {up:?}\n{}",
            server.report()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// One call row, read from PostgreSQL directly.
#[derive(Debug, Clone)]
struct CallRow {
    id: String,
    sip_call_id: String,
    answered: bool,
    ended: bool,
    disposition: String,
    path: String,
}

#[test]
fn postgres_cut_mid_call_loses_nothing() {
    let db = PgDatabase::create();
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], PG_PORT)));
    let server = Setup::new(&Config::default())
        .env("DATABASE_URL", &db.url_at(proxy.port()))
        .start();
    assert!(
        wait_log_line(&server, &["database ready"], Duration::from_secs(20)).is_some(),
        "the server did not migrate the database through the proxy\n{}",
        server.report()
    );

    // Without a cut: what such calls leave in the database.
    let baseline = expect_all_completed(&server, &short_calls(&server).wait());
    wait_drained(&server, "after the calls without a cut");

    // With the cut.
    let running = short_calls(&server).expect_sent("ACK", ESTABLISH, &server);
    thread::sleep(CUT_AFTER);
    let before = healthz(&server);
    assert!(
        before == Some((200, Some(true))),
        "/healthz just before the cut: {before:?}; expected 200 with the database up\n{}",
        server.report()
    );
    let cut_at = Instant::now();
    proxy.cut();
    let mut health: Vec<(f64, u16, Option<bool>)> = Vec::new();
    while cut_at.elapsed() < CUT_FOR {
        if let Some((status, db_ok)) = healthz(&server) {
            health.push((cut_at.elapsed().as_secs_f64(), status, db_ok));
        }
        thread::sleep(Duration::from_millis(200));
    }
    let up_during_cut = metric(&server, "hotline_store_database_up");
    proxy.restore();
    let run = running.wait();
    let cut = expect_all_completed(&server, &run);
    let refused = proxy.refused();
    let went_down = health
        .iter()
        .any(|&(_, s, db)| s == 503 && db == Some(false));
    run.check(
        &server,
        went_down,
        &format!(
            "/healthz never answered 503 with the database check false during the {CUT_FOR:?} \
             cut (database_up at its end: {up_during_cut:?}; connections refused by the proxy: \
             {refused}); polls (s since the cut, status, database ok): {health:?}"
        ),
    );
    wait_drained(&server, "after the cut");
    let after = healthz(&server);
    assert!(
        after == Some((200, Some(true))),
        "/healthz after the database came back: {after:?}\n{}",
        server.report()
    );
    let rejected = metric(&server, "hotline_store_rejected_total");
    assert_eq!(
        rejected,
        Some(0.0),
        "the database refused some of the spooled writes\n{}",
        server.report()
    );

    // The database itself, not through the proxy.
    let rows: Vec<CallRow> = db
        .rows(
            "SELECT id, sip_call_id, answered_at IS NOT NULL, ended_at IS NOT NULL, \
             COALESCE(disposition, ''), path::text FROM calls ORDER BY started_at, id",
        )
        .into_iter()
        .map(|r| CallRow {
            id: r[0].clone(),
            sip_call_id: r[1].clone(),
            answered: r[2] == "t",
            ended: r[3] == "t",
            disposition: r[4].clone(),
            path: r[5].clone(),
        })
        .collect();
    let story = |what: &str| {
        format!(
            "{what}\n--- calls in {}: {rows:#?}\n--- Call-IDs without a cut: {baseline:?}\n--- \
             with the cut: {cut:?}\n{}{}",
            db.name,
            run.report(),
            server.report()
        )
    };
    assert_eq!(
        rows.len(),
        2 * CALLS,
        "{}",
        story("expected one row per call")
    );
    for (ids, label) in [(&baseline, "without a cut"), (&cut, "with the cut")] {
        for sip in ids {
            let n = rows.iter().filter(|r| &r.sip_call_id == sip).count();
            assert_eq!(
                n,
                1,
                "{}",
                story(&format!("call {sip} ({label}) has {n} rows"))
            );
        }
    }
    for r in &rows {
        assert!(
            r.answered && r.ended && !r.disposition.is_empty(),
            "{}",
            story(&format!(
                "call {} is not answered, ended and disposed",
                r.sip_call_id
            ))
        );
    }

    // Events: none twice, and each call after the cut has the events of a call without it
    // that went the same way.
    let dupes = db.rows(
        "SELECT call_id, kind, detail, at, count(*) FROM call_events \
         GROUP BY call_id, kind, detail, at HAVING count(*) > 1",
    );
    assert!(
        dupes.is_empty(),
        "{}",
        story(&format!("events stored twice: {dupes:?}"))
    );
    let ids = db.rows("SELECT count(*), count(DISTINCT id) FROM call_events");
    assert_eq!(
        ids[0][0],
        ids[0][1],
        "{}",
        story("event ids are not unique")
    );
    let events = db.rows("SELECT call_id, kind FROM call_events ORDER BY call_id, seq");
    let kinds_of = |call: &CallRow| {
        let mut k: Vec<&str> = events
            .iter()
            .filter(|e| e[0] == call.id)
            .map(|e| e[1].as_str())
            .collect();
        k.sort_unstable();
        k
    };
    let base_rows: Vec<&CallRow> = rows
        .iter()
        .filter(|r| baseline.contains(&r.sip_call_id))
        .collect();
    for r in rows.iter().filter(|r| cut.contains(&r.sip_call_id)) {
        let Some(twin) = base_rows
            .iter()
            .find(|b| b.path == r.path && b.disposition == r.disposition)
        else {
            panic!(
                "{}",
                story(&format!(
                    "call {} went another way than every call without the cut",
                    r.sip_call_id
                ))
            );
        };
        assert_eq!(
            kinds_of(r),
            kinds_of(twin),
            "{}",
            story(&format!(
                "call {} (with the cut) has other events than call {} (without)",
                r.sip_call_id, twin.sip_call_id
            ))
        );
    }
    let recorded = db.rows("SELECT count(*) FROM call_events");
    let log = server.log();
    for needle in [
        "database unavailable",
        "database available again",
        "store spool replayed",
    ] {
        eprintln!("{}", log_line(&log, &[needle]).unwrap_or(needle));
    }
    eprintln!(
        "cut: proxy refused {refused} connections; /healthz polls during the cut: {}; {} calls \
         and {} events in the database",
        health
            .iter()
            .map(|(t, s, d)| format!("{t:.1}s:{s}/{d:?}"))
            .collect::<Vec<_>>()
            .join(" "),
        rows.len(),
        recorded[0][0]
    );
}

// ---------------------------------------------------------------------------------------
// The harness itself

#[test]
fn harness_http_json_and_time_parsers() {
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
    let (s, h, b) = http::parse_response(raw, false).expect("chunked");
    assert_eq!((s, b.as_slice()), (200, &b"abcde"[..]));
    assert_eq!(h[1], ("x-a".to_owned(), "b".to_owned()));
    let raw = b"HTTP/1.1 206 Partial Content\r\ncontent-length: 2\r\n\r\nxyz";
    assert_eq!(http::parse_response(raw, false).expect("length").2, b"xy");
    assert_eq!(http::encode("1-2@127.0.0.1 x"), "1-2%40127.0.0.1%20x");

    let v = common::json::parse(
        r#" {"calls":[{"id":"01J","n":-1.5e2,"ok":true,"x":null,"s":"a\"\u00e9\ud83d\ude00"}],"e":{}} "#,
    )
    .expect("json");
    let call = &v.get("calls").as_array().expect("array")[0];
    assert_eq!(call.get("id").as_str(), Some("01J"));
    assert_eq!(call.get("n").as_f64(), Some(-150.0));
    assert!(call.has("x") && call.get("x").is_null() && !call.has("y"));
    assert_eq!(call.get("s").as_str(), Some("a\"é😀"));
    assert!(common::json::parse("[1,]").is_err() && common::json::parse("{} x").is_err());

    assert_eq!(rfc3339_utc("1970-01-01T00:00:01.500Z"), Some(1.5));
    assert_eq!(rfc3339_utc("2000-03-01T00:00:00Z"), Some(951_868_800.0));
    assert_eq!(
        rfc3339_utc("2000-03-01T00:00:00+00:00"),
        Some(951_868_800.0)
    );
    assert_eq!(rfc3339_utc("2000-03-01 00:00:00Z"), None);
    assert_eq!(rfc3339_utc("2000-03-01T00:00:00+01:00"), None);
    assert_eq!(rfc3339_utc("1700000000"), None);
}
