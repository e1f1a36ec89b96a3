//! A waiting caller hears their position ("you are number 2") when they join, when it
//! changes, and every `position_every` (45 s here).

mod common;

use common::{Harness, call, secs};
use hotline_queue::{CallId, QueueConfig, Status};

fn told(h: &Harness) -> Vec<(u64, CallId, u32)> {
    h.positions
        .iter()
        .map(|(t, c, p)| (t.as_secs(), c.clone(), *p))
        .collect()
}

#[test]
fn on_joining_on_change_and_periodically() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.status("ana", Status::Paused);
    h.enqueue("c1", None);
    h.advance(secs(10));
    h.enqueue("c2", None);
    h.advance(secs(40));
    assert_eq!(
        told(&h),
        [(0, call("c1"), 1), (10, call("c2"), 2), (45, call("c1"), 1)]
    );
    h.positions.clear();
    // c1 leaves at 50 s: c2 is told at once, and its period restarts.
    h.cancel("c1");
    h.advance(secs(100));
    assert_eq!(
        told(&h),
        [
            (50, call("c2"), 1),
            (95, call("c2"), 1),
            (140, call("c2"), 1)
        ]
    );
}

#[test]
fn a_ringing_caller_keeps_their_place() {
    let mut h = Harness::new();
    h.login("ana", &["es"]);
    h.enqueue("c1", None); // rings ana
    h.enqueue("c2", None);
    assert_eq!(told(&h), [(0, call("c1"), 1), (0, call("c2"), 2)]);
    h.positions.clear();
    h.answer("c1", "ana");
    assert_eq!(told(&h), [(0, call("c2"), 1)]);
}

#[test]
fn zero_means_only_on_change() {
    let mut h = Harness::with(QueueConfig {
        position_every: secs(0),
        ..common::config()
    });
    h.login("ana", &["es"]);
    h.status("ana", Status::Paused);
    h.enqueue("c1", None);
    h.enqueue("c2", None);
    assert_eq!(h.q.poll_timeout(), Some(h.now + secs(300)));
    h.advance(secs(100));
    h.cancel("c1");
    h.advance(secs(100));
    assert_eq!(
        told(&h),
        [(0, call("c1"), 1), (0, call("c2"), 2), (100, call("c2"), 1)]
    );
}
