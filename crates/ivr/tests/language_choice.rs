//! The bilingual welcome: 1 Spanish, 2 Quechua, nothing (or anything else) Spanish.
//! The language chosen is the language of every later prompt and of the outcome.

mod common;

use common::{Call, ms, outcome, play, secs};
use hotline_ivr::{Command, Disposition, EventKind, Input, Lang};

#[test]
fn key_1_is_spanish() {
    let mut c = Call::new();
    assert_eq!(c.answer(), [common::welcome()]);
    assert_eq!(
        c.key('1'),
        [
            Command::StopPlayback,
            play(Lang::Es, &["recording-notice"], false)
        ]
    );
    assert_eq!(c.flow.language(), Some(Lang::Es));
    assert!(c.logged(EventKind::Language, "es key"));
    assert_eq!(c.finished(), [play(Lang::Es, &["main-menu"], true)]);
}

#[test]
fn key_2_is_quechua_for_every_later_prompt() {
    let mut c = Call::new();
    c.answer();
    assert_eq!(
        c.key('2'),
        [
            Command::StopPlayback,
            play(Lang::Qu, &["recording-notice"], false)
        ]
    );
    assert_eq!(c.finished(), [play(Lang::Qu, &["main-menu"], true)]);
    assert_eq!(c.finished(), []);
    assert_eq!(c.key('1'), [play(Lang::Qu, &["information"], true)]);
    assert_eq!(
        c.input(Input::HungUp),
        [outcome(
            Disposition::Abandoned,
            Some(Lang::Qu),
            &["welcome", "notice", "main-menu", "information"]
        )]
    );
}

#[test]
fn key_after_the_welcome_ends_counts_too() {
    let mut c = Call::new();
    c.answer();
    assert_eq!(c.finished(), []);
    c.advance(secs(3));
    assert_eq!(c.key('2'), [play(Lang::Qu, &["recording-notice"], false)]);
}

#[test]
fn no_input_is_spanish_after_5_s() {
    let mut c = Call::new();
    c.answer();
    c.advance(secs(4));
    assert_eq!(c.finished(), []);
    assert_eq!(c.advance(ms(4_999)), []);
    assert_eq!(
        c.advance(ms(1)),
        [play(Lang::Es, &["recording-notice"], false)]
    );
    assert_eq!(c.elapsed(), secs(9));
    assert_eq!(c.flow.language(), Some(Lang::Es));
    assert!(c.logged(EventKind::NoInput, "welcome"));
    assert!(c.logged(EventKind::Language, "es default"));
}

#[test]
fn another_key_is_spanish() {
    let mut c = Call::new();
    c.answer();
    assert_eq!(
        c.key('7'),
        [
            Command::StopPlayback,
            play(Lang::Es, &["recording-notice"], false)
        ]
    );
    assert!(c.logged(EventKind::InvalidOption, "welcome 7"));
    assert!(c.logged(EventKind::Language, "es default"));
}

#[test]
fn hang_up_before_choosing_has_no_language() {
    let mut c = Call::new();
    c.answer();
    assert_eq!(
        c.input(Input::HungUp),
        [common::marked(
            Disposition::Abandoned,
            None,
            &["welcome"],
            &[hotline_ivr::Mark::Silent]
        )]
    );
}
