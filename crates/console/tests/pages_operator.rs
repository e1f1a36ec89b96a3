//! The operator's desk (`/operator`: status buttons, the queue, the call in hand and its case
//! notes, its keypad answers and quick-exit warning) and the supervisors' board (`/board`,
//! charts, today's quick exits and silent calls), with their live streams (`/operator/events`,
//! `/board/events`), over a fake queue, on both backends.

#[macro_use]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::{Body, HttpBody};
use axum::http::{Method, header};
use common::{Browser, Harness, SAFETY_ANSWERS, TestClock, at};
use hotline_console::{
    ConsoleSettings, OperatorStatus, OperatorView, QueueError, QueueSnapshot, QueueView,
    WaitingCall,
};
use tower::ServiceExt;

/// A queue the test sets: its snapshot, and the statuses set through it (which it applies).
#[derive(Default)]
struct FakeQueue {
    snapshot: Mutex<QueueSnapshot>,
    set: Mutex<Vec<(String, OperatorStatus)>>,
}

impl FakeQueue {
    /// ana (registered) and beto; `waiting` callers in `(language, since)`.
    fn new(waiting: &[(Option<&str>, i64)]) -> Arc<FakeQueue> {
        let op = |name: &str| OperatorView {
            name: name.into(),
            status: OperatorStatus::Offline,
            registered: name == "ana",
            current_call: None,
            state: Some("offline".into()),
            paused_reason: None,
        };
        Arc::new(FakeQueue {
            snapshot: Mutex::new(QueueSnapshot {
                waiting: waiting
                    .iter()
                    .enumerate()
                    .map(|(i, (lang, since))| WaitingCall {
                        call_id: format!("01JC00000000000000000000{i:02}"),
                        language: lang.map(Into::into),
                        since: at(*since),
                    })
                    .collect(),
                operators: vec![op("ana"), op("beto")],
            }),
            set: Mutex::default(),
        })
    }

    fn edit(&self, name: &str, f: impl FnOnce(&mut OperatorView)) {
        let mut s = self.snapshot.lock().unwrap();
        f(s.operators.iter_mut().find(|o| o.name == name).unwrap());
    }

    fn set_calls(&self) -> Vec<(String, OperatorStatus)> {
        self.set.lock().unwrap().clone()
    }
}

#[async_trait]
impl QueueView for FakeQueue {
    async fn snapshot(&self) -> Result<QueueSnapshot, QueueError> {
        Ok(self.snapshot.lock().unwrap().clone())
    }

    async fn set_status(&self, name: &str, status: OperatorStatus) -> Result<(), QueueError> {
        self.set.lock().unwrap().push((name.to_owned(), status));
        self.edit(name, |o| {
            o.status = status;
            o.state = Some(status.as_str().into());
            o.paused_reason = None;
        });
        Ok(())
    }
}

fn settings() -> ConsoleSettings {
    ConsoleSettings {
        secure_cookies: false,
        ..ConsoleSettings::default()
    }
}

/// A browser signed in as `who` (English pages) on a console with `queue` (or none).
async fn signed_in(h: &Harness, queue: Option<Arc<FakeQueue>>, who: &str) -> Browser {
    h.set_passwords().await;
    let mut state = h
        .state()
        .with_console_settings(settings())
        .with_clock(TestClock::new());
    if let Some(q) = queue {
        state = state.with_queue(q);
    }
    let mut b = Browser::new(hotline_console::router(state));
    b.sign_in_as(who).await;
    b.cookies.insert("lang".into(), "en".into());
    b
}

/// The number of `needle` in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

