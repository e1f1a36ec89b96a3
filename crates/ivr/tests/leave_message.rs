//! Main menu 2: instructions, beep, recording; then "message saved", the reference
//! number twice, and the main menu again.

mod common;

use common::{Call, outcome, play, record, saved};
use hotline_ivr::{Command, Disposition, EventKind, Input, Lang, RecordEnd};

#[test]
fn message_ended_by_the_finish_key() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.finished();
    assert_eq!(
        c.key('2'),
        [play(Lang::Es, &["message-instructions", "beep"], true)]
    );
    // The beep is the end of the play list: recording starts right after it.
    assert_eq!(c.finished(), [record()]);
    // The shell ends the recording on `#`; the flow ignores the keys meanwhile.
    assert_eq!(c.key('5'), []);
    assert_eq!(c.key('#'), []);
    assert!(!c.logged(EventKind::Digit, "5"));
    assert_eq!(c.recorded(RecordEnd::FinishKey, 42_000), [saved(Lang::Es)]);
    assert!(c.logged(EventKind::RecordingFinished, "finish-key 42000"));
    assert_eq!(c.finished(), [play(Lang::Es, &["main-menu"], true)]);
    assert_eq!(
        c.input(Input::HungUp),
        [outcome(
            Disposition::Message,
            Some(Lang::Es),
            &[
                "welcome",
                "notice",
                "main-menu",
                "message",
                "saved",
                "main-menu"
            ]
        )]
    );
}

#[test]
fn message_in_quechua_ended_by_silence() {
    let mut c = Call::new();
    c.reach_main_menu('2');
    c.key('2');
    assert_eq!(c.finished(), [record()]);
    assert_eq!(c.recorded(RecordEnd::Silence, 20_000), [saved(Lang::Qu)]);
}

#[test]
fn a_key_during_the_instructions_skips_to_the_beep() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.key('2');
    assert_eq!(
        c.key('#'),
        [Command::StopPlayback, play(Lang::Es, &["beep"], false)]
    );
    // Not during the beep.
    assert_eq!(c.key('#'), []);
    assert_eq!(c.finished(), [record()]);
}

#[test]
fn a_recording_too_short_is_not_a_message() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.key('2');
    c.finished();
    assert_eq!(
        c.recorded(RecordEnd::FinishKey, 400),
        [play(Lang::Es, &["main-menu"], true)]
    );
    assert_eq!(
        c.input(Input::HungUp),
        [outcome(
            Disposition::Abandoned,
            Some(Lang::Es),
            &["welcome", "notice", "main-menu", "message", "main-menu"]
        )]
    );
}

#[test]
fn a_finish_key_before_the_beep_does_not_end_the_recording() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    // 2, then # while the main menu is stopped: the # goes nowhere.
    c.key('2');
    assert_eq!(
        c.key('#'),
        [Command::StopPlayback, play(Lang::Es, &["beep"], false)]
    );
    assert_eq!(c.finished(), [record()]);
    assert_eq!(c.recorded(RecordEnd::MaxLength, 300_000), [saved(Lang::Es)]);
    // Keys during the reference number are kept for the menu that follows.
    assert_eq!(c.key('3'), []);
    assert_eq!(
        c.finished(),
        [
            Command::Enqueue { lang: Lang::Es },
            play(Lang::Es, &["connecting-operator"], false)
        ]
    );
}
