//! `/board`: the supervisors' board: who waits and for how long, the operators and what they
//! do, today's calls by outcome, and charts of the last 30 days (inline SVG drawn here, see
//! [`super::charts`]).
//!
//! Today's calls are also counted by mark: quick exits and silent calls (for statistics; see
//! [`super::safety`]), and the latest calls list their marks in words.
//!
//! - `GET /board` (supervisors, admins): the page.
//! - `GET /board/events`: its live parts (`queue`, `operators`, `today`) by SSE (see
//!   [`super::sse`]); the charts change by the day and are drawn with the page only.
//!
//! Nothing here shows a caller: counts, languages, references and waits only.

use askama::Template;
use askama_web::WebTemplate;
use async_trait::async_trait;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use hotline_store::{Call, CallFilter, Disposition, MAX_LIMIT, StoreError, Zone};

use super::charts::{self, Chart, Mode, Series};
use super::i18n::{Lang, t};
use super::operator::{QueueNow, lang_key, queue_part, render, state_key, state_of};
use super::safety::{self, Mark};
use super::sse::{self, LiveSource, StreamSession, Update};
use super::{Layout, PageError, PageUser};
use crate::auth::Identity;
use crate::session::SignedIn;
use crate::{AppState, Route};

/// This area's pages.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/board", page),
        Route::get("/board/events", events),
    ]
}

/// Days the charts cover.
const CHART_DAYS: usize = 30;
/// Today's calls are read again every this many ticks.
const TODAY_REFRESH_TICKS: u64 = 10;
/// Today's latest calls listed.
const LATEST: usize = 10;

/// An operator row.
#[derive(Debug)]
struct OperatorRow {
    name: String,
    state: String,
    state_key: &'static str,
    status_key: &'static str,
    registered: bool,
    paused_reason: Option<String>,
}

/// `templates/board_operators.html`.
#[derive(Template)]
#[template(path = "board_operators.html")]
struct OperatorsPart {
    lang: Lang,
    problem: Option<&'static str>,
    operators: Vec<OperatorRow>,
}

