//! The SIP behaviour of `hotline serve`, end to end over real sockets, driven by sipp
//! (Debian `sip-tester` 3.6.1) with the scenarios in `tests/sipp/`.
//!
//! Each test starts its own server on free ports with its own temp config and data dir, so the
//! tests run in parallel. T1 is 100 ms in every test, so 64*T1 is 6.4 s.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Config, Server, TracedMessage, seconds_between};

/// How long to wait for sipp to get a call established (its ACK sent).
const ESTABLISH: Duration = Duration::from_secs(10);

fn received(msgs: &[TracedMessage], pred: impl Fn(&TracedMessage) -> bool) -> Vec<&TracedMessage> {
    msgs.iter().filter(|m| !m.sent && pred(m)).collect()
}

fn sent(msgs: &[TracedMessage], pred: impl Fn(&TracedMessage) -> bool) -> Vec<&TracedMessage> {
    msgs.iter().filter(|m| m.sent && pred(m)).collect()
}

#[test]
fn options_gets_200_with_allow_accept_supported() {
    let server = Server::start(&Config::default());
    server.sipp("uac_options").run().assert_passed(&server);
}

#[test]
fn call_answered_with_g711_then_caller_hangs_up() {
    let server = Server::start(&Config::default());
    let run = server.sipp("uac_call_bye").duration_ms(1000).run();
    run.assert_passed(&server);
    let msgs = run.messages();
    let ok = received(&msgs, |m| m.is_response(200, "INVITE"));
    run.check(
        &server,
        ok.iter().all(|m| m.header("Contact").is_some()),
        "the 200 to the INVITE has no Contact",
    );
}

#[test]
fn call_over_tcp() {
    let server = Server::start(&Config::default());
    let run = server.sipp("uac_call_bye").tcp().duration_ms(500).run();
    run.assert_passed(&server);
    run.check(
        &server,
        run.message_log.contains("TCP message received"),
        "sipp did not receive over TCP",
    );
}

#[test]
fn cancel_before_answer_gets_200_and_487() {
    let server = Server::start(&Config::default().answer_delay_ms(2000));
    let run = server.sipp("uac_cancel").run();
    run.assert_passed(&server);
    let msgs = run.messages();
    run.check(
        &server,
        received(&msgs, |m| m.is_response(200, "INVITE")).is_empty(),
        "the server answered (200) the cancelled INVITE",
    );
}

#[test]
fn retransmitted_invite_is_answered_once() {
    // The answer waits 300 ms, so the retransmission arrives while the INVITE is proceeding.
    let server = Server::start(&Config::default().answer_delay_ms(300));
    let run = server.sipp("uac_retrans_invite").run();
    run.assert_passed(&server);
    let msgs = run.messages();
    let answers = received(&msgs, |m| {
        m.status().is_some_and(|s| (200..300).contains(&s)) && m.cseq_method() == Some("INVITE")
    });
    let tags: BTreeSet<&str> = answers.iter().filter_map(|m| m.tag_in_to()).collect();
    run.check(
        &server,
        tags.len() == 1,
        &format!(
            "2xx to the INVITE with To tags {tags:?}: the retransmitted INVITE must not start \
             a second call"
        ),
    );
}

#[test]
fn missing_ack_makes_the_server_send_bye_after_64_t1() {
    let server = Server::start(&Config::default());
    let run = server.sipp("uac_no_ack").run();
    run.assert_passed(&server);
    let msgs = run.messages();
    run.check(
        &server,
        sent(&msgs, |m| m.method() == Some("ACK")).is_empty(),
        "sipp sent an ACK; the scenario must not",
    );
    let oks = received(&msgs, |m| m.is_response(200, "INVITE"));
    run.check(
        &server,
        oks.len() >= 3,
        &format!(
            "the 200 arrived {} time(s); without ACK it is retransmitted (T1, 2*T1, ... \
             RFC 3261 13.3.1.4), several times within 64*T1",
            oks.len()
        ),
    );
    let bye = received(&msgs, |m| m.method() == Some("BYE"));
    let (first_ok, bye) = (oks[0], bye[0]);
    let waited = seconds_between(first_ok, bye);
    run.check(
        &server,
        (5.7..=12.0).contains(&waited),
        &format!("the BYE came {waited:.2} s after the 200; expected 64*T1 = 6.4 s"),
    );
    run.check(
        &server,
        bye.tag_in_from() == first_ok.tag_in_to() && bye.tag_in_to() == first_ok.tag_in_from(),
        "the BYE's From/To tags do not match the dialog of the 200",
    );
}

#[test]
fn offer_without_g711_gets_488() {
    let server = Server::start(&Config::default());
    server.sipp("uac_488").run().assert_passed(&server);
}

#[test]
fn max_forwards_0_gets_483() {
    let server = Server::start(&Config::default());
    server
        .sipp("uac_max_forwards_0")
        .run()
        .assert_passed(&server);
}

