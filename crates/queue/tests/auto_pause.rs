//! An operator who misses two offers in a row (no answer, busy, unreachable) is paused,
//! and sees why until they set their status again.

mod common;

use common::{Harness, cancel_offer, config, connected, offer, secs};
use hotline_queue::{Event, OfferFailure, OperatorState, PauseReason, QueueConfig, Status};

fn paused(o: &str, last: OfferFailure) -> Event {
    Event::OperatorPaused {
        operator: common::op(o),
        reason: PauseReason::MissedOffers { count: 2, last },
    }
}

#[test]
fn two_missed_offers_pause() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    h.advance(secs(20));
    assert_eq!(
        h.advance(secs(20)),
        [
            cancel_offer("c1", "ana"),
            paused("ana", OfferFailure::Timeout)
        ]
    );
    let ana = h.operator("ana");
    assert_eq!(
        (ana.status, ana.state),
        (Status::Paused, OperatorState::Paused)
    );
    assert_eq!(
        ana.paused_reason.map(|r| r.to_string()).as_deref(),
        Some("missed 2 calls in a row (last: no-answer)")
    );
    // Paused: the caller waits.
    assert_eq!(h.advance(secs(60)), []);
    assert_eq!(h.waiting(), ["c1"]);
    // Back to work clears the reason.
    assert_eq!(h.status("ana", Status::Available), [offer("c1", "ana")]);
    assert_eq!(h.operator("ana").paused_reason, None);
}

#[test]
fn misses_of_any_kind_count() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    assert_eq!(
        h.fail("c1", "ana", OfferFailure::Busy),
        [offer("c1", "ana")]
    );
    assert_eq!(
        h.fail("c1", "ana", OfferFailure::Unreachable),
        [paused("ana", OfferFailure::Unreachable)]
    );
    assert_eq!(h.operator("ana").status, Status::Paused);
}

#[test]
fn an_answer_or_a_decline_resets_the_count() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    h.advance(secs(20)); // miss 1, offered again
    h.answer("c1", "ana");
    h.end("ana");
    h.advance(secs(10));
    h.enqueue("c2", None);
    h.advance(secs(20)); // miss 1 again, offered again
    assert_eq!(h.operator("ana").status, Status::Available);
    h.fail("c2", "ana", OfferFailure::Declined);
    h.enqueue("c3", None);
    assert_eq!(
        h.advance(secs(20)),
        [cancel_offer("c3", "ana"), offer("c3", "ana")]
    );
    assert_eq!(h.operator("ana").status, Status::Available);
}

#[test]
fn an_operator_who_went_offline_while_ringing_stays_offline() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.login("ben", &["es"]);
    h.enqueue("c1", None);
    h.advance(secs(20)); // ana missed once; ben rings
    h.enqueue("c2", None); // ana rings
    h.status("ana", Status::Offline);
    assert_eq!(
        h.advance(secs(20)),
        [
            cancel_offer("c1", "ben"),
            cancel_offer("c2", "ana"),
            offer("c1", "ben")
        ]
    );
    assert_eq!(h.operator("ana").status, Status::Offline);
    assert_eq!(h.answer("c1", "ben"), [connected("c1", "ben", secs(40))]);
}

#[test]
fn zero_never_pauses() {
    let mut h = Harness::with(QueueConfig {
        missed_offers_before_pause: 0,
        ..config()
    });
    h.login("ana", &["es"]);
    h.enqueue("c1", None);
    for _ in 0..5 {
        assert_eq!(
            h.advance(secs(20)),
            [cancel_offer("c1", "ana"), offer("c1", "ana")]
        );
    }
}
