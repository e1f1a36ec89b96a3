//! The supervisors' pages (supervisors and admins; operators get the 403 page):
//!
//! - `GET /recordings`: the inbox, newest first, filtered by status, language, kind and dates
//!   (GET fields of a small form), 50 a page with an "older" link. The listing is audited
//!   (`recording.list`, no recording) before it is shown.
//! - `GET /recordings/{id}`: audited (`recording.view`) first; then the call's metadata, its
//!   events and case notes, whether the caller called before (a count; the number is never
//!   shown, only its pseudonym is stored) and how many of those calls were silent or quick
//!   exits, the call's marks in words with a warning for a quick exit, the caller's keypad
//!   answers (see [`super::safety`]), the player (the audio comes from
//!   `GET /api/recordings/{id}/audio`, which audits each request) and the review form.
//! - `POST /recordings/{id}`: the review form (status, tags, notes; CSRF checked by the session
//!   layer), applied with the API's own checks and audit line (`recording.update`, see
//!   `api::recordings::review`), then 303 back to the page.
//! - `GET /recordings/{id}/export.zip`: the case export for the police (see [`export`]).
//! - `GET /audit`: the audit log, searchable, newest first, 100 a page.
//!
//! Dates typed in the filters are days in Peru's time (UTC−5, no daylight saving). Times are
//! written in the page as Peru time and shown by the script in the browser's own time zone.
//!
//! Paging goes by time (`before`, milliseconds: rows strictly older). A page never ends in
//! the middle of rows that share one millisecond: those go to the next page together, so no
//! row is skipped or shown twice.

use std::collections::HashMap;
use std::str::FromStr;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hotline_store::{
    AuditEntry, AuditFilter, CallEvent, CallNote, Caller, Disposition, Recording, RecordingFilter,
    RecordingKind, RecordingStatus, Timestamp, Zone,
};
use serde::Deserialize;

use super::i18n::{Lang, t};
use super::safety::{self, SafetyView};
use super::{Layout, PageError, PageUser, audit_view, failure, see_other};
use crate::api::recordings::{MAX_NOTES_CHARS, MAX_TAG_CHARS, MAX_TAGS, Patch, review};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::extract::plausible_id;
use crate::{AppState, Route};

#[path = "export.rs"]
mod export;

/// This area's pages.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/recordings", inbox),
        Route::get("/recordings/{id}", show),
        Route::post("/recordings/{id}", save),
        Route::get(EXPORT_ROUTE, export::export),
        Route::get("/audit", audit),
    ]
}

/// The case export's route.
const EXPORT_ROUTE: &str = "/recordings/{id}/export.zip";
/// Recordings on a page of the inbox.
const PAGE: usize = 50;
/// Lines on a page of the audit log.
const AUDIT_PAGE: usize = 100;
/// Longest user, action or text accepted in the audit search.
const MAX_SEARCH: usize = 200;

/// Actions the audit search suggests (any text is accepted).
const KNOWN_ACTIONS: &[&str] = &[
    "recording.list",
    "recording.view",
    "recording.audio",
    "recording.update",
    "recording.export",
    "recording.integrity_failed",
    "console.signin",
    "console.signout",
];

// ---------------------------------------------------------------------------------------------
// What several pages show.

/// A time as the pages write it: `iso` for `<time datetime>` (the script shows it in the
/// hotline's time zone), `text` in that zone for a page read without the script.
#[derive(Debug, Clone)]
struct When {
    iso: String,
    text: String,
}

impl When {
    fn of(zone: &Zone, at: Timestamp) -> When {
        When {
            iso: at.to_rfc3339(),
            text: zone.minute_text(at),
        }
    }
}

/// `m:ss`, or `h:mm:ss` from an hour up: whole seconds as players count them (a moment under a
/// second is `0:01`).
fn duration_text(ms: i64) -> String {
    let secs = if (1..1000).contains(&ms) {
        1
    } else {
        ms.max(0) / 1000
    };
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

fn status_key(s: RecordingStatus) -> &'static str {
    match s {
        RecordingStatus::New => "recordings.status.new",
        RecordingStatus::Reviewed => "recordings.status.reviewed",
        RecordingStatus::Referred => "recordings.status.referred",
        RecordingStatus::Closed => "recordings.status.closed",
    }
}

fn status_help_key(s: RecordingStatus) -> &'static str {
    match s {
        RecordingStatus::New => "recordings.status_help.new",
        RecordingStatus::Reviewed => "recordings.status_help.reviewed",
        RecordingStatus::Referred => "recordings.status_help.referred",
        RecordingStatus::Closed => "recordings.status_help.closed",
    }
}

fn kind_key(k: RecordingKind) -> &'static str {
    match k {
        RecordingKind::Message => "recordings.kind.message",
        RecordingKind::Conversation => "recordings.kind.conversation",
    }
}

