//! Talking to an operator, end to end, with a real softphone: PJSIP's `pjsua2-python`
//! (`tests/peers/operator.py`) registers as an operator made with `hotline user add`, a
//! supervisor sets it available through the API, and callers press 1 (Spanish) then 3
//! (operator).
//!
//! 1. `operator_answers_and_both_hear_each_other`: a sipp caller sends the keys as RFC 4733
//!    events, then a 1000 Hz tone; the operator answers, plays 400 Hz and hangs up after
//!    10 s. Checked: the operator's phone shows `ES <reference>` and never the caller's
//!    number; what the operator heard holds 1000 Hz and no 400 Hz; the two-channel
//!    recording (kind `conversation`) holds the caller's 1000 Hz on the left and the
//!    operator's 400 Hz on the right; the call's metadata (operator, queue wait,
//!    disposition, events) and `GET /api/queue` after the call.
//! 2. `pjsua_caller_hears_the_operator_across_codecs`: the caller is a pjsua2 softphone
//!    too (so what the caller hears can be recorded), on PCMA, the operator on PCMU (the
//!    bridge transcodes): 1000 Hz one way, 400 Hz the other, each side hears only the
//!    other's tone.
//! 3. `first_operator_declines_the_second_answers`: 603 from the operator idle longest,
//!    then the call goes to the next one.
//! 4. `caller_hangs_up_while_the_operator_rings`: the operator's INVITE is cancelled (487).
//! 5. `nobody_logged_in_offers_a_message`: no operator registered: the caller hears
//!    "nobody can answer now" and the message path follows.
//! 7. `two_missed_offers_pause_the_operator_and_say_why`: ring timeout 3 s, the phone
//!    never answers: offered twice, then paused, and `GET /api/queue` says why.
//! 8. `caller_hangs_up_mid_conversation`: the operator gets our BYE, the conversation is
//!    kept, the operator is free again.
//! 9. `operator_holds_and_resumes`: re-INVITEs from the operator's phone (sendonly, then
//!    sendrecv) are answered and the conversation goes on.
//! 6. `five_wrong_passwords_lock_the_softphone_out`: pjsua2 with a wrong password five
//!    times, then the right one is refused too.
//!
//! The venv with pjsua2 comes from `tests/peers/setup.sh` (`.ci/run` runs it and exports
//! `PJSUA2_PYTHON`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::http::{self, api};
use common::json::Json;
use common::pcap::Timeline;
use common::softphone::{Softphone as Peer, python};
use common::{Config, PcapScenario, Server, Setup, workspace_root};

const DOMAIN: &str = "hotline.local";
const OP_PASSWORD: &str = "op-softphone-pw";
/// Waits for the softphone's events.
const EVENT: Duration = Duration::from_secs(20);
/// The caller presses 1 during the welcome and 3 during the recording notice (kept for
/// the main menu): ms after the ACK.
const KEY_1_AT_MS: u32 = 1_500;
const KEY_3_AT_MS: u32 = 3_000;

// ---------------------------------------------------------------------------------------
// The softphone peer

// ---------------------------------------------------------------------------------------
// Tones

