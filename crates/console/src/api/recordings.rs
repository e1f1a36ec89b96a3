//! `GET /api/recordings` and `PATCH /api/recordings/{id}`: recordings and their review, for
//! supervisors and admins. A change and its audit line are written in one transaction: either
//! both are stored or neither.
//!
//! The file's path is not shown: `GET /api/recordings/{id}/audio` serves the file.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hotline_store::{
    Envelope, NewAuditEntry, Recording, RecordingFilter, RecordingKind, RecordingStatus,
    RecordingUpdate, StoreError, Timestamp, Write, new_id,
};
use serde::{Deserialize, Serialize};

use crate::auth::Identity;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, ClientAddr, language, limit, plausible_id};
use crate::{AppState, Route};

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/api/recordings", list),
        Route::patch("/api/recordings/{id}", update),
    ]
}

/// Most tags on a recording.
pub(crate) const MAX_TAGS: usize = 20;
/// Longest tag, in characters.
pub(crate) const MAX_TAG_CHARS: usize = 40;
/// Longest notes, in characters.
pub(crate) const MAX_NOTES_CHARS: usize = 10_000;

pub(super) const NO_SUCH_RECORDING: ApiError = ApiError::NotFound("no such recording");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    status: Option<RecordingStatus>,
    kind: Option<RecordingKind>,
    language: Option<String>,
    call_id: Option<String>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

impl ListQuery {
    fn into_filter(self) -> Result<RecordingFilter, ApiError> {
        if let Some(id) = &self.call_id
            && !plausible_id(id)
        {
            return Err(ApiError::BadRequest("call_id is not a call id".to_owned()));
        }
        Ok(RecordingFilter {
            limit: limit(self.limit)?,
            status: self.status,
            kind: self.kind,
            language: language(self.language)?,
            call_id: self.call_id,
            since: self.since,
            until: self.until,
        })
    }
}

/// The body of a PATCH (and what the recording page's review form changes): any of the three,
/// at least one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Patch {
    pub(crate) status: Option<RecordingStatus>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) notes: Option<String>,
}

impl Patch {
    /// The store update, once every field is within bounds. Tags are trimmed and duplicates
    /// dropped (first kept).
    fn into_update(self) -> Result<RecordingUpdate, ApiError> {
        if self.status.is_none() && self.tags.is_none() && self.notes.is_none() {
            return Err(ApiError::BadRequest(
                "nothing to change: give status, tags or notes".to_owned(),
            ));
        }
        let tags = match self.tags {
            None => None,
            Some(tags) if tags.len() > MAX_TAGS => {
                return Err(ApiError::BadRequest(format!("at most {MAX_TAGS} tags")));
            }
            Some(tags) => {
                let mut kept: Vec<String> = Vec::with_capacity(tags.len());
                for tag in tags {
                    let tag = tag.trim();
                    let chars = tag.chars().count();
                    if chars == 0 || chars > MAX_TAG_CHARS || tag.chars().any(char::is_control) {
                        return Err(ApiError::BadRequest(format!(
                            "each tag must be 1 to {MAX_TAG_CHARS} characters, without control \
                             characters"
                        )));
                    }
                    if !kept.iter().any(|k| k == tag) {
                        kept.push(tag.to_owned());
                    }
                }
                Some(kept)
            }
        };
        if let Some(notes) = &self.notes
            && (notes.chars().count() > MAX_NOTES_CHARS
                || notes
                    .chars()
                    .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')))
        {
            return Err(ApiError::BadRequest(format!(
                "notes must be at most {MAX_NOTES_CHARS} characters, without control characters \
                 other than line breaks and tabs"
            )));
        }
        Ok(RecordingUpdate {
            status: self.status,
            tags,
            notes: self.notes,
        })
    }
}

/// A recording as the API shows it.
#[derive(Debug, Serialize)]
pub(super) struct RecordingJson<'a> {
    id: &'a str,
    call_id: &'a str,
    kind: RecordingKind,
    created_at: Timestamp,
    duration_ms: i64,
    sha256: &'a str,
    status: RecordingStatus,
    tags: &'a [String],
    notes: &'a str,
    /// The call's language.
    language: Option<&'a str>,
}

impl<'a> From<&'a Recording> for RecordingJson<'a> {
    fn from(r: &'a Recording) -> RecordingJson<'a> {
        RecordingJson {
            id: &r.id,
            call_id: &r.call_id,
            kind: r.kind,
            created_at: r.created_at,
            duration_ms: r.duration_ms,
            sha256: &r.sha256,
            status: r.status,
            tags: &r.tags,
            notes: &r.notes,
            language: r.language.as_deref(),
        }
    }
}

