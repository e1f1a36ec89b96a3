//! The desk's callbacks part: the callbacks not ended yet (original call's reference,
//! language, window, attempts, next attempt; never a number), and for supervisors and
//! admins a cancel button (`POST /operator/callbacks/{id}/cancel`, audited like the API's).

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use hotline_store::Role;

use super::i18n::{Lang, t};
use super::layout::failure;
use super::operator::{lang_key, render};
use super::{PageError, PageUser, see_other};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::{AppState, Route};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::post("/operator/callbacks/{id}/cancel", cancel)]
}

/// One callback, as shown.
#[derive(Debug)]
struct Row {
    id: String,
    reference: String,
    lang_key: &'static str,
    window: String,
    attempts: i64,
    next_at: String,
    placing: bool,
}

/// `templates/operator_callbacks.html`.
#[derive(Template)]
#[template(path = "operator_callbacks.html")]
struct CallbacksPart {
    lang: Lang,
    rows: Vec<Row>,
    may_cancel: bool,
    csrf_input: String,
    unavailable: bool,
}

impl CallbacksPart {
    fn t(&self, key: &'static str) -> &'static str {
        t(self.lang, key)
    }
}

/// The part's HTML.
pub(super) async fn part(state: &AppState, lang: Lang, role: Role, csrf_input: String) -> String {
    let (rows, unavailable) = match state.store().open_callbacks(50).await {
        Ok(open) => (
            open.into_iter()
                .map(|c| Row {
                    id: c.id,
                    reference: c.reference,
                    lang_key: lang_key(c.language.as_deref()),
                    window: c.window,
                    attempts: c.attempts,
                    next_at: state.zone().minute_text(c.next_at),
                    placing: c.state == hotline_store::CallbackState::Placing,
                })
                .collect(),
            false,
        ),
        Err(e) => {
            tracing::debug!(error = %e, "callbacks not listed");
            (Vec::new(), true)
        }
    };
    render(&CallbacksPart {
        lang,
        rows,
        may_cancel: role != Role::Operator,
        csrf_input,
        unavailable,
    })
}

async fn cancel(
    State(state): State<AppState>,
    user: PageUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    user.require(Identity::REVIEWERS)?;
    let Ok(Path(id)) = id else {
        return Err(PageError::NotFound);
    };
    match crate::api::callbacks::cancel_callback(&state, &user.name, &user.source, &id).await {
        Ok(_) => Ok(see_other("/operator")),
        Err(ApiError::NotFound(_)) => Err(PageError::NotFound),
        Err(ApiError::Conflict(_)) => Ok(failure(StatusCode::CONFLICT, "callbacks.ended")),
        Err(e) => {
            tracing::warn!(error = ?e, "callback not cancelled");
            Ok(failure(StatusCode::SERVICE_UNAVAILABLE, "error.503"))
        }
    }
}

/// This part's texts.
pub(super) const I18N: &[(&str, &str, &str)] = &[
    (
        "callbacks.title",
        "Llamadas de vuelta pendientes",
        "Pending callbacks",
    ),
    ("callbacks.none", "Ninguna pendiente.", "None pending."),
    ("callbacks.reference", "Referencia", "Reference"),
    ("callbacks.window", "Horario", "Window"),
    ("callbacks.attempts", "Intentos", "Attempts"),
    (
        "callbacks.next",
        "Próximo intento (Lima)",
        "Next attempt (Lima)",
    ),
    ("callbacks.placing", "llamando ahora", "calling now"),
    ("callbacks.cancel", "Cancelar", "Cancel"),
    (
        "callbacks.ended",
        "Esa llamada de vuelta ya terminó.",
        "That callback has already ended.",
    ),
    (
        "callbacks.unavailable",
        "No se pueden leer las llamadas de vuelta ahora.",
        "Callbacks cannot be read now.",
    ),
];
