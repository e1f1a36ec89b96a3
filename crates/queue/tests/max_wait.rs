//! After `max_wait` (300 s here) the caller leaves the queue with `NoOperator(MaxWait)` and
//! is offered the message path: never endless music.

mod common;

use common::{Harness, cancel_offer, connected, no_operator, offer, secs};
use hotline_queue::{NoOperatorReason, Status};

#[test]
fn the_caller_gives_up_at_max_wait() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.status("ana", Status::Paused); // logged in, not taking calls
    h.advance(secs(7));
    assert_eq!(h.enqueue("c1", None), []);
    assert_eq!(h.advance(secs(299)), []);
    assert_eq!(
        h.advance(secs(1)),
        [no_operator("c1", NoOperatorReason::MaxWait)]
    );
    assert_eq!(h.elapsed(), secs(307));
    assert!(h.waiting().is_empty());
    assert!(!h.q.contains_call(&common::call("c1")));
    assert_eq!(h.q.poll_timeout(), None);
}

#[test]
fn a_ringing_offer_is_not_cut_short() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.status("ana", Status::Paused);
    h.enqueue("c1", None);
    h.enqueue("c2", None);
    h.advance(secs(290));
    assert_eq!(h.status("ana", Status::Available), [offer("c1", "ana")]);
    // c1's time is up at 300 s but its phone rings; c2 gives up.
    assert_eq!(
        h.advance(secs(10)),
        [no_operator("c2", NoOperatorReason::MaxWait)]
    );
    assert_eq!(h.answer("c1", "ana"), [connected("c1", "ana", secs(300))]);
}

#[test]
fn a_failed_offer_after_max_wait_ends_the_wait() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.status("ana", Status::Paused);
    h.enqueue("c1", None);
    h.advance(secs(290));
    h.status("ana", Status::Available);
    assert_eq!(
        h.advance(secs(20)),
        [
            cancel_offer("c1", "ana"),
            no_operator("c1", NoOperatorReason::MaxWait)
        ]
    );
    assert_eq!(h.elapsed(), secs(310));
}
