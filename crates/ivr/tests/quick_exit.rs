//! The quick-exit key (`*` in the shipped flow): whatever plays, records or waits is
//! replaced at once by the decoy, looped until the caller hangs up or two minutes
//! passed, then the line goes dead without another word. A message being recorded
//! is kept; the call is marked `quick-exit`.

mod common;

use common::{Call, marked, play, record, secs, welcome};
use hotline_ivr::{Command, Disposition, EventKind, Input, Lang, Mark, RecordEnd};

fn decoy(lang: Lang) -> Command {
    play(lang, &["decoy"], false)
}

#[test]
fn during_the_welcome_the_decoy_plays_then_the_line_goes_dead() {
    let mut c = Call::new();
    assert_eq!(c.answer(), [welcome()]);
    assert_eq!(c.key('*'), [Command::StopPlayback, decoy(Lang::Es)]);
    assert!(c.logged(EventKind::QuickExit, "welcome"));
    // The decoy loops; keys mean nothing any more.
    assert_eq!(c.finished(), [decoy(Lang::Es)]);
    assert_eq!(c.key('1'), []);
    assert_eq!(c.key('*'), []);
    assert_eq!(c.finished(), [decoy(Lang::Es)]);
    assert_eq!(c.advance(secs(119)), []);
    assert_eq!(
        c.advance(secs(1)),
        [
            Command::HangUp,
            marked(
                Disposition::Abandoned,
                None,
                &["welcome"],
                &[Mark::QuickExit]
            )
        ]
    );
    assert_eq!(c.elapsed(), secs(120));
}

#[test]
fn in_the_menu_the_decoy_is_in_the_callers_language() {
    let mut c = Call::new();
    c.reach_main_menu('2');
    assert_eq!(c.key('*'), [Command::StopPlayback, decoy(Lang::Qu)]);
    assert!(c.logged(EventKind::QuickExit, "main-menu"));
    assert_eq!(
        c.input(Input::HungUp),
        [marked(
            Disposition::Abandoned,
            Some(Lang::Qu),
            &["welcome", "notice", "main-menu"],
            &[Mark::QuickExit]
        )]
    );
}

#[test]
fn barges_into_a_prompt_without_barge_in() {
    let mut c = Call::new();
    c.answer();
    // The recording notice has no barge-in: other keys are typed ahead.
    c.key('1');
    assert_eq!(c.key('*'), [Command::StopPlayback, decoy(Lang::Es)]);
    assert!(c.logged(EventKind::QuickExit, "notice"));
    // Nothing typed ahead survives: the decoy goes on.
    assert_eq!(c.finished(), [decoy(Lang::Es)]);
}

#[test]
fn a_message_being_recorded_is_kept() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.key('2');
    assert_eq!(c.finished(), [record()]);
    c.advance(secs(8));
    assert_eq!(c.key('*'), [Command::StopRecording, decoy(Lang::Es)]);
    assert!(c.logged(EventKind::QuickExit, "message"));
    // The shell's report of the stopped recording does not move the flow on.
    assert_eq!(c.recorded(RecordEnd::Stopped, 8_000), []);
    assert_eq!(c.finished(), [decoy(Lang::Es)]);
    assert_eq!(
        c.input(Input::HungUp),
        [marked(
            Disposition::Message,
            Some(Lang::Es),
            &["welcome", "notice", "main-menu", "message"],
            &[Mark::QuickExit]
        )]
    );
}

#[test]
fn in_the_queue_the_call_leaves_it_and_an_operator_is_not_bridged() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.key('3');
    assert_eq!(
        c.key('*'),
        [Command::StopPlayback, Command::LeaveQueue, decoy(Lang::Es)]
    );
    assert_eq!(c.input(Input::OperatorAnswered), []);
    assert_eq!(c.finished(), [decoy(Lang::Es)]);
}

#[test]
fn during_the_goodbye_at_the_cap_no_goodbye_follows() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    while c.elapsed() < secs(20 * 60 - 10) {
        c.advance(secs(10));
        c.key('9');
    }
    assert_eq!(
        c.wait(),
        [Command::StopPlayback, play(Lang::Es, &["goodbye"], false)]
    );
    assert_eq!(c.key('*'), [Command::StopPlayback, decoy(Lang::Es)]);
    // The goodbye's end would have hung up; the decoy plays on instead.
    assert_eq!(c.finished(), [decoy(Lang::Es)]);
    assert_eq!(c.advance(secs(119)), []);
    assert_eq!(c.advance(secs(1))[0], Command::HangUp);
}

#[test]
fn in_a_keypad_question_and_a_callback_question() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.finished();
    c.advance(secs(6));
    c.finished();
    c.advance(secs(6));
    c.finished();
    c.key('1');
    assert_eq!(c.finished(), []);
    assert_eq!(c.key('*'), [decoy(Lang::Es)]);
    assert!(c.logged(EventKind::QuickExit, "ask-danger"));

    let mut c = Call::new();
    c.flow.set_callback_offer(true);
    c.reach_main_menu('1');
    c.key('3');
    c.key('3');
    assert_eq!(c.key('*'), [Command::StopPlayback, decoy(Lang::Es)]);
    assert!(c.logged(EventKind::QuickExit, "callback"));
    // Nothing was booked.
    let out = c.input(Input::HungUp);
    assert!(
        matches!(&out[..], [Command::Outcome { marks, .. }] if marks == &[Mark::QuickExit]),
        "{out:?}"
    );
}

#[test]
fn a_flow_without_quick_exit_treats_star_as_any_key() {
    let text = common::shipped_text().replace(
        "[quick_exit]\nkey = \"*\"\ndecoy = [\"decoy\"]\nmax_ms = 120_000\n",
        "",
    );
    let def = std::sync::Arc::new(hotline_ivr::FlowDef::from_toml(&text).expect("loads"));
    assert!(def.quick_exit().is_none());
    let mut c = Call::with(def);
    c.reach_main_menu('1');
    assert_eq!(
        c.key('*'),
        [
            Command::StopPlayback,
            play(Lang::Es, &["invalid-option", "main-menu"], true)
        ]
    );
}
