//! The supervisors' pages: the recordings inbox (filters, paging, audited listing), the
//! recording page (audited before it shows anything, player, call, events, case notes, repeat
//! caller count, marks and keypad answers, review form with CSRF), the case export (a zip whose
//! SHA256SUMS verify, audited first, refused for a file that is not the stored one; the marks
//! and answers in call.json) and the audit log search. Operators get 403 on every one of them.

#[macro_use]
mod common;

use std::io::Read;

use axum::http::header;
use common::{Browser, Harness, SAFETY_ANSWERS, TestClock, at};
use hotline_console::ConsoleSettings;
use hotline_store::{
    AuditEntry, AuditFilter, NewAuditEntry, NewCallNote, NewRecording, RecordingKind,
    RecordingStatus, Timestamp, new_id, new_id_at,
};
use sha2::Digest;

async fn signed_in(h: &Harness, user: &str) -> Browser {
    h.set_passwords().await;
    let settings = ConsoleSettings {
        secure_cookies: false,
        ..ConsoleSettings::default()
    };
    let mut b = Browser::new(h.console(settings, TestClock::new()));
    b.sign_in_as(user).await;
    b
}

fn hex_sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every value of `attr="…"` in a page, in order.
fn attr_values(html: &str, attr: &str) -> Vec<String> {
    let pattern = format!("{attr}=\"");
    html.match_indices(&pattern)
        .map(|(i, _)| {
            let rest = &html[i + pattern.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// The recording ids listed by an inbox page.
fn listed(html: &str) -> Vec<String> {
    attr_values(html, "data-recording-id")
}

/// The `href` of the element with this id (unescaped).
fn href_of(html: &str, id: &str) -> Option<String> {
    let pattern = format!("id=\"{id}\" href=\"");
    let rest = &html[html.find(&pattern)? + pattern.len()..];
    Some(
        rest[..rest.find('"')?]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

async fn audit_lines(h: &Harness, action: &str) -> Vec<AuditEntry> {
    h.store
        .list_audit(&AuditFilter {
            action: Some(action.to_owned()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

async fn reference_of(h: &Harness, call_id: &str) -> String {
    h.store
        .get_call(call_id)
        .await
        .unwrap()
        .unwrap()
        .call
        .reference
}

/// A message recording of `call_id` whose stored SHA-256 is its file's: returns its id.
async fn stored_recording(h: &Harness, call_id: &str, wav: &[u8], created: Timestamp) -> String {
    let id = new_id_at(created);
    let rel = format!("recordings/2026/11/02/{id}.wav");
    let file = h.data_dir.join(&rel);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, wav).unwrap();
    h.store
        .insert_recording(&NewRecording {
            id: id.clone(),
            call_id: call_id.to_owned(),
            kind: RecordingKind::Message,
            path: rel,
            created_at: created,
            duration_ms: 2_000,
            bytes: wav.len() as i64,
            sha256: hex_sha256(wav),
            status: RecordingStatus::New,
            tags: vec![],
            notes: String::new(),
        })
        .await
        .unwrap();
    id
}

async fn operators_get_403_everywhere(h: Harness) {
    let mut b = signed_in(&h, "ana").await;
    let id = &h.seed.rec_message;
    for uri in [
        "/recordings".to_owned(),
        "/recordings?status=new".to_owned(),
        format!("/recordings/{id}"),
        format!("/recordings/{id}/export.zip"),
        "/audit".to_owned(),
        "/audit?user=sup".to_owned(),
    ] {
        let a = b.get(&uri).await;
        assert_eq!(a.status, 403, "{uri}");
        assert!(a.text().contains("No tiene permiso"), "{uri}: {}", a.text());
    }
    let csrf = b.csrf().await;
    let a = b
        .post_form(
            &format!("/recordings/{id}"),
            &[("csrf", &csrf), ("status", "closed"), ("tags", "x")],
        )
        .await;
    assert_eq!(a.status, 403);
    let rec = h.store.get_recording(id).await.unwrap().unwrap();
    assert_eq!(rec.status, RecordingStatus::New);
    // Nothing of a recording was opened by her.
    let audit = h
        .store
        .list_audit(&AuditFilter {
            user: Some("ana".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(
        audit.iter().all(|e| !e.action.starts_with("recording.")),
        "{audit:?}"
    );
}

async fn the_inbox_lists_filters_and_audits(h: Harness) {
    let mut b = signed_in(&h, "sup").await;
    let s = &h.seed;
    let a = b.get("/recordings").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let text = a.text();
    // Newest first.
    assert_eq!(
        listed(&text).iter().collect::<Vec<_>>(),
        [&s.rec_missing, &s.rec_conversation, &s.rec_message]
    );
    let reference = reference_of(&h, &s.call_message).await;
    assert!(
        text.contains(&format!(
            "data-recording-id=\"{}\" data-reference=\"{reference}\"",
            s.rec_message
        )),
        "{text}"
    );
    assert!(text.contains(&format!("href=\"/recordings/{}\"", s.rec_message)));
    assert!(text.contains("Mensaje") && text.contains("Conversación"));
    assert!(text.contains("Quechua") && text.contains("Español"));
    assert!(text.contains("0:12"), "the duration");
    assert!(text.contains("Revisada") && text.contains("Nueva"));
    assert!(
        text.contains("datetime=\"2026-11-01T12:35:41.000Z\""),
        "{text}"
    );
    // The listing was audited, with its filters.
    let lines = audit_lines(&h, "recording.list").await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].user.as_deref(), Some("sup"));
    assert_eq!(lines[0].recording_id, None);
    assert_eq!(lines[0].detail, "all");

    for (query, expected) in [
        ("status=reviewed", vec![&s.rec_conversation]),
        ("status=new", vec![&s.rec_missing, &s.rec_message]),
        ("status=closed", vec![]),
        ("language=es", vec![&s.rec_message]),
        ("language=qu", vec![&s.rec_missing, &s.rec_conversation]),
        ("kind=message", vec![&s.rec_message]),
        ("kind=conversation&status=new", vec![&s.rec_missing]),
        (
            "status=&language=&kind=&from=&to=",
            vec![&s.rec_missing, &s.rec_conversation, &s.rec_message],
        ),
        // The seed is at 07:34 on 2026-11-01, Peru time.
        (
            "from=2026-11-01&to=2026-11-01",
            vec![&s.rec_missing, &s.rec_conversation, &s.rec_message],
        ),
        ("to=2026-10-31", vec![]),
        ("from=2026-11-02", vec![]),
    ] {
        let a = b.get(&format!("/recordings?{query}")).await;
        assert_eq!(a.status, 200, "{query}: {}", a.text());
        assert_eq!(
            listed(&a.text()).iter().collect::<Vec<_>>(),
            expected,
            "{query}"
        );
        if expected.is_empty() {
            assert!(a.text().contains("id=\"empty\""), "{query}");
        }
    }
    // The form keeps what was chosen.
    let text = b
        .get("/recordings?status=referred&from=2026-11-01")
        .await
        .text();
    assert!(
        text.contains("<option value=\"referred\" selected>"),
        "{text}"
    );
    assert!(
        text.contains("name=\"from\" value=\"2026-11-01\""),
        "{text}"
    );
    let lines = audit_lines(&h, "recording.list").await;
    assert_eq!(lines[0].detail, "status=referred from=2026-11-01");

    // Values the form does not offer: a 400 page.
    for query in [
        "status=done",
        "kind=video",
        "language=Quechua",
        "from=01%2F11%2F2026",
        "to=2026-02-30",
        "before=yesterday",
    ] {
        let a = b.get(&format!("/recordings?{query}")).await;
        assert_eq!(a.status, 400, "{query}");
        assert!(a.header("content-type").unwrap().starts_with("text/html"));
    }

    // An admin too; in English.
    let mut admin = signed_in(&h, "admin").await;
    admin.cookies.insert("lang".into(), "en".into());
    let text = admin.get("/recordings").await.text();
    assert!(
        text.contains("Reviewed") && text.contains("Conversation"),
        "{text}"
    );
}

async fn the_inbox_pages_without_skipping_or_repeating(h: Harness) {
    let wav = common::wav(100);
    let mut ids = Vec::new();
    for i in 0..60 {
        // The 50th and 51st newest share one millisecond.
        let ms = if i == 9 { 10 } else { i };
        ids.push(stored_recording(&h, &h.seed.call_message, &wav, at(1_000_000 + ms * 1000)).await);
    }
    let mut b = signed_in(&h, "sup").await;
    let first = b.get("/recordings").await.text();
    let page1 = listed(&first);
    assert_eq!(
        page1.len(),
        49,
        "the shared millisecond goes to the next page"
    );
    assert!(!first.contains("id=\"newest\""));
    let older = href_of(&first, "older").expect("an older link");
    let second = b.get(&older).await;
    assert_eq!(second.status, 200, "{older}: {}", second.text());
    let second = second.text();
    assert!(href_of(&second, "older").is_none(), "two pages: {second}");
    assert!(second.contains("id=\"newest\""));
    let page2 = listed(&second);
    let mut all: Vec<String> = page1.iter().chain(&page2).cloned().collect();
    assert_eq!(all.len(), 63);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 63, "no recording twice");
    // The filters go along.
    let first = b.get("/recordings?status=new&kind=message").await.text();
    let older = href_of(&first, "older").unwrap();
    assert!(
        older.contains("status=new") && older.contains("kind=message"),
        "{older}"
    );
    assert_eq!(listed(&b.get(&older).await.text()).len(), 12);
}

async fn the_recording_page_audits_then_shows_everything(h: Harness) {
    let s = &h.seed;
    h.store
        .add_call_note(&NewCallNote {
            id: new_id(),
            call_id: s.call_operator.clone(),
            author: "ana".into(),
            at: at(301_000),
            text: "Menciona un taller en <Gamarra>\nsegunda línea".into(),
        })
        .await
        .unwrap();
    let mut b = signed_in(&h, "sup").await;
    let a = b.get(&format!("/recordings/{}", s.rec_conversation)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let text = a.text();
    let reference = reference_of(&h, &s.call_operator).await;
    // The audit line is there, for this recording.
    let lines = audit_lines(&h, "recording.view").await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].user.as_deref(), Some("sup"));
    assert_eq!(
        lines[0].recording_id.as_deref(),
        Some(s.rec_conversation.as_str())
    );
    // The player, by the API's audited audio route; nothing is fetched (and audited as a
    // play) until the supervisor presses play.
    assert!(
        text.contains(&format!(
            "<audio id=\"player\" controls preload=\"none\" src=\"/api/recordings/{}/audio\"",
            s.rec_conversation
        )),
        "{text}"
    );
    assert!(text.contains("data-duration-ms=\"12340\""));
    // The call's metadata.
    assert!(
        text.contains(&format!("<dd id=\"call-reference\">{reference}</dd>")),
        "{text}"
    );
    assert!(text.contains("<dd id=\"call-language\">Quechua</dd>"));
    assert!(text.contains("language → main → operator"));
    assert!(text.contains("Habló con un(a) operador(a)"));
    assert!(text.contains("<dd id=\"call-queue-wait\">0:12</dd>"));
    assert!(text.contains("<dd id=\"call-operator\">ana</dd>"));
    assert!(
        text.contains("<dd id=\"call-started\"><time datetime=\"2026-11-01T12:35:56.000Z\" data-local>2026-11-01 07:35</time></dd>"),
        "{text}"
    );
    // The caller called once before (the seed's calls share a pseudonym); never the number.
    assert!(
        text.contains("id=\"previous-calls\" data-count=\"1\""),
        "{text}"
    );
    assert!(!text.contains(&"ab".repeat(32)), "no pseudonym on the page");
    // Events, case notes (escaped), review, other recordings of the call.
    for kind in ["answered", "enqueued", "bridged"] {
        assert!(
            text.contains(&format!("<tr data-kind=\"{kind}\">")),
            "{kind}"
        );
    }
    assert!(
        text.contains("Menciona un taller en &#60;Gamarra&#62;")
            || text.contains("Menciona un taller en &lt;Gamarra&gt;"),
        "{text}"
    );
    assert!(!text.contains("<Gamarra>"));
    assert!(text.contains("id=\"status\" data-status=\"reviewed\""));
    assert!(text.contains(&format!("href=\"/recordings/{}\"", s.rec_missing)));
    assert!(text.contains(&format!(
        "href=\"/recordings/{}/export.zip\"",
        s.rec_conversation
    )));
    for status in ["Nueva", "Revisada", "Derivada", "Cerrada"] {
        assert!(
            text.contains(&format!("<dt>{status}</dt>")),
            "what {status} means"
        );
    }
    // The first call of the caller: no earlier ones.
    let text = b
        .get(&format!("/recordings/{}", s.rec_message))
        .await
        .text();
    assert!(
        text.contains("id=\"previous-calls\" data-count=\"0\""),
        "{text}"
    );
    assert!(text.contains("Sin notas del caso."));

    // Unknown ids: 404 pages.
    for id in ["01JC0000000000000000000000", "..%2Fetc", "x"] {
        let a = b.get(&format!("/recordings/{id}")).await;
        assert_eq!(a.status, 404, "{id}");
    }

    // Without an audit line, nothing of the recording is shown.
    h.fail_audit_writes().await;
    let a = b.get(&format!("/recordings/{}", s.rec_conversation)).await;
    assert_eq!(a.status, 503);
    let text = a.text();
    assert!(text.contains("registro de auditoría"), "{text}");
    assert!(
        !text.contains(&reference) && !text.contains("id=\"player\""),
        "{text}"
    );
    let a = b.get("/recordings").await;
    assert_eq!(a.status, 503);
    assert!(!a.text().contains("data-recording-id"));
}

async fn the_recording_page_shows_marks_and_keypad_answers(h: Harness) {
    let safety = h.seed_safety().await;
    // The caller answered with keys, left a message, then pressed the quick-exit key.
    h.mark_call(&safety.call, &["quick-exit"]).await;
    let id = stored_recording(&h, &safety.call, &common::wav(4000), at(230_000)).await;
    let mut b = signed_in(&h, "sup").await;
    let a = b.get(&format!("/recordings/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let text = a.text();
    // The warning comes before the player.
    let warning = text
        .find(r#"<p class="alert" id="quick-exit" role="alert">Salida rápida: quien llama pulsó la tecla de salida"#)
        .unwrap_or_else(|| panic!("no quick-exit warning: {text}"));
    assert!(warning < text.find(r#"id="player""#).unwrap());
    assert!(
        text.contains(r#"<dd id="call-marks"><span class="mark" data-mark="quick-exit">salida rápida</span></dd>"#),
        "{text}"
    );
    assert!(!text.contains(">quick-exit<"), "an id shown as a word");
    // The keypad answers, in order.
    assert!(
        text.contains(r#"<h3 id="h-answers">Respuestas con el teclado</h3>"#),
        "{text}"
    );
    let answers: String = SAFETY_ANSWERS
        .iter()
        .map(|(q, a)| format!("\n<dt>{q}</dt><dd>{a}</dd>"))
        .collect();
    assert!(
        text.contains(&format!(r#"<dl id="answers" class="answers">{answers}"#)),
        "{text}"
    );
    // Six earlier calls, two of them silent and one a quick exit; never the pseudonym.
    assert!(
        text.contains(r#"<dd id="previous-calls" data-count="6">6 · <span id="earlier-marked">2 llamadas silenciosas antes · 1 salida rápida antes</span></dd>"#),
        "{text}"
    );
    assert!(!text.contains(&"ab".repeat(32)));
    // The flow's safety events in words; the others as stored.
    assert!(text.contains(r#"<tr data-kind="answer">"#));
    assert!(
        text.contains(r#"">respuesta con el teclado</td><td class="detail" data-label="Detalle">En peligro ahora = sí</td>"#),
        "{text}"
    );
    assert!(text.contains(r#"">enqueued</td>"#));

    // A silent call's mark, in English.
    b.cookies.insert("lang".into(), "en".into());
    h.mark_call(&safety.call, &["silent"]).await;
    let text = b.get(&format!("/recordings/{id}")).await.text();
    assert!(
        text.contains(
            r#"<dd id="call-marks"><span class="mark" data-mark="silent">silent</span></dd>"#
        ),
        "{text}"
    );
    assert!(
        !text.contains(r#"id="quick-exit""#),
        "not a quick exit any more"
    );
    assert!(text.contains(r#"<h3 id="h-answers">Keypad answers</h3>"#));
    assert!(text.contains("2 silent calls before · 1 quick exit before"));

    // A call with none of it: no warning, no answers, marks "—".
    let text = b
        .get(&format!("/recordings/{}", h.seed.rec_message))
        .await
        .text();
    assert!(text.contains(r#"<dd id="call-marks">—</dd>"#), "{text}");
    for absent in [r#"id="quick-exit""#, "h-answers", "earlier-marked"] {
        assert!(!text.contains(absent), "{absent}: {text}");
    }
}

async fn the_export_has_the_marks_and_keypad_answers(h: Harness) {
    let safety = h.seed_safety().await;
    h.mark_call(&safety.call, &["quick-exit"]).await;
    let id = stored_recording(&h, &safety.call, &common::wav(4000), at(230_000)).await;
    let mut b = signed_in(&h, "sup").await;
    let a = b.get(&format!("/recordings/{id}/export.zip")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let entries = unzip(&a.body);
    let call = &entries.iter().find(|(n, _)| n == "call.json").unwrap().1;
    let c: serde_json::Value = serde_json::from_slice(call).unwrap();
    assert_eq!(c["marks"], serde_json::json!(["quick-exit"]));
    let answers: Vec<serde_json::Value> = SAFETY_ANSWERS
        .iter()
        .map(|(q, a)| serde_json::json!({"question": q, "answer": a}))
        .collect();
    assert_eq!(c["answers"], serde_json::Value::Array(answers));
    assert_eq!(c["previous_calls_from_caller"], 6);
    assert_eq!(c["previous_silent_calls_from_caller"], 2);
    assert_eq!(c["previous_quick_exit_calls_from_caller"], 1);
    assert!(!String::from_utf8_lossy(call).contains(&"ab".repeat(32)));
    // SHA256SUMS still covers call.json as sent.
    let sums = &entries.iter().find(|(n, _)| n == "SHA256SUMS").unwrap().1;
    let sums = String::from_utf8_lossy(sums);
    assert!(
        sums.contains(&format!("{}  call.json", hex_sha256(call))),
        "{sums}"
    );
}

async fn the_review_form_needs_csrf_and_saves(h: Harness) {
    let id = h.seed.rec_message.clone();
    let uri = format!("/recordings/{id}");
    let mut b = signed_in(&h, "sup").await;
    let page = b.get(&uri).await.text();
    assert!(page.contains("<form id=\"review\" method=\"post\""));
    let csrf = common::hidden_field(&page, "csrf").expect("the form carries the token");
    fn fields(token: Option<&str>) -> Vec<(&str, &str)> {
        let mut f = vec![
            ("status", "reviewed"),
            ("tags", " urgente, Lima ,,urgente "),
            ("notes", "Escuchada.\r\nDerivar si vuelve a llamar."),
        ];
        if let Some(t) = token {
            f.push(("csrf", t));
        }
        f
    }
    for token in [None, Some("wrong")] {
        let a = b.post_form(&uri, &fields(token)).await;
        assert_eq!(a.status, 403, "{token:?}");
        assert!(a.text().contains("CSRF"));
    }
    assert_eq!(
        h.store.get_recording(&id).await.unwrap().unwrap().status,
        RecordingStatus::New
    );
    let a = b.post_form(&uri, &fields(Some(&csrf))).await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.location(), Some(format!("{uri}?saved=1").as_str()));
    let rec = h.store.get_recording(&id).await.unwrap().unwrap();
    assert_eq!(rec.status, RecordingStatus::Reviewed);
    assert_eq!(rec.tags, ["urgente", "Lima"]);
    assert_eq!(rec.notes, "Escuchada.\nDerivar si vuelve a llamar.");
    let lines = audit_lines(&h, "recording.update").await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].user.as_deref(), Some("sup"));
    assert_eq!(lines[0].recording_id.as_deref(), Some(id.as_str()));
    assert!(
        lines[0].detail.contains("status new -> reviewed"),
        "{}",
        lines[0].detail
    );
    assert!(
        !lines[0].detail.contains("Derivar"),
        "notes stay out of the audit log"
    );
    // The page after the redirect says so and shows it.
    let text = b.get(&format!("{uri}?saved=1")).await.text();
    assert!(text.contains("id=\"saved\""));
    assert!(text.contains("<span class=\"tag\">Lima</span>"));
    assert!(text.contains("value=\"urgente, Lima\""));
    // The same form again changes nothing and writes nothing.
    let a = b.post_form(&uri, &fields(Some(&csrf))).await;
    assert_eq!(a.location(), Some(format!("{uri}?saved=0").as_str()));
    assert_eq!(audit_lines(&h, "recording.update").await.len(), 1);
    // Only the status.
    let a = b
        .post_form(
            &uri,
            &[
                ("csrf", &csrf),
                ("status", "referred"),
                ("tags", "urgente,Lima"),
                ("notes", "Escuchada.\nDerivar si vuelve a llamar."),
            ],
        )
        .await;
    assert_eq!(a.status, 303);
    let lines = audit_lines(&h, "recording.update").await;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].detail, "status reviewed -> referred");
    // Out of bounds: a 400 page, nothing stored.
    let long = "x".repeat(41);
    for (status, tags) in [("closed", long.as_str()), ("done", "a")] {
        let a = b
            .post_form(
                &uri,
                &[
                    ("csrf", &csrf),
                    ("status", status),
                    ("tags", tags),
                    ("notes", ""),
                ],
            )
            .await;
        assert_eq!(a.status, 400, "{status} {tags}");
        assert!(a.header("content-type").unwrap().starts_with("text/html"));
    }
    let a = b.post_form(&uri, &[("csrf", &csrf)]).await;
    assert_eq!(a.status, 400, "no status");
    assert_eq!(
        h.store.get_recording(&id).await.unwrap().unwrap().status,
        RecordingStatus::Referred
    );
    // An unknown recording.
    let a = b
        .post_form(
            "/recordings/01JC0000000000000000000000",
            &[("csrf", &csrf), ("status", "closed")],
        )
        .await;
    assert_eq!(a.status, 404);
}

/// The entries of a zip: name and content, in order.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut v = Vec::new();
            f.read_to_end(&mut v).unwrap();
            (f.name().unwrap().into_owned(), v)
        })
        .collect()
}

async fn the_export_is_verifiable_and_audited_first(h: Harness) {
    let call = h.seed.call_operator.clone();
    let wav = common::wav(8000);
    let id = stored_recording(&h, &call, &wav, at(400_000)).await;
    h.store
        .add_call_note(&NewCallNote {
            id: new_id(),
            call_id: call.clone(),
            author: "ana".into(),
            at: at(401_000),
            text: "Nota del caso".into(),
        })
        .await
        .unwrap();
    let reference = reference_of(&h, &call).await;
    let mut b = signed_in(&h, "sup").await;
    let csrf = b.csrf().await;
    b.post_form(
        &format!("/recordings/{id}"),
        &[
            ("csrf", &csrf),
            ("status", "referred"),
            ("tags", "policía"),
            ("notes", "Para la fiscalía"),
        ],
    )
    .await;
    let a = b.get(&format!("/recordings/{id}/export.zip")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("application/zip"));
    let disposition = a.header("content-disposition").unwrap();
    assert_eq!(
        disposition,
        format!("attachment; filename=\"caso-{reference}-{id}.zip\"")
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));

    let entries = unzip(&a.body);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    let wav_name = format!("recording-{id}.wav");
    assert_eq!(
        names,
        [
            wav_name.as_str(),
            "call.json",
            "events.json",
            "notes.json",
            "SHA256SUMS"
        ]
    );
    let file = |name: &str| &entries.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(file(&wav_name), &wav, "the WAV as stored");
    // Every line of SHA256SUMS matches its file; every other file has a line.
    let sums = String::from_utf8(file("SHA256SUMS").clone()).unwrap();
    let lines: Vec<&str> = sums.lines().collect();
    assert_eq!(lines.len(), 4, "{sums}");
    for line in &lines {
        let (hash, name) = line.split_once("  ").expect("`<hash>  <name>`");
        assert_eq!(hash, hex_sha256(file(name)), "{name}");
    }
    assert!(lines[0].starts_with(&hex_sha256(&wav)));
    // The documents.
    let json = |name: &str| -> serde_json::Value { serde_json::from_slice(file(name)).unwrap() };
    let c = json("call.json");
    assert_eq!(c["reference"], reference.as_str());
    assert_eq!(c["language"], "qu");
    assert_eq!(c["operator"], "ana");
    assert_eq!(c["previous_calls_from_caller"], 1);
    assert!(c.get("caller").is_none() && c.get("trunk_source").is_none());
    assert!(!String::from_utf8_lossy(file("call.json")).contains(&"ab".repeat(32)));
    let e = json("events.json");
    assert_eq!(e["events"].as_array().unwrap().len(), 3);
    assert_eq!(e["events"][2]["kind"], "bridged");
    let n = json("notes.json");
    assert_eq!(n["recording"]["status"], "referred");
    assert_eq!(n["recording"]["tags"][0], "policía");
    assert_eq!(n["recording"]["notes"], "Para la fiscalía");
    assert_eq!(n["recording"]["sha256"], hex_sha256(&wav));
    assert_eq!(n["case_notes"][0]["text"], "Nota del caso");
    assert_eq!(n["exported_by"], "sup");
    // Audited, as sup, for this recording.
    let lines = audit_lines(&h, "recording.export").await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].user.as_deref(), Some("sup"));
    assert_eq!(lines[0].recording_id.as_deref(), Some(id.as_str()));
    assert!(lines[0].detail.contains(&reference));

    // No audit line, no export.
    h.fail_audit_writes().await;
    let a = b.get(&format!("/recordings/{id}/export.zip")).await;
    assert_eq!(a.status, 503);
    assert!(a.header("content-type").unwrap().starts_with("text/html"));
    assert!(a.header("content-disposition").is_none());
}

async fn a_file_that_is_not_the_stored_one_is_not_exported(h: Harness) {
    let wav = common::wav(4000);
    let id = stored_recording(&h, &h.seed.call_message, &wav, at(500_000)).await;
    let mut b = signed_in(&h, "sup").await;
    assert_eq!(
        b.get(&format!("/recordings/{id}/export.zip")).await.status,
        200
    );
    // One byte changed on disk.
    let rec = h.store.get_recording(&id).await.unwrap().unwrap();
    let path = h.data_dir.join(&rec.path);
    let mut altered = wav.clone();
    altered[1000] ^= 1;
    std::fs::write(&path, &altered).unwrap();
    let a = b.get(&format!("/recordings/{id}/export.zip")).await;
    assert_eq!(a.status, 500);
    assert!(a.header("content-type").unwrap().starts_with("text/html"));
    assert!(a.header("content-disposition").is_none());
    assert!(a.text().contains("huella SHA-256"), "{}", a.text());
    // The attempt and the refusal are both in the audit log.
    assert_eq!(audit_lines(&h, "recording.export").await.len(), 2);
    let refused = audit_lines(&h, "recording.integrity_failed").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].recording_id.as_deref(), Some(id.as_str()));
    assert!(
        refused[0].detail.contains(&hex_sha256(&altered)),
        "{}",
        refused[0].detail
    );
    // The seed's message: its stored hash is not its file's either.
    let a = b
        .get(&format!("/recordings/{}/export.zip", h.seed.rec_message))
        .await;
    assert_eq!(a.status, 500);
    // A missing file: 404 page.
    let a = b
        .get(&format!("/recordings/{}/export.zip", h.seed.rec_missing))
        .await;
    assert_eq!(a.status, 404);
    assert!(
        a.text().contains("no está en el almacenamiento"),
        "{}",
        a.text()
    );
    // An unknown recording.
    let a = b
        .get("/recordings/01JC0000000000000000000000/export.zip")
        .await;
    assert_eq!(a.status, 404);
}

async fn the_audit_log_searches(h: Harness) {
    let line = |user: &str, action: &str, at_ms: i64, detail: &str| NewAuditEntry {
        id: new_id(),
        at: at(at_ms),
        user: Some(user.to_owned()),
        action: action.to_owned(),
        recording_id: Some(h.seed.rec_message.clone()),
        source: Some("192.0.2.9:5000".into()),
        detail: detail.to_owned(),
    };
    let day = 24 * 3600 * 1000;
    for e in [
        line("sup", "recording.audio", -3 * day, "bytes=0-99"),
        line("admin", "user.add", -day, "beto operador"),
        line("sup", "recording.update", 1000, "status new -> referred"),
        line("admin", "recording.audio", 2000, "full"),
    ] {
        h.store.append_audit(&e).await.unwrap();
    }
    let mut b = signed_in(&h, "sup").await;
    let a = b.get("/audit").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let text = a.text();
    let actions = attr_values(&text, "data-action");
    // Newest first: sup's sign-in (the test clock's now) is T0, before 1000 and 2000.
    assert_eq!(
        actions,
        [
            "recording.audio",
            "recording.update",
            "console.signin",
            "user.add",
            "recording.audio"
        ],
        "{text}"
    );
    assert!(text.contains(&format!("href=\"/recordings/{}\"", h.seed.rec_message)));
    for (query, expected) in [
        ("user=admin", vec!["recording.audio", "user.add"]),
        (
            "action=recording.audio",
            vec!["recording.audio", "recording.audio"],
        ),
        ("user=sup&action=recording.audio", vec!["recording.audio"]),
        ("q=REFERRED", vec!["recording.update"]),
        (
            "q=192.0.2.9&user=admin",
            vec!["recording.audio", "user.add"],
        ),
        // Peru days: T0 is 2026-11-01 07:34; -1 day is 2026-10-31, -3 days 2026-10-29.
        ("from=2026-10-30&to=2026-10-31", vec!["user.add"]),
        ("to=2026-10-30", vec!["recording.audio"]),
        (
            "from=2026-11-01&user=sup",
            vec!["recording.update", "console.signin"],
        ),
        ("user=nobody", vec![]),
    ] {
        let a = b.get(&format!("/audit?{query}")).await;
        assert_eq!(a.status, 200, "{query}: {}", a.text());
        assert_eq!(attr_values(&a.text(), "data-action"), expected, "{query}");
    }
    let text = b.get("/audit?user=admin&q=full").await.text();
    assert!(text.contains("name=\"user\" value=\"admin\""));
    assert!(text.contains("name=\"q\" value=\"full\""));
    for query in ["from=yesterday", &format!("q={}", "x".repeat(201))] {
        assert_eq!(
            b.get(&format!("/audit?{query}")).await.status,
            400,
            "{query}"
        );
    }
    // Paging: 150 more lines.
    for i in 0..150 {
        h.store
            .append_audit(&line("admin", "bulk.line", 10_000 + i, &format!("n{i}")))
            .await
            .unwrap();
    }
    let first = b.get("/audit?action=bulk.line").await.text();
    assert_eq!(attr_values(&first, "data-action").len(), 100);
    let older = href_of(&first, "older").expect("an older link");
    assert!(older.contains("action=bulk.line"), "{older}");
    let second = b.get(&older).await.text();
    assert_eq!(attr_values(&second, "data-action").len(), 50);
    assert!(href_of(&second, "older").is_none());
    assert!(
        second.contains(">n0<"),
        "the oldest line is on the last page"
    );
}

async fn pages_work_in_english(h: Harness) {
    let mut b = signed_in(&h, "sup").await;
    b.cookies.insert("lang".into(), "en".into());
    let text = b
        .get(&format!("/recordings/{}", h.seed.rec_message))
        .await
        .text();
    assert!(text.contains("<html lang=\"en\" data-zone=\"America/Lima\">"));
    for words in [
        "Listen",
        "Review",
        "Call events",
        "Earlier calls from the same caller",
        "Export the case (ZIP)",
        "Nobody has listened to it yet.",
    ] {
        assert!(text.contains(words), "{words}: {text}");
    }
    let text = b.get("/audit").await.text();
    assert!(text.contains("Audit log") && text.contains("Search"));
    let a = b
        .get(&format!("/recordings/{}/export.zip", h.seed.rec_missing))
        .await;
    assert_eq!(a.status, 404);
    assert!(a.text().contains("not in the storage"), "{}", a.text());
    let _ = header::CONTENT_TYPE;
}

both!(
    the_recording_page_shows_marks_and_keypad_answers,
    the_export_has_the_marks_and_keypad_answers,
    operators_get_403_everywhere,
    the_inbox_lists_filters_and_audits,
    the_inbox_pages_without_skipping_or_repeating,
    the_recording_page_audits_then_shows_everything,
    the_review_form_needs_csrf_and_saves,
    the_export_is_verifiable_and_audited_first,
    a_file_that_is_not_the_stored_one_is_not_exported,
    the_audit_log_searches,
    pages_work_in_english,
);
