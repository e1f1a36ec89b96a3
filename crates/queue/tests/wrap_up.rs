//! After each conversation the operator has `wrap_up` (10 s here) before the next offer.

mod common;

use common::{Harness, connected, offer, secs};
use hotline_queue::{OperatorState, QueueConfig, Status};

#[test]
fn the_next_offer_waits_for_the_end_of_wrap_up() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    h.answer("c1", "ana");
    assert_eq!(h.operator("ana").current_call, Some(common::call("c1")));
    assert_eq!(h.operator("ana").state, OperatorState::Busy);
    assert_eq!(h.enqueue("c2", None), []);
    h.advance(secs(120));
    assert_eq!(h.end("ana"), []);
    let ana = h.operator("ana");
    assert_eq!(ana.state, OperatorState::WrapUp);
    assert_eq!(ana.current_call, None);
    assert_eq!(ana.wrap_up_until, Some(h.now + secs(10)));
    assert_eq!(h.advance(secs(9)), []);
    assert_eq!(h.advance(secs(1)), [offer("c2", "ana")]);
    assert_eq!(h.elapsed(), secs(130));
}

#[test]
fn a_second_end_does_not_extend_it() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    h.answer("c1", "ana");
    h.end("ana");
    h.advance(secs(5));
    // The caller's side reports too: cancel on a connected call ends it, once.
    assert_eq!(h.cancel("c1"), []);
    h.end("ana");
    h.enqueue("c2", None);
    assert_eq!(h.advance(secs(5)), [offer("c2", "ana")]);
}

#[test]
fn the_caller_hanging_up_ends_the_call() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    h.answer("c1", "ana");
    assert!(h.q.contains_call(&common::call("c1")));
    h.cancel("c1");
    assert!(!h.q.contains_call(&common::call("c1")));
    assert_eq!(h.operator("ana").state, OperatorState::WrapUp);
}

#[test]
fn paused_during_wrap_up_means_no_offer() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    h.answer("c1", "ana");
    h.enqueue("c2", None);
    h.end("ana");
    h.status("ana", Status::Paused);
    assert_eq!(h.advance(secs(30)), []);
    assert_eq!(h.operator("ana").state, OperatorState::Paused);
    assert_eq!(h.status("ana", Status::Available), [offer("c2", "ana")]);
}

#[test]
fn zero_wrap_up_is_free_at_once() {
    let mut h = Harness::with(QueueConfig {
        wrap_up: secs(0),
        ..common::config()
    });
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    h.enqueue("c2", None);
    assert_eq!(h.answer("c1", "ana"), [connected("c1", "ana", secs(0))]);
    assert_eq!(h.end("ana"), [offer("c2", "ana")]);
}
