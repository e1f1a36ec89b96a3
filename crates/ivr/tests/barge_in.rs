//! A key during a barge-in prompt stops it and is taken as the choice; a key during a
//! prompt without barge-in does not stop it.

mod common;

use common::{Call, play};
use hotline_ivr::{Command, Lang};

#[test]
fn a_key_stops_the_menu_and_is_the_choice() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    let out = c.key('3');
    assert_eq!(out[0], Command::StopPlayback);
    assert_eq!(out[1], Command::Enqueue { lang: Lang::Es });
    // The stopped list reports nothing; a stale report is ignored.
    assert_eq!(c.finished(), [play(Lang::Es, &["hold-music"], false)]);
}

#[test]
fn a_key_does_not_stop_the_recording_notice() {
    let mut c = Call::new();
    c.answer();
    c.key('1');
    assert_eq!(c.key('1'), []);
}

#[test]
fn at_most_one_play_list_at_a_time() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    let mut playing = true;
    for key in ['9', '7', '9', '1', '2', '#'] {
        for command in c.key(key) {
            match command {
                Command::StopPlayback => playing = false,
                Command::Play { .. } => {
                    assert!(!playing, "Play while a list plays");
                    playing = true;
                }
                _ => {}
            }
        }
    }
}
