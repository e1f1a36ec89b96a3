//! `GET /api/audit`: who did what to which recording, when, from where; newest first. For
//! supervisors and admins. Filters: `user`, `recording_id`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hotline_store::{AuditEntry, AuditFilter};
use serde::{Deserialize, Serialize};

use crate::auth::Identity;
use crate::error::ApiError;
use crate::extract::{ApiQuery, limit, plausible_id};
use crate::{AppState, Route};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get("/api/audit", list)]
}

/// Longest user name filter accepted.
const MAX_USER: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    user: Option<String>,
    recording_id: Option<String>,
}

impl ListQuery {
    fn into_filter(self) -> Result<AuditFilter, ApiError> {
        if let Some(u) = &self.user
            && (u.is_empty() || u.len() > MAX_USER)
        {
            return Err(ApiError::BadRequest(format!(
                "user must be 1 to {MAX_USER} bytes"
            )));
        }
        if let Some(id) = &self.recording_id
            && !plausible_id(id)
        {
            return Err(ApiError::BadRequest(
                "recording_id is not a recording id".to_owned(),
            ));
        }
        Ok(AuditFilter {
            limit: limit(self.limit)?,
            user: self.user,
            recording_id: self.recording_id,
            // Filters the API does not offer (yet) are left open.
            ..AuditFilter::default()
        })
    }
}

/// Audit lines as the store returns them: `id`, `at`, `user`, `action`, `recording_id`,
/// `source`, `detail`.
#[derive(Debug, Serialize)]
struct AuditList {
    audit: Vec<AuditEntry>,
}

async fn list(
    State(state): State<AppState>,
    who: Identity,
    // A Result, so that a refusal by role comes before any complaint about the query.
    query: Result<ApiQuery<ListQuery>, ApiError>,
) -> Result<Response, ApiError> {
    who.require(Identity::REVIEWERS)?;
    let ApiQuery(query) = query?;
    let audit = state.store().list_audit(&query.into_filter()?).await?;
    Ok(Json(AuditList { audit }).into_response())
}
