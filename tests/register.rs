//! Softphone registration end to end: `hotline user add` makes the operator,
//! `hotline serve` runs, sipp registers.
//!
//! sipp 3.6.1 (Debian's `sip-tester`) answers only MD5 challenges with its
//! `[authentication]` keyword, and only the first challenge of a 401; ours
//! puts SHA-256 first (RFC 8760 §2.4). So a first sipp run takes the 401
//! (`uac_register_401`), the test computes the Authorization values from its
//! nonce (stateless and valid for 5 minutes, so later runs can use it with
//! `nc` counting up) with `hotline_sip::digest`, for SHA-256 or MD5, and
//! hands them to the next scenario as `-key` values.
//!
//! A real softphone (baresip) registers too, when it is installed.

mod common;

use std::time::Duration;

use common::{Config, Server, Setup, Sipp, TracedMessage};
use hotline_sip::digest::{Algorithm, Challenge, NonceCount, Qop, ha1};
use hotline_sip::message::Method;

/// `sip.domain` (the default): the realm and the AORs' host.
const DOMAIN: &str = "hotline.local";
const ANA_PASSWORD: &str = "ana-softphone-pw";
const SAM_PASSWORD: &str = "sam-supervisor-pw";
const LOG_WAIT: Duration = Duration::from_secs(10);

/// A server's setup with operator `ana` and supervisor `sam`.
fn setup() -> Setup {
    setup_with(&Config::default())
}

/// [`setup`] with another config.
fn setup_with(config: &Config) -> Setup {
    let setup = Setup::new(config);
    add_user(&setup, "ana", "operator", ANA_PASSWORD);
    add_user(&setup, "sam", "supervisor", SAM_PASSWORD);
    setup
}

fn add_user(setup: &Setup, name: &str, role: &str, password: &str) {
    let out = setup
        .admin(
            &["user", "add", name, "--role", role, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
        .expect_ok()
        .to_owned();
    assert!(out.contains(&format!("user {name} created")), "{out}");
}

/// A sipp run of `scenario` as `user`, with `-key NAME VALUE` for each of `keys`.
fn sipp<'a>(server: &'a Server, scenario: &str, user: &str, keys: &[(&str, &str)]) -> Sipp<'a> {
    let mut s = server
        .sipp(scenario)
        .arg("-key")
        .arg("user")
        .arg(user)
        .arg("-key")
        .arg("domain")
        .arg(DOMAIN);
    for (k, v) in keys {
        s = s.arg("-key").arg(k).arg(v);
    }
    s
}

/// Every value of the header `name` (case-insensitive), in order.
fn headers(m: &TracedMessage, name: &str) -> Vec<String> {
    m.text
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// The header names of a message, in order.
fn header_names(m: &TracedMessage) -> Vec<String> {
    m.text
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, _)| k.trim().to_ascii_lowercase())
        .collect()
}

/// The responses sipp received with this status to REGISTER, in order.
fn received(run: &common::SippRun, status: u16) -> Vec<TracedMessage> {
    run.messages()
        .into_iter()
        .filter(|m| !m.sent && m.is_response(status, "REGISTER"))
        .collect()
}

/// The challenges of a 401.
fn challenges(m: &TracedMessage) -> Vec<Challenge> {
    headers(m, "WWW-Authenticate")
        .iter()
        .map(|v| Challenge::parse(v.as_bytes()).expect("our challenge parses"))
        .collect()
}

/// Runs `uac_register_401` as `user` (over TCP if `tcp`); returns the 401.
fn first_401(server: &Server, user: &str, tcp: bool) -> TracedMessage {
    let mut s = sipp(server, "uac_register_401", user, &[]);
    if tcp {
        s = s.tcp();
    }
    let run = s.run();
    run.assert_passed(server);
    let mut got = received(&run, 401);
    run.check(server, got.len() == 1, "one 401");
    got.remove(0)
}

/// The challenge for `algorithm` in a 401.
fn challenge_for(m: &TracedMessage, algorithm: Algorithm) -> Challenge {
    challenges(m)
        .into_iter()
        .find(|c| c.algorithm == algorithm)
        .unwrap_or_else(|| panic!("no {algorithm:?} challenge in\n{}", m.text))
}

