//! No key in the main menu: "no input" and the menu again; twice leads to the offer
//! for callers who cannot talk, and no key there to leaving a message, so a caller
//! who cannot press keys can still speak. A call without a key nor speech is `silent`.

mod common;

use common::{Call, marked, ms, play, record, secs};
use hotline_ivr::{Command, Disposition, EventKind, Input, Lang, Mark};

#[test]
fn no_input_twice_leads_to_the_message() {
    let mut c = Call::new();
    c.answer();
    // No key at the welcome either: Spanish.
    c.finished();
    c.advance(secs(5));
    assert_eq!(c.finished(), [play(Lang::Es, &["main-menu"], true)]);
    // The menu timer starts when the menu ends, not before.
    assert_eq!(
        c.flow.poll_timeout().map(|t| t - c.epoch),
        Some(secs(20 * 60))
    );
    assert_eq!(c.finished(), []);
    assert_eq!(c.advance(ms(5_999)), []);
    assert_eq!(
        c.advance(ms(1)),
        [play(Lang::Es, &["no-input", "main-menu"], true)]
    );
    assert!(c.logged(EventKind::NoInput, "main-menu"));
    c.finished();
    assert_eq!(c.advance(secs(6)), [play(Lang::Es, &["no-input"], false)]);
    assert_eq!(c.finished(), [play(Lang::Es, &["cannot-talk"], true)]);
    assert_eq!(c.finished(), []);
    assert_eq!(c.advance(ms(5_999)), []);
    assert_eq!(
        c.advance(ms(1)),
        [play(Lang::Es, &["message-instructions", "beep"], true)]
    );
    assert!(c.logged(EventKind::NoInput, "cannot-talk"));
    assert_eq!(c.finished(), [record()]);
    c.advance(secs(30));
    c.recorded(hotline_ivr::RecordEnd::Silence, 30_000);
    c.finished();
    assert_eq!(
        c.input(Input::HungUp),
        [marked(
            Disposition::Message,
            Some(Lang::Es),
            &[
                "welcome",
                "notice",
                "main-menu",
                "cannot-talk",
                "message",
                "saved",
                "main-menu"
            ],
            &[Mark::Silent]
        )]
    );
}

#[test]
fn speech_in_the_message_is_not_silent() {
    let mut c = Call::new();
    c.answer();
    c.finished(); // welcome
    c.advance(secs(5)); // Spanish by default: the notice
    c.finished(); // the main menu plays
    c.finished();
    c.advance(secs(6)); // no input, the menu again
    c.finished();
    c.advance(secs(6)); // "no input"
    c.finished(); // "if you cannot talk"
    c.finished();
    c.advance(secs(6)); // the message instructions
    assert_eq!(c.finished(), [record()]);
    c.input(Input::Speech);
    c.recorded(hotline_ivr::RecordEnd::HangUp, 12_000);
    let out = c.input(Input::HungUp);
    assert!(
        matches!(&out[..], [Command::Outcome { disposition: Disposition::Message, marks, .. }] if marks.is_empty()),
        "{out:?}"
    );
}
