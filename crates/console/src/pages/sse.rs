//! Live parts of a page by server-sent events (`GET /operator/events`, `GET /board/events`).
//!
//! A page marks the elements that change with `data-live="<part>"` and names its stream with
//! `data-live-src` (see `static/console.js`). The stream renders the page's parts (HTML
//! fragments, from the same templates as the page) once a [`TICK`] and sends an `update` event
//! when something changed: `{"waiting": <callers waiting>, "parts": {"<part>": "<html>", …}}`
//! with only the parts that changed (every part in the first event). The script swaps them in.
//!
//! - **Session**: checked each tick (the session's row, its idle and absolute limits, the user
//!   still enabled with the same role). When it ends the stream sends an `end` event and
//!   closes. The stream does not keep a session alive: an open page is not activity.
//! - **Bounded**: the stream is pulled: the next tick waits until the previous event is
//!   written to the connection (`MissedTickBehavior::Delay`), so a slow client holds at most
//!   one event, never a backlog.
//! - **Keep-alive**: a comment every 15 s while nothing changes (proxies and browsers keep the
//!   connection open).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use async_trait::async_trait;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use hotline_store::{Role, StoreError};
use serde::Serialize;
use tokio::time::MissedTickBehavior;

use crate::AppState;
use crate::session::millis;

/// How often a stream looks at the queue and the session.
pub(crate) const TICK: Duration = Duration::from_secs(1);

/// One rendering of a page's live parts.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct Update {
    /// How many callers wait (the queue's count; 0 without a queue).
    pub(crate) waiting: usize,
    /// Part name (`data-live`) → its HTML.
    pub(crate) parts: BTreeMap<&'static str, String>,
}

/// What a live page renders each tick.
#[async_trait]
pub(crate) trait LiveSource: Send + 'static {
    /// The page's live parts now. Failures are shown in the parts (a message), not raised.
    async fn render(&mut self, state: &AppState) -> Update;
}

/// The signed-in session a stream belongs to.
#[derive(Debug, Clone)]
pub(crate) struct StreamSession {
    /// The session's key (hash of its token).
    pub(crate) id_hash: String,
    /// Its user and role when the stream opened.
    pub(crate) user: String,
    pub(crate) role: Role,
}

struct Live<S> {
    state: AppState,
    session: StreamSession,
    source: S,
    interval: tokio::time::Interval,
    sent: BTreeMap<&'static str, String>,
    sent_waiting: Option<usize>,
    ended: bool,
}

/// The `text/event-stream` answer of a live page.
pub(crate) fn respond<S: LiveSource>(
    state: AppState,
    session: StreamSession,
    source: S,
) -> Response {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let live = Live {
        state,
        session,
        source,
        interval,
        sent: BTreeMap::new(),
        sent_waiting: None,
        ended: false,
    };
    let events = stream::unfold(live, |mut live| async move {
        if live.ended {
            return None;
        }
        let event = next_event(&mut live).await;
        Some((Ok::<Event, Infallible>(event), live))
    });
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    // Tells a buffering reverse proxy (nginx) to pass events on at once.
    ([("x-accel-buffering", "no")], sse).into_response()
}

async fn next_event<S: LiveSource>(live: &mut Live<S>) -> Event {
    loop {
        live.interval.tick().await;
        match session_live(&live.state, &live.session).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(user = %live.session.user, "live stream ended with its session");
                live.ended = true;
                return Event::default().event("end").data("session");
            }
            Err(e) => {
                // The database is unreachable: say nothing this tick, try again the next.
                tracing::warn!(error = %e, "live stream: session check failed");
                continue;
            }
        }
        let update = live.source.render(&live.state).await;
        let mut changed = BTreeMap::new();
        for (name, html) in update.parts {
            if live.sent.get(name) != Some(&html) {
                live.sent.insert(name, html.clone());
                changed.insert(name, html);
            }
        }
        if changed.is_empty() && live.sent_waiting == Some(update.waiting) {
            continue;
        }
        live.sent_waiting = Some(update.waiting);
        let body = Update {
            waiting: update.waiting,
            parts: changed,
        };
        let data = serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned());
        return Event::default().event("update").data(data);
    }
}

/// Whether the stream's session still holds: not signed out, within its limits, its user
/// enabled with the same role.
async fn session_live(state: &AppState, s: &StreamSession) -> Result<bool, StoreError> {
    let store = state.store();
    let Some(row) = store.get_session(&s.id_hash).await? else {
        return Ok(false);
    };
    let now = state.now();
    let idle = now.unix_millis() - row.last_seen.unix_millis();
    if now >= row.expires_at || idle > millis(state.console().idle_timeout) || row.user != s.user {
        return Ok(false);
    }
    Ok(store
        .get_user(&row.user)
        .await?
        .is_some_and(|u| !u.disabled && u.role == s.role))
}
