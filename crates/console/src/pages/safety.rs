//! How the pages show a caller's safety facts (issue 12), in words: the call's marks
//! (`quick-exit`: the caller pressed the quick-exit key and heard the decoy; `silent`: no key
//! and no speech the whole call; `callback`: the caller booked a callback), the answers a caller who could not talk gave with the keypad,
//! and how many earlier calls of the same caller (counted by pseudonym) were silent or ended
//! with a quick exit. The operator's desk, the recording page and the board use it.
//!
//! Counts only: never the caller's number nor its pseudonym.

use hotline_store::{Answer, Call, CallStore, Caller, StoreError};

use super::i18n::{Lang, t};

/// The mark of a call whose caller pressed the quick-exit key.
pub(super) const QUICK_EXIT: &str = "quick-exit";
/// The mark of a call with no key and no speech from start to end.
pub(super) const SILENT: &str = "silent";
/// The mark of a call whose caller booked a callback (written before the flow said so):
/// `abandoned` by its disposition, but the caller is to be called back.
pub(super) const CALLBACK: &str = "callback";

/// The i18n key of a mark's word (`quick-exit` → "salida rápida").
pub(super) fn mark_key(mark: &str) -> &'static str {
    match mark {
        QUICK_EXIT => "safety.mark.quick-exit",
        SILENT => "safety.mark.silent",
        CALLBACK => "safety.mark.callback",
        _ => "safety.mark.other",
    }
}

/// A mark as a page shows it: its id for the markup (`data-mark`), its word for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mark {
    pub(super) id: String,
    pub(super) word: String,
}

/// The call's marks in words, in the stored order. A mark this console has no word for reads
/// "other mark (its id)": shown, not dropped.
pub(super) fn marks(lang: Lang, marks: &[String]) -> Vec<Mark> {
    marks
        .iter()
        .map(|m| {
            let key = mark_key(m);
            let word = if key == "safety.mark.other" {
                format!("{} ({m})", t(lang, key))
            } else {
                t(lang, key).to_owned()
            };
            Mark {
                id: m.clone(),
                word,
            }
        })
        .collect()
}

/// The flow's safety events in words for the events table (`quick-exit`, `answer`,
/// `callback-requested`, `callback-booked`, `callback-failed`, `callback-declined`); any
/// other kind as it is stored.
pub(super) fn event_text(lang: Lang, kind: &str) -> String {
    let key = match kind {
        QUICK_EXIT => "safety.event.quick-exit",
        "answer" => "safety.event.answer",
        "callback-requested" => "safety.event.callback-requested",
        "callback-booked" => "safety.event.callback-booked",
        "callback-failed" => "safety.event.callback-failed",
        "callback-declined" => "safety.event.callback-declined",
        other => return other.to_owned(),
    };
    t(lang, key).to_owned()
}

/// Whether the call is marked `quick-exit`.
pub(super) fn is_quick_exit(call: &Call) -> bool {
    call.marks.iter().any(|m| m == QUICK_EXIT)
}

/// Whether the call is marked `callback`.
pub(super) fn is_callback(call: &Call) -> bool {
    call.marks.iter().any(|m| m == CALLBACK)
}

/// Whether the call is marked `silent`.
pub(super) fn is_silent(call: &Call) -> bool {
    call.marks.iter().any(|m| m == SILENT)
}

/// Earlier calls of the same caller that were silent or ended with a quick exit (victims
/// often hang up silently several times before they talk).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Earlier {
    pub(super) silent: u64,
    pub(super) quick_exit: u64,
}

impl Earlier {
    /// The counts for `call`'s caller, of calls that started before it; `None` when no number
    /// was presented (nothing to count by).
    pub(super) async fn of(
        store: &dyn CallStore,
        call: &Call,
    ) -> Result<Option<Earlier>, StoreError> {
        if matches!(call.caller, Caller::Absent) {
            return Ok(None);
        }
        Ok(Some(Earlier {
            silent: store
                .count_marked_calls_by_caller(&call.caller, SILENT, call.started_at)
                .await?,
            quick_exit: store
                .count_marked_calls_by_caller(&call.caller, QUICK_EXIT, call.started_at)
                .await?,
        }))
    }

