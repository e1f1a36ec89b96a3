//! `max_call_ms` (20 minutes in the shipped flow): whatever plays, records or waits
//! stops, goodbye plays, the flow hangs up.

mod common;

use common::{Call, outcome, play, record, secs};
use hotline_ivr::{Command, Disposition, EventKind, Input, Lang};

const CAP: u64 = 20 * 60;

#[test]
fn a_caller_stuck_in_the_menu_hears_goodbye_at_20_minutes() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    // Repeat the menu every 10 s, never letting it end.
    while c.elapsed() < secs(CAP - 10) {
        assert_eq!(c.advance(secs(10)), []);
        c.key('9');
    }
    assert_eq!(
        c.wait(),
        [Command::StopPlayback, play(Lang::Es, &["goodbye"], false)]
    );
    assert_eq!(c.elapsed(), secs(CAP));
    assert!(c.logged(EventKind::MaxCallLength, "1200000"));
    let path: Vec<String> = ["welcome", "notice", "main-menu", "goodbye"]
        .map(String::from)
        .into();
    assert_eq!(
        c.finished(),
        [
            Command::HangUp,
            Command::Outcome {
                disposition: Disposition::Abandoned,
                language: Some(Lang::Es),
                path,
                reference: common::REFERENCE.to_owned(),
                marks: Vec::new(),
            }
        ]
    );
    // The shell's BYE completes: no second outcome.
    assert_eq!(c.input(Input::HungUp), []);
}

#[test]
fn the_cap_stops_a_recording_and_keeps_the_message() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.advance(secs(CAP - 60));
    c.key('2');
    assert_eq!(c.finished(), [record()]);
    assert_eq!(
        c.wait(),
        [Command::StopRecording, play(Lang::Es, &["goodbye"], false)]
    );
    assert_eq!(c.recorded(hotline_ivr::RecordEnd::Stopped, 59_000), []);
    assert_eq!(
        c.finished(),
        [
            Command::HangUp,
            outcome(
                Disposition::Message,
                Some(Lang::Es),
                &["welcome", "notice", "main-menu", "message", "goodbye"]
            )
        ]
    );
}

#[test]
fn the_cap_takes_the_call_out_of_the_queue() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.advance(secs(CAP - 120));
    c.key('3');
    c.finished();
    assert_eq!(
        c.wait(),
        [
            Command::StopPlayback,
            Command::LeaveQueue,
            play(Lang::Es, &["goodbye"], false)
        ]
    );
    assert_eq!(c.input(Input::OperatorAnswered), []);
}

#[test]
fn goodbye_that_never_ends_still_hangs_up() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    assert_eq!(
        c.advance(secs(CAP)),
        [Command::StopPlayback, play(Lang::Es, &["goodbye"], false)]
    );
    assert_eq!(
        c.wait(),
        [
            Command::HangUp,
            outcome(
                Disposition::Abandoned,
                Some(Lang::Es),
                &["welcome", "notice", "main-menu", "goodbye"]
            )
        ]
    );
    assert_eq!(c.elapsed(), secs(CAP + 30));
}

#[test]
fn the_cap_counts_before_answer() {
    let mut c = Call::new();
    assert_eq!(
        c.wait(),
        [Command::HangUp, outcome(Disposition::Abandoned, None, &[])]
    );
}