#[test]
fn unknown_method_gets_501() {
    let server = Server::start(&Config::default());
    server
        .sipp("uac_unknown_method")
        .run()
        .assert_passed(&server);
}

#[test]
fn bye_outside_a_dialog_gets_481() {
    let server = Server::start(&Config::default());
    server
        .sipp("uac_bye_no_dialog")
        .run()
        .assert_passed(&server);
}

#[test]
fn server_sends_bye_at_max_duration() {
    let server = Server::start(&Config::default().max_duration_secs(2));
    let run = server.sipp("uac_server_bye").run();
    run.assert_passed(&server);
    let msgs = run.messages();
    let ack = sent(&msgs, |m| m.method() == Some("ACK"));
    let bye = received(&msgs, |m| m.method() == Some("BYE"));
    let after = seconds_between(ack[0], bye[0]);
    run.check(
        &server,
        (1.5..=4.0).contains(&after),
        &format!("the BYE came {after:.2} s after the ACK; calls.max_duration_secs is 2"),
    );
}

#[test]
fn over_max_calls_gets_503_with_retry_after() {
    let server = Server::start(&Config::default().max_calls(1).retry_after_secs(7));
    let first = server
        .sipp("uac_call_bye")
        .duration_ms(4000)
        .spawn()
        .expect_sent("ACK", ESTABLISH, &server);

    let refused = server.sipp("uac_503").run();
    refused.assert_passed(&server);
    let msgs = refused.messages();
    let busy = received(&msgs, |m| m.is_response(503, "INVITE"));
    let retry_after = busy[0].header("Retry-After").unwrap_or("");
    refused.check(
        &server,
        retry_after.split([' ', ';', '(']).next() == Some("7"),
        &format!("Retry-After is {retry_after:?}; sip.retry_after_secs is 7"),
    );

    first.wait().assert_passed(&server);

    // The slot is free again once the first call has ended. The server may release it a
    // moment after answering the BYE, so try again for a while.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = server.sipp("uac_call_bye").duration_ms(100).run();
        if again.passed() {
            break;
        }
        if Instant::now() >= deadline {
            again.check(
                &server,
                false,
                "no call got through after the first one ended",
            );
        }
    }
}

/// Words the server is likely to log when SIGTERM arrives; waiting for one of them (bounded)
/// avoids racing the next INVITE against the signal's delivery.
const SHUTDOWN_WORDS: &[&str] = &[
    "shutdown",
    "shutting down",
    "sigterm",
    "signal",
    "draining",
    "grace",
];

#[test]
fn sigterm_refuses_new_calls_lets_calls_finish_and_exits_0() {
    const GRACE: u64 = 5;
    let mut server = Server::start(&Config::default().grace_secs(GRACE));
    let call = server
        .sipp("uac_call_bye")
        .duration_ms(2500)
        .spawn()
        .expect_sent("ACK", ESTABLISH, &server);

    let since = server.log_len();
    server.sigterm();
    let signalled = Instant::now();
    // If the server logs nothing recognisable, go on after the bound.
    server.wait_for_log(since, SHUTDOWN_WORDS, Duration::from_secs(2));

    let refused = server.sipp("uac_503").run();
    refused.assert_passed(&server);

    // The call in progress goes on: its BYE, 2.5 s after the ACK, gets its 200.
    call.wait().assert_passed(&server);

    let limit = Duration::from_secs(GRACE + 3).saturating_sub(signalled.elapsed());
    let status = server.wait_exit(limit);
    eprintln!(
        "hotline exit: {status:?}, {:.2?} after SIGTERM",
        signalled.elapsed()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "after SIGTERM, with its last call ended, hotline should exit 0 within grace_secs \
         ({GRACE} s); exit: {status:?} after {:.2?}\n{}",
        signalled.elapsed(),
        server.report()
    );
}

#[test]
fn sigterm_grace_expiry_ends_calls_with_bye_then_exits_0() {
    const GRACE: u64 = 2;
    let mut server = Server::start(&Config::default().grace_secs(GRACE));
    let call = server
        .sipp("uac_server_bye")
        .spawn()
        .expect_sent("ACK", ESTABLISH, &server);

    server.sigterm();
    let signalled = Instant::now();

    // The server ends the call with BYE when the grace is over.
    let call = call.wait();
    call.assert_passed(&server);
    let ended = signalled.elapsed();
    call.check(
        &server,
        ended >= Duration::from_millis(GRACE * 1000 - 500)
            && ended <= Duration::from_secs(GRACE + 4),
        &format!("the server's BYE came {ended:.2?} after SIGTERM; shutdown.grace_secs is {GRACE}"),
    );

    let limit = Duration::from_secs(GRACE + 3).saturating_sub(signalled.elapsed());
    let status = server.wait_exit(limit);
    eprintln!(
        "hotline exit: {status:?}, {:.2?} after SIGTERM",
        signalled.elapsed()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "after SIGTERM and the grace, hotline should exit 0; exit: {status:?} after {:.2?}\n{}",
        signalled.elapsed(),
        server.report()
    );
}
