//! `PUT /api/operators/{name}/status`: an operator's availability. Operators set their own;
//! supervisors and admins anyone's. `name` must be an enabled operator account (404 otherwise).
//! Without a running queue the answer is 503 `operator queue not running`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hotline_store::Role;
use serde::{Deserialize, Serialize};

use crate::auth::Identity;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::queue::OperatorStatus;
use crate::{AppState, Route};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::put("/api/operators/{name}/status", set_status)]
}

const NO_SUCH_OPERATOR: ApiError = ApiError::NotFound("no such operator");

/// The body of the PUT.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: OperatorStatus,
}

/// The answer: the status now set.
#[derive(Debug, Serialize)]
struct StatusSet<'a> {
    name: &'a str,
    status: OperatorStatus,
}

async fn set_status(
    State(state): State<AppState>,
    who: Identity,
    ApiPath(name): ApiPath<String>,
    // Taken as a Result so that a refusal by role comes before any complaint about the body.
    body: Result<ApiJson<StatusBody>, ApiError>,
) -> Result<Response, ApiError> {
    who.require(Identity::ANYONE)?;
    if who.role == Role::Operator && who.user != name {
        tracing::info!(user = %who.user, operator = %name, "refused: an operator sets only their own status");
        return Err(ApiError::Forbidden(
            "forbidden: operators set only their own status",
        ));
    }
    let ApiJson(body) = body?;
    let user = state
        .store()
        .get_user(&name)
        .await?
        .ok_or(NO_SUCH_OPERATOR)?;
    if user.role != Role::Operator || user.disabled {
        return Err(NO_SUCH_OPERATOR);
    }
    let queue = state.queue().ok_or(ApiError::QueueNotRunning)?;
    queue.set_status(&name, body.status).await?;
    tracing::info!(user = %who.user, operator = %name, status = %body.status, "operator status set");
    Ok(Json(StatusSet {
        name: &name,
        status: body.status,
    })
    .into_response())
}
