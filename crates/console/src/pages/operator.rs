//! `/operator`: the signed-in user's desk: their own status (three buttons), the queue now, and
//! the call in hand (or their last call today) with its case notes; live by SSE.
//!
//! - `GET /operator`: the page (any role; a supervisor or an admin has no status of their own
//!   in the queue, so they see the queue and no buttons).
//! - `POST /operator/status` (`status=available|paused|offline`, CSRF): sets the signed-in
//!   operator's own status ([`crate::QueueView::set_status`]); there is no name in the form, so
//!   nobody sets another's status here (supervisors use the API). Then back to the page.
//! - `POST /operator/calls/{id}/notes` (`text`, CSRF): a case note on a call, by the operator on
//!   that call (now, or the operator it was given to) or a supervisor or admin.
//! - `GET /operator/events`: the page's live parts (`status`, `queue`, `call`) by SSE (see
//!   [`super::sse`]).
//!
//! The caller is never shown: not their number nor its pseudonym; only whether (and how often)
//! they called before, and how many of those calls were silent or quick exits. The call's
//! keypad answers (a caller who could not talk) show as a list, and a call marked quick-exit
//! gets a warning line (see [`super::safety`]). Waiting callers show by language and time
//! waited, without ids.
//!
//! The queue part ([`queue_part`]) is also the board's.

use askama::Template;
use askama_web::WebTemplate;
use async_trait::async_trait;
use axum::Extension;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use hotline_store::{CallDetail, CallFilter, NewCallNote, Role, StoreError, Timestamp, new_id};
use serde::Deserialize;

use super::i18n::{Lang, t};
use super::safety::SafetyView;
use super::sse::{self, LiveSource, StreamSession, Update};
use super::{Layout, PageError, PageUser, failure, see_other};
use crate::auth::Identity;
use crate::queue::{OperatorStatus, OperatorView, QueueError, QueueSnapshot};
use crate::session::SignedIn;
use crate::{AppState, Route};

/// This area's pages.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/operator", page),
        Route::post("/operator/status", set_status),
        Route::post("/operator/calls/{id}/notes", add_note),
        Route::get("/operator/events", events),
    ]
}

/// Longest case note, in characters.
const NOTE_MAX_CHARS: usize = 4000;

/// The queue as a page sees it.
#[derive(Debug, Clone)]
pub(super) enum QueueNow {
    /// The binary gave the console no queue.
    Absent,
    /// The queue did not answer.
    Failed,
    Running(QueueSnapshot),
}

impl QueueNow {
    /// Asks the queue, if there is one.
    pub(super) async fn read(state: &AppState) -> QueueNow {
        match state.queue() {
            None => QueueNow::Absent,
            Some(q) => match q.snapshot().await {
                Ok(s) => QueueNow::Running(s),
                Err(e) => {
                    tracing::warn!(error = %e, "queue snapshot failed");
                    QueueNow::Failed
                }
            },
        }
    }

    /// How many callers wait.
    pub(super) fn waiting(&self) -> usize {
        match self {
            QueueNow::Running(s) => s.waiting.len(),
            _ => 0,
        }
    }

    fn operator(&self, name: &str) -> Option<&OperatorView> {
        match self {
            QueueNow::Running(s) => s.operators.iter().find(|o| o.name == name),
            _ => None,
        }
    }

    /// The i18n key of the message saying why there is no queue to show, if so.
    pub(super) fn problem(&self) -> Option<&'static str> {
        match self {
            QueueNow::Absent => Some("live.no_queue"),
            QueueNow::Failed => Some("live.queue_failed"),
            QueueNow::Running(_) => None,
        }
    }
}

/// The i18n key of a call's language.
pub(super) fn lang_key(language: Option<&str>) -> &'static str {
    match language {
        Some("es") => "live.lang.es",
        Some("qu") => "live.lang.qu",
        None => "live.lang.none",
        Some(_) => "live.lang.other",
    }
}

