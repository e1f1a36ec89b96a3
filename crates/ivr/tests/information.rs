//! Main menu 1: the information, then back to the main menu. A key during the
//! information skips it and counts as the main-menu choice.

mod common;

use common::{Call, play};
use hotline_ivr::{Command, Lang};

#[test]
fn information_then_back_to_the_menu() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    assert_eq!(
        c.key('1'),
        [
            Command::StopPlayback,
            play(Lang::Es, &["information"], true)
        ]
    );
    assert_eq!(c.finished(), [play(Lang::Es, &["main-menu"], true)]);
    assert_eq!(c.finished(), []);
    assert_eq!(c.key('1'), [play(Lang::Es, &["information"], true)]);
}

#[test]
fn a_key_during_the_information_is_the_menu_choice() {
    let mut c = Call::new();
    c.reach_main_menu('2');
    c.key('1');
    assert_eq!(
        c.key('2'),
        [
            Command::StopPlayback,
            play(Lang::Qu, &["message-instructions", "beep"], true)
        ]
    );
}
