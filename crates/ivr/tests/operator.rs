//! Main menu 3: the operator queue. Hold music with position announcements; an
//! operator answering makes the call an `operator` call; no operator (or a wait too
//! long) offers a message.

mod common;

use common::{Call, outcome, play, secs};
use hotline_ivr::{Command, Disposition, EventKind, Input, Lang};

fn queued(lang_key: char) -> Call {
    let mut c = Call::new();
    c.reach_main_menu(lang_key);
    let lang = if lang_key == '2' { Lang::Qu } else { Lang::Es };
    assert_eq!(
        c.key('3'),
        [
            Command::StopPlayback,
            Command::Enqueue { lang },
            play(lang, &["connecting-operator"], false)
        ]
    );
    c
}

#[test]
fn operator_answers() {
    let mut c = queued('2');
    assert_eq!(c.input(Input::QueueUpdate { position: 2 }), []);
    assert!(c.logged(EventKind::QueuePosition, "2"));
    assert_eq!(
        c.finished(),
        [play(
            Lang::Qu,
            &["queue-position", "digit-2", "hold-music"],
            false
        )]
    );
    // Said once per report: the next loop is music only.
    assert_eq!(c.finished(), [play(Lang::Qu, &["hold-music"], false)]);
    // The queue repeats the position every so often: said again, even unchanged.
    c.input(Input::QueueUpdate { position: 2 });
    assert_eq!(
        c.finished(),
        [play(
            Lang::Qu,
            &["queue-position", "digit-2", "hold-music"],
            false
        )]
    );
    c.input(Input::QueueUpdate { position: 1 });
    assert_eq!(
        c.finished(),
        [play(
            Lang::Qu,
            &["queue-position", "digit-1", "hold-music"],
            false
        )]
    );
    // The notice first, then the bridge.
    assert_eq!(
        c.input(Input::OperatorAnswered),
        [
            Command::StopPlayback,
            play(Lang::Qu, &["operator-notice"], false)
        ]
    );
    assert_eq!(c.finished(), [Command::Bridge]);
    assert_eq!(c.finished(), []);
    // A conversation with a person is never cut: no deadline, not even the cap.
    assert_eq!(c.flow.poll_timeout(), None);
    assert_eq!(c.advance(secs(3_600)), []);
    assert_eq!(
        c.input(Input::HungUp),
        [outcome(
            Disposition::Operator,
            Some(Lang::Qu),
            &["welcome", "notice", "main-menu", "operator"]
        )]
    );
}

#[test]
fn other_keys_while_waiting_are_ignored() {
    let mut c = queued('1');
    assert_eq!(c.key('5'), []);
    assert_eq!(c.key('#'), []);
    assert_eq!(c.finished(), [play(Lang::Es, &["hold-music"], false)]);
}

#[test]
fn key_2_while_waiting_leaves_the_queue_for_a_message() {
    let mut c = queued('2');
    c.finished();
    assert_eq!(
        c.key('2'),
        [
            Command::LeaveQueue,
            Command::StopPlayback,
            play(Lang::Qu, &["message-instructions", "beep"], true)
        ]
    );
    assert!(c.logged(EventKind::LeftQueue, "2"));
    // Out of the queue: a late offer changes nothing.
    assert_eq!(c.input(Input::OperatorAnswered), []);
    assert_eq!(
        c.input(Input::HungUp),
        [outcome(
            Disposition::Abandoned,
            Some(Lang::Qu),
            &["welcome", "notice", "main-menu", "operator", "message"]
        )]
    );
}

#[test]
fn no_operator_then_key_2_leaves_a_message() {
    let mut c = queued('1');
    c.finished();
    assert_eq!(
        c.input(Input::OperatorUnavailable),
        [
            Command::StopPlayback,
            play(Lang::Es, &["no-operator"], true)
        ]
    );
    assert_eq!(
        c.key('2'),
        [
            Command::StopPlayback,
            play(Lang::Es, &["message-instructions", "beep"], true)
        ]
    );
    // Out of the queue: late queue news change nothing.
    assert_eq!(c.input(Input::OperatorAnswered), []);
    assert_eq!(
        c.input(Input::HungUp),
        [outcome(
            Disposition::Abandoned,
            Some(Lang::Es),
            &[
                "welcome",
                "notice",
                "main-menu",
                "operator",
                "no-operator",
                "message"
            ]
        )]
    );
}

#[test]
fn no_operator_then_no_input_leaves_a_message() {
    let mut c = queued('1');
    c.input(Input::OperatorUnavailable);
    assert_eq!(c.finished(), []);
    assert_eq!(
        c.advance(secs(6)),
        [play(Lang::Es, &["message-instructions", "beep"], true)]
    );
}

#[test]
fn waiting_too_long_leaves_the_queue_and_offers_a_message() {
    let mut c = queued('1');
    let joined = c.elapsed();
    c.finished();
    assert_eq!(
        c.wait(),
        [
            Command::LeaveQueue,
            Command::StopPlayback,
            play(Lang::Es, &["no-operator"], true)
        ]
    );
    assert_eq!(c.elapsed() - joined, secs(300));
    assert!(c.logged(EventKind::QueueTimeout, ""));
}

#[test]
fn hanging_up_in_the_queue_leaves_it() {
    let mut c = queued('1');
    assert_eq!(
        c.input(Input::HungUp),
        [
            Command::LeaveQueue,
            outcome(
                Disposition::Abandoned,
                Some(Lang::Es),
                &["welcome", "notice", "main-menu", "operator"]
            )
        ]
    );
}