/// The i18n key of an operator's state (`available`, `busy`, …).
pub(super) fn state_key(state: &str) -> &'static str {
    match state {
        "available" => "live.state.available",
        "paused" => "live.state.paused",
        "offline" => "live.state.offline",
        "ringing" => "live.state.ringing",
        "busy" => "live.state.busy",
        "wrap-up" => "live.state.wrap-up",
        _ => "live.state.other",
    }
}

/// What an operator is doing: the queue's `state`, else their `status`.
pub(super) fn state_of(o: &OperatorView) -> &str {
    o.state.as_deref().unwrap_or(o.status.as_str())
}

/// A duration as people read it: `45 s`, `2 min 05 s`, `1 h 02 min`.
pub(super) fn duration_text(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

/// One waiting caller, as shown.
#[derive(Debug)]
pub(super) struct WaitingRow {
    /// `es`, `qu`, `none`.
    pub(super) lang: String,
    pub(super) lang_key: &'static str,
    pub(super) waited: String,
    /// RFC 3339.
    pub(super) since: String,
}

/// `templates/operator_queue.html`: who waits (the operator's and the board's `queue` part).
#[derive(Template)]
#[template(path = "operator_queue.html")]
pub(super) struct QueuePart {
    lang: Lang,
    problem: Option<&'static str>,
    count: usize,
    count_text: String,
    waiting: Vec<WaitingRow>,
}

impl QueuePart {
    fn t(&self, key: &'static str) -> &'static str {
        t(self.lang, key)
    }
}

/// "Nobody waits", "1 caller waits", "3 callers wait".
fn waiting_text(lang: Lang, n: usize) -> String {
    match n {
        0 => t(lang, "live.waiting_none").to_owned(),
        1 => t(lang, "live.waiting_one").to_owned(),
        n => t(lang, "live.waiting_many").replace("{n}", &n.to_string()),
    }
}

/// The queue part's HTML.
pub(super) fn queue_part(lang: Lang, queue: &QueueNow, now: Timestamp) -> String {
    let waiting = match queue {
        QueueNow::Running(s) => s
            .waiting
            .iter()
            .map(|w| WaitingRow {
                lang: w.language.clone().unwrap_or_else(|| "none".to_owned()),
                lang_key: lang_key(w.language.as_deref()),
                waited: duration_text(now.unix_millis() - w.since.unix_millis()),
                since: w.since.to_rfc3339(),
            })
            .collect(),
        _ => Vec::new(),
    };
    render(&QueuePart {
        lang,
        problem: queue.problem(),
        count: waiting.len(),
        count_text: waiting_text(lang, waiting.len()),
        waiting,
    })
}

/// Renders a part; a failure shows as a short message (and is logged).
pub(super) fn render(part: &impl Template) -> String {
    part.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "live part failed to render");
        String::from("<p class=\"msg\">…</p>")
    })
}

/// A status button.
#[derive(Debug)]
struct StatusButton {
    value: &'static str,
    key: &'static str,
    pressed: bool,
}

/// The operator as their status part shows them.
#[derive(Debug)]
struct MeView {
    status: &'static str,
    status_key: &'static str,
    state: String,
    state_key: &'static str,
    registered: bool,
    paused_reason: Option<String>,
}

/// `templates/operator_status.html`.
#[derive(Template)]
#[template(path = "operator_status.html")]
struct StatusPart {
    lang: Lang,
    csrf_input: String,
    /// Why there are no buttons or no status (an i18n key).
    problem: Option<&'static str>,
    me: Option<MeView>,
    buttons: Vec<StatusButton>,
}

impl StatusPart {
    fn t(&self, key: &'static str) -> &'static str {
        t(self.lang, key)
    }
}

fn status_key(s: OperatorStatus) -> &'static str {
    match s {
        OperatorStatus::Available => "live.state.available",
        OperatorStatus::Paused => "live.state.paused",
        _ => "live.state.offline",
    }
}

