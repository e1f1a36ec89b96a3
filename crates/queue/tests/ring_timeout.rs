//! An offer rings for `ring_timeout` (20 s here); then it is withdrawn and the caller is
//! offered to the next operator.

mod common;

use common::{Harness, cancel_offer, connected, offer, secs};
use hotline_queue::{OfferFailure, OperatorState};

#[test]
fn unanswered_offers_move_to_the_next_operator() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.advance(secs(1));
    h.login("ben", &["es"]);
    assert_eq!(h.enqueue("c1", None), [offer("c1", "ana")]);
    assert_eq!(h.q.poll_timeout(), Some(h.now + secs(20)));
    assert_eq!(h.advance(secs(19)), []);
    assert_eq!(
        h.advance(secs(1)),
        [cancel_offer("c1", "ana"), offer("c1", "ben")]
    );
    assert_eq!(h.elapsed(), secs(21));
    // ana went to the back of the line; she is free but not ringing.
    assert_eq!(h.operator("ana").state, OperatorState::Available);
    assert_eq!(h.operator("ana").idle_since, Some(h.now));
    // The same again, back to ana.
    assert_eq!(
        h.advance(secs(20)),
        [cancel_offer("c1", "ben"), offer("c1", "ana")]
    );
    h.advance(secs(4));
    assert_eq!(h.answer("c1", "ana"), [connected("c1", "ana", secs(44))]);
}

#[test]
fn a_sole_operator_is_offered_again() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    assert_eq!(
        h.advance(secs(20)),
        [cancel_offer("c1", "ana"), offer("c1", "ana")]
    );
}

#[test]
fn a_failure_reported_by_the_call_moves_on_at_once() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.login("ben", &["es"]);
    h.enqueue("c1", None);
    h.advance(secs(8));
    // The softphone is gone (480): no CancelOffer, the call task knows.
    assert_eq!(
        h.fail("c1", "ana", OfferFailure::Unreachable),
        [offer("c1", "ben")]
    );
    // The new offer has its own 20 s.
    assert_eq!(h.q.poll_timeout(), Some(h.now + secs(20)));
}

#[test]
fn a_zero_ring_timeout_is_one_second() {
    let mut h = Harness::with(hotline_queue::QueueConfig {
        ring_timeout: secs(0),
        ..common::config()
    });
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    assert_eq!(h.q.poll_timeout(), Some(h.now + secs(1)));
    assert_eq!(
        h.advance(secs(1)),
        [cancel_offer("c1", "ana"), offer("c1", "ana")]
    );
}
