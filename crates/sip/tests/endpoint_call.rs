//! A whole call, lossless: INVITE → 100 → 180 → 200 (SDP) → ACK, then BYE
//! from either side (RFC 3261 §13, §15).

mod common;

use common::{
    ANSWER, CALLER, DIALLED, Dir, Harness, OFFER, UAC_ADDR, UAS_ADDR, UacConfig, from_tag, header,
    t1s, t4, to_tag,
};
use hotline_sip::endpoint::{self, EndReason, Event};
use hotline_sip::message::HeaderName;

#[test]
fn invite_is_answered_acked_and_ended_by_the_callers_bye() {
    let mut h = Harness::udp();
    h.uac.invite(h.now, Some(OFFER));
    h.flush();

    let incoming = h.incoming();
    assert_eq!(incoming.sdp.as_deref(), Some(OFFER.as_bytes()));
    assert_eq!(incoming.from_user.as_deref(), Some(CALLER));
    assert_eq!(incoming.to_user.as_deref(), Some(DIALLED));
    assert_eq!(incoming.sip_call_id, h.uac.call_id);
    assert_eq!(incoming.peer, h.uac_peer());
    assert_eq!(h.uac.statuses("INVITE"), [100], "100 Trying at once");
    let call = incoming.call;

    h.ringing(call);
    h.answer(call);
    assert_eq!(h.uac.statuses("INVITE"), [100, 180, 200]);
    let ringing = h.uac.responses(180, "INVITE")[0];
    let ok = h.uac.responses(200, "INVITE")[0];
    let tag = to_tag(ringing).expect("180 carries our tag");
    assert_eq!(to_tag(ok).as_deref(), Some(tag.as_str()), "one dialog");
    assert_eq!(from_tag(ok).as_deref(), Some(h.uac.from_tag.as_str()));
    assert_eq!(ok.body(), ANSWER.as_bytes());
    assert_eq!(ok.content_type(), Some(&b"application/sdp"[..]));
    let contact = ok
        .contacts()
        .next()
        .expect("2xx has a Contact")
        .expect("well formed");
    assert_eq!(
        contact.uri.raw,
        format!("sip:hotline@{UAS_ADDR}").as_bytes()
    );

    // The UAC ACKed the 200 (new branch, §17.1.1.3) and the call is confirmed.
    let acks = h.sent_by_uac(|p| p.is_request("ACK"));
    assert_eq!(acks.len(), 1);
    assert_ne!(acks[0].branch(), Some(h.uac.invite_tx().branch.clone()));
    match h.event() {
        Some(Event::Acked { call: c, sdp }) => {
            assert_eq!(c, call);
            assert_eq!(sdp, None, "the offer was in the INVITE");
        }
        other => panic!("expected Acked, got {other:?}"),
    }
    assert_eq!(h.uas.active_calls(), 1);

    // No 2xx retransmission after the ACK, for as long as Timer L runs.
    h.advance(t1s(64) + t4());
    assert_eq!(h.sent_by_uas(|p| p.is_response(200, "INVITE")).len(), 1);
    assert!(h.events.is_empty());

    h.uac.bye(h.now);
    h.flush();
    assert_eq!(h.uac.request("BYE").final_code(), Some(200));
    assert_eq!(h.ended(call), EndReason::RemoteBye);
    assert_eq!(h.uas.active_calls(), 0);

    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.uas.transactions(), 0);
    assert_eq!(h.uas.poll_timeout(), None, "no stale deadline");
}