/// The Authorization value answering `challenge` as `user` with `password`.
fn authorization(challenge: &Challenge, user: &str, password: &str, nc: u32) -> String {
    let key = ha1(challenge.algorithm, user, DOMAIN, password);
    challenge
        .answer(
            user,
            &key,
            &Method::Register,
            &format!("sip:{DOMAIN}"),
            &format!("e2e{nc:05}"),
            NonceCount::new(nc),
        )
        .to_string()
}

/// Registers and un-registers `ana` with credentials for `algorithm`.
fn register_and_unregister(server: &Server, algorithm: Algorithm, tcp: bool) {
    let challenge = challenge_for(&first_401(server, "ana", tcp), algorithm);
    let auth1 = authorization(&challenge, "ana", ANA_PASSWORD, 1);
    let auth2 = authorization(&challenge, "ana", ANA_PASSWORD, 2);
    let since = server.log_len();
    let mut s = sipp(
        server,
        "uac_register",
        "ana",
        &[("auth1", &auth1), ("auth2", &auth2)],
    );
    if tcp {
        s = s.tcp();
    }
    let run = s.run();
    run.assert_passed(server);
    let oks = received(&run, 200);
    run.check(
        server,
        oks.len() == 2,
        "200 to the REGISTER and to the un-REGISTER",
    );

    // Registered: the binding comes back with its expiry, and the Date.
    let contacts = headers(&oks[0], "Contact");
    run.check(server, contacts.len() == 1, "one Contact in the first 200");
    let contact = &contacts[0];
    run.check(
        server,
        contact.starts_with("<sip:ana@127.0.0.1:"),
        &format!("the binding is sipp's contact: {contact}"),
    );
    let expires: u32 = contact
        .split(";expires=")
        .nth(1)
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    run.check(
        server,
        (590..=600).contains(&expires),
        &format!("expires={expires} (600 asked)"),
    );
    run.check(
        server,
        !headers(&oks[0], "Date").is_empty(),
        "a Date header",
    );
    // Un-registered: no binding left.
    run.check(
        server,
        headers(&oks[1], "Contact").is_empty(),
        "no Contact once un-registered",
    );

    let log_has = |needle: &str| server.wait_for_log(since, &[needle], LOG_WAIT);
    assert!(
        log_has("operator registered") && log_has("operator unregistered"),
        "registration not logged\n{}",
        server.report()
    );
    let log = server.log();
    let tail = &log[since..];
    assert!(
        tail.lines()
            .any(|l| l.contains("operator registered") && l.contains("operator=ana")),
        "{}",
        server.report()
    );
    assert!(
        !log.contains("hotline auth failure"),
        "a good password is no failure\n{}",
        server.report()
    );
}

#[test]
fn challenge_has_sha256_then_md5() {
    let server = setup().start();
    let resp = first_401(&server, "ana", false);
    let ch = challenges(&resp);
    assert_eq!(ch.len(), 2, "{}", resp.text);
    assert_eq!(ch[0].algorithm, Algorithm::Sha256, "SHA-256 first");
    assert_eq!(ch[1].algorithm, Algorithm::Md5);
    for c in &ch {
        assert_eq!(c.realm, DOMAIN);
        assert_eq!(c.qop, Some(Qop::Auth));
        assert!(!c.stale);
    }
    assert_eq!(ch[0].nonce, ch[1].nonce, "one nonce for both");
    assert!(resp.tag_in_to().is_some(), "our To tag");
}

#[test]
fn operator_registers_and_unregisters_with_md5() {
    let server = setup().start();
    register_and_unregister(&server, Algorithm::Md5, false);
}

#[test]
fn operator_registers_and_unregisters_with_sha256_over_tcp() {
    let server = setup().start();
    register_and_unregister(&server, Algorithm::Sha256, true);
}

