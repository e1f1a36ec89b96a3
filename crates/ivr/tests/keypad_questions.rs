//! Callers who cannot speak: after the main menu heard no key, "if you cannot talk,
//! press 1" leads to four questions answered with keys; each answer is a
//! `Command::Answer` for the store. Wrong keys replay a question, no key twice
//! skips it unanswered; pressing nothing at the offer still leads to the message.

mod common;

use common::{Call, ms, play, secs};
use hotline_ivr::{Command, EventKind, Lang};

/// Main menu twice without a key, then the offer plays to its end.
fn at_the_offer(lang_key: char) -> (Call, Lang) {
    let mut c = Call::new();
    c.reach_main_menu(lang_key);
    let lang = if lang_key == '2' { Lang::Qu } else { Lang::Es };
    c.finished();
    c.advance(secs(6));
    c.finished();
    assert_eq!(c.advance(secs(6)), [play(lang, &["no-input"], false)]);
    assert_eq!(c.finished(), [play(lang, &["cannot-talk"], true)]);
    (c, lang)
}

fn answer(question: &str, answer: &str) -> Command {
    Command::Answer {
        question: question.to_owned(),
        answer: answer.to_owned(),
    }
}

#[test]
fn four_questions_answered_with_keys_then_the_queue() {
    let (mut c, lang) = at_the_offer('2');
    assert_eq!(
        c.key('1'),
        [Command::StopPlayback, play(lang, &["ask-danger"], true)]
    );
    assert_eq!(
        c.key('1'),
        [
            Command::StopPlayback,
            answer("En peligro ahora", "sí"),
            play(lang, &["ask-who"], true)
        ]
    );
    assert!(c.logged(EventKind::Answer, "En peligro ahora = sí"));
    // A wrong key: "invalid option" and the question again.
    assert_eq!(
        c.key('9'),
        [
            Command::StopPlayback,
            play(lang, &["invalid-option", "ask-who"], true)
        ]
    );
    assert_eq!(
        c.key('2'),
        [
            Command::StopPlayback,
            answer("Sobre quién", "otra persona"),
            play(lang, &["ask-child"], true)
        ]
    );
    // No key twice: no answer, the next question.
    c.finished();
    assert_eq!(
        c.advance(ms(8_000)),
        [play(lang, &["no-input", "ask-child"], true)]
    );
    c.finished();
    assert_eq!(c.advance(ms(8_000)), [play(lang, &["no-input"], false)]);
    assert_eq!(c.finished(), [play(lang, &["ask-region"], true)]);
    assert_eq!(
        c.key('5'),
        [
            Command::StopPlayback,
            answer("Región", "Madre de Dios"),
            play(lang, &["keypad-thanks"], false)
        ]
    );
    assert_eq!(
        c.finished(),
        [
            Command::Enqueue { lang },
            play(lang, &["connecting-operator"], false)
        ]
    );
    let answers = c
        .events
        .iter()
        .filter(|(k, _)| *k == EventKind::Answer)
        .count();
    assert_eq!(answers, 3);
}

#[test]
fn each_key_barges_into_its_question() {
    let (mut c, lang) = at_the_offer('1');
    c.key('1');
    assert_eq!(
        c.key('2'),
        [
            Command::StopPlayback,
            answer("En peligro ahora", "no"),
            play(lang, &["ask-who"], true)
        ]
    );
    c.key('1');
    c.key('2');
    let out = c.key('7');
    assert_eq!(
        out,
        [
            Command::StopPlayback,
            answer("Región", "otra región"),
            play(lang, &["keypad-thanks"], false)
        ]
    );
}

#[test]
fn nothing_pressed_at_the_offer_still_leads_to_the_message() {
    let (mut c, lang) = at_the_offer('1');
    assert_eq!(c.advance(secs(6)), []);
    assert_eq!(c.finished(), []);
    assert_eq!(
        c.advance(secs(6)),
        [play(lang, &["message-instructions", "beep"], true)]
    );
    assert!(c.logged(EventKind::NoInput, "cannot-talk"));
}
