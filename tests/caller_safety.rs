//! Caller safety, end to end (issue 12): the quick-exit key and the keypad-only path of
//! the shipped flow, with real peers.
//!
//! - PJSIP (`tests/peers/operator.py` in caller mode) is the caller whose received audio
//!   is checked: after `*` it must hear the decoy (`prompts/<lang>/decoy.wav`, found by
//!   normalised cross-correlation in what it recorded) and no hotline prompt any more.
//!   Its keys are sent when the server's call history (`/api/calls/{id}`) shows the call
//!   in the node the test wants, so the test does not guess prompt lengths.
//! - sipp plays a caller who presses `*` in the middle of a message: the message is kept.
//!
//! The outcome is read back from the API: `marks` (`quick-exit`, `silent`), `answers`,
//! the events.

mod common;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::audio::{best_match, prompt, read_wav};
use common::http::api;
use common::json::Json;
use common::pcap::Timeline;
use common::softphone::Softphone;
use common::{Config, PcapScenario, Server, Setup};

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(30);
/// Samples per second of every recording here.
const RATE: usize = 8000;
/// A piece of the decoy matches this well at least (G.711 and PJSIP's jitter buffer
/// between).
const MATCH: f64 = 0.9;
/// The share of what the caller heard after the decoy began that must be the decoy.
const SHARE: f64 = 0.8;

/// A server (default config: no operator) and a supervisor's API token.
fn start() -> (Server, String) {
    let setup = Setup::new(&Config::default());
    setup
        .admin(
            &[
                "user",
                "add",
                "sup",
                "--role",
                "supervisor",
                "--password-stdin",
            ],
            Some("sup-password-1\n"),
        )
        .expect_ok();
    let token = setup
        .admin(&["token", "create", "sup"], None)
        .expect_ok()
        .trim()
        .to_owned();
    (setup.start(), token)
}

/// The newest call's id, once there is one.
fn newest_call(server: &Server, token: &str) -> String {
    let end = Instant::now() + STEP;
    loop {
        let calls = api(server, "GET", "/api/calls?limit=1", token, None);
        if let Some(id) = calls
            .get("calls")
            .as_array()
            .and_then(|a| a.first())
            .and_then(|c| c.get("id").as_str())
        {
            return id.to_owned();
        }
        assert!(Instant::now() < end, "no call\n{}", server.report());
        thread::sleep(Duration::from_millis(100));
    }
}

fn call(server: &Server, token: &str, id: &str) -> Json {
    api(server, "GET", &format!("/api/calls/{id}"), token, None)
}

/// Whether the call's history has an event of `kind` with `detail`.
fn has_event(call: &Json, kind: &str, detail: &str) -> bool {
    call.get("events")
        .as_array()
        .unwrap_or_default()
        .iter()
        .any(|e| e.get("kind").as_str() == Some(kind) && e.get("detail").as_str() == Some(detail))
}