/// `tone.py` with the venv's python: `gen` and `check`.
fn tone(args: &[&str]) -> (bool, String) {
    let out = Command::new(python())
        .arg("-I")
        .arg(workspace_root().join("tests/peers/tone.py"))
        .args(args)
        .output()
        .expect("run tone.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn tone_wav(dir: &Path, freq: u32) -> PathBuf {
    let path = dir.join(format!("tone{freq}.wav"));
    let (ok, text) = tone(&[
        "gen",
        path.to_str().unwrap(),
        "--freq",
        &freq.to_string(),
        "--duration",
        "4",
        "--amplitude",
        "0.3",
    ]);
    assert!(ok, "tone.py gen: {text}");
    path
}

/// Panics unless channel `channel` of `wav` has `present` and not `absent`.
#[track_caller]
fn expect_tone(wav: &Path, channel: Option<u32>, present: u32, absent: u32, context: &str) {
    expect_tone_in(wav, channel, present, absent, None, context);
}

/// The length of a 16-bit WAV, from its `data` chunk.
fn wav_seconds(wav: &Path) -> f64 {
    let bytes = std::fs::read(wav).expect("read the WAV");
    let channels = f64::from(u16::from_le_bytes([bytes[22], bytes[23]]));
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk");
    let len = u32::from_le_bytes(bytes[data + 4..data + 8].try_into().unwrap());
    f64::from(len) / (2.0 * channels * 8000.0)
}

/// Like [`expect_tone`], on the last `last_s` seconds only (when given).
#[track_caller]
fn expect_tone_in(
    wav: &Path,
    channel: Option<u32>,
    present: u32,
    absent: u32,
    last_s: Option<f64>,
    context: &str,
) {
    let mut args = vec![
        "check".to_owned(),
        wav.display().to_string(),
        "--present".to_owned(),
        present.to_string(),
        "--absent".to_owned(),
        absent.to_string(),
        "--min-share".to_owned(),
        "0.3".to_owned(),
        "--max-share".to_owned(),
        "0.05".to_owned(),
    ];
    if let Some(c) = channel {
        args.push("--channel".to_owned());
        args.push(c.to_string());
    }
    if let Some(last) = last_s {
        args.push("--skip-s".to_owned());
        args.push(format!("{:.2}", (wav_seconds(wav) - last).max(0.0)));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = tone(&args);
    assert!(
        ok,
        "{} (channel {channel:?}) should hold {present} Hz and not {absent} Hz:\n{text}\n{context}",
        wav.display()
    );
}

fn sine(freq: f64, ms: u32) -> Vec<i16> {
    let n = ms as usize * 8;
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            (0.3 * 32767.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Server, users and the API

fn config(ring_timeout_secs: u32) -> Config {
    Config::default().sections(&format!(
        "[queue]\nring_timeout_secs = {ring_timeout_secs}\nwrap_up_secs = 0\nposition_every_secs = 0\n"
    ))
}

fn add_user(setup: &Setup, name: &str, role: &str, password: &str) {
    setup
        .admin(
            &["user", "add", name, "--role", role, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
        .expect_ok();
}

fn token(setup: &Setup, name: &str) -> String {
    setup
        .admin(&["token", "create", name], None)
        .expect_ok()
        .trim()
        .to_owned()
}

/// A server with operators `names` and a supervisor; the supervisor's token.
fn start(names: &[&str]) -> (Server, String) {
    start_with(names, 8)
}

/// [`start`] with another ring timeout.
fn start_with(names: &[&str], ring_timeout_secs: u32) -> (Server, String) {
    let setup = Setup::new(&config(ring_timeout_secs));
    for n in names {
        add_user(&setup, n, "operator", OP_PASSWORD);
    }
    add_user(&setup, "sup", "supervisor", "sup-password-1");
    let t = token(&setup, "sup");
    (setup.start(), t)
}

fn set_available(server: &Server, token: &str, name: &str) {
    api(
        server,
        "PUT",
        &format!("/api/operators/{name}/status"),
        token,
        Some(r#"{"status":"available"}"#),
    );
}

/// `GET /api/queue`'s entry for operator `name`.
fn queue_operator(server: &Server, token: &str, name: &str) -> Json {
    let q = api(server, "GET", "/api/queue", token, None);
    q.get("operators")
        .as_array()
        .unwrap_or_default()
        .iter()
        .find(|o| o.get("name").as_str() == Some(name))
        .cloned()
        .unwrap_or(Json::Null)
}

/// Waits until the queue shows `name` registered (the registration reached the queue).
fn wait_registered(server: &Server, token: &str, name: &str) {
    let end = Instant::now() + EVENT;
    while Instant::now() < end {
        if queue_operator(server, token, name).get("registered") == &Json::Bool(true) {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{name} never shown registered in /api/queue\n{}",
        server.report()
    );
}

/// A registered, available operator softphone.
fn ready_operator(server: &Server, token: &str, name: &str, extra: &[&str]) -> Peer {
    let peer = Peer::operator(server.udp, name, OP_PASSWORD, DOMAIN, extra);
    peer.wait("registered", EVENT, server);
    wait_registered(server, token, name);
    set_available(server, token, name);
    let o = queue_operator(server, token, name);
    assert_eq!(o.get("status").as_str(), Some("available"), "{o:?}");
    peer
}

/// The newest call in `/api/calls`, once it has ended (its outcome stored).
fn ended_call(server: &Server, token: &str) -> Json {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let calls = api(server, "GET", "/api/calls?limit=1", token, None);
        if let Some(c) = calls.get("calls").as_array().and_then(|a| a.first())
            && c.get("ended_at").as_str().is_some()
            && c.get("disposition").as_str().is_some()
        {
            let id = c.get("id").as_str().unwrap().to_owned();
            return api(server, "GET", &format!("/api/calls/{id}"), token, None);
        }
        assert!(
            Instant::now() < end,
            "no ended call in /api/calls\n{}",
            server.report()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn event_kinds(call: &Json) -> Vec<String> {
    call.get("events")
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get("kind").as_str().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------------------
// sipp callers

/// Keys 1 and 3, then a 1000 Hz tone until `tone_until_ms` after the ACK.
fn caller_timeline(tone_until_ms: u32) -> Timeline {
    let mut t = Timeline::new();
    t.until(KEY_1_AT_MS).digit('1', 100);
    t.until(KEY_3_AT_MS).digit('3', 100);
    let now = t.now_ms() as u32;
    t.audio(&sine(1000.0, tone_until_ms.saturating_sub(now)));
    t
}

// ---------------------------------------------------------------------------------------
// 1.

#[test]
fn operator_answers_and_both_hear_each_other() {
    let (server, sup) = start(&["ana"]);
    let work = tempfile::tempdir().unwrap();
    let heard = work.path().join("ana-heard.wav");
    let mut ana = ready_operator(
        &server,
        &sup,
        "ana",
        &[
            "--answer-after-ms",
            "500",
            "--play",
            tone_wav(work.path(), 400).to_str().unwrap(),
            "--record",
            heard.to_str().unwrap(),
            "--hangup-after-ms",
            "10000",
        ],
    );

    let scenario = PcapScenario::new("uac_operator_pcap", &caller_timeline(40_000));
    let caller = scenario.spawn(&server, 0);

    let incoming = ana.wait("incoming", Duration::from_secs(30), &server);
    ana.wait("confirmed", EVENT, &server);
    // While they talk, the console shows ana busy with the call.
    let end = Instant::now() + EVENT;
    loop {
        let busy = queue_operator(&server, &sup, "ana");
        if busy.get("current_call").as_str().is_some() {
            break;
        }
        assert!(
            Instant::now() < end,
            "ana never busy: {busy:?}\n{}\n{}",
            ana.report(),
            server.report()
        );
        thread::sleep(Duration::from_millis(50));
    }

    ana.wait("recorded", Duration::from_secs(30), &server);
    let run = caller.wait();
    run.assert_passed(&server);
    // One call (`--calls 1`): the softphone unregisters and exits.
    assert_eq!(
        ana.wait_exit(Duration::from_secs(10)).map(|s| s.success()),
        Some(true),
        "{}",
        ana.report()
    );

    // The phone shows the language and the reference, never the caller's number.
    let call = ended_call(&server, &sup);
    let reference = call.get("reference").as_str().unwrap().to_owned();
    let display = incoming.get("display").as_str().unwrap_or_default();
    assert_eq!(display, format!("ES {reference}"), "{incoming:?}");
    let from = incoming.get("from").as_str().unwrap_or_default();
    assert!(
        !from.contains("sipp"),
        "caller's number in the From: {from}"
    );

    // What the operator heard: the caller's tone, not their own.
    expect_tone(&heard, None, 1000, 400, &ana.report());

    // The call's metadata.
    let context = format!("{call:?}\n{}", server.report());
    assert_eq!(
        call.get("disposition").as_str(),
        Some("operator"),
        "{context}"
    );
    assert_eq!(call.get("operator").as_str(), Some("ana"), "{context}");
    assert_eq!(call.get("language").as_str(), Some("es"), "{context}");
    let wait_ms = call.get("queue_wait_ms").as_f64().unwrap_or(-1.0);
    assert!(
        (0.0..10_000.0).contains(&wait_ms),
        "queue wait {wait_ms}: {context}"
    );
    let kinds = event_kinds(&call);
    for k in [
        "operator-offered",
        "operator-answered",
        "bridged",
        "operator-hung-up",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no `{k}` event: {context}");
    }

    // The conversation: two channels, caller left (1000 Hz), operator right (400 Hz).
    let recs = api(&server, "GET", "/api/recordings?limit=5", &sup, None);
    let conv = recs
        .get("recordings")
        .as_array()
        .unwrap_or_default()
        .iter()
        .find(|r| r.get("kind").as_str() == Some("conversation"))
        .cloned()
        .unwrap_or_else(|| panic!("no conversation recording: {recs:?}\n{}", server.report()));
    assert_eq!(conv.get("call_id"), call.get("id"));
    let ms = conv.get("duration_ms").as_f64().unwrap_or(0.0);
    // Bridged after the notice, until the operator's BYE 10 s after answering.
    assert!(
        (5_000.0..10_500.0).contains(&ms),
        "conversation {ms} ms: {context}"
    );
    let id = conv.get("id").as_str().unwrap();
    let audio = http::request(
        &server.http,
        "GET",
        &format!("/api/recordings/{id}/audio"),
        &[("Authorization", &format!("Bearer {sup}"))],
        None,
    )
    .expect("download the conversation");
    assert_eq!(audio.status, 200);
    let wav = work.path().join("conversation.wav");
    std::fs::write(&wav, &audio.body).unwrap();
    expect_tone(&wav, Some(0), 1000, 400, &context);
    expect_tone(&wav, Some(1), 400, 1000, &context);

    // After the call: ana free again (wrap-up 0), nobody waiting.
    let q = api(&server, "GET", "/api/queue", &sup, None);
    assert_eq!(
        q.get("waiting").as_array().map(<[Json]>::len),
        Some(0),
        "{q:?}"
    );
    let a = queue_operator(&server, &sup, "ana");
    assert!(a.get("current_call").is_null(), "{a:?}");
    drop(scenario.dir);
}

// ---------------------------------------------------------------------------------------
// 3.

#[test]
fn first_operator_declines_the_second_answers() {
    let (server, sup) = start(&["ana", "bob"]);
    // ana is available first: idle longest, offered first.
    let ana = ready_operator(&server, &sup, "ana", &["--decline", "603"]);
    thread::sleep(Duration::from_millis(50));
    let bob = ready_operator(
        &server,
        &sup,
        "bob",
        &["--answer-after-ms", "300", "--hangup-after-ms", "5000"],
    );

    let scenario = PcapScenario::new("uac_operator_pcap", &caller_timeline(40_000));
    let caller = scenario.spawn(&server, 0);
    ana.wait("declined", Duration::from_secs(30), &server);
    bob.wait("confirmed", EVENT, &server);
    bob.wait("disconnected", EVENT, &server);
    caller.wait().assert_passed(&server);

    let call = ended_call(&server, &sup);
    let context = format!(
        "{call:?}\n{}\n{}\n{}",
        ana.report(),
        bob.report(),
        server.report()
    );
    assert_eq!(call.get("operator").as_str(), Some("bob"), "{context}");
    assert_eq!(
        call.get("disposition").as_str(),
        Some("operator"),
        "{context}"
    );
    let events = call.get("events").as_array().unwrap_or_default().to_vec();
    let failed = events
        .iter()
        .find(|e| e.get("kind").as_str() == Some("operator-failed"));
    assert_eq!(
        failed.and_then(|e| e.get("detail").as_str()),
        Some("ana 603"),
        "{context}"
    );
    // Offered to ana, then to bob.
    let offered: Vec<&str> = events
        .iter()
        .filter(|e| e.get("kind").as_str() == Some("operator-offered"))
        .filter_map(|e| e.get("detail").as_str())
        .collect();
    assert_eq!(offered, ["ana", "bob"], "{context}");
    drop(scenario.dir);
}

// ---------------------------------------------------------------------------------------
// 4.

#[test]
fn caller_hangs_up_while_the_operator_rings() {
    let (server, sup) = start(&["ana"]);
    let ana = ready_operator(&server, &sup, "ana", &["--never-answer"]);

    // The caller gives up 12 s after the ACK: the operator's phone rings from about 6.5 s.
    let scenario = PcapScenario::new("uac_media_pcap", &caller_timeline(11_000));
    let caller = scenario.spawn(&server, 12_000);
    ana.wait("ringing", Duration::from_secs(30), &server);
    let gone = ana.wait("disconnected", EVENT, &server);
    caller.wait().assert_passed(&server);
    assert_eq!(
        gone.get("code").as_f64(),
        Some(487.0),
        "the operator's INVITE should end in 487 after our CANCEL\n{}\n{}",
        ana.report(),
        server.report()
    );

    let call = ended_call(&server, &sup);
    let context = format!("{call:?}\n{}\n{}", ana.report(), server.report());
    assert_eq!(
        call.get("disposition").as_str(),
        Some("abandoned"),
        "{context}"
    );
    assert!(call.get("operator").is_null(), "{context}");
    // ana is free again, not paused: a caller who leaves is not her miss.
    let a = queue_operator(&server, &sup, "ana");
    assert_eq!(a.get("status").as_str(), Some("available"), "{a:?}");
    assert!(a.get("current_call").is_null(), "{a:?}");
    let q = api(&server, "GET", "/api/queue", &sup, None);
    assert_eq!(
        q.get("waiting").as_array().map(<[Json]>::len),
        Some(0),
        "{q:?}"
    );
    drop(scenario.dir);
}

// ---------------------------------------------------------------------------------------
// 5.

#[test]
fn nobody_logged_in_offers_a_message() {
    let (server, sup) = start(&["ana"]);
    // ana exists but no softphone is registered: night.
    let scenario = PcapScenario::new("uac_media_pcap", &caller_timeline(8_000));
    let caller = scenario.spawn(&server, 20_000);
    caller.wait().assert_passed(&server);

    let call = ended_call(&server, &sup);
    let context = format!("{call:?}\n{}", server.report());
    let path = call.get("path").strings().unwrap_or_default();
    assert!(
        path.windows(2).any(|w| w == ["operator", "no-operator"]),
        "{context}"
    );
    let events = call.get("events").as_array().unwrap_or_default().to_vec();
    assert!(
        events
            .iter()
            .any(|e| e.get("kind").as_str() == Some("no-operator")
                && e.get("detail").as_str() == Some("nobody-logged-in")),
        "{context}"
    );
    // "Nobody can answer; press 2 for a message": no key, so the message path follows.
    assert!(
        path.contains(&"message"),
        "no message path after no-operator: {context}"
    );
    drop(scenario.dir);
}

// ---------------------------------------------------------------------------------------
// 6.

#[test]
fn five_wrong_passwords_lock_the_softphone_out() {
    let (server, _sup) = start(&["ana"]);
    let since = server.log_len();
    for attempt in 1..=5 {
        let mut peer = Peer::operator(
            server.udp,
            "ana",
            "not-the-password",
            DOMAIN,
            &["--exit-on-registration-failure", "--timeout-s", "20"],
        );
        let failed = peer.wait("registration_failed", EVENT, &server);
        assert!(
            failed.get("code").as_f64().is_some_and(|c| c >= 400.0),
            "attempt {attempt}: {failed:?}"
        );
        let status = peer.wait_exit(Duration::from_secs(10));
        assert_eq!(status.and_then(|s| s.code()), Some(3), "{}", peer.report());
    }
    // The right password is refused now too (for 10 minutes).
    let mut peer = Peer::operator(
        server.udp,
        "ana",
        OP_PASSWORD,
        DOMAIN,
        &["--exit-on-registration-failure", "--timeout-s", "20"],
    );
    let refused = peer.wait("registration_failed", EVENT, &server);
    assert_eq!(
        refused.get("code").as_f64(),
        Some(403.0),
        "{refused:?}\n{}",
        server.report()
    );
    let _ = peer.wait_exit(Duration::from_secs(10));
    assert!(
        server.wait_for_log(since, &["hotline auth failure", "user=\"ana\""], EVENT),
        "no fail2ban line\n{}",
        server.report()
    );
}

// ---------------------------------------------------------------------------------------
// 2.

#[test]
fn pjsua_caller_hears_the_operator_across_codecs() {
    let (server, sup) = start(&["ana"]);
    let work = tempfile::tempdir().unwrap();
    let op_heard = work.path().join("operator-heard.wav");
    let caller_heard = work.path().join("caller-heard.wav");
    let ana = ready_operator(
        &server,
        &sup,
        "ana",
        &[
            "--codec",
            "PCMU",
            "--answer-after-ms",
            "300",
            "--play",
            tone_wav(work.path(), 400).to_str().unwrap(),
            "--record",
            op_heard.to_str().unwrap(),
            "--hangup-after-ms",
            "8000",
        ],
    );
    let mut caller = Peer::start(
        "caller",
        &[
            "--call".to_owned(),
            format!("sip:0800@{}", server.udp),
            "--codec".to_owned(),
            "PCMA".to_owned(),
            "--dtmf-script".to_owned(),
            format!("1@{KEY_1_AT_MS},3@{KEY_3_AT_MS}"),
            "--play".to_owned(),
            tone_wav(work.path(), 1000).display().to_string(),
            "--record".to_owned(),
            caller_heard.display().to_string(),
            "--timeout-s".to_owned(),
            "60".to_owned(),
        ],
    );
    let media = caller.wait("media_active", Duration::from_secs(30), &server);
    assert_eq!(media.get("codec").as_str(), Some("PCMA"), "{media:?}");
    let op_media = ana.wait("media_active", Duration::from_secs(30), &server);
    assert_eq!(op_media.get("codec").as_str(), Some("PCMU"), "{op_media:?}");
    ana.wait("recorded", Duration::from_secs(30), &server);
    let gone = caller.wait("disconnected", EVENT, &server);
    assert_eq!(gone.get("by").as_str(), Some("remote"), "{gone:?}");
    caller.wait("recorded", EVENT, &server);
    let _ = caller.wait_exit(Duration::from_secs(10));

    let context = format!("{}\n{}\n{}", ana.report(), caller.report(), server.report());
    // Each side hears the other, never itself. The caller also heard the prompts (speech),
    // so only the tones are compared there.
    expect_tone(&op_heard, None, 1000, 400, &context);
    // The bridge starts about 10 s in (keys, notices, ring) and lasts until the operator's
    // BYE 8 s after answering: the last 3 s are conversation.
    expect_tone_in(&caller_heard, None, 400, 1000, Some(3.0), &context);
    let call = ended_call(&server, &sup);
    assert_eq!(
        call.get("disposition").as_str(),
        Some("operator"),
        "{call:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 7.

#[test]
fn two_missed_offers_pause_the_operator_and_say_why() {
    let (server, sup) = start_with(&["ana"], 3);
    let ana = ready_operator(&server, &sup, "ana", &["--never-answer", "--calls", "2"]);
    let scenario = PcapScenario::new("uac_media_pcap", &caller_timeline(15_000));
    let caller = scenario.spawn(&server, 16_000);
    // Offered at about 6.5 s, withdrawn at 9.5 s, offered again, withdrawn at 12.5 s.
    let end = Instant::now() + Duration::from_secs(30);
    let paused = loop {
        let a = queue_operator(&server, &sup, "ana");
        if a.get("status").as_str() == Some("paused") {
            break a;
        }
        assert!(
            Instant::now() < end,
            "ana never paused: {a:?}\n{}\n{}",
            ana.report(),
            server.report()
        );
        thread::sleep(Duration::from_millis(100));
    };
    caller.wait().assert_passed(&server);
    let reason = paused.get("paused_reason").as_str().unwrap_or_default();
    assert!(reason.contains("missed 2 calls in a row"), "{paused:?}");
    assert_eq!(paused.get("state").as_str(), Some("paused"), "{paused:?}");
    let rings = ana
        .events()
        .iter()
        .filter(|e| e.get("event").as_str() == Some("incoming"))
        .count();
    assert_eq!(rings, 2, "{}", ana.report());
    // Setting a status clears the reason.
    set_available(&server, &sup, "ana");
    let a = queue_operator(&server, &sup, "ana");
    assert!(a.get("paused_reason").is_null(), "{a:?}");
    drop(scenario.dir);
}

// ---------------------------------------------------------------------------------------
// 8.

#[test]
fn caller_hangs_up_mid_conversation() {
    let (server, sup) = start(&["ana"]);
    let work = tempfile::tempdir().unwrap();
    let ana = ready_operator(
        &server,
        &sup,
        "ana",
        &[
            "--answer-after-ms",
            "300",
            "--play",
            tone_wav(work.path(), 400).to_str().unwrap(),
        ],
    );
    // The caller hangs up 15 s after the answer: about 5 s into the conversation.
    let mut caller = Peer::start(
        "caller",
        &[
            "--call".to_owned(),
            format!("sip:0800@{}", server.udp),
            "--dtmf-script".to_owned(),
            format!("1@{KEY_1_AT_MS},3@{KEY_3_AT_MS}"),
            "--play".to_owned(),
            tone_wav(work.path(), 1000).display().to_string(),
            "--hangup-after-ms".to_owned(),
            "15000".to_owned(),
            "--timeout-s".to_owned(),
            "60".to_owned(),
        ],
    );
    let gone = ana.wait("disconnected", Duration::from_secs(40), &server);
    assert_eq!(
        gone.get("by").as_str(),
        Some("remote"),
        "the operator should get our BYE\n{}\n{}",
        ana.report(),
        server.report()
    );
    let _ = caller.wait_exit(Duration::from_secs(10));

    let call = ended_call(&server, &sup);
    let context = format!("{call:?}\n{}", server.report());
    assert_eq!(
        call.get("disposition").as_str(),
        Some("operator"),
        "{context}"
    );
    assert!(
        event_kinds(&call).iter().any(|k| k == "conversation-ended"),
        "{context}"
    );
    let recs = api(&server, "GET", "/api/recordings?limit=5", &sup, None);
    let conv = recs
        .get("recordings")
        .as_array()
        .unwrap_or_default()
        .iter()
        .find(|r| r.get("kind").as_str() == Some("conversation"))
        .cloned()
        .unwrap_or_else(|| panic!("no conversation recording: {recs:?}\n{context}"));
    let ms = conv.get("duration_ms").as_f64().unwrap_or(0.0);
    assert!(
        (2_000.0..8_000.0).contains(&ms),
        "conversation {ms} ms: {context}"
    );
    // The operator is free again at once (wrap-up 0 in these tests).
    let a = queue_operator(&server, &sup, "ana");
    assert!(a.get("current_call").is_null(), "{a:?}");
    assert_eq!(a.get("state").as_str(), Some("available"), "{a:?}");
}

// ---------------------------------------------------------------------------------------
// 9.

#[test]
fn operator_holds_and_resumes() {
    let (server, sup) = start(&["ana"]);
    let work = tempfile::tempdir().unwrap();
    let heard = work.path().join("ana-heard.wav");
    let mut ana = ready_operator(
        &server,
        &sup,
        "ana",
        &[
            "--answer-after-ms",
            "300",
            "--record",
            heard.to_str().unwrap(),
        ],
    );
    let scenario = PcapScenario::new("uac_operator_pcap", &caller_timeline(40_000));
    let caller = scenario.spawn(&server, 0);
    ana.wait("confirmed", Duration::from_secs(30), &server);
    // After the notice (about 3 s) the two are bridged; then hold for 2 s and resume.
    let since = server.log_len();
    thread::sleep(Duration::from_secs(5));
    ana.command("hold");
    ana.wait("hold_sent", EVENT, &server);
    assert!(
        server.wait_for_log(since, &["operator re-INVITE", "SendOnly"], EVENT),
        "hold not seen\n{}\n{}",
        ana.report(),
        server.report()
    );
    thread::sleep(Duration::from_secs(2));
    let resumed = server.log_len();
    ana.command("unhold");
    ana.wait("unhold_sent", EVENT, &server);
    assert!(
        server.wait_for_log(resumed, &["operator re-INVITE", "SendRecv"], EVENT),
        "resume not seen\n{}\n{}",
        ana.report(),
        server.report()
    );
    thread::sleep(Duration::from_secs(3));
    ana.command("hangup");
    ana.wait("recorded", EVENT, &server);
    caller.wait().assert_passed(&server);
    // After the resume the operator hears the caller again.
    expect_tone_in(&heard, None, 1000, 400, Some(2.0), &ana.report());
    let call = ended_call(&server, &sup);
    assert_eq!(
        call.get("disposition").as_str(),
        Some("operator"),
        "{call:?}"
    );
    drop(scenario.dir);
}
