//! Loss over UDP: retransmitted INVITEs are absorbed (RFC 3261 §17.2.1), the
//! 2xx is retransmitted until the ACK and the call ends with BYE when none
//! comes (§13.3.1.4), our BYE is retransmitted until answered (§17.1.2).

mod common;

use std::time::Duration;

use common::{Dir, Harness, t1, t1s, t2, t4};
use hotline_sip::endpoint::{EndReason, Event};

/// The gaps between consecutive send times.
fn gaps(times: &[Duration]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn retransmitted_invite_is_absorbed_and_gets_the_last_provisional() {
    let mut h = Harness::udp();
    let call = h.call();
    h.ringing(call);
    let invite = h.sent_by_uac(|p| p.is_request("INVITE"))[0].bytes.clone();

    // Two copies of the same INVITE (same branch), as a lossy path delivers them.
    h.uac.send_raw(invite.clone());
    h.uac.send_raw(invite);
    h.flush();
    assert_eq!(h.count_events(|e| matches!(e, Event::IncomingCall(_))), 1);
    assert!(h.events.is_empty());
    assert_eq!(
        h.uac.statuses("INVITE"),
        [100, 180, 180, 180],
        "the last provisional, resent"
    );
    assert_eq!(h.uas.active_calls(), 1);
}

#[test]
fn lost_provisionals_are_resent_on_the_invite_retransmission() {
    let mut h = Harness::udp();
    h.pipe.drop_first(Dir::ToUac, 1, "SIP/2.0 100");
    h.uac.invite(h.now, Some(common::OFFER));
    h.flush();
    let call = h.incoming().call;
    h.pipe.drop_first(Dir::ToUac, 1, "SIP/2.0 180");
    h.ringing(call);
    assert!(h.uac.received.is_empty());

    // Timer A: the INVITE again at T1; the endpoint answers it with the 180.
    h.advance(t1());
    assert_eq!(h.sent_by_uac(|p| p.is_request("INVITE")).len(), 2);
    assert_eq!(h.uac.statuses("INVITE"), [180]);
    assert!(h.events.is_empty(), "still one call");

    // In Proceeding the UAC stops retransmitting.
    h.advance(t1s(16));
    assert_eq!(h.sent_by_uac(|p| p.is_request("INVITE")).len(), 2);
}

#[test]
fn invite_with_the_first_two_copies_lost() {
    let mut h = Harness::udp();
    h.pipe.drop_first(Dir::ToUas, 2, "INVITE");
    h.uac.invite(h.now, Some(common::OFFER));
    while h.events.is_empty() {
        assert!(h.step());
    }
    // Copies at 0, T1 and 3·T1 (Timer A doubles); the third gets through.
    assert_eq!(h.elapsed(), t1s(3));
    let call = h.incoming().call;
    assert_eq!(h.sent_by_uac(|p| p.is_request("INVITE")).len(), 3);
    h.answer(call);
    assert!(matches!(h.event(), Some(Event::Acked { .. })));
    h.advance(t1s(64) + t4());
    assert_eq!(h.count_events(|e| matches!(e, Event::IncomingCall(_))), 1);
    assert_eq!(
        h.sent_by_uac(|p| p.is_request("INVITE")).len(),
        3,
        "nothing more after the 100"
    );
}

#[test]
fn lost_acks_make_the_2xx_back_off_from_t1() {
    let mut h = Harness::udp();
    h.pipe.drop_first(Dir::ToUas, 3, "ACK");
    let call = h.call();
    let answered = h.now;
    h.answer(call);
    while h.events.is_empty() {
        assert!(h.step());
    }
    match h.event() {
        Some(Event::Acked { call: c, .. }) => assert_eq!(c, call),
        other => panic!("expected Acked, got {other:?}"),
    }
    // 200 at 0, T1, 3·T1, 7·T1; the UAC ACKs each, the fourth ACK gets through.
    assert_eq!(h.now - answered, t1s(7));
    h.advance(t1s(64) + t4());
    let oks = h.sent_by_uas(|p| p.is_response(200, "INVITE"));
    assert_eq!(
        Harness::send_times(&oks, answered),
        [t1s(0), t1s(1), t1s(3), t1s(7)]
    );
    assert_eq!(h.sent_by_uac(|p| p.is_request("ACK")).len(), 4);
    assert!(h.events.is_empty());
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn the_2xx_interval_is_capped_at_t2() {
    let mut h = Harness::udp();
    h.pipe.drop_first(Dir::ToUas, 9, "ACK");
    let call = h.call();
    let answered = h.now;
    h.answer(call);
    h.advance(t1s(60));
    let oks = h.sent_by_uas(|p| p.is_response(200, "INVITE"));
    let times = Harness::send_times(&oks, answered);
    let t2 = t2();
    assert_eq!(
        gaps(&times),
        [t1(), t1s(2), t1s(4), t2, t2, t2, t2, t2, t2],
        "T1, 2·T1, 4·T1, then T2"
    );
    assert_eq!(
        h.count_events(|e| matches!(e, Event::Acked { .. })),
        1,
        "the tenth ACK got through"
    );
    assert_eq!(h.count_events(|e| matches!(e, Event::Ended { .. })), 0);
}

#[test]
fn no_ack_at_all_ends_the_call_with_bye_after_64_t1() {
    let mut h = Harness::udp();
    h.uac.auto_ack = false;
    let call = h.call();
    let answered = h.now;
    h.answer(call);
    while h.events.is_empty() {
        assert!(h.step());
    }
    assert_eq!(h.ended(call), EndReason::NoAck);
    assert_eq!(h.now - answered, t1s(64), "Timer L");

    let oks = h.sent_by_uas(|p| p.is_response(200, "INVITE"));
    let times = Harness::send_times(&oks, answered);
    assert_eq!(times.first(), Some(&Duration::ZERO));
    assert!(gaps(&times).iter().all(|&g| g <= t2()));
    assert!(
        times.last().is_some_and(|&t| t < t1s(64)),
        "nothing after Timer L"
    );
    let byes = h.sent_by_uas(|p| p.is_request("BYE"));
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].at - answered, t1s(64));

    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.uac.requests_received("BYE").len(), 1, "answered at once");
    assert_eq!(h.uas.transactions(), 0);
    assert_eq!(h.uas.active_calls(), 0);
    assert!(h.events.is_empty());
}