impl OperatorsPart {
    fn t(&self, key: &'static str) -> &'static str {
        t(self.lang, key)
    }
}

fn operators_part(lang: Lang, queue: &QueueNow) -> String {
    let operators = match queue {
        QueueNow::Running(s) => s
            .operators
            .iter()
            .map(|o| OperatorRow {
                name: o.name.clone(),
                state: state_of(o).to_owned(),
                state_key: state_key(state_of(o)),
                status_key: state_key(o.status.as_str()),
                registered: o.registered,
                paused_reason: o.paused_reason.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    render(&OperatorsPart {
        lang,
        problem: queue.problem(),
        operators,
    })
}

/// A count of today's calls.
#[derive(Debug)]
struct Count {
    /// `message`, `operator`, …, `ongoing`.
    id: &'static str,
    key: &'static str,
    n: usize,
}

/// One of today's calls.
#[derive(Debug)]
struct CallRow {
    /// RFC 3339 UTC (for `<time datetime>`).
    started: String,
    /// In the hotline's time zone.
    started_text: String,
    reference: String,
    lang_key: &'static str,
    outcome_key: &'static str,
    operator: String,
    /// The call's marks in words.
    marks: Vec<Mark>,
}

/// `templates/board_today.html`.
#[derive(Template)]
#[template(path = "board_today.html")]
struct TodayPart {
    lang: Lang,
    /// The hotline's time zone, whose day "today" is.
    zone: String,
    problem: Option<&'static str>,
    total: usize,
    /// The list hit its limit: "at least".
    capped: bool,
    counts: Vec<Count>,
    /// Today's calls by mark: `quick-exit`, `silent`, `callback`.
    marked: Vec<Count>,
    latest: Vec<CallRow>,
}

impl TodayPart {
    fn t(&self, key: &'static str) -> &'static str {
        t(self.lang, key)
    }
}

fn outcome_key(d: Option<Disposition>) -> (&'static str, &'static str) {
    match d {
        Some(Disposition::Message) => ("message", "board.out.message"),
        Some(Disposition::Operator) => ("operator", "board.out.operator"),
        Some(Disposition::Abandoned) => ("abandoned", "board.out.abandoned"),
        Some(Disposition::Rejected) => ("rejected", "board.out.rejected"),
        Some(Disposition::Failed) => ("failed", "board.out.failed"),
        Some(Disposition::Interrupted) => ("interrupted", "board.out.interrupted"),
        None => ("ongoing", "board.out.ongoing"),
    }
}

fn today_part(lang: Lang, zone: &Zone, calls: Result<Vec<Call>, StoreError>) -> String {
    let calls = match calls {
        Ok(c) => c,
        Err(e) => {
            let key = if e.is_transient() {
                "board.today_unavailable"
            } else {
                tracing::error!(error = ?e, "board: today's calls failed");
                "board.today_failed"
            };
            return render(&TodayPart {
                lang,
                zone: zone.name().to_owned(),
                problem: Some(key),
                total: 0,
                capped: false,
                counts: Vec::new(),
                marked: Vec::new(),
                latest: Vec::new(),
            });
        }
    };
    let mut counts: Vec<Count> = [
        Some(Disposition::Message),
        Some(Disposition::Operator),
        Some(Disposition::Abandoned),
        Some(Disposition::Rejected),
        Some(Disposition::Failed),
        Some(Disposition::Interrupted),
        None,
    ]
    .into_iter()
    .map(|d| {
        let (id, key) = outcome_key(d);
        Count { id, key, n: 0 }
    })
    .collect();
    for c in &calls {
        let (id, _) = outcome_key(c.disposition);
        if let Some(count) = counts.iter_mut().find(|k| k.id == id) {
            count.n += 1;
        }
    }
    let marked = vec![
        Count {
            id: safety::QUICK_EXIT,
            key: "board.quick_exits",
            n: calls.iter().filter(|c| safety::is_quick_exit(c)).count(),
        },
        Count {
            id: safety::SILENT,
            key: "board.silent",
            n: calls.iter().filter(|c| safety::is_silent(c)).count(),
        },
        Count {
            id: safety::CALLBACK,
            key: "board.callbacks",
            n: calls.iter().filter(|c| safety::is_callback(c)).count(),
        },
    ];
    let latest = calls
        .iter()
        .take(LATEST)
        .map(|c| CallRow {
            started: c.started_at.to_rfc3339(),
            started_text: zone.minute_text(c.started_at),
            reference: c.reference.clone(),
            lang_key: lang_key(c.language.as_deref()),
            outcome_key: outcome_key(c.disposition).1,
            operator: c.operator.clone().unwrap_or_default(),
            marks: safety::marks(lang, &c.marks),
        })
        .collect();
    render(&TodayPart {
        lang,
        zone: zone.name().to_owned(),
        problem: None,
        total: calls.len(),
        capped: calls.len() >= MAX_LIMIT as usize,
        counts,
        marked,
        latest,
    })
}

async fn today_calls(state: &AppState) -> Result<Vec<Call>, StoreError> {
    state
        .store()
        .list_calls(&CallFilter {
            started_since: Some(state.zone().start_of_day(state.now())),
            limit: MAX_LIMIT,
            ..CallFilter::default()
        })
        .await
}

/// The board's live parts.
#[derive(Debug)]
struct Board {
    lang: Lang,
    tick: u64,
    today: Option<String>,
}

#[async_trait]
impl LiveSource for Board {
    async fn render(&mut self, state: &AppState) -> Update {
        let queue = QueueNow::read(state).await;
        let mut update = Update {
            waiting: queue.waiting(),
            ..Update::default()
        };
        update
            .parts
            .insert("queue", queue_part(self.lang, &queue, state.now()));
        update
            .parts
            .insert("operators", operators_part(self.lang, &queue));
        let today = match &self.today {
            Some(html) if !self.tick.is_multiple_of(TODAY_REFRESH_TICKS) => html.clone(),
            _ => {
                let html = today_part(self.lang, state.zone(), today_calls(state).await);
                self.today = Some(html.clone());
                html
            }
        };
        update.parts.insert("today", today);
        self.tick += 1;
        update
    }
}

/// The three charts of the last [`CHART_DAYS`] days, or the key of why not.
async fn chart_svgs(state: &AppState, lang: Lang) -> Result<Vec<String>, &'static str> {
    let zone = state.zone();
    let days = zone.days_ending(state.now(), CHART_DAYS);
    let since = zone.start_of_days_before(state.now(), CHART_DAYS - 1);
    let stats = state.store().daily_stats(since, zone).await.map_err(|e| {
        if e.is_transient() {
            "board.charts_unavailable"
        } else {
            tracing::error!(error = ?e, "board: daily statistics failed");
            "board.charts_failed"
        }
    })?;
    let s = charts::from_stats(&days, &stats);
    let tr = |k| t(lang, k).to_owned();
    let series = |labels: &[(&'static str, &'static str)], values: &[Vec<f64>]| {
        labels
            .iter()
            .zip(values)
            .map(|((key, color), v)| Series {
                label: tr(key),
                color,
                values: v.clone(),
            })
            .collect()
    };
    let base = |id, title: &'static str, desc: &'static str, y: &'static str| Chart {
        id,
        title: tr(title),
        desc: tr(desc),
        x_label: tr("board.axis_day"),
        y_label: tr(y),
        days: days.clone(),
        series: Vec::new(),
        mode: Mode::Stacked,
        decimals: 0,
    };
    let languages = Chart {
        series: series(
            &[
                ("live.lang.es", "#0b57a4"),
                ("live.lang.qu", "#c2410c"),
                ("live.lang.none", "#9aa3ad"),
            ],
            &s.by_language,
        ),
        ..base(
            "languages",
            "board.chart_languages",
            "board.chart_languages_desc",
            "board.axis_calls",
        )
    };
    let outcomes = Chart {
        series: series(
            &[
                ("board.out.message", "#2e7d32"),
                ("board.out.operator", "#0b57a4"),
                ("board.out.abandoned", "#c62828"),
                ("board.out.other", "#9aa3ad"),
            ],
            &s.by_outcome,
        ),
        ..base(
            "outcomes",
            "board.chart_outcomes",
            "board.chart_outcomes_desc",
            "board.axis_calls",
        )
    };
    let waits = Chart {
        series: series(
            &[("board.wait_max", "#f0b37e"), ("board.wait_avg", "#c2410c")],
            &[s.wait_max_s, s.wait_avg_s],
        ),
        mode: Mode::Overlaid,
        decimals: 1,
        ..base(
            "waits",
            "board.chart_waits",
            "board.chart_waits_desc",
            "board.axis_seconds",
        )
    };
    Ok(vec![
        charts::bar_chart(&languages),
        charts::bar_chart(&outcomes),
        charts::bar_chart(&waits),
    ])
}

/// `templates/board.html`.
#[derive(Template, WebTemplate)]
#[template(path = "board.html")]
struct BoardPage {
    layout: Layout,
    queue: String,
    operators: String,
    today: String,
    charts: Vec<String>,
    charts_problem: Option<&'static str>,
}

async fn page(State(state): State<AppState>, user: PageUser) -> Result<BoardPage, PageError> {
    user.require(Identity::REVIEWERS)?;
    let mut board = Board {
        lang: user.lang,
        tick: 0,
        today: None,
    };
    let mut update = board.render(&state).await;
    let mut part = |name| update.parts.remove(name).unwrap_or_default();
    let (queue, operators, today) = (part("queue"), part("operators"), part("today"));
    let (charts, charts_problem) = match chart_svgs(&state, user.lang).await {
        Ok(c) => (c, None),
        Err(key) => (Vec::new(), Some(key)),
    };
    Ok(BoardPage {
        layout: user.layout("board.title"),
        queue,
        operators,
        today,
        charts,
        charts_problem,
    })
}

/// `GET /board/events`: the board's live parts.
async fn events(
    State(state): State<AppState>,
    user: PageUser,
    signed_in: Option<Extension<SignedIn>>,
) -> Result<Response, PageError> {
    user.require(Identity::REVIEWERS)?;
    let Some(Extension(s)) = signed_in else {
        return Err(PageError::Forbidden);
    };
    let session = StreamSession {
        id_hash: s.id_hash,
        user: s.user,
        role: s.role,
    };
    let board = Board {
        lang: user.lang,
        tick: 0,
        today: None,
    };
    Ok(sse::respond(state, session, board))
}

/// This area's texts: `(key, Spanish, English)` (see `i18n`); the queue's are `live.*` in
/// `operator`.
pub(super) const I18N: &[(&str, &str, &str)] = &[
    ("board.title", "Tablero", "Board"),
    ("board.operators", "Operadores", "Operators"),
    ("board.name", "Nombre", "Name"),
    ("board.no_operators", "Ningún operador.", "No operators."),
    ("board.today", "Llamadas de hoy", "Today's calls"),
    ("board.total", "En total", "In all"),
    ("board.at_least", "al menos", "at least"),
    ("board.latest", "Las últimas", "The latest"),
    ("board.started", "Inicio", "Started"),
    ("board.outcome", "Resultado", "Outcome"),
    ("board.operator", "Operador(a)", "Operator"),
    ("board.no_calls", "Ninguna llamada hoy.", "No calls today."),
    (
        "board.today_unavailable",
        "No se pudieron leer las llamadas: base de datos no disponible.",
        "The calls could not be read: database unavailable.",
    ),
    (
        "board.today_failed",
        "No se pudieron leer las llamadas (error interno, quedó registrado).",
        "The calls could not be read (internal error, logged).",
    ),
    ("board.out.message", "Mensaje", "Message"),
    ("board.out.operator", "Operador(a)", "Operator"),
    ("board.out.abandoned", "Colgó", "Abandoned"),
    ("board.out.rejected", "Rechazada", "Rejected"),
    ("board.out.failed", "Falló", "Failed"),
    ("board.out.interrupted", "Interrumpida", "Interrupted"),
    ("board.out.ongoing", "En curso", "In progress"),
    ("board.out.other", "Otro", "Other"),
    ("board.marked", "Marcadas", "Marked"),
    ("board.quick_exits", "Salidas rápidas", "Quick exits"),
    ("board.silent", "Silenciosas", "Silent"),
    (
        "board.callbacks",
        "Con llamada de vuelta",
        "Callback booked",
    ),
    ("board.charts", "Últimos 30 días", "Last 30 days"),
    (
        "board.charts_hint",
        "Días en la hora de la línea; se actualizan al recargar la página. Zona horaria:",
        "Days in the hotline's time; updated when the page is reloaded. Time zone:",
    ),
    (
        "board.charts_unavailable",
        "No se pudieron leer las estadísticas: base de datos no disponible.",
        "The statistics could not be read: database unavailable.",
    ),
    (
        "board.charts_failed",
        "No se pudieron leer las estadísticas (error interno, quedó registrado).",
        "The statistics could not be read (internal error, logged).",
    ),
    (
        "board.chart_languages",
        "Llamadas por día e idioma",
        "Calls per day by language",
    ),
    (
        "board.chart_languages_desc",
        "Barras apiladas: llamadas de cada día en español, quechua o sin idioma elegido.",
        "Stacked bars: each day's calls in Spanish, Quechua or with no language chosen.",
    ),
    (
        "board.chart_outcomes",
        "Resultado de las llamadas por día",
        "Call outcomes per day",
    ),
    (
        "board.chart_outcomes_desc",
        "Barras apiladas: llamadas de cada día que dejaron mensaje, hablaron con un operador, colgaron u otro.",
        "Stacked bars: each day's calls that left a message, talked to an operator, hung up, or other.",
    ),
    (
        "board.chart_waits",
        "Espera en la cola por día",
        "Queue waiting time per day",
    ),
    (
        "board.chart_waits_desc",
        "Barra ancha: espera más larga del día; barra estrecha: espera media, en segundos.",
        "Wide bar: the day's longest wait; narrow bar: the average wait, in seconds.",
    ),
    ("board.axis_day", "Día", "Day"),
    ("board.axis_calls", "Llamadas", "Calls"),
    ("board.axis_seconds", "Segundos", "Seconds"),
    ("board.wait_max", "Máxima", "Longest"),
    ("board.wait_avg", "Media", "Average"),
];