#[test]
fn five_wrong_passwords_lock_the_user_out() {
    let server = setup().start();
    let challenge = challenge_for(&first_401(&server, "ana", false), Algorithm::Md5);
    let bad: Vec<String> = (1..=5)
        .map(|nc| authorization(&challenge, "ana", "not-the-password", nc))
        .collect();
    let good = authorization(&challenge, "ana", ANA_PASSWORD, 6);
    let keys: Vec<(String, &str)> = bad
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("bad{}", i + 1), v.as_str()))
        .chain([("good".to_owned(), good.as_str())])
        .collect();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    // 401 four times, 403 at the fifth failure, 403 for the right password.
    let run = sipp(&server, "uac_register_lockout", "ana", &keys).run();
    run.assert_passed(&server);
    run.check(&server, received(&run, 200).is_empty(), "never registered");

    let line = "hotline auth failure source=127.0.0.1 user=\"ana\" reason=";
    assert!(
        server.wait_for_log(0, &[&format!("{line}locked")], LOG_WAIT),
        "no lockout line\n{}",
        server.report()
    );
    let log = server.log();
    let count = |reason: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("{line}{reason}")))
            .collect::<Vec<_>>()
    };
    let bad_lines = count("bad-password");
    assert_eq!(bad_lines.len(), 5, "five failures\n{}", server.report());
    assert!(
        bad_lines.iter().all(|l| l.contains("WARN")),
        "logged at warn: {bad_lines:?}"
    );
    assert_eq!(count("locked").len(), 1, "{}", server.report());
    // The fail2ban filter of `auth_failure_line`'s docs matches each line.
    for l in &bad_lines {
        let at = l.find("hotline auth failure source=").unwrap();
        let rest = &l[at + "hotline auth failure source=".len()..];
        assert!(
            rest.starts_with("127.0.0.1 user=\"ana\" reason=bad-password"),
            "{l}"
        );
    }
}

#[test]
fn unknown_users_and_supervisors_get_the_operators_401() {
    let server = setup().start();
    // The first REGISTER: the same challenge whoever asks.
    let firsts: Vec<TracedMessage> = ["ana", "ghost", "sam"]
        .iter()
        .map(|u| first_401(&server, u, false))
        .collect();
    let shape = |m: &TracedMessage| {
        let ch = challenges(m);
        (
            m.status(),
            header_names(m),
            ch.iter()
                .map(|c| {
                    (
                        c.algorithm,
                        c.realm.clone(),
                        c.qop,
                        c.opaque.clone(),
                        c.nonce.len(),
                    )
                })
                .collect::<Vec<_>>(),
        )
    };
    for m in &firsts[1..] {
        assert_eq!(
            shape(m),
            shape(&firsts[0]),
            "{}\n---\n{}",
            m.text,
            firsts[0].text
        );
    }

    // Credentials that fail: a wrong password, a user who does not exist,
    // and a supervisor with the right password (not an operator).
    let md5 = challenge_for(&firsts[0], Algorithm::Md5);
    let mut answers = Vec::new();
    for (i, (user, password)) in [
        ("ana", "not-the-password"),
        ("ghost", "whatever-it-is"),
        ("sam", SAM_PASSWORD),
    ]
    .into_iter()
    .enumerate()
    {
        let auth = authorization(&md5, user, password, i as u32 + 1);
        let run = sipp(&server, "uac_register_wrong", user, &[("auth", &auth)]).run();
        run.assert_passed(&server);
        answers.push(received(&run, 401).remove(0));
    }
    for m in &answers {
        assert_eq!(shape(m), shape(&answers[0]), "{}", m.text);
        assert_eq!(shape(m), shape(&firsts[0]), "{}", m.text);
    }
    assert!(server.wait_for_log(0, &["user=\"sam\" reason="], LOG_WAIT));
    let log = server.log();
    for (user, reason) in [
        ("ana", "bad-password"),
        ("ghost", "unknown-user"),
        ("sam", "unknown-user"),
    ] {
        let line = format!("hotline auth failure source=127.0.0.1 user=\"{user}\" reason={reason}");
        assert!(log.contains(&line), "no `{line}`\n{}", server.report());
    }
    assert!(!log.contains("operator registered"), "{}", server.report());
}

/// Where Debian puts baresip's modules.
const BARESIP_MODULES: &str = "/usr/lib/baresip/modules";

