//! BYE on an early dialog (RFC 3261 §15, §15.1.2): the caller hangs up with
//! BYE after our 180 and before the 200; the BYE gets 200 and the INVITE 487.

mod common;

use common::{Harness, t1s, t4, to_tag};
use hotline_sip::endpoint::EndReason;

#[test]
fn bye_during_setup_gets_200_and_the_invite_487() {
    let mut h = Harness::udp();
    let call = h.call();
    h.ringing(call);
    let tag = h.uac.remote_tag.clone().expect("180 with tag");

    h.uac.bye(h.now);
    h.flush();
    assert_eq!(h.uac.request("BYE").final_code(), Some(200));
    assert_eq!(h.uac.invite_tx().codes, [100, 180, 487]);
    assert_eq!(to_tag(h.uac.responses(487, "INVITE")[0]), Some(tag));
    assert_eq!(h.ended(call), EndReason::RemoteBye);
    assert!(h.events.is_empty());

    // The late answer is ignored; the 487's ACK is absorbed.
    h.answer(call);
    assert!(h.sent_by_uas(|p| p.is_response(200, "INVITE")).is_empty());
    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.sent_by_uas(|p| p.is_response(487, "INVITE")).len(), 1);
    assert_eq!(h.uas.transactions(), 0);
    assert_eq!(h.uas.active_calls(), 0);
}

#[test]
fn bye_with_an_unknown_tag_during_setup_gets_481() {
    let mut h = Harness::udp();
    let call = h.call();
    h.ringing(call);
    h.uac.remote_tag = Some("not-our-tag".into());
    h.uac.bye(h.now);
    h.flush();
    assert_eq!(h.uac.request("BYE").final_code(), Some(481));
    assert!(h.events.is_empty(), "the call goes on");
    assert_eq!(h.uas.active_calls(), 1);
}
