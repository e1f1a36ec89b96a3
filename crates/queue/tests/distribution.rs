//! Who is offered a call: the operator idle longest, one offer per call and per operator,
//! callers in queue order; only available, registered, free operators.

mod common;

use common::{Harness, cancel_offer, connected, offer, secs};
use hotline_queue::{OfferFailure, OperatorState, Status};

#[test]
fn the_operator_idle_longest_goes_first() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.advance(secs(5));
    h.login("ben", &["es"]);
    h.advance(secs(5));
    assert_eq!(h.enqueue("c1", Some("es")), [offer("c1", "ana")]);
    assert_eq!(h.enqueue("c2", Some("es")), [offer("c2", "ben")]);
    assert_eq!(h.operator("ana").state, OperatorState::Ringing);
    assert_eq!(h.operator("ana").offered_call, Some(common::call("c1")));
}

#[test]
fn idle_since_the_end_of_wrap_up() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.login("ben", &["es"]);
    // ana (first by name at the same instant) takes a call and wraps up.
    assert_eq!(h.enqueue("c1", None), [offer("c1", "ana")]);
    assert_eq!(h.answer("c1", "ana"), [connected("c1", "ana", secs(0))]);
    h.advance(secs(60));
    h.end("ana");
    h.advance(secs(30)); // ana idle since 70 s, ben since 0 s
    assert_eq!(h.enqueue("c2", None), [offer("c2", "ben")]);
    assert_eq!(h.enqueue("c3", None), [offer("c3", "ana")]);
}

#[test]
fn one_offer_per_operator_and_callers_in_order() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    assert_eq!(h.enqueue("c1", None), [offer("c1", "ana")]);
    assert_eq!(h.enqueue("c2", None), []);
    assert_eq!(h.enqueue("c3", None), []);
    assert_eq!(h.waiting(), ["c1", "c2", "c3"]);
    // A second operator takes the oldest caller not being offered.
    assert_eq!(h.login("ben", &["es"]), [offer("c2", "ben")]);
    h.advance(secs(3));
    assert_eq!(h.answer("c1", "ana"), [connected("c1", "ana", secs(3))]);
    assert_eq!(h.waiting(), ["c2", "c3"]);
    // A call already queued is not queued twice.
    assert_eq!(h.enqueue("c2", None), []);
    assert_eq!(h.waiting(), ["c2", "c3"]);
}

#[test]
fn only_available_registered_operators() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.status("ana", Status::Paused);
    h.register("ben", true); // registered, still offline
    h.login("eva", &["es"]);
    h.register("eva", false);
    assert_eq!(h.enqueue("c1", None), []);
    assert_eq!(h.operator("ben").state, OperatorState::Offline);
    // Registering again makes eva offerable at once.
    assert_eq!(h.register("eva", true), [offer("c1", "eva")]);
}

#[test]
fn becoming_available_is_the_back_of_the_line() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.advance(secs(5));
    h.login("ben", &["es"]);
    h.advance(secs(5));
    h.status("ana", Status::Paused);
    h.status("ana", Status::Available);
    assert_eq!(h.enqueue("c1", None), [offer("c1", "ben")]);
}

#[test]
fn a_declined_call_goes_elsewhere_and_never_back() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.login("ben", &["es"]);
    assert_eq!(h.enqueue("c1", None), [offer("c1", "ana")]);
    assert_eq!(h.enqueue("c2", None), [offer("c2", "ben")]);
    h.advance(secs(2));
    // ana declines c1 and is offered... nothing: c2 rings ben, c1 is not for her.
    assert_eq!(h.fail("c1", "ana", OfferFailure::Declined), []);
    assert_eq!(h.operator("ana").state, OperatorState::Available);
    h.advance(secs(2));
    // ben declines c2: ana takes c2, ben takes c1.
    assert_eq!(
        h.fail("c2", "ben", OfferFailure::Declined),
        [offer("c1", "ben"), offer("c2", "ana")]
    );
    // Declines are not misses: nobody is paused.
    assert_eq!(h.fail("c1", "ben", OfferFailure::Declined), []);
    assert_eq!(h.operator("ben").status, Status::Available);
    assert_eq!(h.waiting(), ["c1", "c2"]);
}

#[test]
fn a_late_or_stray_answer_is_hung_up() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.login("ben", &["es"]);
    h.enqueue("c1", None);
    h.advance(secs(20)); // the ring timeout moves c1 to ben
    assert_eq!(h.answer("c1", "ana"), [cancel_offer("c1", "ana")]);
    assert_eq!(h.answer("nope", "ben"), [cancel_offer("nope", "ben")]);
    assert_eq!(h.operator("ben").state, OperatorState::Ringing);
    // A failure report for an offer already withdrawn changes nothing.
    assert_eq!(h.fail("c1", "ana", OfferFailure::Timeout), []);
    assert_eq!(h.answer("c1", "ben"), [connected("c1", "ben", secs(20))]);
}
