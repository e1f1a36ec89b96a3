//! INVITE without an offer (RFC 3261 §13.2.1, RFC 3264 §4): our 2xx carries
//! the offer and the ACK the answer.

mod common;

use bytes::Bytes;
use common::{ANSWER, Harness, OFFER};
use hotline_sip::endpoint::Event;

#[test]
fn offerless_invite_gets_the_answer_in_the_ack() {
    let mut h = Harness::udp();
    h.uac.ack_sdp = Some(OFFER.to_owned());
    h.uac.invite(h.now, None);
    h.flush();
    let incoming = h.incoming();
    assert_eq!(incoming.sdp, None);

    // The application offers in the 200.
    h.uas
        .answer(h.now, incoming.call, Bytes::from_static(ANSWER.as_bytes()));
    h.flush();
    assert_eq!(h.uac.responses(200, "INVITE")[0].body(), ANSWER.as_bytes());
    let ack = h.sent_by_uac(|p| p.is_request("ACK"))[0]
        .msg()
        .expect("parses");
    assert_eq!(ack.content_type(), Some(&b"application/sdp"[..]));
    match h.event() {
        Some(Event::Acked { call, sdp }) => {
            assert_eq!(call, incoming.call);
            assert_eq!(sdp.as_deref(), Some(OFFER.as_bytes()));
        }
        other => panic!("expected Acked, got {other:?}"),
    }
}

#[test]
fn offerless_reinvite_gets_the_answer_in_its_ack() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.uac.ack_sdp = Some(OFFER.to_owned());
    h.uac.reinvite(h.now, None);
    h.flush();
    match h.event() {
        Some(Event::ReInvite { sdp, .. }) => assert_eq!(sdp, None),
        other => panic!("expected ReInvite, got {other:?}"),
    }
    h.uas
        .accept_reinvite(h.now, call, Bytes::from_static(ANSWER.as_bytes()));
    h.flush();
    match h.event() {
        Some(Event::Acked { call: c, sdp }) => {
            assert_eq!(c, call);
            assert_eq!(sdp.as_deref(), Some(OFFER.as_bytes()));
        }
        other => panic!("expected Acked, got {other:?}"),
    }
}
