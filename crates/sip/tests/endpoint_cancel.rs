//! CANCEL (RFC 3261 §9.2): before the answer it ends the call with 487; after
//! the 200 it has no effect; without a matching INVITE it gets 481.

mod common;

use common::{Dir, Harness, t1, t1s, t4, to_tag};
use hotline_sip::endpoint::{EndReason, Event};

#[test]
fn cancel_before_the_answer() {
    let mut h = Harness::udp();
    let call = h.call();
    h.ringing(call);
    let tag = h.uac.remote_tag.clone().expect("180 with tag");
    h.uac.cancel(h.now);
    h.flush();

    assert_eq!(h.uac.request("CANCEL").final_code(), Some(200));
    let ok = h.uac.responses(200, "CANCEL")[0];
    assert_eq!(
        to_tag(ok),
        Some(tag.clone()),
        "the CANCEL's 200 has the INVITE's tag"
    );
    assert_eq!(h.uac.invite_tx().codes, [100, 180, 487]);
    assert_eq!(to_tag(h.uac.responses(487, "INVITE")[0]), Some(tag));
    assert_eq!(h.ended(call), EndReason::Cancelled);
    assert_eq!(h.uas.active_calls(), 0);

    // The UAC ACKed the 487 in the INVITE's transaction (same branch); the
    // endpoint absorbs it and stops Timer G.
    let acks = h.sent_by_uac(|p| p.is_request("ACK"));
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].branch(), Some(h.uac.invite_tx().branch.clone()));
    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.sent_by_uas(|p| p.is_response(487, "INVITE")).len(), 1);
    assert!(h.events.is_empty());
    assert_eq!(h.uas.transactions(), 0);

    // The late application's answer does nothing.
    h.answer(call);
    assert!(h.sent_by_uas(|p| p.is_response(200, "INVITE")).is_empty());
}

#[test]
fn lost_ack_for_the_487_gets_the_487_again() {
    let mut h = Harness::udp();
    let call = h.call();
    h.pipe.drop_first(Dir::ToUas, 1, "ACK");
    h.uac.cancel(h.now);
    h.flush();
    assert_eq!(h.ended(call), EndReason::Cancelled);
    h.advance(t1());
    // Timer G resent the 487; the UAC's transaction (Completed) ACKed it again.
    assert_eq!(h.sent_by_uas(|p| p.is_response(487, "INVITE")).len(), 2);
    assert_eq!(h.sent_by_uac(|p| p.is_request("ACK")).len(), 2);
    h.advance(t1s(64));
    assert_eq!(h.sent_by_uas(|p| p.is_response(487, "INVITE")).len(), 2);
    assert!(h.events.is_empty());
}

#[test]
fn retransmitted_cancel_is_answered_again() {
    let mut h = Harness::udp();
    let call = h.call();
    h.pipe.drop_first(Dir::ToUac, 1, "SIP/2.0 200 OK");
    h.uac.cancel(h.now);
    h.flush();
    assert_eq!(h.ended(call), EndReason::Cancelled);
    assert_eq!(h.uac.request("CANCEL").final_code(), None);
    h.advance(t1());
    assert_eq!(h.uac.request("CANCEL").final_code(), Some(200));
    assert_eq!(h.sent_by_uas(|p| p.is_response(487, "INVITE")).len(), 1);
    assert!(h.events.is_empty());
}

#[test]
fn cancel_racing_the_200_leaves_the_call_up() {
    let mut h = Harness::udp();
    let call = h.call();
    // The application answers; before the 200 reaches the caller, the caller
    // sends CANCEL, which reaches us after the 200 left.
    h.uas.answer(
        h.now,
        call,
        bytes::Bytes::from_static(common::ANSWER.as_bytes()),
    );
    h.uac.cancel(h.now);
    h.flush();
    let ok_at = h
        .pipe
        .log
        .iter()
        .position(|p| p.is_response(200, "INVITE"))
        .expect("200 sent");
    let cancel_at = h
        .pipe
        .log
        .iter()
        .position(|p| p.is_request("CANCEL"))
        .expect("CANCEL sent");
    assert!(ok_at < cancel_at, "the 200 left before the CANCEL arrived");

    assert_eq!(
        h.uac.request("CANCEL").final_code(),
        Some(200),
        "§9.2: 200 to the CANCEL anyway"
    );
    assert!(
        h.sent_by_uas(|p| p.is_response(487, "INVITE")).is_empty(),
        "no 487 after a 2xx"
    );
    assert!(matches!(h.event(), Some(Event::Acked { call: c, .. }) if c == call));
    assert_eq!(h.uas.active_calls(), 1);

    // The caller, who wanted out, hangs up with BYE.
    h.uac.bye(h.now);
    h.flush();
    assert_eq!(h.ended(call), EndReason::RemoteBye);
}

#[test]
fn cancel_for_an_unknown_invite_gets_481() {
    let mut h = Harness::udp();
    h.uac.out_of_dialog(h.now, "CANCEL", &[]);
    h.flush();
    assert_eq!(h.uac.request("CANCEL").final_code(), Some(481));
    assert!(h.events.is_empty());
    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn cancel_after_the_call_was_rejected_has_no_effect() {
    let mut h = Harness::udp();
    let call = h.call();
    h.uas.reject(h.now, call, 486, &[]);
    h.flush();
    assert_eq!(h.ended(call), EndReason::Rejected(486));
    h.uac.cancel(h.now);
    h.flush();
    assert_eq!(h.uac.request("CANCEL").final_code(), Some(200));
    assert!(h.sent_by_uas(|p| p.is_response(487, "INVITE")).is_empty());
    assert_eq!(h.uac.invite_tx().codes, [100, 486]);
    assert!(h.events.is_empty());
}