/// Waits until the call entered `node`.
fn wait_node(server: &Server, token: &str, id: &str, node: &str) {
    let end = Instant::now() + Duration::from_secs(90);
    while !has_event(&call(server, token, id), "node", node) {
        assert!(
            Instant::now() < end,
            "call {id} never reached node {node}\n{:?}\n{}",
            call(server, token, id),
            server.report()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The call once it ended (outcome stored).
fn ended(server: &Server, token: &str, id: &str) -> Json {
    let end = Instant::now() + STEP;
    loop {
        let c = call(server, token, id);
        if c.get("ended_at").as_str().is_some() && c.get("disposition").as_str().is_some() {
            return c;
        }
        assert!(
            Instant::now() < end,
            "call {id} never ended\n{}",
            server.report()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// A PJSIP caller of the hotline recording what it hears into `heard`.
fn pjsua_caller(server: &Server, heard: &Path, extra: &[&str]) -> Softphone {
    let mut args: Vec<String> = [
        "--call",
        &format!("sip:0800@{}", server.udp),
        "--record",
        heard.to_str().expect("utf-8 path"),
        "--timeout-s",
        "150",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Softphone::start("caller", &args)
}

/// Sends `digits` now and returns when, in the caller's recording, it was sent
/// (seconds since the media came up, when the recorder started).
fn press(caller: &mut Softphone, server: &Server, digits: &str) -> f64 {
    let before = caller
        .events()
        .iter()
        .filter(|e| e.get("event").as_str() == Some("dtmf_sent"))
        .count();
    caller.command(&format!("dtmf {digits}"));
    let end = Instant::now() + STEP;
    loop {
        let sent: Vec<Json> = caller
            .events()
            .into_iter()
            .filter(|e| e.get("event").as_str() == Some("dtmf_sent"))
            .collect();
        if sent.len() > before {
            let media = caller.wait("media_active", STEP, server);
            let t = sent[before].get("t_ms").as_f64().unwrap_or(0.0);
            let m = media.get("t_ms").as_f64().unwrap_or(0.0);
            return (t - m) / 1000.0;
        }
        assert!(
            Instant::now() < end,
            "no dtmf_sent for {digits}\n{}",
            caller.report()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Hangs the caller up and returns what it heard (8 kHz mono samples).
fn hang_up_and_read(caller: &mut Softphone, server: &Server) -> Vec<i16> {
    caller.command("hangup");
    let rec = caller.wait("recorded", STEP, server);
    let _ = caller.wait_exit(Duration::from_secs(10));
    let path = rec.get("path").as_str().expect("recorded path").to_owned();
    let wav = read_wav(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (wav.sample_rate, wav.channels),
        (8000, 1),
        "the caller's recording"
    );
    wav.samples
}

/// Checks the caller heard the decoy start within 1.5 s of the key at `key_s`, and from
/// there to the hang-up nothing but the decoy: the whole stretch is the decoy's audio
/// (normalised correlation with the file, sample-aligned), so no hotline prompt was
/// heard after the key.
#[track_caller]
fn expect_decoy(heard: &[i16], key_s: f64, lang: &str, context: &str) {
    let key = (key_s * RATE as f64) as usize;
    assert!(
        heard.len() > key + 4 * RATE,
        "the caller's recording ({} s) ends before 4 s after the key at {key_s:.2} s\n{context}",
        heard.len() / RATE
    );
    let after = &heard[key..];
    // 100 ms pieces of the decoy's first 1.5 s, searched in the first 4 s: the first
    // that is found places the decoy (short pieces: a frame skipped on the way spoils
    // only the pieces it falls in).
    let decoy = prompt(lang, "decoy").samples;
    let window = &after[..(4 * RATE).min(after.len())];
    let mut best = (0usize, 0usize, 0.0f64);
    for offset in (RATE / 2..RATE * 3 / 2).step_by(RATE / 10) {
        let probe = &decoy[offset..offset + RATE / 10];
        if let Some((at, score)) = best_match(window, probe)
            && score > best.2
        {
            best = (at, offset, score);
        }
        if best.2 >= MATCH {
            break;
        }
    }
    let (at, offset, score) = best;
    assert!(
        score >= MATCH,
        "the decoy is not in what the caller heard after the key: best correlation {score:.3}\n{context}"
    );
    // Frames lost on the way may shift the estimate by a few tens of ms.
    let start = at.saturating_sub(offset);
    let start_s = (at as f64 - offset as f64) / RATE as f64;
    assert!(
        (-0.3..=1.5).contains(&start_s),
        "the decoy starts {start_s:.2} s after the key; expected at once\n{context}"
    );
    // Everything from the decoy's start to the hang-up (within its first loop) is it.
    let heard_after = &after[start..];
    let n = heard_after.len().min(decoy.len());
    let share = decoy_share(&heard_after[..n], &decoy);
    eprintln!(
        "decoy ({lang}) heard {start_s:.2} s after the key at {key_s:.2} s; {:.0} % of the \
         {:.1} s after it are the decoy",
        share * 100.0,
        n as f64 / RATE as f64
    );
    assert!(
        share >= SHARE,
        "after the decoy began the caller heard something else: only {:.0} % of it matches \
         decoy.wav\n{context}",
        share * 100.0
    );
}

/// Pieces of 100 ms of what the caller heard, each searched in `decoy` around where it
/// should be (± 250 ms, following the drift of the good matches); the share of pieces
/// with sound that match (correlation at least [`MATCH`]). Short pieces and the wide
/// search let frames that the server's pacer skipped on a loaded machine, or that the
/// caller's jitter buffer dropped or made up, cost only the pieces they fall in.
fn decoy_share(heard: &[i16], decoy: &[i16]) -> f64 {
    const PIECE: usize = RATE / 10;
    const SLACK: isize = (RATE / 4) as isize;
    let (mut voiced, mut good) = (0u32, 0u32);
    let mut drift: isize = 0;
    for (i, got) in heard.chunks_exact(PIECE).enumerate() {
        if got.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0) < 1000 {
            continue;
        }
        voiced += 1;
        let at = (i * PIECE) as isize;
        let from = (at + drift - SLACK).clamp(0, decoy.len() as isize) as usize;
        let to =
            ((at + drift + PIECE as isize + SLACK).max(from as isize) as usize).min(decoy.len());
        if let Some((lag, score)) = best_match(&decoy[from..to], got)
            && score >= MATCH
        {
            good += 1;
            drift = (from + lag) as isize - at;
        }
    }
    if voiced < 20 {
        return 0.0;
    }
    f64::from(good) / f64::from(voiced)
}

/// The check can fail: the hotline's own prompts, played where the decoy should be,
/// are far from the share it asks for.
#[test]
fn the_decoy_check_tells_the_decoy_from_the_prompts() {
    for (lang, id) in [
        ("es", "welcome"),
        ("es", "main-menu"),
        ("qu", "main-menu"),
        ("es", "message-saved"),
        ("es", "information"),
    ] {
        let decoy = prompt(lang, "decoy").samples;
        let other = prompt(lang, id).samples;
        let n = other.len().min(decoy.len());
        let share = decoy_share(&other[..n], &decoy);
        assert!(share < 0.2, "{lang}/{id} passes for the decoy: {share:.2}");
    }
    let decoy = prompt("es", "decoy").samples;
    assert_eq!(decoy_share(&decoy, &decoy), 1.0);
}

// ---------------------------------------------------------------------------------------
// Quick exit

/// `*` during the welcome: the decoy at once, the welcome's rest never; the call is
/// marked `quick-exit`.
#[test]
fn quick_exit_during_the_welcome() {
    let (server, token) = start();
    let dir = tempfile::tempdir().unwrap();
    let mut caller = pjsua_caller(&server, &dir.path().join("heard.wav"), &[]);
    caller.wait("media_active", STEP, &server);
    let id = newest_call(&server, &token);
    wait_node(&server, &token, &id, "welcome");
    thread::sleep(Duration::from_millis(1500));
    let key_s = press(&mut caller, &server, "*");
    thread::sleep(Duration::from_secs(6));
    let heard = hang_up_and_read(&mut caller, &server);
    let c = ended(&server, &token, &id);
    let context = format!("{c:?}\n{}\n{}", caller.report(), server.report());
    // The welcome is bilingual: the same file in both directories.
    expect_decoy(&heard, key_s, "es", &context);
    assert_eq!(strings(c.get("marks")), ["quick-exit"], "{context}");
    assert_eq!(
        c.get("disposition").as_str(),
        Some("abandoned"),
        "{context}"
    );
    assert!(has_event(&c, "quick-exit", "welcome"), "{context}");
}

/// `*` in the main menu of a Quechua call: the Quechua decoy, no menu.
#[test]
fn quick_exit_in_the_menu() {
    let (server, token) = start();
    let dir = tempfile::tempdir().unwrap();
    let mut caller = pjsua_caller(&server, &dir.path().join("heard.wav"), &[]);
    caller.wait("media_active", STEP, &server);
    let id = newest_call(&server, &token);
    wait_node(&server, &token, &id, "welcome");
    press(&mut caller, &server, "2");
    wait_node(&server, &token, &id, "main-menu");
    thread::sleep(Duration::from_millis(1000));
    let key_s = press(&mut caller, &server, "*");
    thread::sleep(Duration::from_secs(6));
    let heard = hang_up_and_read(&mut caller, &server);
    let c = ended(&server, &token, &id);
    let context = format!("{c:?}\n{}\n{}", caller.report(), server.report());
    expect_decoy(&heard, key_s, "qu", &context);
    assert_eq!(strings(c.get("marks")), ["quick-exit"], "{context}");
    assert_eq!(c.get("language").as_str(), Some("qu"), "{context}");
    assert!(has_event(&c, "quick-exit", "main-menu"), "{context}");
}

/// `*` while a message is recorded: the decoy, and the message is kept (a recording of
/// about the time from the beep to the key, disposition `message`).
#[test]
fn quick_exit_mid_message_keeps_the_message() {
    let (server, token) = start();
    let dir = tempfile::tempdir().unwrap();
    let voice = dir.path().join("voice.wav");
    std::fs::copy(
        common::workspace_root().join("prompts/es/information.wav"),
        &voice,
    )
    .unwrap();
    let mut caller = pjsua_caller(
        &server,
        &dir.path().join("heard.wav"),
        &["--play", voice.to_str().unwrap()],
    );
    caller.wait("media_active", STEP, &server);
    let id = newest_call(&server, &token);
    wait_node(&server, &token, &id, "welcome");
    press(&mut caller, &server, "1");
    wait_node(&server, &token, &id, "main-menu");
    press(&mut caller, &server, "2");
    // The recording runs once the instructions and the beep played.
    let end = Instant::now() + STEP;
    while !call(&server, &token, &id)
        .get("events")
        .as_array()
        .unwrap_or_default()
        .iter()
        .any(|e| e.get("kind").as_str() == Some("recording-started"))
    {
        assert!(Instant::now() < end, "no recording\n{}", server.report());
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_secs(4));
    let key_s = press(&mut caller, &server, "*");
    thread::sleep(Duration::from_secs(6));
    let heard = hang_up_and_read(&mut caller, &server);
    let c = ended(&server, &token, &id);
    let context = format!("{c:?}\n{}\n{}", caller.report(), server.report());
    expect_decoy(&heard, key_s, "es", &context);
    assert_eq!(c.get("disposition").as_str(), Some("message"), "{context}");
    assert_eq!(strings(c.get("marks")), ["quick-exit"], "{context}");
    assert!(has_event(&c, "quick-exit", "message"), "{context}");
    let recordings = strings(c.get("recordings"));
    assert_eq!(recordings.len(), 1, "{context}");
    let list = api(
        &server,
        "GET",
        &format!("/api/recordings?call_id={id}"),
        &token,
        None,
    );
    let rec = list
        .get("recordings")
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Json::Null);
    let ms = rec.get("duration_ms").as_f64().unwrap_or(0.0);
    assert!(
        (3000.0..=6500.0).contains(&ms),
        "the kept message lasts {ms} ms; expected about 4 s (beep to key)\n{rec:?}\n{context}"
    );
}

/// sipp: a caller who talks and presses `*` during the message, then stays on the line
/// (hearing the decoy) until it hangs up; the message is kept, marked `quick-exit`.
#[test]
fn sipp_quick_exit_mid_message_keeps_the_message() {
    let (server, token) = start();
    // Spanish at 1 s, "2" typed ahead during the recording notice (message), speech from
    // 16 s, `*` at 20 s, then silence until the BYE at 26 s.
    let speech = prompt("es", "information").samples[4000..4000 + 4 * RATE].to_vec();
    let mut t = Timeline::new();
    t.until(1000).digit('1', 100).until(2500).digit('2', 100);
    t.until(16_000).audio(&speech).until(20_000).digit('*', 100);
    t.silence(5_000);
    let scenario = PcapScenario::new("uac_media_pcap", &t);
    let run = scenario.spawn(&server, 26_000).wait();
    run.assert_passed(&server);
    let id = newest_call(&server, &token);
    let c = ended(&server, &token, &id);
    let context = format!("{c:?}\n{}", server.report());
    assert_eq!(c.get("disposition").as_str(), Some("message"), "{context}");
    assert_eq!(strings(c.get("marks")), ["quick-exit"], "{context}");
    assert!(has_event(&c, "quick-exit", "message"), "{context}");
    assert_eq!(strings(c.get("recordings")).len(), 1, "{context}");
}

// ---------------------------------------------------------------------------------------
// Callers who cannot speak

/// A caller who says and presses nothing through the menus is offered the keypad path;
/// four answers later the operator queue (nobody there: the no-operator menu); the
/// answers are in `/api/calls/{id}` while the call is still up, and the call is not
/// `silent` (it pressed keys).
#[test]
fn a_silent_caller_gets_the_keypad_questions() {
    let (server, token) = start();
    let dir = tempfile::tempdir().unwrap();
    let mut caller = pjsua_caller(&server, &dir.path().join("heard.wav"), &[]);
    caller.wait("media_active", STEP, &server);
    let id = newest_call(&server, &token);
    wait_node(&server, &token, &id, "cannot-talk");
    press(&mut caller, &server, "1");
    for (node, key) in [
        ("ask-danger", "1"),
        ("ask-who", "2"),
        ("ask-child", "1"),
        ("ask-region", "2"),
    ] {
        wait_node(&server, &token, &id, node);
        thread::sleep(Duration::from_millis(500));
        press(&mut caller, &server, key);
    }
    wait_node(&server, &token, &id, "operator");
    let live = call(&server, &token, &id);
    let answers: Vec<(String, String)> = live
        .get("answers")
        .as_array()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            (
                a.get("question").as_str().unwrap_or_default().to_owned(),
                a.get("answer").as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("En peligro ahora", "sí"),
        ("Sobre quién", "otra persona"),
        ("Menor de edad", "sí"),
        ("Región", "Cusco"),
    ]
    .iter()
    .map(|(q, a)| ((*q).to_owned(), (*a).to_owned()))
    .collect();
    assert_eq!(answers, expected, "{live:?}\n{}", server.report());
    assert!(live.get("ended_at").as_str().is_none(), "{live:?}");
    let _ = hang_up_and_read(&mut caller, &server);
    let c = ended(&server, &token, &id);
    assert!(strings(c.get("marks")).is_empty(), "{c:?}");
    assert!(has_event(&c, "no-input", "main-menu"), "{c:?}");
}

/// A caller who stays silent to the end is classified `silent`, and calling silently
/// again is never blocked: each call is answered and marked.
#[test]
fn silent_calls_are_marked_and_the_call_goes_on() {
    let (server, token) = start();
    // Hung up in the main menu, twice, from the same number (sipp's From).
    for _ in 0..2 {
        let mut t = Timeline::new();
        t.silence(12_000);
        let scenario = PcapScenario::new("uac_media_pcap", &t);
        scenario
            .spawn(&server, 12_000)
            .wait()
            .assert_passed(&server);
        let id = newest_call(&server, &token);
        let c = ended(&server, &token, &id);
        assert_eq!(
            strings(c.get("marks")),
            ["silent"],
            "{c:?}\n{}",
            server.report()
        );
        assert_eq!(c.get("disposition").as_str(), Some("abandoned"), "{c:?}");
    }
}
