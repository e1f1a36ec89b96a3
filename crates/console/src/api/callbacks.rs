//! `GET /api/callbacks` (every role: the callbacks not ended yet, for the operator's desk)
//! and `POST /api/callbacks/{id}/cancel` (supervisors and admins: audited first, then the
//! callback ends and its number is deleted, and the original call's history says so).
//!
//! Never shown: the caller's number (the store holds it only sealed) nor the pseudonym.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hotline_store::{Callback, CallbackState, NewAuditEntry, NewCallEvent, Timestamp, new_id};
use serde::{Deserialize, Serialize};

use crate::auth::Identity;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, ClientAddr, limit, plausible_id};
use crate::{AppState, Route};

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/api/callbacks", list),
        Route::post("/api/callbacks/{id}/cancel", cancel),
    ]
}

const NO_SUCH_CALLBACK: ApiError = ApiError::NotFound("no such callback");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
}

/// A callback as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct CallbackView {
    pub(crate) id: String,
    /// The original call (its row id and the reference read to the caller).
    pub(crate) call_id: String,
    pub(crate) reference: String,
    pub(crate) language: Option<String>,
    pub(crate) window: String,
    pub(crate) state: CallbackState,
    pub(crate) attempts: i64,
    pub(crate) created_at: Timestamp,
    pub(crate) next_at: Timestamp,
    pub(crate) expires_at: Timestamp,
}

impl From<Callback> for CallbackView {
    fn from(c: Callback) -> CallbackView {
        CallbackView {
            id: c.id,
            call_id: c.call_id,
            reference: c.reference,
            language: c.language,
            window: c.window,
            state: c.state,
            attempts: c.attempts,
            created_at: c.created_at,
            next_at: c.next_at,
            expires_at: c.expires_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct List {
    callbacks: Vec<CallbackView>,
}

async fn list(
    State(state): State<AppState>,
    who: Identity,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    who.require(Identity::ANYONE)?;
    let open = state.store().open_callbacks(limit(q.limit)?).await?;
    Ok(Json(List {
        callbacks: open.into_iter().map(CallbackView::from).collect(),
    })
    .into_response())
}

/// Cancels callback `id` for `user`: audited, ended (number deleted), told to the call's
/// history. Shared with the desk's form.
pub(crate) async fn cancel_callback(
    state: &AppState,
    user: &str,
    source: &str,
    id: &str,
) -> Result<CallbackView, ApiError> {
    if !plausible_id(id) {
        return Err(NO_SUCH_CALLBACK);
    }
    let store = state.store();
    let cb = store.get_callback(id).await?.ok_or(NO_SUCH_CALLBACK)?;
    if cb.state.is_final() {
        return Err(ApiError::Conflict(format!(
            "the callback has already ended ({})",
            cb.state
        )));
    }
    // The audit line first: no cancel without it.
    store
        .append_audit(&NewAuditEntry {
            id: new_id(),
            at: Timestamp::now(),
            user: Some(user.to_owned()),
            action: "callback.cancel".to_owned(),
            recording_id: None,
            source: Some(source.to_owned()),
            detail: format!("callback {id} of call {} ({})", cb.call_id, cb.reference),
        })
        .await
        .map_err(ApiError::AuditUnavailable)?;
    let now = Timestamp::now();
    if !store
        .end_callback(id, CallbackState::Cancelled, None, now, Some(user))
        .await?
    {
        return Err(ApiError::Conflict(
            "the callback has already ended".to_owned(),
        ));
    }
    store
        .add_call_event(&NewCallEvent {
            id: new_id(),
            call_id: cb.call_id.clone(),
            at: now,
            kind: "callback-cancelled".to_owned(),
            detail: format!("callback {id} cancelled by {user}"),
        })
        .await?;
    tracing::info!(user, callback = %id, "callback cancelled; number deleted");
    let cb = store.get_callback(id).await?.ok_or(NO_SUCH_CALLBACK)?;
    Ok(CallbackView::from(cb))
}

async fn cancel(
    State(state): State<AppState>,
    who: Identity,
    ApiPath(id): ApiPath<String>,
    ClientAddr(source): ClientAddr,
) -> Result<Response, ApiError> {
    who.require(Identity::REVIEWERS)?;
    let view = cancel_callback(&state, &who.user, &source, &id).await?;
    Ok(Json(view).into_response())
}
