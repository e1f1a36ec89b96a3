//! `GET /api/calls` and `GET /api/calls/{id}`: call metadata, for every role. Operators get the
//! calls without their recording ids (the `recordings` key is left out).
//!
//! Every role gets the call's `marks` (`quick-exit`, `silent`) and the caller's keypad
//! `answers`: operators need them on the call they take.
//!
//! Not shown to anyone here: the caller (a pseudonym by default), the trunk address and the
//! number dialled.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hotline_store::{Answer, Call, CallDetail, CallEvent, CallFilter, Disposition, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::Identity;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, limit, plausible_id};
use crate::{AppState, Route};

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/api/calls", list),
        Route::get("/api/calls/{id}", one),
    ]
}

/// Longest `sip_call_id` filter accepted.
const MAX_SIP_CALL_ID: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    sip_call_id: Option<String>,
    reference: Option<String>,
}

impl ListQuery {
    fn into_filter(self) -> Result<CallFilter, ApiError> {
        if let Some(id) = &self.sip_call_id
            && (id.is_empty() || id.len() > MAX_SIP_CALL_ID)
        {
            return Err(ApiError::BadRequest(format!(
                "sip_call_id must be 1 to {MAX_SIP_CALL_ID} bytes"
            )));
        }
        if let Some(r) = &self.reference
            && (r.is_empty() || r.len() > 16 || !r.bytes().all(|c| c.is_ascii_digit()))
        {
            return Err(ApiError::BadRequest(
                "reference must be the digits read to the caller".to_owned(),
            ));
        }
        Ok(CallFilter {
            limit: limit(self.limit)?,
            sip_call_id: self.sip_call_id,
            reference: self.reference,
            started_before: None,
            // Filters the API does not offer (yet) are left open.
            ..CallFilter::default()
        })
    }
}

/// A call as the API shows it.
#[derive(Debug, Serialize)]
struct CallJson<'a> {
    id: &'a str,
    sip_call_id: &'a str,
    reference: &'a str,
    started_at: Timestamp,
    answered_at: Option<Timestamp>,
    ended_at: Option<Timestamp>,
    language: Option<&'a str>,
    disposition: Option<Disposition>,
    path: &'a [String],
    queue_wait_ms: Option<i64>,
    operator: Option<&'a str>,
    /// `quick-exit` (the caller pressed the quick-exit key), `silent` (no key, no speech).
    marks: &'a [String],
    /// The caller's keypad answers, in order: `{"question", "answer"}`.
    answers: &'a [Answer],
    /// Left out for operators.
    #[serde(skip_serializing_if = "Option::is_none")]
    recordings: Option<&'a [String]>,
}

impl<'a> CallJson<'a> {
    fn new(call: &'a Call, who: &Identity) -> CallJson<'a> {
        CallJson {
            id: &call.id,
            sip_call_id: &call.sip_call_id,
            reference: &call.reference,
            started_at: call.started_at,
            answered_at: call.answered_at,
            ended_at: call.ended_at,
            language: call.language.as_deref(),
            disposition: call.disposition,
            path: &call.path,
            queue_wait_ms: call.queue_wait_ms,
            operator: call.operator.as_deref(),
            marks: &call.marks,
            answers: &call.answers,
            recordings: who.sees_recordings().then_some(&call.recordings[..]),
        }
    }
}

#[derive(Debug, Serialize)]
struct CallList<'a> {
    calls: Vec<CallJson<'a>>,
}

#[derive(Debug, Serialize)]
struct CallDetailJson<'a> {
    #[serde(flatten)]
    call: CallJson<'a>,
    events: &'a [CallEvent],
}

impl<'a> CallDetailJson<'a> {
    fn new(detail: &'a CallDetail, who: &Identity) -> CallDetailJson<'a> {
        CallDetailJson {
            call: CallJson::new(&detail.call, who),
            events: &detail.events,
        }
    }
}

async fn list(
    State(state): State<AppState>,
    who: Identity,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    who.require(Identity::ANYONE)?;
    let calls = state.store().list_calls(&query.into_filter()?).await?;
    let body = CallList {
        calls: calls.iter().map(|c| CallJson::new(c, &who)).collect(),
    };
    Ok(Json(&body).into_response())
}

async fn one(
    State(state): State<AppState>,
    who: Identity,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    who.require(Identity::ANYONE)?;
    const NO_SUCH_CALL: ApiError = ApiError::NotFound("no such call");
    if !plausible_id(&id) {
        return Err(NO_SUCH_CALL);
    }
    let detail = state.store().get_call(&id).await?.ok_or(NO_SUCH_CALL)?;
    Ok(Json(CallDetailJson::new(&detail, &who)).into_response())
}
