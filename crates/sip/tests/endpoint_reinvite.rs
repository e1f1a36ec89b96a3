//! re-INVITE in a confirmed dialog (RFC 3261 §14.2): reported to the
//! application, answered by it, closed by the ACK; one at a time.

mod common;

use bytes::Bytes;
use common::{ANSWER, Dir, HOLD, Harness, t1s, t4, to_tag};
use hotline_sip::endpoint::{EndReason, Event};

/// Our answer to [`HOLD`]: recvonly.
const HELD: &str = "v=0\r\n\
o=hotline 1 2 IN IP4 203.0.113.5\r\n\
s=hotline\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=recvonly\r\n";

fn reinvite_event(h: &mut Harness) -> Option<Bytes> {
    match h.event() {
        Some(Event::ReInvite { sdp, .. }) => sdp,
        other => panic!("expected ReInvite, got {other:?}"),
    }
}

fn acked(h: &mut Harness) -> Option<Bytes> {
    match h.event() {
        Some(Event::Acked { sdp, .. }) => sdp,
        other => panic!("expected Acked, got {other:?}"),
    }
}

#[test]
fn sendonly_reinvite_is_reported_answered_and_acked() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    let tag = h.uac.remote_tag.clone();

    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    let offer = reinvite_event(&mut h).expect("an offer");
    assert!(offer.windows(10).any(|w| w == b"a=sendonly"));
    assert_eq!(h.uac.invites[1].codes, [100]);

    h.uas
        .accept_reinvite(h.now, call, Bytes::from_static(HELD.as_bytes()));
    h.flush();
    assert_eq!(h.uac.invites[1].codes, [100, 200]);
    let ok = h.uac.responses(200, "INVITE")[1];
    assert_eq!(ok.body(), HELD.as_bytes());
    assert_eq!(to_tag(ok), tag, "same dialog");
    assert!(ok.contacts().next().is_some());
    assert_eq!(acked(&mut h), None, "the ACK closes the re-INVITE");

    // No retransmission after the ACK; the call goes on.
    h.advance(t1s(64) + t4());
    assert_eq!(h.sent_by_uas(|p| p.is_response(200, "INVITE")).len(), 2);
    assert!(h.events.is_empty());
    assert_eq!(h.uas.active_calls(), 1);
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn reinvite_while_one_is_pending_gets_491() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    reinvite_event(&mut h);

    h.uac.reinvite(h.now, Some(common::OFFER));
    h.flush();
    assert_eq!(h.uac.invites[2].codes, [491]);
    assert!(h.events.is_empty(), "not reported");
    let acks = h.sent_by_uac(|p| p.is_request("ACK"));
    assert_eq!(
        acks.last().and_then(|p| p.branch()),
        Some(h.uac.invites[2].branch.clone()),
        "491 ACKed"
    );

    h.uas
        .accept_reinvite(h.now, call, Bytes::from_static(HELD.as_bytes()));
    h.flush();
    assert_eq!(h.uac.invites[1].codes, [100, 200]);
    acked(&mut h);
}

#[test]
fn reinvites_one_after_another_are_each_reported() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    for (n, sdp) in [HOLD, common::OFFER, HOLD].into_iter().enumerate() {
        h.uac.reinvite(h.now, Some(sdp));
        h.flush();
        assert_eq!(
            reinvite_event(&mut h).as_deref(),
            Some(sdp.as_bytes()),
            "re-INVITE {n}"
        );
        h.uas
            .accept_reinvite(h.now, call, Bytes::from_static(ANSWER.as_bytes()));
        h.flush();
        acked(&mut h);
        h.advance(t1s(2));
    }
    assert!(h.events.is_empty());
}

#[test]
fn rejected_reinvite_leaves_the_call_as_it_was() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    reinvite_event(&mut h);
    h.uas.reject_reinvite(h.now, call, 488);
    h.flush();
    assert_eq!(h.uac.invites[1].codes, [100, 488]);
    assert!(h.events.is_empty());

    // The next one is taken.
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    reinvite_event(&mut h);
    assert_eq!(h.uas.active_calls(), 1);
}

