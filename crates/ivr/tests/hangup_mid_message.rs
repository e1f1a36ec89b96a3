//! The caller hangs up while recording: the message counts if it is long enough.

mod common;

use common::{Call, outcome, record, secs};
use hotline_ivr::{Disposition, Input, Lang, RecordEnd};

const PATH: &[&str] = &["welcome", "notice", "main-menu", "message"];

fn recording() -> Call {
    let mut c = Call::new();
    c.reach_main_menu('2');
    c.key('2');
    assert_eq!(c.finished(), [record()]);
    c
}

#[test]
fn recording_finished_by_hang_up_then_hung_up() {
    let mut c = recording();
    c.advance(secs(25));
    assert_eq!(c.recorded(RecordEnd::HangUp, 25_000), []);
    assert_eq!(
        c.input(Input::HungUp),
        [outcome(Disposition::Message, Some(Lang::Qu), PATH)]
    );
}

#[test]
fn hung_up_without_a_recording_report_counts_the_time() {
    let mut c = recording();
    c.advance(secs(8));
    assert_eq!(
        c.input(Input::HungUp),
        [outcome(Disposition::Message, Some(Lang::Qu), PATH)]
    );
}

#[test]
fn hanging_up_right_after_the_beep_is_no_message() {
    let mut c = recording();
    c.recorded(RecordEnd::HangUp, 300);
    assert_eq!(
        c.input(Input::HungUp),
        [outcome(Disposition::Abandoned, Some(Lang::Qu), PATH)]
    );
}