/// A case note, as shown.
#[derive(Debug)]
struct NoteRow {
    author: String,
    /// RFC 3339 UTC (for `<time datetime>`).
    at: String,
    /// In the hotline's time zone.
    at_text: String,
    text: String,
}

/// The call in hand, as shown (never the caller).
#[derive(Debug)]
struct CallView {
    id: String,
    reference: String,
    lang_key: &'static str,
    path: String,
    waited: String,
    previous: String,
    /// Marks, keypad answers, earlier silent or quick-exit calls.
    safety: SafetyView,
    notes: Vec<NoteRow>,
}

/// `templates/operator_call.html`.
#[derive(Template)]
#[template(path = "operator_call.html")]
struct CallPart {
    lang: Lang,
    csrf_input: String,
    /// `live.call_now` or `live.call_last`.
    heading: &'static str,
    problem: Option<&'static str>,
    call: Option<CallView>,
    can_note: bool,
}

impl CallPart {
    fn t(&self, key: &'static str) -> &'static str {
        t(self.lang, key)
    }
}

/// "First call", "Called before once", "Called before 3 times" (a count only), or "unknown"
/// when no number was presented.
fn previous_text(lang: Lang, caller_known: bool, n: u64) -> String {
    match (caller_known, n) {
        (false, _) => t(lang, "live.previous_unknown").to_owned(),
        (true, 0) => t(lang, "live.previous_none").to_owned(),
        (true, 1) => t(lang, "live.previous_one").to_owned(),
        (true, n) => t(lang, "live.previous_many").replace("{n}", &n.to_string()),
    }
}

/// Whether `who` may write notes on `call`: the operator on it, the one it went to, or a
/// supervisor or admin.
fn may_note(who: &str, role: Role, call: &CallDetail, queue: &QueueNow) -> bool {
    Identity::REVIEWERS.contains(&role)
        || call.call.operator.as_deref() == Some(who)
        || queue
            .operator(who)
            .is_some_and(|o| o.current_call.as_deref() == Some(call.call.id.as_str()))
}

/// The desk of one user: what the page and its stream render.
#[derive(Debug, Clone)]
struct Desk {
    user: String,
    role: Role,
    lang: Lang,
    csrf: String,
    /// The call part, kept between ticks: (call id or "", tick it was made, HTML).
    call_cache: Option<(String, u64, String)>,
    tick: u64,
}

/// The call part is made again when the call changes, else every this many ticks (for notes
/// written by someone else).
const CALL_REFRESH_TICKS: u64 = 5;

impl Desk {
    fn csrf_input(&self) -> String {
        format!(
            r#"<input type="hidden" name="{}" value="{}">"#,
            crate::session::CSRF_FIELD,
            self.csrf
        )
    }

    fn status_part(&self, queue: &QueueNow) -> String {
        let me = queue.operator(&self.user);
        let problem = if self.role != Role::Operator {
            Some("live.not_operator")
        } else if let Some(p) = queue.problem() {
            Some(p)
        } else if me.is_none() {
            Some("live.unknown_to_queue")
        } else {
            None
        };
        let current = me.map(|o| o.status);
        let buttons = if self.role == Role::Operator && !matches!(queue, QueueNow::Absent) {
            [
                OperatorStatus::Available,
                OperatorStatus::Paused,
                OperatorStatus::Offline,
            ]
            .into_iter()
            .map(|s| StatusButton {
                value: s.as_str(),
                key: match s {
                    OperatorStatus::Available => "live.set_available",
                    OperatorStatus::Paused => "live.set_paused",
                    _ => "live.set_offline",
                },
                pressed: current == Some(s),
            })
            .collect()
        } else {
            Vec::new()
        };
        render(&StatusPart {
            lang: self.lang,
            csrf_input: self.csrf_input(),
            problem,
            me: me.map(|o| MeView {
                status: o.status.as_str(),
                status_key: status_key(o.status),
                state: state_of(o).to_owned(),
                state_key: state_key(state_of(o)),
                registered: o.registered,
                paused_reason: o.paused_reason.clone(),
            }),
            buttons,
        })
    }