#[derive(Debug, Serialize)]
struct RecordingList<'a> {
    recordings: Vec<RecordingJson<'a>>,
}

async fn list(
    State(state): State<AppState>,
    who: Identity,
    // A Result, so that a refusal by role comes before any complaint about the query.
    query: Result<ApiQuery<ListQuery>, ApiError>,
) -> Result<Response, ApiError> {
    who.require(Identity::REVIEWERS)?;
    let ApiQuery(query) = query?;
    let recordings = state.store().list_recordings(&query.into_filter()?).await?;
    let body = RecordingList {
        recordings: recordings.iter().map(RecordingJson::from).collect(),
    };
    Ok(Json(&body).into_response())
}

async fn update(
    State(state): State<AppState>,
    who: Identity,
    ApiPath(id): ApiPath<String>,
    ClientAddr(source): ClientAddr,
    // Taken as a Result so that a refusal by role comes before any complaint about the body.
    patch: Result<ApiJson<Patch>, ApiError>,
) -> Result<Response, ApiError> {
    who.require(Identity::REVIEWERS)?;
    let ApiJson(patch) = patch?;
    if !plausible_id(&id) {
        return Err(NO_SUCH_RECORDING);
    }
    let after = review(&state, &who.user, source, &id, patch).await?;
    Ok(Json(RecordingJson::from(&after)).into_response())
}

/// Applies a review change by `user` (from `source`) and its audit line in one transaction;
/// returns the recording as stored after it. Shared by `PATCH` and the recording page's form.
pub(crate) async fn review(
    state: &AppState,
    user: &str,
    source: String,
    id: &str,
    patch: Patch,
) -> Result<Recording, ApiError> {
    let update = patch.into_update()?;
    let store = state.store();
    let before = store.get_recording(id).await?.ok_or(NO_SUCH_RECORDING)?;
    let audit = NewAuditEntry {
        id: new_id(),
        at: Timestamp::now(),
        user: Some(user.to_owned()),
        action: "recording.update".to_owned(),
        recording_id: Some(id.to_owned()),
        source: Some(source),
        detail: describe(&before, &update),
    };
    let ops = [
        Envelope {
            op_id: new_id(),
            op: Write::UpdateRecording {
                id: id.to_owned(),
                update,
            },
        },
        Envelope {
            op_id: new_id(),
            op: Write::AppendAudit(audit),
        },
    ];
    store
        .apply_batch(&ops, Timestamp::now())
        .await
        .map_err(|e| match e.error {
            StoreError::NotFound(_) => NO_SUCH_RECORDING,
            other => ApiError::Store(other),
        })?;
    tracing::info!(user = %user, recording = %id, "recording review updated");
    store.get_recording(id).await?.ok_or(NO_SUCH_RECORDING)
}

/// The audit line's detail: what changed, without the notes' text (the audit log is kept longer
/// and read more widely than the notes).
fn describe(before: &Recording, update: &RecordingUpdate) -> String {
    let mut parts = Vec::new();
    if let Some(status) = update.status {
        parts.push(format!("status {} -> {status}", before.status));
    }
    if let Some(tags) = &update.tags {
        parts.push(format!("tags [{}]", tags.join(", ")));
    }
    if let Some(notes) = &update.notes {
        parts.push(format!("notes ({} characters)", notes.chars().count()));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> Result<RecordingUpdate, ApiError> {
        serde_json::from_str::<Patch>(json).unwrap().into_update()
    }

    #[test]
    fn patches() {
        let u = patch(r#"{"status":"reviewed","tags":[" a ","b","a"],"notes":"x\ny"}"#).unwrap();
        assert_eq!(u.status, Some(RecordingStatus::Reviewed));
        assert_eq!(u.tags, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(u.notes.as_deref(), Some("x\ny"));
        assert_eq!(patch(r#"{"tags":[]}"#).unwrap().tags, Some(vec![]));
        assert!(patch("{}").is_err());
        assert!(patch(r#"{"notes":null}"#).is_err());
        assert!(patch(r#"{"tags":[""]}"#).is_err());
        assert!(patch(&format!(r#"{{"tags":["{}"]}}"#, "x".repeat(41))).is_err());
        assert!(patch(&format!(r#"{{"tags":[{}"x"]}}"#, "\"x\",".repeat(20))).is_err());
        assert!(patch(r#"{"notes":"a\u0000b"}"#).is_err());
        assert!(patch(&format!(r#"{{"notes":"{}"}}"#, "é".repeat(10_001))).is_err());
        assert!(serde_json::from_str::<Patch>(r#"{"status":"done"}"#).is_err());
        assert!(serde_json::from_str::<Patch>(r#"{"path":"/etc/passwd"}"#).is_err());
    }
}
