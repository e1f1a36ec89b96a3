//! A caller is offered first to operators who speak their language (a Quechua caller to
//! Quechua speakers), then to everyone after `language_wait` (30 s here).

mod common;

use common::{Harness, connected, offer, secs};
use hotline_queue::Status;

#[test]
fn a_quechua_caller_goes_to_a_quechua_speaker_first() {
    let mut h = Harness::new();
    h.login("ana", &["es"]); // idle longest
    h.advance(secs(10));
    h.login("ben", &["es", "qu"]);
    assert_eq!(h.enqueue("c1", Some("qu")), [offer("c1", "ben")]);
    // A Spanish caller behind is not held up: ana takes them.
    assert_eq!(h.enqueue("c2", Some("es")), [offer("c2", "ana")]);
}

#[test]
fn everyone_after_the_language_wait() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.login("qori", &["qu", "es"]);
    // qori is busy with another caller.
    h.enqueue("c0", Some("qu"));
    h.answer("c0", "qori");
    h.advance(secs(5));
    assert_eq!(h.enqueue("c1", Some("qu")), []);
    assert_eq!(h.advance(secs(29)), []);
    assert_eq!(h.wait(), [offer("c1", "ana")]);
    assert_eq!(h.elapsed(), secs(35));
    assert_eq!(h.answer("c1", "ana"), [connected("c1", "ana", secs(30))]);
}

#[test]
fn a_speaker_who_frees_up_within_the_wait_takes_the_call() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.login("qori", &["qu"]);
    h.enqueue("c0", Some("qu"));
    h.answer("c0", "qori");
    h.enqueue("c1", Some("qu"));
    h.advance(secs(5));
    h.end("qori"); // wrap-up: 10 s
    assert_eq!(h.advance(secs(10)), [offer("c1", "qori")]);
    assert_eq!(h.elapsed(), secs(15));
}

#[test]
fn no_waiting_when_no_speaker_is_on_duty() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.login("qori", &["qu"]);
    h.status("qori", Status::Paused);
    assert_eq!(h.enqueue("c1", Some("qu")), [offer("c1", "ana")]);
}

#[test]
fn the_wait_ends_when_the_last_speaker_leaves() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.login("qori", &["qu"]);
    h.enqueue("c0", Some("qu"));
    h.answer("c0", "qori");
    assert_eq!(h.enqueue("c1", Some("qu")), []);
    h.advance(secs(3));
    // qori will go offline after this call: no Quechua speaker is on duty any more.
    assert_eq!(h.status("qori", Status::Offline), [offer("c1", "ana")]);
}

#[test]
fn a_speaker_who_declined_does_not_hold_the_call() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.login("qori", &["qu"]);
    assert_eq!(h.enqueue("c1", Some("qu")), [offer("c1", "qori")]);
    assert_eq!(
        h.fail("c1", "qori", hotline_queue::OfferFailure::Declined),
        [offer("c1", "ana")]
    );
}

#[test]
fn no_language_means_anyone() {
    let mut h = Harness::new();
    h.login("qori", &["qu"]);
    assert_eq!(h.enqueue("c1", None), [offer("c1", "qori")]);
}