fn disposition_key(d: Disposition) -> &'static str {
    match d {
        Disposition::Message => "recording.disp.message",
        Disposition::Operator => "recording.disp.operator",
        Disposition::Abandoned => "recording.disp.abandoned",
        Disposition::Rejected => "recording.disp.rejected",
        Disposition::Failed => "recording.disp.failed",
        Disposition::Interrupted => "recording.disp.interrupted",
    }
}

/// The hotline's languages, as the filter offers them.
const LANGUAGES: &[(&str, &str)] = &[("es", "recordings.lang.es"), ("qu", "recordings.lang.qu")];

/// A language's name (its code if it is not one of [`LANGUAGES`]).
fn language_name(lang: Lang, code: Option<&str>) -> String {
    match code {
        None => t(lang, "recordings.lang.none").to_owned(),
        Some(c) => LANGUAGES
            .iter()
            .find(|(code, _)| *code == c)
            .map_or_else(|| c.to_owned(), |(_, key)| t(lang, key).to_owned()),
    }
}

/// An `<option>` of a filter's `<select>`.
#[derive(Debug)]
struct Opt {
    value: &'static str,
    label: String,
    selected: bool,
}

fn options<T: Copy + PartialEq>(
    lang: Lang,
    all: &[(T, &'static str, &'static str)],
    chosen: Option<T>,
) -> Vec<Opt> {
    all.iter()
        .map(|&(v, value, key)| Opt {
            value,
            label: t(lang, key).to_owned(),
            selected: chosen == Some(v),
        })
        .collect()
}

fn statuses() -> Vec<(RecordingStatus, &'static str, &'static str)> {
    RecordingStatus::ALL
        .iter()
        .map(|&s| (s, s.as_str(), status_key(s)))
        .collect()
}

/// A filter value: empty means "any"; anything that does not parse is a 400 page.
fn parse_opt<T: FromStr>(s: &str) -> Result<Option<T>, PageError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| PageError::BadRequest)
}

/// A day typed as `YYYY-MM-DD` (the hotline's), checked; empty: none.
fn day_typed(s: &str) -> Result<Option<&str>, PageError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err(PageError::BadRequest);
    }
    // Shape and calendar (no 30 February).
    Timestamp::parse_rfc3339(&format!("{s}T00:00:00Z")).map_err(|_| PageError::BadRequest)?;
    Ok(Some(s))
}

/// `from`/`to` days of `zone` (both included) and a paging cursor as a `[since, until)`
/// window.
fn window(
    zone: &Zone,
    from: &str,
    to: &str,
    before: Option<i64>,
) -> Result<(Option<Timestamp>, Option<Timestamp>), PageError> {
    let bad = |t: Option<Timestamp>| t.ok_or(PageError::BadRequest);
    let since = day_typed(from)?
        .map(|d| bad(zone.start_of_date(d)))
        .transpose()?;
    let to_end = day_typed(to)?
        .map(|d| bad(zone.end_of_date(d)))
        .transpose()?;
    let before = before.map(Timestamp::from_unix_millis);
    let until = match (to_end, before) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok((since, until))
}

/// Cuts rows fetched with a limit of `page + 1` (newest first) to one page; returns the page
/// and, if there are older rows, the `before` of the next page. Rows sharing the time of the
/// first row left out go to the next page with it.
fn cut_page<T>(
    mut rows: Vec<T>,
    page: usize,
    at: impl Fn(&T) -> Timestamp,
) -> (Vec<T>, Option<i64>) {
    if rows.len() <= page {
        return (rows, None);
    }
    rows.truncate(page + 1);
    let boundary = at(&rows[page]);
    rows.truncate(page);
    let keep = rows.iter().take_while(|r| at(r) != boundary).count();
    if keep == 0 {
        // A whole page in one millisecond: show it, go on strictly before it.
        return (rows, Some(boundary.unix_millis()));
    }
    rows.truncate(keep);
    (rows, Some(boundary.unix_millis().saturating_add(1)))
}

/// A query string of the non-empty `pairs`.
fn query_string(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", super::urlencode(v)))
        .collect();
    parts.join("&")
}

/// The audit line's words for a set of filters (`status=new language=qu`).
fn describe_filters(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", v.chars().take(64).collect::<String>()))
        .collect();
    if parts.is_empty() {
        "all".to_owned()
    } else {
        parts.join(" ")
    }
}

// ---------------------------------------------------------------------------------------------
// GET /recordings

/// The inbox's GET fields, as typed (empty: any).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InboxQuery {
    status: String,
    language: String,
    kind: String,
    from: String,
    to: String,
    before: Option<i64>,
}

/// One recording of the inbox.
#[derive(Debug)]
struct InboxRow {
    id: String,
    /// The call's reference number ("" if the call cannot be read).
    reference: String,
    created: When,
    kind: String,
    language: String,
    duration: String,
    status: RecordingStatus,
    status_label: String,
    tags: Vec<String>,
}

