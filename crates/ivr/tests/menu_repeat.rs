//! Main menu 9: the menu again, not counted as a failure.

mod common;

use common::{Call, play, secs};
use hotline_ivr::{Command, Lang};

#[test]
fn nine_repeats_the_menu() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    assert_eq!(
        c.key('9'),
        [Command::StopPlayback, play(Lang::Es, &["main-menu"], true)]
    );
    c.finished();
    assert_eq!(c.key('9'), [play(Lang::Es, &["main-menu"], true)]);
}

#[test]
fn repeats_do_not_use_up_the_retries() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.finished();
    assert_eq!(
        c.advance(secs(6)),
        [play(Lang::Es, &["no-input", "main-menu"], true)]
    );
    for _ in 0..3 {
        c.finished();
        assert_eq!(c.key('9'), [play(Lang::Es, &["main-menu"], true)]);
    }
    c.finished();
    // Still one retry used: the next timeout leaves the menu.
    assert_eq!(c.advance(secs(6)), [play(Lang::Es, &["no-input"], false)]);
}