    /// The call part: the call in hand, else the user's last call of the last 12 hours.
    async fn call_part(&mut self, state: &AppState, queue: &QueueNow) -> String {
        let current = queue
            .operator(&self.user)
            .and_then(|o| o.current_call.clone());
        let key = current.clone().unwrap_or_default();
        if let Some((k, made, html)) = &self.call_cache
            && *k == key
            && self.tick - made < CALL_REFRESH_TICKS
        {
            return html.clone();
        }
        let html = match self.load_call(state, queue, current).await {
            Ok(part) => render(&part),
            Err(e) => {
                let key = if e.is_transient() {
                    "live.call_unavailable"
                } else {
                    tracing::error!(error = ?e, "operator call part failed");
                    "live.call_failed"
                };
                render(&CallPart {
                    lang: self.lang,
                    csrf_input: String::new(),
                    heading: "live.call_now",
                    problem: Some(key),
                    call: None,
                    can_note: false,
                })
            }
        };
        self.call_cache = Some((key, self.tick, html.clone()));
        html
    }

    async fn load_call(
        &self,
        state: &AppState,
        queue: &QueueNow,
        current: Option<String>,
    ) -> Result<CallPart, StoreError> {
        let store = state.store();
        let (heading, detail) = match &current {
            Some(id) => ("live.call_now", store.get_call(id).await?),
            None => {
                let last = self.last_call(state).await?;
                let detail = match last {
                    Some(id) => store.get_call(&id).await?,
                    None => None,
                };
                ("live.call_last", detail)
            }
        };
        let mut part = CallPart {
            lang: self.lang,
            csrf_input: self.csrf_input(),
            heading,
            problem: None,
            call: None,
            can_note: false,
        };
        let Some(detail) = detail else {
            if current.is_some() {
                // The call is not in the store yet (its writer is behind).
                part.problem = Some("live.call_not_stored");
            }
            return Ok(part);
        };
        part.can_note = may_note(&self.user, self.role, &detail, queue);
        part.call = Some(call_view(state, self.lang, &detail).await?);
        Ok(part)
    }

