//! What the endpoint answers by itself (the table in the module doc of
//! `endpoint`): OPTIONS, unknown methods, requests outside a dialog, limits,
//! malformed requests, garbage and stray responses.

mod common;

use common::{Harness, OFFER, UAC_ADDR, header, t1s, t4};
use hotline_sip::endpoint::{self, ACCEPT, ALLOW, EndReason, Event};
use hotline_sip::message::Message;

/// A request as text, from the UAC's address, with the given CSeq value and
/// extra header lines (each ending in CRLF).
fn raw(method: &str, uri: &str, branch: &str, cseq: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {UAC_ADDR};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+51987654321@trunk.example>;tag=77\r\n\
         To: <sip:0800123@hotline.example>\r\n\
         Call-ID: raw-{branch}@caller.example\r\n\
         CSeq: {cseq}\r\n\
         Contact: <sip:caller@{UAC_ADDR}>\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The responses the endpoint sent, parsed.
fn responses(h: &Harness) -> Vec<Message> {
    h.sent_by_uas(|p| p.status().is_some())
        .iter()
        .filter_map(|p| p.msg())
        .collect()
}

/// The only response the endpoint sent.
fn only_response(h: &Harness) -> Message {
    let mut all = responses(h);
    assert_eq!(all.len(), 1, "one response");
    all.remove(0)
}

fn refused(h: &mut Harness) -> (Option<u16>, String) {
    match h.event() {
        Some(Event::Refused { status, reason, .. }) => (status, reason),
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[test]
fn options_gets_200_with_allow_and_accept() {
    let mut h = Harness::udp();
    h.uac
        .out_of_dialog(h.now, "OPTIONS", &[("Accept", "application/sdp")]);
    h.flush();
    assert_eq!(h.uac.request("OPTIONS").final_code(), Some(200));
    let ok = h.uac.responses(200, "OPTIONS")[0];
    assert_eq!(header(ok, "Allow").as_deref(), Some(ALLOW));
    assert_eq!(header(ok, "Accept").as_deref(), Some(ACCEPT));
    assert!(h.events.is_empty());
    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.uas.transactions(), 0, "Timer J");
}

#[test]
fn options_with_max_forwards_0_is_still_answered() {
    let mut h = Harness::udp();
    h.uac.max_forwards = 0;
    h.uac.out_of_dialog(h.now, "OPTIONS", &[]);
    h.flush();
    assert_eq!(h.uac.request("OPTIONS").final_code(), Some(200));
}

#[test]
fn unknown_method_gets_501_with_allow() {
    let mut h = Harness::udp();
    h.uac.out_of_dialog(h.now, "FOO", &[]);
    h.flush();
    assert_eq!(h.uac.request("FOO").final_code(), Some(501));
    let resp = h.uac.responses(501, "FOO")[0];
    assert_eq!(header(resp, "Allow").as_deref(), Some(ALLOW));
    assert!(h.events.is_empty());
}

#[test]
fn bye_outside_a_dialog_gets_481() {
    let mut h = Harness::udp();
    h.uac.out_of_dialog(h.now, "BYE", &[]);
    h.flush();
    assert_eq!(h.uac.request("BYE").final_code(), Some(481));
    // With a To tag of no dialog of ours, too.
    h.uac.remote_tag = Some("12345".into());
    h.uac.bye(h.now);
    h.flush();
    assert_eq!(h.uac.request("BYE").final_code(), Some(481));
    assert!(h.events.is_empty());
}

#[test]
fn max_forwards_0_gets_483() {
    let mut h = Harness::udp();
    h.uac.max_forwards = 0;
    h.uac.invite(h.now, Some(OFFER));
    h.flush();
    assert_eq!(h.uac.invite_tx().codes, [483]);
    assert!(h.events.is_empty(), "no call");
    assert_eq!(
        h.sent_by_uac(|p| p.is_request("ACK")).len(),
        1,
        "the 483 was ACKed"
    );
    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.sent_by_uas(|p| p.status() == Some(483)).len(), 1);
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn invite_over_max_calls_gets_503_with_retry_after() {
    let config = endpoint::Config {
        max_calls: 1,
        retry_after_secs: 17,
        ..endpoint::Config::default()
    };
    let mut h = Harness::new(common::UacConfig::default(), config);
    let first = h.confirmed_call();

    h.uac.invite(h.now, Some(OFFER));
    h.flush();
    assert_eq!(h.uac.invites[1].codes, [503]);
    let busy = h.uac.responses(503, "INVITE")[0];
    assert_eq!(header(busy, "Retry-After").as_deref(), Some("17"));
    assert_eq!(refused(&mut h).0, Some(503));
    assert!(h.events.is_empty());
    assert_eq!(h.uas.active_calls(), 1);

    // Once the first call is over there is room again.
    h.uac.bye(h.now);
    h.flush();
    assert_eq!(h.ended(first), EndReason::RemoteBye);
    h.uac.remote_tag = None;
    h.uac.invite(h.now, Some(OFFER));
    h.flush();
    assert!(matches!(h.event(), Some(Event::IncomingCall(_))));
}

#[test]
fn invite_while_not_accepting_gets_503() {
    let mut h = Harness::udp();
    h.uas.set_accepting(false);
    h.uac.invite(h.now, Some(OFFER));
    h.flush();
    assert_eq!(h.uac.invite_tx().codes, [503]);
    assert!(header(h.uac.responses(503, "INVITE")[0], "Retry-After").is_some());
    let (status, _) = refused(&mut h);
    assert_eq!(status, Some(503));
    assert!(h.events.is_empty());

    h.uas.set_accepting(true);
    h.uac.invite(h.now, Some(OFFER));
    h.flush();
    assert!(matches!(h.event(), Some(Event::IncomingCall(_))));
}

#[test]
fn malformed_cseq_gets_400_with_a_warning() {
    let mut h = Harness::udp();
    h.uac.send_raw(raw(
        "INVITE",
        "sip:0800123@hotline.example",
        "z9hG4bKbad1",
        "abc INVITE",
        "",
        "",
    ));
    h.flush();
    let resp = only_response(&h);
    assert_eq!(resp.status(), Some(400));
    let warning = header(&resp, "Warning").expect("Warning header");
    assert!(warning.starts_with("399 "), "{warning}");
    assert!(warning.contains("CSeq"), "{warning}");
    assert_eq!(
        header(&resp, "CSeq").as_deref(),
        Some("abc INVITE"),
        "copied as received"
    );
    assert!(resp.to_header().unwrap().tag().is_some());
    let (status, reason) = refused(&mut h);
    assert_eq!(status, Some(400));
    assert!(reason.contains("CSeq"), "{reason}");
    assert!(h.events.is_empty());
}

#[test]
fn cseq_method_mismatch_gets_400() {
    let mut h = Harness::udp();
    h.uac.send_raw(raw(
        "INVITE",
        "sip:0800123@hotline.example",
        "z9hG4bKbad2",
        "1 BYE",
        "",
        "",
    ));
    h.flush();
    let resp = only_response(&h);
    assert_eq!(resp.status(), Some(400));
    assert!(header(&resp, "Warning").is_some());
    assert_eq!(refused(&mut h).0, Some(400));
}

#[test]
fn malformed_ack_is_dropped_silently() {
    let mut h = Harness::udp();
    h.uac.send_raw(raw(
        "ACK",
        "sip:0800123@hotline.example",
        "z9hG4bKbad3",
        "x ACK",
        "",
        "",
    ));
    h.flush();
    assert!(responses(&h).is_empty(), "never answer an ACK");
    assert_eq!(refused(&mut h).0, None);
}

#[test]
fn garbage_is_refused_without_a_transmit() {
    let mut h = Harness::udp();
    h.uac
        .send_raw(&b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage"[..]);
    h.uac.send_raw(&b"hello there\r\n\r\n"[..]);
    h.flush();
    assert!(h.sent_by_uas(|_| true).is_empty());
    assert_eq!(refused(&mut h).0, None);
    assert_eq!(refused(&mut h).0, None);
    assert!(h.events.is_empty());
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn keep_alive_is_ignored() {
    let mut h = Harness::udp();
    h.uac.send_raw(&b"\r\n\r\n"[..]);
    h.flush();
    assert!(h.sent_by_uas(|_| true).is_empty());
    assert!(h.events.is_empty());
}

#[test]
fn response_to_an_unknown_branch_is_ignored() {
    let mut h = Harness::udp();
    let call = h.confirmed_call();
    let sent = h.pipe.sent(common::Dir::ToUac).count();
    h.uac.send_raw(format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKnobody;rport\r\n\
         From: <sip:hotline@203.0.113.5>;tag=1\r\nTo: <sip:x@y>;tag=2\r\nCall-ID: {}\r\n\
         CSeq: 5 BYE\r\nContent-Length: 0\r\n\r\n",
        h.uac.call_id
    ));
    h.flush();
    assert_eq!(h.pipe.sent(common::Dir::ToUac).count(), sent, "no transmit");
    assert!(h.events.is_empty(), "no event");
    assert_eq!(h.uas.active_calls(), 1);
    h.hangup(call);
    assert_eq!(h.ended(call), EndReason::LocalHangup);
}

#[test]
fn require_with_an_unknown_extension_gets_420() {
    let mut h = Harness::udp();
    h.uac
        .invite_with(h.now, &[("Require", "100rel")], Some(OFFER));
    h.flush();
    assert_eq!(h.uac.invite_tx().codes, [420]);
    let resp = h.uac.responses(420, "INVITE")[0];
    assert_eq!(header(resp, "Unsupported").as_deref(), Some("100rel"));
    assert!(h.events.is_empty());
}

#[test]
fn invite_with_a_body_that_is_not_sdp_gets_415() {
    let mut h = Harness::udp();
    h.uac.send_raw(raw(
        "INVITE",
        "sip:0800123@hotline.example",
        "z9hG4bKtext",
        "1 INVITE",
        "Content-Type: text/plain\r\n",
        "hello",
    ));
    h.flush();
    let resp = only_response(&h);
    assert_eq!(resp.status(), Some(415));
    assert_eq!(header(&resp, "Accept").as_deref(), Some("application/sdp"));
    assert!(h.events.is_empty());
}

#[test]
fn unknown_uri_scheme_gets_416() {
    let mut h = Harness::udp();
    h.uac.send_raw(raw(
        "INVITE",
        "mailto:help@hotline.example",
        "z9hG4bKmail",
        "1 INVITE",
        "",
        "",
    ));
    h.flush();
    assert_eq!(only_response(&h).status(), Some(416));
    assert!(h.events.is_empty());
}

#[test]
fn other_sip_version_gets_505() {
    let mut h = Harness::udp();
    let text = raw(
        "OPTIONS",
        "sip:0800123@hotline.example",
        "z9hG4bKv3",
        "1 OPTIONS",
        "",
        "",
    )
    .replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1);
    h.uac.send_raw(text);
    h.flush();
    let resp = only_response(&h);
    assert_eq!(resp.status(), Some(505));
    assert_eq!(refused(&mut h).0, Some(505));
}

#[test]
fn merged_invite_gets_482() {
    // §8.2.2.2: the same INVITE (From tag, Call-ID, CSeq) with another branch,
    // as when it reaches us by two paths, is not a second call.
    let mut h = Harness::udp();
    let call = h.call();
    let invite = h.sent_by_uac(|p| p.is_request("INVITE"))[0].text();
    let branch = h.uac.invite_tx().branch.clone();
    h.uac.send_raw(invite.replace(&branch, "z9hG4bKotherpath"));
    h.flush();
    let loop_detected = h.sent_by_uas(|p| p.status() == Some(482));
    assert_eq!(loop_detected.len(), 1);
    assert_eq!(
        loop_detected[0].branch().as_deref(),
        Some("z9hG4bKotherpath")
    );
    assert!(h.events.is_empty(), "one call");
    h.answer(call);
    assert!(matches!(h.event(), Some(Event::Acked { .. })));
}

#[test]
fn invite_whose_accept_excludes_sdp_gets_406() {
    let mut h = Harness::udp();
    h.uac
        .invite_with(h.now, &[("Accept", "text/plain")], Some(OFFER));
    h.flush();
    assert_eq!(h.uac.invite_tx().codes, [406], "before any 100 Trying");
    assert!(h.events.is_empty(), "no call");

    let mut h = Harness::udp();
    h.uac.invite_with(
        h.now,
        &[("Accept", "text/plain, application/SDP;q=0.5")],
        Some(OFFER),
    );
    h.flush();
    assert!(matches!(h.event(), Some(Event::IncomingCall(_))));
}

#[test]
fn request_with_only_a_via_gets_400() {
    let mut h = Harness::udp();
    h.uac.send_raw(format!(
        "OPTIONS sip:0800123@hotline.example SIP/2.0\r\nVia: SIP/2.0/UDP {UAC_ADDR};branch=z9hG4bKinsuf\r\n\
         Content-Length: 0\r\n\r\n"
    ));
    h.flush();
    let resp = only_response(&h);
    assert_eq!(resp.status(), Some(400));
    assert!(header(&resp, "Warning").is_some());
    assert_eq!(refused(&mut h).0, Some(400));
}

#[test]
fn invite_while_overloaded_gets_503_with_retry_after() {
    let mut h = Harness::udp();
    h.uas.set_overloaded(true);
    assert!(h.uas.is_overloaded());
    h.uac.invite(h.now, Some(OFFER));
    h.flush();
    assert_eq!(h.uac.invite_tx().codes, [503]);
    assert!(header(h.uac.responses(503, "INVITE")[0], "Retry-After").is_some());
    let (status, reason) = refused(&mut h);
    assert_eq!(status, Some(503));
    assert_eq!(reason, "overloaded");
    assert!(h.events.is_empty());

    h.uas.set_overloaded(false);
    h.uac.invite(h.now, Some(OFFER));
    h.flush();
    assert!(matches!(h.event(), Some(Event::IncomingCall(_))));
}

/// RFC 3261 §11.2: an OPTIONS gets the code an INVITE would get. While new calls are
/// refused (overloaded, draining, at `max_calls`) that is 503 with Retry-After, so a load
/// balancer probing with OPTIONS takes the node out, and 200 again once calls are taken.
#[test]
fn options_while_refusing_calls_gets_503_with_retry_after() {
    let config = endpoint::Config {
        max_calls: 1,
        retry_after_secs: 7,
        ..endpoint::Config::default()
    };
    let mut h = Harness::new(common::UacConfig::default(), config);
    fn options(h: &mut Harness) -> (Option<u16>, Option<String>, Option<String>) {
        h.uac.out_of_dialog(h.now, "OPTIONS", &[]);
        h.flush();
        let code = h.uac.request("OPTIONS").final_code();
        let last = h
            .uac
            .received
            .iter()
            .map(|(_, m)| m)
            .rfind(|m| m.cseq().is_ok_and(|c| c.method.to_string() == "OPTIONS"))
            .expect("an answer to the OPTIONS");
        (code, header(last, "Retry-After"), header(last, "Allow"))
    }
    assert_eq!(options(&mut h), (Some(200), None, Some(ALLOW.to_owned())));

    h.uas.set_overloaded(true);
    assert_eq!(h.uas.refusal(), Some("overloaded"));
    assert_eq!(
        options(&mut h),
        (Some(503), Some("7".to_owned()), Some(ALLOW.to_owned()))
    );
    assert!(h.events.is_empty(), "a refused OPTIONS is no refused call");
    h.uas.set_overloaded(false);
    assert_eq!(options(&mut h).0, Some(200));

    h.uas.set_accepting(false);
    assert_eq!(h.uas.refusal(), Some("shutting down"));
    assert_eq!(options(&mut h).0, Some(503));
    h.uas.set_accepting(true);

    let call = h.confirmed_call();
    assert_eq!(h.uas.refusal(), Some("over max_calls"));
    assert_eq!(options(&mut h).0, Some(503));
    h.hangup(call);
    h.flush();
    assert_eq!(h.uas.refusal(), None);
    assert_eq!(options(&mut h).0, Some(200));
    assert_eq!(h.uas.active_calls(), 0);
}
