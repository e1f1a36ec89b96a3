//! Over TCP nothing is retransmitted (RFC 3261 §17: Timers A, E and G run on
//! unreliable transports only) and non-INVITE transactions end with their
//! final response. The one exception is the 2xx to INVITE, which §13.3.1.4
//! retransmits until the ACK "independent of whatever transport protocols are
//! used"; with a prompt ACK there is no copy at all.

mod common;

use std::collections::HashSet;

use common::{Dir, Harness, OFFER, t1s, t4};
use hotline_sip::endpoint::{EndReason, Event};

/// Asserts that no packet was sent twice in either direction.
fn assert_no_retransmission(h: &Harness) {
    let mut seen = HashSet::new();
    for p in &h.pipe.log {
        assert!(
            seen.insert((p.dir == Dir::ToUas, p.bytes.clone())),
            "sent twice: {}",
            p.text()
        );
    }
}

#[test]
fn a_slow_call_over_tcp_has_no_retransmission() {
    let mut h = Harness::tcp();
    h.uac.invite(h.now, Some(OFFER));
    h.flush();
    let call = h.incoming().call;
    // The application takes its time; the INVITE is not sent again.
    h.advance(t1s(10));
    h.ringing(call);
    h.advance(t1s(10));
    h.answer(call);
    assert!(matches!(h.event(), Some(Event::Acked { .. })));
    h.advance(t1s(20));
    h.uac.bye(h.now);
    h.flush();
    assert_eq!(h.ended(call), EndReason::RemoteBye);
    h.run_until_idle(t1s(64) + t4());

    assert_no_retransmission(&h);
    assert_eq!(h.uac.statuses("INVITE"), [100, 180, 200]);
    let from_uas = h.sent_by_uas(|_| true);
    assert!(
        from_uas.iter().all(|p| p.connection == Some(1)),
        "on the caller's connection"
    );
    let via = from_uas[0].msg().unwrap();
    assert!(via.top_via().unwrap().is_reliable());
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn non_invite_transactions_end_with_their_response() {
    let mut h = Harness::tcp();
    h.uac.out_of_dialog(h.now, "OPTIONS", &[]);
    h.flush();
    assert_eq!(h.uac.request("OPTIONS").final_code(), Some(200));
    assert_eq!(h.uas.transactions(), 0, "Timer J is zero on TCP");
    assert_eq!(h.uas.poll_timeout(), None);
}

#[test]
fn rejection_is_sent_once_even_without_an_ack() {
    let mut h = Harness::tcp();
    h.pipe.drop_all(Dir::ToUas, "ACK");
    let call = h.call();
    h.uas.reject(h.now, call, 486, &[]);
    h.flush();
    assert_eq!(h.ended(call), EndReason::Rejected(486));
    let elapsed = h.run_until_idle(t1s(200));
    assert_eq!(elapsed, t1s(64), "Timer H");
    assert_eq!(
        h.sent_by_uas(|p| p.is_response(486, "INVITE")).len(),
        1,
        "no Timer G on TCP"
    );
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn our_bye_is_sent_once_and_times_out() {
    let mut h = Harness::tcp();
    let call = h.confirmed_call();
    h.uac.auto_answer = false;
    h.hangup(call);
    assert_eq!(h.ended(call), EndReason::LocalHangup);
    h.run_until_idle(t1s(200));
    assert_eq!(
        h.sent_by_uas(|p| p.is_request("BYE")).len(),
        1,
        "no Timer E on TCP"
    );
    assert!(
        h.sent_by_uas(|p| p.is_request("BYE"))[0]
            .text()
            .starts_with(
                "BYE sip:caller@192.0.2.10:5062;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP "
            )
    );
    assert_eq!(h.uas.transactions(), 0);
    assert_eq!(h.uas.pending_requests(), 0);
}

#[test]
fn a_late_ack_over_tcp_still_gets_2xx_copies() {
    // §13.3.1.4: the 2xx is retransmitted end to end whatever the transport.
    let mut h = Harness::tcp();
    h.uac.auto_ack = false;
    let call = h.call();
    let answered = h.now;
    h.answer(call);
    h.advance(t1s(2));
    h.uac.ack_now();
    h.flush();
    assert!(matches!(h.event(), Some(Event::Acked { .. })));
    let oks = h.sent_by_uas(|p| p.is_response(200, "INVITE"));
    assert_eq!(Harness::send_times(&oks, answered), [t1s(0), t1s(1)]);
    h.advance(t1s(64));
    assert_eq!(h.sent_by_uas(|p| p.is_response(200, "INVITE")).len(), 2);
}
