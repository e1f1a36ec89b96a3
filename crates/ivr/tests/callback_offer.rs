//! The safe callback, caller side: offered in the queue only when the shell says a
//! callback is possible; three questions (is this number safe, when, confirm); a
//! `Command::Callback` only after the confirming key. "No", cancel, or no key go
//! back to waiting without a booking. After the confirmation the flow waits for the
//! shell's word that the booking is written (`Input::CallbackBooked`), at most the
//! node's `booking_timeout_ms` on the fake clock; refused or too slow, it says so and
//! goes back to waiting.

mod common;

use common::{Call, marked, ms, play};
use hotline_ivr::{Command, Disposition, EventKind, Input, Lang, Mark};

fn queued(offer: bool) -> Call {
    let mut c = Call::new();
    c.flow.set_callback_offer(offer);
    c.reach_main_menu('1');
    let prompts: &[&str] = if offer {
        &["connecting-operator", "callback-offer"]
    } else {
        &["connecting-operator"]
    };
    assert_eq!(
        c.key('3'),
        [
            Command::StopPlayback,
            Command::Enqueue { lang: Lang::Es },
            play(Lang::Es, prompts, false)
        ]
    );
    c
}

fn enqueued() -> [Command; 2] {
    [
        Command::Enqueue { lang: Lang::Es },
        play(Lang::Es, &["connecting-operator", "callback-offer"], false),
    ]
}

#[test]
fn not_offered_when_the_shell_cannot_call_back() {
    let mut c = queued(false);
    // Key 3 means nothing: the caller stays in the queue.
    assert_eq!(c.key('3'), []);
    assert!(!c.logged(EventKind::LeftQueue, "3"));
}

/// Asks for a callback in the afternoon and confirms it: the flow asks the shell to
/// book it and waits, in silence.
fn confirmed() -> Call {
    let mut c = queued(true);
    assert_eq!(
        c.key('3'),
        [
            Command::LeaveQueue,
            Command::StopPlayback,
            play(Lang::Es, &["callback-safe"], true)
        ]
    );
    assert_eq!(
        c.key('1'),
        [
            Command::StopPlayback,
            play(Lang::Es, &["callback-window"], true)
        ]
    );
    assert_eq!(
        c.key('3'),
        [
            Command::StopPlayback,
            play(Lang::Es, &["callback-confirm"], true)
        ]
    );
    c.finished();
    assert_eq!(
        c.key('1'),
        [Command::Callback {
            window: "afternoon".to_owned()
        }]
    );
    assert!(c.logged(EventKind::CallbackRequested, "afternoon"));
    // Nothing is said before the shell's word: not "booked", not a prompt end.
    assert!(!c.logged(EventKind::CallbackBooked, "afternoon"));
    assert_eq!(c.finished(), []);
    c
}

/// The marks of the outcome among `out`.
fn marks(out: &[Command]) -> Vec<Mark> {
    out.iter()
        .find_map(|c| match c {
            Command::Outcome { marks, .. } => Some(marks.clone()),
            _ => None,
        })
        .expect("an outcome")
}

/// What the shipped flow says when the booking failed, then back in the queue.
fn failed_then_enqueued(c: &mut Call, first: &[Command]) {
    assert_eq!(
        first.last(),
        Some(&play(Lang::Es, &["callback-failed"], false))
    );
    assert_eq!(c.finished(), enqueued());
    assert!(!c.logged(EventKind::CallbackBooked, "afternoon"));
}

#[test]
fn booked_only_once_the_shell_says_it_is_written_then_goodbye_and_marked() {
    let mut c = confirmed();
    // Well within the booking's 5 s.
    assert_eq!(c.advance(ms(4_999)), []);
    assert_eq!(
        c.input(Input::CallbackBooked),
        [play(Lang::Es, &["callback-booked"], false)]
    );
    assert!(c.logged(EventKind::CallbackBooked, "afternoon"));
    // The booking's deadline is gone: nothing fires at the old 5 s.
    assert_eq!(c.advance(ms(10)), []);
    let out = c.finished();
    assert_eq!(out[0], Command::HangUp);
    assert_eq!(marks(&out), [Mark::Callback]);
    assert_eq!(
        out.last(),
        Some(&marked(
            Disposition::Abandoned,
            Some(Lang::Es),
            &[
                "welcome",
                "notice",
                "main-menu",
                "operator",
                "callback",
                "callback-booked"
            ],
            &[Mark::Callback]
        ))
    );
}