/// A UDP relay between a softphone and the server that drops the SHA-256
/// challenge from 401s, so the phone sees an MD5-only offer. Runs until the
/// returned flag is set (or a minute has passed).
fn md5_only_relay(
    server: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the relay");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let addr = socket.local_addr().expect("relay address");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut phone = None;
        let mut buf = vec![0u8; 65536];
        while !flag.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            if from == server {
                let text = String::from_utf8_lossy(&buf[..n]);
                let kept: Vec<&str> = text
                    .split("\r\n")
                    .filter(|l| !(l.starts_with("WWW-Authenticate:") && l.contains("SHA-256")))
                    .collect();
                if let Some(to) = phone {
                    let _ = socket.send_to(kept.join("\r\n").as_bytes(), to);
                }
            } else {
                phone = Some(from);
                let _ = socket.send_to(&buf[..n], server);
            }
        }
    });
    (addr, stop)
}

/// Registers operator `ana` with baresip (`auth_pass` in its accounts file),
/// through `md5_only_relay` if `md5_only`; checks baresip's `200 OK` and the
/// server's log. Skipped (with a note) when baresip is not installed.
fn baresip_registers(md5_only: bool) {
    use std::process::{Command, Stdio};
    if Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
        || !std::path::Path::new(BARESIP_MODULES)
            .join("account.so")
            .is_file()
    {
        eprintln!("baresip is not installed (apt-get install baresip-core): skipped");
        return;
    }
    // Through the relay: the default server (SHA-256 and MD5 offered) behind a relay that
    // drops the SHA-256 challenge. Directly: the server configured to offer MD5 only.
    let server = if md5_only {
        setup().start()
    } else {
        setup_with(&Config::default().sip_line(r#"digest_algorithms = ["MD5"]"#)).start()
    };
    let (target, stop) = if md5_only {
        let (relay, stop) = md5_only_relay(server.udp);
        (relay, Some(stop))
    } else {
        (server.udp, None)
    };
    let dir = tempfile::Builder::new()
        .prefix("baresip-")
        .tempdir()
        .expect("a temp dir for baresip");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    std::fs::write(
        dir.path().join("config"),
        format!(
            "sip_listen\t127.0.0.1:{port}\n\
             module_path\t{BARESIP_MODULES}\n\
             module_tmp\tuuid.so\n\
             module_tmp\taccount.so\n\
             module\tg711.so\n\
             audio_player\taufile,/dev/null\n\
             audio_source\taufile,/dev/null\n"
        ),
    )
    .expect("write baresip's config");
    std::fs::write(
        dir.path().join("accounts"),
        format!(
            "<sip:ana@{DOMAIN}>;auth_pass={ANA_PASSWORD};outbound=\"sip:{target}\";regint=600\n"
        ),
    )
    .expect("write baresip's accounts");
    let log_path = dir.path().join("baresip.log");
    let log = std::fs::File::create(&log_path).expect("baresip's log");
    let since = server.log_len();
    // `-t 6`: quit (un-registering) after 6 s; killed after 30 s whatever happens.
    let mut child = Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args(["-t", "6", "-s"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log"))
        .stderr(log)
        .spawn()
        .expect("start baresip");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    if let Some(stop) = stop {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let report = || {
        format!(
            "--- baresip ({status:?}):\n{}\n{}",
            common::tail(&text, 8000),
            server.report()
        )
    };
    assert!(
        text.lines().any(|l| l.contains("ana@hotline.local")
            && l.contains("200 OK")
            && l.contains("binding")),
        "baresip did not register\n{}",
        report()
    );
    assert!(
        server.wait_for_log(since, &["operator registered operator=ana"], LOG_WAIT),
        "{}",
        report()
    );
    assert!(
        server.wait_for_log(since, &["operator unregistered operator=ana"], LOG_WAIT),
        "baresip un-registers when it quits\n{}",
        report()
    );
    assert!(
        !server.log().contains("hotline auth failure"),
        "{}",
        report()
    );
}

/// Debian bookworm's baresip 1.0.0 (libre 1.1) answers MD5 challenges only,
/// and gives up on a 401 that offers any other algorithm (ENOSYS from
/// libre's `sip_auth`), even next to an MD5 one: it registers when it is
/// offered MD5 alone.
#[test]
fn baresip_registers_when_offered_md5() {
    baresip_registers(true);
}

/// The same straight to a server configured with `sip.digest_algorithms =
/// ["MD5"]` (libre 1.x fails with "Register: Function not implemented" when
/// the 401 offers SHA-256 too).
#[test]
fn baresip_registers_directly_when_the_server_offers_md5_only() {
    baresip_registers(false);
}