#[test]
fn hangup_sends_a_bye_that_follows_the_dialog() {
    let uac = UacConfig {
        record_route: vec![
            "<sip:p1.example.net;lr>".into(),
            "<sip:p2.example.net;lr;transport=udp>".into(),
        ],
        ..UacConfig::default()
    };
    let mut h = Harness::new(uac, endpoint::Config::default());
    let call = h.confirmed_call();
    let our_tag = h.uac.remote_tag.clone().expect("the 180 gave us the tag");

    // The 200 carried the Record-Route (§12.1.1), so both ends share the route set.
    let ok = h.uac.responses(200, "INVITE")[0];
    let rr: Vec<_> = ok.values(HeaderName::RecordRoute).collect();
    assert_eq!(
        rr,
        [
            &b"<sip:p1.example.net;lr>"[..],
            &b"<sip:p2.example.net;lr;transport=udp>"[..]
        ]
    );

    h.hangup(call);
    assert_eq!(h.ended(call), EndReason::LocalHangup);
    let byes = h.sent_by_uas(|p| p.is_request("BYE"));
    assert_eq!(byes.len(), 1);
    assert_eq!(
        byes[0].to,
        UAC_ADDR.parse().unwrap(),
        "to where the INVITE came from"
    );
    let bye = byes[0].msg().expect("parses");
    bye.validate_request().expect("well formed");
    assert_eq!(
        bye.request_uri(),
        h.uac.config.contact.as_bytes(),
        "Request-URI = Contact (§12.2.1.1)"
    );
    assert_eq!(from_tag(&bye), Some(our_tag), "From carries our tag");
    assert_eq!(
        to_tag(&bye).as_deref(),
        Some(h.uac.from_tag.as_str()),
        "To carries the caller's tag"
    );
    assert_eq!(bye.call_id().unwrap(), h.uac.call_id.as_bytes());
    let cseq = bye.cseq().unwrap();
    assert_eq!(cseq.method.to_string(), "BYE");
    assert!(cseq.seq < 1 << 31);
    let routes: Vec<_> = bye.values(HeaderName::Route).collect();
    assert_eq!(
        routes,
        [
            &b"<sip:p1.example.net;lr>"[..],
            &b"<sip:p2.example.net;lr;transport=udp>"[..]
        ],
        "the UAS uses the Record-Route in order"
    );
    let via = bye.top_via().unwrap();
    assert!(via.is_rfc3261_branch());
    let uas: std::net::SocketAddr = UAS_ADDR.parse().unwrap();
    assert_eq!(
        (via.host.ip(), via.port),
        (Some(uas.ip()), Some(uas.port())),
        "Via sent-by is us"
    );
    assert_eq!(header(&bye, "Max-Forwards").as_deref(), Some("70"));
    assert!(
        bye.header(HeaderName::Contact).is_none(),
        "BYE is no target refresh"
    );

    // The UAC answered 200; the BYE transaction waits out Timer K and ends.
    assert_eq!(h.sent_by_uac(|p| p.is_response(200, "BYE")).len(), 1);
    assert_eq!(h.uas.pending_requests(), 0);
    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.uas.transactions(), 0);
    assert_eq!(h.uas.active_calls(), 0);
}

#[test]
fn hangup_before_the_ack_waits_for_the_ack_to_send_bye() {
    // RFC 3261 §15: the callee MUST NOT send BYE on a confirmed dialog before
    // the ACK for its 2xx (or the transaction's timeout).
    let mut h = Harness::udp();
    h.uac.auto_ack = false;
    let call = h.call();
    h.answer(call);
    h.hangup(call);
    assert_eq!(
        h.ended(call),
        EndReason::LocalHangup,
        "the application is done at once"
    );
    assert_eq!(h.uas.active_calls(), 0);
    assert!(
        h.sent_by_uas(|p| p.is_request("BYE")).is_empty(),
        "no BYE before the ACK"
    );
    assert_eq!(h.uas.pending_requests(), 1, "the BYE waits to be sent");

    // The 2xx is still retransmitted; the ACK releases the BYE.
    h.advance(t1s(1));
    assert_eq!(h.sent_by_uas(|p| p.is_response(200, "INVITE")).len(), 2);
    h.uac.ack_now();
    h.flush();
    let byes = h.sent_by_uas(|p| p.is_request("BYE"));
    assert_eq!(byes.len(), 1);
    assert!(byes[0].at > h.sent_by_uac(|p| p.is_request("ACK"))[0].at - t1s(1));
    assert!(h.events.is_empty(), "one Ended only");
    assert_eq!(h.uac.requests_received("BYE").len(), 1);

    h.run_until_idle(t1s(64) + t4());
    assert_eq!(
        h.sent_by_uas(|p| p.is_response(200, "INVITE")).len(),
        2,
        "no 2xx after the ACK"
    );
    assert_eq!(h.uas.transactions(), 0);
    assert!(h.events.is_empty());
}

#[test]
fn hangup_before_an_ack_that_never_comes_sends_bye_at_timer_l() {
    let mut h = Harness::udp();
    h.uac.auto_ack = false;
    let call = h.call();
    h.answer(call);
    let answered = h.now;
    h.hangup(call);
    assert_eq!(h.ended(call), EndReason::LocalHangup);
    h.run_until_idle(t1s(200));
    let byes = h.sent_by_uas(|p| p.is_request("BYE"));
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].at - answered, t1s(64));
    assert!(h.events.is_empty(), "no second Ended");
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn retransmitted_bye_is_answered_again_and_ends_the_call_once() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    h.pipe.drop_first(Dir::ToUac, 1, "SIP/2.0 200 OK");
    h.uac.bye(h.now);
    h.flush();
    assert_eq!(h.ended(call), EndReason::RemoteBye);
    h.advance(t1s(1));
    assert_eq!(
        h.uac.request("BYE").final_code(),
        Some(200),
        "from the retransmitted BYE"
    );
    assert_eq!(h.sent_by_uas(|p| p.is_response(200, "BYE")).len(), 2);
    assert!(h.events.is_empty());
}