#[test]
fn our_bye_is_retransmitted_until_answered() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.pipe.drop_first(Dir::ToUac, 2, "BYE");
    let hung_up = h.now;
    h.hangup(call);
    assert_eq!(h.ended(call), EndReason::LocalHangup);
    assert_eq!(h.uas.pending_requests(), 1);
    h.advance(t1s(3));
    let byes = h.sent_by_uas(|p| p.is_request("BYE"));
    assert_eq!(
        Harness::send_times(&byes, hung_up),
        [t1s(0), t1s(1), t1s(3)],
        "Timer E"
    );
    assert_eq!(
        byes.iter()
            .filter_map(|p| p.branch())
            .collect::<std::collections::HashSet<_>>()
            .len(),
        1
    );
    assert_eq!(h.uas.pending_requests(), 0);
    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn unanswered_bye_gives_up_after_64_t1() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.pipe.drop_all(Dir::ToUac, "BYE");
    h.hangup(call);
    let elapsed = h.run_until_idle(t1s(200));
    assert!(elapsed <= t1s(64) + t4(), "{elapsed:?}");
    assert_eq!(h.uas.transactions(), 0);
    assert_eq!(h.uas.pending_requests(), 0);
    let byes = h.sent_by_uas(|p| p.is_request("BYE"));
    assert_eq!(
        byes.len(),
        11,
        "0, 0.5, 1.5, 3.5, 7.5, then every T2 up to 31.5 s"
    );
}