#[test]
fn a_refused_booking_says_so_and_goes_back_to_waiting_unmarked() {
    let mut c = confirmed();
    let out = c.input(Input::CallbackFailed);
    // Refused: the shell knows, nothing to drop.
    assert!(!out.contains(&Command::DropCallback));
    assert!(c.logged(EventKind::CallbackFailed, "refused"));
    failed_then_enqueued(&mut c, &out);
    // A late word changes nothing.
    assert_eq!(c.input(Input::CallbackBooked), []);
    let out = c.input(Input::HungUp);
    assert_eq!(marks(&out), []);
}

#[test]
fn no_word_within_the_booking_timeout_drops_the_booking_and_says_it_failed() {
    let mut c = confirmed();
    assert_eq!(c.advance(ms(4_999)), []);
    let out = c.advance(ms(1));
    assert_eq!(
        out,
        [
            Command::DropCallback,
            play(Lang::Es, &["callback-failed"], false)
        ]
    );
    assert!(c.logged(EventKind::CallbackFailed, "timeout"));
    failed_then_enqueued(&mut c, &out);
    // The booking landing now is not announced and does not mark the call.
    assert_eq!(c.input(Input::CallbackBooked), []);
    assert_eq!(c.input(Input::CallbackFailed), []);
    assert_eq!(marks(&c.input(Input::HungUp)), []);
}

#[test]
fn the_quick_exit_works_while_the_booking_is_awaited() {
    let mut c = confirmed();
    c.advance(ms(1_000));
    // Nothing plays while waiting: the decoy starts at once, without a StopPlayback.
    assert_eq!(c.key('*'), [play(Lang::Es, &["decoy"], false)]);
    assert!(c.logged(EventKind::QuickExit, "callback"));
    // Neither the shell's word nor the booking's deadline brings any hotline prompt.
    assert_eq!(c.input(Input::CallbackBooked), []);
    assert_eq!(c.input(Input::CallbackFailed), []);
    assert_eq!(c.advance(ms(10_000)), []);
    assert_eq!(c.finished(), [play(Lang::Es, &["decoy"], false)]);
    assert!(!c.logged(EventKind::CallbackBooked, "afternoon"));
    assert_eq!(marks(&c.input(Input::HungUp)), [Mark::QuickExit]);
}

#[test]
fn a_key_pressed_while_waiting_does_not_leave_the_queue_again() {
    let mut c = confirmed();
    assert_eq!(c.key('2'), []);
    let out = c.input(Input::CallbackFailed);
    failed_then_enqueued(&mut c, &out);
    // Logged, but the queue drops keys typed before it: the 2 pressed in the silence
    // did not send the caller to a message (`enqueued` above: back to waiting).
    assert!(c.logged(EventKind::Digit, "2"));
}

#[test]
fn the_caller_hanging_up_while_waiting_ends_the_call_without_a_drop() {
    let mut c = confirmed();
    let out = c.input(Input::HungUp);
    assert!(!out.contains(&Command::DropCallback));
    // The shell did not say booked before the end: not marked.
    assert_eq!(marks(&out), []);
    assert_eq!(c.advance(ms(10_000)), []);
}

#[test]
fn an_unsafe_number_goes_back_to_waiting() {
    let mut c = queued(true);
    c.key('3');
    assert_eq!(c.key('2')[1..], enqueued());
    assert!(c.logged(EventKind::CallbackDeclined, "not-safe"));
}

#[test]
fn cancel_at_the_confirmation_books_nothing() {
    let mut c = queued(true);
    c.key('3');
    c.key('1');
    c.key('1');
    let out = c.key('2');
    assert_eq!(out[1..], enqueued());
    assert!(c.logged(EventKind::CallbackDeclined, "cancelled"));
    assert!(!out.iter().any(|c| matches!(c, Command::Callback { .. })));
}

#[test]
fn a_wrong_window_key_asks_again_and_no_key_declines() {
    let mut c = queued(true);
    c.key('3');
    c.key('1');
    assert_eq!(
        c.key('8'),
        [
            Command::StopPlayback,
            play(Lang::Es, &["invalid-option", "callback-window"], true)
        ]
    );
    assert!(c.logged(EventKind::InvalidOption, "callback 8"));
    c.key('2');
    // The confirmation starts with its retries unused: two silences to decline.
    c.finished();
    assert_eq!(
        c.advance(ms(8_000)),
        [play(Lang::Es, &["no-input", "callback-confirm"], true)]
    );
    c.finished();
    assert_eq!(c.advance(ms(8_000)), [play(Lang::Es, &["no-input"], false)]);
    assert_eq!(c.finished(), enqueued());
    assert!(c.logged(EventKind::CallbackDeclined, "no-input"));
}