    /// The id of the user's most recent call of the last 12 hours, if any.
    async fn last_call(&self, state: &AppState) -> Result<Option<String>, StoreError> {
        if self.role != Role::Operator {
            return Ok(None);
        }
        let calls = state
            .store()
            .list_calls(&CallFilter {
                started_since: Some(state.now().add_millis(-12 * 3600 * 1000)),
                limit: 200,
                ..CallFilter::default()
            })
            .await?;
        Ok(calls
            .into_iter()
            .find(|c| c.operator.as_deref() == Some(self.user.as_str()))
            .map(|c| c.id))
    }
}

async fn call_view(
    state: &AppState,
    lang: Lang,
    detail: &CallDetail,
) -> Result<CallView, StoreError> {
    let call = &detail.call;
    let store = state.store();
    let known = !matches!(call.caller, hotline_store::Caller::Absent);
    let before = if known {
        store
            .count_calls_by_caller(&call.caller, call.started_at)
            .await?
    } else {
        0
    };
    let notes = store
        .list_call_notes(&call.id)
        .await?
        .into_iter()
        .map(|n| NoteRow {
            author: n.author,
            at: n.at.to_rfc3339(),
            at_text: state.zone().minute_text(n.at),
            text: n.text,
        })
        .collect();
    Ok(CallView {
        id: call.id.clone(),
        reference: call.reference.clone(),
        lang_key: lang_key(call.language.as_deref()),
        path: if call.path.is_empty() {
            "—".to_owned()
        } else {
            call.path.join(" › ")
        },
        waited: call
            .queue_wait_ms
            .map_or_else(|| "—".to_owned(), duration_text),
        previous: previous_text(lang, known, before),
        safety: SafetyView::of(store, lang, call).await?,
        notes,
    })
}

#[async_trait]
impl LiveSource for Desk {
    async fn render(&mut self, state: &AppState) -> Update {
        let queue = QueueNow::read(state).await;
        let mut update = Update {
            waiting: queue.waiting(),
            ..Update::default()
        };
        update.parts.insert("status", self.status_part(&queue));
        update
            .parts
            .insert("queue", queue_part(self.lang, &queue, state.now()));
        let call = self.call_part(state, &queue).await;
        update.parts.insert("call", call);
        let callbacks =
            super::callbacks::part(state, self.lang, self.role, self.csrf_input()).await;
        update.parts.insert("callbacks", callbacks);
        self.tick += 1;
        update
    }
}

impl Desk {
    fn of(user: &PageUser) -> Desk {
        Desk {
            user: user.name.clone(),
            role: user.role,
            lang: user.lang,
            csrf: user.csrf.clone(),
            call_cache: None,
            tick: 0,
        }
    }
}

/// `templates/operator.html`.
#[derive(Template, WebTemplate)]
#[template(path = "operator.html")]
struct OperatorPage {
    layout: Layout,
    status: String,
    queue: String,
    call: String,
    callbacks: String,
}

async fn page(State(state): State<AppState>, user: PageUser) -> Result<OperatorPage, PageError> {
    user.require(Identity::ANYONE)?;
    let mut desk = Desk::of(&user);
    let mut update = desk.render(&state).await;
    let mut part = |name| update.parts.remove(name).unwrap_or_default();
    Ok(OperatorPage {
        status: part("status"),
        queue: part("queue"),
        call: part("call"),
        callbacks: part("callbacks"),
        layout: user.layout("operator.title"),
    })
}

/// `GET /operator/events`: the desk's live parts.
async fn events(
    State(state): State<AppState>,
    user: PageUser,
    signed_in: Option<Extension<SignedIn>>,
) -> Result<Response, PageError> {
    user.require(Identity::ANYONE)?;
    let Some(Extension(s)) = signed_in else {
        return Err(PageError::Forbidden);
    };
    let session = StreamSession {
        id_hash: s.id_hash,
        user: s.user,
        role: s.role,
    };
    Ok(sse::respond(state, session, Desk::of(&user)))
}

/// The status form.
#[derive(Debug, Deserialize)]
struct StatusForm {
    status: String,
}

/// `POST /operator/status`: the signed-in operator's own status.
async fn set_status(
    State(state): State<AppState>,
    user: PageUser,
    form: Result<Form<StatusForm>, FormRejection>,
) -> Result<Response, PageError> {
    user.require(Identity::ANYONE)?;
    let Ok(Form(form)) = form else {
        return Err(PageError::BadRequest);
    };
    let Ok(status) = form.status.parse::<OperatorStatus>() else {
        return Err(PageError::BadRequest);
    };
    // As the API: an enabled operator account (the session layer already refused a disabled
    // one), and here always the user's own.
    if user.role != Role::Operator {
        return Ok(failure(StatusCode::FORBIDDEN, "live.not_operator"));
    }
    let Some(queue) = state.queue() else {
        return Ok(failure(StatusCode::SERVICE_UNAVAILABLE, "live.no_queue"));
    };
    match queue.set_status(&user.name, status).await {
        Ok(()) => {
            tracing::info!(user = %user.name, status = %status, "operator status set (console page)");
            Ok(see_other("/operator"))
        }
        Err(QueueError::UnknownOperator) => {
            Ok(failure(StatusCode::NOT_FOUND, "live.unknown_to_queue"))
        }
        Err(e) => {
            tracing::warn!(user = %user.name, error = %e, "operator status not set");
            Ok(failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "live.queue_failed",
            ))
        }
    }
}

/// The note form.
#[derive(Debug, Deserialize)]
struct NoteForm {
    text: String,
}

