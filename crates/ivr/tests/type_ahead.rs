//! Keys typed ahead during a prompt without barge-in are kept, and the next menu takes
//! them without playing: a caller who knows the menu types 2 then 2.

mod common;

use common::{Call, play};
use hotline_ivr::{Command, Lang};

#[test]
fn two_then_two_reaches_the_message_in_quechua() {
    let mut c = Call::new();
    c.answer();
    assert_eq!(
        c.key('2'),
        [
            Command::StopPlayback,
            play(Lang::Qu, &["recording-notice"], false)
        ]
    );
    // During the notice: kept, the notice plays on.
    assert_eq!(c.key('2'), []);
    // The main menu takes the 2 without playing.
    assert_eq!(
        c.finished(),
        [play(Lang::Qu, &["message-instructions", "beep"], true)]
    );
}

#[test]
fn several_menus_in_a_row() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.key('1');
    // Information plays with barge-in: 9 stops it and repeats the main menu.
    assert_eq!(
        c.key('9'),
        [Command::StopPlayback, play(Lang::Es, &["main-menu"], true)]
    );
}

#[test]
fn a_wrong_key_typed_ahead_drops_the_rest() {
    let mut c = Call::new();
    c.answer();
    c.key('1');
    c.key('7');
    c.key('3');
    assert_eq!(
        c.finished(),
        [play(Lang::Es, &["invalid-option", "main-menu"], true)]
    );
    c.finished();
    assert_eq!(
        c.flow.poll_timeout().map(|t| t - c.now),
        Some(common::secs(6))
    );
}

#[test]
fn keys_typed_during_the_reference_number_are_kept() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.key('2');
    c.finished();
    c.recorded(hotline_ivr::RecordEnd::FinishKey, 5_000);
    assert_eq!(c.key('1'), []);
    assert_eq!(c.finished(), [play(Lang::Es, &["information"], true)]);
}
