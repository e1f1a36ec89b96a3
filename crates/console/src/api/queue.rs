//! `GET /api/queue`: who is waiting, and which operators are there, for every role.
//!
//! From the [`crate::QueueView`] when the binary gave one; otherwise nobody waits and every
//! enabled operator account is listed `offline`, unregistered, on no call.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hotline_store::Role;

use crate::auth::Identity;
use crate::error::ApiError;
use crate::queue::{OperatorStatus, OperatorView, QueueSnapshot};
use crate::{AppState, Route};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get("/api/queue", snapshot)]
}

async fn snapshot(State(state): State<AppState>, who: Identity) -> Result<Response, ApiError> {
    who.require(Identity::ANYONE)?;
    let snapshot = match state.queue() {
        Some(queue) => queue.snapshot().await.map_err(ApiError::from)?,
        None => without_queue(&state).await?,
    };
    Ok(Json(&snapshot).into_response())
}

/// The answer while no queue runs: the operator accounts, all offline.
async fn without_queue(state: &AppState) -> Result<QueueSnapshot, ApiError> {
    let users = state.store().list_users().await?;
    Ok(QueueSnapshot {
        waiting: Vec::new(),
        operators: users
            .into_iter()
            .filter(|u| u.role == Role::Operator && !u.disabled)
            .map(|u| OperatorView {
                name: u.name,
                status: OperatorStatus::Offline,
                registered: false,
                current_call: None,
                state: None,
                paused_reason: None,
            })
            .collect(),
    })
}