#[test]
fn cancelled_reinvite_gets_487_and_the_call_goes_on() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    reinvite_event(&mut h);
    h.uac.cancel(h.now);
    h.flush();
    assert_eq!(h.uac.request("CANCEL").final_code(), Some(200));
    assert_eq!(h.uac.invites[1].codes, [100, 487]);
    assert!(h.events.is_empty(), "the call is not over");
    // The late answer does nothing; a new re-INVITE is taken.
    h.uas
        .accept_reinvite(h.now, call, Bytes::from_static(HELD.as_bytes()));
    h.flush();
    assert_eq!(h.sent_by_uas(|p| p.is_response(200, "INVITE")).len(), 1);
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    reinvite_event(&mut h);
}

#[test]
fn bye_with_a_reinvite_pending_answers_it_487() {
    // RFC 3261 §15.1.2: the UAS still answers pending requests, with 487.
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    reinvite_event(&mut h);
    h.uac.bye(h.now);
    h.flush();
    assert_eq!(h.uac.request("BYE").final_code(), Some(200));
    assert_eq!(h.uac.invites[1].codes, [100, 487]);
    assert_eq!(h.ended(call), EndReason::RemoteBye);
    h.run_until_idle(t1s(64) + t4());
    assert_eq!(
        h.uas.transactions(),
        0,
        "no transaction waits for an answer forever"
    );
}

#[test]
fn hangup_with_a_reinvite_pending_answers_it_487() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    reinvite_event(&mut h);
    h.hangup(call);
    assert_eq!(h.ended(call), EndReason::LocalHangup);
    assert_eq!(h.uac.invites[1].codes, [100, 487]);
    assert_eq!(h.uac.requests_received("BYE").len(), 1);
    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn reinvite_2xx_is_retransmitted_until_its_ack() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.pipe.drop_first(Dir::ToUas, 2, "ACK");
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    reinvite_event(&mut h);
    let answered = h.now;
    h.uas
        .accept_reinvite(h.now, call, Bytes::from_static(HELD.as_bytes()));
    while h.events.is_empty() {
        assert!(h.step());
    }
    acked(&mut h);
    assert_eq!(h.now - answered, t1s(3));
    h.advance(t1s(64));
    assert_eq!(
        h.sent_by_uas(|p| p.is_response(200, "INVITE")).len(),
        4,
        "the initial 200 and three copies of the second"
    );
    assert!(h.events.is_empty());
}

#[test]
fn stale_ack_of_the_first_invite_does_not_close_a_reinvite() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    let first_ack = h.sent_by_uac(|p| p.is_request("ACK"))[0].bytes.clone();
    h.uac.auto_ack = false;
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    reinvite_event(&mut h);
    h.uas
        .accept_reinvite(h.now, call, Bytes::from_static(HELD.as_bytes()));
    h.flush();
    // A late copy of the first ACK (CSeq of the first INVITE) arrives.
    h.uac.send_raw(first_ack);
    h.flush();
    assert!(h.events.is_empty(), "not the re-INVITE's ACK");
    h.advance(t1s(1));
    assert_eq!(
        h.sent_by_uas(|p| p.is_response(200, "INVITE")).len(),
        3,
        "still retransmitted"
    );
    h.uac.ack_now();
    h.flush();
    acked(&mut h);
}

#[test]
fn reinvite_without_ack_ends_the_call() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.uac.auto_ack = false;
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    reinvite_event(&mut h);
    h.uas
        .accept_reinvite(h.now, call, Bytes::from_static(HELD.as_bytes()));
    h.advance(t1s(64));
    assert_eq!(h.ended(call), EndReason::NoAck);
    assert_eq!(h.uac.requests_received("BYE").len(), 1);
}

#[test]
fn reinvite_refreshes_the_remote_target() {
    // §12.2.2: re-INVITE is a target refresh; our BYE goes to the new Contact.
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.uac.config.contact = "sip:caller@192.0.2.10:5072".into();
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    reinvite_event(&mut h);
    h.uas
        .accept_reinvite(h.now, call, Bytes::from_static(HELD.as_bytes()));
    h.flush();
    acked(&mut h);
    h.hangup(call);
    let bye = &h.uac.requests_received("BYE")[0];
    assert_eq!(bye.request_uri(), b"sip:caller@192.0.2.10:5072");
}

#[test]
fn reinvite_in_an_unknown_dialog_gets_481() {
    let mut h = Harness::udp();
    h.confirmed_call();
    h.uac.remote_tag = Some("gone".into());
    h.uac.reinvite(h.now, Some(HOLD));
    h.flush();
    assert_eq!(h.uac.invites[1].codes, [481]);
    assert!(h.events.is_empty());
}