/// `templates/recordings_list.html`.
#[derive(Template, WebTemplate)]
#[template(path = "recordings_list.html")]
struct InboxPage {
    layout: Layout,
    statuses: Vec<Opt>,
    languages: Vec<Opt>,
    kinds: Vec<Opt>,
    from: String,
    to: String,
    rows: Vec<InboxRow>,
    /// The link to the next (older) page.
    older: Option<String>,
    /// Whether this is a later page (a link back to the newest).
    paged: bool,
}

async fn inbox(
    State(state): State<AppState>,
    user: PageUser,
    query: Result<Query<InboxQuery>, QueryRejection>,
) -> Result<InboxPage, PageError> {
    user.require(Identity::REVIEWERS)?;
    let Query(q) = query.map_err(|_| PageError::BadRequest)?;
    let status: Option<RecordingStatus> = parse_opt(&q.status)?;
    let kind: Option<RecordingKind> = parse_opt(&q.kind)?;
    let language: Option<String> = parse_opt(&q.language)?;
    if let Some(l) = &language
        && !((2..=8).contains(&l.len()) && l.bytes().all(|c| c.is_ascii_lowercase()))
    {
        return Err(PageError::BadRequest);
    }
    let (since, until) = window(&user.zone, &q.from, &q.to, q.before)?;
    let before = q.before.map(|b| b.to_string()).unwrap_or_default();
    let filters = [
        ("status", q.status.trim()),
        ("language", q.language.trim()),
        ("kind", q.kind.trim()),
        ("from", q.from.trim()),
        ("to", q.to.trim()),
    ];
    let mut described = filters.to_vec();
    described.push(("before", &before));
    audit_view(
        &state,
        &user,
        None,
        "recording.list",
        &describe_filters(&described),
    )
    .await?;

    let store = state.store();
    let found = store
        .list_recordings(&RecordingFilter {
            limit: (PAGE + 1) as u32,
            status,
            kind,
            language: language.clone(),
            call_id: None,
            since,
            until,
        })
        .await?;
    let (found, next) = cut_page(found, PAGE, |r| r.created_at);

    // The calls' reference numbers, one read per call.
    let mut references: HashMap<String, String> = HashMap::new();
    let mut rows = Vec::with_capacity(found.len());
    for r in found {
        if !references.contains_key(&r.call_id) {
            let reference = match store.get_call(&r.call_id).await? {
                Some(c) => c.call.reference,
                None => {
                    tracing::error!(recording = %r.id, call = %r.call_id, "a recording's call is missing");
                    String::new()
                }
            };
            references.insert(r.call_id.clone(), reference);
        }
        rows.push(InboxRow {
            reference: references[&r.call_id].clone(),
            created: When::of(&user.zone, r.created_at),
            kind: t(user.lang, kind_key(r.kind)).to_owned(),
            language: language_name(user.lang, r.language.as_deref()),
            duration: duration_text(r.duration_ms),
            status: r.status,
            status_label: t(user.lang, status_key(r.status)).to_owned(),
            tags: r.tags,
            id: r.id,
        });
    }

    let older = next.map(|b| {
        let b = b.to_string();
        let mut pairs = filters.to_vec();
        pairs.push(("before", &b));
        format!("/recordings?{}", query_string(&pairs))
    });
    let lang = user.lang;
    Ok(InboxPage {
        layout: user.layout("recordings.title"),
        statuses: options(lang, &statuses(), status),
        languages: options(
            lang,
            &LANGUAGES
                .iter()
                .map(|&(c, k)| (c, c, k))
                .collect::<Vec<_>>(),
            language.as_deref(),
        ),
        kinds: options(
            lang,
            &RecordingKind::ALL
                .iter()
                .map(|&k| (k, k.as_str(), kind_key(k)))
                .collect::<Vec<_>>(),
            kind,
        ),
        from: q.from.trim().to_owned(),
        to: q.to.trim().to_owned(),
        rows,
        older,
        paged: q.before.is_some(),
    })
}

// ---------------------------------------------------------------------------------------------
// GET /recordings/{id}

/// A line of the call's metadata: label and value.
#[derive(Debug)]
struct Field {
    id: &'static str,
    label: &'static str,
    value: String,
    /// For a time: RFC 3339, shown by the script in the browser's time zone.
    iso: Option<String>,
}

impl Field {
    fn new(id: &'static str, label: &'static str, value: String) -> Field {
        Field {
            id,
            label,
            value,
            iso: None,
        }
    }

    /// A time, `—` when there is none.
    fn time(zone: &Zone, id: &'static str, label: &'static str, at: Option<Timestamp>) -> Field {
        Field {
            id,
            label,
            value: at.map_or_else(|| "—".to_owned(), |t| zone.minute_text(t)),
            iso: at.map(Timestamp::to_rfc3339),
        }
    }
}

#[derive(Debug)]
struct EventRow {
    at: When,
    /// As stored (the row's `data-kind`).
    kind: String,
    /// As shown: the safety events in words, others as stored.
    word: String,
    detail: String,
}

