//! No key in the main menu: "no input" and the menu again; twice leads to leaving a
//! message, so a caller who cannot press keys can still speak.

mod common;

use common::{Call, ms, outcome, play, record, secs};
use hotline_ivr::{Disposition, EventKind, Input, Lang};

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
    assert_eq!(
        c.finished(),
        [play(Lang::Es, &["message-instructions", "beep"], true)]
    );
    assert_eq!(c.finished(), [record()]);
    c.advance(secs(30));
    c.recorded(hotline_ivr::RecordEnd::Silence, 30_000);
    c.finished();
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
