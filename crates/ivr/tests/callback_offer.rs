//! The safe callback, caller side: offered in the queue only when the shell says a
//! callback is possible; three questions (is this number safe, when, confirm); a
//! `Command::Callback` only after the confirming key. "No", cancel, or no key go
//! back to waiting without a booking.

mod common;

use common::{Call, ms, play};
use hotline_ivr::{Command, EventKind, Lang};

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

#[test]
fn safe_window_confirm_books_the_callback_and_says_goodbye() {
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
        [
            Command::Callback {
                window: "afternoon".to_owned()
            },
            play(Lang::Es, &["callback-booked"], false)
        ]
    );
    assert!(c.logged(EventKind::CallbackBooked, "afternoon"));
    assert_eq!(c.finished()[0], Command::HangUp);
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