#[derive(Debug)]
struct NoteRow {
    at: When,
    author: String,
    text: String,
}

/// A status and what it means, for the review form.
#[derive(Debug)]
struct StatusHelp {
    value: &'static str,
    label: String,
    help: String,
    selected: bool,
}

/// `templates/recordings_show.html`.
#[derive(Template, WebTemplate)]
#[template(path = "recordings_show.html")]
struct ShowPage {
    layout: Layout,
    id: String,
    reference: String,
    kind: String,
    language: String,
    created: When,
    duration: String,
    duration_ms: i64,
    status: RecordingStatus,
    status_label: String,
    tags: Vec<String>,
    tags_text: String,
    notes: String,
    sha256: String,
    call: Vec<Field>,
    /// Earlier calls from the same caller; `None` when no number was presented.
    previous_calls: Option<u64>,
    /// Marks, keypad answers, earlier silent or quick-exit calls.
    safety: SafetyView,
    events: Vec<EventRow>,
    case_notes: Vec<NoteRow>,
    other_recordings: Vec<String>,
    statuses: Vec<StatusHelp>,
    /// `Some(true)`: the form was saved; `Some(false)`: it changed nothing.
    saved: Option<bool>,
    max_tags: usize,
    max_tag_chars: usize,
    max_notes_chars: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ShowQuery {
    saved: Option<String>,
}

/// A recording by a path id: 404 for what cannot be an id or is not there.
async fn recording(state: &AppState, id: &str) -> Result<Recording, PageError> {
    if !plausible_id(id) {
        return Err(PageError::NotFound);
    }
    state
        .store()
        .get_recording(id)
        .await?
        .ok_or(PageError::NotFound)
}

/// The 500 page for a recording whose call cannot be found (the store should not allow it).
fn missing_call(rec: &Recording) -> Response {
    tracing::error!(recording = %rec.id, call = %rec.call_id, "a recording's call is missing");
    failure(StatusCode::INTERNAL_SERVER_ERROR, "error.500")
}

async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    user.require(Identity::REVIEWERS)?;
    let rec = recording(&state, &id).await?;
    // The audit line before anything of the recording is read further or shown.
    audit_view(&state, &user, Some(&rec.id), "recording.view", "page").await?;
    let store = state.store();
    let Some(detail) = store.get_call(&rec.call_id).await? else {
        return Ok(missing_call(&rec));
    };
    let call = &detail.call;
    let previous_calls = match &call.caller {
        Caller::Absent => None,
        caller => Some(store.count_calls_by_caller(caller, call.started_at).await?),
    };
    let case_notes = store.list_call_notes(&call.id).await?;
    let lang = user.lang;
    let safety = SafetyView::of(store, lang, call).await?;
    let none = || "—".to_owned();
    let fields = vec![
        Field::new("reference", "recordings.reference", call.reference.clone()),
        Field::new(
            "language",
            "recordings.language",
            language_name(lang, call.language.as_deref()),
        ),
        Field::new(
            "path",
            "recording.path",
            if call.path.is_empty() {
                none()
            } else {
                call.path.join(" → ")
            },
        ),
        Field::new(
            "disposition",
            "recording.disposition",
            call.disposition
                .map_or_else(none, |d| t(lang, disposition_key(d)).to_owned()),
        ),
        Field::new(
            "queue-wait",
            "recording.queue_wait",
            call.queue_wait_ms.map_or_else(none, duration_text),
        ),
        Field::new(
            "operator",
            "recording.operator",
            call.operator.clone().unwrap_or_else(none),
        ),
        Field::time(
            &user.zone,
            "started",
            "recording.started",
            Some(call.started_at),
        ),
        Field::time(
            &user.zone,
            "answered",
            "recording.answered",
            call.answered_at,
        ),
        Field::time(&user.zone, "ended", "recording.ended", call.ended_at),
        Field::new(
            "call-duration",
            "recording.call_duration",
            call.ended_at.map_or_else(none, |end| {
                duration_text(end.unix_millis() - call.started_at.unix_millis())
            }),
        ),
    ];
    let saved = query.ok().and_then(|Query(q)| q.saved).map(|s| s == "1");
    let page = ShowPage {
        layout: user.layout("recording.title"),
        reference: call.reference.clone(),
        kind: t(lang, kind_key(rec.kind)).to_owned(),
        language: language_name(lang, rec.language.as_deref()),
        created: When::of(&user.zone, rec.created_at),
        duration: duration_text(rec.duration_ms),
        duration_ms: rec.duration_ms,
        status: rec.status,
        status_label: t(lang, status_key(rec.status)).to_owned(),
        tags_text: rec.tags.join(", "),
        tags: rec.tags,
        notes: rec.notes,
        sha256: rec.sha256,
        call: fields,
        previous_calls,
        safety,
        events: detail
            .events
            .iter()
            .map(|e: &CallEvent| EventRow {
                at: When::of(&user.zone, e.at),
                kind: e.kind.clone(),
                word: safety::event_text(lang, &e.kind),
                detail: e.detail.clone(),
            })
            .collect(),
        case_notes: case_notes
            .into_iter()
            .map(|n: CallNote| NoteRow {
                at: When::of(&user.zone, n.at),
                author: n.author,
                text: n.text,
            })
            .collect(),
        other_recordings: call
            .recordings
            .iter()
            .filter(|r| **r != rec.id)
            .cloned()
            .collect(),
        statuses: RecordingStatus::ALL
            .iter()
            .map(|&s| StatusHelp {
                value: s.as_str(),
                label: t(lang, status_key(s)).to_owned(),
                help: t(lang, status_help_key(s)).to_owned(),
                selected: s == rec.status,
            })
            .collect(),
        saved,
        max_tags: MAX_TAGS,
        max_tag_chars: MAX_TAG_CHARS,
        max_notes_chars: MAX_NOTES_CHARS,
        id: rec.id,
    };
    Ok(page.into_response())
}