/// `POST /operator/calls/{id}/notes`.
async fn add_note(
    State(state): State<AppState>,
    user: PageUser,
    id: Result<Path<String>, PathRejection>,
    form: Result<Form<NoteForm>, FormRejection>,
) -> Result<Response, PageError> {
    user.require(Identity::ANYONE)?;
    let Ok(Path(id)) = id else {
        return Err(PageError::NotFound);
    };
    if !hotline_store::is_id(&id) {
        return Err(PageError::NotFound);
    }
    let Ok(Form(form)) = form else {
        return Err(PageError::BadRequest);
    };
    let detail = state
        .store()
        .get_call(&id)
        .await?
        .ok_or(PageError::NotFound)?;
    let queue = QueueNow::read(&state).await;
    if !may_note(&user.name, user.role, &detail, &queue) {
        tracing::info!(user = %user.name, call = %id, "note refused: not this user's call");
        return Ok(failure(StatusCode::FORBIDDEN, "live.note_refused"));
    }
    let text = form.text.trim();
    if text.is_empty() {
        return Ok(failure(StatusCode::BAD_REQUEST, "live.note_empty"));
    }
    if text.chars().count() > NOTE_MAX_CHARS {
        return Ok(failure(StatusCode::PAYLOAD_TOO_LARGE, "live.note_too_long"));
    }
    state
        .store()
        .add_call_note(&NewCallNote {
            id: new_id(),
            call_id: id.clone(),
            author: user.name.clone(),
            at: state.now(),
            text: text.to_owned(),
        })
        .await?;
    tracing::info!(user = %user.name, call = %id, "case note added");
    Ok(see_other("/operator"))
}