async fn status_buttons_set_the_own_status(h: Harness) {
    let queue = FakeQueue::new(&[]);
    let mut b = signed_in(&h, Some(queue.clone()), "ana").await;
    let page = b.get("/operator").await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains("<h1>My desk</h1>"), "{html}");
    assert!(html.contains(r#"data-status="offline""#), "{html}");
    assert!(html.contains(r#"data-live-src="/operator/events""#));
    // Three forms, each with the session's token.
    let csrf = b.csrf().await;
    assert_eq!(count(&html, r#"action="/operator/status""#), 3);
    assert_eq!(
        count(
            &html,
            &format!(
                r#"action="/operator/status"><input type="hidden" name="csrf" value="{csrf}">"#
            )
        ),
        3,
    );
    for s in ["available", "paused", "offline"] {
        assert!(html.contains(&format!(r#"id="set-{s}""#)), "{s}");
    }
    assert!(html.contains(r#"id="set-offline" class="status-offline" aria-pressed="true""#));

    // Without the token: refused before the handler.
    let a = b
        .post_form("/operator/status", &[("status", "available")])
        .await;
    assert_eq!(a.status, 403);
    assert!(a.text().contains("CSRF"), "{}", a.text());
    assert!(queue.set_calls().is_empty());

    // With it: set, and back to the page (post/redirect/get).
    let a = b
        .post_form(
            "/operator/status",
            &[("status", "available"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.location(), Some("/operator"));
    assert_eq!(
        queue.set_calls(),
        [("ana".to_owned(), OperatorStatus::Available)]
    );
    let html = b.get("/operator").await.text();
    assert!(html.contains(r#"id="set-available" class="status-available" aria-pressed="true""#));
    assert!(
        html.contains(r#"<dd id="my-status">Available</dd>"#),
        "{html}"
    );

    // Someone else's name in the form changes nothing: the form sets the user's own status.
    let a = b
        .post_form(
            "/operator/status",
            &[("status", "paused"), ("name", "beto"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 303);
    assert_eq!(
        queue.set_calls().last().unwrap(),
        &("ana".to_owned(), OperatorStatus::Paused)
    );
    assert!(queue.set_calls().iter().all(|(n, _)| n == "ana"));

    // Not a status.
    let a = b
        .post_form("/operator/status", &[("status", "busy"), ("csrf", &csrf)])
        .await;
    assert_eq!(a.status, 400);
    let a = b.post_form("/operator/status", &[("csrf", &csrf)]).await;
    assert_eq!(a.status, 400);
    assert_eq!(queue.set_calls().len(), 2);

    // The queue's pause shows with its reason.
    queue.edit("ana", |o| {
        o.paused_reason = Some("missed 2 calls in a row (last: no-answer)".into());
    });
    let html = b.get("/operator").await.text();
    assert!(
        html.contains("The queue paused you: missed 2 calls in a row (last: no-answer)"),
        "{html}"
    );
}

async fn without_a_queue_the_desk_says_so(h: Harness) {
    let mut b = signed_in(&h, None, "ana").await;
    let html = b.get("/operator").await.text();
    assert!(html.contains("The operator queue is not running"), "{html}");
    assert!(!html.contains("action=\"/operator/status\""), "no buttons");
    let csrf = b.csrf().await;
    let a = b
        .post_form(
            "/operator/status",
            &[("status", "available"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 503);
    assert!(a.text().contains("The operator queue is not running"));
    // In Spanish by default.
    b.cookies.remove("lang");
    let html = b.get("/operator").await.text();
    assert!(html.contains("<h1>Mi puesto</h1>"), "{html}");
    assert!(html.contains("La cola de operadores no está funcionando"));
}

async fn a_supervisor_sees_the_desk_without_a_status(h: Harness) {
    let queue = FakeQueue::new(&[(Some("es"), -30_000)]);
    let mut b = signed_in(&h, Some(queue.clone()), "sup").await;
    let a = b.get("/operator").await;
    assert_eq!(a.status, 200);
    let html = a.text();
    assert!(html.contains("Your account is not an operator"), "{html}");
    assert!(!html.contains("action=\"/operator/status\""));
    assert!(html.contains("1 caller is waiting."), "{html}");
    let csrf = b.csrf().await;
    let a = b
        .post_form(
            "/operator/status",
            &[("status", "available"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 403);
    assert!(queue.set_calls().is_empty());
}

async fn the_queue_shows_languages_and_waits(h: Harness) {
    // The test clock is at T0: waits of 30 s, 2 min 05 s, and 5 s.
    let queue = FakeQueue::new(&[
        (Some("qu"), -125_000),
        (Some("es"), -30_000),
        (None, -5_000),
    ]);
    let mut b = signed_in(&h, Some(queue), "ana").await;
    let html = b.get("/operator").await.text();
    assert!(html.contains(r#"data-waiting="3""#), "{html}");
    assert!(html.contains("3 callers are waiting."));
    for row in [
        r#"<tr data-lang="qu" data-since="2026-11-01T12:32:51.000Z"><td>1</td><td>Quechua</td><td>2 min 05 s</td></tr>"#,
        r#"<tr data-lang="es" data-since="2026-11-01T12:34:26.000Z"><td>2</td><td>Spanish</td><td>30 s</td></tr>"#,
        r#"<tr data-lang="none" data-since="2026-11-01T12:34:51.000Z"><td>3</td><td>Not chosen</td><td>5 s</td></tr>"#,
    ] {
        assert!(html.contains(row), "{row}\n{html}");
    }
    // No call ids.
    assert!(!html.contains("01JC000000"), "{html}");
}

async fn the_call_in_hand_shows_no_caller(h: Harness) {
    let queue = FakeQueue::new(&[]);
    let call = h.seed.call_operator.clone();
    queue.edit("ana", |o| {
        o.status = OperatorStatus::Available;
        o.state = Some("busy".into());
        o.current_call = Some(call.clone());
    });
    let mut b = signed_in(&h, Some(queue.clone()), "ana").await;
    let html = b.get("/operator").await.text();
    let stored = h.store.get_call(&call).await.unwrap().unwrap().call;
    assert!(html.contains("<h2>Call in progress</h2>"), "{html}");
    assert!(html.contains(&format!(r#"data-call="{call}""#)));
    assert!(html.contains(&format!(
        r#"<dd id="call-reference"><strong>{}</strong></dd>"#,
        stored.reference
    )));
    assert!(html.contains(r#"<dd id="call-language">Quechua</dd>"#));
    assert!(html.contains(r#"<dd id="call-path">language › main › operator</dd>"#));
    assert!(html.contains(r#"<dd id="call-waited">12 s</dd>"#));
    // One earlier call by the same caller (the message at T0).
    assert!(
        html.contains(r#"<dd id="call-previous">Called before once</dd>"#),
        "{html}"
    );
    assert!(html.contains(r#"id="my-state" class="state state-busy""#));
    // Never the caller: not the pseudonym, not where the call came from.
    assert!(!html.contains("abababab"), "{html}");
    assert!(!html.contains("192.0.2.10"));
    assert!(!html.contains("atlanta.example.com"));

    // On the abandoned call (two earlier calls, no language, no wait).
    let abandoned = h.seed.call_abandoned.clone();
    queue.edit("ana", |o| o.current_call = Some(abandoned.clone()));
    let html = b.get("/operator").await.text();
    assert!(
        html.contains(r#"<dd id="call-previous">Called before 2 times</dd>"#),
        "{html}"
    );
    assert!(html.contains(r#"<dd id="call-language">Not chosen</dd>"#));
    assert!(html.contains(r#"<dd id="call-waited">—</dd>"#));

    // Not busy: the last call given to ana (the operator call), to finish its notes.
    queue.edit("ana", |o| o.current_call = None);
    let html = b.get("/operator").await.text();
    assert!(html.contains("<h2>Your last call</h2>"), "{html}");
    assert!(html.contains(&format!(r#"data-call="{call}""#)));
    // beto has had none.
    let mut beto = signed_in(&h, Some(queue), "beto").await;
    let html = beto.get("/operator").await.text();
    assert!(
        html.contains(r#"<p class="muted" id="no-call">No call.</p>"#),
        "{html}"
    );
}

async fn the_call_in_hand_shows_keypad_answers_and_quick_exits(h: Harness) {
    let safety = h.seed_safety().await;
    let queue = FakeQueue::new(&[]);
    queue.edit("ana", |o| {
        o.status = OperatorStatus::Available;
        o.state = Some("busy".into());
        o.current_call = Some(safety.call.clone());
    });
    let mut b = signed_in(&h, Some(queue.clone()), "ana").await;
    let html = b.get("/operator").await.text();
    assert!(html.contains("<h2>Call in progress</h2>"), "{html}");
    assert!(html.contains(&format!(r#"data-call="{}""#, safety.call)));
    // The answers, in order, under their heading.
    assert!(
        html.contains(r#"<h3 id="h-answers">Keypad answers</h3>"#),
        "{html}"
    );
    let list = &html[html.find(r#"<dl id="call-answers""#).expect("the answers")..];
    let list = &list[..list.find("</dl>").unwrap()];
    let rows: Vec<String> = SAFETY_ANSWERS
        .iter()
        .map(|(q, a)| format!("<dt>{q}</dt><dd>{a}</dd>"))
        .collect();
    assert_eq!(list.matches("<dt>").count(), SAFETY_ANSWERS.len(), "{list}");
    let mut from = 0;
    for row in &rows {
        let at = list[from..]
            .find(row.as_str())
            .unwrap_or_else(|| panic!("{row} (in order) in {list}"));
        from += at + row.len();
    }
    // Six earlier calls of the same pseudonym: two silent, one quick exit.
    assert!(
        html.contains(
            r#"<dd id="call-previous">Called before 6 times · <span id="call-earlier-marked">2 silent calls before · 1 quick exit before</span></dd>"#
        ),
        "{html}"
    );
    // Not marked (yet): no warning, no marks.
    assert!(!html.contains("call-quick-exit"), "{html}");
    assert!(!html.contains(r#"id="call-marks""#));
    assert!(!html.contains(&"ab".repeat(32)), "no pseudonym");

    // Marked quick-exit: the warning line, and the mark in words, never its id.
    h.mark_call(&safety.call, &["quick-exit"]).await;
    let html = b.get("/operator").await.text();
    assert!(
        html.contains(r#"<p class="alert" id="call-quick-exit" role="alert">Quick exit: the caller pressed the exit key"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<dd id="call-marks"><span class="mark" data-mark="quick-exit">quick exit</span></dd>"#),
        "{html}"
    );
    assert!(!html.contains(">quick-exit<"));
    // In Spanish.
    b.cookies.remove("lang");
    let html = b.get("/operator").await.text();
    assert!(html.contains(">Respuestas con el teclado</h3>"), "{html}");
    assert!(html.contains(">Salida rápida: quien llama pulsó la tecla de salida"));
    assert!(html.contains(r#"data-mark="quick-exit">salida rápida</span>"#));
    assert!(html.contains("2 llamadas silenciosas antes · 1 salida rápida antes"));
    // The live stream's call part says the same.
    let (_parts, _body, event) = first_event(&b, "/operator/events").await;
    let call = data_json(&event)["parts"]["call"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(call.contains(r#"id="call-quick-exit""#), "{call}");
    assert!(
        call.contains("<dt>Región</dt><dd>Madre de Dios</dd>"),
        "{call}"
    );

    // A call without answers, marks or earlier marked calls shows none of it.
    queue.edit("ana", |o| {
        o.current_call = Some(h.seed.call_operator.clone())
    });
    b.cookies.insert("lang".into(), "en".into());
    let html = b.get("/operator").await.text();
    assert!(
        html.contains(r#"<dd id="call-previous">Called before once</dd>"#),
        "{html}"
    );
    for absent in [
        "h-answers",
        "call-quick-exit",
        "call-marks",
        "call-earlier-marked",
    ] {
        assert!(!html.contains(absent), "{absent}: {html}");
    }
}

async fn case_notes_by_the_operator_on_the_call_or_a_supervisor(h: Harness) {
    let queue = FakeQueue::new(&[]);
    let abandoned = h.seed.call_abandoned.clone();
    let operator_call = h.seed.call_operator.clone();
    let mut ana = signed_in(&h, Some(queue.clone()), "ana").await;
    let csrf = ana.csrf().await;
    let url = |id: &str| format!("/operator/calls/{id}/notes");

    // Not ana's call (no operator stored, not her current call).
    let a = ana
        .post_form(&url(&abandoned), &[("text", "x"), ("csrf", &csrf)])
        .await;
    assert_eq!(a.status, 403);
    assert!(
        a.text().contains("Only the person who took the call"),
        "{}",
        a.text()
    );

    // Her current call: the form is there, with the token.
    queue.edit("ana", |o| {
        o.state = Some("busy".into());
        o.current_call = Some(abandoned.clone());
    });
    let html = ana.get("/operator").await.text();
    assert!(
        html.contains(&format!(
            r#"<form id="note-form" method="post" action="{}">"#,
            url(&abandoned)
        )),
        "{html}"
    );
    assert!(html.contains(r#"id="no-notes""#));
    // Without the token: refused.
    let a = ana
        .post_form(
            &url(&abandoned),
            &[("text", "Menciona un taller en Juliaca")],
        )
        .await;
    assert_eq!(a.status, 403);
    assert!(
        h.store
            .list_call_notes(&abandoned)
            .await
            .unwrap()
            .is_empty()
    );
    // Empty.
    let a = ana
        .post_form(&url(&abandoned), &[("text", "  "), ("csrf", &csrf)])
        .await;
    assert_eq!(a.status, 400);
    assert!(a.text().contains("The note is empty."));
    // Written.
    let a = ana
        .post_form(
            &url(&abandoned),
            &[
                ("text", "Menciona un taller en Juliaca <b>"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.location(), Some("/operator"));
    let notes = h.store.list_call_notes(&abandoned).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].author, "ana");
    assert_eq!(notes[0].at, at(0));
    assert_eq!(notes[0].text, "Menciona un taller en Juliaca <b>");
    let html = ana.get("/operator").await.text();
    assert!(
        html.contains("Menciona un taller en Juliaca &#60;b&#62;")
            || html.contains("Menciona un taller en Juliaca &lt;b&gt;"),
        "{html}"
    );

    // The call given to ana earlier (stored operator): ana may, beto may not.
    let a = ana
        .post_form(
            &url(&operator_call),
            &[("text", "seguimiento"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 303);
    let mut beto = signed_in(&h, Some(queue.clone()), "beto").await;
    let beto_csrf = beto.csrf().await;
    let a = beto
        .post_form(&url(&operator_call), &[("text", "x"), ("csrf", &beto_csrf)])
        .await;
    assert_eq!(a.status, 403);
    // A supervisor may, on any call.
    let mut sup = signed_in(&h, Some(queue), "sup").await;
    let sup_csrf = sup.csrf().await;
    let a = sup
        .post_form(
            &url(&abandoned),
            &[("text", "revisado"), ("csrf", &sup_csrf)],
        )
        .await;
    assert_eq!(a.status, 303);
    assert_eq!(h.store.list_call_notes(&abandoned).await.unwrap().len(), 2);
    assert_eq!(
        h.store.list_call_notes(&operator_call).await.unwrap().len(),
        1
    );
    // No such call.
    let a = sup
        .post_form(
            &url("01JC0000000000000000000099"),
            &[("text", "x"), ("csrf", &sup_csrf)],
        )
        .await;
    assert_eq!(a.status, 404);
    let a = sup
        .post_form(&url("not-an-id"), &[("text", "x"), ("csrf", &sup_csrf)])
        .await;
    assert_eq!(a.status, 404);
}

async fn the_board_is_for_supervisors(h: Harness) {
    let queue = FakeQueue::new(&[(Some("qu"), -61_000)]);
    queue.edit("ana", |o| {
        o.status = OperatorStatus::Paused;
        o.state = Some("paused".into());
        o.paused_reason = Some("missed 2 calls in a row".into());
    });
    let mut ana = signed_in(&h, Some(queue.clone()), "ana").await;
    for url in ["/board", "/board/events"] {
        let a = ana.get(url).await;
        assert_eq!(a.status, 403, "{url}");
    }
    assert!(
        !ana.get("/operator")
            .await
            .text()
            .contains("href=\"/board\"")
    );

    for who in ["sup", "admin"] {
        let mut b = signed_in(&h, Some(queue.clone()), who).await;
        let a = b.get("/board").await;
        assert_eq!(a.status, 200, "{who}");
        let html = a.text();
        assert!(html.contains("<h1>Board</h1>"), "{html}");
        assert!(html.contains(r#"data-live-src="/board/events""#));
        // Who waits.
        assert!(html.contains("1 caller is waiting."));
        assert!(
            html.contains("<td>Quechua</td><td>1 min 01 s</td>"),
            "{html}"
        );
        // The operators.
        assert!(
            html.contains(r#"<tr data-operator="ana" data-state="paused">"#),
            "{html}"
        );
        assert!(html.contains("The queue paused you: missed 2 calls in a row"));
        assert!(html.contains(r#"<tr data-operator="beto" data-state="offline">"#));
        // Today's calls, by outcome (the three seeded calls, T0 is today).
        for (outcome, n) in [
            ("total", 3),
            ("message", 1),
            ("operator", 1),
            ("abandoned", 1),
            ("rejected", 0),
            ("ongoing", 0),
        ] {
            let cell = format!(r#"data-outcome="{outcome}">"#);
            let at = html
                .find(&cell)
                .unwrap_or_else(|| panic!("{outcome}: {html}"));
            let rest = &html[at..];
            let strong = &rest[rest.find("<strong>").unwrap() + 8..rest.find("</strong>").unwrap()];
            assert_eq!(strong, n.to_string(), "{outcome}");
        }
        // Three charts, each titled, with today's bars.
        assert_eq!(count(&html, "<svg class=\"chart\""), 3);
        for title in [
            "Calls per day by language",
            "Call outcomes per day",
            "Queue waiting time per day",
        ] {
            assert!(
                html.contains(&format!("-title\">{title}</title>")),
                "{title}"
            );
        }
        assert!(
            html.contains("<title>2026-11-01 · Quechua: 1</title>"),
            "{html}"
        );
        assert!(html.contains("<title>2026-11-01 · Spanish: 1</title>"));
        assert!(html.contains("<title>2026-11-01 · Not chosen: 1</title>"));
        assert!(html.contains("<title>2026-11-01 · Abandoned: 1</title>"));
        assert!(html.contains("<title>2026-11-01 · Longest: 12.0</title>"));
        assert!(html.contains("<title>2026-11-01 · Average: 12.0</title>"));
        // Never a caller.
        assert!(!html.contains("abababab"));
    }
}

async fn the_board_counts_quick_exits_silent_calls_and_callbacks(h: Harness) {
    let queue = FakeQueue::new(&[]);
    let mut b = signed_in(&h, Some(queue), "sup").await;
    // Nothing marked: zeros, not a missing line.
    let html = b.get("/board").await.text();
    assert!(
        html.contains(r#"data-mark="quick-exit">Quick exits<strong>0</strong>"#),
        "{html}"
    );
    assert!(html.contains(r#"data-mark="silent">Silent<strong>0</strong>"#));
    assert!(html.contains(r#"data-mark="callback">Callback booked<strong>0</strong>"#));

    let safety = h.seed_safety().await;
    h.mark_call(&safety.call, &["quick-exit", "silent", "callback"])
        .await;
    let html = b.get("/board").await.text();
    let count_of = |attr: &str| -> String {
        let at = html.find(attr).unwrap_or_else(|| panic!("{attr}: {html}"));
        let rest = &html[at..];
        rest[rest.find("<strong>").unwrap() + 8..rest.find("</strong>").unwrap()].to_owned()
    };
    // Today: the seed's three calls and the four of the safety seed.
    assert_eq!(count_of(r#"data-outcome="total">"#), "7");
    assert_eq!(
        count_of(r#"<div class="count" data-mark="quick-exit">"#),
        "2"
    );
    assert_eq!(count_of(r#"<div class="count" data-mark="silent">"#), "3");
    // A booked callback is counted apart: its disposition alone says abandoned.
    assert_eq!(count_of(r#"<div class="count" data-mark="callback">"#), "1");
    assert!(
        html.contains(r#"data-mark="quick-exit">Quick exits<strong>"#),
        "{html}"
    );
    assert!(html.contains(r#"data-mark="silent">Silent<strong>"#));
    // The latest calls list their marks in words.
    let table = &html[html.find(r#"<table id="today-calls">"#).unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert!(table.contains("<th>Marks</th>"), "{table}");
    assert!(
        table.contains(r#"<td><span class="mark" data-mark="quick-exit">quick exit</span><span class="mark" data-mark="silent">silent</span><span class="mark" data-mark="callback">callback booked</span></td>"#),
        "{table}"
    );
    assert_eq!(table.matches(r#"data-mark="silent">silent<"#).count(), 3);
    assert!(!table.contains(">quick-exit<") && !table.contains(">silent</td>"));
}

/// A call at 23:30 in Lima (04:30 UTC the next day) is that Lima day's in "today" and in the
/// charts; with `time_zone = "UTC"` it moves to the next day.
async fn the_board_counts_days_in_the_hotline_s_time_zone(h: Harness) {
    use hotline_store::{Caller, NewCall, Timestamp, Zone};
    // 2026-11-02T04:30:00Z: 23:30 on Nov 1 in Lima.
    let late = Timestamp::parse_rfc3339("2026-11-02T04:30:00Z").unwrap();
    h.store
        .insert_call(&NewCall {
            id: hotline_store::new_id(),
            sip_call_id: "late-call".into(),
            reference: None,
            started_at: late,
            trunk_source: None,
            called_number: None,
            caller: Caller::Absent,
            node: None,
        })
        .await
        .unwrap();
    let (id, _) = h
        .store
        .list_calls(&hotline_store::CallFilter {
            sip_call_id: Some("late-call".into()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.reference))
        .next()
        .unwrap();
    h.store
        .update_call(
            &id,
            &hotline_store::CallUpdate {
                language: Some("es".into()),
                ended_at: Some(late.add_millis(60_000)),
                disposition: Some(hotline_store::Disposition::Message),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.set_passwords().await;
    let board = |zone: &str| {
        // 04:45Z: 23:45 in Lima, still Nov 1 there.
        let clock = TestClock::new();
        clock.advance(late.unix_millis() + 15 * 60_000 - at(0).unix_millis());
        let settings = ConsoleSettings {
            time_zone: Zone::named(zone).unwrap(),
            ..settings()
        };
        let app = h.console(settings, clock);
        async move {
            let mut b = Browser::new(app);
            b.sign_in_as("sup").await;
            b.cookies.insert("lang".into(), "en".into());
            b.get("/board").await.text()
        }
    };
    let total = |html: &str| -> String {
        let at = html.find(r#"data-outcome="total">"#).expect(html);
        let rest = &html[at..];
        rest[rest.find("<strong>").unwrap() + 8..rest.find("</strong>").unwrap()].to_owned()
    };
    let lima = board("America/Lima").await;
    // Today in Lima is Nov 1: the three seeded calls and the late one.
    assert_eq!(total(&lima), "4", "{lima}");
    assert!(
        lima.contains("<title>2026-11-01 · Spanish: 2</title>"),
        "{lima}"
    );
    assert!(!lima.contains("2026-11-02 · "), "{lima}");
    assert!(lima.contains(r#"data-zone="America/Lima""#));
    assert!(lima.contains("America/Lima"));
    // Written in Lima time for a page read without the script.
    assert!(lima.contains(">2026-11-01 23:30</time>"), "{lima}");

    let utc = board("UTC").await;
    // Today in UTC is Nov 2: only the late call.
    assert_eq!(total(&utc), "1", "{utc}");
    assert!(
        utc.contains("<title>2026-11-02 · Spanish: 1</title>"),
        "{utc}"
    );
    assert!(
        utc.contains("<title>2026-11-01 · Spanish: 1</title>"),
        "{utc}"
    );
    assert!(utc.contains(">2026-11-02 04:30</time>"), "{utc}");
}

/// Opens a stream as `b` and returns the first event's text (`event: …\ndata: …`).
async fn first_event(b: &Browser, uri: &str) -> (axum::http::response::Parts, Body, String) {
    let req = b.request(Method::GET, uri).body(Body::empty()).unwrap();
    let res = b.app.clone().oneshot(req).await.unwrap();
    let (parts, mut body) = res.into_parts();
    let event = next_event(&mut body).await.expect("a first event");
    (parts, body, event)
}

/// The next event of a stream (comments skipped); `None` when the stream ends.
async fn next_event(body: &mut Body) -> Option<String> {
    let mut buf = String::new();
    loop {
        let frame = tokio::time::timeout(
            Duration::from_secs(10),
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)),
        )
        .await
        .expect("an event within 10 s");
        let frame = frame?.unwrap();
        if let Ok(data) = frame.into_data() {
            buf.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = buf.find("\n\n") {
            let event = buf[..end].to_owned();
            buf.drain(..end + 2);
            if !event.starts_with(':') {
                return Some(event);
            }
        }
    }
}

fn data_json(event: &str) -> serde_json::Value {
    let data: Vec<&str> = event
        .lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .collect();
    serde_json::from_str(&data.join("\n")).unwrap_or_else(|e| panic!("{e}: {event}"))
}

async fn live_streams_send_the_parts_and_end_with_the_session(h: Harness) {
    let queue = FakeQueue::new(&[(Some("es"), -10_000), (Some("qu"), -5_000)]);
    let b = signed_in(&h, Some(queue.clone()), "ana").await;
    let (parts, mut body, event) = first_event(&b, "/operator/events").await;
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers[header::CONTENT_TYPE], "text/event-stream");
    assert!(event.starts_with("event: update\n"), "{event}");
    let v = data_json(&event);
    assert_eq!(v["waiting"], 2, "{v}");
    let p = &v["parts"];
    assert!(
        p["queue"]
            .as_str()
            .unwrap()
            .contains("2 callers are waiting."),
        "{v}"
    );
    assert!(
        p["status"]
            .as_str()
            .unwrap()
            .contains(r#"data-state="offline""#)
    );
    // ana's last call (the seeded operator call).
    let call = p["call"].as_str().unwrap();
    assert!(call.contains("Your last call"), "{call}");
    assert!(call.contains(&h.seed.call_operator), "{call}");

    // A change is sent (only what changed).
    queue
        .set_status("ana", OperatorStatus::Available)
        .await
        .unwrap();
    let v = data_json(&next_event(&mut body).await.unwrap());
    assert!(
        v["parts"]["status"]
            .as_str()
            .unwrap()
            .contains(r#"data-state="available""#),
        "{v}"
    );
    assert!(v["parts"].get("call").is_none(), "{v}");

    // Signed out (here: the session's row deleted): an `end` event, then the stream ends.
    h.store.delete_user_sessions("ana").await.unwrap();
    let end = loop {
        let e = next_event(&mut body).await.expect("an end event");
        if e.starts_with("event: end") {
            break e;
        }
    };
    assert_eq!(end, "event: end\ndata: session");
    assert!(next_event(&mut body).await.is_none());

    // The board's stream, for a supervisor; not for an operator.
    let sup = signed_in(&h, Some(queue.clone()), "sup").await;
    let (parts, _body, event) = first_event(&sup, "/board/events").await;
    assert_eq!(parts.headers[header::CONTENT_TYPE], "text/event-stream");
    let v = data_json(&event);
    assert_eq!(v["waiting"], 2);
    assert!(
        v["parts"]["operators"]
            .as_str()
            .unwrap()
            .contains("data-operator=\"ana\"")
    );
    assert!(
        v["parts"]["today"]
            .as_str()
            .unwrap()
            .contains("data-outcome=\"total\"")
    );

    // Anonymous: to sign-in.
    let anon = Browser::new(sup.app.clone());
    let req = anon
        .request(Method::GET, "/operator/events")
        .body(Body::empty())
        .unwrap();
    let res: axum::response::Response = anon.app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 303);
}

both!(
    status_buttons_set_the_own_status,
    without_a_queue_the_desk_says_so,
    a_supervisor_sees_the_desk_without_a_status,
    the_queue_shows_languages_and_waits,
    the_call_in_hand_shows_no_caller,
    the_call_in_hand_shows_keypad_answers_and_quick_exits,
    case_notes_by_the_operator_on_the_call_or_a_supervisor,
    the_board_is_for_supervisors,
    the_board_counts_quick_exits_silent_calls_and_callbacks,
    the_board_counts_days_in_the_hotline_s_time_zone,
    live_streams_send_the_parts_and_end_with_the_session,
);