// ---------------------------------------------------------------------------------------------
// POST /recordings/{id}

/// The review form (the CSRF field is the session layer's).
#[derive(Debug, Deserialize)]
struct ReviewForm {
    status: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    notes: String,
}

/// Comma-separated tags as typed: trimmed, empty ones and repeats dropped (the API's checks
/// follow).
fn split_tags(s: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_owned());
        }
    }
    tags
}

/// What the form changes: only the fields that differ from the stored review.
fn changes(rec: &Recording, form: &ReviewForm) -> Result<Patch, PageError> {
    let status: RecordingStatus = form
        .status
        .trim()
        .parse()
        .map_err(|_| PageError::BadRequest)?;
    let tags = split_tags(&form.tags);
    // Browsers send line breaks as CRLF.
    let notes = form.notes.replace("\r\n", "\n");
    Ok(Patch {
        status: (status != rec.status).then_some(status),
        tags: (tags != rec.tags).then_some(tags),
        notes: (notes != rec.notes).then_some(notes),
    })
}

async fn save(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
    form: Result<Form<ReviewForm>, FormRejection>,
) -> Result<Response, PageError> {
    user.require(Identity::REVIEWERS)?;
    let rec = recording(&state, &id).await?;
    let Form(form) = form.map_err(|_| PageError::BadRequest)?;
    let patch = changes(&rec, &form)?;
    let back = format!("/recordings/{}", rec.id);
    if patch.status.is_none() && patch.tags.is_none() && patch.notes.is_none() {
        return Ok(see_other(&format!("{back}?saved=0")));
    }
    match review(&state, &user.name, user.source.clone(), &rec.id, patch).await {
        Ok(_) => Ok(see_other(&format!("{back}?saved=1"))),
        Err(ApiError::BadRequest(why)) => {
            tracing::info!(user = %user.name, recording = %rec.id, why, "review refused");
            Ok(failure(StatusCode::BAD_REQUEST, "recording.invalid"))
        }
        Err(ApiError::NotFound(_)) => Err(PageError::NotFound),
        Err(ApiError::Store(e)) => Err(PageError::Store(e)),
        Err(e) => {
            tracing::error!(error = %e, recording = %rec.id, "review failed");
            Ok(failure(StatusCode::INTERNAL_SERVER_ERROR, "error.500"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GET /audit

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AuditQuery {
    user: String,
    action: String,
    q: String,
    from: String,
    to: String,
    before: Option<i64>,
}

#[derive(Debug)]
struct AuditRow {
    at: When,
    user: String,
    action: String,
    recording: Option<String>,
    source: String,
    detail: String,
}

/// `templates/audit.html`.
#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    user: String,
    action: String,
    q: String,
    from: String,
    to: String,
    actions: &'static [&'static str],
    rows: Vec<AuditRow>,
    older: Option<String>,
    paged: bool,
}

/// A search field: trimmed; empty means any; too long is a 400 page.
fn search_field(s: &str) -> Result<Option<String>, PageError> {
    let s = s.trim();
    if s.len() > MAX_SEARCH || s.chars().any(char::is_control) {
        return Err(PageError::BadRequest);
    }
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

async fn audit(
    State(state): State<AppState>,
    user: PageUser,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<AuditPage, PageError> {
    user.require(Identity::REVIEWERS)?;
    let Query(q) = query.map_err(|_| PageError::BadRequest)?;
    let (since, until) = window(&user.zone, &q.from, &q.to, q.before)?;
    let found = state
        .store()
        .list_audit(&AuditFilter {
            limit: (AUDIT_PAGE + 1) as u32,
            user: search_field(&q.user)?,
            recording_id: None,
            action: search_field(&q.action)?,
            text: search_field(&q.q)?,
            since,
            until,
        })
        .await?;
    let (found, next) = cut_page(found, AUDIT_PAGE, |e| e.at);
    let rows = found
        .into_iter()
        .map(|e: AuditEntry| AuditRow {
            at: When::of(&user.zone, e.at),
            user: e.user.unwrap_or_default(),
            action: e.action,
            recording: e.recording_id,
            source: e.source.unwrap_or_default(),
            detail: e.detail,
        })
        .collect();
    let fields = [
        ("user", q.user.trim()),
        ("action", q.action.trim()),
        ("q", q.q.trim()),
        ("from", q.from.trim()),
        ("to", q.to.trim()),
    ];
    let older = next.map(|b| {
        let b = b.to_string();
        let mut pairs = fields.to_vec();
        pairs.push(("before", &b));
        format!("/audit?{}", query_string(&pairs))
    });
    Ok(AuditPage {
        layout: user.layout("audit.title"),
        user: q.user.trim().to_owned(),
        action: q.action.trim().to_owned(),
        q: q.q.trim().to_owned(),
        from: q.from.trim().to_owned(),
        to: q.to.trim().to_owned(),
        actions: KNOWN_ACTIONS,
        rows,
        older,
        paged: q.before.is_some(),
    })
}

// ---------------------------------------------------------------------------------------------
// Texts.

/// This area's texts: `(key, Spanish, English)` (see `i18n`).
pub(super) const I18N: &[(&str, &str, &str)] = &[
    // The inbox.
    ("recordings.title", "Grabaciones", "Recordings"),
    ("recordings.filters", "Filtros", "Filters"),
    ("recordings.status", "Estado", "Status"),
    ("recordings.language", "Idioma", "Language"),
    ("recordings.kind", "Tipo", "Kind"),
    ("recordings.from", "Desde", "From"),
    ("recordings.to", "Hasta", "To"),
    (
        "recordings.dates_hint",
        "Días en la hora de la línea, ambos incluidos:",
        "Days in the hotline's time, both included:",
    ),
    ("recordings.any", "Todos", "Any"),
    ("recordings.filter", "Filtrar", "Filter"),
    ("recordings.clear", "Quitar filtros", "Clear filters"),
    ("recordings.when", "Fecha", "When"),
    ("recordings.duration", "Duración", "Duration"),
    ("recordings.tags", "Etiquetas", "Tags"),
    ("recordings.reference", "Referencia", "Reference"),
    ("recordings.open", "Abrir", "Open"),
    (
        "recordings.empty",
        "No hay grabaciones con estos filtros.",
        "No recordings match these filters.",
    ),
    ("recordings.older", "Más antiguas →", "Older →"),
    ("recordings.newest", "← Las más recientes", "← The newest"),
    (
        "recordings.audited",
        "Cada consulta, cada escucha y cada exportación quedan registradas en la auditoría.",
        "Every listing, playback and export is recorded in the audit log.",
    ),
    ("recordings.status.new", "Nueva", "New"),
    ("recordings.status.reviewed", "Revisada", "Reviewed"),
    ("recordings.status.referred", "Derivada", "Referred"),
    ("recordings.status.closed", "Cerrada", "Closed"),
    (
        "recordings.status_help.new",
        "Nadie la ha escuchado todavía.",
        "Nobody has listened to it yet.",
    ),
    (
        "recordings.status_help.reviewed",
        "Un(a) supervisor(a) la escuchó y evaluó.",
        "A supervisor listened to it and assessed it.",
    ),
    (
        "recordings.status_help.referred",
        "El caso se derivó a la policía, la fiscalía u otro servicio.",
        "The case was passed on to the police, the prosecutor or another service.",
    ),
    (
        "recordings.status_help.closed",
        "No requiere más acciones.",
        "Nothing more to do.",
    ),
    ("recordings.kind.message", "Mensaje", "Message"),
    (
        "recordings.kind.conversation",
        "Conversación",
        "Conversation",
    ),
    ("recordings.lang.es", "Español", "Spanish"),
    ("recordings.lang.qu", "Quechua", "Quechua"),
    ("recordings.lang.none", "Sin elegir", "Not chosen"),
    // One recording.
    ("recording.title", "Grabación", "Recording"),
    ("recording.listen", "Escuchar", "Listen"),
    (
        "recording.listen_hint",
        "Use auriculares. Cada reproducción queda registrada.",
        "Use headphones. Every playback is recorded.",
    ),
    (
        "recording.no_audio",
        "Este navegador no puede reproducir el audio.",
        "This browser cannot play the audio.",
    ),
    ("recording.recorded", "Grabada", "Recorded"),
    ("recording.sha256", "Huella SHA-256", "SHA-256 fingerprint"),
    ("recording.call", "Llamada", "Call"),
    ("recording.path", "Recorrido del menú", "Menu path"),
    ("recording.disposition", "Resultado", "Outcome"),
    ("recording.queue_wait", "Espera en cola", "Queue wait"),
    ("recording.operator", "Operador(a)", "Operator"),
    ("recording.started", "Inicio", "Started"),
    ("recording.answered", "Atendida", "Answered"),
    ("recording.ended", "Fin", "Ended"),
    (
        "recording.call_duration",
        "Duración de la llamada",
        "Call length",
    ),
    (
        "recording.previous",
        "Llamadas anteriores de la misma persona",
        "Earlier calls from the same caller",
    ),
    (
        "recording.previous_unknown",
        "No se sabe: no se presentó un número.",
        "Unknown: no number was presented.",
    ),
    (
        "recording.previous_hint",
        "Se cuentan por un seudónimo: el número nunca se guarda ni se muestra.",
        "Counted by a pseudonym: the number is never stored or shown.",
    ),
    (
        "recording.disp.message",
        "Dejó un mensaje",
        "Left a message",
    ),
    (
        "recording.disp.operator",
        "Habló con un(a) operador(a)",
        "Talked to an operator",
    ),
    ("recording.disp.abandoned", "Colgó antes", "Hung up early"),
    ("recording.disp.rejected", "Rechazada", "Rejected"),
    ("recording.disp.failed", "Falló", "Failed"),
    (
        "recording.disp.interrupted",
        "Interrumpida (el servicio se detuvo)",
        "Interrupted (the service stopped)",
    ),
    ("recording.events", "Eventos de la llamada", "Call events"),
    ("recording.no_events", "Sin eventos.", "No events."),
    ("recording.event", "Evento", "Event"),
    ("recording.detail", "Detalle", "Detail"),
    ("recording.case_notes", "Notas del caso", "Case notes"),
    (
        "recording.no_case_notes",
        "Sin notas del caso.",
        "No case notes.",
    ),
    ("recording.author", "Autor(a)", "Author"),
    (
        "recording.other",
        "Otras grabaciones de esta llamada",
        "Other recordings of this call",
    ),
    ("recording.review", "Revisión", "Review"),
    (
        "recording.notes",
        "Notas de la grabación",
        "Recording notes",
    ),
    (
        "recording.tags_hint",
        "Separadas por comas.",
        "Separated by commas.",
    ),
    ("recording.limits", "Máximo", "At most"),
    ("recording.save", "Guardar", "Save"),
    ("recording.saved", "Cambios guardados.", "Changes saved."),
    (
        "recording.unchanged",
        "No había nada que cambiar.",
        "There was nothing to change.",
    ),
    (
        "recording.status_meaning",
        "Qué significa cada estado",
        "What each status means",
    ),
    (
        "recording.invalid",
        "Revisión no válida: hasta 20 etiquetas de 1 a 40 caracteres cada una, y notas de hasta 10 000 caracteres.",
        "Invalid review: up to 20 tags of 1 to 40 characters each, and notes of up to 10,000 characters.",
    ),
    (
        "recording.export",
        "Exportar el caso (ZIP)",
        "Export the case (ZIP)",
    ),
    (
        "recording.export_hint",
        "Para la policía: el audio, los datos de la llamada, sus eventos y notas, y SHA256SUMS para verificarlos (sha256sum -c SHA256SUMS). La exportación queda registrada.",
        "For the police: the audio, the call's data, its events and notes, and SHA256SUMS to verify them (sha256sum -c SHA256SUMS). The export is recorded.",
    ),
    ("recording.back", "← Grabaciones", "← Recordings"),
    // The export's failures.
    (
        "export.missing",
        "El archivo de audio de esta grabación no está en el almacenamiento. Quedó registrado; avise al administrador.",
        "This recording's audio file is not in the storage. It was logged; tell the administrator.",
    ),
    (
        "export.tampered",
        "El archivo de audio no coincide con su huella SHA-256 guardada: puede estar dañado o alterado. No se exportó nada. Quedó registrado; avise al administrador.",
        "The audio file does not match its stored SHA-256 fingerprint: it may be damaged or altered. Nothing was exported. It was logged; tell the administrator.",
    ),
    (
        "export.storage",
        "No se pudo leer el almacenamiento de grabaciones. Inténtelo de nuevo en unos minutos.",
        "The recordings storage could not be read. Try again in a few minutes.",
    ),
    // The audit log.
    ("audit.title", "Auditoría", "Audit log"),
    (
        "audit.intro",
        "Quién hizo qué, cuándo y desde dónde. Las líneas no se pueden modificar.",
        "Who did what, when and from where. Lines cannot be changed.",
    ),
    ("audit.user", "Usuario", "User"),
    ("audit.action", "Acción", "Action"),
    ("audit.text", "Texto", "Text"),
    ("audit.when", "Fecha", "When"),
    ("audit.recording", "Grabación", "Recording"),
    ("audit.source", "Origen", "From"),
    ("audit.detail", "Detalle", "Detail"),
    ("audit.search", "Buscar", "Search"),
    (
        "audit.empty",
        "Ninguna línea con estos filtros.",
        "No lines match these filters.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_made_in_code_are_in_the_table() {
        let mut keys: Vec<&str> = Vec::new();
        for &s in RecordingStatus::ALL {
            keys.extend([status_key(s), status_help_key(s)]);
        }
        keys.extend(RecordingKind::ALL.iter().map(|&k| kind_key(k)));
        keys.extend(Disposition::ALL.iter().map(|&d| disposition_key(d)));
        keys.extend(LANGUAGES.iter().map(|(_, k)| *k));
        keys.extend([
            "recordings.reference",
            "recordings.language",
            "recording.path",
            "recording.disposition",
            "recording.queue_wait",
            "recording.operator",
            "recording.started",
            "recording.answered",
            "recording.ended",
            "recording.call_duration",
            "recordings.lang.none",
            "recording.invalid",
            "export.missing",
            "export.tampered",
            "export.storage",
        ]);
        for key in keys {
            assert!(
                super::super::i18n::all().any(|(k, _, _)| *k == key),
                "{key} missing"
            );
        }
    }

    #[test]
    fn times_and_durations() {
        let t = Timestamp::parse_rfc3339("2026-11-01T12:34:56Z").unwrap();
        assert_eq!(When::of(&Zone::lima(), t).text, "2026-11-01 07:34");
        assert_eq!(When::of(&Zone::utc(), t).text, "2026-11-01 12:34");
        assert_eq!(duration_text(12_340), "0:12");
        assert_eq!(duration_text(12_999), "0:12");
        assert_eq!(duration_text(400), "0:01");
        assert_eq!(duration_text(0), "0:00");
        assert_eq!(duration_text(61_000), "1:01");
        assert_eq!(duration_text(3_723_000), "1:02:03");
    }

    #[test]
    fn days_are_the_hotline_s_days() {
        let lima = Zone::lima();
        let (since, until) = window(&lima, "2026-11-01", "2026-11-01", None).unwrap();
        assert_eq!(since.unwrap().to_rfc3339(), "2026-11-01T05:00:00.000Z");
        assert_eq!(until.unwrap().to_rfc3339(), "2026-11-02T05:00:00.000Z");
        assert_eq!(window(&lima, "", "", None).unwrap(), (None, None));
        for bad in ["2026-13-01", "2026-02-30", "01/11/2026", "2026-1-01", "x"] {
            assert!(window(&lima, bad, "", None).is_err(), "{bad}");
            assert!(window(&lima, "", bad, None).is_err(), "{bad}");
        }
        let (_, until) = window(&lima, "", "2026-11-01", Some(5)).unwrap();
        assert_eq!(until.unwrap().unix_millis(), 5);
        // Another zone moves the day.
        let (since, _) = window(&Zone::utc(), "2026-11-01", "", None).unwrap();
        assert_eq!(since.unwrap().to_rfc3339(), "2026-11-01T00:00:00.000Z");
    }

    #[test]
    fn pages_never_split_a_millisecond() {
        let at = |v: &i64| Timestamp::from_unix_millis(*v);
        // Fewer than a page: no next page.
        assert_eq!(cut_page(vec![9, 8], 2, at), (vec![9, 8], None));
        // The next page starts before the first row left out.
        assert_eq!(cut_page(vec![9, 8, 7], 2, at), (vec![9, 8], Some(8)));
        // 8 is also on the next page: both 8s go there.
        assert_eq!(cut_page(vec![9, 8, 8], 2, at), (vec![9], Some(9)));
        // A whole page in one millisecond.
        assert_eq!(cut_page(vec![5, 5, 5], 2, at), (vec![5, 5], Some(5)));
    }

    #[test]
    fn review_changes_only_what_differs() {
        let rec = Recording {
            id: "r".into(),
            call_id: "c".into(),
            kind: RecordingKind::Message,
            path: "x.wav".into(),
            created_at: Timestamp::EPOCH,
            duration_ms: 1,
            bytes: 1,
            sha256: String::new(),
            status: RecordingStatus::New,
            tags: vec!["a".into()],
            notes: "x\ny".into(),
            language: None,
        };
        let form = |status: &str, tags: &str, notes: &str| ReviewForm {
            status: status.into(),
            tags: tags.into(),
            notes: notes.into(),
        };
        let p = changes(&rec, &form("new", " a ,a", "x\r\ny")).unwrap();
        assert!(p.status.is_none() && p.tags.is_none() && p.notes.is_none());
        let p = changes(&rec, &form("reviewed", "a, b", "")).unwrap();
        assert_eq!(p.status, Some(RecordingStatus::Reviewed));
        assert_eq!(p.tags, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(p.notes.as_deref(), Some(""));
        assert!(changes(&rec, &form("done", "", "")).is_err());
    }

    #[test]
    fn query_strings() {
        assert_eq!(
            query_string(&[("status", "new"), ("language", ""), ("before", "12")]),
            "status=new&before=12"
        );
        assert_eq!(describe_filters(&[("status", "")]), "all");
        assert_eq!(
            describe_filters(&[("status", "new"), ("to", "2026-11-01")]),
            "status=new to=2026-11-01"
        );
    }
}
