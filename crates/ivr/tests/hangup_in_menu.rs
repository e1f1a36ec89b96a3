//! The caller hangs up in a menu: `abandoned`, exactly one outcome, nothing after it.

mod common;

use common::{Call, outcome, secs};
use hotline_ivr::{Disposition, EventKind, Input, Lang};

#[test]
fn hang_up_in_the_main_menu_is_abandoned() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    assert_eq!(
        c.input(Input::HungUp),
        [outcome(
            Disposition::Abandoned,
            Some(Lang::Es),
            &["welcome", "notice", "main-menu"]
        )]
    );
    assert!(c.logged(EventKind::HungUp, ""));
    assert!(c.flow.is_ended());
    assert_eq!(c.flow.poll_timeout(), None);
    for input in [
        Input::HungUp,
        Input::Digit('1'),
        Input::PromptFinished,
        Input::Answered,
    ] {
        assert_eq!(c.input(input), []);
    }
    assert_eq!(c.advance(secs(3_600)), []);
}

#[test]
fn hang_up_before_answer_is_abandoned() {
    let mut c = Call::new();
    assert_eq!(
        c.input(Input::HungUp),
        [outcome(Disposition::Abandoned, None, &[])]
    );
}

#[test]
fn event_log_of_a_short_call() {
    let mut c = Call::new();
    c.reach_main_menu('1');
    c.input(Input::HungUp);
    let kinds: Vec<&str> = c.events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["node", "digit", "language", "node", "node", "hung-up"]
    );
}