/// This area's texts: `(key, Spanish, English)` (see `i18n`). `live.*` keys are shared with
/// the board.
pub(super) const I18N: &[(&str, &str, &str)] = &[
    ("operator.title", "Mi puesto", "My desk"),
    ("live.my_status", "Mi estado", "My status"),
    ("live.status", "Estado elegido", "Status set"),
    ("live.state", "Ahora", "Now"),
    ("live.softphone", "Teléfono (softphone)", "Softphone"),
    ("live.registered", "conectado", "connected"),
    ("live.not_registered", "no conectado", "not connected"),
    (
        "live.softphone_hint",
        "Sin teléfono conectado no recibirá llamadas aunque esté disponible.",
        "Without a connected softphone you get no calls, even when available.",
    ),
    (
        "live.paused_by_queue",
        "La cola le pausó:",
        "The queue paused you:",
    ),
    ("live.set_available", "Disponible", "Available"),
    ("live.set_paused", "En pausa", "Paused"),
    ("live.set_offline", "Desconectado", "Offline"),
    ("live.state.available", "Disponible", "Available"),
    ("live.state.paused", "En pausa", "Paused"),
    ("live.state.offline", "Desconectado", "Offline"),
    ("live.state.ringing", "Timbrando", "Ringing"),
    ("live.state.busy", "En llamada", "On a call"),
    ("live.state.wrap-up", "Cerrando la llamada", "Wrapping up"),
    ("live.state.other", "Otro", "Other"),
    (
        "live.no_queue",
        "La cola de operadores no está funcionando: no se reparten llamadas.",
        "The operator queue is not running: no calls are handed out.",
    ),
    (
        "live.queue_failed",
        "La cola de operadores no responde. Inténtelo de nuevo en un momento.",
        "The operator queue does not answer. Try again in a moment.",
    ),
    (
        "live.not_operator",
        "Su cuenta no es de operador(a): no tiene estado en la cola.",
        "Your account is not an operator's: it has no status in the queue.",
    ),
    (
        "live.unknown_to_queue",
        "La cola no le conoce como operador(a) todavía.",
        "The queue does not know you as an operator yet.",
    ),
    ("live.queue", "La cola ahora", "The queue now"),
    ("live.waiting_none", "Nadie espera.", "Nobody is waiting."),
    (
        "live.waiting_one",
        "1 persona espera.",
        "1 caller is waiting.",
    ),
    (
        "live.waiting_many",
        "{n} personas esperan.",
        "{n} callers are waiting.",
    ),
    ("live.position", "Orden", "Order"),
    ("live.language", "Idioma", "Language"),
    ("live.waited", "Espera", "Waiting"),
    ("live.lang.es", "Español", "Spanish"),
    ("live.lang.qu", "Quechua", "Quechua"),
    ("live.lang.none", "Sin elegir", "Not chosen"),
    ("live.lang.other", "Otro", "Other"),
    ("live.call_now", "Llamada en curso", "Call in progress"),
    ("live.call_last", "Su última llamada", "Your last call"),
    ("live.no_call", "Ninguna llamada.", "No call."),
    ("live.reference", "Número de referencia", "Reference number"),
    ("live.path", "Recorrido del menú", "Menu path"),
    ("live.queue_wait", "Esperó", "Waited"),
    ("live.previous", "Llamadas anteriores", "Earlier calls"),
    (
        "live.previous_unknown",
        "No se sabe (número no presentado)",
        "Unknown (no number presented)",
    ),
    ("live.previous_none", "Primera llamada", "First call"),
    (
        "live.previous_one",
        "Llamó antes 1 vez",
        "Called before once",
    ),
    (
        "live.previous_many",
        "Llamó antes {n} veces",
        "Called before {n} times",
    ),
    (
        "live.call_not_stored",
        "La llamada aún no está registrada. Se mostrará en unos segundos.",
        "The call is not stored yet. It will show in a few seconds.",
    ),
    (
        "live.call_unavailable",
        "No se pudo leer la llamada: base de datos no disponible.",
        "The call could not be read: database unavailable.",
    ),
    (
        "live.call_failed",
        "No se pudo leer la llamada (error interno, quedó registrado).",
        "The call could not be read (internal error, logged).",
    ),
    ("live.notes", "Notas del caso", "Case notes"),
    ("live.no_notes", "Sin notas.", "No notes."),
    ("live.note_new", "Nueva nota", "New note"),
    ("live.note_save", "Guardar nota", "Save note"),
    (
        "live.note_hint",
        "No escriba el número del llamante.",
        "Do not write the caller's number.",
    ),
    (
        "live.note_refused",
        "Solo la persona que atendió la llamada, o un(a) supervisor(a), puede añadir notas.",
        "Only the person who took the call, or a supervisor, may add notes.",
    ),
    (
        "live.note_empty",
        "La nota está vacía.",
        "The note is empty.",
    ),
    (
        "live.note_too_long",
        "La nota es demasiado larga (4000 caracteres como máximo).",
        "The note is too long (4000 characters at most).",
    ),
    ("live.connecting", "Conectando…", "Connecting…"),
    ("live.on", "En vivo", "Live"),
    (
        "live.lost",
        "Sin conexión: reintentando…",
        "Connection lost: retrying…",
    ),
    (
        "live.ended",
        "La sesión terminó. Vuelva a iniciar sesión.",
        "Your session ended. Please sign in again.",
    ),
    ("live.reload", "Recargar", "Reload"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_text(-5), "0 s");
        assert_eq!(duration_text(45_900), "45 s");
        assert_eq!(duration_text(125_000), "2 min 05 s");
        assert_eq!(duration_text(3_725_000), "1 h 02 min");
    }

    #[test]
    fn counts_in_words() {
        assert_eq!(waiting_text(Lang::En, 0), "Nobody is waiting.");
        assert_eq!(waiting_text(Lang::Es, 3), "3 personas esperan.");
        assert_eq!(previous_text(Lang::En, true, 2), "Called before 2 times");
        assert_eq!(previous_text(Lang::Es, true, 1), "Llamó antes 1 vez");
        assert_eq!(
            previous_text(Lang::En, false, 0),
            "Unknown (no number presented)"
        );
    }
}