    /// "2 llamadas silenciosas antes · 1 salida rápida antes"; `None` when both are 0.
    pub(super) fn text(&self, lang: Lang) -> Option<String> {
        let count = |n: u64, one: &'static str, many: &'static str| match n {
            0 => None,
            1 => Some(t(lang, one).to_owned()),
            n => Some(t(lang, many).replace("{n}", &n.to_string())),
        };
        let parts: Vec<String> = [
            count(
                self.silent,
                "safety.silent_before_one",
                "safety.silent_before_many",
            ),
            count(
                self.quick_exit,
                "safety.quick_exit_before_one",
                "safety.quick_exit_before_many",
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

/// A keypad answer as shown: the question as the flow names it, the answer's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AnswerRow {
    pub(super) question: String,
    pub(super) answer: String,
}

/// The call's keypad answers, in the order given.
pub(super) fn answers(answers: &[Answer]) -> Vec<AnswerRow> {
    answers
        .iter()
        .map(|a| AnswerRow {
            question: a.question.clone(),
            answer: a.answer.clone(),
        })
        .collect()
}

/// What the desk and the recording page show of one call: the warning, the marks, the
/// answers and the earlier silent or quick-exit calls.
#[derive(Debug, Clone, Default)]
pub(super) struct SafetyView {
    /// The call is marked `quick-exit`: a warning line.
    pub(super) quick_exit: bool,
    pub(super) marks: Vec<Mark>,
    pub(super) answers: Vec<AnswerRow>,
    /// [`Earlier::text`].
    pub(super) earlier: Option<String>,
}

impl SafetyView {
    /// Reads the earlier counts of `call`'s caller and puts it all in words.
    pub(super) async fn of(
        store: &dyn CallStore,
        lang: Lang,
        call: &Call,
    ) -> Result<SafetyView, StoreError> {
        let earlier = Earlier::of(store, call).await?;
        Ok(SafetyView {
            quick_exit: is_quick_exit(call),
            marks: marks(lang, &call.marks),
            answers: answers(&call.answers),
            earlier: earlier.and_then(|e| e.text(lang)),
        })
    }
}

/// This module's texts: `(key, Spanish, English)` (see `i18n`).
pub(super) const I18N: &[(&str, &str, &str)] = &[
    ("safety.mark.quick-exit", "salida rápida", "quick exit"),
    ("safety.mark.silent", "silenciosa", "silent"),
    (
        "safety.mark.callback",
        "llamada de vuelta pedida",
        "callback booked",
    ),
    ("safety.mark.other", "otra marca", "other mark"),
    ("safety.marks", "Marcas", "Marks"),
    (
        "safety.event.quick-exit",
        "salida rápida (grabación de distracción)",
        "quick exit (decoy played)",
    ),
    (
        "safety.event.answer",
        "respuesta con el teclado",
        "keypad answer",
    ),
    (
        "safety.event.callback-requested",
        "pidió que le devuelvan la llamada",
        "asked to be called back",
    ),
    (
        "safety.event.callback-booked",
        "llamada de vuelta registrada",
        "callback booked",
    ),
    (
        "safety.event.callback-failed",
        "no se pudo registrar la llamada de vuelta",
        "the callback could not be booked",
    ),
    (
        "safety.event.callback-declined",
        "no pidió que le devuelvan la llamada",
        "did not ask to be called back",
    ),
    (
        "safety.quick_exit_warning",
        "Salida rápida: quien llama pulsó la tecla de salida y oyó la grabación de distracción. Puede no estar solo/a: no devuelva la llamada sin precaución.",
        "Quick exit: the caller pressed the exit key and heard the decoy. They may not be alone: do not call back without care.",
    ),
    (
        "safety.answers",
        "Respuestas con el teclado",
        "Keypad answers",
    ),
    (
        "safety.answers_hint",
        "Quien llama no pudo hablar y respondió con teclas.",
        "The caller could not talk and answered with keys.",
    ),
    (
        "safety.silent_before_one",
        "1 llamada silenciosa antes",
        "1 silent call before",
    ),
    (
        "safety.silent_before_many",
        "{n} llamadas silenciosas antes",
        "{n} silent calls before",
    ),
    (
        "safety.quick_exit_before_one",
        "1 salida rápida antes",
        "1 quick exit before",
    ),
    (
        "safety.quick_exit_before_many",
        "{n} salidas rápidas antes",
        "{n} quick exits before",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_words() {
        let m = marks(
            Lang::Es,
            &[
                "quick-exit".to_owned(),
                "silent".to_owned(),
                "callback".to_owned(),
                "later".to_owned(),
            ],
        );
        let words: Vec<&str> = m.iter().map(|m| m.word.as_str()).collect();
        assert_eq!(
            words,
            [
                "salida rápida",
                "silenciosa",
                "llamada de vuelta pedida",
                "otra marca (later)"
            ]
        );
        assert_eq!(m[0].id, "quick-exit");
        let m = marks(Lang::En, &["quick-exit".to_owned()]);
        assert_eq!(m[0].word, "quick exit");
        for key in [
            mark_key(QUICK_EXIT),
            mark_key(SILENT),
            mark_key(CALLBACK),
            mark_key("x"),
        ] {
            assert!(
                super::super::i18n::all().any(|(k, _, _)| *k == key),
                "{key}"
            );
        }
    }

    #[test]
    fn safety_events_are_words_others_as_stored() {
        assert_eq!(
            event_text(Lang::Es, "quick-exit"),
            "salida rápida (grabación de distracción)"
        );
        assert_eq!(event_text(Lang::En, "answer"), "keypad answer");
        assert_eq!(
            event_text(Lang::En, "callback-requested"),
            "asked to be called back"
        );
        assert_eq!(event_text(Lang::En, "callback-booked"), "callback booked");
        assert_eq!(
            event_text(Lang::Es, "callback-failed"),
            "no se pudo registrar la llamada de vuelta"
        );
        assert_eq!(event_text(Lang::Es, "digit"), "digit");
    }

    #[test]
    fn earlier_counts_in_words() {
        let e = |silent, quick_exit| Earlier { silent, quick_exit };
        assert_eq!(e(0, 0).text(Lang::Es), None);
        assert_eq!(
            e(1, 0).text(Lang::Es).as_deref(),
            Some("1 llamada silenciosa antes")
        );
        assert_eq!(
            e(3, 2).text(Lang::Es).as_deref(),
            Some("3 llamadas silenciosas antes · 2 salidas rápidas antes")
        );
        assert_eq!(
            e(0, 1).text(Lang::En).as_deref(),
            Some("1 quick exit before")
        );
        assert_eq!(
            e(2, 0).text(Lang::En).as_deref(),
            Some("2 silent calls before")
        );
    }
}
