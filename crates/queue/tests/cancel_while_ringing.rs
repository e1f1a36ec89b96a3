//! The caller leaves (hangs up, or presses the key to leave a message) while an operator's
//! phone rings for them: the offer is withdrawn and the operator keeps their place.

mod common;

use common::{Harness, cancel_offer, offer, secs};
use hotline_queue::{OfferFailure, OperatorState, Status};

#[test]
fn the_offer_is_withdrawn() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    h.advance(secs(6));
    assert_eq!(h.cancel("c1"), [cancel_offer("c1", "ana")]);
    assert!(h.waiting().is_empty());
    assert!(!h.q.contains_call(&common::call("c1")));
    let ana = h.operator("ana");
    assert_eq!(ana.state, OperatorState::Available);
    assert_eq!(ana.offered_call, None);
    // No ring timeout is left behind.
    assert_eq!(h.q.poll_timeout(), None);
    // The call task's report of the cancelled leg (487) changes nothing.
    assert_eq!(h.fail("c1", "ana", OfferFailure::Timeout), []);
    // An answer that crossed the CANCEL is hung up.
    assert_eq!(h.answer("c1", "ana"), [cancel_offer("c1", "ana")]);
}

#[test]
fn no_miss_and_no_lost_place() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.advance(secs(1));
    h.login("ben", &["es"]);
    h.advance(secs(1));
    assert_eq!(h.enqueue("c1", None), [offer("c1", "ana")]);
    h.advance(secs(6));
    assert_eq!(h.cancel("c1"), [cancel_offer("c1", "ana")]);
    // ana is still the one idle longest.
    assert_eq!(h.enqueue("c2", None), [offer("c2", "ana")]);
    // One real miss...
    assert_eq!(
        h.advance(secs(20)),
        [cancel_offer("c2", "ana"), offer("c2", "ben")]
    );
    assert_eq!(h.enqueue("c3", None), [offer("c3", "ana")]);
    // ...and one withdrawn offer are not two misses in a row.
    assert_eq!(h.cancel("c3"), [cancel_offer("c3", "ana")]);
    assert_eq!(h.operator("ana").status, Status::Available);
    assert_eq!(h.operator("ana").paused_reason, None);
}

#[test]
fn cancelling_a_waiting_call_moves_the_others_up() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.status("ana", Status::Paused);
    h.enqueue("c1", None);
    h.enqueue("c2", None);
    h.enqueue("c3", None);
    assert_eq!(h.cancel("c2"), []);
    assert_eq!(h.waiting(), ["c1", "c3"]);
    // Cancelling twice, or a call never queued, is harmless.
    assert_eq!(h.cancel("c2"), []);
    assert_eq!(h.cancel("zz"), []);
}
