//! With no operator logged in (at night) a caller is offered the message path at once, and
//! so is everyone waiting when the last operator leaves.

mod common;

use common::{Harness, cancel_offer, no_operator, offer, secs};
use hotline_queue::{NoOperatorReason, OfferFailure, Status};

const NOBODY: NoOperatorReason = NoOperatorReason::NobodyLoggedIn;

#[test]
fn nobody_known() {
    let mut h = Harness::new();
    assert!(!h.q.anyone_logged_in());
    assert_eq!(h.enqueue("c1", Some("qu")), [no_operator("c1", NOBODY)]);
    assert!(h.waiting().is_empty());
    assert!(h.positions.is_empty());
    assert_eq!(h.q.poll_timeout(), None);
}

#[test]
fn offline_or_unregistered_is_not_logged_in() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.status("ana", Status::Offline);
    h.login("ben", &["es"]);
    h.register("ben", false);
    assert_eq!(h.enqueue("c1", None), [no_operator("c1", NOBODY)]);
}

#[test]
fn paused_is_logged_in() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.status("ana", Status::Paused);
    assert_eq!(h.enqueue("c1", None), []);
    assert_eq!(h.waiting(), ["c1"]);
}

#[test]
fn the_last_operator_leaving_releases_the_waiting() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.login("ben", &["es"]);
    h.status("ben", Status::Paused);
    h.enqueue("c1", None); // rings ana
    h.enqueue("c2", None);
    h.enqueue("c3", None);
    assert_eq!(h.status("ben", Status::Offline), []);
    h.advance(secs(4));
    // ana's softphone unregisters while c1 rings her: the others go at once, c1's ring
    // runs its course.
    assert_eq!(
        h.register("ana", false),
        [no_operator("c2", NOBODY), no_operator("c3", NOBODY)]
    );
    assert_eq!(
        h.fail("c1", "ana", OfferFailure::Unreachable),
        [no_operator("c1", NOBODY)]
    );
    assert_eq!(h.q.poll_timeout(), None);
}

#[test]
fn a_ring_timeout_with_nobody_left() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    assert_eq!(h.enqueue("c1", None), [offer("c1", "ana")]);
    h.status("ana", Status::Offline);
    assert_eq!(
        h.advance(secs(20)),
        [cancel_offer("c1", "ana"), no_operator("c1", NOBODY)]
    );
}
