//! A key that is not an option: "invalid option", the menu again; twice leaves the
//! menu for the message path.

mod common;

use common::{Call, play};
use hotline_ivr::{Command, EventKind, Lang};

#[test]
fn invalid_then_retry() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    assert_eq!(
        c.key('7'),
        [
            Command::StopPlayback,
            play(Lang::Es, &["invalid-option", "main-menu"], true)
        ]
    );
    assert!(c.logged(EventKind::InvalidOption, "main-menu 7"));
    // The retry is barge-in too.
    assert_eq!(
        c.key('1'),
        [
            Command::StopPlayback,
            play(Lang::Es, &["information"], true)
        ]
    );
}

#[test]
fn invalid_twice_offers_the_keypad_path_then_the_message() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.key('8');
    c.finished();
    assert_eq!(c.key('0'), [play(Lang::Es, &["invalid-option"], false)]);
    assert_eq!(c.finished(), [play(Lang::Es, &["cannot-talk"], true)]);
    // A wrong key there too: no retries, so on to the message.
    assert_eq!(
        c.key('5'),
        [
            Command::StopPlayback,
            play(Lang::Es, &["invalid-option"], false)
        ]
    );
    assert_eq!(
        c.finished(),
        [play(Lang::Es, &["message-instructions", "beep"], true)]
    );
}
